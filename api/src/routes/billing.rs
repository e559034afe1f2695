//! `POST /v1/billing/checkout` and `POST /v1/billing/portal`: Stripe Checkout and Billing
//! Portal sessions for the caller's account. Both need `ManageBilling` and answer 201
//! with `{id, url}`; the dashboard sends the customer to `url`.
//!
//! Checkout buys a plan's configured price as a subscription and tags the session and
//! the subscription with the account id, which the webhook resolves the account from. A
//! 14-day trial's remaining time carries into the subscription
//! ([`trial_carry`](mfh_processors::billing::checkout::trial_carry)).
//!
//! Stripe's answers map to problems: a refusal (4xx) is a 502 carrying Stripe's message,
//! since the request mfh built was wrong for Stripe, not the caller's; Stripe down, slow
//! or rate-limiting is a 503.

use crate::AppState;
use crate::error::{ApiError, AppJson};
use crate::routes::account::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use mfh_processors::billing::Plan;
use mfh_processors::billing::checkout::{
    CheckoutError, CheckoutRequest, Session, StripeBilling, price_for_plan, trial_carry,
};
use mfh_processors::helpers::FieldError;
use mfh_processors::store::accounts::AccountRecord;
use mfh_processors::store::team::Permission;
use serde::Deserialize;

/// The body of `POST /v1/billing/checkout`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// The plan to buy: `start`, `grow` or `deliver`.
    #[serde(default)]
    pub plan: String,
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Refused { status, message } => {
                tracing::warn!(
                    status,
                    stripe_message = %message,
                    "Stripe refused a billing session."
                );
                Self::BadGateway(format!("Stripe refused the request: {message}"))
            }
            CheckoutError::UnexpectedAnswer(cause) => {
                tracing::error!(cause = %cause, "Stripe answered a billing session unexpectedly.");
                Self::BadGateway("Stripe answered in an unexpected shape".into())
            }
            e @ (CheckoutError::Unavailable(_) | CheckoutError::Config(_)) => {
                Self::Unavailable(mfh_pipeline::report(&e))
            }
        }
    }
}

/// The plan a checkout may buy.
///
/// # Errors
/// The field error when `name` is not a paid plan.
pub fn paid_plan(name: &str) -> Result<Plan, FieldError> {
    match Plan::parse(name.trim()) {
        Some(p @ (Plan::Start | Plan::Grow | Plan::Deliver)) => Ok(p),
        _ => Err(FieldError::new("plan", "must be start, grow or deliver")),
    }
}

fn stripe_client(state: &AppState) -> Result<&StripeBilling, ApiError> {
    state
        .stripe
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("billing.stripe_secret_key is not configured".into()))
}

async fn account(state: &AppState, id: &str) -> Result<AccountRecord, ApiError> {
    let a = state.store.account(id).await?;
    a.ok_or_else(|| ApiError::NotFound(format!("account {id}")))
}

/// `POST /v1/billing/checkout`: 201 with the Checkout Session's `id` and `url`.
///
/// # Errors
/// 403 without `ManageBilling`; 422 for a plan that is not paid or has no configured
/// price; 404 when the account has no record; 502 when Stripe refuses; 503 when Stripe
/// is not configured or unavailable.
#[utoipa::path(
    post,
    operation_id = "billing_checkout",
    path = "/billing/checkout",
    tag = "billing",
    request_body = CheckoutBody,
    responses(
        (status = 201, description = "The Checkout Session: send the user to its url", body = Session),
        (status = 403, description = "The role may not manage billing", body = crate::openapi::Problem),
        (status = 422, description = "A plan that is not paid or has no configured price", body = crate::openapi::Problem),
        (status = 502, description = "Stripe refused", body = crate::openapi::Problem),
        (status = 503, description = "Stripe is not configured or unavailable", body = crate::openapi::Problem),
    )
)]
pub async fn checkout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(body): AppJson<CheckoutBody>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    caller.require(Permission::ManageBilling)?;
    let invalid = |e: FieldError| ApiError::Invalid {
        message: "invalid request".into(),
        errors: vec![e],
    };
    let plan = paid_plan(&body.plan).map_err(invalid)?;
    let price = price_for_plan(&state.billing.prices, plan).ok_or_else(|| {
        let why = format!("no Stripe price is configured for plan {plan}");
        invalid(FieldError::new("plan", why))
    })?;
    let stripe = stripe_client(&state)?;
    let a = account(&state, &caller.account_id).await?;
    let req = CheckoutRequest {
        account_id: &a.account_id,
        price: &price,
        customer: a.billing.stripe_customer.as_deref(),
        customer_email: a.billing_email.as_deref(),
        trial: trial_carry(&a.billing, chrono::Utc::now().timestamp()),
    };
    let session = stripe.create_checkout_session(&req).await?;
    tracing::info!(
        account_id = %a.account_id,
        session = %session.id,
        %plan,
        trial = ?req.trial,
        "Checkout session created."
    );
    Ok((StatusCode::CREATED, Json(session)))
}

/// `POST /v1/billing/portal`: 201 with the Billing Portal session's `id` and `url`.
///
/// # Errors
/// 403 without `ManageBilling`; 404 when the account has no record; 409 when the account
/// has no Stripe customer yet; 502 when Stripe refuses; 503 when Stripe is not
/// configured or unavailable.
#[utoipa::path(
    post,
    operation_id = "billing_portal",
    path = "/billing/portal",
    tag = "billing",
    responses(
        (status = 201, description = "The Billing Portal session: send the user to its url", body = Session),
        (status = 403, description = "The role may not manage billing", body = crate::openapi::Problem),
        (status = 409, description = "No Stripe customer yet; start a checkout first", body = crate::openapi::Problem),
        (status = 502, description = "Stripe refused", body = crate::openapi::Problem),
        (status = 503, description = "Stripe is not configured or unavailable", body = crate::openapi::Problem),
    )
)]
pub async fn portal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    caller.require(Permission::ManageBilling)?;
    let stripe = stripe_client(&state)?;
    let a = account(&state, &caller.account_id).await?;
    let Some(customer) = a.billing.stripe_customer.as_deref() else {
        return Err(ApiError::Conflict(
            "no Stripe customer yet; start a checkout first".into(),
        ));
    };
    let session = stripe.create_portal_session(customer).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::header;
    use axum::response::IntoResponse;

    #[test]
    fn only_paid_plans_can_be_bought() {
        assert_eq!(paid_plan("grow").unwrap(), Plan::Grow);
        assert_eq!(paid_plan(" start ").unwrap(), Plan::Start);
        assert_eq!(paid_plan("deliver").unwrap(), Plan::Deliver);
        for bad in ["trial", "free", "", "gold"] {
            assert_eq!(paid_plan(bad).unwrap_err().field, "plan", "{bad}");
        }
    }

    #[test]
    fn stripe_refusals_are_502_and_outages_503() {
        let refused = CheckoutError::Refused {
            status: 400,
            message: "No such price: 'price_x'".into(),
        };
        let resp = ApiError::from(refused).into_response();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let down = ApiError::from(CheckoutError::Unavailable("refused".into()));
        assert_eq!(
            down.into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let odd = ApiError::from(CheckoutError::UnexpectedAnswer("no url".into()));
        assert_eq!(odd.into_response().status(), StatusCode::BAD_GATEWAY);
    }
}
