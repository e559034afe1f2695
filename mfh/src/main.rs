//! The mfh command.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mfh::config::Config;
use mfh::stack::{Processors, Stack};
use mfh_pipeline::CancellationToken;
use mfh_pipeline::metrics::Metrics;
use mfh_processors::billing::{NotificationIntent, NotificationKind, TRIAL_DAYS};
use mfh_processors::connectors::sandbox::{Sandbox, SeedFile};
use mfh_processors::helpers::{Category, HELPERS};
use mfh_processors::store::team::{Member, Role, TeamError};
use std::io::Write;
use std::path::PathBuf;
use tokio::task::JoinSet;

#[derive(Parser)]
#[command(
    name = "mfh",
    version,
    about = "MyFusionHelper as a stream-processing pipeline"
)]
struct Cli {
    /// Config file (TOML) layered over the defaults; env vars MFH__SECTION__KEY override both.
    #[arg(long, global = true, env = "MFH_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `mfh_processors=debug`.
    #[arg(long, global = true, default_value = "info", env = "MFH_LOG")]
    log: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run everything on this machine: broker, store, registry, API and all processors.
    Up,
    /// Run the API only.
    Api,
    /// Run processors: `router`, `sink`, `billing`, `crm`, `all` or a helper category.
    Process {
        /// Which processor.
        #[arg(long, default_value = "all")]
        category: String,
    },
    /// Run the sink only.
    Sink,
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        cmd: TopicsCmd,
    },
    /// Schema administration.
    Schemas {
        #[command(subcommand)]
        cmd: SchemasCmd,
    },
    /// Helper registry.
    Helpers {
        #[command(subcommand)]
        cmd: HelpersCmd,
    },
    /// Print the effective config (after file and env) and exit.
    Config,
    /// Sync a CRM connection's contacts into the lake now, with a progress bar; continues
    /// an interrupted run from its last page.
    Sync {
        /// The connection (`conn_…`).
        #[arg(long)]
        connection: String,
    },
    /// Create topics, tables and schemas, seed the sandbox CRM of an account from the
    /// seed file, and print a new API key for it.
    Bootstrap {
        /// The account.
        #[arg(long)]
        account: String,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create missing topics; existing ones are left alone.
    Apply,
}

#[derive(Subcommand)]
enum SchemasCmd {
    /// Register every schema with the Schema Registry.
    Register,
}

#[derive(Subcommand)]
enum HelpersCmd {
    /// List helpers with category and summary; `--json` adds outputs, required CRM
    /// capabilities and each config's JSON Schema.
    List {
        /// Print the full listing as JSON (the same as `GET /v1/helpers`).
        #[arg(long)]
        json: bool,
    },
}

/// A config schema in one line: `name*: type` per property, `*` marking required ones.
fn schema_line(schema: &serde_json::Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return "{}".into();
    };
    props
        .iter()
        .map(|(name, p)| {
            let ty = p["type"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    p["type"].as_array().map(|t| {
                        t.iter()
                            .filter_map(|v| v.as_str())
                            .filter(|v| *v != "null")
                            .collect::<Vec<_>>()
                            .join("|")
                    })
                })
                .or_else(|| {
                    p["$ref"]
                        .as_str()
                        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
                })
                .unwrap_or_else(|| "value".into());
            let star = if required.contains(&name.as_str()) {
                "*"
            } else {
                ""
            };
            format!("{name}{star}: {ty}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
}

async fn shutdown_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("Shutting down.");
    cancel.cancel();
}

/// Waits for the tasks; the first failure stops the rest.
async fn supervise(
    mut tasks: JoinSet<anyhow::Result<()>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        let err = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(anyhow::anyhow!("task panicked: {e}")),
        };
        if let Some(e) = err {
            tracing::error!(error = ?e, "A component failed; stopping.");
            cancel.cancel();
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => bail!("invalid config:\n{errors}"),
    };
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_signal(cancel.clone()));
    match cli.command {
        Cmd::Helpers {
            cmd: HelpersCmd::List { json: true },
        } => {
            out(&serde_json::to_string_pretty(
                &mfh_api::routes::helper_types::infos(),
            )?);
            Ok(())
        }
        Cmd::Helpers {
            cmd: HelpersCmd::List { json: false },
        } => {
            for h in HELPERS.iter() {
                out(&format!(
                    "{:<26} {:<13} {}\n{:<40} config: {}",
                    h.name(),
                    h.category().as_str(),
                    h.summary(),
                    "",
                    schema_line(&h.config_schema())
                ));
            }
            Ok(())
        }
        Cmd::Config => {
            out(&toml_like(&cfg));
            Ok(())
        }
        Cmd::Topics {
            cmd: TopicsCmd::Apply,
        } => {
            let created =
                mfh_topics::provision(&cfg.kafka.brokers, &cfg.kafka.topics().all()).await?;
            out(&format!(
                "created {} topics: {}",
                created.len(),
                created.join(", ")
            ));
            Ok(())
        }
        Cmd::Schemas {
            cmd: SchemasCmd::Register,
        } => {
            let stack = Stack::connect(&cfg, Metrics::new()).await?;
            for (subject, id) in mfh::stack::register_schemas(&stack.services).await? {
                out(&format!("{subject}: id {id}"));
            }
            Ok(())
        }
        Cmd::Api => run(&cfg, None, true, cancel).await,
        Cmd::Sink => run(&cfg, Some(Processors::Sink), false, cancel).await,
        Cmd::Process { category } => {
            let which = match category.as_str() {
                "all" => Processors::All,
                "router" => Processors::Router,
                "sink" => Processors::Sink,
                "billing" => Processors::Billing,
                "crm" => Processors::Crm,
                c => Processors::Category(Category::parse(c).with_context(|| {
                    format!("unknown category {c:?}; use router, sink, billing, crm, all or one of tagging, contact, data, automation, integration, notification, analytics, platform")
                })?),
            };
            run(&cfg, Some(which), false, cancel).await
        }
        Cmd::Up => up(&cfg, cancel).await,
        Cmd::Sync { connection } => {
            let stack = Stack::connect(&cfg, Metrics::new()).await?;
            sync(&stack, &connection).await
        }
        Cmd::Bootstrap { account } => {
            let stack = Stack::connect(&cfg, Metrics::new()).await?;
            let (seeded, key) = bootstrap(&cfg, &stack, &account).await?;
            out(&format!(
                "account {account}: {seeded} sandbox contacts seeded; API key (shown once): {key}"
            ));
            Ok(())
        }
    }
}

fn toml_like(cfg: &Config) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default()
}

async fn run(
    cfg: &Config,
    processors: Option<Processors>,
    api: bool,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let stack = Stack::connect(cfg, Metrics::new()).await?;
    let mut tasks = JoinSet::new();
    if let Some(p) = &processors {
        stack.spawn_processors(p, &mut tasks, &cancel);
    }
    if api {
        let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
            .await
            .with_context(|| format!("binding the API to {}", cfg.api.listen))?;
        tasks.spawn(mfh::stack::serve_api(
            stack.api_state(cfg),
            listener,
            cancel.clone(),
        ));
    }
    supervise(tasks, cancel).await
}

/// Creates the account (a new 14-day trial) unless it exists, seeds its sandbox CRM and
/// creates an owner API key; returns the contacts seeded and the key.
async fn bootstrap(cfg: &Config, stack: &Stack, account: &str) -> anyhow::Result<(usize, String)> {
    let store = &stack.services.store;
    let trial = mfh_processors::billing::BillingState::new_trial(chrono_now());
    store
        .create_account(account, account, Some(&cfg.embedded.billing_email), &trial)
        .await?;
    let owner = Member::active(
        cfg.embedded.billing_email.as_str(),
        Role::Owner,
        mfh_pipeline::now_millis(),
    );
    match store.add_member(account, &owner).await {
        Ok(()) | Err(TeamError::AlreadyMember { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // Asked for on every bootstrap; its fixed id sends it once per account.
    let welcome = NotificationIntent::new(
        NotificationKind::Welcome,
        format!("welcome:{account}"),
        serde_json::json!({ "name": account, "trial_days": TRIAL_DAYS }),
    );
    mfh_processors::billing_processor::request_notifications(&stack.services, account, &[welcome])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = std::fs::read(&cfg.embedded.seed_file)
        .with_context(|| format!("reading the seed file {}", cfg.embedded.seed_file.display()))?;
    let seed: SeedFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing {}", cfg.embedded.seed_file.display()))?;
    let seeded = Sandbox::new(stack.services.store.clone(), account, "sandbox")
        .seed(&seed)
        .await?;
    let key = store
        .issue_api_key(account, "bootstrap", Role::Owner)
        .await?
        .key;
    Ok((seeded, key))
}

fn chrono_now() -> i64 {
    mfh_pipeline::now_millis() / 1000
}

async fn up(cfg: &Config, cancel: CancellationToken) -> anyhow::Result<()> {
    let embedded = mfh::embedded::start(&cfg.embedded, &cancel).await?;
    let result = async {
        let stack = Stack::connect(cfg, Metrics::new()).await?;
        let account = &cfg.embedded.account_id;
        let (seeded, key) = bootstrap(cfg, &stack, account).await?;
        let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
            .await
            .with_context(|| format!("binding the API to {}", cfg.api.listen))?;
        out(&format!(
            "\nmfh is up (embedded default)\n  dashboard:       {} (sign up there; emails are written to {})\n  API:             http://{}\n  account:         {account}\n  API key:         {key}\n  sandbox CRM:     connection_id \"sandbox\" ({seeded} contacts newly seeded)\n  broker:          127.0.0.1:{} (nisshi, data in {}/broker)\n  schema registry: http://127.0.0.1:{}\n  DynamoDB:        http://127.0.0.1:{} (dynoxide, data in {})\n  lake:            {}\nPress Ctrl-C to stop.\n",
            cfg.api.public_url,
            cfg.billing.email.outbox_dir.display(),
            cfg.api.listen,
            cfg.embedded.broker_port,
            cfg.embedded.data_dir.display(),
            cfg.embedded.registry_port,
            cfg.embedded.dynamo_port,
            cfg.embedded.data_dir.display(),
            cfg.lake.root,
        ));
        let mut tasks = JoinSet::new();
        stack.spawn_processors(&Processors::All, &mut tasks, &cancel);
        tasks.spawn(mfh::stack::serve_api(stack.api_state(cfg), listener, cancel.clone()));
        supervise(tasks, cancel.clone()).await
    }
    .await;
    cancel.cancel();
    embedded.stop().await;
    result
}

/// Runs one connection's full sync in the foreground with a progress bar on stderr.
async fn sync(stack: &Stack, connection_id: &str) -> anyhow::Result<()> {
    use mfh_processors::contact_sync;
    let svc = &stack.services;
    let conn = svc
        .store
        .connection(connection_id)
        .await?
        .with_context(|| format!("no connection {connection_id}"))?;
    let now = mfh_pipeline::now_millis();
    let current = svc.store.sync_state(connection_id).await?;
    if current.as_ref().is_none_or(|s| !s.claimable(now)) {
        svc.store
            .request_sync(&conn.account_id, connection_id, now)
            .await?;
    }
    let owner = format!("cli-{}", uuid::Uuid::new_v4().simple());
    let state = contact_sync::claim(svc, &conn, &owner, std::time::Duration::ZERO)
        .await?
        .context("another process is running this sync; watch GET /v1/connections/{id}/sync")?;
    if state.synced > 0 {
        eprintln!(
            "Continuing from contact {} of the interrupted run.",
            state.synced
        );
    }
    let started = std::time::Instant::now();
    let progress = |done: u64, total: Option<u64>| {
        let line = match total {
            Some(t) if t > 0 => {
                let width = 30;
                let filled = usize::try_from((done.min(t) * width) / t).unwrap_or(0);
                format!(
                    "[{}{}] {done}/{t}",
                    "#".repeat(filled),
                    "-".repeat(usize::try_from(width).unwrap_or(30) - filled)
                )
            }
            _ => format!("{done} contacts"),
        };
        eprint!("\r{line}  ");
    };
    let done = contact_sync::sync_connection(svc, &conn, state, &progress).await?;
    eprintln!();
    out(&format!(
        "Synced {} contacts of {connection_id} in {:.1} s.",
        done.synced,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
