//! Plan enforcement for executions, shared by every creation path. The API admits and
//! meters what it accepts (and answers 403 for what it refuses), and seals the record it
//! produces ([`Seal`]): the router admits and meters only what is not sealed, which is
//! what direct producers, follow-ups and the API's idempotent repeats write.
//!
//! An execution is admitted when its account exists and may run executions (no ended
//! trial, no ended or suspended subscription), and, on the trial and free plans, stays
//! within the monthly execution limit; paid plans run on past it and the executions over
//! it are overage. The router then counts it, once per execution id. Helper slots are
//! not an execution's business: they are taken when a helper is saved
//! ([`crate::store::helpers`]), and inline configs take none.

use crate::billing::{
    Blocked, LimitExceeded, LimitKind, NotificationIntent, NotificationKind, Plan, check_limit,
    executions_allowed,
};
use crate::store::usage::Counted;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Datelike, Utc};

/// The Kafka header carrying [`Seal::tag`] of an admitted request's value.
pub const ADMITTED_HEADER: &str = "mfh-admitted";

/// Proof, between the processes of one deployment, that a requested execution was
/// admitted and counted: an HMAC of the record's value under a key derived from the
/// deployment's secret. A producer without the secret cannot make one, and a tag fits
/// only the exact bytes it was made for.
#[derive(Clone)]
pub struct Seal(std::sync::Arc<ring::hmac::Key>);

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(redacted)")
    }
}

impl Seal {
    /// The seal of the deployment whose secret `cipher` holds.
    #[must_use]
    pub fn new(cipher: &crate::connectors::secrets::Cipher) -> Self {
        Self(std::sync::Arc::new(
            cipher.mac_key("mfh/admitted-execution/v1"),
        ))
    }

    /// The tag of `value`.
    #[must_use]
    pub fn tag(&self, value: &[u8]) -> Vec<u8> {
        ring::hmac::sign(&self.0, value).as_ref().to_vec()
    }

    /// Whether `tag` is this seal's tag of `value` (compared in constant time).
    #[must_use]
    pub fn verifies(&self, value: &[u8], tag: &[u8]) -> bool {
        ring::hmac::verify(&self.0, value, tag).is_ok()
    }
}

/// Why an execution is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such account.
    #[error("account {0} does not exist")]
    UnknownAccount(String),
    /// The account may not run executions now.
    #[error("{0}")]
    Blocked(Blocked),
    /// A plan limit is reached.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// The saved helper the request names is paused.
    #[error("helper {0} is paused")]
    HelperPaused(String),
    /// The saved helper the request names was deleted.
    #[error("helper {0} was deleted")]
    HelperDeleted(String),
}

impl Refusal {
    /// A machine-readable class, used as the execution's `error_kind`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownAccount(_) => "unknown_account",
            Self::Blocked(_) => "account_blocked",
            Self::Limit(_) => "limit_exceeded",
            Self::HelperPaused(_) => "helper_paused",
            Self::HelperDeleted(_) => "helper_deleted",
        }
    }
}

/// The month an execution is metered in, `YYYY-MM` (UTC).
#[must_use]
pub fn month_of(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// What one admission decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The account.
    pub account_id: &'a str,
    /// The execution id, counted once.
    pub execution_id: &'a str,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Usage shares of the monthly execution limit that send a `usage_alert`, in percent.
pub const USAGE_ALERTS: [u64; 2] = [80, 100];

/// An admitted request, with the usage alert its count crossed, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    /// A `usage_alert` to send: this execution took the month's count across 80% or 100%
    /// of the plan's limit. Its id names the month and the share, so it is sent once.
    pub usage_alert: Option<NotificationIntent>,
    /// Whether the write passed to [`admit_writing`] was made, with the count.
    pub wrote: bool,
}

/// The alert for the count going from `used` to `used + 1` of `limit`, if that crosses
/// one of [`USAGE_ALERTS`].
#[must_use]
pub fn usage_alert(plan: Plan, month: &str, used: u64, limit: u64) -> Option<NotificationIntent> {
    let crossed = USAGE_ALERTS.iter().rev().copied().find(|pct| {
        let threshold = limit.saturating_mul(*pct).div_ceil(100).max(1);
        used < threshold && used + 1 >= threshold
    })?;
    Some(NotificationIntent::new(
        NotificationKind::UsageAlert,
        format!("usage_alert:{month}:{crossed}"),
        serde_json::json!({
            "percent": crossed,
            "used": used + 1,
            "limit": limit,
            "limit_name": LimitKind::ExecutionsPerMonth.noun(),
            "plan_name": plan.as_str(),
            "month": month,
        }),
    ))
}

/// The month's counts at which one more execution sends a usage alert.
fn alert_crossings(limit: u64) -> Vec<u64> {
    USAGE_ALERTS
        .iter()
        .map(|pct| limit.saturating_mul(*pct).div_ceil(100).max(1) - 1)
        .collect()
}

/// Checks a request against its account's plan; with `meter`, also counts it. A
/// request already counted (a redelivery) is admitted as it was the first time, without
/// counting again. The usual case costs one request (the account is cached): the
/// counting transaction's conditions say that nothing else needs deciding.
///
/// # Errors
/// [`StoreError`] when DynamoDB fails; the decision is the `Ok` value.
pub async fn admit(
    store: &Store,
    req: Request<'_>,
    meter: bool,
) -> Result<Result<Admitted, Refusal>, StoreError> {
    admit_with(store, req, meter, meter.then(Vec::new)).await
}

/// Admits like [`admit`] and, on the quiet path, counts the execution and makes `writes`
/// (the queued row, an idempotency claim) in the same transaction: [`Admitted::wrote`]
/// says it did. Otherwise nothing of `writes` is made, and the execution is counted
/// only with `meter`; the caller makes the writes itself.
///
/// # Errors
/// [`StoreError`] when DynamoDB fails; the decision is the `Ok` value.
pub async fn admit_writing(
    store: &Store,
    req: Request<'_>,
    meter: bool,
    writes: Vec<aws_sdk_dynamodb::types::Put>,
) -> Result<Result<Admitted, Refusal>, StoreError> {
    admit_with(store, req, meter, Some(writes)).await
}

/// `quiet`: try the one-transaction count, with these writes; `meter`: count on the exact
/// path too.
async fn admit_with(
    store: &Store,
    req: Request<'_>,
    meter: bool,
    quiet: Option<Vec<aws_sdk_dynamodb::types::Put>>,
) -> Result<Result<Admitted, Refusal>, StoreError> {
    let Some(account) = store.account_for_admission(req.account_id).await? else {
        return Ok(Err(Refusal::UnknownAccount(req.account_id.to_owned())));
    };
    // A redelivery of an execution counted before is admitted as it was then, even if the
    // account has been blocked or reached its limit since. Asked only on the way to a
    // refusal: on the way to admission the counting transaction finds the marker itself.
    let counted_before = || async {
        Ok::<bool, StoreError>(meter && store.execution_counted(req.execution_id).await?)
    };
    let billing = &account.billing;
    if let Err(b) = executions_allowed(billing, req.now.timestamp()) {
        if counted_before().await? {
            return Ok(Ok(Admitted::default()));
        }
        return Ok(Err(Refusal::Blocked(b)));
    }
    let limits = billing.limits();
    let month = month_of(req.now);
    let cap = limits
        .executions_per_month
        .filter(|_| !billing.plan.meters_overage());
    if let Some(writes) = quiet {
        let wrote = !writes.is_empty();
        let crossings = limits
            .executions_per_month
            .map(alert_crossings)
            .unwrap_or_default();
        if cap != Some(0)
            && !crossings.contains(&0)
            && store
                .count_execution_quietly(
                    req.account_id,
                    &month,
                    req.execution_id,
                    cap,
                    &crossings,
                    writes,
                )
                .await?
        {
            return Ok(Ok(Admitted {
                usage_alert: None,
                wrote,
            }));
        }
    }
    let used = store.executions_in_month(req.account_id, &month).await?;
    if let Err(e) = check_limit(billing.plan, &limits, LimitKind::ExecutionsPerMonth, used)
        && !billing.plan.meters_overage()
    {
        if counted_before().await? {
            return Ok(Ok(Admitted::default()));
        }
        return Ok(Err(Refusal::Limit(e)));
    }
    let mut admitted = Admitted::default();
    if meter {
        match store
            .count_execution(req.account_id, &month, req.execution_id, cap)
            .await?
        {
            Counted::New => {
                if let Some(limit) = limits.executions_per_month {
                    admitted.usage_alert = usage_alert(billing.plan, &month, used, limit);
                }
            }
            Counted::Before => {}
            // Others took the last of the month between the read and this write.
            Counted::OverLimit => {
                let limit = cap.unwrap_or(used);
                if let Err(e) = check_limit(
                    billing.plan,
                    &limits,
                    LimitKind::ExecutionsPerMonth,
                    used.max(limit),
                ) {
                    return Ok(Err(Refusal::Limit(e)));
                }
            }
        }
    }
    Ok(Ok(admitted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_zero_padded_utc() {
        let t = DateTime::parse_from_rfc3339("2026-03-31T23:59:59-02:00")
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(t.map(month_of).ok().as_deref(), Some("2026-04"));
    }

    #[test]
    fn usage_alerts_fire_once_at_80_and_100_percent() {
        let fired: Vec<(u64, String)> = (0..10)
            .filter_map(|used| {
                usage_alert(Plan::Start, "2026-12", used, 10).map(|a| (used + 1, a.dedup_key))
            })
            .collect();
        assert_eq!(
            fired,
            vec![
                (8, "usage_alert:2026-12:80".to_owned()),
                (10, "usage_alert:2026-12:100".to_owned())
            ]
        );
        // A tiny limit crosses both at once; the higher share is the one sent.
        let one = usage_alert(Plan::Free, "2026-12", 0, 1).map(|a| a.dedup_key);
        assert_eq!(one.as_deref(), Some("usage_alert:2026-12:100"));
    }

    #[test]
    fn the_quiet_path_avoids_exactly_the_counts_that_send_an_alert() {
        for limit in [1u64, 2, 3, 10, 99, 100, 101, 2_000, u64::MAX] {
            let crossings = alert_crossings(limit);
            let probe = [0, 1, 2, 7, 8, 9, 79, 80, 98, 99, 100, 1_599, 1_600, 1_999];
            for used in probe.into_iter().chain(crossings.iter().copied()) {
                let alerts = usage_alert(Plan::Start, "2026-12", used, limit).is_some();
                assert_eq!(
                    alerts,
                    crossings.contains(&used),
                    "limit {limit}, used {used}"
                );
            }
        }
        let seal = Seal(std::sync::Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            b"k",
        )));
        let tag = seal.tag(b"value");
        assert!(seal.verifies(b"value", &tag));
        assert!(!seal.verifies(b"valuE", &tag));
        assert!(!seal.verifies(b"value", &tag[..31]));
    }

    #[test]
    fn refusals_have_stable_kinds() {
        assert_eq!(
            Refusal::UnknownAccount("a".into()).kind(),
            "unknown_account"
        );
        assert_eq!(
            Refusal::Blocked(Blocked::Suspended).kind(),
            "account_blocked"
        );
    }
}
