//! What every vendor connector shares: the connection's credentials (with OAuth token
//! refresh before expiry), a per-connection rate limiter sized from the vendor's
//! published limits, and one request function that sends through the shared
//! [`HttpClient`] and maps the vendor's status codes to [`CrmError`]s.

use super::CrmError;
use crate::http::{HttpClient, HttpError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A connection's secret credentials, stored encrypted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// A bearer token that does not expire by itself: Keap personal access token or
    /// service account key, GoHighLevel private integration token, HubSpot private-app
    /// token.
    Bearer {
        /// The token.
        token: String,
    },
    /// A Keap personal access token or service account key, sent as `X-Keap-API-Key`
    /// (the form Keap documents for them).
    KeapApiKey {
        /// The key.
        key: String,
    },
    /// ActiveCampaign's `Api-Token` header.
    ApiToken {
        /// The token.
        token: String,
    },
    /// Ontraport's `Api-Key` and `Api-Appid` headers.
    ApiKeyAndAppId {
        /// The key.
        api_key: String,
        /// The app id.
        app_id: String,
    },
    /// OAuth2 tokens from the authorization-code flow.
    OAuth {
        /// The access token.
        access_token: String,
        /// The refresh token.
        refresh_token: String,
        /// When the access token expires, Unix milliseconds.
        expires_at: i64,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Bearer { .. } => "bearer",
            Self::KeapApiKey { .. } => "keap_api_key",
            Self::ApiToken { .. } => "api_token",
            Self::ApiKeyAndAppId { .. } => "api_key_and_app_id",
            Self::OAuth { .. } => "oauth",
        };
        write!(f, "Credentials({kind}, redacted)")
    }
}

impl Credentials {
    /// The headers that authenticate a request.
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Bearer { token } => vec![("authorization", format!("Bearer {token}"))],
            Self::OAuth { access_token, .. } => {
                vec![("authorization", format!("Bearer {access_token}"))]
            }
            Self::KeapApiKey { key } => vec![("x-keap-api-key", key.clone())],
            Self::ApiToken { token } => vec![("api-token", token.clone())],
            Self::ApiKeyAndAppId { api_key, app_id } => {
                vec![("api-key", api_key.clone()), ("api-appid", app_id.clone())]
            }
        }
    }
}

/// Where a connection's credentials are kept; refreshed OAuth tokens are written back
/// with a version check so two processes refreshing at once keep one token pair.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The current credentials and their version.
    ///
    /// # Errors
    /// [`CrmError::Auth`] when the connection has none, [`CrmError::Unavailable`] when the
    /// store cannot be read.
    async fn load(&self) -> Result<(Credentials, i64), CrmError>;
    /// Replaces the credentials if they are still at `version`; `false` when another
    /// writer got there first.
    ///
    /// # Errors
    /// [`CrmError::Unavailable`] when the store cannot be written.
    async fn save(&self, creds: &Credentials, version: i64) -> Result<bool, CrmError>;
}

/// Credentials held in memory, for unit tests and one-off calls.
#[derive(Debug)]
pub struct MemoryCredentials(Mutex<(Credentials, i64)>);

impl MemoryCredentials {
    /// Holds `creds` at version 1.
    #[must_use]
    pub fn new(creds: Credentials) -> Self {
        Self(Mutex::new((creds, 1)))
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentials {
    async fn load(&self) -> Result<(Credentials, i64), CrmError> {
        Ok(self.0.lock().map_err(|_| poisoned())?.clone())
    }
    async fn save(&self, creds: &Credentials, version: i64) -> Result<bool, CrmError> {
        let mut g = self.0.lock().map_err(|_| poisoned())?;
        if g.1 != version {
            return Ok(false);
        }
        *g = (creds.clone(), version + 1);
        Ok(true)
    }
}

fn poisoned() -> CrmError {
    CrmError::Unavailable {
        message: "credential lock poisoned".into(),
    }
}

/// The OAuth client of one vendor, for refreshing tokens.
#[derive(Debug, Clone, Default)]
pub struct OAuthClient {
    /// The token endpoint.
    pub token_url: String,
    /// The app's client id.
    pub client_id: String,
    /// Whether a refresh sends the client credentials as `Authorization: Basic` (Keap)
    /// instead of in the form body.
    pub refresh_basic_auth: bool,
    /// The app's client secret.
    pub client_secret: String,
}

/// Tokens from a token endpoint. HubSpot's reference shows its token responses both in
/// snake_case and in camelCase (`accessToken`, `expiresIn`), so both are read.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    #[serde(alias = "accessToken")]
    pub access_token: String,
    /// The refresh token; some vendors rotate it, some keep the old one.
    #[serde(default, alias = "refreshToken")]
    pub refresh_token: Option<String>,
    /// Lifetime in seconds.
    #[serde(default, alias = "expiresIn")]
    pub expires_in: Option<i64>,
    /// GoHighLevel: the location the token is for (GHL-docs `apps/oauth.json`
    /// GetAccessCodeSuccessfulResponseDto), which the user picked at chooselocation.
    #[serde(default, rename = "locationId")]
    pub location_id: Option<String>,
}

impl OAuthClient {
    /// Posts a form to the token endpoint (`authorization_code` or `refresh_token`
    /// grant) with the client credentials in the body, or for a refresh with
    /// [`Self::refresh_basic_auth`] in an `Authorization: Basic` header.
    ///
    /// # Errors
    /// [`CrmError::Auth`] when the vendor refuses the grant, others for transport.
    pub async fn token(
        &self,
        http: &HttpClient,
        grant: &[(&str, &str)],
    ) -> Result<TokenResponse, CrmError> {
        let mut form: Vec<(String, String)> = grant
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let basic = self.refresh_basic_auth
            && grant
                .iter()
                .any(|(k, v)| *k == "grant_type" && *v == "refresh_token");
        if !basic {
            form.push(("client_id".into(), self.client_id.clone()));
            form.push(("client_secret".into(), self.client_secret.clone()));
        }
        let resp = http
            .send(reqwest::Method::POST, &self.token_url, |r| {
                let r = if basic {
                    r.basic_auth(&self.client_id, Some(&self.client_secret))
                } else {
                    r
                };
                form_body(r, &form)
            })
            .await
            .map_err(|e| match e {
                HttpError::Status { status, body, .. } if (400..500).contains(&status) => {
                    CrmError::Auth(format!(
                        "token endpoint refused the grant ({status}): {body}"
                    ))
                }
                other => map_http_error(other, "token"),
            })?;
        serde_json::from_slice(&resp.body)
            .map_err(|e| CrmError::Auth(format!("token endpoint answered unreadable JSON: {e}")))
    }

    /// Credentials from a token response; `previous_refresh` is kept when the vendor
    /// does not rotate refresh tokens.
    #[must_use]
    pub fn credentials(t: TokenResponse, previous_refresh: &str, now_ms: i64) -> Credentials {
        Credentials::OAuth {
            access_token: t.access_token,
            refresh_token: t
                .refresh_token
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| previous_refresh.to_owned()),
            // The lifetime is the vendor's number: a huge one means "does not expire soon",
            // never an overflow.
            expires_at: now_ms
                .saturating_add(t.expires_in.unwrap_or(3600).max(0).saturating_mul(1000)),
        }
    }
}

/// How far ahead of expiry an access token is refreshed.
const REFRESH_AHEAD_MS: i64 = 120_000;

/// A connection's credentials in use: cached, refreshed before expiry.
pub struct Auth {
    store: Arc<dyn CredentialStore>,
    oauth: Option<OAuthClient>,
    cached: tokio::sync::Mutex<Option<(Credentials, i64)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Credentials from `store`, refreshed through `oauth` when they are OAuth tokens.
    #[must_use]
    pub fn new(store: Arc<dyn CredentialStore>, oauth: Option<OAuthClient>) -> Self {
        Self {
            store,
            oauth,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The headers of a request, refreshing an access token that expires soon (or at
    /// once with `force`, after the vendor answered 401).
    ///
    /// # Errors
    /// [`CrmError::Auth`] when there are no usable credentials.
    pub async fn headers(
        &self,
        http: &HttpClient,
        force: bool,
    ) -> Result<Vec<(&'static str, String)>, CrmError> {
        let mut cached = self.cached.lock().await;
        let (creds, version) = match cached.take() {
            Some(c) if !force => c,
            _ => self.store.load().await?,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let fresh = match &creds {
            Credentials::OAuth {
                refresh_token,
                expires_at,
                ..
            } if force || *expires_at - REFRESH_AHEAD_MS <= now => {
                self.refresh(http, refresh_token, version, now).await?
            }
            _ => (creds, version),
        };
        let headers = fresh.0.headers();
        *cached = Some(fresh);
        Ok(headers)
    }

    /// Whether the credentials last loaded are OAuth tokens.
    pub async fn uses_oauth(&self) -> bool {
        matches!(
            &*self.cached.lock().await,
            Some((Credentials::OAuth { .. }, _))
        )
    }

    async fn refresh(
        &self,
        http: &HttpClient,
        refresh_token: &str,
        version: i64,
        now: i64,
    ) -> Result<(Credentials, i64), CrmError> {
        let Some(oauth) = &self.oauth else {
            return Err(CrmError::Auth(
                "the access token expired and this vendor has no OAuth client configured".into(),
            ));
        };
        let t = oauth
            .token(
                http,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        let t = match t {
            Ok(t) => t,
            // Another process may have refreshed (and rotated) the token first.
            Err(CrmError::Auth(_)) => {
                let (current, v) = self.store.load().await?;
                if v != version {
                    return Ok((current, v));
                }
                return Err(CrmError::Auth(
                    "the refresh token was refused; reconnect the CRM".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let creds = OAuthClient::credentials(t, refresh_token, now);
        if self.store.save(&creds, version).await? {
            Ok((creds, version + 1))
        } else {
            // Lost the race: the winner's tokens are the ones to use.
            self.store.load().await
        }
    }
}

/// A vendor's published request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per `per`.
    #[must_use]
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }
}

/// A token bucket: up to `requests` at once, refilled evenly over `per`. A 429 empties it
/// and stops it until the vendor's `Retry-After` has passed.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    paused_until: Option<Instant>,
}

impl Limiter {
    /// A full bucket of `limit`.
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.requests.max(1)),
                at: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits until a request may be sent, and takes its token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let Ok(mut b) = self.state.lock() else {
                    return;
                };
                let now = Instant::now();
                let cap = f64::from(self.limit.requests.max(1));
                let rate = cap / self.limit.per.as_secs_f64().max(0.001);
                b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
                b.at = now;
                match b.paused_until {
                    Some(until) if until > now => until - now,
                    _ if b.tokens >= 1.0 => {
                        b.tokens -= 1.0;
                        return;
                    }
                    _ => Duration::from_secs_f64((1.0 - b.tokens) / rate),
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Whole requests the bucket would allow now (without waiting).
    #[must_use]
    pub fn available(&self) -> u32 {
        let Ok(b) = self.state.lock() else {
            return 0;
        };
        let cap = f64::from(self.limit.requests.max(1));
        let rate = cap / self.limit.per.as_secs_f64().max(0.001);
        let now = Instant::now();
        let tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        match b.paused_until {
            Some(until) if until > now => 0,
            // Whole tokens of a bucket of at most u32::MAX: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            _ => tokens.floor() as u32,
        }
    }

    /// The vendor answered 429: send nothing more until `retry_after` (or one window),
    /// at most [`MAX_PAUSE`]: the header is the vendor's (or a tenant's server's) word,
    /// and an absurd one must neither overflow the clock nor hold the connection forever.
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let pause = retry_after.unwrap_or(self.limit.per).min(MAX_PAUSE);
        if let Ok(mut b) = self.state.lock() {
            b.tokens = 0.0;
            b.paused_until = Instant::now().checked_add(pause);
        }
    }
}

/// The longest a 429 pauses a connection.
pub const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

/// One limiter per key (a connection, or a vendor app's client id), shared by every
/// connector built for it in this process.
#[derive(Debug, Default, Clone)]
pub struct Limiters(Arc<Mutex<HashMap<String, Arc<Limiter>>>>);

impl Limiters {
    /// The limiter of `connection` (or any other key), created with `limit` on first
    /// use.
    #[must_use]
    pub fn get(&self, connection: &str, limit: RateLimit) -> Arc<Limiter> {
        match self.0.lock() {
            Ok(mut m) => m
                .entry(connection.to_owned())
                .or_insert_with(|| Arc::new(Limiter::new(limit)))
                .clone(),
            Err(_) => Arc::new(Limiter::new(limit)),
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// A JSON body.
    Json(Value),
    /// A form-encoded body.
    Form(Vec<(String, String)>),
}

/// The HTTP side of one vendor connection.
#[derive(Clone)]
pub struct VendorHttp {
    http: HttpClient,
    base: String,
    auth: Arc<Auth>,
    limiter: Arc<Limiter>,
    /// Further buckets a request must pass with API-key credentials.
    key_limiters: Vec<Arc<Limiter>>,
    /// Buckets shared by every connection of the vendor app, with OAuth credentials.
    app_limiters: Vec<Arc<Limiter>>,
    headers: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for VendorHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorHttp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl VendorHttp {
    /// Requests to `base` (no trailing slash needed) with `auth`, paced by `limiter`.
    #[must_use]
    pub fn new(http: HttpClient, base: &str, auth: Arc<Auth>, limiter: Arc<Limiter>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            limiter,
            key_limiters: Vec::new(),
            app_limiters: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Adds the buckets a request also passes: `key` with API-key credentials (a PAT's
    /// per-minute and per-day quotas), `app` with OAuth credentials (an app-wide quota
    /// shared by every tenant on the client id).
    #[must_use]
    pub fn with_limits(mut self, key: Vec<Arc<Limiter>>, app: Vec<Arc<Limiter>>) -> Self {
        self.key_limiters = key;
        self.app_limiters = app;
        self
    }

    /// Adds a header sent with every request (e.g. GoHighLevel's `Version`).
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (path and query, starting with `/`).
    ///
    /// # Errors
    /// See [`Self::send`].
    pub async fn get(&self, path: &str) -> Result<Value, CrmError> {
        self.send(reqwest::Method::GET, path, Body::None).await
    }

    /// Sends a request and parses the JSON answer (`Value::Null` for an empty body).
    /// A 401 refreshes the credentials once and tries again.
    ///
    /// # Errors
    /// 401/403 → [`CrmError::Auth`], 404 → [`CrmError::NotFound`], 400/409/422 →
    /// [`CrmError::Invalid`], 429 → [`CrmError::RateLimited`] (after the shared client's
    /// own retries), 5xx and transport → [`CrmError::Unavailable`].
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body,
    ) -> Result<Value, CrmError> {
        let url = format!("{}{path}", self.base);
        let mut force = false;
        loop {
            let auth = self.auth.headers(&self.http, force).await?;
            self.limiter.acquire().await;
            let extra = if self.auth.uses_oauth().await {
                &self.app_limiters
            } else {
                &self.key_limiters
            };
            for l in extra {
                l.acquire().await;
            }
            let result = self
                .http
                .send(method.clone(), &url, |mut r| {
                    for (k, v) in auth.iter().chain(&self.headers) {
                        r = r.header(*k, v);
                    }
                    r = r.header("accept", "application/json");
                    match &body {
                        Body::None => r,
                        Body::Json(v) => r.json(v),
                        Body::Form(f) => form_body(r, f),
                    }
                })
                .await;
            match result {
                Ok(resp) if resp.body.iter().all(u8::is_ascii_whitespace) => {
                    return Ok(Value::Null);
                }
                Ok(resp) => {
                    return serde_json::from_slice(&resp.body).map_err(|e| CrmError::Unavailable {
                        message: format!("{method} {path}: unreadable JSON: {e}"),
                    });
                }
                Err(HttpError::Status { status: 401, .. }) if !force => force = true,
                Err(e) => {
                    let err = map_http_error(e, path);
                    if let CrmError::RateLimited { retry_after } = &err {
                        self.limiter.throttled(*retry_after);
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// Sets an `application/x-www-form-urlencoded` body.
pub fn form_body(
    r: reqwest::RequestBuilder,
    pairs: &[(String, String)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    r.header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// Maps a failed request to a [`CrmError`]; `object` names what was asked for.
#[must_use]
pub fn map_http_error(e: HttpError, object: &str) -> CrmError {
    match e {
        HttpError::Status {
            status: 401 | 403,
            body,
            ..
        } => CrmError::Auth(format!("{object}: {}", short(&body))),
        HttpError::Status { status: 404, .. } => CrmError::NotFound {
            object: object.to_owned(),
        },
        HttpError::Status {
            status: 429,
            retry_after,
            ..
        } => CrmError::RateLimited { retry_after },
        HttpError::Status { status, body, .. } if (400..500).contains(&status) => {
            CrmError::Invalid {
                field: object.to_owned(),
                reason: format!("HTTP {status}: {}", short(&body)),
            }
        }
        other => CrmError::Unavailable {
            message: mfh_pipeline::report(&other),
        },
    }
}

fn short(body: &str) -> String {
    body.chars().take(300).collect()
}

/// Percent-encodes a path segment or query value.
#[must_use]
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The text of a JSON value that may be a string or a number (vendors differ).
#[must_use]
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limiter_paces_to_the_rate_and_pauses_after_a_429() {
        // Lower bounds only: pacing may never be faster than the vendor allows.
        let l = Limiter::new(RateLimit::new(10, Duration::from_millis(200)));
        let t0 = Instant::now();
        for _ in 0..20 {
            l.acquire().await;
        }
        // A full bucket of 10, then 10 more at 10 per 200 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(180),
            "{:?}",
            t0.elapsed()
        );
        l.throttled(Some(Duration::from_millis(300)));
        let t1 = Instant::now();
        l.acquire().await;
        assert!(t1.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn an_absurd_retry_after_pauses_at_most_the_cap() {
        let l = Limiter::new(RateLimit::new(10, Duration::from_millis(200)));
        l.throttled(Some(Duration::from_secs(u64::MAX)));
        let until = l.state.lock().unwrap().paused_until.unwrap();
        assert!(until <= Instant::now() + MAX_PAUSE);
        // The limiter still works (its lock was not poisoned by a panic).
        l.throttled(Some(Duration::from_millis(1)));
        l.acquire().await;
    }

    #[test]
    fn token_responses_read_in_either_case() {
        let snake: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","refresh_token":"r","expires_in":1800,"hub_id":1}"#,
        )
        .unwrap();
        let camel: TokenResponse = serde_json::from_str(
            r#"{"accessToken":"a","refreshToken":"r","expiresIn":1800,"hubId":1}"#,
        )
        .unwrap();
        for t in [snake, camel] {
            assert_eq!(
                (
                    t.access_token.as_str(),
                    t.refresh_token.as_deref(),
                    t.expires_in
                ),
                ("a", Some("r"), Some(1800))
            );
        }
        assert!(
            crate::connectors::config::CrmConfig::default()
                .hubspot
                .token_url
                .ends_with("/oauth/2026-03/token")
        );
    }

    #[test]
    fn credentials_never_print_their_secrets() {
        let c = Credentials::Bearer {
            token: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        let h = Credentials::ApiKeyAndAppId {
            api_key: "k".into(),
            app_id: "a".into(),
        }
        .headers();
        assert_eq!(h, vec![("api-key", "k".into()), ("api-appid", "a".into())]);
    }
}
