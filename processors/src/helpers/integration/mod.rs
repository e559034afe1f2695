//! Integration helpers: third-party services and webhooks.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod hook_it;
// -- modules A (calendly_it … hook_it_v4) --
// -- modules B (mail_it … zoom_webinar_participant) --

/// The integration helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &hook_it::HookIt,
    // -- registry A --
    // -- registry B --
];
