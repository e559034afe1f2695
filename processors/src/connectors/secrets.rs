//! Encryption of stored CRM credentials: AES-256-GCM with a random nonce per write, and
//! the row's account and connection ids as associated data, so a ciphertext copied to
//! another row does not decrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured key is not base64 of 32 bytes.
    #[error("crm.encryption_key must be base64 of 32 bytes")]
    BadKey,
    /// The ciphertext was altered, belongs to another row or another key.
    #[error("stored credentials do not decrypt with this key")]
    Tampered,
    /// The system random source failed.
    #[error("no system randomness")]
    Random,
}

/// The credentials cipher. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    key: std::sync::Arc<LessSafeKey>,
    /// The same secret as an HMAC key, from which [`Cipher::mac_key`] derives keys for
    /// other purposes, so no purpose ever uses the encryption key itself.
    root: std::sync::Arc<ring::hmac::Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(redacted)")
    }
}

impl Cipher {
    /// A cipher from a base64 key of 32 bytes.
    ///
    /// # Errors
    /// [`SecretError::BadKey`].
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = B64.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
            root: std::sync::Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)),
        })
    }

    /// A fresh random key, base64.
    ///
    /// # Errors
    /// [`SecretError::Random`].
    pub fn generate_key() -> Result<String, SecretError> {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| SecretError::Random)?;
        Ok(B64.encode(k))
    }

    /// An HMAC-SHA256 key for `purpose`, derived from the deployment's secret: every
    /// process of one deployment derives the same key, and no two purposes share one.
    #[must_use]
    pub fn mac_key(&self, purpose: &str) -> ring::hmac::Key {
        let derived = ring::hmac::sign(&self.root, purpose.as_bytes());
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
    }

    /// Encrypts `plain`, bound to `context`; base64 of nonce ‖ ciphertext ‖ tag.
    ///
    /// # Errors
    /// [`SecretError::Random`].
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend(buf);
        Ok(B64.encode(out))
    }

    /// Decrypts what [`Self::seal`] produced with the same `context`.
    ///
    /// # Errors
    /// [`SecretError::Tampered`].
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SecretError> {
        let raw = B64.decode(sealed).map_err(|_| SecretError::Tampered)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Tampered);
        }
        let (n, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| SecretError::Tampered)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Tampered)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let c = Cipher::from_base64(&Cipher::generate_key().unwrap()).unwrap();
        let s = c.seal(b"token-123", "acct/conn_1").unwrap();
        assert!(!s.contains("token-123"));
        assert_eq!(c.open(&s, "acct/conn_1").unwrap(), b"token-123");
        assert!(c.open(&s, "acct/conn_2").is_err());
        let other = Cipher::from_base64(&Cipher::generate_key().unwrap()).unwrap();
        assert!(other.open(&s, "acct/conn_1").is_err());
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(s, c.seal(b"token-123", "acct/conn_1").unwrap());
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
    }
}
