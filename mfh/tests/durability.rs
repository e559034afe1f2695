//! The embedded default under a kill -9 of the whole `mfh up` (API, processors, broker and
//! store: its process group) in the middle of a load, then a restart on the same data
//! directory: every execution the API accepted succeeds, has one row in the lake, and
//! each contact ends in the state its ordered executions imply. A second kill -9 of
//! `mfh up` alone leaves its broker and store running; the next `mfh up` stops them.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod support;

use mfh_processors::connectors::sandbox::Sandbox;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One `mfh up`, in its own process group so a kill reaches its children too.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        // A stop that hangs (a failed assertion may leave one) must not hang the test.
        for _ in 0..600 {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// The pids `mfh up` recorded for its broker and store, which run in process groups of
/// their own so that a terminal's Ctrl-C leaves them up for the drain.
fn service_pids(dir: &Path) -> Vec<String> {
    ["data/broker/nisshi.pid", "data/dynamo/dynoxide.pid"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .map(|p| p.trim().to_owned())
        .collect()
}

/// A kill -9 of `mfh up`'s group and of its broker and store, in one signal call: what a
/// power cut does.
fn kill_everything(dir: &Path, child: &mut std::process::Child) {
    let mut targets = vec![format!("-{}", child.id())];
    targets.extend(service_pids(dir));
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(&targets)
        .status();
    let _ = child.wait();
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

struct Ports {
    api: u16,
    broker: u16,
    registry: u16,
    dynamo: u16,
}

impl Ports {
    fn env(&self) -> Vec<(String, String)> {
        let api = format!("127.0.0.1:{}", self.api);
        let root = support::repo_root();
        [
            ("MFH__API__LISTEN", api.clone()),
            ("MFH__API__PUBLIC_URL", format!("http://{api}")),
            ("MFH__CRM__SYNC_INTERVAL", "0s".into()),
            ("MFH__KAFKA__BROKERS", format!("127.0.0.1:{}", self.broker)),
            (
                "MFH__KAFKA__SCHEMA_REGISTRY_URL",
                format!("http://127.0.0.1:{}", self.registry),
            ),
            (
                "MFH__DYNAMO__ENDPOINT",
                format!("http://127.0.0.1:{}", self.dynamo),
            ),
            ("MFH__EMBEDDED__BROKER_PORT", self.broker.to_string()),
            ("MFH__EMBEDDED__REGISTRY_PORT", self.registry.to_string()),
            ("MFH__EMBEDDED__DYNAMO_PORT", self.dynamo.to_string()),
            (
                "MFH__EMBEDDED__BIN_DIR",
                root.join(".deps/bin").display().to_string(),
            ),
            (
                "MFH__EMBEDDED__SEED_FILE",
                root.join("seed/sandbox.json").display().to_string(),
            ),
            ("MFH__PROCESSORS__LAKE_MAX_WAIT", "50ms".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Starts `mfh up` in `dir` and returns it with the API key it printed.
fn start_up(dir: &Path, ports: &Ports) -> (Up, String) {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("mfh-up.log"))
        .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mfh"));
    cmd.args(["--log", "warn", "up"])
        .current_dir(dir)
        .envs(ports.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut key = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.trim().strip_prefix("API key:") {
                key = Some(k.trim().to_owned());
            }
            if line.contains("Press Ctrl-C to stop") {
                let _ = tx.send(key.take());
            }
        }
    });
    let up = Up(child);
    match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(Some(key)) => (up, key),
        other => panic!(
            "mfh up did not come up ({other:?}); its log: {}",
            std::fs::read_to_string(dir.join("mfh-up.log")).unwrap_or_default()
        ),
    }
}

/// Sends one contact's executions in order, each only after the one before it was
/// accepted; an attempt the dead API never answered is sent again with its
/// Idempotency-Key. Returns the accepted execution ids with their actions.
async fn lane(
    http: reqwest::Client,
    base: String,
    key: String,
    contact: &'static str,
    runs: usize,
    accepted: Arc<AtomicUsize>,
) -> Vec<(String, &'static str)> {
    let mut ids = Vec::new();
    for i in 0..runs {
        let action = if i % 2 == 0 { "apply" } else { "remove" };
        let body = json!({
            "helper": "tag_it",
            "config": {"action": action, "tag_ids": ["103"]},
            "connection_id": "sandbox",
            "contact_id": contact,
        });
        let idempotency = format!("durability-{contact}-{i}");
        let within = Duration::from_secs(300);
        let id = support::accept_execution(&http, &base, &key, &idempotency, &body, within).await;
        accepted.fetch_add(1, Ordering::Relaxed);
        ids.push((id, action));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_of_the_whole_embedded_stack_under_load_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        api: support::free_port(),
        broker: support::free_port(),
        registry: support::free_port(),
        dynamo: support::free_port(),
    };
    let base = format!("http://127.0.0.1:{}", ports.api);
    let (mut up, key) = start_up(dir.path(), &ports);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let contacts = ["1", "2", "3", "4", "5"];
    let runs = 120;
    let lanes: Vec<_> = contacts
        .iter()
        .map(|c| {
            tokio::spawn(lane(
                http.clone(),
                base.clone(),
                key.clone(),
                c,
                runs,
                accepted.clone(),
            ))
        })
        .collect();
    // Kill everything while requests arrive and the processors are busy with earlier ones.
    while accepted.load(Ordering::Relaxed) < 150 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_everything(dir.path(), &mut up.0);
    let killed_at = accepted.load(Ordering::Relaxed);
    drop(up);
    // The key from before the kill keeps working: the store kept it.
    let (up, _) = start_up(dir.path(), &ports);
    let mut ids = Vec::new();
    for l in lanes {
        ids.push(l.await.unwrap());
    }
    let n = contacts.len() * runs;
    assert_eq!(ids.iter().map(Vec::len).sum::<usize>(), n);
    // Now a kill -9 of `mfh up` alone: its broker and store live on as orphans holding
    // their ports, and the next `mfh up` must stop them and start its own.
    let mut up = up;
    up.0.kill().unwrap();
    let _ = up.0.wait();
    // Not dropped: its drop signals the process group, which would stop the orphans too.
    std::mem::forget(up);
    let (up, _) = start_up(dir.path(), &ports);
    let log = std::fs::read_to_string(dir.path().join("mfh-up.log")).unwrap();
    assert_eq!(
        log.matches("left running by an earlier mfh up").count(),
        2,
        "the orphaned broker and store were stopped: {log}"
    );
    for (id, _) in ids.iter().flatten() {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = http
                .get(format!("{base}/v1/executions/{id}"))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            if v["status"] != "queued" {
                assert_eq!(v["status"], "succeeded", "{v}");
                break;
            }
            assert!(Instant::now() < deadline, "{id} still queued: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Every accepted id exactly once in the lake.
    let sql = "select count(distinct execution_id), count(*) from executions";
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let r = http
            .post(format!("{base}/v1/explorer/query"))
            .header("x-api-key", &key)
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["rows"][0][0] == json!(n) || Instant::now() > deadline {
            break v["rows"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("accepted {n} ({killed_at} before the kill -9); lake rows: {counts}");
    assert_eq!(counts, json!([n, n]), "one lake row per accepted execution");
    // Each contact's tag follows its last execution (120 alternating runs: removed).
    let mut cfg = mfh::config::Config::load(None).unwrap();
    cfg.dynamo.endpoint = format!("http://127.0.0.1:{}", ports.dynamo);
    let store = mfh_processors::store::Store::connect(&cfg.dynamo);
    let sandbox = Sandbox::new(store, "acct_demo", "sandbox");
    for (c, runs) in contacts.iter().zip(&ids) {
        let last = runs.last().unwrap().1;
        let tagged = sandbox
            .contact_record(c)
            .await
            .unwrap()
            .unwrap()
            .tags
            .contains_key("103");
        assert_eq!(tagged, last == "apply", "contact {c}");
    }
    // A terminal's Ctrl-C signals the whole foreground group: mfh drains and commits, then
    // stops the broker and store it started, and exits cleanly.
    let mut up = up;
    let logged = std::fs::read_to_string(dir.path().join("mfh-up.log"))
        .unwrap()
        .len();
    let services = service_pids(dir.path());
    assert_eq!(services.len(), 2);
    let _ = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", up.0.id())])
        .status();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = up.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "mfh up did not stop after Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = std::fs::read_to_string(dir.path().join("mfh-up.log")).unwrap();
    let stop_log = &log[logged..];
    assert!(status.success(), "mfh up exited with {status}: {stop_log}");
    assert!(
        !stop_log.contains("ERROR"),
        "the stop after Ctrl-C logged errors (was the broker gone before the drain?): {stop_log}"
    );
    for pid in &services {
        assert!(
            !alive(pid),
            "service {pid} still running after mfh up stopped"
        );
    }
    std::mem::forget(up);
}
