//! From a stored connection to a working connector: one line per vendor in [`build`].

use super::config::{Platform, VendorConfig};
use super::vendor::VendorHttp;
use super::{CrmConnector, CrmError};
use super::{activecampaign, gohighlevel, hubspot, keap, ontraport};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A customer's connection to one CRM account (its secrets live apart, encrypted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The owning mfh account.
    pub account_id: String,
    /// `conn_…`, unique across accounts.
    pub connection_id: String,
    /// The CRM.
    pub platform: Platform,
    /// A display name.
    pub name: String,
    /// Vendor settings that are not secret: ActiveCampaign's `api_url`, GoHighLevel's
    /// `location_id`, HubSpot's `tag_property`.
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// `pending_authorization`, `active`, or `error`.
    pub status: String,
    /// When it was created, Unix milliseconds.
    pub created_at: i64,
}

impl Connection {
    /// A text setting.
    #[must_use]
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// A required text setting.
    ///
    /// # Errors
    /// [`CrmError::Invalid`] naming the missing setting.
    pub fn required(&self, key: &str) -> Result<&str, CrmError> {
        self.setting(key).ok_or_else(|| CrmError::Invalid {
            field: format!("settings.{key}"),
            reason: format!("a {} connection needs it", self.platform.as_str()),
        })
    }
}

/// What a vendor connector is built from.
#[derive(Debug, Clone)]
pub struct VendorContext {
    /// Requests to the vendor's API, authenticated and rate limited.
    pub http: VendorHttp,
    /// The connection.
    pub connection: Connection,
    /// The vendor's operator settings.
    pub vendor: VendorConfig,
}

/// The API base of a connection: the operator's, except ActiveCampaign's, which is the
/// customer's own account URL.
///
/// # Errors
/// [`CrmError::Invalid`] when a needed setting is missing.
pub fn api_base(connection: &Connection, vendor: &VendorConfig) -> Result<String, CrmError> {
    match connection.platform {
        Platform::Activecampaign => {
            let url = connection.required("api_url")?.trim_end_matches('/');
            Ok(if url.ends_with("/api/3") {
                url.to_owned()
            } else {
                format!("{url}/api/3")
            })
        }
        _ => Ok(vendor.api_base.trim_end_matches('/').to_owned()),
    }
}

/// Settings each platform requires, checked when the connection is created.
#[must_use]
pub fn required_settings(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Activecampaign => &["api_url"],
        Platform::Gohighlevel => &["location_id"],
        _ => &[],
    }
}

/// What the platform's connector supports, without building one.
#[must_use]
pub fn capabilities(platform: Platform) -> &'static [super::Capability] {
    match platform {
        Platform::Keap => keap::CAPABILITIES,
        Platform::Gohighlevel => gohighlevel::CAPABILITIES,
        Platform::Activecampaign => activecampaign::CAPABILITIES,
        Platform::Ontraport => ontraport::CAPABILITIES,
        Platform::Hubspot => hubspot::CAPABILITIES,
    }
}

/// How a connection to the platform authenticates: OAuth where the vendor offers it,
/// and the credentials `POST /v1/connections` takes directly.
#[must_use]
pub fn auth_methods(platform: Platform) -> &'static [&'static str] {
    match platform {
        // Keap: a personal access token or service account key (X-Keap-API-Key).
        Platform::Keap => &["oauth", "token"],
        // GoHighLevel: a private integration token; HubSpot: a private app token.
        Platform::Gohighlevel | Platform::Hubspot => &["oauth", "token"],
        Platform::Activecampaign => &["api_token"],
        Platform::Ontraport => &["api_key_and_app_id"],
    }
}

/// Builds the connector of `ctx.connection`.
///
/// # Errors
/// [`CrmError::Invalid`] when the connection's settings do not suit the vendor.
pub fn build(ctx: VendorContext) -> Result<Arc<dyn CrmConnector>, CrmError> {
    Ok(match ctx.connection.platform {
        Platform::Keap => Arc::new(keap::Keap::new(ctx)?),
        Platform::Gohighlevel => Arc::new(gohighlevel::GoHighLevel::new(ctx)?),
        Platform::Activecampaign => Arc::new(activecampaign::ActiveCampaign::new(ctx)?),
        Platform::Ontraport => Arc::new(ontraport::Ontraport::new(ctx)?),
        Platform::Hubspot => Arc::new(hubspot::HubSpot::new(ctx)?),
    })
}
