//! Route handlers, one module per resource.

pub mod account;
pub mod auth;
pub mod billing;
pub mod connections;
pub mod crm_webhooks;
pub mod executions;
pub mod explorer;
pub mod health;
pub mod helper_types;
pub mod helpers;
pub mod platforms;
pub mod run;
pub mod stripe;
pub mod triggers;
pub mod web;

use crate::error::ApiError;

/// Unknown paths answer a problem body too.
pub async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!("route {}", uri.path()))
}

/// A known path with the wrong method answers a problem body too.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
