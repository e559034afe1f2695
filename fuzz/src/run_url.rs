//! The run-URL delivery parser: query and body into a contact id and input pairs, then
//! the router's validation of the request they make.

use crate::json;
use arbitrary::{Result, Unstructured};
use mfh_schemas::ExecutionRequested;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded; charset=utf-8",
    "text/plain",
    "multipart/form-data",
];

/// The target.
pub fn run_url(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let content_type = if u.ratio(1, 8)? {
        None
    } else {
        Some(*u.choose(CONTENT_TYPES)?)
    };
    let query: Option<String> = u.arbitrary()?;
    let body = match u.choose_index(3)? {
        0 => json::value(u, 3)?.to_string().into_bytes(),
        1 => {
            // contactId=…&name=value…, the shape of Keap's "Send HTTP Post".
            let mut s = format!("contactId={}", json::string(u)?);
            for _ in 0..u.int_in_range(0..=4)? {
                s.push_str(&format!("&{}={}", json::string(u)?, json::string(u)?));
            }
            s.into_bytes()
        }
        _ => u.arbitrary::<Vec<u8>>()?,
    };
    let Ok(mut pairs) = mfh_api::routes::run::read_pairs(content_type, query.as_deref(), &body)
    else {
        return Ok(());
    };
    let Ok(contact_id) = mfh_api::routes::run::take_contact_id(&mut pairs) else {
        return Ok(());
    };
    let req = ExecutionRequested {
        execution_id: "fuzz".into(),
        account_id: "acct_fuzz".into(),
        contact_id,
        connection_id: "sandbox".into(),
        helper: "tag_it".into(),
        config_json: r#"{"action":"apply","tag_ids":["1"]}"#.into(),
        input_json: Some(serde_json::Value::Object(pairs).to_string()),
        requested_at: 0,
        source: "run_url".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: Some("hlp_fuzz".into()),
    };
    let _ = mfh_processors::router::validate(&req, 5);
    Ok(())
}
