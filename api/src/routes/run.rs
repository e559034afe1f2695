//! `POST|GET /v1/run/{token}`: the URL a CRM automation calls to run a saved helper on
//! a contact: Keap's Campaign Builder "Send HTTP Post" with `contactId=~Contact.Id~`,
//! ActiveCampaign's and Ontraport's webhook steps, GoHighLevel's outbound webhook and
//! HubSpot's workflow webhook. None of them can send a header, so the URL's token is the
//! credential; bodies are form-encoded, JSON or empty (query strings work too).
//!
//! The contact id is read under the names each CRM uses; every other name/value pair
//! becomes the execution's `input`. A delivery identical to one of the same helper within
//! `api.run_dedup_window` (CRMs retry: HubSpot for up to three days) gets the first
//! execution back instead of running twice; an `Idempotency-Key` header is honoured too.

use crate::AppState;
use crate::error::{ApiError, AppBytes, AppPath};
use crate::routes::executions::{Dedup, accept, idempotency_key, invalid};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use mfh_processors::router::validate;
use mfh_schemas::ExecutionRequested;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The names a contact id arrives under, in the order they are looked for: Keap
/// (`contactId`, `ContactId`, `Contact0Id`, `contact_id`, `Id`), ActiveCampaign
/// (`contact[id]`), GoHighLevel (`contact_id`, `contactId`), Ontraport (`contact_id`,
/// `id`), HubSpot (`objectId`, `hs_object_id`, `vid`).
pub const CONTACT_ID_NAMES: &[&str] = &[
    "contactId",
    "ContactId",
    "contact_id",
    "Contact0Id",
    "contact[id]",
    "objectId",
    "hs_object_id",
    "vid",
    "Id",
    "id",
];

/// Reads a delivery's name/value pairs: the query string's, then the body's (form or
/// JSON object), the body winning on a name both carry.
///
/// # Errors
/// 400 for a body that does not parse, 415 for another content type.
pub fn read_pairs(
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    let mut pairs = Map::new();
    if let Some(q) = query {
        let q: Vec<(String, String)> = serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::BadRequest(format!("the query string does not parse: {e}")))?;
        pairs.extend(q.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(pairs);
    }
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    let json = match media.as_deref() {
        Some("application/json") => true,
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => true,
        Some("application/x-www-form-urlencoded") => false,
        // Some senders name no type: a body that starts like JSON is JSON.
        None => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        Some(other) => {
            return Err(ApiError::Rejected {
                status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: format!(
                    "Content-Type {other} is not read here: send application/x-www-form-urlencoded name/value pairs or a JSON object"
                ),
            });
        }
    };
    if json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => pairs.extend(o),
            Ok(_) => {
                return Err(ApiError::BadRequest(
                    "the JSON body must be an object".into(),
                ));
            }
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "the JSON body does not parse: {e}"
                )));
            }
        }
    } else {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("the form body does not parse: {e}")))?;
        pairs.extend(form.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    Ok(pairs)
}

/// Takes the contact id out of the pairs (a `contact` object's `id` counts too).
///
/// # Errors
/// 400 naming what to send when there is none, or when it is a merge field the CRM did
/// not fill in.
pub fn take_contact_id(pairs: &mut Map<String, Value>) -> Result<String, ApiError> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let found = CONTACT_ID_NAMES
        .iter()
        .find_map(|name| {
            let id = pairs.get(*name).and_then(text).filter(|s| !s.is_empty())?;
            pairs.remove(*name);
            Some(id)
        })
        .or_else(|| {
            pairs
                .get("contact")
                .and_then(|c| c.get("id"))
                .and_then(text)
                .filter(|s| !s.is_empty())
        });
    let Some(id) = found else {
        return Err(ApiError::BadRequest(
            "no contact id: send contactId=~Contact.Id~ (Keap), contact[id] (ActiveCampaign), contact_id (GoHighLevel, Ontraport) or objectId (HubSpot)".into(),
        ));
    };
    if id.starts_with('~') || id.starts_with("{{") || id.starts_with('[') {
        return Err(ApiError::BadRequest(format!(
            "the contact id {id:?} is a merge field the CRM did not fill in"
        )));
    }
    if id.len() > 256 || id.contains(':') {
        return Err(ApiError::BadRequest(
            "the contact id must be 1-256 characters without ':'".into(),
        ));
    }
    Ok(id)
}

/// Runs the saved helper the token names on the contact the delivery names: 202 with
/// the execution id.
///
/// # Errors
/// 401 for an unknown or rotated token, 410 for a deleted helper, 423 for a paused one,
/// 400/413/415 for a body it cannot read or without a contact id, 403 when the plan
/// refuses; nothing is queued for any of them.
#[utoipa::path(
    method(get, post),
    operation_id = "run_helper",
    path = "/run/{token}",
    tag = "helpers",
    params(("token" = String, Path, description = "The saved helper's run token (hlp_….secret)"), ("contactId" = Option<String>, Query, description = "The contact (also contact_id, id; or in the body as Keap, GoHighLevel, ActiveCampaign, Ontraport or HubSpot send it)")),
    request_body(description = "What the CRM automation sends: a form or JSON naming the contact", content((Object = "application/x-www-form-urlencoded"), (Object = "application/json"))),
    responses(
        (status = 202, description = "Queued (a CRM's repeated delivery returns the first execution)", body = crate::routes::executions::Accepted),
        (status = 400, description = "No contact id in the query or body, or an unfilled merge field", body = crate::openapi::Problem),
        (status = 401, description = "An unknown or rotated run URL", body = crate::openapi::Problem),
        (status = 403, description = "The plan refuses the execution", body = crate::openapi::Problem),
        (status = 410, description = "The helper was deleted", body = crate::openapi::Problem),
        (status = 413, description = "The body is too large", body = crate::openapi::Problem),
        (status = 423, description = "The helper is paused", body = crate::openapi::Problem),
    )
)]
pub async fn run(
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Response, ApiError> {
    let unknown =
        || ApiError::Unauthenticated("this run URL is not valid (it may have been rotated)".into());
    let helper_id = token
        .split_once('.')
        .map(|(id, _)| id)
        .filter(|id| id.starts_with("hlp_") && id.len() <= 64 && token.len() <= 256)
        .ok_or_else(unknown)?;
    let saved = state
        .store
        .helper_definition(helper_id)
        .await?
        .ok_or_else(unknown)?;
    let hash = mfh_processors::store::api_keys::hash_key(&token);
    if !mfh_processors::crm_webhooks::constant_time_eq(saved.token_hash.as_bytes(), hash.as_bytes())
    {
        return Err(unknown());
    }
    if saved.deleted_at.is_some() {
        return Err(ApiError::Gone(format!("helper {helper_id} was deleted")));
    }
    if !saved.enabled {
        return Err(ApiError::Locked(format!(
            "helper {helper_id} is paused; resume it to run it"
        )));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut pairs = read_pairs(content_type, query.as_deref(), &body)?;
    let contact_id = take_contact_id(&mut pairs)?;
    let input = (!pairs.is_empty()).then_some(Value::Object(pairs));
    let req = ExecutionRequested {
        execution_id: uuid::Uuid::now_v7().to_string(),
        account_id: saved.account_id.clone(),
        contact_id,
        connection_id: saved.connection_id.clone(),
        helper: saved.helper.clone(),
        config_json: saved.config.to_string(),
        input_json: input.as_ref().map(ToString::to_string),
        requested_at: mfh_pipeline::now_millis(),
        source: "run_url".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: Some(saved.helper_id.clone()),
    };
    validate(&req, state.max_chain_depth).map_err(invalid)?;
    // The same helper, contact and input within the window is the CRM retrying.
    let fingerprint = hex::encode(Sha256::digest(
        format!(
            "{}\n{}",
            req.contact_id,
            req.input_json.as_deref().unwrap_or("")
        )
        .as_bytes(),
    ));
    let dedup = match headers.get("idempotency-key") {
        Some(k) => Dedup {
            key: format!("run:{helper_id}:key:{}", idempotency_key(k)?),
            fingerprint,
            window: None,
        },
        None => Dedup {
            key: format!("run:{helper_id}:{fingerprint}"),
            fingerprint,
            window: Some(state.cfg.run_dedup_window),
        },
    };
    accept(&state, req, None, Some(dedup)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(
        ct: Option<&str>,
        q: Option<&str>,
        body: &str,
    ) -> Result<(String, Map<String, Value>), ApiError> {
        let mut p = read_pairs(ct, q, body.as_bytes())?;
        let id = take_contact_id(&mut p)?;
        Ok((id, p))
    }

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn every_crm_s_contact_id_is_read_and_the_rest_is_input() {
        let cases = [
            (FORM, None, "contactId=3&ip=1.2.3.4", "3"),
            (FORM, None, "ContactId=4", "4"),
            (FORM, None, "Contact0Id=5", "5"),
            (FORM, None, "Id=6", "6"),
            (
                FORM,
                None,
                "contact%5Bid%5D=7&contact%5Bemail%5D=a%40b.c",
                "7",
            ),
            (
                JSON,
                None,
                r#"{"contact_id":"ghl8","first_name":"Ann"}"#,
                "ghl8",
            ),
            (JSON, None, r#"{"objectId":901,"properties":{}}"#, "901"),
            (JSON, None, r#"{"contact":{"id":"10"}}"#, "10"),
            (None, Some("contactId=11"), "", "11"),
            (None, None, r#"{"vid": 12}"#, "12"),
        ];
        for (ct, q, body, want) in cases {
            let (id, _) = contact(ct, q, body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(id, want, "{body}");
        }
        let (_, rest) = contact(FORM, Some("video=75"), "contactId=3&ip=1.2.3.4").unwrap();
        assert_eq!(
            Value::Object(rest),
            serde_json::json!({"ip": "1.2.3.4", "video": "75"})
        );
    }

    #[test]
    fn bad_deliveries_get_their_own_4xx() {
        let status = |r: Result<(String, Map<String, Value>), ApiError>| {
            r.err().map(|e| {
                axum::response::IntoResponse::into_response(e)
                    .status()
                    .as_u16()
            })
        };
        assert_eq!(status(contact(FORM, None, "first=Ann")), Some(400));
        assert_eq!(
            status(contact(FORM, None, "contactId=~Contact.Id~")),
            Some(400)
        );
        assert_eq!(status(contact(FORM, None, "contactId=a:b")), Some(400));
        assert_eq!(status(contact(JSON, None, "{not json")), Some(400));
        assert_eq!(status(contact(JSON, None, "[1]")), Some(400));
        assert_eq!(
            status(contact(Some("text/plain"), None, "contactId=3")),
            Some(415)
        );
    }
}
