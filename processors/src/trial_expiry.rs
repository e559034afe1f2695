//! The trial-expiry job: marks each ended 14-day trial expired and asks for its
//! `trial_expired` email, exactly once per trial.
//!
//! The notification is requested first and the state written after with a version
//! check: two instances racing on one account both ask for the same notification id
//! (sent once), and only one state write wins; a crash in between leaves the trial
//! un-expired, so the next round finishes it.

use crate::billing::expire_trial;
use crate::billing_processor::request_notifications;
use crate::store::StoreError;
use crate::{Services, with_retries};

/// Runs one round; returns the accounts it expired.
///
/// # Errors
/// A store or broker failure.
pub async fn run_once(svc: &Services, now: i64) -> anyhow::Result<Vec<String>> {
    let accounts = with_retries("scan accounts", || svc.store.all_accounts()).await?;
    let mut expired = Vec::new();
    for a in accounts {
        let Some((next, intent)) = expire_trial(&a.billing, now) else {
            continue;
        };
        request_notifications(svc, &a.account_id, std::slice::from_ref(&intent))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let written: Result<bool, StoreError> = with_retries("expire trial", || {
            svc.store.write_billing(&a.account_id, &next, a.version)
        })
        .await;
        if written? {
            tracing::info!(account = %a.account_id, "Trial expired.");
            expired.push(a.account_id);
        }
    }
    Ok(expired)
}

/// Runs a round every `billing.trial_check_interval` until `cancel` fires.
///
/// # Errors
/// Never returns an error for a failed round (it is logged and the next round retries).
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let period = svc.billing.trial_check_interval;
    // The first round comes one period after start, like every other.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = run_once(&svc, chrono::Utc::now().timestamp()).await {
            tracing::warn!(error = ?e, "Trial-expiry round failed; the next one retries.");
        }
    }
}
