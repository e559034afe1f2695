//! The embedded default of `mfh up`: the broker (nisshi) and the DynamoDB-compatible
//! server (dynoxide) as child processes on 127.0.0.1, installed by `scripts/install-deps`,
//! and the Schema Registry in-process. Data lives under `embedded.data_dir`.
//!
//! Durability: every part keeps its data on disk. The broker is nisshi with its SQLite
//! storage (WAL), chosen by measurement (README, "Durability of the embedded default"): the
//! only embedded candidate that kept every acknowledged record through a kill -9 and
//! hands a killed group member's partitions to the survivors.

use crate::config::EmbeddedConfig;
use anyhow::{Context, bail};
use mfh_pipeline::CancellationToken;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The running embedded services; dropping it kills the children.
#[derive(Debug)]
pub struct Embedded {
    children: Vec<Child>,
}

impl Embedded {
    /// Stops the children, broker first: asks each to stop (SIGTERM) and kills what is
    /// still running after a few seconds. Called once the processors have drained and
    /// committed, which is why the children do not share `mfh up`'s process group.
    pub async fn stop(mut self) {
        for c in &mut self.children {
            let Some(pid) = c.id() else { continue };
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(STOP_GRACE, c.wait()).await.is_err() {
                let _ = c.kill().await;
            }
        }
    }
}

/// How long a child may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn binary(bin_dir: &Path, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let p = bin_dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found: run scripts/install-deps first (it installs {name})",
            p.display()
        );
    }
    Ok(p)
}

async fn wait_for_port(port: u16, what: &str, child: &mut Child) -> anyhow::Result<()> {
    for _ in 0..300 {
        // Exited first: whoever answers on the port is someone else.
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited with {status} before listening on port {port}; is the port in use?"
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 30 s")
}

/// Stops a child that an earlier `mfh up` left running: a kill -9 of `mfh up` alone does
/// not reach its children, and one still running holds its port and its data file. Only a
/// process running `binary` is stopped, since the recorded pid may have been reused, and
/// only an orphan: one whose parent is a live `mfh` belongs to an `mfh up` still running.
///
/// # Errors
/// When another `mfh up` runs on the same data directory.
async fn stop_leftover(pid_file: &Path, binary: &Path) -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let runs = |dir: &Path, exe: &Path| {
        matches!(
            (std::fs::read_link(dir.join("exe")), std::fs::canonicalize(exe)),
            (Ok(a), Ok(b)) if a == b
        )
    };
    if !runs(&proc_dir, binary) {
        return Ok(());
    }
    // /proc/PID/stat is "pid (comm) state ppid ...", and comm may hold spaces.
    let parent = std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| {
            let (_, rest) = s.rsplit_once(')')?;
            rest.split_whitespace().nth(1)?.parse::<u32>().ok()
        });
    if let (Some(parent), Ok(me)) = (parent, std::env::current_exe())
        && runs(Path::new(&format!("/proc/{parent}")), &me)
    {
        bail!("another mfh up (pid {parent}) is running on this data directory; stop it first");
    }
    tracing::warn!(pid, binary = %binary.display(), "Stopping a service left running by an earlier mfh up.");
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    for _ in 0..100 {
        if !proc_dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn record_pid(pid_file: &Path, child: &Child) {
    if let Some(pid) = child.id()
        && let Err(e) = std::fs::write(pid_file, pid.to_string())
    {
        tracing::warn!(error = %e, file = %pid_file.display(), "Could not record a child's pid.");
    }
}

/// Starts the broker, the store and the registry.
///
/// # Errors
/// When a binary is missing, a port is taken or a service does not come up.
pub async fn start(cfg: &EmbeddedConfig, cancel: &CancellationToken) -> anyhow::Result<Embedded> {
    let data = &cfg.data_dir;
    for d in ["broker", "dynamo", "registry", "logs"] {
        std::fs::create_dir_all(data.join(d))
            .with_context(|| format!("creating {}", data.join(d).display()))?;
    }
    let log = |name: &str| -> anyhow::Result<Stdio> {
        Ok(std::fs::File::create(data.join("logs").join(name))?.into())
    };

    let dynoxide = std::path::absolute(binary(&cfg.bin_dir, "dynoxide")?)?;
    let dynamo_pid = data.join("dynamo").join("dynoxide.pid");
    stop_leftover(&dynamo_pid, &dynoxide).await?;
    let mut dynamo = Command::new(&dynoxide)
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &cfg.dynamo_port.to_string(),
            "--db-path",
        ])
        .arg(data.join("dynamo").join("mfh.db"))
        .stdout(log("dynoxide.log")?)
        .stderr(log("dynoxide.err")?)
        .kill_on_drop(true)
        // A terminal's Ctrl-C signals the whole foreground group; the store must outlive
        // the processors' drain, so it gets a group of its own and is stopped by `stop`.
        .process_group(0)
        .spawn()
        .context("starting dynoxide")?;
    record_pid(&dynamo_pid, &dynamo);
    wait_for_port(cfg.dynamo_port, "dynoxide", &mut dynamo).await?;

    let listener = format!("tcp://127.0.0.1:{}", cfg.broker_port);
    let nisshi = std::path::absolute(binary(&cfg.bin_dir, "nisshi")?)?;
    let broker_pid = data.join("broker").join("nisshi.pid");
    stop_leftover(&broker_pid, &nisshi).await?;
    // nisshi resolves a sqlite:// path against its working directory (and reads ./.env):
    // run it inside its own directory.
    let mut broker = Command::new(&nisshi)
        .current_dir(data.join("broker"))
        .args([
            "broker",
            "--storage-engine",
            "sqlite://nisshi.db",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
        ])
        .stdout(log("nisshi.log")?)
        .stderr(log("nisshi.err")?)
        .kill_on_drop(true)
        // As for the store: the broker must outlive the drain's last commits.
        .process_group(0)
        .spawn()
        .context("starting nisshi")?;
    record_pid(&broker_pid, &broker);
    wait_for_port(cfg.broker_port, "nisshi", &mut broker).await?;

    let registry = mfh_pipeline::registry_server::RegistryState::open(Some(&data.join("registry")))
        .context("opening the schema registry store")?;
    let sock = tokio::net::TcpListener::bind(("127.0.0.1", cfg.registry_port))
        .await
        .with_context(|| {
            format!(
                "binding the schema registry to 127.0.0.1:{}",
                cfg.registry_port
            )
        })?;
    let stop = cancel.clone();
    tokio::spawn(async move {
        if let Err(e) =
            mfh_pipeline::registry_server::serve(
                sock,
                registry,
                async move { stop.cancelled().await },
            )
            .await
        {
            tracing::error!(error = ?e, "Schema registry stopped.");
        }
    });
    Ok(Embedded {
        children: vec![broker, dynamo],
    })
}
