//! Every helper's config validation, and its run on an arbitrary contact.
//!
//! The input picks a helper, changes its example config in a few places, and makes a
//! contact and a trigger payload; the request goes through the router's validation (what
//! the API, the run URL and direct producers all pass), and a valid one runs in process
//! against an empty in-memory CRM, state and file store. Outbound calls cannot leave the
//! machine: vendors point at a closed loopback port, private addresses are refused, and
//! every call times out within 50 ms.

use crate::json;
use arbitrary::{Result, Unstructured};
use mfh_processors::connectors::CrmData;
use mfh_processors::helpers::{Contact, Ctx, HELPERS, Vendors};
use mfh_processors::http::{HttpClient, HttpConfig};
use mfh_processors::state::MemoryState;
use mfh_schemas::ExecutionRequested;
use std::sync::LazyLock;
use std::time::Duration;

static HTTP: LazyLock<HttpClient> = LazyLock::new(|| {
    HttpClient::new(HttpConfig {
        timeout: Duration::from_millis(50),
        max_attempts: 1,
        ..HttpConfig::default()
    })
    .expect("an HTTP client with default TLS")
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
});

/// The target.
pub fn helper(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let h = HELPERS[u.choose_index(HELPERS.len())?];
    let mut config: serde_json::Value =
        serde_json::from_str(h.example_config()).unwrap_or_default();
    let changes = u.int_in_range(0..=4)?;
    json::mutate(u, &mut config, changes)?;
    let input = if u.ratio(1, 3)? {
        Some(json::value(u, 3)?.to_string())
    } else {
        None
    };
    let contact = contact(u)?;
    let req = ExecutionRequested {
        execution_id: "fuzz".into(),
        account_id: "acct_fuzz".into(),
        contact_id: contact.id.clone(),
        connection_id: "sandbox".into(),
        helper: h.name().into(),
        config_json: config.to_string(),
        input_json: input,
        requested_at: 1_773_576_000_000,
        source: "api".into(),
        depth: 0,
        parent_execution_id: None,
        helper_id: None,
    };
    let Ok(valid) = mfh_processors::router::validate(&req, 5) else {
        return Ok(());
    };
    let (crm, state, files) = (
        CrmData::default(),
        MemoryState::new(),
        object_store::memory::InMemory::new(),
    );
    let vendors = Vendors::all_at("http://127.0.0.1:9");
    let ctx = Ctx {
        execution_id: &req.execution_id,
        account_id: &req.account_id,
        instance: &valid.instance,
        now: chrono::DateTime::from_timestamp_millis(req.requested_at).unwrap_or_default(),
        seed: u.arbitrary()?,
        input: valid.input.as_ref(),
        http: &HTTP,
        crm: &crm,
        state: &state,
        vendors: &vendors,
        files: &files,
        dry_run: u.arbitrary()?,
    };
    RUNTIME.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), valid.step.run(&ctx, &contact)).await;
    });
    Ok(())
}

/// Field names the helpers' defaults and the connectors use, and arbitrary ones.
const FIELDS: &[&str] = &[
    "email",
    "Email",
    "first_name",
    "last_name",
    "phone",
    "Phone1",
    "birthday",
    "date_of_birth",
    "timezone",
    "time_zone",
    "country",
    "postal_code",
    "score",
    "lead_source",
    "ip_address",
    "city",
    "company",
];

fn contact(u: &mut Unstructured<'_>) -> Result<Contact> {
    let mut c = Contact {
        id: if u.ratio(1, 4)? {
            json::string(u)?
        } else {
            "1".into()
        },
        ..Contact::default()
    };
    for _ in 0..u.int_in_range(0..=8)? {
        let name = if u.ratio(3, 4)? {
            (*u.choose(FIELDS)?).to_owned()
        } else {
            json::string(u)?
        };
        let value = match json::value(u, 0)? {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        c.fields.insert(name, value);
    }
    for _ in 0..u.int_in_range(0..=4)? {
        c.tags.insert(json::string(u)?, json::string(u)?);
    }
    c.owner_id = u.arbitrary()?;
    c.marketable = u.arbitrary()?;
    c.created_at = u.arbitrary()?;
    c.updated_at = u.arbitrary()?;
    Ok(c)
}
