//! The router: reads execution requests from every producer (the API and direct
//! producers alike), validates them, and forwards each to its category's topic under the
//! contact key. A record that is not valid Avro, names an unknown helper, carries an
//! invalid config or chains too deep goes to the dead-letter topic with the reason. A
//! request its account's plan does not allow ([`crate::admission`]) is answered with a
//! failed result naming the limit; admitted requests are metered here, once each.

use crate::admission::{self, Refusal};
use crate::{Services, helpers, with_retries};
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::{ExecutionCompleted, ExecutionRequested, ExecutionStatus};
use rdkafka::producer::FutureRecord;
use std::sync::Arc;
use std::time::Duration;

/// Why a request is refused; shared by the API (answering 4xx) and the router (DLQ).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No helper of that name.
    #[error("unknown helper {0:?}")]
    UnknownHelper(String),
    /// The config does not parse or validate.
    #[error("{0}")]
    InvalidConfig(helpers::ConfigError),
    /// `config_json` or `input_json` is not a JSON object.
    #[error("{field} is not a JSON object")]
    NotJson {
        /// The field.
        field: &'static str,
    },
    /// An id is empty, too long or holds the key separator `:`.
    #[error("{field} must be 1-256 characters without ':'")]
    InvalidId {
        /// The field.
        field: &'static str,
    },
    /// Chained too deep.
    #[error("chain depth {depth} exceeds the limit {limit}")]
    TooDeep {
        /// The request's depth.
        depth: i32,
        /// The configured limit.
        limit: i32,
    },
}

impl Rejection {
    /// The dead-letter reason class.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownHelper(_) => "unknown_helper",
            Self::InvalidConfig(_) => "invalid_config",
            Self::NotJson { .. } => "invalid_json",
            Self::InvalidId { .. } => "invalid_id",
            Self::TooDeep { .. } => "chain_too_deep",
        }
    }
}

/// A request that passed validation, with its helper built and its input parsed, so no
/// later stage parses the config again.
pub struct Validated {
    /// The helper.
    pub helper: &'static dyn helpers::DynHelper,
    /// The helper built from the request's config.
    pub step: helpers::Runnable,
    /// The parsed trigger payload.
    pub input: Option<serde_json::Value>,
    /// The helper instance its state (rotations, counters, drip steps) is keyed by: the
    /// saved helper's id, so editing its config keeps the state, or for an inline config
    /// a hash of it ([`helpers::instance_id`]).
    pub instance: String,
}

/// Validates a request; returns its helper, built.
///
/// # Errors
/// The [`Rejection`].
pub fn validate(req: &ExecutionRequested, max_depth: i32) -> Result<Validated, Rejection> {
    // Direct producers write ids the store keys items by; an empty one is a record no
    // write can take, so it is refused here rather than failing every retry downstream.
    for (field, id) in [
        ("execution_id", &req.execution_id),
        ("account_id", &req.account_id),
        ("contact_id", &req.contact_id),
        ("connection_id", &req.connection_id),
    ] {
        if id.trim().is_empty() || id.len() > 256 || (field != "execution_id" && id.contains(':')) {
            return Err(Rejection::InvalidId { field });
        }
    }
    let helper =
        helpers::find(&req.helper).ok_or_else(|| Rejection::UnknownHelper(req.helper.clone()))?;
    let config: serde_json::Value =
        serde_json::from_str(&req.config_json).map_err(|_| Rejection::NotJson {
            field: "config_json",
        })?;
    if !config.is_object() {
        return Err(Rejection::NotJson {
            field: "config_json",
        });
    }
    let input = match &req.input_json {
        Some(i) => Some(serde_json::from_str(i).map_err(|_| Rejection::NotJson {
            field: "input_json",
        })?),
        None => None,
    };
    let step = helper
        .build_json(&config)
        .map_err(Rejection::InvalidConfig)?;
    let instance = req
        .helper_id
        .clone()
        .unwrap_or_else(|| helpers::instance_id(&req.helper, &config));
    if req.depth > max_depth {
        return Err(Rejection::TooDeep {
            depth: req.depth,
            limit: max_depth,
        });
    }
    Ok(Validated {
        helper,
        step,
        input,
        instance,
    })
}

/// The router's handler.
pub struct Router {
    svc: Services,
}

impl Router {
    /// Checks the request against its account's plan and meters it.
    async fn admit(
        &self,
        req: &ExecutionRequested,
    ) -> Result<Result<admission::Admitted, Refusal>, Failure> {
        // The processing clock, never the record's own `requested_at`: a producer could
        // date a request into an empty month or before a trial ended, and a timer's
        // follow-up runs (and counts) when it runs.
        let now = chrono::Utc::now();
        with_retries("admission", || {
            admission::admit(
                &self.svc.store,
                admission::Request {
                    account_id: &req.account_id,
                    execution_id: &req.execution_id,
                    now,
                },
                true,
            )
        })
        .await
        .map_err(|e| crate::store_failure(&e))
    }

    /// A refused request still gets a result, failed with the reason, so the caller
    /// sees why (the API answered 403 already; a direct producer learns it here).
    async fn refuse(
        &self,
        req: &ExecutionRequested,
        helper: &dyn helpers::DynHelper,
        refusal: &Refusal,
    ) -> Result<(), Failure> {
        let now = mfh_pipeline::now_millis();
        let result = ExecutionCompleted {
            execution_id: req.execution_id.clone(),
            account_id: req.account_id.clone(),
            contact_id: req.contact_id.clone(),
            connection_id: req.connection_id.clone(),
            helper: req.helper.clone(),
            category: helper.category().as_str().to_owned(),
            status: ExecutionStatus::Failed,
            message: refusal.to_string(),
            requested_at: req.requested_at,
            started_at: now,
            completed_at: now,
            output_json: "{}".into(),
            changes: Vec::new(),
            error_kind: Some(refusal.kind().to_owned()),
            error_message: Some(refusal.to_string()),
            source: req.source.clone(),
            helper_id: req.helper_id.clone(),
        };
        tracing::info!(
            execution_id = %req.execution_id,
            account = %req.account_id,
            reason = refusal.kind(),
            "Execution refused."
        );
        let topic = self.svc.kafka.topics().completed();
        self.svc.produce(&topic, &result.key(), &result).await
    }
}

/// What naming a saved helper came to.
enum Resolved {
    /// The request carries its config (the API's paths, or an inline config).
    Inline,
    /// The saved helper's type, config and connection were filled in.
    Saved,
    /// The saved helper is paused or deleted.
    Refused(&'static dyn helpers::DynHelper, Refusal),
}

impl Router {
    /// Fills in the saved helper a direct producer named by `helper_id` with an empty
    /// config: its type, config and (unless given) connection.
    async fn resolve_saved(&self, req: &mut ExecutionRequested) -> Result<Resolved, Failure> {
        let Some(id) = req
            .helper_id
            .clone()
            .filter(|_| req.config_json.trim().is_empty())
        else {
            return Ok(Resolved::Inline);
        };
        let saved = with_retries("read saved helper", || {
            self.svc.store.helper_definition(&id)
        })
        .await
        .map_err(|e| crate::store_failure(&e))?
        .filter(|h| h.account_id == req.account_id)
        .ok_or_else(|| {
            Failure::dead_letter(
                "unknown_helper_id",
                format!("no saved helper {id} in this account"),
            )
        })?;
        let helper = helpers::find(&saved.helper).ok_or_else(|| {
            Failure::dead_letter(
                "unknown_helper",
                format!("unknown helper {:?}", saved.helper),
            )
        })?;
        req.helper.clone_from(&saved.helper);
        req.config_json = saved.config.to_string();
        if req.connection_id.trim().is_empty() {
            req.connection_id.clone_from(&saved.connection_id);
        }
        if saved.deleted_at.is_some() {
            return Ok(Resolved::Refused(helper, Refusal::HelperDeleted(id)));
        }
        if !saved.enabled {
            return Ok(Resolved::Refused(helper, Refusal::HelperPaused(id)));
        }
        Ok(Resolved::Saved)
    }
}

/// Runs the router until `cancel` fires.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let (cfg, deps) = svc.runner("router", "router", svc.kafka.topics().requested().name);
    mfh_pipeline::runner::run(cfg, deps, Arc::new(Router { svc }), cancel).await
}

/// Decodes a record, retrying while the registry is unreachable; bad bytes are a
/// dead letter at once.
pub(crate) async fn decode<T: mfh_schemas::AvroRecord>(
    svc: &Services,
    bytes: &[u8],
) -> Result<T, Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match svc.avro.decode::<T>(bytes).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_bad_record() => {
                return Err(Failure::dead_letter(
                    "invalid_avro",
                    mfh_pipeline::report(&e),
                ));
            }
            Err(e) if attempt >= 6 => return Err(Failure::Fatal(mfh_pipeline::report(&e))),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

#[async_trait]
impl Handler for Router {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let Some(payload) = &rec.payload else {
            return Err(Failure::dead_letter("invalid_avro", "record has no value"));
        };
        let mut req: ExecutionRequested = decode(&self.svc, payload).await?;
        let resolved = match self.resolve_saved(&mut req).await? {
            Resolved::Inline => false,
            Resolved::Saved => true,
            Resolved::Refused(helper, refusal) => {
                return self.refuse(&req, helper, &refusal).await;
            }
        };
        let valid = validate(&req, self.svc.cfg.max_chain_depth)
            .map_err(|r| Failure::dead_letter(r.kind(), r.to_string()))?;
        let helper = valid.helper;
        // The API admitted and counted what it sealed; anything else is decided here.
        let sealed = rec
            .header(admission::ADMITTED_HEADER)
            .is_some_and(|tag| self.svc.seal.verifies(payload, tag));
        let decision = if sealed {
            Ok(admission::Admitted::default())
        } else {
            self.admit(&req).await?
        };
        match decision {
            Err(refusal) => return self.refuse(&req, helper, &refusal).await,
            Ok(admitted) => {
                if let Some(alert) = admitted.usage_alert {
                    crate::billing_processor::request_notifications(
                        &self.svc,
                        &req.account_id,
                        &[alert],
                    )
                    .await?;
                }
            }
        }
        let topic = self
            .svc
            .kafka
            .topics()
            .routed(helper.category().as_str())
            .name;
        let key = req.key();
        // The value goes on unchanged (same bytes, same writer schema id) unless the
        // saved helper it names was filled in.
        let filled;
        let value: &[u8] = if resolved {
            filled = self
                .svc
                .avro
                .encode(
                    &self
                        .svc
                        .kafka
                        .topics()
                        .routed(helper.category().as_str())
                        .value_subject(),
                    &req,
                )
                .await
                .map_err(|e| Failure::Fatal(mfh_pipeline::report(&e)))?;
            &filled
        } else {
            payload
        };
        with_retries("route", || async {
            self.svc
                .producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        })
        .await
        .map_err(|e| crate::produce_failure(&topic, &e))?;
        self.svc.metrics.produced(&topic);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(helper: &str, config: &str, depth: i32) -> ExecutionRequested {
        ExecutionRequested {
            execution_id: "e".into(),
            account_id: "a".into(),
            contact_id: "c".into(),
            connection_id: "sandbox".into(),
            helper: helper.into(),
            config_json: config.into(),
            input_json: None,
            requested_at: 0,
            source: "direct".into(),
            depth,
            parent_execution_id: None,
            helper_id: None,
        }
    }

    #[test]
    fn every_rejection_has_its_dead_letter_class() {
        let ok = r#"{"action":"apply","tag_ids":["1"]}"#;
        assert!(validate(&req("tag_it", ok, 0), 5).is_ok());
        let kind = |r: ExecutionRequested| validate(&r, 5).err().map(|e: Rejection| e.kind());
        assert_eq!(kind(req("nope", ok, 0)), Some("unknown_helper"));
        assert_eq!(kind(req("tag_it", "[1]", 0)), Some("invalid_json"));
        assert_eq!(kind(req("tag_it", "{not json", 0)), Some("invalid_json"));
        assert_eq!(
            kind(req("tag_it", r#"{"action":"apply"}"#, 0)),
            Some("invalid_config")
        );
        assert_eq!(kind(req("tag_it", ok, 6)), Some("chain_too_deep"));
        let mut bad_input = req("tag_it", ok, 0);
        bad_input.input_json = Some("{".into());
        assert_eq!(kind(bad_input), Some("invalid_json"));
        for f in [
            |r: &mut ExecutionRequested| r.execution_id.clear(),
            |r: &mut ExecutionRequested| r.account_id.clear(),
            |r: &mut ExecutionRequested| r.contact_id = "a:b".into(),
            |r: &mut ExecutionRequested| r.connection_id = "x".repeat(300),
        ] {
            let mut r = req("tag_it", ok, 0);
            f(&mut r);
            assert_eq!(kind(r), Some("invalid_id"));
        }
    }
}
