//! The CRM catalog: `GET /v1/platforms` lists each CRM mfh connects to with how it
//! authenticates, the settings a connection needs, what its connector supports and the
//! helper types that run on it (those whose required capabilities it has).

use axum::Json;
use mfh_processors::connectors::config::Platform;
use mfh_processors::connectors::registry::{auth_methods, capabilities, required_settings};
use mfh_processors::helpers::HELPERS;
use serde::Serialize;

/// One CRM.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformInfo {
    /// keap, gohighlevel, activecampaign, ontraport or hubspot.
    #[schema(value_type = String)]
    pub platform: &'static str,
    /// How a connection authenticates: `oauth`, `token`, `api_token`, `api_key_and_app_id`.
    #[schema(value_type = Vec<String>)]
    pub auth: &'static [&'static str],
    /// Settings a connection must have.
    #[schema(value_type = Vec<String>)]
    pub settings: &'static [&'static str],
    /// What the connector supports.
    #[schema(value_type = Vec<String>)]
    pub capabilities: Vec<&'static str>,
    /// Names of the helper types that run on it, in registry order.
    #[schema(value_type = Vec<String>)]
    pub helper_types: Vec<&'static str>,
}

/// `GET /v1/platforms`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformList {
    /// Every CRM.
    pub platforms: Vec<PlatformInfo>,
}

/// The catalog, computed from the connectors' and helpers' own declarations.
#[must_use]
pub fn catalog() -> PlatformList {
    let platforms = Platform::ALL
        .into_iter()
        .map(|p| {
            let caps = capabilities(p);
            PlatformInfo {
                platform: p.as_str(),
                auth: auth_methods(p),
                settings: required_settings(p),
                capabilities: caps.iter().map(|c| c.as_str()).collect(),
                helper_types: HELPERS
                    .iter()
                    .filter(|h| h.requires().iter().all(|r| caps.contains(r)))
                    .map(|h| h.name())
                    .collect(),
            }
        })
        .collect();
    PlatformList { platforms }
}

/// Lists the CRMs with their auth, settings, capabilities and runnable helper types.
#[utoipa::path(
    get,
    operation_id = "platforms_list",
    path = "/platforms",
    tag = "platforms",
    responses(
        (status = 200, description = "Every CRM mfh connects to, with the helper types that run on it", body = PlatformList),
    )
)]
pub async fn list() -> Json<PlatformList> {
    Json(catalog())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keap_runs_what_its_connector_supports() {
        let c = catalog();
        assert_eq!(c.platforms.len(), 5);
        let keap = c.platforms.iter().find(|p| p.platform == "keap").unwrap();
        // Helpers that the Keap connector now serves.
        for h in ["action_it", "merge_it", "stage_it", "goal_it"] {
            assert!(
                keap.helper_types.contains(&h),
                "{h}: {:?}",
                keap.helper_types
            );
        }
        let ghl = c
            .platforms
            .iter()
            .find(|p| p.platform == "gohighlevel")
            .unwrap();
        assert_eq!(ghl.settings, ["location_id"]);
        assert!(!ghl.helper_types.contains(&"merge_it"));
    }
}
