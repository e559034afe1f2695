//! Whether an account may run executions, and the scheduled trial expiry.

use super::account::{AccountStatus, BillingState};
use super::notify::{NotificationIntent, NotificationKind};
use super::plans::Plan;
use super::templates::format_date;
use serde_json::json;

/// Why an account may not start new executions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// The trial ran out without a plan.
    #[error("the trial ended on {ended_on}; choose a plan to keep running helpers")]
    TrialExpired {
        /// The day it ended, `YYYY-MM-DD` (UTC).
        ended_on: String,
    },
    /// The subscription was cancelled and has ended.
    #[error("the subscription ended on {ended_on}; choose a plan to keep running helpers")]
    SubscriptionEnded {
        /// The day it ended, `YYYY-MM-DD` (UTC).
        ended_on: String,
    },
    /// Stripe stopped collecting the subscription (unpaid after all retries, or paused).
    #[error(
        "billing for this account is suspended: the subscription is unpaid or paused; pay the open invoice or update the payment method to keep running helpers"
    )]
    Suspended,
}

/// The 14-day trial without a subscription whose end has passed.
fn trial_over(state: &BillingState, now: i64) -> Option<i64> {
    let ends = state.trial_ends_at?;
    let own_trial = state.plan == Plan::Trial && state.subscription_id.is_none();
    (own_trial && state.status == AccountStatus::Trialing && ends <= now).then_some(ends)
}

/// Marks a trial expired once its end has passed, for the scheduled job. Returns the new
/// state and the `trial_expired` notification, or `None` when there is nothing to do
/// (not on the 14-day trial, not ended yet, or already expired), so a second run changes
/// nothing.
pub fn expire_trial(state: &BillingState, now: i64) -> Option<(BillingState, NotificationIntent)> {
    let ends = trial_over(state, now)?;
    let mut next = state.clone();
    next.status = AccountStatus::Expired;
    let intent = NotificationIntent::new(
        NotificationKind::TrialExpired,
        format!("trial_expired:{ends}"),
        json!({ "trial_end": ends, "trial_end_date": format_date(ends) }),
    );
    Some((next, intent))
}

/// Checks that the account may start new executions: not on an ended trial (even before
/// the job marked it), not after its subscription ended, not suspended. Past-due
/// accounts keep running while Stripe retries. The monthly execution limit is
/// [`crate::billing::check_limit`]'s job.
///
/// # Errors
/// [`Blocked`] with a message for the account.
pub fn executions_allowed(state: &BillingState, now: i64) -> Result<(), Blocked> {
    if let Some(ends) = trial_over(state, now) {
        return Err(Blocked::TrialExpired {
            ended_on: format_date(ends),
        });
    }
    match state.status {
        AccountStatus::Expired => Err(match state.subscription_ended_at {
            Some(t) => Blocked::SubscriptionEnded {
                ended_on: format_date(t),
            },
            None => Blocked::TrialExpired {
                ended_on: format_date(state.trial_ends_at.unwrap_or(now)),
            },
        }),
        AccountStatus::Canceled => Err(Blocked::Suspended),
        AccountStatus::Trialing | AccountStatus::Active | AccountStatus::PastDue => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAY_1_2026: i64 = 1_777_593_600;

    #[test]
    fn trial_expires_exactly_once() {
        let state = BillingState::new_trial(MAY_1_2026);
        let ends = MAY_1_2026 + 14 * 86_400;
        assert_eq!(state.trial_ends_at, Some(ends));
        assert!(expire_trial(&state, ends - 1).is_none());
        let (expired, intent) = expire_trial(&state, ends).unwrap();
        assert_eq!(expired.status, AccountStatus::Expired);
        assert_eq!(intent.kind, NotificationKind::TrialExpired);
        assert_eq!(intent.dedup_key, format!("trial_expired:{ends}"));
        assert_eq!(intent.data["trial_end_date"], "2026-05-15");
        assert!(expire_trial(&expired, ends + 86_400).is_none());
    }

    #[test]
    fn subscribed_accounts_never_expire_by_the_job() {
        let mut state = BillingState::new_trial(MAY_1_2026);
        state.subscription_id = Some("sub_1".into());
        assert!(expire_trial(&state, i64::MAX).is_none());
        state.subscription_id = None;
        state.status = AccountStatus::Active;
        assert!(expire_trial(&state, i64::MAX).is_none());
        assert!(expire_trial(&BillingState::default(), i64::MAX).is_none());
    }

    #[test]
    fn expired_trial_blocks_with_the_date() {
        let state = BillingState::new_trial(MAY_1_2026);
        let ends = state.trial_ends_at.unwrap();
        assert!(executions_allowed(&state, ends - 1).is_ok());
        let err = executions_allowed(&state, ends).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the trial ended on 2026-05-15; choose a plan to keep running helpers"
        );
        let (expired, _) = expire_trial(&state, ends).unwrap();
        assert_eq!(executions_allowed(&expired, ends + 5), Err(err));
    }

    #[test]
    fn ended_subscription_and_suspension_block() {
        let mut state = BillingState {
            status: AccountStatus::Expired,
            subscription_ended_at: Some(MAY_1_2026),
            ..BillingState::default()
        };
        let err = executions_allowed(&state, MAY_1_2026).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the subscription ended on 2026-05-01;")
        );
        state.status = AccountStatus::Canceled;
        assert_eq!(executions_allowed(&state, 0), Err(Blocked::Suspended));
        state.status = AccountStatus::PastDue;
        assert!(executions_allowed(&state, 0).is_ok());
    }
}
