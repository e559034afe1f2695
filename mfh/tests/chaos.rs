//! The chaos check (issue 10): executions of three helper categories over many contacts,
//! through the API and a direct producer, into a production-like layout of separate
//! processes (API, router, one worker per category, sink) on their own broker (nisshi,
//! SQLite) and store (dynoxide), while it kills -9 those processes one after another,
//! pauses the store (SIGSTOP) and kills and restarts the broker. At the end every accepted
//! execution must have exactly one result in DynamoDB and one row in the lake, and every
//! contact the state its ordered executions imply.
//!
//! `scripts/chaos` runs it at full size; the test suite runs it small. Size from the
//! environment: MFH_CHAOS_EXECUTIONS, MFH_CHAOS_CONTACTS, MFH_CHAOS_KILLS and
//! MFH_CHAOS_PAUSE_SECS.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod support;

use futures::StreamExt;
use mfh::stack::Stack;
use mfh_pipeline::metrics::Metrics;
use mfh_processors::connectors::sandbox::{Sandbox, SeedFile};
use mfh_schemas::ExecutionRequested;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A process of the layout and how to start it again.
struct Service {
    name: String,
    cmd: Box<dyn Fn() -> std::process::Command + Send + Sync>,
    child: std::process::Child,
    log_dir: PathBuf,
    starts: usize,
}

impl Service {
    fn start(
        name: &str,
        log_dir: &Path,
        cmd: impl Fn() -> std::process::Command + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.to_owned(),
            child: spawn(&cmd, log_dir, name, 0),
            cmd: Box::new(cmd),
            log_dir: log_dir.to_owned(),
            starts: 1,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9, then start it again.
    fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
        self.child = spawn(&self.cmd, &self.log_dir, &self.name, self.starts);
        self.starts += 1;
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    cmd: &dyn Fn() -> std::process::Command,
    log_dir: &Path,
    name: &str,
    n: usize,
) -> std::process::Child {
    let log = std::fs::File::create(log_dir.join(format!("{name}-{n}.log"))).unwrap();
    cmd()
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// One planned execution: the contact, the helper and its config, and how it is sent.
#[derive(Clone)]
struct Planned {
    n: usize,
    contact: String,
    helper: &'static str,
    config: Value,
    direct: bool,
}

/// Round-robin over contacts; each contact alternates tag_it apply/remove, math_it +1 on
/// a counter field and copy_it; every fourth execution goes through the direct producer.
fn plan(executions: usize, contacts: usize) -> Vec<Planned> {
    (0..executions)
        .map(|n| {
            let round = n / contacts;
            let (helper, config) = match round % 4 {
                0 => ("tag_it", json!({"action": "apply", "tag_ids": ["103"]})),
                2 => ("tag_it", json!({"action": "remove", "tag_ids": ["103"]})),
                1 => (
                    "math_it",
                    json!({"field": "_Counter", "operation": "add", "operand": 1, "decimal_places": 0}),
                ),
                _ => (
                    "copy_it",
                    json!({"source_field": "first_name", "target_field": "_Copy"}),
                ),
            };
            Planned {
                n,
                contact: format!("c{}", n % contacts),
                helper,
                config,
                direct: n % 4 == 3,
            }
        })
        .collect()
}

/// What the load generator and the chaos share.
struct Shared {
    accepted: Mutex<Vec<(Planned, String)>>,
    api_sent: AtomicUsize,
    direct_sent: AtomicUsize,
}

struct Env {
    base: String,
    key: String,
    account: String,
    brokers: String,
    registry_url: String,
    requested_topic: String,
}

/// Sends one lane's executions in order, each after the one before it was accepted: a
/// 202 from the API (the same Idempotency-Key again while the API is down or cannot
/// produce) or the broker's acknowledgement of the direct producer.
async fn lane(env: Arc<Env>, runs: Vec<Planned>, shared: Arc<Shared>, producer: FutureProducer) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let serde = mfh_pipeline::avro::AvroSerde::new(&env.registry_url);
    let subject = format!("{}-value", env.requested_topic);
    for p in runs {
        let deadline = Instant::now() + Duration::from_secs(600);
        let id = if p.direct {
            let id = format!("chaos-{:06}", p.n);
            let r = ExecutionRequested {
                execution_id: id.clone(),
                account_id: env.account.clone(),
                contact_id: p.contact.clone(),
                connection_id: "sandbox".into(),
                helper: p.helper.into(),
                config_json: p.config.to_string(),
                input_json: None,
                requested_at: mfh_pipeline::now_millis(),
                source: "direct".into(),
                depth: 0,
                parent_execution_id: None,
                helper_id: None,
            };
            let bytes = serde.encode(&subject, &r).await.unwrap();
            loop {
                let sent = producer
                    .send(
                        FutureRecord::to(&env.requested_topic)
                            .key(&r.key())
                            .payload(&bytes),
                        Duration::from_secs(5),
                    )
                    .await;
                if sent.is_ok() {
                    break;
                }
                assert!(Instant::now() < deadline, "direct {id} never acknowledged");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            shared.direct_sent.fetch_add(1, Ordering::Relaxed);
            id
        } else {
            let body = json!({
                "helper": p.helper, "config": p.config,
                "connection_id": "sandbox", "contact_id": p.contact,
            });
            let idempotency = format!("chaos-{}", p.n);
            let within = deadline.saturating_duration_since(Instant::now());
            let id =
                support::accept_execution(&http, &env.base, &env.key, &idempotency, &body, within)
                    .await;
            shared.api_sent.fetch_add(1, Ordering::Relaxed);
            id
        };
        shared.accepted.lock().unwrap().push((p, id));
    }
}

/// Counts the records on the results topic (redelivered copies included), as its own
/// consumer group: the chaos is spread over the run by this count.
fn watch_results(
    brokers: &str,
    topic: &str,
    group: &str,
    seen: Arc<AtomicUsize>,
    stop: mfh_pipeline::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                m = consumer.recv() => if m.is_ok() {
                    seen.fetch_add(1, Ordering::Relaxed);
                },
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_execution_has_one_result_through_kills_pauses_and_a_broker_restart() {
    let executions = size("MFH_CHAOS_EXECUTIONS", 800);
    let contacts = size("MFH_CHAOS_CONTACTS", 40);
    let kills = size("MFH_CHAOS_KILLS", 6);
    let pause = Duration::from_secs(size("MFH_CHAOS_PAUSE_SECS", 4) as u64);
    let dir = tempfile::tempdir().unwrap();
    let logs =
        std::env::var("MFH_TEST_LOG_DIR").map_or_else(|_| dir.path().join("logs"), PathBuf::from);
    std::fs::create_dir_all(&logs).unwrap();
    let bin = support::repo_root().join(".deps/bin");

    // The broker and the store, each a process of its own.
    let broker_port = support::free_port();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let nisshi = bin.join("nisshi");
    let bd = broker_dir.clone();
    let mut broker = Service::start("nisshi", &logs, move || {
        let l = format!("tcp://127.0.0.1:{broker_port}");
        let mut c = std::process::Command::new(&nisshi);
        c.current_dir(&bd).args([
            "broker",
            "--storage-engine",
            "sqlite://nisshi.db",
            "--listener-url",
            &l,
            "--advertised-listener-url",
            &l,
        ]);
        c
    });
    let dynamo_port = support::free_port();
    let dynoxide = bin.join("dynoxide");
    let store_proc = Service::start("dynoxide", &logs, move || {
        let mut c = std::process::Command::new(&dynoxide);
        c.args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &dynamo_port.to_string(),
        ]);
        c
    });
    wait_port(broker_port, "nisshi").await;
    wait_port(dynamo_port, "dynoxide").await;

    // Topics, tables, schemas, the account and its contacts, set up in-process.
    let cancel = mfh_pipeline::CancellationToken::new();
    let registry_url = support::start_registry(&cancel).await;
    let lake_dir = dir.path().join("lake");
    let mut cfg = mfh::config::Config::load(None).unwrap();
    cfg.kafka.brokers = format!("127.0.0.1:{broker_port}");
    cfg.kafka.schema_registry_url.clone_from(&registry_url);
    cfg.kafka.partitions = 4;
    cfg.dynamo.endpoint = format!("http://127.0.0.1:{dynamo_port}");
    cfg.lake.root = lake_dir.display().to_string();
    cfg.billing.email.outbox_dir = dir.path().join("outbox");
    cfg.embedded.data_dir = dir.path().to_owned();
    let stack = Stack::connect(&cfg, Metrics::new()).await.unwrap();
    let account = "acct_chaos".to_owned();
    support::create_account(&stack.services.store, &account).await;
    let mut seed = support::seed();
    let base_seed: SeedFile = serde_json::from_value(json!({
        "contacts": (0..contacts).map(|c| json!({
            "id": format!("c{c}"),
            "fields": {"first_name": format!("First{c}"), "email": format!("c{c}@example.com")},
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    seed.contacts = base_seed.contacts;
    Sandbox::new(stack.services.store.clone(), &account, "sandbox")
        .seed(&seed)
        .await
        .unwrap();
    let key = stack
        .services
        .store
        .create_api_key(&account, "chaos")
        .await
        .unwrap();

    // The layout: the API, the router, a worker per category and the sink.
    let api_port = support::free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let env: Vec<(String, String)> = vec![
        ("MFH__KAFKA__BROKERS".into(), cfg.kafka.brokers.clone()),
        (
            "MFH__KAFKA__SCHEMA_REGISTRY_URL".into(),
            registry_url.clone(),
        ),
        ("MFH__KAFKA__PARTITIONS".into(), "4".into()),
        ("MFH__DYNAMO__ENDPOINT".into(), cfg.dynamo.endpoint.clone()),
        ("MFH__LAKE__ROOT".into(), cfg.lake.root.clone()),
        ("MFH__API__LISTEN".into(), format!("127.0.0.1:{api_port}")),
        ("MFH__API__PUBLIC_URL".into(), base.clone()),
        ("MFH__PROCESSORS__LAKE_MAX_WAIT".into(), "50ms".into()),
        (
            "MFH__EMBEDDED__DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        (
            "MFH__BILLING__EMAIL__OUTBOX_DIR".into(),
            dir.path().join("outbox").display().to_string(),
        ),
    ];
    let mfh_cmd = |args: Vec<&'static str>| {
        let env = env.clone();
        move || {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mfh"));
            c.args(["--log", "warn"]).args(&args).envs(env.clone());
            c
        }
    };
    let mut layout = vec![
        Service::start("api", &logs, mfh_cmd(vec!["api"])),
        Service::start(
            "router",
            &logs,
            mfh_cmd(vec!["process", "--category", "router"]),
        ),
        Service::start(
            "tagging",
            &logs,
            mfh_cmd(vec!["process", "--category", "tagging"]),
        ),
        Service::start(
            "data",
            &logs,
            mfh_cmd(vec!["process", "--category", "data"]),
        ),
        Service::start(
            "contact",
            &logs,
            mfh_cmd(vec!["process", "--category", "contact"]),
        ),
        Service::start(
            "sink",
            &logs,
            mfh_cmd(vec!["process", "--category", "sink"]),
        ),
    ];
    wait_port(api_port, "the API").await;

    // Results as they are produced, to spread the chaos over the whole run.
    let results = Arc::new(AtomicUsize::new(0));
    let watcher = watch_results(
        &cfg.kafka.brokers,
        &cfg.kafka.topics().completed().name,
        "chaos-watch",
        results.clone(),
        cancel.clone(),
    );

    // The load: one lane per group of contacts, each in order.
    let planned = plan(executions, contacts);
    let lanes = contacts.min(32);
    let shared = Arc::new(Shared {
        accepted: Mutex::new(Vec::new()),
        api_sent: AtomicUsize::new(0),
        direct_sent: AtomicUsize::new(0),
    });
    let lane_env = Arc::new(Env {
        base: base.clone(),
        key: key.clone(),
        account: account.clone(),
        brokers: cfg.kafka.brokers.clone(),
        registry_url: registry_url.clone(),
        requested_topic: cfg.kafka.topics().requested().name,
    });
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &lane_env.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "120000")
        .create()
        .unwrap();
    let mut load = tokio::task::JoinSet::new();
    for l in 0..lanes {
        let runs: Vec<Planned> = planned
            .iter()
            .filter(|p| p.n % contacts % lanes == l)
            .cloned()
            .collect();
        load.spawn(lane(
            lane_env.clone(),
            runs,
            shared.clone(),
            producer.clone(),
        ));
    }

    // The chaos, at fractions of the results produced so far: `kills` kill -9s of the
    // layout's processes in turn, the store paused at a third, the broker killed and
    // restarted at two thirds.
    let started = Instant::now();
    let done = || results.load(Ordering::Relaxed);
    let mut events = Vec::new();
    let mut paused = false;
    let mut restarted = false;
    for k in 0..kills {
        let at = (k + 1) * executions / (kills + 2);
        let stalled = Instant::now() + Duration::from_secs(300);
        while done() < at {
            assert!(
                Instant::now() < stalled,
                "no progress for 300 s at {} results (logs in {})",
                done(),
                logs.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !paused && done() >= executions / 3 {
            paused = true;
            signal(store_proc.pid(), "-STOP");
            tokio::time::sleep(pause).await;
            signal(store_proc.pid(), "-CONT");
            events.push(format!(
                "{:>6.1}s store paused {} s",
                started.elapsed().as_secs_f64(),
                pause.as_secs()
            ));
        }
        if !restarted && done() >= 2 * executions / 3 {
            restarted = true;
            broker.crash_and_restart();
            wait_port(broker_port, "nisshi").await;
            events.push(format!(
                "{:>6.1}s broker killed and restarted",
                started.elapsed().as_secs_f64()
            ));
        }
        let victim = &mut layout[k % 6];
        victim.crash_and_restart();
        events.push(format!(
            "{:>6.1}s kill -9 {} (at {} results)",
            started.elapsed().as_secs_f64(),
            victim.name,
            done()
        ));
    }
    while load.join_next().await.is_some() {}

    // Every accepted execution: its result in DynamoDB.
    let accepted = shared.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), executions);
    let store = stack.services.store.clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let rows = futures::stream::iter(accepted.iter().map(|(_, id)| {
        let store = store.clone();
        let account = account.clone();
        let id = id.clone();
        async move {
            loop {
                let row = store.get_execution(&account, &id).await.ok().flatten();
                match row {
                    Some(r) if r.status != "queued" => return r.status,
                    _ if Instant::now() > deadline => return "missing".to_owned(),
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for s in rows {
        *statuses.entry(s).or_default() += 1;
    }

    // ... and its row in the lake, as the explorer reads it.
    let http = reqwest::Client::new();
    let mut lake: BTreeMap<String, i64> = BTreeMap::new();
    let lake_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        lake.clear();
        let mut offset = 0;
        loop {
            let sql = format!(
                "select execution_id, count(*) from executions group by 1 order by 1 limit 5000 offset {offset}"
            );
            let v: Value = http
                .post(format!("{base}/v1/explorer/query"))
                .header("x-api-key", &key)
                .json(&json!({ "sql": sql }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let page = v["rows"].as_array().cloned().unwrap_or_default();
            for r in &page {
                lake.insert(r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap());
            }
            if page.len() < 5000 {
                break;
            }
            offset += 5000;
        }
        if lake.len() >= executions || Instant::now() > lake_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (mut one, mut none, mut more) = (0, 0, 0);
    for (_, id) in &accepted {
        match lake.get(id) {
            Some(1) => one += 1,
            None => none += 1,
            Some(_) => more += 1,
        }
    }

    // Each contact's final state from its executions in the order they were accepted.
    let sandbox = Sandbox::new(store.clone(), &account, "sandbox");
    let mut wrong = Vec::new();
    for c in 0..contacts {
        let id = format!("c{c}");
        let mine: Vec<&Planned> = {
            let mut v: Vec<&Planned> = accepted
                .iter()
                .map(|(p, _)| p)
                .filter(|p| p.contact == id)
                .collect();
            v.sort_by_key(|p| p.n);
            v
        };
        let tagged = mine
            .iter()
            .rev()
            .find(|p| p.helper == "tag_it")
            .is_some_and(|p| p.config["action"] == "apply");
        let counter = mine.iter().filter(|p| p.helper == "math_it").count();
        let copied = mine.iter().any(|p| p.helper == "copy_it");
        let rec = sandbox.contact_record(&id).await.unwrap().unwrap();
        let got_counter = rec.fields.get("_Counter").cloned().unwrap_or_default();
        let want_counter = if counter == 0 {
            String::new()
        } else {
            counter.to_string()
        };
        let got_copy = rec.fields.get("_Copy").cloned().unwrap_or_default();
        let want_copy = if copied {
            format!("First{c}")
        } else {
            String::new()
        };
        if rec.tags.contains_key("103") != tagged
            || got_counter != want_counter
            || got_copy != want_copy
        {
            wrong.push(format!(
                "{id}: tag {} (want {tagged}), _Counter {got_counter:?} (want {want_counter:?}), _Copy {got_copy:?}",
                rec.tags.contains_key("103")
            ));
        }
    }

    println!(
        "chaos: {executions} executions over {contacts} contacts in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for e in &events {
        println!("  {e}");
    }
    println!(
        "accepted: {} ({} through the API, {} by the direct producer)",
        accepted.len(),
        shared.api_sent.load(Ordering::Relaxed),
        shared.direct_sent.load(Ordering::Relaxed)
    );
    println!("DynamoDB results by status: {statuses:?}");
    println!("lake rows per accepted id: one {one}, none {none}, more than one {more}");
    println!(
        "contacts in the expected state: {} of {contacts}",
        contacts - wrong.len()
    );
    for w in wrong.iter().take(20) {
        println!("  wrong: {w}");
    }
    assert_eq!(statuses.get("succeeded"), Some(&executions), "{statuses:?}");
    assert_eq!((one, none, more), (executions, 0, 0));
    assert!(
        wrong.is_empty(),
        "{} contacts in the wrong state",
        wrong.len()
    );
    // Clients close while the broker still answers; then the processes go.
    cancel.cancel();
    watcher.await.unwrap();
    drop((producer, stack));
    drop(layout);
    drop(broker);
    drop(store_proc);
}
