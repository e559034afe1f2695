//! The timer scheduler: fires follow-up executions whose time has come. It polls the
//! timer table, produces each due request to the requested topic (the router validates
//! it like any other), and deletes the timer only after the broker acknowledged it, so a
//! crash in between fires it again with the same execution id, which runs once.
//! Several schedulers may run; at worst they produce the same request twice.

use crate::store::timers::{CorruptTimer, SHARDS, Timer};
use crate::{Services, with_retries};
use rdkafka::producer::FutureRecord;
use std::time::Duration;

/// Timers fired per shard per poll at most.
const BATCH: i32 = 100;

/// Runs until `cancel` fires.
///
/// # Errors
/// Never in practice: store and broker errors are logged and retried next poll.
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(svc.cfg.timer_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = fire_due(&svc).await {
            tracing::warn!(error = %e, "Timer poll failed; retrying next poll.");
        }
    }
}

/// Fires every timer due now; returns how many fired. One timer that fails never keeps
/// the others from firing: a transient failure leaves it for the next poll, and a timer
/// whose request no longer parses is dead-lettered with its text and removed.
///
/// # Errors
/// None of its own: failures are logged per timer and per shard.
pub async fn fire_due(svc: &Services) -> anyhow::Result<usize> {
    let now = mfh_pipeline::now_millis();
    let mut fired = 0;
    for shard in 0..SHARDS {
        let due = match svc.store.due_timers(shard, now, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(shard, error = %mfh_pipeline::report(&e), "Could not read due timers; retrying next poll.");
                continue;
            }
        };
        for timer in due {
            let (key, result) = match timer {
                Ok(t) => {
                    let key = format!("{}/{}", t.shard, t.due);
                    (key, fire(svc, &t).await)
                }
                Err(c) => {
                    let key = format!("{}/{}", c.shard, c.due);
                    (key, dead_letter(svc, &c).await)
                }
            };
            match result {
                Ok(()) => fired += 1,
                Err(e) => {
                    tracing::warn!(timer = %key, error = %e, "Timer not fired; retrying next poll.");
                }
            }
        }
    }
    Ok(fired)
}

/// Produces a due timer's request and deletes the timer once the broker has it.
async fn fire(svc: &Services, timer: &Timer) -> anyhow::Result<()> {
    let topic = svc.kafka.topics().requested();
    let bytes = svc
        .avro
        .encode(&topic.value_subject(), &timer.request)
        .await?;
    let key = timer.request.key();
    with_retries("produce timer", || async {
        svc.producer
            .send(
                FutureRecord::to(&topic.name).key(&key).payload(&bytes),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
    })
    .await?;
    svc.metrics.produced(&topic.name);
    svc.store.delete_timer(&timer.shard, &timer.due).await?;
    Ok(())
}

/// Sends a timer that can never fire to the dead-letter topic, with its text, and
/// removes it.
async fn dead_letter(svc: &Services, c: &CorruptTimer) -> anyhow::Result<()> {
    let dl = mfh_schemas::DeadLetter {
        source_topic: svc.store.table(crate::store::TIMERS),
        source_partition: -1,
        source_offset: -1,
        key: Some(format!("{}/{}", c.shard, c.due).into_bytes()),
        payload: Some(c.raw.clone().into_bytes()),
        stage: "scheduler".into(),
        reason_kind: "corrupt_timer".into(),
        reason: c.reason.clone(),
        failed_at: mfh_pipeline::now_millis(),
    };
    let topic = svc.kafka.topics().dead_letter();
    svc.produce(&topic, &c.shard, &dl)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::error!(shard = %c.shard, due = %c.due, reason = %c.reason, "A timer that can never fire was dead-lettered.");
    svc.store.delete_timer(&c.shard, &c.due).await?;
    Ok(())
}
