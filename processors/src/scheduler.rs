//! The timer scheduler: fires follow-up executions whose time has come. It polls the
//! timer table, produces each due request to the requested topic (the router validates
//! it like any other), and deletes the timer only after the broker acknowledged it, so a
//! crash in between fires it again with the same execution id, which runs once.
//! Several schedulers may run; at worst they produce the same request twice.

use crate::store::timers::SHARDS;
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

/// Fires every timer due now; returns how many fired.
///
/// # Errors
/// The first store or broker failure.
pub async fn fire_due(svc: &Services) -> anyhow::Result<usize> {
    let now = mfh_pipeline::now_millis();
    let topic = svc.kafka.topics().requested();
    let mut fired = 0;
    for shard in 0..SHARDS {
        for timer in svc.store.due_timers(shard, now, BATCH).await? {
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
            svc.store.delete_timer(&timer).await?;
            fired += 1;
        }
    }
    Ok(fired)
}
