//! Stripe Checkout and Billing Portal sessions, created through async-stripe against a
//! configurable base URL (`billing.stripe_api_base`), so tests can point it at a local
//! server that answers as Stripe does.
//!
//! [`StripeBilling`] makes the two calls; the API decides who may make them and what
//! goes in. [`trial_carry`] decides how an account's remaining trial carries into the
//! subscription it buys, and [`price_for_plan`] finds the price that buys a plan.

use super::account::{AccountStatus, BillingState};
use super::config::BillingConfig;
use super::plans::{Plan, PriceMap};
use std::collections::HashMap;
use std::time::Duration;
use stripe::StripeError;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};

const DAY: i64 = 86_400;

/// How long before its end a trial can still be carried as a `trial_end` timestamp.
/// Stripe refuses a `trial_end` less than 48 hours after it receives the request; the
/// 15 minutes on top cover the request's latency and clock skew.
pub const MIN_TRIAL_END_LEAD_SECS: i64 = 2 * DAY + 15 * 60;

/// Longest one Stripe call may take. Checkout waits on a person, so a slow Stripe is
/// better refused (503, the client retries) than waited on.
const STRIPE_TIMEOUT: Duration = Duration::from_secs(20);

/// The metadata key the webhook resolves accounts by.
const ACCOUNT_ID_KEY: &str = "account_id";

/// How the rest of a trial goes into the subscription bought at checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialCarry {
    /// No trial: the first invoice is paid at checkout.
    None,
    /// `subscription_data.trial_end`: the subscription's trial ends when the account's
    /// would have, to the second.
    Until(i64),
    /// `subscription_data.trial_period_days`: too little time is left for `trial_end`,
    /// so the remaining whole days (at least one) are given instead.
    Days(u32),
}

/// How `billing`'s trial carries into a subscription bought at `now` (Unix seconds).
///
/// Only the 14-day trial carries (plan `trial`, status `trialing`, `trial_ends_at` in
/// the future); a paid plan, even one Stripe still has on trial, carries nothing. With
/// at least [`MIN_TRIAL_END_LEAD_SECS`] left the trial ends exactly when it would have
/// ([`TrialCarry::Until`]). With less, the remaining whole days are given
/// ([`TrialCarry::Days`], rounded down so the trial never grows), and with less than a
/// day, none.
pub fn trial_carry(billing: &BillingState, now: i64) -> TrialCarry {
    let on_trial = billing.plan == Plan::Trial && billing.status == AccountStatus::Trialing;
    let Some(end) = billing.trial_ends_at.filter(|&end| on_trial && end > now) else {
        return TrialCarry::None;
    };
    let left = end.saturating_sub(now);
    if left >= MIN_TRIAL_END_LEAD_SECS {
        return TrialCarry::Until(end);
    }
    match u32::try_from(left / DAY) {
        Ok(days) if days >= 1 => TrialCarry::Days(days),
        _ => TrialCarry::None,
    }
}

/// The Stripe price that buys `plan`, if one is configured. When several do (monthly and
/// yearly, say), the smallest price id is taken, so the choice does not change between
/// runs.
pub fn price_for_plan(prices: &PriceMap, plan: Plan) -> Option<String> {
    // `PriceMap` keeps its map private and looks up price → plan only; its serde form is
    // the map itself, which gives the reverse lookup without widening its API.
    let serde_json::Value::Object(map) = serde_json::to_value(prices).ok()? else {
        return None;
    };
    map.into_iter()
        .filter(|(_, p)| p.as_str() == Some(plan.as_str()))
        .map(|(price, _)| price)
        .min()
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The Stripe settings are unusable (a bad base URL, a secret that cannot be a
    /// header, a redirect URL that is not http(s)).
    #[error("invalid Stripe settings: {0}")]
    Config(String),
    /// Stripe refused the request (a 4xx other than 429); `message` is Stripe's own.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        /// Stripe's status code.
        status: u16,
        /// Stripe's `error.message` (or its `error.type` when it sent no message).
        message: String,
    },
    /// Stripe could not be reached, timed out, rate-limited us or failed (5xx); a retry
    /// may succeed.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered, but not with the object documented.
    #[error("Stripe answered in an unexpected shape: {0}")]
    UnexpectedAnswer(String),
}

impl From<StripeError> for CheckoutError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(err, status) => {
                let message = err
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", err.type_));
                if (400..500).contains(&status) && status != 429 {
                    Self::Refused { status, message }
                } else {
                    Self::Unavailable(format!("status {status}: {message}"))
                }
            }
            StripeError::JSONDeserialize(m) => Self::UnexpectedAnswer(m),
            StripeError::ClientError(m) => Self::Unavailable(m),
            StripeError::Timeout => Self::Unavailable(format!("no answer in {STRIPE_TIMEOUT:?}")),
            StripeError::ConfigError(m) => Self::Config(m),
        }
    }
}

/// A created session: where to send the customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Session {
    /// `cs_…` for Checkout, `bps_…` for the portal.
    pub id: String,
    /// The page Stripe hosts for it.
    pub url: String,
}

/// What a Checkout Session is created with.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutRequest<'a> {
    /// The buying account: `client_reference_id` and `account_id` metadata on the session
    /// and on the subscription, which the webhook resolves the account from.
    pub account_id: &'a str,
    /// The Stripe price of the plan bought.
    pub price: &'a str,
    /// The account's Stripe customer, when it has one.
    pub customer: Option<&'a str>,
    /// Prefilled on Checkout when there is no customer yet.
    pub customer_email: Option<&'a str>,
    /// How the account's trial carries over.
    pub trial: TrialCarry,
}

/// Creates Checkout and Billing Portal sessions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StripeBilling {
    client: stripe::Client,
    success_url: String,
    cancel_url: String,
    portal_return_url: String,
}

fn http_url(field: &str, url: &str) -> Result<(), CheckoutError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(CheckoutError::Config(format!(
            "billing.{field} must be an http(s) URL, not {url:?}"
        )))
    }
}

impl StripeBilling {
    /// The client `cfg` describes, or `None` when `stripe_secret_key` is empty (Checkout
    /// and the portal are off).
    ///
    /// Installs rustls' aws-lc-rs provider as the process default unless one is set: the
    /// workspace enables both of rustls' providers (through different reqwest versions),
    /// and then rustls cannot pick one itself and async-stripe's connector would panic.
    ///
    /// # Errors
    /// [`CheckoutError::Config`] when a URL or the secret is unusable.
    pub fn from_config(cfg: &BillingConfig) -> Result<Option<Self>, CheckoutError> {
        let secret = cfg.stripe_secret_key.trim();
        if secret.is_empty() {
            return Ok(None);
        }
        http_url("stripe_api_base", &cfg.stripe_api_base)?;
        http_url("checkout_success_url", &cfg.checkout_success_url)?;
        http_url("checkout_cancel_url", &cfg.checkout_cancel_url)?;
        http_url("portal_return_url", &cfg.portal_return_url)?;
        // async-stripe appends `v1/…` to the base as written.
        let base = format!("{}/", cfg.stripe_api_base.trim_end_matches('/'));
        // An error means another provider is the default already, which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = stripe::ClientBuilder::new(secret)
            .url(base)
            .timeout(STRIPE_TIMEOUT)
            .app_info("mfh", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()?;
        Ok(Some(Self {
            client,
            success_url: cfg.checkout_success_url.clone(),
            cancel_url: cfg.checkout_cancel_url.clone(),
            portal_return_url: cfg.portal_return_url.clone(),
        }))
    }

    /// Creates a subscription-mode Checkout Session for one unit of `req.price`.
    ///
    /// # Errors
    /// [`CheckoutError`]: refused by Stripe, Stripe unavailable, or an answer without a
    /// URL.
    pub async fn create_checkout_session(
        &self,
        req: &CheckoutRequest<'_>,
    ) -> Result<Session, CheckoutError> {
        // The request type is large (every Checkout option); boxed, the future stays small.
        let create = Box::new(self.checkout_params(req));
        let session = create.send(&self.client).await?;
        let url = session.url.ok_or_else(|| {
            CheckoutError::UnexpectedAnswer(format!("checkout session {} has no url", session.id))
        })?;
        Ok(Session {
            id: session.id.to_string(),
            url,
        })
    }

    fn checkout_params(&self, req: &CheckoutRequest<'_>) -> CreateCheckoutSession {
        let metadata = || HashMap::from([(ACCOUNT_ID_KEY.to_owned(), req.account_id.to_owned())]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(req.price.to_owned());
        item.quantity = Some(1);
        let mut sub = CreateCheckoutSessionSubscriptionData::new();
        sub.metadata = Some(metadata());
        match req.trial {
            TrialCarry::Until(end) => sub.trial_end = Some(end),
            TrialCarry::Days(days) => sub.trial_period_days = Some(days),
            TrialCarry::None => {}
        }
        let create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .line_items(vec![item])
            .client_reference_id(req.account_id)
            .metadata(metadata())
            .subscription_data(sub)
            .success_url(self.success_url.as_str())
            .cancel_url(self.cancel_url.as_str());
        // Stripe takes one or the other: a known customer keeps its payment methods.
        match (req.customer, req.customer_email) {
            (Some(customer), _) => create.customer(customer),
            (None, Some(email)) => create.customer_email(email),
            (None, None) => create,
        }
    }

    /// Creates a Billing Portal session for `customer`, returning to the configured URL.
    ///
    /// # Errors
    /// [`CheckoutError`]: refused by Stripe or Stripe unavailable.
    pub async fn create_portal_session(&self, customer: &str) -> Result<Session, CheckoutError> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(self.portal_return_url.as_str())
            .send(&self.client)
            .await?;
        Ok(Session {
            id: session.id.to_string(),
            url: session.url,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn trial(ends_in: i64) -> BillingState {
        BillingState {
            trial_ends_at: Some(NOW + ends_in),
            ..BillingState::default()
        }
    }

    #[test]
    fn a_long_trial_carries_to_the_second() {
        let ten_days = trial(10 * DAY);
        assert_eq!(
            trial_carry(&ten_days, NOW),
            TrialCarry::Until(NOW + 10 * DAY)
        );
        let edge = trial(MIN_TRIAL_END_LEAD_SECS);
        assert_eq!(
            trial_carry(&edge, NOW),
            TrialCarry::Until(NOW + MIN_TRIAL_END_LEAD_SECS)
        );
    }

    #[test]
    fn a_short_trial_carries_whole_days_and_less_than_a_day_carries_nothing() {
        let just_short = trial(MIN_TRIAL_END_LEAD_SECS - 1);
        assert_eq!(trial_carry(&just_short, NOW), TrialCarry::Days(2));
        assert_eq!(trial_carry(&trial(2 * DAY - 1), NOW), TrialCarry::Days(1));
        assert_eq!(trial_carry(&trial(DAY), NOW), TrialCarry::Days(1));
        assert_eq!(trial_carry(&trial(DAY - 1), NOW), TrialCarry::None);
        assert_eq!(trial_carry(&trial(0), NOW), TrialCarry::None);
        assert_eq!(trial_carry(&trial(-DAY), NOW), TrialCarry::None);
    }

    #[test]
    fn only_the_trial_plan_while_trialing_carries() {
        let paid = BillingState {
            plan: Plan::Start,
            status: AccountStatus::Active,
            ..trial(10 * DAY)
        };
        assert_eq!(trial_carry(&paid, NOW), TrialCarry::None);
        let stripe_trial = BillingState {
            plan: Plan::Grow,
            ..trial(10 * DAY)
        };
        assert_eq!(trial_carry(&stripe_trial, NOW), TrialCarry::None);
        let expired = BillingState {
            status: AccountStatus::Expired,
            ..trial(10 * DAY)
        };
        assert_eq!(trial_carry(&expired, NOW), TrialCarry::None);
        let no_end = BillingState::default();
        assert_eq!(trial_carry(&no_end, NOW), TrialCarry::None);
    }

    #[test]
    fn prices_are_found_by_plan_smallest_id_first() {
        let prices: PriceMap = [
            ("price_grow_yearly", Plan::Grow),
            ("price_grow_monthly", Plan::Grow),
            ("price_start", Plan::Start),
        ]
        .into_iter()
        .map(|(p, plan)| (p.to_owned(), plan))
        .collect();
        assert_eq!(
            price_for_plan(&prices, Plan::Start).as_deref(),
            Some("price_start")
        );
        assert_eq!(
            price_for_plan(&prices, Plan::Grow).as_deref(),
            Some("price_grow_monthly")
        );
        assert_eq!(price_for_plan(&prices, Plan::Deliver), None);
        assert_eq!(price_for_plan(&PriceMap::default(), Plan::Start), None);
    }

    #[test]
    fn an_empty_secret_disables_and_bad_urls_are_refused() {
        let off = BillingConfig::default();
        assert!(StripeBilling::from_config(&off).unwrap().is_none());
        let on = BillingConfig {
            stripe_secret_key: "sk_test_123".into(),
            stripe_api_base: "http://127.0.0.1:9".into(),
            ..BillingConfig::default()
        };
        assert!(StripeBilling::from_config(&on).unwrap().is_some());
        let bad = BillingConfig {
            stripe_api_base: "api.stripe.com".into(),
            ..on.clone()
        };
        let err = StripeBilling::from_config(&bad).unwrap_err();
        assert!(err.to_string().contains("stripe_api_base"), "{err}");
    }

    #[test]
    fn stripe_errors_split_into_retryable_and_not() {
        let down = CheckoutError::from(StripeError::ClientError("connection refused".into()));
        assert!(matches!(down, CheckoutError::Unavailable(_)));
        assert!(matches!(
            CheckoutError::from(StripeError::Timeout),
            CheckoutError::Unavailable(_)
        ));
        assert!(matches!(
            CheckoutError::from(StripeError::JSONDeserialize("x".into())),
            CheckoutError::UnexpectedAnswer(_)
        ));
    }
}
