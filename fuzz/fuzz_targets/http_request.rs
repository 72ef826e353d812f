//! bytes → HTTP request → the router in-process (JSON, GraphQL parse, validation, limits,
//! execution, errors): no panic, no 5xx, every error coded, an answer within the bound.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dispatchd_fuzz::http::run(data);
});
