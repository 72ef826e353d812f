#!/usr/bin/env bash
# The fuzz targets on stable Rust (no libFuzzer, no coverage guidance): each target runs for
# FUZZ_SECS seconds (default 60) on its seed corpus, mutations of it and random inputs, in one
# process; the run fails on any panic (the server's too) or hang, and saves the input under
# fuzz/artifacts-smoke/. Builds into the main target directory (debug), so that CI reuses what
# `cargo test` built. Arguments are passed on: `fuzz/smoke.sh http_request FILE...` replays inputs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$here")/target}"
(cd "$here" && cargo build --quiet --example smoke --no-default-features)
exec "$CARGO_TARGET_DIR/debug/examples/smoke" "$@"
