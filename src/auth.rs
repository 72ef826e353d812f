//! JWT (HS256) bearer tokens -> `Actor { subject, tenant, role }`.
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::error::{Error, Result};

/// Who is calling: the token's subject (a user or engineer ID), tenant and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub tenant: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
    role: String,
    exp: i64,
    iat: i64,
    /// Not before: a token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// A token whose signature and times were checked: who, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub actor: Actor,
    /// `exp`, in seconds since the Unix epoch: the token is refused from then on.
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn mint(&self, actor: &Actor, ttl: chrono::Duration) -> String {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: actor.subject.clone(),
            tenant: actor.tenant.clone(),
            role: actor.role.as_str().to_owned(),
            exp: now + ttl.num_seconds(),
            iat: now,
            nbf: None,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 encoding cannot fail")
    }

    /// Checks the signature, `exp` and `nbf` (no leeway), and that the role is one of ours,
    /// spelled exactly. Whether the subject may still act is the service layer's check
    /// (`service::access`), against the database.
    pub fn verify_token(&self, token: &str) -> Result<Verified> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            let why = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "token signature invalid",
                _ => "token malformed",
            };
            Error::Unauthenticated(why.into())
        })?;
        let c = data.claims;
        let role = Role::parse(&c.role).ok_or_else(|| Error::Unauthenticated(format!("unknown role {}", c.role)))?;
        Ok(Verified {
            actor: Actor {
                subject: c.sub,
                tenant: c.tenant,
                role,
            },
            expires_at: c.exp,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Actor> {
        self.verify_token(token).map(|v| v.actor)
    }

    /// Reads `Bearer <token>` from an Authorization header value.
    pub fn verify_header_token(&self, header: Option<&str>) -> Result<Verified> {
        let header = header.ok_or_else(|| Error::Unauthenticated("missing Authorization bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Error::Unauthenticated("Authorization must be 'Bearer <token>'".into()))?;
        self.verify_token(token.trim())
    }

    pub fn verify_header(&self, header: Option<&str>) -> Result<Actor> {
        self.verify_header_token(header).map(|v| v.actor)
    }
}

/// Parses a TTL such as `90s`, `15m`, `1h`, `7d`.
pub fn parse_ttl(s: &str) -> std::result::Result<chrono::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad duration '{s}'"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("bad duration unit in '{s}' (use s, m, h or d)")),
    };
    if secs <= 0 {
        return Err("duration must be positive".into());
    }
    Ok(chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            subject: "usr_1".into(),
            tenant: "tnt_1".into(),
            role: Role::Dispatcher,
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let keys = Keys::new(b"secret");
        let token = keys.mint(&actor(), chrono::Duration::hours(1));
        assert_eq!(keys.verify(&token).unwrap(), actor());
        assert_eq!(keys.verify_header(Some(&format!("Bearer {token}"))).unwrap(), actor());
        assert!(
            matches!(Keys::new(b"other").verify(&token), Err(Error::Unauthenticated(m)) if m.contains("signature"))
        );
        let expired = keys.mint(&actor(), chrono::Duration::seconds(-10));
        assert!(matches!(keys.verify(&expired), Err(Error::Unauthenticated(m)) if m.contains("expired")));
        assert!(keys.verify_header(None).is_err());
        assert!(keys.verify_header(Some(&token)).is_err());
        assert!(keys.verify("garbage").is_err());
    }

    fn raw(keys: &Keys, claims: serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
    }

    #[test]
    fn not_before_and_exact_roles_are_honoured() {
        let keys = Keys::new(b"secret");
        let now = Utc::now().timestamp();
        let claims = |role: &str, nbf: Option<i64>| {
            let mut c =
                serde_json::json!({"sub": "usr_1", "tenant": "tnt_1", "role": role, "exp": now + 60, "iat": now});
            if let Some(n) = nbf {
                c["nbf"] = n.into();
            }
            c
        };
        assert_eq!(keys.verify(&raw(&keys, claims("DISPATCHER", None))).unwrap(), actor());
        assert_eq!(
            keys.verify(&raw(&keys, claims("DISPATCHER", Some(now - 5)))).unwrap(),
            actor()
        );
        let early = keys.verify(&raw(&keys, claims("DISPATCHER", Some(now + 30))));
        assert!(matches!(early, Err(Error::Unauthenticated(m)) if m.contains("nbf")));
        for role in ["dispatcher", "Dispatcher", "DISPATCHER ", "ROOT"] {
            assert!(keys.verify(&raw(&keys, claims(role, None))).is_err(), "{role}");
        }
        let v = keys
            .verify_token(&keys.mint(&actor(), chrono::Duration::hours(1)))
            .unwrap();
        assert!((v.expires_at - (now + 3600)).abs() <= 2);
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h").unwrap(), chrono::Duration::hours(1));
        assert_eq!(parse_ttl("15m").unwrap(), chrono::Duration::minutes(15));
        assert_eq!(parse_ttl("30").unwrap(), chrono::Duration::seconds(30));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("0s").is_err());
    }
}
