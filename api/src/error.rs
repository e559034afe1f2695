//! API errors as RFC 9457 problem details. Internal causes are logged, never sent.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfh_processors::helpers::FieldError;
use serde::Serialize;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// An extractor refused the request (syntax, content type, size); its status is kept.
    #[error("{detail}")]
    Rejected {
        /// The extractor's status: 400, 413, 415, 422.
        status: StatusCode,
        /// What was wrong.
        detail: String,
    },
    /// The request is well-formed but invalid, with the field errors.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Every problem found.
        errors: Vec<FieldError>,
    },
    /// No or a wrong API key.
    #[error("sign in, or send a valid API key (header X-Api-Key or Authorization: Bearer)")]
    Unauthorized,
    /// A webhook delivery's signature, timestamp or token did not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// The path exists but not with this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The caller may not do this: its role, its account's state or a plan limit (the
    /// message names it).
    #[error("{0}")]
    Forbidden(String),
    /// Not found (or not the caller's).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with an earlier one (e.g. an idempotency key reused).
    #[error("{0}")]
    Conflict(String),
    /// It existed and was deleted (a deleted helper's run URL).
    #[error("{0}")]
    Gone(String),
    /// It exists but is paused (a disabled helper's run URL).
    #[error("{0}")]
    Locked(String),
    /// A third party (Stripe) refused what mfh sent it; the detail is its message.
    #[error("{0}")]
    BadGateway(String),
    /// Too many attempts (sign-in limits); the client may retry after the wait.
    #[error("{detail}")]
    TooManyRequests {
        /// What was limited.
        detail: String,
        /// Seconds until a retry may succeed, sent as `Retry-After`.
        retry_after_secs: u64,
    },
    /// A dependency is down; the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// A defect; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

/// An RFC 9457 problem: every error the API answers has this body, sent as
/// `application/problem+json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, for a person.
    pub detail: String,
    /// Each invalid field (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Rejected { status, .. } => *status,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::Locked(_) => StatusCode::LOCKED,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) | Self::Unavailable(cause) = &self {
            tracing::error!(status = status.as_u16(), cause, "Request failed.");
        }
        let errors = match &self {
            Self::Invalid { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let body = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            errors,
        };
        let mut resp = (status, Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
        resp
    }
}

impl From<mfh_processors::store::StoreError> for ApiError {
    fn from(e: mfh_processors::store::StoreError) -> Self {
        Self::Unavailable(mfh_pipeline::report(&e))
    }
}

/// `Json` whose rejections are problem details.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Invalid {
                message: "the body does not match the expected shape".into(),
                errors: vec![FieldError::new("", e.body_text())],
            }),
            Err(e) => Err(ApiError::Rejected {
                status: e.status(),
                detail: e.body_text(),
            }),
        }
    }
}

/// The raw body, whose rejections (too large, unreadable) are problem details.
#[derive(Debug, Clone, Default)]
pub struct AppBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for AppBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| ApiError::Rejected {
                status: e.status(),
                detail: e.body_text(),
            })
    }
}

/// `Query` whose rejections are problem details.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for AppQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `Path` whose rejections are problem details.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for AppPath<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
