//! The HTTP layer: routes, lenient body and path extractors, and Confluent-style error bodies.
//!
//! Every response, errors included, is JSON with the content type
//! `application/vnd.schemaregistry.v1+json`. Request bodies are parsed from the raw bytes
//! whatever their content type, because clients send `application/json`,
//! `application/vnd.schemaregistry.v1+json` or nothing at all.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RegistryState;
use super::error::RegistryError;
use super::schema::ParsedSchema;
use super::types::{CompatibilityLevel, VersionSelector};

/// The content type of every response.
pub(super) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Builds the router; see [`super::router`].
pub(super) fn routes(state: RegistryState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_against_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_against_version),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// An error response: `{"error_code": N, "message": "..."}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        let (status, code) = err.status_and_code();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if err.is_internal() {
            // Details stay in the log; the client gets Confluent's generic store message.
            tracing::error!(error = ?err, report = %crate::report(&err), "Schema registry request failed.");
            return Self::new(status, code, "Error in the backend data store");
        }
        Self::new(status, code, crate::report(&err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(
            self.status,
            &json!({ "error_code": self.code, "message": self.message }),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

/// Serializes `body` as a registry response.
fn reply(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response(),
        Err(err) => {
            tracing::error!(error = ?err, "Could not encode a schema registry response.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, CONTENT_TYPE)],
                r#"{"error_code":500,"message":"Internal Server Error"}"#,
            )
                .into_response()
        }
    }
}

fn ok(body: &impl Serialize) -> ApiResult {
    Ok(reply(StatusCode::OK, body))
}

/// Path parameters whose rejection is a registry error body instead of axum's plain text.
struct PathParams<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                u32::from(rejection.status().as_u16()),
                rejection.body_text(),
            )),
        }
    }
}

/// A JSON request body, parsed from the bytes whatever the content type.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            ApiError::new(
                rejection.status(),
                u32::from(rejection.status().as_u16()),
                rejection.body_text(),
            )
        })?;
        serde_json::from_slice(&bytes).map(Self).map_err(|err| {
            RegistryError::MalformedRequest {
                reason: format!("invalid JSON body: {}", crate::report(&err)),
            }
            .into()
        })
    }
}

/// Whether the query string has `name=true` (ASCII case ignored).
fn flag(query: Option<&str>, name: &str) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .any(|(k, v)| k == name && v.eq_ignore_ascii_case("true"))
}

fn version_selector(raw: &str) -> Result<VersionSelector, ApiError> {
    Ok(raw.parse()?)
}

fn schema_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse().map_err(|_| {
        RegistryError::MalformedRequest {
            reason: format!("schema id {raw:?} is not a non-negative integer"),
        }
        .into()
    })
}

/// A body of `POST /subjects/{subject}[/versions]` and of the compatibility endpoints.
///
/// Unknown fields (`metadata`, `ruleSet`, `id`, `version`, …) are accepted and ignored, as
/// newer clients send them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<serde_json::Value>>,
}

impl SchemaRequest {
    /// Checks the type and references, then parses the schema.
    fn into_parsed(self) -> Result<ParsedSchema, RegistryError> {
        if let Some(schema_type) = self.schema_type
            && !schema_type.eq_ignore_ascii_case("AVRO")
        {
            return Err(RegistryError::UnsupportedSchemaType { schema_type });
        }
        if self.references.is_some_and(|r| !r.is_empty()) {
            return Err(RegistryError::ReferencesUnsupported);
        }
        ParsedSchema::parse(&self.schema)
    }
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

async fn root() -> ApiResult {
    ok(&json!({}))
}

async fn schema_types() -> ApiResult {
    ok(&["AVRO"])
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    )
}

async fn schema_by_id(
    State(state): State<RegistryState>,
    PathParams(id): PathParams<String>,
) -> ApiResult {
    let id = schema_id(&id)?;
    let schema = state.read(|s| s.schema_by_id(id).map(str::to_owned))?;
    ok(&json!({ "schema": schema }))
}

async fn id_versions(
    State(state): State<RegistryState>,
    PathParams(id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let id = schema_id(&id)?;
    let deleted = flag(query.as_deref(), "deleted");
    let usages = state.read(|s| s.usages_of_id(id, deleted))?;
    let body: Vec<_> = usages
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    ok(&body)
}

async fn id_subjects(
    State(state): State<RegistryState>,
    PathParams(id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let id = schema_id(&id)?;
    let deleted = flag(query.as_deref(), "deleted");
    let mut subjects: Vec<String> = state
        .read(|s| s.usages_of_id(id, deleted))?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    ok(&subjects)
}

async fn list_subjects(State(state): State<RegistryState>, RawQuery(query): RawQuery) -> ApiResult {
    let deleted = flag(query.as_deref(), "deleted");
    ok(&state.read(|s| s.subjects(deleted)))
}

async fn list_versions(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let deleted = flag(query.as_deref(), "deleted");
    ok(&state.read(|s| s.versions(&subject, deleted))?)
}

async fn get_version(
    State(state): State<RegistryState>,
    PathParams((subject, version)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let selector = version_selector(&version)?;
    let deleted = flag(query.as_deref(), "deleted");
    ok(&state.read(|s| s.version(&subject, selector, deleted))?)
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema itself, unwrapped.
async fn get_version_schema(
    State(state): State<RegistryState>,
    PathParams((subject, version)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let selector = version_selector(&version)?;
    let deleted = flag(query.as_deref(), "deleted");
    let found = state.read(|s| s.version(&subject, selector, deleted))?;
    let schema: serde_json::Value =
        serde_json::from_str(&found.schema).map_err(|err| RegistryError::Internal {
            reason: format!("stored schema is not JSON: {}", crate::report(&err)),
        })?;
    ok(&schema)
}

async fn register(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    Body(request): Body<SchemaRequest>,
) -> ApiResult {
    let candidate = request.into_parsed()?;
    let id = state
        .write(move |s| s.register_parsed(&subject, candidate))
        .await?;
    ok(&json!({ "id": id }))
}

async fn lookup(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    Body(request): Body<SchemaRequest>,
) -> ApiResult {
    let candidate = request.into_parsed()?;
    ok(&state.read(|s| s.lookup(&subject, &candidate))?)
}

async fn delete_subject(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let permanent = flag(query.as_deref(), "permanent");
    let versions = state
        .write(move |s| s.delete_subject(&subject, permanent))
        .await?;
    ok(&versions)
}

async fn delete_version(
    State(state): State<RegistryState>,
    PathParams((subject, version)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let selector = version_selector(&version)?;
    let permanent = flag(query.as_deref(), "permanent");
    let version = state
        .write(move |s| s.delete_version(&subject, selector, permanent))
        .await?;
    ok(&version)
}

fn compatibility_reply(messages: Vec<String>, verbose: bool) -> ApiResult {
    let is_compatible = messages.is_empty();
    if verbose {
        ok(&json!({ "is_compatible": is_compatible, "messages": messages }))
    } else {
        ok(&json!({ "is_compatible": is_compatible }))
    }
}

async fn check_against_all(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    RawQuery(query): RawQuery,
    Body(request): Body<SchemaRequest>,
) -> ApiResult {
    let candidate = request.into_parsed()?;
    let messages = state.read(|s| s.compatibility_problems(&subject, None, &candidate))?;
    compatibility_reply(messages, flag(query.as_deref(), "verbose"))
}

async fn check_against_version(
    State(state): State<RegistryState>,
    PathParams((subject, version)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
    Body(request): Body<SchemaRequest>,
) -> ApiResult {
    let selector = version_selector(&version)?;
    let candidate = request.into_parsed()?;
    let messages =
        state.read(|s| s.compatibility_problems(&subject, Some(selector), &candidate))?;
    compatibility_reply(messages, flag(query.as_deref(), "verbose"))
}

async fn get_global_config(State(state): State<RegistryState>) -> ApiResult {
    let level = state.read(|s| s.compatibility(None));
    ok(&json!({ "compatibilityLevel": level }))
}

async fn put_global_config(
    State(state): State<RegistryState>,
    Body(request): Body<ConfigRequest>,
) -> ApiResult {
    let level: CompatibilityLevel = request.compatibility.parse()?;
    state
        .write(move |s| s.set_compatibility(None, level))
        .await?;
    ok(&json!({ "compatibility": level }))
}

/// `GET /config/{subject}`: the subject's own level; with `defaultToGlobal=true`, the level in
/// force.
async fn get_subject_config(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let default_to_global = flag(query.as_deref(), "defaultToGlobal");
    let level = state.read(|s| {
        if default_to_global {
            Ok(s.compatibility(Some(&subject)))
        } else {
            s.subject_compatibility(&subject).ok_or_else(|| {
                RegistryError::SubjectCompatibilityNotConfigured {
                    subject: subject.clone(),
                }
            })
        }
    })?;
    ok(&json!({ "compatibilityLevel": level }))
}

async fn put_subject_config(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
    Body(request): Body<ConfigRequest>,
) -> ApiResult {
    let level: CompatibilityLevel = request.compatibility.parse()?;
    state
        .write(move |s| s.set_compatibility(Some(&subject), level))
        .await?;
    ok(&json!({ "compatibility": level }))
}

async fn delete_subject_config(
    State(state): State<RegistryState>,
    PathParams(subject): PathParams<String>,
) -> ApiResult {
    let previous = state
        .write(move |s| s.delete_subject_compatibility(&subject))
        .await?;
    ok(&json!({ "compatibilityLevel": previous }))
}

#[cfg(test)]
mod unit_tests {
    use super::flag;

    #[test]
    fn flag_reads_only_exact_true_pairs() {
        assert!(flag(Some("deleted=true"), "deleted"));
        assert!(flag(Some("a=1&deleted=TRUE"), "deleted"));
        assert!(!flag(Some("deleted=false"), "deleted"));
        assert!(!flag(Some("undeleted=true"), "deleted"));
        assert!(!flag(None, "deleted"));
    }
}
