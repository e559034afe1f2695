//! CRM connectors: the trait every CRM implements, the resolver from a connection id to a
//! connector, the sandbox CRM and the five vendor connectors (Keap, GoHighLevel,
//! ActiveCampaign, Ontraport, HubSpot), each one file registered with one line in
//! [`registry::build`]. What they share (credentials, OAuth refresh, rate limiting,
//! status mapping) is in [`vendor`].

pub mod activecampaign;
pub mod config;
#[cfg(any(test, feature = "test-util"))]
pub(crate) mod fake_http;
pub mod gohighlevel;
pub mod hubspot;
pub mod journal;
pub mod keap;
pub mod ontraport;
pub mod read;
pub mod registry;
pub mod sandbox;
pub mod secrets;
#[cfg(any(test, feature = "test-util"))]
pub(crate) mod spec_check;
pub mod vendor;

pub use read::{
    Company, ContactPage, ContactQuery, CrmData, CrmRead, EmailStats, Opportunity, RecordKind,
    RelatedRecord, Tag, User, search_all,
};

use crate::helpers::{Change, Contact};
use crate::store::Store;
use async_trait::async_trait;
use mfh_schemas::ContactChange;
use std::sync::Arc;
use std::time::Duration;

/// What a connector can do; a helper needing a missing one fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read and write standard and custom fields.
    Fields,
    /// Apply and remove tags.
    Tags,
    /// Add notes.
    Notes,
    /// Achieve goals.
    Goals,
    /// Start automations (campaign sequences, workflows).
    Automations,
    /// Search contacts.
    Search,
    /// Read and set contact owners.
    Owners,
    /// Change email marketing consent.
    OptIn,
    /// Find, create and link companies.
    Companies,
    /// Read and move opportunities.
    Opportunities,
    /// Read related records (invoices, orders, subscriptions, ...) and create orders.
    RelatedRecords,
    /// Read email engagement statistics.
    EmailStats,
    /// Merge duplicate contacts.
    Merge,
}

impl Capability {
    /// The lower-case name used in messages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fields => "fields",
            Self::Tags => "tags",
            Self::Notes => "notes",
            Self::Goals => "goals",
            Self::Automations => "automations",
            Self::Search => "search",
            Self::Owners => "owners",
            Self::OptIn => "opt_in",
            Self::Companies => "companies",
            Self::Opportunities => "opportunities",
            Self::RelatedRecords => "related_records",
            Self::EmailStats => "email_stats",
            Self::Merge => "merge",
        }
    }
}

/// Why a CRM call failed.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Credentials are missing, expired or revoked.
    #[error("CRM authentication failed: {0}")]
    Auth(String),
    /// The CRM asked us to slow down.
    #[error("CRM rate limit; retry after {retry_after:?}")]
    RateLimited {
        /// How long the CRM asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The object does not exist.
    #[error("{object} not found")]
    NotFound {
        /// What was missing, e.g. `contact 42`.
        object: String,
    },
    /// The CRM rejected a value.
    #[error("CRM rejected {field}: {reason}")]
    Invalid {
        /// The field or object.
        field: String,
        /// The CRM's reason.
        reason: String,
    },
    /// The CRM does not offer what was asked.
    #[error("this CRM does not support {what}")]
    Unsupported {
        /// The missing feature.
        what: String,
    },
    /// The CRM (or our store behind the sandbox) could not be reached.
    #[error("CRM unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
    },
}

impl CrmError {
    /// Whether a later retry may succeed.
    #[must_use]
    pub fn retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    /// The class recorded on a failed execution.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth(_) => "crm_auth",
            Self::RateLimited { .. } => "crm_rate_limited",
            Self::NotFound { .. } => "crm_not_found",
            Self::Invalid { .. } => "crm_invalid",
            Self::Unsupported { .. } => "crm_unsupported",
            Self::Unavailable { .. } => "crm_unavailable",
        }
    }
}

/// How long a caller keeps trying a CRM call that failed with a passing error.
#[derive(Debug, Clone, Copy)]
pub struct CrmRetry {
    /// Attempts while the CRM rate limits (each wait is its `Retry-After`).
    pub rate_limited_attempts: u32,
    /// Attempts while it is unavailable (exponential backoff).
    pub unavailable_attempts: u32,
    /// The longest single wait.
    pub max_wait: Duration,
}

impl CrmRetry {
    /// The wait before another attempt after attempt `attempt` failed with `e`, or
    /// `None` to give up.
    #[must_use]
    pub fn wait(&self, e: &CrmError, attempt: u32) -> Option<Duration> {
        let wait = match e {
            CrmError::RateLimited { retry_after } if attempt < self.rate_limited_attempts => {
                retry_after.unwrap_or(Duration::from_secs(1) * attempt)
            }
            CrmError::Unavailable { .. } if attempt < self.unavailable_attempts => {
                Duration::from_millis(100 << attempt.min(10))
            }
            _ => return None,
        };
        Some(wait.min(self.max_wait))
    }
}

/// Calls `f` until it succeeds, fails for good, or `policy` gives up; before each wait,
/// `on_wait(rate_limited, wait)` runs (the worker shows the execution as throttled).
///
/// # Errors
/// The last [`CrmError`].
pub async fn with_crm_retries<'a, T, F, Fut>(
    policy: CrmRetry,
    on_wait: &(dyn Fn(bool, Duration) -> futures::future::BoxFuture<'a, ()> + Sync),
    mut f: F,
) -> Result<T, CrmError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CrmError>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match f().await {
            Err(e) => match policy.wait(&e, attempt) {
                Some(wait) => {
                    tracing::info!(attempt, ?wait, error = ?e, "CRM call waits before retrying.");
                    on_wait(matches!(e, CrmError::RateLimited { .. }), wait).await;
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            ok => return ok,
        }
    }
}

/// What applying a helper's changes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes made, with values before and after.
    pub applied: Vec<ContactChange>,
    /// Changes the CRM refused, with the reason; the others were still made.
    pub failed: Vec<(Change, String)>,
}

/// One CRM account reached through one connection.
#[async_trait]
pub trait CrmConnector: CrmRead {
    /// The vendor noun: sandbox, keap, hubspot, ...
    fn platform(&self) -> &'static str;
    /// What this connector supports.
    fn capabilities(&self) -> &'static [Capability];
    /// Checks that the connection works.
    ///
    /// # Errors
    /// [`CrmError`] describing what does not.
    async fn healthcheck(&self) -> Result<(), CrmError>;
    /// The vendor's id of the account this connection reaches, for vendors whose
    /// webhooks arrive at one URL per app and are routed by it (see
    /// [`config::Platform::app_level_webhooks`]); `None` for the others.
    ///
    /// # Errors
    /// [`CrmError`] when the vendor cannot say.
    // No default: a wrapper that forgot to forward it would silently route nothing.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError>;
    /// Reads one contact with its fields and tags.
    ///
    /// # Errors
    /// [`CrmError::NotFound`] for an unknown contact, others as documented.
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError>;
    /// Applies `changes` in order, at most once per `execution_id`: a second call with
    /// the same execution id changes nothing and reports what the first call did.
    ///
    /// # Errors
    /// [`CrmError`] when nothing could be applied; per-change refusals are in the report.
    async fn apply(
        &self,
        contact_id: &str,
        execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError>;
    /// Applies `changes` like [`CrmConnector::apply`] and makes `ledger` (the put that
    /// records the execution's outcome) in the same write: one transaction, where the
    /// CRM's contacts live in DynamoDB (the sandbox). `None` when nothing was written:
    /// the connector has no such write (vendor CRMs: their writes are HTTP calls), the
    /// ledger already holds an outcome, the contact changed meanwhile or already shows
    /// this execution. The caller then records the outcome and applies the usual way.
    ///
    /// # Errors
    /// As [`CrmConnector::apply`].
    async fn apply_recording(
        &self,
        _contact_id: &str,
        _execution_id: &str,
        _changes: &[Change],
        _ledger: aws_sdk_dynamodb::types::Put,
    ) -> Result<Option<ApplyReport>, CrmError> {
        Ok(None)
    }
}

/// Resolves connection ids to connectors.
#[derive(Clone, Debug)]
pub struct Connectors {
    store: Store,
    vendors: Option<Arc<VendorSetup>>,
}

/// What vendor connectors are built with.
#[derive(Debug)]
struct VendorSetup {
    crm: config::CrmConfig,
    cipher: secrets::Cipher,
    http: crate::http::HttpClient,
    limiters: vendor::Limiters,
}

impl Connectors {
    /// A resolver backed by `store` that knows only the sandbox CRM.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self {
            store,
            vendors: None,
        }
    }

    /// Adds the vendor CRMs: stored connections, their sealed credentials and the
    /// vendors' endpoints and limits.
    #[must_use]
    pub fn with_vendors(
        mut self,
        crm: config::CrmConfig,
        cipher: secrets::Cipher,
        http: crate::http::HttpClient,
    ) -> Self {
        self.vendors = Some(Arc::new(VendorSetup {
            crm,
            cipher,
            http,
            limiters: vendor::Limiters::default(),
        }));
        self
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The vendor settings, when vendors are enabled.
    #[must_use]
    pub fn crm_config(&self) -> Option<&config::CrmConfig> {
        self.vendors.as_ref().map(|v| &v.crm)
    }

    /// The credentials cipher, when vendors are enabled.
    #[must_use]
    pub fn cipher(&self) -> Option<&secrets::Cipher> {
        self.vendors.as_ref().map(|v| &v.cipher)
    }

    /// The outbound HTTP client of vendor calls, when vendors are enabled.
    #[must_use]
    pub fn http(&self) -> Option<&crate::http::HttpClient> {
        self.vendors.as_ref().map(|v| &v.http)
    }

    /// The connector of `connection_id` in `account_id`.
    ///
    /// # Errors
    /// [`CrmError::NotFound`] for an unknown connection (or one of another account).
    pub async fn resolve(
        &self,
        account_id: &str,
        connection_id: &str,
    ) -> Result<Arc<dyn CrmConnector>, CrmError> {
        if sandbox::is_sandbox(connection_id) {
            return Ok(Arc::new(sandbox::Sandbox::new(
                self.store.clone(),
                account_id,
                connection_id,
            )));
        }
        let not_found = || CrmError::NotFound {
            object: format!("connection {connection_id}"),
        };
        if self.vendors.is_none() {
            return Err(not_found());
        }
        let conn = self
            .store
            .account_connection(account_id, connection_id)
            .await
            .map_err(|e| CrmError::Unavailable {
                message: mfh_pipeline::report(&e),
            })?
            .ok_or_else(not_found)?;
        self.connector_for(conn)
    }

    /// The connector of a stored vendor connection, with the apply journal that keeps a
    /// redelivered execution from writing twice.
    ///
    /// # Errors
    /// [`CrmError::Invalid`] when its settings do not suit the vendor,
    /// [`CrmError::Unsupported`] when vendors are not enabled.
    pub fn connector_for(
        &self,
        conn: registry::Connection,
    ) -> Result<Arc<dyn CrmConnector>, CrmError> {
        let Some(v) = &self.vendors else {
            return Err(CrmError::Unsupported {
                what: "vendor CRMs in this deployment".into(),
            });
        };
        let vendor_cfg = v.crm.vendor(conn.platform).clone();
        let base = registry::api_base(&conn, &vendor_cfg)?;
        let creds = crate::store::connections::DynamoCredentials::new(
            self.store.clone(),
            v.cipher.clone(),
            conn.clone(),
        );
        let auth = Arc::new(vendor::Auth::new(Arc::new(creds), vendor_cfg.oauth()));
        let limiter = v.limiters.get(&conn.connection_id, vendor_cfg.rate_limit);
        let per = |key: &str, limits: &[vendor::RateLimit]| {
            limits
                .iter()
                .enumerate()
                .map(|(i, l)| v.limiters.get(&format!("{key}#{i}"), *l))
                .collect::<Vec<_>>()
        };
        let key_limiters = per(&conn.connection_id, &vendor_cfg.key_rate_limits);
        let app = format!("app:{}:{}", conn.platform.as_str(), vendor_cfg.client_id);
        let app_limiters = per(&app, &vendor_cfg.app_rate_limits);
        let http = vendor::VendorHttp::new(v.http.clone(), &base, auth, limiter)
            .with_limits(key_limiters, app_limiters);
        let connection_id = conn.connection_id.clone();
        let inner = registry::build(registry::VendorContext {
            http,
            connection: conn,
            vendor: vendor_cfg,
        })?;
        Ok(Arc::new(journal::Journaled::new(
            inner,
            self.store.clone(),
            connection_id,
        )))
    }
}
