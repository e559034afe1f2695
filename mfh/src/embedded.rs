//! The embedded default of `mfh up`: the broker (tansu) and the DynamoDB-compatible
//! server (dynoxide) as child processes on 127.0.0.1, installed by `scripts/install-deps`,
//! and the Schema Registry in-process. Data lives under `embedded.data_dir`.
//!
//! Durability: dynoxide, the registry and the lake keep their data on disk. The broker
//! runs tansu's in-memory storage, measured as the only one fast enough here; a broker
//! restart loses records not yet processed, so the docker-compose stack (Redpanda) is
//! the durable path.

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
    /// Stops the children.
    pub async fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.kill().await;
        }
    }
}

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
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited with {status} before listening on port {port}; is the port in use?"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 30 s")
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

    let mut dynamo = Command::new(binary(&cfg.bin_dir, "dynoxide")?)
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
        .spawn()
        .context("starting dynoxide")?;
    wait_for_port(cfg.dynamo_port, "dynoxide", &mut dynamo).await?;

    let listener = format!("tcp://127.0.0.1:{}", cfg.broker_port);
    // tansu reads ./.env; run it inside its own directory so a project .env cannot leak in.
    let mut broker = Command::new(std::path::absolute(binary(&cfg.bin_dir, "tansu")?)?)
        .current_dir(data.join("broker"))
        .args([
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
        ])
        .stdout(log("tansu.log")?)
        .stderr(log("tansu.err")?)
        .kill_on_drop(true)
        .spawn()
        .context("starting tansu")?;
    wait_for_port(cfg.broker_port, "tansu", &mut broker).await?;

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
