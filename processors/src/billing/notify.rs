//! The notifications billing asks for. They become records on the notifications topic; the
//! notifier renders them with [`crate::billing::templates::render`] and sends each
//! [`NotificationIntent::dedup_key`] at most once per account.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a notification is about. The serde name is [`NotificationKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A subscription started (checkout or `customer.subscription.created`).
    SubscriptionCreated,
    /// The subscription moved to a higher-ranked plan.
    PlanUpgraded,
    /// The subscription moved to a lower-ranked plan.
    PlanDowngraded,
    /// The subscription ended; the account is back on an expired trial.
    SubscriptionCancelled,
    /// A payment failed; the data carries the hosted invoice link.
    PaymentFailed,
    /// A past-due account paid and is active again.
    PaymentRecovered,
    /// An invoice was paid.
    PaymentReceipt,
    /// The Stripe trial ends in a few days.
    TrialEnding,
    /// The 14-day trial ended without a plan.
    TrialExpired,
    /// A saved card expires at the end of the month.
    CardExpiring,
    /// A charge was refunded, in part or in full.
    RefundProcessed,
    /// A new account was created.
    Welcome,
    /// Someone was invited to an account's team.
    TeamInvite,
    /// The account is close to a plan limit.
    UsageAlert,
    /// A helper execution failed and the account asked to hear about it.
    ExecutionAlert,
    /// A CRM refused a connection's credentials: every helper on it fails until it is
    /// connected again.
    ConnectionAlert,
    /// A new user's address is to be verified; carries the one-time link.
    EmailVerification,
    /// A user asked to reset their password; carries the one-time link.
    PasswordReset,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [Self; 18] = [
        Self::SubscriptionCreated,
        Self::PlanUpgraded,
        Self::PlanDowngraded,
        Self::SubscriptionCancelled,
        Self::PaymentFailed,
        Self::PaymentRecovered,
        Self::PaymentReceipt,
        Self::TrialEnding,
        Self::TrialExpired,
        Self::CardExpiring,
        Self::RefundProcessed,
        Self::Welcome,
        Self::TeamInvite,
        Self::UsageAlert,
        Self::ExecutionAlert,
        Self::ConnectionAlert,
        Self::EmailVerification,
        Self::PasswordReset,
    ];

    /// The snake_case name used in records and dedup keys: `subscription_created`, ….
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionCreated => "subscription_created",
            Self::PlanUpgraded => "plan_upgraded",
            Self::PlanDowngraded => "plan_downgraded",
            Self::SubscriptionCancelled => "subscription_cancelled",
            Self::PaymentFailed => "payment_failed",
            Self::PaymentRecovered => "payment_recovered",
            Self::PaymentReceipt => "payment_receipt",
            Self::TrialEnding => "trial_ending",
            Self::TrialExpired => "trial_expired",
            Self::CardExpiring => "card_expiring",
            Self::RefundProcessed => "refund_processed",
            Self::Welcome => "welcome",
            Self::TeamInvite => "team_invite",
            Self::UsageAlert => "usage_alert",
            Self::ExecutionAlert => "execution_alert",
            Self::ConnectionAlert => "connection_alert",
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The preference that can turn this kind off; `None` for mail that is always
    /// sent: sign-up, password and invite links, and billing-critical notices (a failed
    /// payment, a trial ending or ended, a cancelled subscription, an expiring card).
    pub const fn preference(self) -> Option<NotificationCategory> {
        match self {
            Self::ExecutionAlert => Some(NotificationCategory::ExecutionFailures),
            Self::ConnectionAlert => Some(NotificationCategory::ConnectionProblems),
            Self::UsageAlert => Some(NotificationCategory::UsageAlerts),
            Self::SubscriptionCreated
            | Self::PlanUpgraded
            | Self::PlanDowngraded
            | Self::PaymentRecovered
            | Self::PaymentReceipt
            | Self::RefundProcessed => Some(NotificationCategory::Billing),
            Self::PaymentFailed
            | Self::TrialEnding
            | Self::TrialExpired
            | Self::SubscriptionCancelled
            | Self::CardExpiring
            | Self::Welcome
            | Self::TeamInvite
            | Self::EmailVerification
            | Self::PasswordReset => None,
        }
    }

    /// Where in the dashboard this kind's call to action leads, below `api.public_url`.
    pub const fn dashboard_path(self) -> &'static str {
        match self {
            Self::ExecutionAlert => "/executions",
            Self::ConnectionAlert => "/connections",
            Self::UsageAlert
            | Self::SubscriptionCreated
            | Self::PlanUpgraded
            | Self::PlanDowngraded
            | Self::PaymentRecovered
            | Self::PaymentReceipt
            | Self::RefundProcessed
            | Self::PaymentFailed
            | Self::TrialEnding
            | Self::TrialExpired
            | Self::SubscriptionCancelled
            | Self::CardExpiring => "/settings/billing",
            Self::TeamInvite => "/settings/team",
            Self::Welcome | Self::EmailVerification | Self::PasswordReset => "/",
        }
    }
}

/// What an account may turn off: `GET|PUT /v1/account/notification-preferences`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationCategory {
    /// Failed helper executions (`execution_alert`).
    ExecutionFailures,
    /// A CRM connection that stopped working (`connection_alert`).
    ConnectionProblems,
    /// Nearing or reaching a plan limit (`usage_alert`).
    UsageAlerts,
    /// Receipts, plan changes, refunds; never the billing-critical notices.
    Billing,
}

/// An account's notification preferences; every category is on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPrefs {
    /// Failed helper executions.
    #[serde(default = "on")]
    pub execution_failures: bool,
    /// A CRM connection that stopped working.
    #[serde(default = "on")]
    pub connection_problems: bool,
    /// Nearing or reaching a plan limit.
    #[serde(default = "on")]
    pub usage_alerts: bool,
    /// Receipts, plan changes and refunds.
    #[serde(default = "on")]
    pub billing: bool,
}

const fn on() -> bool {
    true
}

impl Default for NotificationPrefs {
    fn default() -> Self {
        Self {
            execution_failures: true,
            connection_problems: true,
            usage_alerts: true,
            billing: true,
        }
    }
}

impl NotificationPrefs {
    /// Whether an email of `kind` goes out under these preferences.
    #[must_use]
    pub const fn allows(&self, kind: NotificationKind) -> bool {
        match kind.preference() {
            None => true,
            Some(NotificationCategory::ExecutionFailures) => self.execution_failures,
            Some(NotificationCategory::ConnectionProblems) => self.connection_problems,
            Some(NotificationCategory::UsageAlerts) => self.usage_alerts,
            Some(NotificationCategory::Billing) => self.billing,
        }
    }

    /// The kinds no preference turns off.
    #[must_use]
    pub fn always_sent() -> Vec<NotificationKind> {
        NotificationKind::ALL
            .into_iter()
            .filter(|k| k.preference().is_none())
            .collect()
    }
}

/// A notification to send, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationIntent {
    /// What it is about; picks the template.
    pub kind: NotificationKind,
    /// Deterministic for the fact it reports (`subscription_created:{subscription_id}`,
    /// `payment_receipt:{invoice_id}`, …), unique within one account. Two events that
    /// report the same fact give the same key, so a notifier that records keys sends once.
    pub dedup_key: String,
    /// The values the template interpolates. Missing or null values leave out the
    /// sentence that needs them.
    pub data: Value,
}

impl NotificationIntent {
    /// A notification of `kind`.
    pub fn new(kind: NotificationKind, dedup_key: impl Into<String>, data: Value) -> Self {
        Self {
            kind,
            dedup_key: dedup_key.into(),
            data,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_match_serde() {
        let mut seen = HashSet::new();
        for kind in NotificationKind::ALL {
            let name = kind.as_str();
            assert!(seen.insert(name), "duplicate {name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(NotificationKind::parse(name), Some(kind));
        }
        assert_eq!(NotificationKind::parse("nope"), None);
    }

    #[test]
    fn preferences_turn_off_only_what_is_not_critical() {
        let off = NotificationPrefs {
            execution_failures: false,
            connection_problems: false,
            usage_alerts: false,
            billing: false,
        };
        for kind in NotificationKind::ALL {
            assert!(NotificationPrefs::default().allows(kind), "{kind:?}");
        }
        for kind in [
            NotificationKind::PaymentFailed,
            NotificationKind::TrialExpired,
            NotificationKind::TrialEnding,
            NotificationKind::SubscriptionCancelled,
            NotificationKind::CardExpiring,
            NotificationKind::PasswordReset,
            NotificationKind::EmailVerification,
            NotificationKind::TeamInvite,
        ] {
            assert!(off.allows(kind), "{kind:?} must always be sent");
        }
        for kind in [
            NotificationKind::ExecutionAlert,
            NotificationKind::UsageAlert,
            NotificationKind::PaymentReceipt,
            NotificationKind::PlanUpgraded,
        ] {
            assert!(!off.allows(kind), "{kind:?}");
        }
        let partial: NotificationPrefs =
            serde_json::from_str(r#"{"usage_alerts": false}"#).unwrap();
        assert!(partial.execution_failures && !partial.usage_alerts);
    }
}
