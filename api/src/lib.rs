//! mfh's HTTP API.
//!
//! # Layout
//! - [`app`] — the router over an [`AppState`]; the test seam.
//! - [`error`] — `ApiError`, answered as `application/problem+json`, and `AppJson`, whose
//!   rejections use the same format.
//! - [`auth`] — API-key authentication (keys are looked up by their hash), or a
//!   dashboard user's JWT ([`jwt`]).
//! - [`routes`] — executions, saved helpers and their run URLs, the helper-type catalog,
//!   explorer, account, connections, webhooks, health and metrics.
//! - [`explorer`] — DuckDB over the caller's own part of the lake.
//! - [`produce`] — producing records from handlers.

pub mod auth;
pub mod error;
pub mod explorer;
pub mod jwt;
pub mod produce;
pub mod routes;

use axum::Router;
use axum::routing::{delete, get, post};
use mfh_pipeline::avro::AvroSerde;
use mfh_pipeline::kafka::KafkaConfig;
use mfh_pipeline::metrics::Metrics;
use mfh_processors::connectors::Connectors;
use mfh_processors::http::HttpClient;
use mfh_processors::lake::Lake;
use mfh_processors::store::Store;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL callers and vendors reach the API at (run and webhook URLs are built from
    /// it); empty means `http://<listen>`.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Explorer: rows returned at most.
    #[serde(default = "default_rows")]
    pub explorer_max_rows: usize,
    /// Explorer: longest a query may run.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub explorer_timeout: Duration,
    /// Explorer: DuckDB memory limit per query, e.g. `512MB`.
    #[serde(default = "default_memory")]
    pub explorer_memory_limit: String,
    /// Explorer: queries run at once by this process (each may use the memory limit);
    /// more wait up to 2 s for a slot, then get 429.
    #[serde(default = "default_explorer_concurrent")]
    pub explorer_max_concurrent: usize,
    /// Explorer: bytes of returned values at most; the answer is cut (`truncated`) there.
    #[serde(default = "default_explorer_bytes")]
    pub explorer_max_bytes: usize,
    /// Largest request body accepted.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Dashboard sign-in: the identity provider's JWKS URL (Cognito:
    /// `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`); empty
    /// accepts API keys only.
    #[serde(default)]
    pub jwks_url: String,
    /// The `iss` a token must carry; empty skips the check.
    #[serde(default)]
    pub jwt_issuer: String,
    /// Accepted audiences (`aud`, or a Cognito access token's `client_id`); empty skips.
    #[serde(default)]
    pub jwt_audiences: Vec<String>,
    /// The claim naming the account.
    #[serde(default = "default_account_claim")]
    pub jwt_account_claim: String,
    /// How long fetched keys are used before they are fetched again.
    #[serde(with = "humantime_serde", default = "default_jwks_ttl")]
    pub jwks_ttl: Duration,
    /// A run-URL delivery identical to an earlier one of the same helper (same contact,
    /// same name/value pairs) within this window returns the first execution: CRMs
    /// retry deliveries they think failed.
    #[serde(with = "humantime_serde", default = "default_run_dedup_window")]
    pub run_dedup_window: Duration,
    /// Self-service accounts: sessions, one-time links and sign-in limits.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The built dashboard (`web/dist`), served at `/`; a missing directory serves a page
    /// saying how to build it.
    #[serde(default = "default_web_dir")]
    pub web_dir: std::path::PathBuf,
    /// Origins allowed to call the API from a browser (CORS), for a dashboard hosted
    /// elsewhere; empty (the default) allows none: the dashboard is same-origin.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
}

/// Sessions, one-time links and sign-in limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a sign-in lasts.
    #[serde(with = "humantime_serde", default = "default_session_ttl")]
    pub session_ttl: Duration,
    /// Whether signing in needs the address verified by the emailed link first.
    #[serde(default = "default_true")]
    pub require_verified_email: bool,
    /// How long a verification link works.
    #[serde(with = "humantime_serde", default = "default_verify_ttl")]
    pub verify_link_ttl: Duration,
    /// How long a password-reset link works.
    #[serde(with = "humantime_serde", default = "default_reset_ttl")]
    pub reset_link_ttl: Duration,
    /// How long an invitation link works.
    #[serde(with = "humantime_serde", default = "default_invite_ttl")]
    pub invite_link_ttl: Duration,
    /// Sign-in, reset and resend attempts per email address per minute (also the burst).
    #[serde(default = "default_attempts_per_email")]
    pub attempts_per_email_per_minute: u32,
    /// Sign-up, sign-in, reset and resend attempts per client IP per minute.
    #[serde(default = "default_attempts_per_ip")]
    pub attempts_per_ip_per_minute: u32,
}

const fn default_true() -> bool {
    true
}
fn default_session_ttl() -> Duration {
    Duration::from_secs(14 * 24 * 3600)
}
fn default_verify_ttl() -> Duration {
    Duration::from_secs(48 * 3600)
}
fn default_reset_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_invite_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
const fn default_attempts_per_email() -> u32 {
    5
}
const fn default_attempts_per_ip() -> u32 {
    30
}
fn default_web_dir() -> std::path::PathBuf {
    "web/dist".into()
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: default_session_ttl(),
            require_verified_email: true,
            verify_link_ttl: default_verify_ttl(),
            reset_link_ttl: default_reset_ttl(),
            invite_link_ttl: default_invite_ttl(),
            attempts_per_email_per_minute: default_attempts_per_email(),
            attempts_per_ip_per_minute: default_attempts_per_ip(),
        }
    }
}

fn default_run_dedup_window() -> Duration {
    Duration::from_secs(600)
}

fn default_account_claim() -> String {
    "custom:account_id".into()
}
fn default_jwks_ttl() -> Duration {
    Duration::from_secs(600)
}

fn default_public_url() -> String {
    String::new()
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
const fn default_rows() -> usize {
    10_000
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
const fn default_explorer_concurrent() -> usize {
    2
}
const fn default_explorer_bytes() -> usize {
    16 << 20
}
fn default_memory() -> String {
    "512MB".into()
}
const fn default_body() -> usize {
    1 << 20
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            explorer_max_rows: default_rows(),
            explorer_timeout: default_timeout(),
            explorer_memory_limit: default_memory(),
            explorer_max_concurrent: default_explorer_concurrent(),
            explorer_max_bytes: default_explorer_bytes(),
            max_body_bytes: default_body(),
            public_url: default_public_url(),
            jwks_url: String::new(),
            jwt_issuer: String::new(),
            jwt_audiences: Vec::new(),
            jwt_account_claim: default_account_claim(),
            jwks_ttl: default_jwks_ttl(),
            run_dedup_window: default_run_dedup_window(),
            auth: AuthConfig::default(),
            web_dir: default_web_dir(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Everything the handlers use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// API settings.
    pub cfg: Arc<ApiConfig>,
    /// Broker settings (topic names).
    pub kafka: KafkaConfig,
    /// Registry-aware codec.
    pub avro: AvroSerde,
    /// Producer of execution requests.
    pub producer: FutureProducer,
    /// DynamoDB tables.
    pub store: Store,
    /// CRM connectors, for dry runs.
    pub connectors: Connectors,
    /// Outbound HTTP, for dry runs of helpers that call out.
    pub http: HttpClient,
    /// The lake, for the explorer.
    pub lake: Lake,
    /// The explorer's query slots (`explorer_max_concurrent`).
    pub explorer_slots: Arc<tokio::sync::Semaphore>,
    /// Metrics.
    pub metrics: Metrics,
    /// Seals the requests this API admitted and counted, so the router does not again.
    pub seal: mfh_processors::admission::Seal,
    /// Max chain depth (validation is shared with the router).
    pub max_chain_depth: i32,
    /// Third-party base URLs (dry runs of integration helpers read them).
    pub vendors: mfh_processors::helpers::Vendors,
    /// Platform file storage.
    pub files: std::sync::Arc<dyn object_store::ObjectStore>,
    /// Billing settings: Stripe webhook secrets.
    pub billing: Arc<mfh_processors::billing::BillingConfig>,
    /// Dashboard JWT verification; `None` when `api.jwks_url` is empty.
    pub jwks: Option<Arc<jwt::Jwks>>,
    /// Stripe Checkout and Billing Portal; `None` when `billing.stripe_secret_key` is
    /// empty (both routes answer 503).
    pub stripe: Option<Arc<mfh_processors::billing::checkout::StripeBilling>>,
    /// Sign-in, sign-up and reset attempt limits.
    pub auth_limits: Arc<routes::auth::limits::AuthLimits>,
    /// The demo contacts a new account's sandbox CRM is seeded with; `None` seeds none.
    pub sandbox_seed: Option<Arc<mfh_processors::connectors::sandbox::SeedFile>>,
}

/// The API's router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.cfg.max_body_bytes;
    let v1 = Router::new()
        .route(
            "/executions",
            post(routes::executions::create).get(routes::executions::list),
        )
        .route("/executions/{id}", get(routes::executions::get_one))
        .route("/executions/{id}/retry", post(routes::executions::retry))
        .route(
            "/helpers",
            post(routes::helpers::create).get(routes::helpers::list),
        )
        .route(
            "/helpers/{id}",
            get(routes::helpers::get_one)
                .patch(routes::helpers::patch)
                .delete(routes::helpers::delete),
        )
        .route("/helpers/{id}/copy", post(routes::helpers::copy))
        .route(
            "/helpers/{id}/rotate-url",
            post(routes::helpers::rotate_url),
        )
        .route("/explorer/query", post(routes::explorer::query))
        .route(
            "/account",
            get(routes::account::get_account).patch(routes::account::patch_account),
        )
        .route(
            "/api-keys",
            post(routes::account::create_key).get(routes::account::list_keys),
        )
        .route("/api-keys/{key_id}", delete(routes::account::revoke_key))
        .route("/team", get(routes::account::list_team))
        .route("/team/invites", post(routes::account::invite))
        .route(
            "/team/{email}",
            axum::routing::patch(routes::account::set_member_role)
                .delete(routes::account::remove_member),
        )
        .route("/billing/checkout", post(routes::billing::checkout))
        .route("/billing/portal", post(routes::billing::portal))
        .route(
            "/connections",
            post(routes::connections::create).get(routes::connections::list),
        )
        .route(
            "/connections/{id}",
            get(routes::connections::get_one).delete(routes::connections::delete),
        )
        .route(
            "/connections/{id}/health",
            post(routes::connections::health),
        )
        .route(
            "/connections/{id}/sync",
            post(routes::connections::request_sync).get(routes::connections::sync_progress),
        )
        .route(
            "/connections/{id}/oauth/start",
            post(routes::connections::oauth_start),
        )
        .route(
            "/triggers",
            post(routes::triggers::create).get(routes::triggers::list),
        )
        .route("/triggers/{id}", delete(routes::triggers::delete))
        .route(
            "/account/notification-preferences",
            get(routes::account::get_prefs).put(routes::account::put_prefs),
        )
        .route("/auth/me", get(routes::auth::me))
        .route("/auth/logout", post(routes::auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        // Signing up and in, and one-time links: no credential yet.
        .route("/auth/register", post(routes::auth::register))
        .route("/auth/verify", post(routes::auth::verify))
        .route(
            "/auth/verify/resend",
            post(routes::auth::resend_verification),
        )
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/password-reset", post(routes::auth::reset::request))
        .route(
            "/auth/password-reset/confirm",
            post(routes::auth::reset::confirm),
        )
        .route("/auth/invites/{token}", get(routes::auth::invites::show))
        .route("/auth/invites/accept", post(routes::auth::invites::accept))
        .route("/helper-types", get(routes::helper_types::list))
        .route("/helper-types/{name}", get(routes::helper_types::get_one))
        // A CRM automation calls a saved helper's URL; its token authenticates.
        .route("/run/{token}", post(routes::run::run).get(routes::run::run))
        // Stripe signs its deliveries; they carry no API key.
        .route("/webhooks/stripe", post(routes::stripe::receive))
        // CRMs sign their deliveries or carry the connection's webhook token.
        .route(
            "/webhooks/crm/{platform}/{connection_id}",
            post(routes::crm_webhooks::receive),
        )
        // The vendor redirects the user's browser here; the one-time state authenticates.
        .route("/oauth/callback", get(routes::connections::oauth_callback));
    let cors = routes::web::cors(&state.cfg.cors_allowed_origins);
    let router = Router::new()
        .nest("/v1", v1.fallback(routes::not_found))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .fallback(routes::web::dashboard)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state);
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}
