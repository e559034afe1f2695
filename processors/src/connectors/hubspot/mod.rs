//! The HubSpot connector, over the CRM v3 objects API at `https://api.hubapi.com` with a
//! bearer token (OAuth access token or private-app token).
//!
//! - **Fields.** Standard fields map to HubSpot's default properties (`first_name` →
//!   `firstname`, `street` → `address`, `postal_code` → `zip`, `birthday` →
//!   `date_of_birth`, `lead_source` → `hs_analytics_source`, `timezone` → `hs_timezone`,
//!   ...). Custom fields are the account's custom properties, keyed by internal name; a
//!   change may also name any other property by its internal name. Reads ask for
//!   exactly these properties.
//! - **Tags.** HubSpot has no tags, so they are emulated with a multiple-checkbox
//!   contact property whose internal name is the connection setting `tag_property`
//!   (default `mfh_tags`). A tag's id is an option's value and its name the option's
//!   label, read from `GET /crm/v3/properties/contacts/{tag_property}`. Applying or
//!   removing a tag rewrites the `;`-separated property value. `ApplyTagNamed` adds a
//!   missing option to the property (`PATCH /crm/v3/properties/contacts/{tag_property}`,
//!   which replaces the option list, so the current list is sent with it); the property
//!   itself must exist.
//! - **Notes** are note objects associated with the contact (type 202); the **owner**
//!   is `hubspot_owner_id`, checked against the owners API.
//! - **Opt-in/out** goes through the communication preferences v3 API: the connection's
//!   `subscription_id` setting, or every active non-internal subscription type. An
//!   optional `legal_basis` setting is sent for GDPR portals. `marketable` reads
//!   `hs_email_optout` ("unsubscribed from all email").
//! - **Search** uses the CRM search endpoint with superset filters and filters each page
//!   client-side; `ContactQuery::All` pages through the list endpoint's `after` cursor.
//! - Goals, automations, companies, opportunities, merges and records are not
//!   supported: such changes are reported as failed.

mod apply;
mod client;
mod types;

#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
pub(crate) mod fake_http;
#[cfg(any(test, feature = "test-util"))]
mod fake_routes;
#[cfg(test)]
mod tests;

pub use client::{CAPABILITIES, DEFAULT_TAG_PROPERTY, HubSpot};
