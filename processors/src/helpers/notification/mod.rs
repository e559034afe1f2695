//! Notification helpers: engagement scoring and alerts to people.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

/// The notification helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
];
