//! Integration helpers: third-party services and webhooks.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod hook_it;

/// The integration helpers, in listing order.
pub(super) static HELPERS: &[&dyn DynHelper] = &[&hook_it::HookIt];
