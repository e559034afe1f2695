//! Test support for helper unit tests: contacts, an [`Env`] holding everything a [`Ctx`]
//! borrows (in-memory CRM data and state, pinned clock and seed), and [`MockVendor`], a
//! real HTTP server on 127.0.0.1 that records requests and answers with canned responses.

#![allow(dead_code)] // A shared kit: not every build of the tests uses every item.

use super::*;
use crate::connectors::CrmData;
use crate::state::MemoryState;
use std::sync::{Arc, Mutex};

/// The fixed "now" of [`Env::new`]: 2026-03-15T12:00:00Z, a Sunday.
pub(crate) fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-15T12:00:00Z")
        .expect("fixed time parses")
        .to_utc()
}

/// A contact with the given fields and tag ids (each tag named after its id).
pub(crate) fn contact(fields: &[(&str, &str)], tags: &[&str]) -> Contact {
    Contact {
        id: "c-1".into(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        tags: tags
            .iter()
            .map(|t| ((*t).to_owned(), (*t).to_owned()))
            .collect(),
        ..Contact::default()
    }
}

/// Everything a [`Ctx`] borrows, owned, with public fields to adjust per test.
pub(crate) struct Env {
    pub(crate) execution_id: String,
    pub(crate) account_id: String,
    pub(crate) instance: String,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) seed: u64,
    pub(crate) input: Option<Value>,
    pub(crate) http: HttpClient,
    pub(crate) crm: CrmData,
    pub(crate) state: MemoryState,
    pub(crate) vendors: Vendors,
    pub(crate) files: object_store::memory::InMemory,
    pub(crate) dry_run: bool,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// Execution `exec-test` of account `acct-test` at [`fixed_now`], seed 42, empty
    /// CRM data and state, every vendor at its public default.
    pub(crate) fn new() -> Self {
        Self {
            execution_id: "exec-test".into(),
            account_id: "acct-test".into(),
            instance: "inst-test".into(),
            now: fixed_now(),
            seed: 42,
            input: None,
            http: HttpClient::for_tests(),
            crm: CrmData::default(),
            state: MemoryState::new(),
            vendors: Vendors::default(),
            files: object_store::memory::InMemory::new(),
            dry_run: false,
        }
    }

    /// Points `vendor` at `base` (a [`MockVendor`]).
    pub(crate) fn vendor(mut self, vendor: &str, base: &str) -> Self {
        self.vendors = self.vendors.with(vendor, base);
        self
    }

    /// The context borrowing this environment; the state's expiry clock follows `now`.
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        self.state.set_now(self.now);
        Ctx {
            execution_id: &self.execution_id,
            account_id: &self.account_id,
            instance: &self.instance,
            now: self.now,
            seed: self.seed,
            input: self.input.as_ref(),
            http: &self.http,
            crm: &self.crm,
            state: &self.state,
            vendors: &self.vendors,
            files: &self.files,
            dry_run: self.dry_run,
        }
    }

    /// Builds `helper` from `config` and runs it against `contact`.
    ///
    /// # Panics
    /// If the config is invalid.
    pub(crate) async fn run(
        &self,
        helper: &dyn DynHelper,
        config: Value,
        contact: &Contact,
    ) -> Result<Outcome, StepError> {
        let step = helper.build_json(&config).expect("config is valid");
        step.run(&self.ctx(), contact).await
    }

    /// Like [`Env::run`], from synchronous tests.
    pub(crate) fn block_on_run(
        &self,
        helper: &dyn DynHelper,
        config: Value,
        contact: &Contact,
    ) -> Result<Outcome, StepError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt")
            .block_on(self.run(helper, config, contact))
    }
}

/// Builds `helper` from a JSON config and runs it once against `contact` in a default
/// [`Env`].
pub(crate) fn run(helper: &dyn DynHelper, config: Value, contact: &Contact) -> Outcome {
    try_run(helper, config, contact).expect("helper runs")
}

/// Like [`run`] but returns the step error.
pub(crate) fn try_run(
    helper: &dyn DynHelper,
    config: Value,
    contact: &Contact,
) -> Result<Outcome, StepError> {
    Env::new().block_on_run(helper, config, contact)
}

/// The change that sets `field` to `value`.
pub(crate) fn set(field: &str, value: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: Some(value.into()),
    }
}

/// The config errors of `config`, or an empty list if it is valid.
pub(crate) fn config_errors(helper: &dyn DynHelper, config: Value) -> Vec<FieldError> {
    match helper.build_json(&config) {
        Ok(_) => vec![],
        Err(e) => e.errors,
    }
}

/// A request the mock vendor received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    /// Path without the query.
    pub(crate) path: String,
    /// The raw query string ("" when absent).
    pub(crate) query: String,
    /// Headers with lower-case names.
    pub(crate) headers: std::collections::BTreeMap<String, String>,
    /// The body as text.
    pub(crate) body: String,
}

impl Received {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The body parsed as a form (`application/x-www-form-urlencoded`).
    pub(crate) fn form(&self) -> std::collections::BTreeMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

type Routes = Vec<(String, String, u16, Value)>;

/// A local HTTP server standing in for a vendor. Each route is (method, path, status,
/// JSON body); the first route matching method and path answers; anything else gets 404.
/// Every request is recorded for the test to check.
pub(crate) struct MockVendor {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    received: Arc<Mutex<Vec<Received>>>,
    routes: Arc<Mutex<Routes>>,
}

impl MockVendor {
    /// Starts a server with `routes`: `(method, path, status, body)`.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub(crate) async fn start(routes: &[(&str, &str, u16, Value)]) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let table: Arc<Mutex<Routes>> = Arc::new(Mutex::new(
            routes
                .iter()
                .map(|(m, p, s, b)| ((*m).to_owned(), (*p).to_owned(), *s, b.clone()))
                .collect(),
        ));
        let (log, rt) = (received.clone(), table.clone());
        let app = axum::Router::new().fallback(
            move |m: axum::http::Method,
                  u: axum::http::Uri,
                  h: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let (log, rt) = (log.clone(), rt.clone());
                async move {
                    let req = Received {
                        method: m.to_string(),
                        path: u.path().to_owned(),
                        query: u.query().unwrap_or("").to_owned(),
                        headers: h
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let answer = rt
                        .lock()
                        .expect("routes lock")
                        .iter()
                        .find(|(rm, rp, _, _)| *rm == req.method && *rp == req.path)
                        .map(|(_, _, s, b)| (*s, b.clone()));
                    log.lock().expect("log lock").push(req);
                    let (status, body) =
                        answer.unwrap_or((404, serde_json::json!({"error": "no such route"})));
                    (
                        axum::http::StatusCode::from_u16(status)
                            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                        axum::Json(body),
                    )
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            received,
            routes: table,
        }
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log lock").clone()
    }

    /// The only request received.
    ///
    /// # Panics
    /// Unless exactly one request arrived.
    pub(crate) fn single(&self) -> Received {
        let all = self.received();
        assert_eq!(all.len(), 1, "expected one request, got {all:?}");
        all.into_iter().next().expect("one request")
    }

    /// Adds or replaces a route (to change an answer mid-test).
    pub(crate) fn route(&self, method: &str, path: &str, status: u16, body: Value) {
        let mut t = self.routes.lock().expect("routes lock");
        t.retain(|(m, p, _, _)| !(m == method && p == path));
        t.insert(0, (method.to_owned(), path.to_owned(), status, body));
    }
}
