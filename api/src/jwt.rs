//! Dashboard sign-in: JWT bearer tokens verified against the identity provider's JWKS
//! (Cognito-compatible). A token names its account in a claim (`custom:account_id` by
//! default) and its user by `email`; the user must be a member of that account, and
//! acts with the member's role.
//!
//! Keys are fetched from `api.jwks_url` and kept for `api.jwks_ttl`; a token signed with
//! a key id the cache does not know triggers one refetch (providers rotate keys), at
//! most once per [`REFETCH_GAP`], so garbage key ids cannot make mfh hammer the provider.

use crate::ApiConfig;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use mfh_processors::http::HttpClient;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The shortest time between two fetches of the key set.
pub const REFETCH_GAP: Duration = Duration::from_secs(30);

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Malformed, badly signed, expired, or for another issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key set could not be fetched or read.
    #[error("the identity provider's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account the token names.
    pub account_id: String,
    /// The user's email, lower-cased.
    pub email: String,
}

struct Cached {
    keys: JwkSet,
    fetched: Instant,
}

/// The identity provider's keys, with the verification settings.
pub struct Jwks {
    url: String,
    ttl: Duration,
    issuer: String,
    audiences: Vec<String>,
    account_claim: String,
    http: HttpClient,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// The verifier `cfg` describes, or `None` when `api.jwks_url` is empty.
    #[must_use]
    pub fn new(cfg: &ApiConfig, http: HttpClient) -> Option<Self> {
        (!cfg.jwks_url.is_empty()).then(|| Self {
            url: cfg.jwks_url.clone(),
            ttl: cfg.jwks_ttl,
            issuer: cfg.jwt_issuer.clone(),
            audiences: cfg.jwt_audiences.clone(),
            account_claim: cfg.jwt_account_claim.clone(),
            http,
            cache: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<JwkSet, JwtError> {
        let resp = self
            .http
            .send(axum::http::Method::GET, &self.url, |r| r)
            .await
            .map_err(|e| JwtError::KeysUnavailable(mfh_pipeline::report(&e)))?;
        serde_json::from_slice(&resp.body).map_err(|e| JwtError::KeysUnavailable(e.to_string()))
    }

    /// The key with id `kid`, from the cache or a fresh fetch.
    async fn key(&self, kid: &str) -> Result<DecodingKey, JwtError> {
        let mut cache = self.cache.lock().await;
        let (fresh, known) = match cache.as_ref() {
            Some(c) => (c.fetched.elapsed() < self.ttl, c.keys.find(kid).is_some()),
            None => (false, false),
        };
        let may_refetch = cache
            .as_ref()
            .is_none_or(|c| c.fetched.elapsed() >= REFETCH_GAP);
        if !fresh || (!known && may_refetch) {
            let keys = self.fetch().await?;
            *cache = Some(Cached {
                keys,
                fetched: Instant::now(),
            });
        }
        let jwk = cache
            .as_ref()
            .and_then(|c| c.keys.find(kid))
            .ok_or_else(|| JwtError::Invalid(format!("unknown signing key {kid:?}")))?;
        DecodingKey::from_jwk(jwk).map_err(|e| JwtError::Invalid(e.to_string()))
    }

    /// Verifies `token` and returns who it speaks for.
    ///
    /// # Errors
    /// [`JwtError`].
    pub async fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        let invalid = |e: jsonwebtoken::errors::Error| JwtError::Invalid(e.to_string());
        let header = decode_header(token).map_err(invalid)?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::ES256
        ) {
            return Err(JwtError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| JwtError::Invalid("the token names no signing key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(header.alg);
        // Cognito access tokens carry `client_id` instead of `aud`; checked below.
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp"]);
        if !self.issuer.is_empty() {
            v.set_issuer(&[&self.issuer]);
        }
        let claims = decode::<Value>(token, &key, &v).map_err(invalid)?.claims;
        if !self.audiences.is_empty() && !audience_ok(&claims, &self.audiences) {
            return Err(JwtError::Invalid(
                "the token is for another audience".into(),
            ));
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let account_id = text(&self.account_claim)
            .filter(|a| !a.is_empty() && a.len() <= 256)
            .ok_or_else(|| {
                JwtError::Invalid(format!("the token has no {} claim", self.account_claim))
            })?;
        let email = text("email")
            .map(|e| e.trim().to_lowercase())
            .filter(|e| e.contains('@'))
            .ok_or_else(|| JwtError::Invalid("the token has no email claim".into()))?;
        Ok(Identity { account_id, email })
    }
}

/// Whether `aud` (a string or a list) or `client_id` names one of `audiences`.
fn audience_ok(claims: &Value, audiences: &[String]) -> bool {
    let named = |v: &Value| v.as_str().is_some_and(|a| audiences.iter().any(|x| x == a));
    match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(named),
        Some(v) => named(v),
        None => claims.get("client_id").is_some_and(named),
    }
}

/// Whether a bearer credential is shaped like a JWT (three dot-separated parts) rather
/// than an API key.
#[must_use]
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audiences_come_from_aud_or_cognitos_client_id() {
        let want = vec!["client-1".to_owned()];
        assert!(audience_ok(&json!({"aud": "client-1"}), &want));
        assert!(audience_ok(&json!({"aud": ["x", "client-1"]}), &want));
        assert!(audience_ok(&json!({"client_id": "client-1"}), &want));
        assert!(!audience_ok(&json!({"aud": "other"}), &want));
        assert!(!audience_ok(
            &json!({"aud": "other", "client_id": "client-1"}),
            &want
        ));
        assert!(!audience_ok(&json!({}), &want));
    }

    #[test]
    fn api_keys_are_not_taken_for_tokens() {
        assert!(looks_like_jwt("eyJ.eyJ.sig"));
        assert!(!looks_like_jwt("mfh_0123456789abcdef"));
    }
}
