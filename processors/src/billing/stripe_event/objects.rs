//! The Stripe objects a [`super::BillingEvent`] carries, reduced to what billing uses.

/// A completed Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_…`
    pub session_id: String,
    /// `cus_…`, absent for guest payments.
    pub customer: Option<String>,
    /// `sub_…` when `mode` is `subscription`.
    pub subscription: Option<String>,
    /// Set by mfh to the account id when it creates the session.
    pub client_reference_id: Option<String>,
    /// `customer_email`, else `customer_details.email`.
    pub customer_email: Option<String>,
    /// `metadata.account_id`.
    pub account_id_metadata: Option<String>,
    /// `payment`, `subscription` or `setup`.
    pub mode: String,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
}

/// A subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_…`
    pub subscription_id: String,
    /// `cus_…`
    pub customer: Option<String>,
    /// `status`
    pub status: SubscriptionStatus,
    /// `items.data[].price.id`, in item order.
    pub price_ids: Vec<String>,
    /// Top-level `current_period_end` (pre-Basil), else the latest
    /// `items.data[].current_period_end` (Basil).
    pub current_period_end: Option<i64>,
    /// `trial_end`
    pub trial_end: Option<i64>,
    /// `cancel_at_period_end`
    pub cancel_at_period_end: bool,
    /// The event was `customer.subscription.deleted`: the subscription has ended.
    pub deleted: bool,
    /// `latest_invoice` (`in_…`).
    pub latest_invoice: Option<String>,
    /// `metadata.account_id`.
    pub account_id_metadata: Option<String>,
}

/// An invoice, paid or with a failed payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// `in_…`
    pub invoice_id: String,
    /// `cus_…`
    pub customer: Option<String>,
    /// `subscription` (pre-Basil, id or expanded) or `parent.subscription_details.subscription`.
    pub subscription: Option<String>,
    /// `amount_paid`, in the currency's minor unit.
    pub amount_paid: i64,
    /// `amount_due`, in the currency's minor unit.
    pub amount_due: i64,
    /// `currency`, lowercase ISO code.
    pub currency: String,
    /// `billing_reason`: `subscription_create`, `subscription_cycle`, `manual`, ….
    pub billing_reason: Option<String>,
    /// `attempt_count`
    pub attempt_count: i64,
    /// `next_payment_attempt`; `None` when Stripe will not retry.
    pub next_payment_attempt: Option<i64>,
    /// `hosted_invoice_url`, where the customer can pay.
    pub hosted_invoice_url: Option<String>,
    /// `customer_email`
    pub customer_email: Option<String>,
    /// `metadata.account_id`, else the subscription's metadata (both shapes).
    pub account_id_metadata: Option<String>,
}

/// A card (or card source) about to expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// `card_…` or `src_…`
    pub source_id: String,
    /// `cus_…`
    pub customer: Option<String>,
    /// `brand`, such as `Visa`.
    pub brand: Option<String>,
    /// `last4`
    pub last4: Option<String>,
    /// `exp_month`, 1–12.
    pub exp_month: Option<i64>,
    /// `exp_year`
    pub exp_year: Option<i64>,
}

/// A refunded charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// `ch_…`
    pub charge_id: String,
    /// `cus_…`
    pub customer: Option<String>,
    /// `amount`, in the currency's minor unit.
    pub amount: i64,
    /// `amount_refunded`: the running total over all refunds of the charge.
    pub amount_refunded: i64,
    /// `refunded`: true only once the whole amount is refunded.
    pub fully_refunded: bool,
    /// `currency`
    pub currency: String,
    /// `billing_details.email`, else `receipt_email`.
    pub email: Option<String>,
    /// `metadata.account_id`.
    pub account_id_metadata: Option<String>,
}

/// Where a subscription is in Stripe's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// First payment pending.
    Incomplete,
    /// First payment never succeeded; terminal.
    IncompleteExpired,
    /// In a Stripe trial.
    Trialing,
    /// Paid up.
    Active,
    /// A renewal payment failed; Stripe is retrying.
    PastDue,
    /// Ended; terminal.
    Canceled,
    /// Retries exhausted; invoices stay open.
    Unpaid,
    /// Paused (for example a trial ended without a payment method).
    Paused,
    /// A status this code does not know.
    Unknown(String),
}

impl SubscriptionStatus {
    /// The status named `name` as Stripe spells it.
    pub fn parse(name: &str) -> Self {
        match name {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// How far along the lifecycle the status is, to order two states with the same
    /// timestamp: the later one in a same-second burst is the more advanced one
    /// (`incomplete` → `trialing` → `active` → `past_due` → `unpaid`/`paused` → ended).
    pub const fn progress(&self) -> u8 {
        match self {
            Self::Incomplete | Self::Unknown(_) => 0,
            Self::Trialing => 1,
            Self::Active => 2,
            Self::PastDue => 3,
            Self::Unpaid | Self::Paused => 4,
            Self::Canceled | Self::IncompleteExpired => 5,
        }
    }
}
