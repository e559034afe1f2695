//! Billing: plans and their limits, Stripe webhook events, each account's billing state,
//! and the notifications billing asks for. Pure logic without I/O: the webhook endpoint,
//! the billing processor and the notifier call it and do the reading and writing.
//!
//! The flow: the webhook parses a verified body with [`parse_event`] and keys the record
//! by [`BillingEvent::account_hint`] (else by [`BillingEvent::customer`]); the billing
//! processor loads the account's [`BillingState`], runs [`apply`], writes the state if
//! [`Applied::changed`] and produces [`Applied::notifications`]; the notifier renders each
//! with [`render`] and sends each dedup key once. A scheduled job runs [`expire_trial`];
//! the API and the router call [`check_limit`] and [`executions_allowed`].
//!
//! # Layout
//! - [`plans`]: the plans, their limits and rank, [`check_limit`], the Stripe price map.
//! - [`stripe_event`]: a raw Stripe event (both API shapes) → [`BillingEvent`].
//! - [`account`]: [`BillingState`] and [`apply`], the state machine, with its ordering and
//!   dedup rules.
//! - [`access`]: [`executions_allowed`] and the scheduled [`expire_trial`].
//! - [`notify`]: [`NotificationKind`] and [`NotificationIntent`].
//! - [`templates`]: subject, text and HTML for each kind.
//! - [`config`]: webhook secrets, prices, the trial job, email delivery.
//! - [`checkout`]: Checkout and Billing Portal sessions through async-stripe; how a
//!   trial carries into the subscription.

pub mod access;
pub mod account;
pub mod checkout;
pub mod config;
pub mod notify;
pub mod plans;
pub mod stripe_event;
pub mod templates;

#[cfg(test)]
mod fixtures;

pub use access::{Blocked, executions_allowed, expire_trial};
pub use account::{AccountStatus, Applied, BillingState, apply};
pub use config::BillingConfig;
pub use notify::{NotificationCategory, NotificationIntent, NotificationKind, NotificationPrefs};
pub use plans::{LimitExceeded, LimitKind, Limits, Plan, PriceMap, TRIAL_DAYS, check_limit};
pub use stripe_event::{
    BillingEvent, BillingEventKind, ParseError, SubscriptionStatus, parse_event, parse_event_bytes,
};
pub use templates::{Rendered, escape_html, render};
