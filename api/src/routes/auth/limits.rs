//! Sign-in attempt limits (the `governor` crate): per email address and per client IP,
//! so guessing one user's password and spraying many users from one address are both
//! slowed. The limits are per process; a deployment with several API processes allows
//! each its quota.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::time::Duration;

/// Keys kept before forgetting the ones whose quota has refilled.
const MAX_KEYS: usize = 100_000;

/// The sign-in, sign-up and reset limiters of one API process.
#[derive(Debug)]
pub struct AuthLimits {
    per_email: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<String>,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

impl AuthLimits {
    /// Limits of `per_email` and `per_ip` attempts a minute (each also the burst).
    #[must_use]
    pub fn new(per_email: u32, per_ip: u32) -> Self {
        Self {
            per_email: DefaultKeyedRateLimiter::keyed(quota(per_email)),
            per_ip: DefaultKeyedRateLimiter::keyed(quota(per_ip)),
        }
    }

    /// Takes one attempt for `email` from `ip`; `Err(wait)` when either is over its
    /// limit (the IP is checked first, so a sprayed address does not use up the user's).
    ///
    /// # Errors
    /// How long until the next attempt is allowed.
    pub fn attempt(&self, email: Option<&str>, ip: Option<&str>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        for (limiter, key) in [(&self.per_ip, ip), (&self.per_email, email)] {
            let Some(key) = key else { continue };
            if limiter.len() > MAX_KEYS {
                limiter.retain_recent();
            }
            limiter
                .check_key(&key.to_owned())
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_and_an_ip_each_have_their_quota() {
        let l = AuthLimits::new(3, 5);
        for _ in 0..3 {
            assert!(l.attempt(Some("a@x.io"), Some("10.0.0.1")).is_ok());
        }
        let wait = l.attempt(Some("a@x.io"), Some("10.0.0.2")).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another user from the first address: the address has 2 of 5 left.
        assert!(l.attempt(Some("b@x.io"), Some("10.0.0.1")).is_ok());
        assert!(l.attempt(Some("c@x.io"), Some("10.0.0.1")).is_ok());
        assert!(l.attempt(Some("d@x.io"), Some("10.0.0.1")).is_err());
    }
}
