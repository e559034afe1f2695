//! A fake Keap for contract tests, end-to-end tests and the sync benchmark: an in-memory
//! CRM served over HTTP on 127.0.0.1 with Keap's REST v2 (and v1 goal) paths, its JSON
//! shapes, `page_token` pagination, error bodies and an OAuth token endpoint.

#![allow(clippy::missing_panics_doc)] // Test support: a poisoned lock means a failed test.

use crate::connectors::fake_http::{self, Request, Response};
use crate::connectors::vendor::{Credentials, text};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// The path prefix of Keap's REST base (`https://api.infusionsoft.com/crm/rest`).
pub const PREFIX: &str = "/crm/rest";
/// The OAuth client the fake token endpoint accepts.
pub const CLIENT_ID: &str = "fake-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "fake-secret";
/// The id of the seeded custom field (`_LeadScore`, label "Lead Score").
pub const CUSTOM_FIELD_ID: &str = "7";
/// A second contact custom field (`_Source`), so a write to one can be seen to keep the
/// other.
pub const SECOND_CUSTOM_FIELD_ID: &str = "8";
/// The fake's one campaign sequence: (campaign id, sequence id).
pub const CAMPAIGN_SEQUENCE: (&str, &str) = ("5", "51");

/// The fake CRM's data and what it has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Contacts in Keap v2 JSON, by numeric id.
    pub contacts: BTreeMap<u64, Value>,
    /// Tags (`{id, name, description, category}`), by numeric id.
    pub tags: BTreeMap<u64, Value>,
    /// Contact custom-field metadata, as `GET /v2/contacts/model` lists it.
    pub custom_fields: Vec<Value>,
    /// Users.
    pub users: Vec<Value>,
    /// Tag categories (`{id, name, description}`).
    pub tag_categories: Vec<Value>,
    /// Opportunities (RestV2Opportunity: `{id, opportunity_title, contact {id}, stage
    /// {id, name}, created_time}`), by numeric id.
    pub opportunities: BTreeMap<u64, Value>,
    /// Pipeline stages (`{id, name, order}`).
    pub stages: Vec<Value>,
    /// Campaign sequences contacts can be added to: (campaign id, sequence id).
    pub sequences: Vec<(String, String)>,
    /// Contacts added to sequences: (campaign id, sequence id, contact id).
    pub in_sequences: Vec<(String, String, String)>,
    /// Notes created.
    pub notes: Vec<Value>,
    /// Goals achieved: (integration, call name, contact id).
    pub goals: Vec<(String, String, String)>,
    /// Companies (`{id, company_name, create_time}`).
    pub companies: Vec<Value>,
    /// Every request, `"METHOD /path?query"`.
    pub requests: Vec<String>,
    fails: VecDeque<(u16, Option<u64>)>,
    access_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    refreshes: usize,
    next_id: u64,
}

/// A running fake Keap.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// The REST base: `http://127.0.0.1:PORT/crm/rest`.
    pub base: String,
    /// The in-memory CRM.
    pub state: Arc<Mutex<FakeState>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Starts a fake seeded with `contacts` contacts (ids 1..=n; contact `i` has email
/// `contact{i}@example.com`, 0-based), tags 10 VIP, 11 Customer, 12 Newsletter, users 1
/// (active) and 2 (inactive), and the custom field `_LeadScore`.
pub async fn start(contacts: usize) -> FakeServer {
    let mut s = FakeState {
        next_id: 1000,
        ..FakeState::default()
    };
    for i in 0..contacts {
        let id = i as u64 + 1;
        s.contacts.insert(
            id,
            json!({
                "id": id.to_string(),
                "given_name": format!("First{i}"),
                "family_name": format!("Last{i}"),
                "email_addresses": [{"email": format!("contact{i}@example.com"),
                    "field": "EMAIL1", "email_opt_status": "UNENGAGED_MARKETABLE",
                    "is_opt_in": true}],
                "phone_numbers": [], "addresses": [], "tag_ids": [],
                "custom_fields": [{"id": CUSTOM_FIELD_ID, "content": null},
                    {"id": SECOND_CUSTOM_FIELD_ID, "content": null}],
                "create_time": "2024-01-01T00:00:00.000Z",
                "update_time": "2024-01-01T00:00:00.000Z",
            }),
        );
    }
    for (id, name) in [(10, "VIP"), (11, "Customer"), (12, "Newsletter")] {
        s.tags.insert(
            id,
            // Keap-v2 Tag.category is a CategoryReference: only the id.
            json!({"id": id.to_string(), "name": name, "description": "",
                "category": {"id": "1"}}),
        );
    }
    s.custom_fields
        .push(json!({"id": CUSTOM_FIELD_ID, "label": "Lead Score",
        "field_name": "LeadScore", "field_type": "WHOLE_NUMBER", "record_type": "CONTACT"}));
    s.custom_fields
        .push(json!({"id": SECOND_CUSTOM_FIELD_ID, "label": "Source",
        "field_name": "Source", "field_type": "TEXT", "record_type": "CONTACT"}));
    s.sequences = vec![(CAMPAIGN_SEQUENCE.0.into(), CAMPAIGN_SEQUENCE.1.into())];
    s.stages = ["New", "Qualified", "Won"]
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": (i + 1).to_string(), "name": n, "order": i}))
        .collect();
    // Contact 1 has two opportunities in New (the older first), contact 2 one in Qualified.
    for (id, contact, stage, created) in [
        (701, "1", ("1", "New"), "2024-01-01T00:00:00Z"),
        (702, "1", ("1", "New"), "2024-02-01T00:00:00Z"),
        (703, "2", ("2", "Qualified"), "2024-01-15T00:00:00Z"),
    ] {
        s.opportunities.insert(
            id,
            json!({"id": id.to_string(), "opportunity_title": format!("Deal {id}"),
                "contact": {"id": contact}, "stage": {"id": stage.0, "name": stage.1},
                "created_time": created}),
        );
    }
    s.tag_categories = vec![json!({"id": "1", "name": "General", "description": ""})];
    // Keap-v2 User: `email_addresses` (EmailAddress list), `status` in ACTIVE, INVITED,
    // INACTIVE, NOT_A_USER.
    s.users = vec![
        json!({"id": "1", "given_name": "Ann", "family_name": "Admin",
            "email_addresses": [{"email": "ann@example.com", "field": "EMAIL1"}],
            "status": "ACTIVE"}),
        json!({"id": "2", "given_name": "Bob", "family_name": "Gone",
            "email_addresses": [{"email": "bob@example.com", "field": "EMAIL1"}],
            "status": "INACTIVE"}),
        json!({"id": "3", "given_name": "Ivy", "family_name": "Invited",
            "email_addresses": [{"email": "ivy@example.com", "field": "EMAIL1"}],
            "status": "INVITED"}),
    ];
    s.access_tokens.insert("keap-access-0".into());
    s.refresh_tokens.insert("keap-refresh-0".into());
    let state = Arc::new(Mutex::new(s));
    let st = state.clone();
    let addr = fake_http::serve(Arc::new(move |req| handle(&st, &req))).await;
    FakeServer {
        base: format!("http://{addr}{PREFIX}"),
        state,
    }
}

impl FakeServer {
    /// OAuth tokens the fake accepts, valid for a day.
    #[must_use]
    pub fn credentials() -> Credentials {
        Credentials::OAuth {
            access_token: "keap-access-0".into(),
            refresh_token: "keap-refresh-0".into(),
            expires_at: chrono::Utc::now().timestamp_millis() + 86_400_000,
        }
    }

    /// The OAuth client of the fake's token endpoint.
    #[must_use]
    pub fn oauth(&self) -> crate::connectors::vendor::OAuthClient {
        crate::connectors::vendor::OAuthClient {
            token_url: format!("{}/oauth/token", self.base),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_basic_auth: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next request fail with `status` (429 carries `Retry-After` when given).
    /// Calls queue up: three calls fail the next three requests.
    pub fn fail_next(&self, status: u16, retry_after_secs: Option<u64>) {
        self.lock().fails.push_back((status, retry_after_secs));
    }

    /// Every request so far, `"METHOD /path?query"`.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Sets a field of a contact directly, by mfh key (`first_name`, `email`,
    /// `_LeadScore`, ...); other keys set the top-level Keap property of that name.
    pub fn set_field(&self, contact_id: &str, field: &str, value: &str) {
        let mut s = self.lock();
        let cf_id = custom_field_id(&s, field);
        let Some(c) = id(contact_id).and_then(|i| s.contacts.get_mut(&i)) else {
            return;
        };
        let slot = |c: &mut Value, list: &str, prop: &str, field: &str| {
            c[list] = json!([{ prop: value, "field": field }]);
        };
        match (field, cf_id) {
            (_, Some(cf)) => {
                let list = c["custom_fields"].as_array_mut();
                match list.and_then(|l| {
                    l.iter_mut()
                        .find(|e| text(&e["id"]).as_deref() == Some(&cf))
                }) {
                    Some(e) => e["content"] = json!(value),
                    None => c["custom_fields"] = json!([{"id": cf, "content": value}]),
                }
            }
            ("first_name", _) => c["given_name"] = json!(value),
            ("last_name", _) => c["family_name"] = json!(value),
            ("email", _) => slot(c, "email_addresses", "email", "EMAIL1"),
            ("phone", _) => slot(c, "phone_numbers", "number", "PHONE1"),
            ("timezone", _) => c["time_zone"] = json!(value),
            (other, _) => c[other] = json!(value),
        }
        c["update_time"] = json!(now());
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

    /// Invalidates every access token issued so far: the API answers 401 until the
    /// connector refreshes.
    pub fn expire_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    /// How many refresh grants the token endpoint has honoured.
    #[must_use]
    pub fn refreshes(&self) -> usize {
        self.lock().refreshes
    }

    /// An opportunity as stored.
    #[must_use]
    pub fn opportunity(&self, id: u64) -> Option<Value> {
        self.lock().opportunities.get(&id).cloned()
    }

    /// Contacts added to campaign sequences: (campaign id, sequence id, contact id).
    #[must_use]
    pub fn in_sequences(&self) -> Vec<(String, String, String)> {
        self.lock().in_sequences.clone()
    }

    /// A contact as Keap stores it.
    #[must_use]
    pub fn contact(&self, contact_id: &str) -> Option<Value> {
        let s = self.lock();
        id(contact_id).and_then(|i| s.contacts.get(&i).cloned())
    }
}

fn id(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

fn custom_field_id(s: &FakeState, key: &str) -> Option<String> {
    let name = key.trim_start_matches('_');
    s.custom_fields
        .iter()
        .find(|f| f["field_name"].as_str() == Some(name) || f["label"].as_str() == Some(key))
        .and_then(|f| text(&f["id"]))
}

/// Keap v2's error body.
fn error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    Response::json(
        status,
        &json!({"code": status, "message": message, "status": kind, "details": []}),
    )
}

fn handle(state: &Mutex<FakeState>, req: &Request) -> Response {
    let mut s = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.requests.push(req.line());
    if let Some((status, after)) = s.fails.pop_front() {
        let r = error(status, "injected failure");
        return match after {
            Some(secs) => r.with_header("retry-after", &secs.to_string()),
            None => r,
        };
    }
    let Some(path) = req.path.strip_prefix(PREFIX) else {
        return error(404, "no such path");
    };
    if path == "/oauth/token" && req.method == "POST" {
        return super::fake_routes::token(&mut s, req);
    }
    // OAuth tokens come as Bearer; personal access tokens as X-Keap-API-Key.
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .or_else(|| req.header("x-keap-api-key"))
        .unwrap_or_default();
    if !s.access_tokens.contains(token) {
        // Keap's gateway answers 401 in its own (Apigee) shape.
        return Response::json(
            401,
            &json!({"fault": {"faultstring": "Invalid Access Token",
                "detail": {"errorcode": "keymanagement.service.invalid_access_token"}}}),
        );
    }
    // Every request a connector sends must be one Keap's v2 document allows (`spec/`);
    // the v1 goal call has no published document and is not checked.
    if let Err(e) = spec().check(&req.method, path, &req.query, &req.body) {
        return error(400, &format!("not in Keap's v2 spec: {e}"));
    }
    super::fake_routes::route(&mut s, req)
}

fn spec() -> &'static crate::connectors::spec_check::Spec {
    static SPEC: std::sync::OnceLock<crate::connectors::spec_check::Spec> =
        std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        crate::connectors::spec_check::Spec::load(&["keap/spec/keap-v2.yml"], "/rest", &["/v2/"])
    })
}

impl FakeState {
    /// A fresh numeric id for created objects.
    pub(super) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Issues a new access and refresh token pair.
    pub(super) fn issue(&mut self, refresh: bool) -> Value {
        let n = self.new_id();
        let (access, rt) = (format!("keap-access-{n}"), format!("keap-refresh-{n}"));
        self.access_tokens.insert(access.clone());
        self.refresh_tokens.insert(rt.clone());
        if refresh {
            self.refreshes += 1;
        }
        json!({"access_token": access, "refresh_token": rt, "expires_in": 86_400,
            "token_type": "bearer", "scope": "full"})
    }

    /// Spends a refresh token (Keap rotates them).
    pub(super) fn take_refresh(&mut self, token: &str) -> bool {
        self.refresh_tokens.remove(token)
    }
}

/// The projection of a stored contact that `fields` asks for (Keap's default leaves
/// `custom_fields` and `tag_ids` out).
pub(super) fn project(c: &Value, fields: Option<&str>) -> Value {
    let Some(all) = c.as_object() else {
        return c.clone();
    };
    let wanted: Option<Vec<&str>> = fields.map(|f| f.split(',').map(str::trim).collect());
    let out: Map<String, Value> = all
        .iter()
        .filter(|(k, _)| match &wanted {
            Some(w) => k.as_str() == "id" || w.contains(&k.as_str()),
            None => !matches!(k.as_str(), "custom_fields" | "tag_ids"),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}
