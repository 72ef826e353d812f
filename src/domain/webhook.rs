//! Webhooks' pure rules: which URLs a tenant may aim deliveries at (http(s) only; loopback,
//! link-local and private ranges refused unless the operator allows them, so that a tenant
//! cannot make the server call internal services), how a delivery is signed, and when a failed
//! one is tried again.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// A secret's length bounds, in bytes.
pub const SECRET_LEN: (usize, usize) = (16, 256);
/// Most webhooks per tenant.
pub const MAX_WEBHOOKS: usize = 20;

/// The header carrying a delivery's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Dispatchd-Signature";

/// Checks a webhook URL as given: absolute http(s), with a host, without credentials or a
/// fragment; when private addresses are refused, a literal address must be public and the host
/// may not be `localhost`. Host names are checked again, resolved, at every delivery.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("at most {MAX_URL_LEN} characters"));
    }
    let u = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("only http and https URLs are accepted".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL are not accepted (sign with the secret instead)".into());
    }
    if u.fragment().is_some() {
        return Err("a fragment is not sent to a server: remove it".into());
    }
    let refused = |why: &str| Err(format!("{why}: not accepted (the server refuses private addresses)"));
    match u.host() {
        None => Err("the URL has no host".into()),
        Some(_) if allow_private => Ok(u),
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => refused("a loopback, link-local or private address"),
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => refused("a loopback, link-local or private address"),
        Some(url::Host::Domain(d)) if is_local_name(d) => refused("a local host name"),
        Some(_) => Ok(u),
    }
}

fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost") || h.ends_with(".local") || h.ends_with(".internal")
}

/// Whether an address is on the public internet: not loopback, unspecified, private,
/// shared (CGNAT), link-local, multicast, broadcast, documentation, benchmarking or reserved,
/// nor an IPv6 address embedding such an IPv4 one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) embed an IPv4 address.
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

/// The signature of a delivery: hex HMAC-SHA256, keyed by the webhook's secret, over
/// `"<timestamp>.<body>"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of [`SIGNATURE_HEADER`].
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// How long after its `attempt`-th failure (1, 2, ...) a delivery is tried again: `base`
/// doubled per failure, at most `max`, then "full jitter" scaled by `jitter` in [0, 1) to a
/// point between half and all of it, so that the deliveries failed together do not all come
/// back together.
pub fn retry_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(max);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_http_urls_are_accepted_by_default() {
        for ok in [
            "https://hooks.example.com/dispatchd",
            "http://203.0.113.1.nip.io/x",
            "https://8.8.8.8/hook",
            "https://[2606:4700::1]/hook",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "gopher://example.com",
            "https://user:pass@example.com/",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "https://example.com/#frag",
            "not a url",
            "https://",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_url("ftp://127.0.0.1/", true).is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN)), true).is_err());
    }

    #[test]
    fn signatures_match_a_known_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(want, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Ours is the same HMAC over "<t>.<body>".
        let got = sign("Jefe", 1700000000, b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{}");
        let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
        assert_eq!(
            signature_header("Jefe", 7, b"x"),
            format!("t=7,v1={}", sign("Jefe", 7, b"x"))
        );
        assert_ne!(sign("Jefe", 7, b"x"), sign("Jefe", 8, b"x"));
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_a_cap() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(retry_delay(1, base, max, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(3, base, max, 1.0), Duration::from_secs(4));
        assert_eq!(retry_delay(3, base, max, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(30, base, max, 1.0), max);
        assert!(retry_delay(10, base, max, 0.3) < max);
    }
}
