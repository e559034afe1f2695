//! `GET /v1/helpers`: every helper with its category, summary and example config.

use axum::Json;
use mfh_processors::helpers::HELPERS;
use serde::Serialize;

/// One helper in the listing.
#[derive(Debug, Serialize)]
pub struct HelperInfo {
    /// Name.
    pub name: &'static str,
    /// Category.
    pub category: &'static str,
    /// One sentence.
    pub summary: &'static str,
    /// A valid config.
    pub example_config: serde_json::Value,
}

/// Lists the helpers in registry order.
pub async fn list() -> Json<Vec<HelperInfo>> {
    Json(
        HELPERS
            .iter()
            .map(|h| HelperInfo {
                name: h.name(),
                category: h.category().as_str(),
                summary: h.summary(),
                example_config: serde_json::from_str(h.example_config()).unwrap_or_default(),
            })
            .collect(),
    )
}
