//! A fake ActiveCampaign account for contract tests, end-to-end tests and the sync
//! benchmark: a stateful in-memory CRM serving API v3's paths and shapes under
//! `http://127.0.0.1:PORT/api/3`, checking the `Api-Token` header.

use crate::connectors::fake_http::{self, Request, Response};
use crate::connectors::vendor::Credentials;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// The API token the fake accepts.
pub const TOKEN: &str = "fake-ac-token";

/// One contact of the fake account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeContact {
    /// Email.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone.
    pub phone: String,
    /// Creation time, ISO 8601 with offset as ActiveCampaign writes it.
    pub cdate: String,
    /// Last update time.
    pub udate: String,
    /// Custom field id → value.
    pub field_values: BTreeMap<u64, String>,
    /// List id → status (1 subscribed, 2 unsubscribed).
    pub lists: BTreeMap<u64, u8>,
}

/// A custom field of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeField {
    /// Title.
    pub title: String,
    /// Personalisation tag.
    pub perstag: String,
}

/// The fake account's data and what the fake has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Contacts by id.
    pub contacts: BTreeMap<u64, FakeContact>,
    /// Tag catalog: id → name.
    pub tags: BTreeMap<u64, String>,
    /// Custom fields by id.
    pub fields: BTreeMap<u64, FakeField>,
    /// `contactTag` join records: id → (contact, tag).
    pub contact_tags: BTreeMap<u64, (u64, u64)>,
    /// Lists: id → name.
    pub lists: BTreeMap<u64, String>,
    /// Automations: id → name.
    pub automations: BTreeMap<u64, String>,
    /// Contacts added to automations: (contact, automation).
    pub contact_automations: Vec<(u64, u64)>,
    /// Notes: (contact, text).
    pub notes: Vec<(u64, String)>,
    /// Requests seen, `METHOD /api/3/path?query`.
    pub requests: Vec<String>,
    /// Failures to answer the next requests with: (status, Retry-After seconds); status 0
    /// answers that request normally, so a later one can be failed.
    pub failures: VecDeque<(u16, Option<u64>)>,
    next_id: u64,
}

impl FakeState {
    /// A fresh id for any record.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The id of the custom field titled `title`.
    #[must_use]
    pub fn field_id(&self, title: &str) -> Option<u64> {
        self.fields
            .iter()
            .find(|(_, f)| f.title == title)
            .map(|(id, _)| *id)
    }
}

/// A running fake ActiveCampaign account.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// `http://127.0.0.1:PORT/api/3`.
    pub base: String,
    /// The account's state.
    pub state: Arc<Mutex<FakeState>>,
}

fn seed(contacts: usize) -> FakeState {
    let mut s = FakeState::default();
    for (id, name) in [(1, "VIP"), (2, "Customer"), (3, "Newsletter")] {
        s.tags.insert(id, name.to_owned());
    }
    s.fields.insert(
        1,
        FakeField {
            title: "Favorite Color".into(),
            perstag: "FAVORITE_COLOR".into(),
        },
    );
    s.lists.insert(1, "Master Contact List".into());
    s.automations.insert(1, "Welcome Series".into());
    for i in 1..=contacts {
        s.contacts.insert(
            i as u64,
            FakeContact {
                email: format!("contact{i}@example.com"),
                first_name: format!("First{i}"),
                last_name: format!("Last{i}"),
                cdate: "2024-01-02T03:04:05-05:00".into(),
                udate: "2024-01-02T03:04:05-05:00".into(),
                lists: [(1, 1)].into(),
                ..FakeContact::default()
            },
        );
    }
    // Ids of records created later never collide with seeded ones.
    s.next_id = 1000 + contacts as u64;
    s
}

/// Starts a fake account with `contacts` generated contacts (ids 1..=contacts, email
/// `contact{i}@example.com`), tags VIP (1), Customer (2) and Newsletter (3), the custom
/// field "Favorite Color" (1), list 1 (every contact subscribed) and automation 1.
///
/// # Panics
/// If no loopback port can be bound, which fails the test anyway.
#[allow(clippy::expect_used)]
pub async fn start(contacts: usize) -> FakeServer {
    let state = Arc::new(Mutex::new(seed(contacts)));
    let shared = state.clone();
    let addr = fake_http::serve(Arc::new(move |req: Request| handle(&shared, &req))).await;
    FakeServer {
        base: format!("http://{addr}/api/3"),
        state,
    }
}

fn handle(state: &Arc<Mutex<FakeState>>, req: &Request) -> Response {
    let Ok(mut s) = state.lock() else {
        return Response::json(500, &serde_json::json!({"message": "poisoned"}));
    };
    let target = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    s.requests.push(format!("{} {target}", req.method));
    // Status 0 in the queue lets a request through, to fail a later one.
    if let Some((status, retry_after)) = s.failures.pop_front().filter(|(st, _)| *st != 0) {
        let r = Response::json(status, &serde_json::json!({"message": "injected failure"}));
        return match retry_after {
            Some(secs) => r.with_header("retry-after", &secs.to_string()),
            None => r,
        };
    }
    if req.header("api-token") != Some(TOKEN) {
        return Response::json(
            401,
            &serde_json::json!({"message": "You are not authorized to access this resource"}),
        );
    }
    let Some(path) = req.path.strip_prefix("/api/3") else {
        return Response::json(404, &serde_json::json!({"message": "Not Found"}));
    };
    super::fake_routes::route(&mut s, req, path)
}

impl FakeServer {
    /// The credentials the fake accepts.
    #[must_use]
    pub fn credentials() -> Credentials {
        Credentials::ApiToken {
            token: TOKEN.into(),
        }
    }

    /// The state, locked; a poisoned lock (a panicked test thread) is taken over.
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers the next request with `status` (and `Retry-After` when given); call it
    /// several times to fail several requests, as the shared client retries 429 and 5xx.
    pub fn fail_next(&self, status: u16, retry_after_secs: Option<u64>) {
        self.lock().failures.push_back((status, retry_after_secs));
    }

    /// Requests seen so far, `METHOD /api/3/path?query` (query as sent).
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Sets a field of a contact behind the connector's back: `email`, `first_name`,
    /// `last_name`, `phone`, or a custom field's title (created when missing).
    pub fn set_field(&self, contact_id: &str, field: &str, value: &str) {
        let mut s = self.lock();
        let Ok(id) = contact_id.parse::<u64>() else {
            return;
        };
        let fid = match s.field_id(field) {
            Some(f) => Some(f),
            None if !matches!(field, "email" | "first_name" | "last_name" | "phone") => {
                let f = s.next_id();
                s.fields.insert(
                    f,
                    FakeField {
                        title: field.into(),
                        perstag: field.to_uppercase().replace(' ', "_"),
                    },
                );
                Some(f)
            }
            None => None,
        };
        let Some(c) = s.contacts.get_mut(&id) else {
            return;
        };
        let v = value.to_owned();
        match (field, fid) {
            ("email", _) => c.email = v,
            ("first_name", _) => c.first_name = v,
            ("last_name", _) => c.last_name = v,
            ("phone", _) => c.phone = v,
            (_, Some(f)) => {
                c.field_values.insert(f, v);
            }
            _ => {}
        }
    }

    /// Deletes a contact (and its tag links).
    pub fn delete_contact(&self, contact_id: &str) {
        let mut s = self.lock();
        if let Ok(id) = contact_id.parse::<u64>() {
            s.contacts.remove(&id);
            s.contact_tags.retain(|_, (c, _)| *c != id);
        }
    }

    /// Every contact id, ascending.
    #[must_use]
    pub fn contact_ids(&self) -> Vec<String> {
        self.lock().contacts.keys().map(u64::to_string).collect()
    }
}
