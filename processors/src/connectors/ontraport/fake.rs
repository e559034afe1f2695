//! A fake Ontraport for contract tests, end-to-end tests and the sync benchmark: an
//! in-memory CRM served over HTTP on 127.0.0.1 under `/1`, with Ontraport's `{code,
//! data, account_id}` envelope, `start`/`range` paging with JSON `condition`s, form
//! bodies where the SDK sends them, plain-text errors and `Api-Key`/`Api-Appid` auth.

#![allow(clippy::missing_panics_doc)] // Test support: a poisoned lock means a failed test.

use crate::connectors::fake_http::{self, Request, Response};
use crate::connectors::vendor::Credentials;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// The path prefix of Ontraport's base (`https://api.ontraport.com/1`).
pub const PREFIX: &str = "/1";
/// The API key the fake accepts.
pub const API_KEY: &str = "fake-key";
/// The app id the fake accepts.
pub const APP_ID: &str = "fake-app";
/// The seeded custom field: key `f1234`, alias "Lead Score".
pub const CUSTOM_FIELD: &str = "f1234";

/// The fake CRM's data and what it has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Contacts (flat Ontraport objects, values as strings), by id.
    pub contacts: BTreeMap<u64, Map<String, Value>>,
    /// Tags `{tag_id, tag_name, group_id, object_type_id}`, by id.
    pub tags: BTreeMap<u64, Value>,
    /// Contact fields as `/Contacts/meta` lists them: key → `{alias, type}`.
    pub fields: Map<String, Value>,
    /// Users.
    pub users: Vec<Value>,
    /// Notes created.
    pub notes: Vec<Value>,
    /// Every request, `"METHOD /path?query"`.
    pub requests: Vec<String>,
    pub(super) fails: VecDeque<(u16, Option<u64>)>,
    pub(super) next_id: u64,
}

/// A running fake Ontraport.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// The API base: `http://127.0.0.1:PORT/1`.
    pub base: String,
    /// The in-memory CRM.
    pub state: Arc<Mutex<FakeState>>,
}

/// Seconds since the epoch, as Ontraport writes `date` and `dlm`.
pub(super) fn now_secs() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// Starts a fake seeded with `contacts` contacts (ids 1..=n; contact `i` has email
/// `contact{i}@example.com`, 0-based), tags 10 VIP, 11 Customer, 12 Newsletter, user 1
/// and the custom field `f1234` ("Lead Score").
pub async fn start(contacts: usize) -> FakeServer {
    let mut s = FakeState {
        next_id: 1000,
        ..FakeState::default()
    };
    for i in 0..contacts {
        let id = i as u64 + 1;
        let c = json!({"id": id.to_string(), "firstname": format!("First{i}"),
            "lastname": format!("Last{i}"), "email": format!("contact{i}@example.com"),
            "owner": "1", "bulk_mail": "1", "contact_cat": "", CUSTOM_FIELD: "",
            "date": "1704067200", "dlm": "1704067200"});
        if let Value::Object(m) = c {
            s.contacts.insert(id, m);
        }
    }
    for (id, name) in [(10, "VIP"), (11, "Customer"), (12, "Newsletter")] {
        s.tags.insert(
            id,
            json!({"tag_id": id.to_string(), "tag_name": name, "group_id": "0",
                "object_type_id": "0"}),
        );
    }
    for (key, alias, kind) in [
        ("firstname", "First Name", "text"),
        ("lastname", "Last Name", "text"),
        ("email", "Email", "email"),
        ("office_phone", "Office Phone", "phone"),
        ("company", "Company", "text"),
        ("title", "Title", "text"),
        ("website", "Website", "text"),
        ("address", "Address", "text"),
        ("city", "City", "text"),
        ("state", "State", "state"),
        ("zip", "Zip Code", "text"),
        ("country", "Country", "country"),
        ("birthday", "Birthday", "fulldate"),
        ("timezone", "Timezone", "text"),
        ("owner", "Owner", "parent"),
        ("bulk_mail", "Bulk Email Status", "check"),
        (CUSTOM_FIELD, "Lead Score", "numeric"),
    ] {
        s.fields.insert(
            key.into(),
            json!({"alias": alias, "type": kind, "required": "0"}),
        );
    }
    s.users = vec![json!({"id": "1", "firstname": "Ann", "lastname": "Admin",
        "email": "ann@example.com"})];
    let state = Arc::new(Mutex::new(s));
    let st = state.clone();
    let addr = fake_http::serve(Arc::new(move |req| handle(&st, &req))).await;
    FakeServer {
        base: format!("http://{addr}{PREFIX}"),
        state,
    }
}

impl FakeServer {
    /// The key and app id the fake accepts.
    #[must_use]
    pub fn credentials() -> Credentials {
        Credentials::ApiKeyAndAppId {
            api_key: API_KEY.into(),
            app_id: APP_ID.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next request fail with `status` (with `Retry-After` when given; the real
    /// Ontraport sends `X-Rate-Limit-Reset` instead). Calls queue up.
    pub fn fail_next(&self, status: u16, retry_after_secs: Option<u64>) {
        self.lock().fails.push_back((status, retry_after_secs));
    }

    /// Every request so far, `"METHOD /path?query"`.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Sets a field of a contact directly, by Ontraport key (`firstname`, `f1234`) or
    /// by mfh standard key (`first_name`, `email`, ...).
    pub fn set_field(&self, contact_id: &str, field: &str, value: &str) {
        let key = super::types::standard(field).unwrap_or(field);
        let mut s = self.lock();
        if let Some(c) = id(contact_id).and_then(|i| s.contacts.get_mut(&i)) {
            c.insert(key.into(), json!(value));
            c.insert("dlm".into(), json!(now_secs()));
        }
    }

    /// Deletes a contact.
    pub fn delete_contact(&self, contact_id: &str) {
        if let Some(i) = id(contact_id) {
            self.lock().contacts.remove(&i);
        }
    }

    /// The ids of every contact, ascending.
    #[must_use]
    pub fn contact_ids(&self) -> Vec<String> {
        self.lock().contacts.keys().map(u64::to_string).collect()
    }

    /// A contact as Ontraport stores it.
    #[must_use]
    pub fn contact(&self, contact_id: &str) -> Option<Map<String, Value>> {
        let s = self.lock();
        id(contact_id).and_then(|i| s.contacts.get(&i).cloned())
    }
}

pub(super) fn id(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

fn handle(state: &Mutex<FakeState>, req: &Request) -> Response {
    let mut s = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.requests.push(req.line());
    if let Some((status, after)) = s.fails.pop_front() {
        let r = Response::text(status, "Injected failure")
            .with_header("x-rate-limit-limit", "180")
            .with_header("x-rate-limit-remaining", "0");
        return match after {
            Some(secs) => r
                .with_header("retry-after", &secs.to_string())
                .with_header("x-rate-limit-reset", &secs.to_string()),
            None => r,
        };
    }
    if req.header("api-key") != Some(API_KEY) || req.header("api-appid") != Some(APP_ID) {
        return Response::text(401, "Unauthorized: invalid Api-Key or Api-Appid");
    }
    let Some(path) = req.path.strip_prefix(PREFIX) else {
        return Response::text(404, "Not Found");
    };
    super::fake_routes::route(&mut s, req, path)
}

/// Ontraport's success envelope.
pub(super) fn ok(data: Value) -> Response {
    Response::json(200, &json!({"code": 0, "data": data, "account_id": 12345}))
}
