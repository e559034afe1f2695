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
pub mod openapi;
pub mod produce;
pub mod routes;

use axum::Router;
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
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The routes that need a credential (API key, bearer token or session) and those that
/// carry their own proof or none, each registered with its description.
fn v1_routes() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    use routes::{
        account, auth as signin, billing, connections, crm_webhooks, executions, explorer,
        helper_types, helpers, platforms, run, stripe, triggers,
    };
    let authed = OpenApiRouter::new()
        .routes(routes!(executions::create, executions::list))
        .routes(routes!(executions::get_one))
        .routes(routes!(executions::retry))
        .routes(routes!(helpers::create, helpers::list))
        .routes(routes!(helpers::get_one, helpers::patch, helpers::delete))
        .routes(routes!(helpers::copy))
        .routes(routes!(helpers::rotate_url))
        .routes(routes!(explorer::query))
        .routes(routes!(account::get_account, account::patch_account))
        .routes(routes!(account::keys::create_key, account::keys::list_keys))
        .routes(routes!(account::keys::revoke_key))
        .routes(routes!(account::team::list_team))
        .routes(routes!(account::team::invite))
        .routes(routes!(
            account::team::set_member_role,
            account::team::remove_member
        ))
        .routes(routes!(
            account::prefs::get_prefs,
            account::prefs::put_prefs
        ))
        .routes(routes!(billing::checkout))
        .routes(routes!(billing::portal))
        .routes(routes!(connections::create, connections::list))
        .routes(routes!(connections::get_one, connections::delete))
        .routes(routes!(connections::health))
        .routes(routes!(connections::tags))
        .routes(routes!(
            connections::request_sync,
            connections::sync_progress
        ))
        .routes(routes!(connections::oauth_start))
        .routes(routes!(triggers::create, triggers::list))
        .routes(routes!(triggers::delete))
        .routes(routes!(signin::me))
        .routes(routes!(signin::logout));
    let public = OpenApiRouter::new()
        // Signing up and in, and one-time links: no credential yet.
        .routes(routes!(signin::register))
        .routes(routes!(signin::verify))
        .routes(routes!(signin::resend_verification))
        .routes(routes!(signin::login))
        .routes(routes!(signin::reset::request))
        .routes(routes!(signin::reset::confirm))
        .routes(routes!(signin::invites::show))
        .routes(routes!(signin::invites::accept))
        .routes(routes!(helper_types::list))
        .routes(routes!(helper_types::get_one))
        .routes(routes!(platforms::list))
        // A CRM automation calls a saved helper's URL; its token authenticates.
        .routes(routes!(run::run))
        // Stripe signs its deliveries; they carry no API key.
        .routes(routes!(stripe::receive))
        // CRMs sign their deliveries or carry the connection's webhook token.
        .routes(routes!(crm_webhooks::receive))
        .routes(routes!(crm_webhooks::receive_app))
        // The vendor redirects the user's browser here; the one-time state authenticates.
        .routes(routes!(connections::oauth_callback))
        .routes(routes!(openapi::serve));
    (authed, public)
}

fn operations_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
}

/// The OpenAPI 3.1 document of every route [`app`] serves.
#[must_use]
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let (authed, public) = v1_routes();
    let mut v1 = openapi::secure(authed.into_openapi());
    v1.merge(public.into_openapi());
    let mut doc = openapi::Fixed::openapi();
    doc = doc.nest("/v1", v1);
    doc.merge(operations_routes().into_openapi());
    openapi::finish(doc)
}

/// The API's router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.cfg.max_body_bytes;
    let (authed, public) = v1_routes();
    let authed = Router::from(authed).route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_api_key,
    ));
    let v1 = authed.merge(Router::from(public));
    let cors = routes::web::cors(&state.cfg.cors_allowed_origins);
    let router = Router::new()
        .nest("/v1", v1.fallback(routes::not_found))
        .merge(Router::from(operations_routes()))
        .fallback(routes::web::dashboard)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state);
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}
