//! The billing processor: consumes verified Stripe events (keyed by account, so one
//! account's events apply in order), moves the account's billing state with
//! [`billing::apply`] and asks for the notifications the transition calls for.
//!
//! Notifications are produced before the state is written: a crash in between replays
//! the event, which asks for the same notifications again under the same ids (the
//! notifier sends each id once) and then writes the state. The other order could write
//! the state and lose the email. The state write is version-checked, so the trial-expiry
//! job or a second instance never overwrites a transition.

use crate::billing::{self, BillingState, NotificationIntent};
use crate::router::decode;
use crate::{Services, with_retries};
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::{Notification, StripeEvent};
use std::sync::Arc;

/// Write attempts before a contended account is reported as fatal.
const ATTEMPTS: usize = 16;

/// The billing processor's handler.
pub struct BillingProcessor {
    svc: Services,
}

/// Runs the billing processor until `cancel` fires.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let (cfg, deps) = svc.runner(
        "billing",
        "billing",
        svc.kafka.topics().stripe_events().name,
    );
    mfh_pipeline::runner::run(cfg, deps, Arc::new(BillingProcessor { svc }), cancel).await
}

/// Produces one account's notifications, each under its deterministic id.
///
/// # Errors
/// [`Failure::Fatal`] when the registry or the broker stays unreachable.
pub async fn request_notifications(
    svc: &Services,
    account_id: &str,
    intents: &[NotificationIntent],
) -> Result<(), Failure> {
    let topic = svc.kafka.topics().notifications();
    for n in intents {
        svc.produce(&topic, account_id, &notification_record(account_id, n))
            .await?;
    }
    Ok(())
}

/// The record that asks the notifier to send `intent` to the account's people, keyed
/// (and produced) by account; its id is the intent's dedup key, so it is sent once.
#[must_use]
pub fn notification_record(account_id: &str, intent: &NotificationIntent) -> Notification {
    Notification {
        notification_id: intent.dedup_key.clone(),
        account_id: account_id.to_owned(),
        kind: intent.kind.as_str().to_owned(),
        recipient: None,
        data_json: intent.data.to_string(),
        created_at: mfh_pipeline::now_millis(),
    }
}

#[async_trait]
impl Handler for BillingProcessor {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let Some(payload) = &rec.payload else {
            return Err(Failure::dead_letter("invalid_avro", "record has no value"));
        };
        let event: StripeEvent = decode(&self.svc, payload).await?;
        let parsed = billing::parse_event_bytes(event.event_json.as_bytes())
            .map_err(|e| Failure::dead_letter("invalid_stripe_event", e.to_string()))?;
        let store = &self.svc.store;
        let prices = &self.svc.billing.prices;
        for _ in 0..ATTEMPTS {
            let now = chrono::Utc::now().timestamp();
            let fresh = BillingState::new_trial(now);
            let account = match with_retries("read account", || store.account(&event.account_id))
                .await
                .map_err(|e| crate::store_failure(&e))?
            {
                Some(a) => a,
                // Stripe knows the account (its metadata names it) before mfh does, e.g. a
                // sign-up whose record was lost: it starts as a new trial.
                None => with_retries("create account", || {
                    store.create_account(&event.account_id, "", None, &fresh)
                })
                .await
                .map_err(|e| crate::store_failure(&e))?,
            };
            let applied = billing::apply(&account.billing, &parsed, prices, now);
            if let Some(reason) = applied.ignored_reason {
                tracing::info!(
                    event_id = %event.event_id,
                    event_type = %event.event_type,
                    account = %event.account_id,
                    reason,
                    "Stripe event changed nothing."
                );
            }
            request_notifications(&self.svc, &event.account_id, &applied.notifications).await?;
            if !applied.changed {
                return Ok(());
            }
            let written = with_retries("write billing", || {
                store.write_billing(&event.account_id, &applied.state, account.version)
            })
            .await
            .map_err(|e| crate::store_failure(&e))?;
            if written {
                tracing::info!(
                    account = %event.account_id,
                    event_type = %event.event_type,
                    plan = applied.state.plan.as_str(),
                    status = ?applied.state.status,
                    "Billing state changed."
                );
                return Ok(());
            }
        }
        Err(Failure::Fatal(format!(
            "account {} is being written concurrently",
            event.account_id
        )))
    }
}
