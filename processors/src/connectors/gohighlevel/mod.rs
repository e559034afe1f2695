//! The GoHighLevel (LeadConnector) connector, over API v2 at
//! `https://services.leadconnectorhq.com` with the `Version: 2021-07-28` header and a
//! bearer token (OAuth location token or private integration token). Every connection
//! names its location (sub-account) in the required setting `location_id`.
//!
//! - **Fields.** Standard fields map to contact attributes (`first_name` → `firstName`,
//!   `street` → `address1`, `company` → `companyName`, `lead_source` → `source`, ...;
//!   there is no job title). Custom fields come from
//!   `GET /locations/{locationId}/customFields`, are keyed by the name the user sees,
//!   and are written by id (`customFields: [{id, field_value}]`). A change may also name
//!   a custom field by its field key (`contact.x` or `x`).
//! - **Tags** are names: a tag's id is its name. Applying and removing use
//!   `POST`/`DELETE /contacts/{id}/tags`; `ApplyTagNamed` creates a missing tag in the
//!   location first.
//! - **Notes** use `POST /contacts/{id}/notes`, the **owner** is `assignedTo`,
//!   **automations** are workflows (`POST /contacts/{id}/workflow/{workflowId}`).
//! - **Opt-in/out** is the email channel's DND: `active` blocks email, `inactive`
//!   allows it. A `permanent` DND, or DND on every channel, is not lifted by an opt-in.
//! - **Search** is `POST /contacts/search` with the `searchAfter` cursor; only email
//!   equality is filtered server-side, everything else page by page client-side.
//! - Goals, companies, opportunities, merges and records are not supported: such
//!   changes are reported as failed.

mod apply;
mod client;
mod types;

#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
mod fake_routes;
#[cfg(test)]
mod tests;

pub use client::{CAPABILITIES, GoHighLevel};
