//! API keys (stored hashed, with a role), who may call what, and per-key rate limits.
//!
//! A key reads `cr_<key_id>_<secret>`. Only the SHA-256 of the whole key is stored; the key
//! itself is shown once, when it is created. A key may carry an expiry date, past which it is
//! refused like a revoked one. Verified keys are cached for
//! [`KEY_CACHE_TTL`], so a revocation takes effect on every replica within that time; unknown
//! keys are never cached, and the database lookups a client address may cause are themselves
//! rate-limited (see [`Keys::verify`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use book::keys;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::ApiError;

/// How long a verified key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(3);

/// Most verified keys kept; past it the least recently verified is dropped.
pub const KEY_CACHE_CAPACITY: usize = 10_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Loan origination systems: register customers, apply, read their applications.
    Originator,
    /// Risk analysts: portfolio analytics, loans, models, what-if; no personal data.
    Analyst,
    /// Everything, including model promotion and personal data.
    Admin,
}

impl Role {
    /// The role's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Originator => "originator",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored or typed role name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "originator" => Some(Self::Originator),
            "analyst" => Some(Self::Analyst),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Whether this role may see customers' personal data (name, e-mail, phone, birth date).
    pub fn sees_personal_data(self) -> bool {
        matches!(self, Self::Originator | Self::Admin)
    }
}

/// The caller of a request, once its key is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id (safe to log and audit).
    pub key_id: String,
    /// Its role.
    pub role: Role,
}

/// A newly created key: the secret is in `key` and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    /// Public id.
    pub key_id: String,
    /// The full key; shown once.
    pub key: String,
    /// Role.
    pub role: Role,
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Create a key with `role` that never expires, store its hash and write an audit-log row.
pub async fn create_key(
    pool: &PgPool,
    role: Role,
    label: &str,
    actor: &str,
) -> Result<CreatedKey, sqlx::Error> {
    create_key_until(pool, role, label, actor, None).await
}

/// Create a key with `role`, valid until `expires_at` (never when `None`), store its hash and
/// write an audit-log row.
pub async fn create_key_until(
    pool: &PgPool,
    role: Role,
    label: &str,
    actor: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<CreatedKey, sqlx::Error> {
    let (key_id, key) = {
        let mut rng = rand::thread_rng();
        let mut id = [0u8; 6];
        let mut secret = [0u8; 24];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let key_id = hex::encode(id);
        let key = format!("cr_{key_id}_{}", hex::encode(secret));
        (key_id, key)
    };
    let key_hash = hash(&key);
    keys::create(
        pool,
        &keys::NewKey {
            key_id: &key_id,
            key_hash: &key_hash,
            role: role.as_str(),
            label,
            expires_at,
        },
        actor,
    )
    .await?;
    Ok(CreatedKey { key_id, key, role })
}

/// Revoke a key; false when there was no such active key.
pub async fn revoke_key(pool: &PgPool, key_id: &str, actor: &str) -> Result<bool, sqlx::Error> {
    keys::revoke(pool, key_id, actor).await
}

/// One key as listed (never its secret or hash).
pub use book::keys::KeyInfo;

/// Every key, newest first.
pub async fn list_keys(pool: &PgPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    keys::list(pool).await
}

/// A verified key: who, when it was looked up, and when it expires.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    at: Instant,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Verified keys by hash.
type KeyCache = Arc<Mutex<HashMap<String, Verified>>>;

/// Verifies keys against the database, with a short-lived cache of verified keys.
#[derive(Clone)]
pub struct Keys {
    pool: PgPool,
    cache: KeyCache,
    /// Database lookups (keys not in the cache) per client address.
    lookups: RateLimiter,
}

impl Keys {
    /// Keys stored in `pool`; each client address may cause `lookups_per_sec` database lookups
    /// a second (bursts of `lookups_burst`).
    pub fn new(pool: PgPool, lookups_per_sec: f64, lookups_burst: f64) -> Self {
        Self {
            pool,
            cache: Arc::default(),
            lookups: RateLimiter::new(lookups_per_sec, lookups_burst),
        }
    }

    /// The principal of `key` presented from `client` (an address; `None` when unknown), or
    /// 401; 429 when the client has looked up too many keys the cache did not know: unknown
    /// keys cost the database nothing past that, and cached (valid) keys are never throttled
    /// here.
    pub async fn verify(&self, key: &str, client: Option<&str>) -> Result<Principal, ApiError> {
        if key.len() > 128 || !key.starts_with("cr_") {
            return Err(ApiError::unauthorized());
        }
        let h = hash(key);
        // A key verified before is looked up again when its entry is stale (a revocation shows
        // within the TTL) without counting against the client's lookups.
        let known = match self.cache.lock() {
            Ok(cache) => match cache.get(&h) {
                Some(v)
                    if v.at.elapsed() < KEY_CACHE_TTL
                        && v.expires_at.is_none_or(|e| e > chrono::Utc::now()) =>
                {
                    return Ok(v.principal.clone())
                }
                Some(_) => true,
                None => false,
            },
            Err(_) => false,
        };
        if !known {
            self.lookups
                .check(client.unwrap_or("unknown"))
                .map_err(|after| {
                    let mut e = ApiError::rate_limited(after);
                    e.message = "too many keys not yet verified from this address".into();
                    e
                })?;
        }
        let row = keys::active(&self.pool, &h).await?;
        let Some((principal, expires_at)) = row.and_then(|k| {
            Role::parse(&k.role).map(|role| {
                (
                    Principal {
                        key_id: k.key_id,
                        role,
                    },
                    k.expires_at,
                )
            })
        }) else {
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(&h);
            }
            return Err(ApiError::unauthorized());
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= KEY_CACHE_CAPACITY && !cache.contains_key(&h) {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, v)| v.at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    cache.remove(&k);
                }
            }
            cache.insert(
                h,
                Verified {
                    principal: principal.clone(),
                    at: Instant::now(),
                    expires_at,
                },
            );
        }
        Ok(principal)
    }
}

/// Per-key token buckets: `rate` requests a second, bursts up to `burst`.
#[derive(Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    /// A limiter; `rate` ≤ 0 disables it.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Arc::default(),
        }
    }

    /// Take one token for `key_id`, or say how many seconds until one is available.
    pub fn check(&self, key_id: &str) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let (tokens, at) = buckets
            .entry(key_id.to_string())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil() as u64)
        }
    }
}

/// The key in a request's headers: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn key_from_headers(
    authorization: Option<String>,
    x_api_key: Option<String>,
) -> Option<String> {
    authorization
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
                .map(|k| k.trim().to_string())
        })
        .or(x_api_key.map(|k| k.trim().to_string()))
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_when_to_retry() {
        let limiter = RateLimiter::new(1.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
        }
        assert_eq!(limiter.check("k"), Err(1));
        assert!(limiter.check("other").is_ok(), "buckets are per key");
    }

    #[test]
    fn keys_are_read_from_either_header() {
        assert_eq!(
            key_from_headers(Some("Bearer cr_a_b".into()), None).as_deref(),
            Some("cr_a_b")
        );
        assert_eq!(
            key_from_headers(None, Some("cr_x".into())).as_deref(),
            Some("cr_x")
        );
        assert_eq!(key_from_headers(Some("Basic abc".into()), None), None);
    }

    #[test]
    fn only_originators_and_admins_see_personal_data() {
        assert!(Role::Admin.sees_personal_data());
        assert!(Role::Originator.sees_personal_data());
        assert!(!Role::Analyst.sees_personal_data());
    }
}
