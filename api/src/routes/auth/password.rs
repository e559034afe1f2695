//! Passwords: the policy a new one must meet, and Argon2id hashing. Hashing and checking
//! run on the blocking pool: each takes tens of milliseconds of one core by design.

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mfh_processors::helpers::FieldError;

/// Shortest password accepted.
pub const MIN_LEN: usize = 10;
/// Longest password accepted (Argon2 hashes any length; this bounds the work).
pub const MAX_LEN: usize = 256;

const COMMON: &str = include_str!("common-passwords.txt");

/// Why `password` may not be used, if it may not: too short or long, one repeated
/// character, on the bundled list of breached passwords, or the email address itself.
#[must_use]
pub fn policy_error(password: &str, email: &str) -> Option<String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Some(format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Some(format!("must be at most {MAX_LEN} characters"));
    }
    let lower = password.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Some("must not be one character repeated".into());
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if lower == email.to_lowercase() || (!local.is_empty() && lower == local) {
        return Some("must not be your email address".into());
    }
    if COMMON
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.trim() == lower)
    {
        return Some("is one of the most common breached passwords; choose another".into());
    }
    None
}

/// The field error for a password that breaks the policy.
#[must_use]
pub fn check(field: &str, password: &str, email: &str) -> Option<FieldError> {
    policy_error(password, email).map(|m| FieldError::new(field, m))
}

/// Argon2id with OWASP's second recommended setting (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The Argon2id PHC string of `password` under a fresh random salt.
///
/// # Errors
/// [`ApiError::Internal`] if hashing fails (it does not for valid parameters).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

/// A hash of a password nobody has, checked when the email is unknown so that a wrong
/// address takes as long to refuse as a wrong password.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vn6GZyDTAYYXWp7z7fhQvKXAI0Wdg9ErS8p3Bq1pXS0";

/// Whether `password` matches `phc` (`None`: check against a decoy and answer false).
///
/// # Errors
/// [`ApiError::Internal`] if the check cannot run.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let stored = phc.unwrap_or_else(|| DECOY.to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verifying task: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_short_repeated_common_and_own_address() {
        let email = "ada.lovelace@example.com";
        assert!(
            policy_error("short", email)
                .unwrap()
                .contains("at least 10")
        );
        assert!(policy_error(&"x".repeat(257), email).is_some());
        assert!(policy_error("aaaaaaaaaaaa", email).is_some());
        assert!(
            policy_error("Password1234", email)
                .unwrap()
                .contains("common")
        );
        assert!(policy_error("ADA.LOVELACE", email).is_some());
        assert!(policy_error("Ada.Lovelace@Example.com", email).is_some());
        assert_eq!(policy_error("correct horse battery", email), None);
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery".into()).await.unwrap();
        let b = hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "every hash has its own salt");
        assert!(
            verify("correct horse battery".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery".into(), Some(a)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
        assert!(
            PasswordHash::new(DECOY).is_ok(),
            "the decoy must cost a real check"
        );
        assert!(!verify("x".into(), Some("not a hash".into())).await.unwrap());
    }
}
