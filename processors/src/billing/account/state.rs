//! The billing state stored with each account.

use crate::billing::plans::{Limits, Plan, TRIAL_DAYS};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// Where an account stands with billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// On the 14-day trial, or on a Stripe trial of a paid plan.
    #[default]
    Trialing,
    /// Paid up.
    Active,
    /// A payment failed and Stripe is retrying; executions continue meanwhile.
    PastDue,
    /// The subscription exists but Stripe stopped collecting (`unpaid` or `paused`);
    /// executions are blocked.
    Canceled,
    /// The trial ran out, or the subscription ended (an expired trial); executions are
    /// blocked.
    Expired,
}

/// An account's billing state, stored with the account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BillingState {
    /// The plan whose limits apply.
    pub plan: Plan,
    /// Where the account stands.
    pub status: AccountStatus,
    /// When the trial ends or ended, unix seconds.
    pub trial_ends_at: Option<i64>,
    /// `cus_…`
    pub stripe_customer: Option<String>,
    /// The subscription that sets the plan, `sub_…`.
    pub subscription_id: Option<String>,
    /// When the paid period ends, unix seconds.
    pub current_period_end: Option<i64>,
    /// The subscription ends at `current_period_end`.
    pub cancel_at_period_end: bool,
    /// When the last subscription ended, if the account is expired because of that.
    pub subscription_ended_at: Option<i64>,
    /// `object_ts` of the last applied state-changing event.
    pub state_ts: i64,
    /// The [progress](crate::billing::SubscriptionStatus::progress) of that event, to
    /// break timestamp ties.
    pub state_progress: u8,
    /// `object_ts` of the latest `invoice.paid`; older payment failures are stale.
    pub last_paid_ts: i64,
    /// The invoice whose failed payment made the account past due.
    pub past_due_invoice: Option<String>,
    /// Subscriptions already announced with `subscription_created`.
    pub welcomed_subscriptions: Vec<String>,
}

impl BillingState {
    /// A new account: the Start-level trial, ending [`TRIAL_DAYS`] after `now`.
    pub fn new_trial(now: i64) -> Self {
        let ends = now.saturating_add(TRIAL_DAYS.saturating_mul(DAY));
        Self {
            trial_ends_at: Some(ends),
            ..Self::default()
        }
    }

    /// The limits in force.
    pub const fn limits(&self) -> Limits {
        self.plan.limits()
    }
}
