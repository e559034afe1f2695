//! The ActiveCampaign connector (API v3): contacts with their custom field values, tags
//! through the `contactTags` join records, notes, list-level email consent and
//! automations, over the customer's own account URL with the `Api-Token` header.
//!
//! Contact owners, companies (accounts), goals, deals and merges are not implemented:
//! the v3 contact schema has no owner field, and the rest are left for later.

mod apply;
mod client;
mod contact;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
mod fake_contacts;
#[cfg(any(test, feature = "test-util"))]
mod fake_routes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_apply;

pub use client::{ActiveCampaign, CAPABILITIES};
