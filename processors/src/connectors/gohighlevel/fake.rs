//! A fake GoHighLevel for contract tests, end-to-end tests and the sync benchmark: one
//! stateful in-memory location behind API v2's paths, bodies, `searchAfter` cursor,
//! `Version` header and error shapes, with an OAuth token endpoint at
//! `{base}/oauth/token`.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use super::types;
use crate::connectors::hubspot::fake_http::{self, Common, Pre, Response};
use crate::connectors::vendor::Credentials;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The fake's location.
pub const LOCATION_ID: &str = "ve9EPM428h8vShlRW1KT";
/// The private integration token the fake accepts besides OAuth access tokens.
pub const PRIVATE_TOKEN: &str = "pit-fake-0000";
/// The fake's one custom field: (id, name, field key).
pub const CUSTOM_FIELD: (&str, &str, &str) = (
    "BcdmQEsNgz6AVpgLVUJ0",
    "Favorite Color",
    "contact.favorite_color",
);
/// Typed custom fields: (id, name, field key, dataType). GHL-docs `apps/contacts.json`
/// types a write's `field_value` per field: NumericField and MonetoryField a number,
/// CheckboxField and MultiSelectField `string[]`, the text kinds a string.
pub const TYPED_FIELDS: [(&str, &str, &str, &str); 2] = [
    (
        "Kz1NumericField00001",
        "Visits",
        "contact.visits",
        "NUMERICAL",
    ),
    (
        "Mq2MultiField0000001",
        "Interests",
        "contact.interests",
        "MULTIPLE_OPTIONS",
    ),
];
/// The one workflow contacts can be added to.
pub const WORKFLOW_ID: &str = "78559bb3-b920-461e-b010-7b2a2816d2a9";
/// The fake's users: (id, name).
pub const USERS: [(&str, &str); 2] = [("user-1", "Ann Owner"), ("user-2", "Bob Owner")];

/// The fake location.
#[derive(Debug)]
pub struct FakeState {
    /// Contact objects by id, in GoHighLevel's JSON shape.
    pub contacts: BTreeMap<String, Value>,
    /// Tags: (id, name).
    pub tags: Vec<(String, String)>,
    /// Notes: (contact id, body).
    pub notes: Vec<(String, String)>,
    /// Workflow enrolments: (contact id, workflow id).
    pub enrolments: Vec<(String, String)>,
    pub(super) common: Common,
    pub(super) next_id: u64,
}

/// A running fake GoHighLevel.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`, the API base.
    pub base: String,
    /// The location.
    pub state: Arc<Mutex<FakeState>>,
}

/// Milliseconds as GoHighLevel's ISO timestamps.
pub(super) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// GoHighLevel's error body.
pub(super) fn error(status: u16, message: &str) -> Response {
    let error = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        _ => "Error",
    };
    let message = if status == 422 {
        json!([message])
    } else {
        json!(message)
    };
    Response::json(
        status,
        &json!({"statusCode": status, "message": message, "error": error}),
    )
}

/// Starts a fake with `contacts` contacts (20-character ids; `contact{i}@example.com`,
/// `First{i}`, `Last{i}`, favourite colour blue; three contacts share each creation
/// time, so the cursor must break ties by id), tags vip, customer and newsletter (the
/// first contact has vip), two users and one workflow.
pub async fn start(contacts: usize) -> FakeServer {
    let mut state = FakeState {
        contacts: BTreeMap::new(),
        tags: ["vip", "customer", "newsletter"]
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("tag{i:016}"), (*n).to_owned()))
            .collect(),
        notes: Vec::new(),
        enrolments: Vec::new(),
        common: Common::default(),
        next_id: 1,
    };
    state.common.static_tokens.insert(PRIVATE_TOKEN.into());
    // GHL-docs `apps/oauth.json` GetAccessCodeSuccessfulResponseDto: a location token
    // names its location and company.
    state.common.token_fields = json!({"locationId": LOCATION_ID,
        "companyId": "fakeCompany0000000001", "userType": "Location",
        "scope": "contacts.readonly contacts.write"})
    .as_object()
    .cloned()
    .unwrap_or_default();
    for i in 1..=contacts {
        let id = format!("ct{i:018}");
        let added = 1_700_000_000_000 + (i as i64 / 3) * 1000;
        let tags: Vec<&str> = if i == 1 { vec!["vip"] } else { Vec::new() };
        let contact = json!({
            "id": id, "locationId": LOCATION_ID,
            "email": format!("contact{i}@example.com"),
            "firstName": format!("First{i}"), "lastName": format!("Last{i}"),
            "dnd": false, "tags": tags,
            "customFields": [{"id": CUSTOM_FIELD.0, "value": "blue"}],
            "dateAdded": iso(added), "dateUpdated": iso(added),
        });
        state.contacts.insert(id, contact);
    }
    let state = Arc::new(Mutex::new(state));
    let shared = state.clone();
    let base = fake_http::serve(move |req| {
        let mut s = shared.lock().expect("fake state lock");
        match s.common.pre(&req, "/oauth/token") {
            Pre::Answer(r) => r,
            Pre::Fail(status, retry) => {
                let r = error(status, "injected failure");
                match retry {
                    Some(secs) => r.header("retry-after", &secs.to_string()),
                    None => r,
                }
            }
            Pre::Unauthorized => error(401, "Invalid token: access token is invalid"),
            Pre::Route if req.headers.get("version").map(String::as_str) != Some("2021-07-28") => {
                error(400, "version header must be 2021-07-28")
            }
            Pre::Route => match spec().check(&req.method, &req.path, &req.query, &req.body) {
                Ok(()) => s.route(&req),
                // GHL validates requests and answers 422 for what its DTOs do not allow.
                Err(e) => error(422, &format!("not in GoHighLevel's spec: {e}")),
            },
        }
    })
    .await;
    FakeServer { base, state }
}

impl FakeServer {
    /// OAuth credentials the fake accepts (refreshable at `{base}/oauth/token` with
    /// client `fake-client` / `fake-secret`).
    #[must_use]
    pub fn credentials() -> Credentials {
        Credentials::OAuth {
            access_token: fake_http::FIRST_TOKEN.into(),
            refresh_token: fake_http::REFRESH_TOKEN.into(),
            expires_at: 4_102_444_800_000,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state lock")
    }

    /// Makes the next request fail with `status` (each call queues one failure).
    pub fn fail_next(&self, status: u16, retry_after_secs: Option<u64>) {
        self.lock()
            .common
            .failures
            .push_back((status, retry_after_secs));
    }

    /// Every request so far, as `METHOD /path?query`.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.lock().common.requests.clone()
    }

    /// Sets a field of a contact: an mfh standard key, a GoHighLevel attribute, or the
    /// custom field's name.
    pub fn set_field(&self, contact_id: &str, field: &str, value: &str) {
        let mut s = self.lock();
        let Some(c) = s.contacts.get_mut(contact_id) else {
            return;
        };
        if field == CUSTOM_FIELD.1 || field == CUSTOM_FIELD.2 {
            c["customFields"] = json!([{"id": CUSTOM_FIELD.0, "value": value}]);
        } else {
            c[types::attribute_of(field).unwrap_or(field)] = json!(value);
        }
        c["dateUpdated"] = json!(iso(chrono::Utc::now().timestamp_millis()));
    }

    /// Deletes a contact.
    pub fn delete_contact(&self, contact_id: &str) {
        self.lock().contacts.remove(contact_id);
    }

    /// Every contact id, ascending.
    #[must_use]
    pub fn contact_ids(&self) -> Vec<String> {
        self.lock().contacts.keys().cloned().collect()
    }

    /// Expires every access token issued so far; the API answers 401 for them.
    pub fn expire_tokens(&self) {
        self.lock().common.expire();
    }

    /// Refresh-token grants served.
    #[must_use]
    pub fn refreshes(&self) -> usize {
        self.lock().common.refreshes
    }
}

/// HighLevel's documents (`spec/`): every API request the fake serves must fit them.
fn spec() -> &'static crate::connectors::spec_check::Spec {
    static SPEC: std::sync::OnceLock<crate::connectors::spec_check::Spec> =
        std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        crate::connectors::spec_check::Spec::load(
            &[
                "gohighlevel/spec/contacts.json",
                "gohighlevel/spec/locations.json",
                "gohighlevel/spec/users.json",
                "gohighlevel/spec/workflows.json",
            ],
            "",
            &["/"],
        )
    })
}
