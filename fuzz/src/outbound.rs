//! Handling of vendors' answers: a refused response's status, `Retry-After` and body;
//! its mapping to a CRM error and the retry wait that follows; an OAuth token response.

use arbitrary::{Result, Unstructured};
use mfh_processors::connectors::CrmRetry;
use mfh_processors::connectors::vendor::{OAuthClient, TokenResponse, map_http_error};
use mfh_processors::http::refusal;
use std::time::Duration;

/// The target.
pub fn outbound(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let status = u.int_in_range(100..=599)?;
    let retry_after: Option<Vec<u8>> = u.arbitrary()?;
    let body: Vec<u8> = u.arbitrary()?;
    let refused = refusal(
        "http://vendor.test/x",
        status,
        retry_after.as_deref(),
        &body,
    );
    let crm = map_http_error(refused, "contact 1");
    let retry = CrmRetry {
        rate_limited_attempts: u.int_in_range(0..=30)?,
        unavailable_attempts: u.int_in_range(0..=30)?,
        max_wait: Duration::from_secs(u.int_in_range(0..=3600)?),
    };
    let _ = retry.wait(&crm, u.arbitrary()?);
    let token: std::result::Result<TokenResponse, _> =
        serde_json::from_slice(&u.arbitrary::<Vec<u8>>()?);
    if let Ok(t) = token {
        let _ = OAuthClient::credentials(t, "old-refresh", u.arbitrary()?);
    }
    let t = TokenResponse {
        access_token: "a".into(),
        refresh_token: u.arbitrary()?,
        expires_in: u.arbitrary()?,
        location_id: u.arbitrary()?,
    };
    let _ = OAuthClient::credentials(t, "old-refresh", u.int_in_range(0..=4_102_444_800_000)?);
    Ok(())
}
