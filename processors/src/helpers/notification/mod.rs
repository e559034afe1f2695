//! Notification helpers: engagement scoring and alerts to people.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod email_engagement;
pub mod notify_me;

/// The notification helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &email_engagement::EmailEngagement,
    &notify_me::NotifyMe,
];
