//! Billing settings: Stripe webhook secrets and prices, the trial-expiry job, how
//! notifications are delivered, and the Stripe API used for Checkout and the Billing Portal.

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
    /// Stripe secret API key (`sk_live_…`, `sk_test_…`, or a restricted `rk_…`) used to
    /// create Checkout and Billing Portal sessions. Empty disables `POST
    /// /v1/billing/checkout` and `POST /v1/billing/portal` (they answer 503).
    #[serde(default)]
    pub stripe_secret_key: String,
    /// Base URL of the Stripe API. Tests point it at a local server; plain `http://` is
    /// accepted for that.
    #[serde(default = "default_stripe_api_base")]
    pub stripe_api_base: String,
    /// Where Checkout sends the customer after paying. Stripe replaces
    /// `{CHECKOUT_SESSION_ID}` with the session's id.
    #[serde(default = "default_checkout_success_url")]
    pub checkout_success_url: String,
    /// Where Checkout's back link goes when the customer gives up.
    #[serde(default = "default_checkout_cancel_url")]
    pub checkout_cancel_url: String,
    /// Where the Billing Portal's return link goes.
    #[serde(default = "default_portal_return_url")]
    pub portal_return_url: String,
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
    /// The dashboard's URL, which every email's call to action leads into; empty is
    /// `api.public_url`.
    #[serde(default)]
    pub dashboard_url: String,
}

fn default_stripe_api_base() -> String {
    "https://api.stripe.com".into()
}
fn default_checkout_success_url() -> String {
    "http://localhost:8080/billing/success?session_id={CHECKOUT_SESSION_ID}".into()
}
fn default_checkout_cancel_url() -> String {
    "http://localhost:8080/billing/cancel".into()
}
fn default_portal_return_url() -> String {
    "http://localhost:8080/billing".into()
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
            dashboard_url: String::new(),
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
            stripe_secret_key: String::new(),
            stripe_api_base: default_stripe_api_base(),
            checkout_success_url: default_checkout_success_url(),
            checkout_cancel_url: default_checkout_cancel_url(),
            portal_return_url: default_portal_return_url(),
        }
    }
}
