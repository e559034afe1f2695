//! The dashboard: the built single-page app (`api.web_dir`) at every path outside `/v1`,
//! with `index.html` for a browser's navigation to the app's own routes (`/helpers`,
//! `/verify?token=…`), and the
//! CORS policy for a dashboard hosted elsewhere.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

const NOT_BUILT: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>MyFusionHelper</title></head><body><h1>The dashboard is not built</h1>\
<p>Run <code>scripts/build-web</code> (<code>scripts/up</code> does it for you), then \
reload this page. The API is up: <a href=\"/v1/helper-types\">/v1/helper-types</a>.</p>\
</body></html>\n";

/// Serves the dashboard for `GET`/`HEAD` outside `/v1`; anything else is a 404 problem.
pub async fn dashboard(State(state): State<AppState>, req: Request) -> Response {
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.0.path().to_owned());
    if !matches!(*req.method(), Method::GET | Method::HEAD) || path.starts_with("/v1/") {
        return ApiError::NotFound(format!("route {path}")).into_response();
    }
    // A browser's navigation (Accept: text/html) to an app route gets index.html; any
    // other request for a path that is no file is a 404 problem, as on the API.
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let dir = &state.cfg.web_dir;
    let index = dir.join("index.html");
    if !index.is_file() {
        if wants_html {
            return with_headers(Html(NOT_BUILT).into_response(), true);
        }
        return ApiError::NotFound(format!("route {path}")).into_response();
    }
    let is_asset = path.starts_with("/assets/");
    let (parts, body) = req.into_parts();
    let page = Request::from_parts(parts.clone(), Body::empty());
    let mut files = ServeDir::new(dir);
    match files.try_call(Request::from_parts(parts, body)).await {
        Ok(resp) if resp.status() != StatusCode::NOT_FOUND => {
            with_headers(resp.map(Body::new), !is_asset)
        }
        Ok(_) if wants_html => match ServeFile::new(&index).try_call(page).await {
            Ok(resp) => with_headers(resp.map(Body::new), true),
            Err(e) => ApiError::Internal(format!("serving the dashboard: {e}")).into_response(),
        },
        Ok(_) => ApiError::NotFound(format!("route {path}")).into_response(),
        Err(e) => ApiError::Internal(format!("serving the dashboard: {e}")).into_response(),
    }
}

/// The dashboard's own headers: nothing may frame it or sniff its types, links leave no
/// referrer (a reset page's URL holds its token), and only hashed assets are cached.
fn with_headers(mut resp: Response, no_cache: bool) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    let cache = if no_cache {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    if resp.status() == StatusCode::OK {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    resp
}

/// The CORS layer for `origins`; `None` (no CORS headers at all) when the list is empty.
/// Credentials are allowed, so a dashboard elsewhere can use its session.
#[must_use]
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o.trim_end_matches('/')) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "Ignoring an invalid CORS origin.");
                None
            }
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static("x-api-key"),
                header::HeaderName::from_static("x-csrf-token"),
                header::HeaderName::from_static("idempotency-key"),
            ]),
    )
}
