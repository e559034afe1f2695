//! A fake HubSpot for contract tests, end-to-end tests and the sync benchmark: a
//! stateful in-memory portal behind HubSpot's CRM v3 paths, bodies, cursors and error
//! shapes, with an OAuth token endpoint at `{base}/oauth/token`.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use super::fake_http::{self, Common, Pre, Response};
use super::types::{self, OPTED_OUT};
use crate::connectors::vendor::Credentials;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// The private-app token the fake accepts besides OAuth access tokens.
pub const PRIVATE_APP_TOKEN: &str = "pat-na1-fake";
/// The fake's tag property.
pub const TAG_PROPERTY: &str = "mfh_tags";
/// The fake's one custom property.
pub const CUSTOM_PROPERTY: &str = "favorite_color";
/// The fake's one subscription type.
pub const SUBSCRIPTION_ID: &str = "1001";
pub(super) const READ_ONLY: &[&str] = &[
    "hs_analytics_source",
    OPTED_OUT,
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
];

/// One fake contact.
#[derive(Debug, Clone)]
pub struct FakeContact {
    /// Property values by internal name.
    pub properties: BTreeMap<String, String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// The fake portal.
#[derive(Debug)]
pub struct FakeState {
    /// Contacts by numeric id.
    pub contacts: BTreeMap<u64, FakeContact>,
    /// The tag property's options: (value, label).
    pub tag_options: Vec<(String, String)>,
    /// Custom property names.
    pub custom: Vec<String>,
    /// Notes: (contact id, body).
    pub notes: Vec<(String, String)>,
    /// Owners: (id, email).
    pub owners: Vec<(String, String)>,
    /// Unsubscribed subscription ids by lower-case email.
    pub unsubscribed: BTreeMap<String, BTreeSet<String>>,
    /// The portal's id, different for every fake started in a process.
    pub portal_id: u64,
    common: Common,
    pub(super) next_note: u64,
}

/// A running fake HubSpot.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`, the API base.
    pub base: String,
    /// The portal.
    pub state: Arc<Mutex<FakeState>>,
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// HubSpot's error body.
pub(super) fn error(status: u16, category: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"status": "error", "message": message, "correlationId": "fake-correlation",
            "category": category}),
    )
}

static NEXT_PORTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(62_515);

/// Starts a fake with `contacts` contacts (ids 101, 102, ...; `contact{i}@example.com`,
/// `First{i}`, `Last{i}`, favourite colour blue), tag options VIP, Customer and
/// Newsletter (the first contact has VIP), two owners and one subscription type.
pub async fn start(contacts: usize) -> FakeServer {
    let mut state = FakeState {
        contacts: BTreeMap::new(),
        tag_options: [
            ("vip", "VIP"),
            ("customer", "Customer"),
            ("newsletter", "Newsletter"),
        ]
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect(),
        custom: vec![CUSTOM_PROPERTY.to_owned()],
        notes: Vec::new(),
        owners: vec![
            ("501".into(), "owner1@example.com".into()),
            ("502".into(), "owner2@example.com".into()),
        ],
        unsubscribed: BTreeMap::new(),
        portal_id: NEXT_PORTAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        common: Common::default(),
        next_note: 9001,
    };
    state.common.static_tokens.insert(PRIVATE_APP_TOKEN.into());
    for i in 1..=contacts {
        let mut p: BTreeMap<String, String> = [
            ("email", format!("contact{i}@example.com")),
            ("firstname", format!("First{i}")),
            ("lastname", format!("Last{i}")),
            (CUSTOM_PROPERTY, "blue".into()),
            (OPTED_OUT, "false".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if i == 1 {
            p.insert(TAG_PROPERTY.into(), "vip".into());
        }
        state.contacts.insert(
            100 + i as u64,
            FakeContact {
                properties: p,
                created_at: "2024-01-01T00:00:00.000Z".into(),
                updated_at: "2024-01-02T00:00:00.000Z".into(),
            },
        );
    }
    let state = Arc::new(Mutex::new(state));
    let shared = state.clone();
    let base = fake_http::serve(move |req| {
        let mut s = shared.lock().expect("fake state lock");
        match s.common.pre(&req, "/oauth/token") {
            Pre::Answer(r) => r,
            Pre::Fail(status, retry) => {
                let r = error(status, "INJECTED", "injected failure");
                match retry {
                    Some(secs) => r.header("retry-after", &secs.to_string()),
                    None => r,
                }
            }
            Pre::Unauthorized => error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found.",
            ),
            Pre::Route => s.route(&req),
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

    /// The portal's id, as its account details and webhooks name it.
    #[must_use]
    pub fn portal_id(&self) -> u64 {
        self.lock().portal_id
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

    /// Sets a property (an mfh field key or a HubSpot internal name) of a contact.
    pub fn set_field(&self, contact_id: &str, field: &str, value: &str) {
        let mut s = self.lock();
        if let Some(c) = contact_id
            .parse()
            .ok()
            .and_then(|id| s.contacts.get_mut(&id))
        {
            c.properties
                .insert(types::property_of(field).to_owned(), value.to_owned());
            c.updated_at = now();
        }
    }

    /// Deletes a contact.
    pub fn delete_contact(&self, contact_id: &str) {
        if let Ok(id) = contact_id.parse::<u64>() {
            self.lock().contacts.remove(&id);
        }
    }

    /// Every contact id, ascending.
    #[must_use]
    pub fn contact_ids(&self) -> Vec<String> {
        self.lock().contacts.keys().map(u64::to_string).collect()
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
