//! A category worker: one consumer group per helper category. For each routed request it
//! reuses the recorded outcome of a redelivered execution or runs the helper on a fresh
//! contact snapshot and records the outcome, applies the changes through the connector
//! (at most once per execution; a pure helper's outcome is recorded with them, in one
//! transaction on the sandbox), and produces the `ExecutionCompleted` result.

use crate::connectors::{ApplyReport, CrmConnector, CrmError, CrmRetry, with_crm_retries};
use crate::context::Scope;
use crate::helpers::{Category, Change, Outcome, StepError};
use crate::router::{Rejection, Validated, decode, validate};
use crate::{Services, with_retries};
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::{ExecutionCompleted, ExecutionRequested, ExecutionStatus};
use rdkafka::producer::FutureRecord;
use std::sync::Arc;
use std::time::Duration;

/// The worker of one category.
pub struct Worker {
    svc: Services,
    category: Category,
}

/// Runs the worker of `category` until `cancel` fires.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(
    svc: Services,
    category: Category,
    cancel: mfh_pipeline::CancellationToken,
) -> anyhow::Result<()> {
    let stage = format!("worker.{category}");
    let (cfg, deps) = svc.runner(
        &stage,
        &format!("worker-{category}"),
        svc.kafka.topics().routed(category.as_str()).name,
    );
    mfh_pipeline::runner::run(cfg, deps, Arc::new(Worker { svc, category }), cancel).await
}

/// Why an execution failed (a result, not a dead letter).
struct ExecError {
    kind: &'static str,
    message: String,
}

impl From<CrmError> for ExecError {
    fn from(e: CrmError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl Worker {
    /// Runs the helper, or reuses the outcome recorded for this execution. The outcome of
    /// a helper with I/O is recorded before it returns; a pure one's is not (`false`):
    /// [`Worker::record_and_apply`] records it with the contact's changes.
    async fn decide(
        &self,
        req: &ExecutionRequested,
        valid: &Validated,
        conn: &dyn CrmConnector,
        throttle: &Throttle<'_>,
    ) -> Result<(Outcome, bool), ExecError> {
        let store = &self.svc.store;
        let id = &req.execution_id;
        // A helper with I/O must not run twice: look for an earlier outcome first. A pure
        // one may run again for nothing; recording its outcome answers with the first one
        // recorded, which is the request saved.
        let pure = valid.step.is_pure();
        if !pure
            && let Some(o) = with_retries("read outcome", || store.recorded_outcome(id))
                .await
                .map_err(store_err)?
        {
            return Ok((o, true));
        }
        let contact = with_throttle(throttle, || conn.get_contact(&req.contact_id)).await?;
        let scope = Scope::new(store, &self.svc.files, req, &valid.instance);
        let ctx = scope.ctx(
            req,
            valid.input.as_ref(),
            &self.svc.http,
            conn,
            &self.svc.cfg.vendors,
            scope.state(),
            false,
        );
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match valid.step.run(&ctx, &contact).await {
                Ok(o) => break o,
                Err(StepError::External {
                    retryable: true, ..
                }) if attempt < 3 => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e @ StepError::External { .. }) => {
                    return Err(ExecError {
                        kind: "external",
                        message: e.to_string(),
                    });
                }
                Err(e @ StepError::Input(_)) => {
                    return Err(ExecError {
                        kind: "input",
                        message: e.to_string(),
                    });
                }
            }
        };
        if pure {
            return Ok((outcome, false));
        }
        let recorded = with_retries("record outcome", || {
            store.record_outcome(id, outcome.clone())
        })
        .await
        .map_err(store_err)?;
        Ok((recorded, true))
    }

    /// Records a pure helper's `outcome` and applies its changes: in one write where the
    /// connector can and the changes are the contact's own (one request on the sandbox
    /// instead of two); else, or when that write finds an outcome recorded or the contact
    /// changed, the usual way, with the first outcome recorded.
    async fn record_and_apply(
        &self,
        conn: &dyn CrmConnector,
        req: &ExecutionRequested,
        outcome: Outcome,
        throttle: &Throttle<'_>,
    ) -> Result<(Outcome, ApplyReport), ExecError> {
        let store = &self.svc.store;
        let id = &req.execution_id;
        let (own, others) = split_changes(req, &outcome.changes);
        if others.is_empty() {
            let ledger = store.outcome_put(id, &outcome).map_err(store_err)?;
            if let Some(report) = with_throttle(throttle, || {
                conn.apply_recording(&req.contact_id, id, &own, ledger.clone())
            })
            .await?
            {
                return Ok((outcome, report));
            }
        }
        let outcome = with_retries("record outcome", || {
            store.record_outcome(id, outcome.clone())
        })
        .await
        .map_err(store_err)?;
        let report = apply_all(conn, req, &outcome.changes, throttle).await?;
        Ok((outcome, report))
    }

    async fn execute(
        &self,
        req: &ExecutionRequested,
        valid: &Validated,
    ) -> Result<ExecutionCompleted, Failure> {
        let started_at = mfh_pipeline::now_millis();
        let mut result = ExecutionCompleted {
            execution_id: req.execution_id.clone(),
            account_id: req.account_id.clone(),
            contact_id: req.contact_id.clone(),
            connection_id: req.connection_id.clone(),
            helper: req.helper.clone(),
            category: self.category.as_str().to_owned(),
            status: ExecutionStatus::Failed,
            message: String::new(),
            requested_at: req.requested_at,
            started_at,
            completed_at: started_at,
            output_json: "{}".into(),
            changes: Vec::new(),
            error_kind: None,
            error_message: None,
            source: req.source.clone(),
            helper_id: req.helper_id.clone(),
        };
        let throttle = Throttle::of(&self.svc.store, req);
        let applied = async {
            let conn = self
                .svc
                .connectors
                .resolve(&req.account_id, &req.connection_id)
                .await?;
            check_capabilities(valid, conn.as_ref())?;
            let (outcome, recorded) = self.decide(req, valid, conn.as_ref(), &throttle).await?;
            let (mut outcome, report) = if recorded {
                let report = apply_all(conn.as_ref(), req, &outcome.changes, &throttle).await?;
                (outcome, report)
            } else {
                self.record_and_apply(conn.as_ref(), req, outcome, &throttle)
                    .await?
            };
            let (waits, waited_ms) = throttle.waited();
            if waits > 0 {
                // The result keeps what the transient `throttled` status showed.
                outcome.output.insert("throttled_waits".into(), waits.into());
                outcome.output.insert("throttled_ms".into(), waited_ms.into());
            }
            if !report.failed.is_empty() {
                let failed: Vec<_> = report
                    .failed
                    .iter()
                    .map(|(c, reason)| serde_json::json!({"kind": c.kind(), "target": c.target(), "error": reason}))
                    .collect();
                outcome.output.insert("failed_changes".into(), failed.into());
            }
            Ok::<_, ExecError>((outcome, report))
        }
        .await;
        // Follow-ups are requested only once the parent's changes are in, and a failure to
        // request one is the broker's or the store's, not the execution's: the parent is
        // redelivered and requests them all again under their derived ids.
        let applied = match applied {
            Ok((mut outcome, report)) => {
                let started = self.request_follow_ups(req, &outcome).await?;
                if !started.is_empty() {
                    outcome.output.insert("follow_ups".into(), started.into());
                }
                Ok((outcome, report))
            }
            Err(e) => Err(e),
        };
        match applied {
            Ok((outcome, report)) => {
                let ok = outcome.success && report.failed.is_empty();
                result.status = if ok {
                    ExecutionStatus::Succeeded
                } else {
                    ExecutionStatus::Failed
                };
                if !ok {
                    result.error_kind =
                        Some(if outcome.success { "partial" } else { "helper" }.into());
                    result.error_message = Some(outcome.message.clone());
                }
                result.message = outcome.message;
                result.output_json = serde_json::Value::Object(outcome.output).to_string();
                result.changes = report.applied;
            }
            Err(e) => {
                result.message = e.message.clone();
                result.error_kind = Some(e.kind.into());
                result.error_message = Some(e.message);
            }
        }
        result.completed_at = mfh_pipeline::now_millis();
        Ok(result)
    }
}

/// Refuses, before the helper runs, a helper that needs what the connection lacks.
fn check_capabilities(valid: &Validated, conn: &dyn CrmConnector) -> Result<(), ExecError> {
    let missing: Vec<&str> = valid
        .helper
        .requires()
        .iter()
        .filter(|c| !conn.capabilities().contains(c))
        .map(|c| c.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ExecError {
        kind: "crm_unsupported",
        message: format!(
            "{} needs {} which {} connections do not support",
            valid.helper.name(),
            missing.join(", "),
            conn.platform()
        ),
    })
}

/// The changes to the request's contact, and those addressed to others, by contact.
fn split_changes(
    req: &ExecutionRequested,
    changes: &[Change],
) -> (Vec<Change>, Vec<(String, Vec<Change>)>) {
    let mut own = Vec::new();
    let mut others: Vec<(String, Vec<Change>)> = Vec::new();
    for c in changes {
        match c {
            Change::ForContact { contact_id, change } if *contact_id != req.contact_id => {
                match others.iter_mut().find(|(id, _)| id == contact_id) {
                    Some((_, list)) => list.push((**change).clone()),
                    None => others.push((contact_id.clone(), vec![(**change).clone()])),
                }
            }
            Change::ForContact { change, .. } => own.push((**change).clone()),
            other => own.push(other.clone()),
        }
    }
    (own, others)
}

/// Applies the changes to the contact, then those a helper addressed to other contacts
/// (bulk tagging, merges), one apply per contact; each is at most once per execution.
/// A missing other contact fails its changes, not the execution.
async fn apply_all(
    conn: &dyn CrmConnector,
    req: &ExecutionRequested,
    changes: &[Change],
    throttle: &Throttle<'_>,
) -> Result<ApplyReport, ExecError> {
    let (own, others) = split_changes(req, changes);
    let mut report = with_throttle(throttle, || {
        conn.apply(&req.contact_id, &req.execution_id, &own)
    })
    .await?;
    for (contact_id, list) in others {
        match with_throttle(throttle, || {
            conn.apply(&contact_id, &req.execution_id, &list)
        })
        .await
        {
            Ok(r) => {
                report.applied.extend(r.applied.into_iter().map(|mut a| {
                    a.target = format!("{contact_id}:{}", a.target);
                    a
                }));
                report.failed.extend(r.failed);
            }
            Err(e @ CrmError::NotFound { .. }) => {
                report
                    .failed
                    .extend(list.into_iter().map(|c| (c, e.to_string())));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// The id of follow-up `index` of `parent`: derived, so a redelivered parent requests
/// the same follow-up, which then runs once.
#[must_use]
pub fn follow_up_id(parent: &str, index: usize) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{parent}/follow-up/{index}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid().to_string()
}

impl Worker {
    /// Requests the outcome's follow-ups: due ones go to the requested topic now, later
    /// ones into the timer table for the scheduler. Returns their execution ids.
    async fn request_follow_ups(
        &self,
        req: &ExecutionRequested,
        outcome: &Outcome,
    ) -> Result<Vec<String>, Failure> {
        let now = mfh_pipeline::now_millis();
        let topic = self.svc.kafka.topics().requested();
        let mut ids = Vec::new();
        for (i, f) in outcome.follow_ups.iter().enumerate() {
            let due = f.at.map(|t| t.timestamp_millis());
            let child = ExecutionRequested {
                execution_id: follow_up_id(&req.execution_id, i),
                account_id: req.account_id.clone(),
                contact_id: req.contact_id.clone(),
                connection_id: req.connection_id.clone(),
                helper: f.helper.clone(),
                config_json: f.config.to_string(),
                input_json: f.input.as_ref().map(ToString::to_string),
                requested_at: now,
                source: if due.is_some_and(|d| d > now) {
                    "schedule"
                } else {
                    "chain"
                }
                .into(),
                depth: req.depth + 1,
                parent_execution_id: Some(req.execution_id.clone()),
                helper_id: None,
            };
            match due {
                Some(d) if d > now => {
                    with_retries("store timer", || self.svc.store.put_timer(d, &child))
                        .await
                        .map_err(|e| crate::store_failure(&e))?;
                }
                _ => {
                    let bytes = self
                        .svc
                        .avro
                        .encode(&topic.value_subject(), &child)
                        .await
                        .map_err(|e| Failure::Fatal(mfh_pipeline::report(&e)))?;
                    let key = child.key();
                    with_retries("produce follow-up", || async {
                        self.svc
                            .producer
                            .send(
                                FutureRecord::to(&topic.name).key(&key).payload(&bytes),
                                Duration::from_secs(30),
                            )
                            .await
                            .map_err(|(e, _)| e)
                    })
                    .await
                    .map_err(|e| crate::produce_failure(&topic.name, &e))?;
                    self.svc.metrics.produced(&topic.name);
                }
            }
            ids.push(child.execution_id);
        }
        Ok(ids)
    }
}

fn store_err(e: crate::store::StoreError) -> ExecError {
    ExecError {
        kind: "store",
        message: mfh_pipeline::report(&e),
    }
}

/// Where a rate-limited wait is made visible: the execution's item shows `throttled`
/// while it waits (the sink's result replaces it).
struct Throttle<'a> {
    store: &'a crate::store::Store,
    execution_id: &'a str,
    waits: std::sync::atomic::AtomicU64,
    waited_ms: std::sync::atomic::AtomicU64,
}

impl<'a> Throttle<'a> {
    fn of(store: &'a crate::store::Store, req: &'a ExecutionRequested) -> Self {
        Self {
            store,
            execution_id: &req.execution_id,
            waits: 0.into(),
            waited_ms: 0.into(),
        }
    }

    fn record(&self, wait: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.waits.fetch_add(1, Relaxed);
        self.waited_ms
            .fetch_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), Relaxed);
    }

    /// How many rate-limit waits there were, and their total length in ms.
    fn waited(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.waits.load(Relaxed), self.waited_ms.load(Relaxed))
    }
}

/// A throttled execution waits (each wait the CRM's `Retry-After`, at most 30 s)
/// rather than failing; an unavailable CRM is tried five times.
const WORKER_RETRY: CrmRetry = CrmRetry {
    rate_limited_attempts: 20,
    unavailable_attempts: 5,
    max_wait: Duration::from_secs(30),
};

async fn with_throttle<T, F, Fut>(throttle: &Throttle<'_>, f: F) -> Result<T, CrmError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CrmError>>,
{
    let on_wait = |rate_limited: bool, wait: Duration| -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            if !rate_limited {
                return;
            }
            throttle.record(wait);
            if let Err(e) = throttle
                .store
                .mark_throttled(throttle.execution_id, mfh_pipeline::now_millis(), wait)
                .await
            {
                tracing::warn!(error = ?e, "Cannot record the throttled status.");
            }
        })
    };
    with_crm_retries(WORKER_RETRY, &on_wait, f).await
}

#[async_trait]
impl Handler for Worker {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let Some(payload) = &rec.payload else {
            return Err(Failure::dead_letter("invalid_avro", "record has no value"));
        };
        let req: ExecutionRequested = decode(&self.svc, payload).await?;
        // The router validated it, but a record may be written here directly too.
        let valid = validate(&req, self.svc.cfg.max_chain_depth)
            .map_err(|r: Rejection| Failure::dead_letter(r.kind(), r.to_string()))?;
        if valid.helper.category() != self.category {
            return Err(Failure::dead_letter(
                "wrong_category",
                format!("{} is not a {} helper", req.helper, self.category),
            ));
        }
        let result = self.execute(&req, &valid).await?;
        let stage = mfh_pipeline::metrics::Metrics::stage(&format!("worker.{}", self.category));
        if result.status == ExecutionStatus::Failed {
            self.svc.metrics.failures.get_or_create(&stage).inc();
        }
        let topic = self.svc.kafka.topics().completed();
        let bytes = self
            .svc
            .avro
            .encode(&topic.value_subject(), &result)
            .await
            .map_err(|e| Failure::Fatal(mfh_pipeline::report(&e)))?;
        let key = result.key();
        with_retries("produce result", || async {
            self.svc
                .producer
                .send(
                    FutureRecord::to(&topic.name).key(&key).payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        })
        .await
        .map_err(|e| crate::produce_failure(&topic.name, &e))?;
        self.svc.metrics.produced(&topic.name);
        #[allow(clippy::cast_precision_loss)]
        let secs = (result.completed_at - result.requested_at).max(0) as f64 / 1000.0;
        self.svc.metrics.latency.get_or_create(&stage).observe(secs);
        Ok(())
    }
}
