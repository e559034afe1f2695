//! Builds the services from the config and runs the API and the processors.

use crate::config::Config;
use anyhow::Context;
use mfh_api::AppState;
use mfh_pipeline::CancellationToken;
use mfh_pipeline::avro::AvroSerde;
use mfh_pipeline::metrics::Metrics;
use mfh_processors::Services;
use mfh_processors::connectors::Connectors;
use mfh_processors::connectors::secrets::Cipher;
use mfh_processors::helpers::Category;
use mfh_processors::http::HttpClient;
use mfh_processors::lake::Lake;
use mfh_processors::store::Store;
use mfh_schemas::{
    AvroRecord, ContactSnapshot, CrmEvent, DeadLetter, ExecutionCompleted, ExecutionRequested,
    Notification, StripeEvent,
};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Which processors to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processors {
    /// Router, every category worker and the sink.
    All,
    /// The router only.
    Router,
    /// One category's worker.
    Category(Category),
    /// The sinks only: results and contact snapshots into DynamoDB and the lake.
    Sink,
    /// Billing: the Stripe event processor, the notifier and the trial-expiry job.
    Billing,
    /// CRM: the CRM event processor (snapshots and triggers) and the contact sync.
    Crm,
}

/// The connected services.
#[derive(Clone, Debug)]
pub struct Stack {
    /// What the processors use.
    pub services: Services,
    /// The lake.
    pub lake: Lake,
    /// How often each connection is synced in full.
    pub sync_interval: std::time::Duration,
}

/// The cipher of stored CRM credentials: `crm.encryption_key`, or a key generated once
/// and kept in the data directory (the embedded default).
///
/// # Errors
/// When the key is invalid or the key file cannot be read or written.
pub fn credentials_cipher(cfg: &Config) -> anyhow::Result<Cipher> {
    if !cfg.crm.encryption_key.is_empty() {
        return Cipher::from_base64(&cfg.crm.encryption_key).context("crm.encryption_key");
    }
    let path = cfg.embedded.data_dir.join("crm-credentials.key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Cipher::from_base64(&k).with_context(|| format!("reading {}", path.display()));
    }
    std::fs::create_dir_all(&cfg.embedded.data_dir)
        .with_context(|| format!("creating {}", cfg.embedded.data_dir.display()))?;
    let key = Cipher::generate_key()?;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
        match f.open(&path) {
            Ok(mut file) => file
                .write_all(key.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    let k =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Cipher::from_base64(&k).context("the generated credentials key")
}

/// Registers every record schema under its topics' subjects.
///
/// # Errors
/// When the registry refuses or is unreachable.
pub async fn register_schemas(svc: &Services) -> anyhow::Result<Vec<(String, u32)>> {
    let topics = svc.kafka.topics();
    let mut out = Vec::new();
    for t in topics.all() {
        let subject = t.value_subject();
        let id = match t.value_schema {
            s if s == ExecutionRequested::full_name() => {
                svc.avro.register::<ExecutionRequested>(&subject).await?
            }
            s if s == ExecutionCompleted::full_name() => {
                svc.avro.register::<ExecutionCompleted>(&subject).await?
            }
            s if s == DeadLetter::full_name() => svc.avro.register::<DeadLetter>(&subject).await?,
            s if s == StripeEvent::full_name() => {
                svc.avro.register::<StripeEvent>(&subject).await?
            }
            s if s == Notification::full_name() => {
                svc.avro.register::<Notification>(&subject).await?
            }
            s if s == CrmEvent::full_name() => svc.avro.register::<CrmEvent>(&subject).await?,
            s if s == ContactSnapshot::full_name() => {
                svc.avro.register::<ContactSnapshot>(&subject).await?
            }
            other => anyhow::bail!("no Rust type for schema {other}"),
        };
        out.push((subject, id));
    }
    Ok(out)
}

impl Stack {
    /// Connects to everything, creating tables and topics and registering schemas.
    ///
    /// # Errors
    /// When a dependency is unreachable or refuses.
    pub async fn connect(cfg: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        let store = Store::connect_counted(&cfg.dynamo, &metrics);
        store
            .ensure_tables()
            .await
            .context("creating DynamoDB tables")?;
        let topics = cfg.kafka.topics().all();
        mfh_topics::provision(&cfg.kafka.brokers, &topics)
            .await
            .context("creating topics")?;
        let lake = Lake::open(&cfg.lake).context("opening the lake")?;
        let http = HttpClient::new(cfg.http.clone()).context("creating the HTTP client")?;
        let cipher = credentials_cipher(cfg)?;
        let seal = mfh_processors::admission::Seal::new(&cipher);
        let services = Services {
            files: lake.files(),
            kafka: cfg.kafka.clone(),
            cfg: cfg.processors.clone(),
            avro: AvroSerde::new(&cfg.kafka.schema_registry_url),
            producer: cfg.kafka.producer().context("creating the producer")?,
            connectors: Connectors::new(store.clone()).with_vendors(
                cfg.crm.clone(),
                cipher,
                http.clone(),
            ),
            store,
            http,
            metrics,
            billing: cfg.billing.clone(),
            seal,
        };
        register_schemas(&services)
            .await
            .context("registering schemas")?;
        Ok(Self {
            services,
            lake,
            sync_interval: cfg.crm.sync_interval,
        })
    }

    /// The API's state.
    #[must_use]
    pub fn api_state(&self, cfg: &Config) -> AppState {
        let s = &self.services;
        AppState {
            cfg: Arc::new(cfg.api.clone()),
            kafka: s.kafka.clone(),
            avro: s.avro.clone(),
            producer: s.producer.clone(),
            store: s.store.clone(),
            connectors: s.connectors.clone(),
            http: s.http.clone(),
            lake: self.lake.clone(),
            explorer_slots: Arc::new(tokio::sync::Semaphore::new(cfg.api.explorer_max_concurrent)),
            metrics: s.metrics.clone(),
            seal: s.seal.clone(),
            max_chain_depth: s.cfg.max_chain_depth,
            vendors: s.cfg.vendors.clone(),
            files: s.files.clone(),
            billing: Arc::new(s.billing.clone()),
            jwks: mfh_api::jwt::Jwks::new(&cfg.api, s.http.clone()).map(Arc::new),
            stripe: match mfh_processors::billing::checkout::StripeBilling::from_config(&s.billing)
            {
                Ok(stripe) => stripe.map(Arc::new),
                Err(e) => {
                    tracing::error!(error = ?e, "Stripe checkout is off: its settings are invalid.");
                    None
                }
            },
            auth_limits: Arc::new(mfh_api::routes::auth::limits::AuthLimits::new(
                cfg.api.auth.attempts_per_email_per_minute,
                cfg.api.auth.attempts_per_ip_per_minute,
            )),
            sandbox_seed: Self::sandbox_seed(&cfg.embedded.seed_file),
        }
    }

    /// The demo contacts new accounts' sandbox CRM starts with, if the seed file reads.
    fn sandbox_seed(
        path: &std::path::Path,
    ) -> Option<Arc<mfh_processors::connectors::sandbox::SeedFile>> {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(seed) => Some(Arc::new(seed)),
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "New accounts get an empty sandbox CRM.");
                None
            }
        }
    }

    /// Spawns the chosen processors into `tasks`.
    pub fn spawn_processors(
        &self,
        which: &Processors,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        cancel: &CancellationToken,
    ) {
        let svc = &self.services;
        let mut spawn = |name: String, start: Box<dyn Fn() -> Component + Send>| {
            tasks.spawn(restarting(name, cancel.clone(), start));
        };
        if matches!(which, Processors::All | Processors::Router) {
            let (svc, c) = (svc.clone(), cancel.clone());
            spawn(
                "router".into(),
                Box::new(move || Box::pin(mfh_processors::router::run(svc.clone(), c.clone()))),
            );
        }
        for cat in Category::ALL {
            if *which == Processors::All || *which == Processors::Category(cat) {
                let (svc, c) = (svc.clone(), cancel.clone());
                spawn(
                    format!("worker.{cat}"),
                    Box::new(move || {
                        Box::pin(mfh_processors::worker::run(svc.clone(), cat, c.clone()))
                    }),
                );
            }
        }
        // Timers are mostly set by automation helpers, so their scheduler runs there.
        if matches!(
            which,
            Processors::All | Processors::Category(Category::Automation)
        ) {
            let (svc, c) = (svc.clone(), cancel.clone());
            spawn(
                "scheduler".into(),
                Box::new(move || Box::pin(mfh_processors::scheduler::run(svc.clone(), c.clone()))),
            );
        }
        if matches!(which, Processors::All | Processors::Billing) {
            let (s1, c1) = (svc.clone(), cancel.clone());
            spawn(
                "billing".into(),
                Box::new(move || {
                    Box::pin(mfh_processors::billing_processor::run(
                        s1.clone(),
                        c1.clone(),
                    ))
                }),
            );
            let (s2, c2) = (svc.clone(), cancel.clone());
            spawn(
                "notifier".into(),
                Box::new(move || Box::pin(mfh_processors::notifier::run(s2.clone(), c2.clone()))),
            );
            let (s3, c3) = (svc.clone(), cancel.clone());
            spawn(
                "trial_expiry".into(),
                Box::new(move || {
                    Box::pin(mfh_processors::trial_expiry::run(s3.clone(), c3.clone()))
                }),
            );
        }
        if matches!(which, Processors::All | Processors::Crm) {
            let (s1, c1) = (svc.clone(), cancel.clone());
            spawn(
                "crm_events".into(),
                Box::new(move || Box::pin(mfh_processors::crm_events::run(s1.clone(), c1.clone()))),
            );
            let (s2, c2, every) = (svc.clone(), cancel.clone(), self.sync_interval);
            spawn(
                "contact_sync".into(),
                Box::new(move || {
                    Box::pin(mfh_processors::contact_sync::run(
                        s2.clone(),
                        every,
                        std::time::Duration::from_secs(2),
                        c2.clone(),
                    ))
                }),
            );
        }
        if matches!(which, Processors::All | Processors::Sink) {
            let (s1, c1, lake1) = (svc.clone(), cancel.clone(), self.lake.clone());
            spawn(
                "sink".into(),
                Box::new(move || {
                    Box::pin(mfh_processors::sink::run(
                        s1.clone(),
                        lake1.clone(),
                        c1.clone(),
                    ))
                }),
            );
            let (s2, c2, lake2) = (svc.clone(), cancel.clone(), self.lake.clone());
            spawn(
                "contact_sink".into(),
                Box::new(move || {
                    Box::pin(mfh_processors::contact_sink::run(
                        s2.clone(),
                        lake2.clone(),
                        c2.clone(),
                    ))
                }),
            );
        }
    }
}

/// One run of a processor.
type Component = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Runs a processor until `cancel`, starting it again after a failure (a fatal error or
/// a panic outside its records) with a pause that grows from 1 s to 30 s: one component
/// whose store or broker is away must not stop the others or the API.
async fn restarting(
    name: String,
    cancel: CancellationToken,
    start: Box<dyn Fn() -> Component + Send>,
) -> anyhow::Result<()> {
    use futures::FutureExt;
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let run = std::panic::AssertUnwindSafe(start()).catch_unwind().await;
        if cancel.is_cancelled() {
            return Ok(());
        }
        match run {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                tracing::error!(component = %name, error = ?e, pause_s = pause.as_secs(), "Component failed; restarting it.");
            }
            Err(_) => {
                tracing::error!(component = %name, pause_s = pause.as_secs(), "Component panicked; restarting it.");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(30));
    }
}

/// Serves the API on `listener` until `cancel` fires.
///
/// # Errors
/// When the server fails.
pub async fn serve_api(
    state: AppState,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let app = mfh_api::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .context("API server")
}
