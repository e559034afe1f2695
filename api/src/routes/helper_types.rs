//! The helper catalog: `GET /v1/helper-types` lists every helper type with its
//! category, summary, example config, outputs, required CRM capabilities and the JSON
//! Schema of its config; `GET /v1/helper-types/{name}` shows one.

use crate::error::{ApiError, AppPath};
use axum::Json;
use mfh_processors::helpers::{DynHelper, HELPERS};
use serde::Serialize;

/// One helper in the listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HelperInfo {
    /// Name.
    #[schema(value_type = String)]
    pub name: &'static str,
    /// Category.
    #[schema(value_type = String)]
    pub category: &'static str,
    /// One sentence.
    #[schema(value_type = String)]
    pub summary: &'static str,
    /// A valid config.
    pub example_config: serde_json::Value,
    /// Output keys.
    #[schema(value_type = Vec<String>)]
    pub outputs: &'static [&'static str],
    /// CRM capabilities the helper needs.
    #[schema(value_type = Vec<String>)]
    pub requires: Vec<&'static str>,
    /// JSON Schema of the config.
    pub config_schema: serde_json::Value,
}

fn info(h: &dyn DynHelper) -> HelperInfo {
    HelperInfo {
        name: h.name(),
        category: h.category().as_str(),
        summary: h.summary(),
        example_config: serde_json::from_str(h.example_config()).unwrap_or_default(),
        outputs: h.outputs(),
        requires: h.requires().iter().map(|c| c.as_str()).collect(),
        config_schema: h.config_schema(),
    }
}

/// The listing of every helper type in registry order.
#[must_use]
pub fn infos() -> Vec<HelperInfo> {
    HELPERS.iter().map(|h| info(*h)).collect()
}

/// Lists the helper types in registry order.
#[utoipa::path(
    get,
    operation_id = "helper_types_list",
    path = "/helper-types",
    tag = "helper-types",
    responses(
        (status = 200, description = "Every helper type in registry order, with its config schema", body = Vec<HelperInfo>),
    )
)]
pub async fn list() -> Json<Vec<HelperInfo>> {
    Json(infos())
}

/// One helper type.
///
/// # Errors
/// 404 for an unknown name.
#[utoipa::path(
    get,
    operation_id = "helper_types_get_one",
    path = "/helper-types/{name}",
    tag = "helper-types",
    params(("name" = String, Path, description = "Helper type, e.g. tag_it")),
    responses(
        (status = 200, description = "The helper type", body = HelperInfo),
        (status = 404, description = "No helper type of that name", body = crate::openapi::Problem),
    )
)]
pub async fn get_one(AppPath(name): AppPath<String>) -> Result<Json<HelperInfo>, ApiError> {
    mfh_processors::helpers::find(&name)
        .map(|h| Json(info(h)))
        .ok_or_else(|| ApiError::NotFound(format!("helper type {name}")))
}
