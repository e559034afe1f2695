//! Execution alerts: the sink asks for an `execution_alert` email when an execution fails,
//! at most one per account, helper and UTC day, so a helper failing for every contact
//! sends one email a day, not thousands; and a `connection_alert` when the failure was
//! the CRM refusing the connection's credentials, at most one per connection and day.
//!
//! The notification id names the helper and the day; the notifier sends each id once per
//! account, so repeats (redelivered results, several sinks) cost only a record. The sink
//! also remembers the ids it asked for and skips those.

use crate::billing::{NotificationIntent, NotificationKind};
use mfh_schemas::{ExecutionCompleted, ExecutionStatus};
use std::collections::HashSet;
use std::sync::Mutex;

/// Most ids remembered before the memory starts over (the notifier still deduplicates,
/// so forgetting only costs records).
const REMEMBERED: usize = 10_000;

/// The alerts a result calls for: none unless it failed.
#[must_use]
pub fn alerts_for(result: &ExecutionCompleted) -> Vec<NotificationIntent> {
    let Some(alert) = alert_for(result) else {
        return Vec::new();
    };
    let mut alerts = Vec::with_capacity(2);
    if result.error_kind.as_deref() == Some(CRM_AUTH) {
        let day = alert.data["day"].clone();
        alerts.push(NotificationIntent::new(
            NotificationKind::ConnectionAlert,
            format!(
                "connection_alert:{}:{}",
                result.connection_id,
                day.as_str().unwrap_or_default()
            ),
            serde_json::json!({
                "connection_id": result.connection_id,
                "error": alert.data["error"],
                "helper": result.helper,
                "day": day,
            }),
        ));
    }
    alerts.push(alert);
    alerts
}

/// The error class of a CRM refusing credentials ([`crate::connectors::CrmError::kind`]).
const CRM_AUTH: &str = "crm_auth";

/// The execution alert a result calls for: `None` unless it failed.
#[must_use]
pub fn alert_for(result: &ExecutionCompleted) -> Option<NotificationIntent> {
    if result.status != ExecutionStatus::Failed {
        return None;
    }
    let day = chrono::DateTime::from_timestamp_millis(result.completed_at)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let error = result
        .error_message
        .clone()
        .unwrap_or_else(|| result.message.clone());
    Some(NotificationIntent::new(
        NotificationKind::ExecutionAlert,
        format!("execution_alert:{}:{day}", result.helper),
        serde_json::json!({
            "helper": result.helper,
            "contact_id": result.contact_id,
            "error": error,
            "error_kind": result.error_kind,
            "execution_id": result.execution_id,
            "day": day,
        }),
    ))
}

/// The alert ids a sink already asked for.
#[derive(Debug, Default)]
pub struct AlertMemory(Mutex<HashSet<String>>);

impl AlertMemory {
    /// True the first time alert `id` of `account` is seen.
    pub fn first(&self, account: &str, id: &str) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return true;
        };
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(format!("{account}#{id}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn result(status: ExecutionStatus, at: i64) -> ExecutionCompleted {
        ExecutionCompleted {
            execution_id: "e1".into(),
            account_id: "a".into(),
            contact_id: "c1".into(),
            connection_id: "sandbox".into(),
            helper: "slack_it".into(),
            category: "integration".into(),
            status,
            message: "x".into(),
            requested_at: at,
            started_at: at,
            completed_at: at,
            output_json: "{}".into(),
            changes: vec![],
            error_kind: Some("external".into()),
            error_message: Some("Slack said no".into()),
            source: "api".into(),
            helper_id: None,
        }
    }

    #[test]
    fn one_alert_id_per_helper_and_day_and_none_for_successes() {
        let t = 1_796_100_000_000; // 2026-12-01
        assert!(alert_for(&result(ExecutionStatus::Succeeded, t)).is_none());
        let a = alert_for(&result(ExecutionStatus::Failed, t)).unwrap();
        assert_eq!(a.dedup_key, "execution_alert:slack_it:2026-12-01");
        assert_eq!(a.data["error"], "Slack said no");
        let later = alert_for(&result(ExecutionStatus::Failed, t + 3_600_000)).unwrap();
        assert_eq!(later.dedup_key, a.dedup_key);
        let next_day = alert_for(&result(ExecutionStatus::Failed, t + 86_400_000)).unwrap();
        assert_ne!(next_day.dedup_key, a.dedup_key);
        assert_eq!(
            alerts_for(&result(ExecutionStatus::Failed, t)),
            vec![a.clone()]
        );
        let memory = AlertMemory::default();
        assert!(memory.first("a", &a.dedup_key));
        assert!(!memory.first("a", &a.dedup_key));
        assert!(memory.first("b", &a.dedup_key));
    }

    #[test]
    fn a_refused_credential_also_alerts_about_the_connection_once_a_day() {
        let t = 1_796_100_000_000; // 2026-12-01
        let mut r = result(ExecutionStatus::Failed, t);
        r.error_kind = Some(CRM_AUTH.into());
        r.connection_id = "conn_1".into();
        r.error_message = Some("401 invalid token".into());
        let alerts = alerts_for(&r);
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].kind, NotificationKind::ConnectionAlert);
        assert_eq!(alerts[0].dedup_key, "connection_alert:conn_1:2026-12-01");
        assert_eq!(alerts[0].data["error"], "401 invalid token");
        assert_eq!(alerts[1].kind, NotificationKind::ExecutionAlert);
        r.helper = "tag_it".into();
        assert_eq!(alerts_for(&r)[0].dedup_key, alerts[0].dedup_key);
    }
}
