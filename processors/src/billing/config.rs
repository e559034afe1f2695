//! Billing settings: Stripe webhook secrets and prices, the trial-expiry job and how
//! notifications are delivered.

use super::plans::PriceMap;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the Stripe webhook, the billing processor and the notifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    /// Stripe endpoint signing secrets (`whsec_…`); several during a rotation. Empty
    /// disables `POST /v1/webhooks/stripe`.
    #[serde(default)]
    pub stripe_webhook_secrets: Vec<String>,
    /// Stripe price id → plan, e.g. `{ price_123 = "grow" }`.
    #[serde(default)]
    pub prices: PriceMap,
    /// How often the trial-expiry job looks for ended trials.
    #[serde(with = "humantime_serde", default = "default_trial_check")]
    pub trial_check_interval: Duration,
    /// Notification delivery.
    #[serde(default)]
    pub email: EmailConfig,
}

/// Where notification emails go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server as `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:port`; empty writes each message to `outbox_dir` instead.
    #[serde(default)]
    pub smtp_url: String,
    /// SMTP user name; empty sends without authentication.
    #[serde(default)]
    pub smtp_user: String,
    /// SMTP password.
    #[serde(default)]
    pub smtp_password: String,
    /// The sender address.
    #[serde(default = "default_from")]
    pub from: String,
    /// Where messages are written when no SMTP server is set (one `.eml` file each).
    #[serde(default = "default_outbox")]
    pub outbox_dir: PathBuf,
    /// Longest an SMTP exchange may take.
    #[serde(with = "humantime_serde", default = "default_smtp_timeout")]
    pub smtp_timeout: Duration,
}

fn default_trial_check() -> Duration {
    Duration::from_secs(60)
}
fn default_from() -> String {
    "MyFusionHelper <billing@mfh.localhost>".into()
}
fn default_outbox() -> PathBuf {
    PathBuf::from("data/outbox")
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(20)
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            smtp_user: String::new(),
            smtp_password: String::new(),
            from: default_from(),
            outbox_dir: default_outbox(),
            smtp_timeout: default_smtp_timeout(),
        }
    }
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe_webhook_secrets: Vec::new(),
            prices: PriceMap::default(),
            trial_check_interval: default_trial_check(),
            email: EmailConfig::default(),
        }
    }
}
