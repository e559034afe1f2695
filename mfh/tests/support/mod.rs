//! The end-to-end test stack: real broker and DynamoDB-compatible server from
//! `scripts/services` (endpoints in MFH_TEST_BROKERS and MFH_TEST_DYNAMO), the Schema
//! Registry in-process on a real socket, and mfh's API and processors. Every stack gets
//! its own topic, group and table prefix, so tests run side by side on one broker.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod smtp;

use mfh::config::Config;
use mfh::stack::{Processors, Stack};
use mfh_pipeline::CancellationToken;
use mfh_pipeline::metrics::Metrics;
use mfh_processors::billing::{AccountStatus, BillingState, Plan};
use mfh_processors::connectors::sandbox::{Sandbox, SeedFile};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub struct TestStack {
    pub cfg: Config,
    pub stack: Stack,
    pub base: String,
    pub key: String,
    pub account: String,
    pub registry_url: String,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    pub tasks: JoinSet<anyhow::Result<()>>,
    pub lake_dir: tempfile::TempDir,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test, which starts the broker and the store"))
}

/// Creates `account` on the Deliver plan (unlimited helpers), so tests that are not about
/// limits run any number of helpers.
pub async fn create_account(store: &mfh_processors::store::Store, account: &str) {
    let billing = BillingState {
        plan: Plan::Deliver,
        status: AccountStatus::Active,
        ..BillingState::default()
    };
    store
        .create_account(account, "Test account", Some("owner@example.com"), &billing)
        .await
        .unwrap();
}

pub fn seed() -> SeedFile {
    serde_json::from_str(include_str!("../../../seed/sandbox.json")).unwrap()
}

/// The workspace's root, where `.deps/bin` and `seed/` are.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A port free on 127.0.0.1 now, for a server started later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /v1/executions` until the API accepts it (202), sending the same request with the
/// same Idempotency-Key while the API is down, starting or unable to produce; returns the
/// execution id. A 4xx fails the test.
pub async fn accept_execution(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    idempotency_key: &str,
    body: &Value,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let sent = http
            .post(format!("{base}/v1/executions"))
            .header("x-api-key", key)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().as_u16() == 202 => {
                let v: Value = r.json().await.unwrap();
                return v["execution_id"].as_str().unwrap().to_owned();
            }
            Ok(r) if r.status().is_client_error() => {
                panic!("{} {}", r.status(), r.text().await.unwrap_or_default())
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{idempotency_key} never accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the registry and returns its URL.
pub async fn start_registry(cancel: &CancellationToken) -> String {
    let sock = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", sock.local_addr().unwrap());
    let state = mfh_pipeline::registry_server::RegistryState::open(None).unwrap();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = mfh_pipeline::registry_server::serve(
            sock,
            state,
            async move { stop.cancelled().await },
        )
        .await;
    });
    url
}

/// A config pointing at the test services with a unique prefix.
pub fn test_config(registry_url: &str, lake: &std::path::Path) -> Config {
    let mut cfg = Config::load(None).unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    cfg.kafka.brokers = env("MFH_TEST_BROKERS");
    cfg.kafka.schema_registry_url = registry_url.to_owned();
    cfg.kafka.prefix = format!("t{}.", &id[..10]);
    cfg.kafka.partitions = 4;
    cfg.dynamo.endpoint = env("MFH_TEST_DYNAMO");
    cfg.dynamo.table_prefix = format!("t{}_", &id[..10]);
    cfg.lake.root = lake.display().to_string();
    // Emails of tests without an SMTP server stay in the test's own directory.
    cfg.billing.email.outbox_dir = lake.join("outbox");
    cfg.processors.lake_max_wait = Duration::from_millis(50);
    cfg.processors.lake_compact_min_files = 4;
    cfg.processors.lake_delete_grace = Duration::from_secs(60);
    cfg.http.allow_private_networks = true;
    cfg
}

impl TestStack {
    /// The whole stack with every processor.
    pub async fn start() -> Self {
        Self::start_with(Some(Processors::All)).await
    }

    /// The stack with the chosen processors (None: API only).
    pub async fn start_with(processors: Option<Processors>) -> Self {
        Self::start_configured(processors, |_| {}).await
    }

    /// Like [`TestStack::start_with`], with the config adjusted by `tweak` first.
    pub async fn start_configured(
        processors: Option<Processors>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let cancel = CancellationToken::new();
        let registry_url = start_registry(&cancel).await;
        let lake_dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg = test_config(&registry_url, lake_dir.path());
        cfg.api.public_url.clone_from(&base);
        cfg.billing.email.dashboard_url.clone_from(&base);
        tweak(&mut cfg);
        let stack = Stack::connect(&cfg, Metrics::new()).await.unwrap();
        let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        create_account(&stack.services.store, &account).await;
        Sandbox::new(stack.services.store.clone(), &account, "sandbox")
            .seed(&seed())
            .await
            .unwrap();
        let key = stack
            .services
            .store
            .create_api_key(&account, "test")
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(mfh::stack::serve_api(
            stack.api_state(&cfg),
            listener,
            cancel.clone(),
        ));
        if let Some(p) = processors {
            stack.spawn_processors(&p, &mut tasks, &cancel);
        }
        Self {
            cfg,
            stack,
            base,
            key,
            account,
            registry_url,
            http: reqwest::Client::new(),
            cancel,
            tasks,
            lake_dir,
        }
    }

    /// A second account with its own key and sandbox.
    pub async fn add_account(&self) -> (String, String) {
        let account = format!("acct_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        create_account(&self.stack.services.store, &account).await;
        Sandbox::new(self.stack.services.store.clone(), &account, "sandbox")
            .seed(&seed())
            .await
            .unwrap();
        let key = self
            .stack
            .services
            .store
            .create_api_key(&account, "test")
            .await
            .unwrap();
        (account, key)
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `method path` with the stack's key and a JSON body (none for `null`).
    pub async fn request_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        if !body.is_null() {
            r = r.json(body);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Requests an execution and returns its id.
    pub async fn execute(&self, helper: &str, config: Value, contact: &str) -> String {
        let (status, body) = self
            .post("/v1/executions", &self.key, &json!({"helper": helper, "config": config, "connection_id": "sandbox", "contact_id": contact}))
            .await;
        assert_eq!(status, 202, "{body}");
        body["execution_id"].as_str().unwrap().to_owned()
    }

    /// Polls until the execution has a final status.
    pub async fn wait_done(&self, id: &str, key: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(&format!("/v1/executions/{id}"), key).await;
            if status == 200 && body["status"] != "queued" {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} not done in 60 s: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs explorer SQL as `key`.
    pub async fn sql(&self, key: &str, sql: &str) -> (u16, Value) {
        self.post("/v1/explorer/query", key, &json!({ "sql": sql }))
            .await
    }

    /// Polls the explorer until `sql`'s first cell equals `want`.
    pub async fn wait_sql(&self, key: &str, sql: &str, want: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.sql(key, sql).await;
            if status == 200 && body["rows"][0][0] == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{sql}: wanted {want}, last {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// A stand-in for every third-party vendor at once, on 127.0.0.1: answers any request
/// with 200 and one JSON body holding the success fields the vendors' documented
/// responses use (Slack `ok`, Twilio `sid`, Zoom `join_url`, ip-api `status`, ...).
/// Returns its base URL and the requests it received as (method, path).
pub async fn start_vendor_stub(
    cancel: &CancellationToken,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |m: axum::http::Method, u: axum::http::Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((m.to_string(), u.path().to_owned()));
            axum::Json(json!({
                "ok": true, "status": "success", "result": "valid", "sid": "SM0001", "id": "1001",
                "join_url": "https://zoom.example.com/j/1001", "joinUrl": "https://gtw.example.com/j/1",
                "registrant_id": "r-1", "registrantKey": 5001, "user_id": "u-1",
                "country": "United States", "countryCode": "US", "region": "TX",
                "regionName": "Texas", "city": "Austin", "zip": "73301", "lat": 30.27,
                "lon": -97.74, "timezone": "America/Chicago", "isp": "Example ISP",
                "field_data": [], "participants": [], "registrants": [], "next_page_token": "",
                "collection": [], "total_records": 0
            }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    (base, seen)
}

/// Reads the stack's dead-letter topic from its start, as its own consumer group.
pub struct DeadLetters {
    consumer: rdkafka::consumer::StreamConsumer,
    serde: mfh_pipeline::avro::AvroSerde,
}

impl DeadLetters {
    /// The next dead letter, within `within`; panics naming `what` otherwise.
    pub async fn next(&self, within: Duration, what: &str) -> mfh_schemas::DeadLetter {
        use rdkafka::message::Message;
        let m = tokio::time::timeout(within, self.consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{what} is dead-lettered"))
            .unwrap();
        self.serde.decode(m.payload().unwrap()).await.unwrap()
    }
}

impl TestStack {
    /// A reader of the dead-letter topic, in consumer group `group` (unique per test).
    pub fn dead_letters(&self, group: &str) -> DeadLetters {
        use rdkafka::consumer::Consumer;
        let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.cfg.kafka.brokers)
            .set("group.id", format!("{}{group}", self.cfg.kafka.prefix))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer
            .subscribe(&[&self.cfg.kafka.topics().dead_letter().name])
            .unwrap();
        DeadLetters {
            consumer,
            serde: mfh_pipeline::avro::AvroSerde::new(&self.registry_url),
        }
    }
}
