//! What is running per partition, shared by the loop, its handler tasks and the
//! rebalance callback, so a revoked partition's records are finished (or stopped) before
//! anyone else may take them.
//!
//! librdkafka calls the rebalance callback inside the loop's own `recv()`, so while it
//! waits no record of any partition starts; the handler tasks run on the other runtime
//! threads, store their offsets themselves and wake the callback as each one ends. When
//! the wait is over the revoked partitions' stored offsets are committed by librdkafka's
//! unassign, and their new owner starts after the last record this member finished.

use super::{Handler, Tp};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Offsets in flight per partition; the watermark is the lowest one not yet done.
#[derive(Default, Debug)]
pub struct OffsetTracker {
    in_flight: HashMap<Tp, BTreeSet<i64>>,
    next: HashMap<Tp, i64>,
}

impl OffsetTracker {
    /// Notes a record as started.
    pub fn start(&mut self, tp: &Tp, offset: i64) {
        self.in_flight.entry(tp.clone()).or_default().insert(offset);
        let n = self.next.entry(tp.clone()).or_insert(offset + 1);
        *n = (*n).max(offset + 1);
    }

    /// Notes a record as done; returns the offset to store if the watermark moved.
    pub fn finish(&mut self, tp: &Tp, offset: i64) -> Option<i64> {
        let set = self.in_flight.get_mut(tp)?;
        let was_lowest = set.first() == Some(&offset);
        if !set.remove(&offset) {
            return None;
        }
        if !was_lowest {
            return None;
        }
        Some(
            set.first()
                .copied()
                .unwrap_or_else(|| self.next.get(tp).copied().unwrap_or(offset + 1)),
        )
    }

    /// Forgets a partition (after revocation).
    pub fn forget(&mut self, tp: &Tp) {
        self.in_flight.remove(tp);
        self.next.remove(tp);
    }
}

#[derive(Default)]
struct State {
    offsets: OffsetTracker,
    /// Bumped when a partition is revoked: a record started before belongs to the old
    /// assignment and must not move the offsets of a later one.
    epochs: HashMap<Tp, u64>,
    running: HashMap<Tp, usize>,
    /// Cancels the running handlers of a partition: at a revoke that outlived its wait,
    /// or at a stop that outlived its drain.
    stops: HashMap<Tp, CancellationToken>,
    /// Revoked since the loop last looked, for it to drop their waiting records.
    revoked: Vec<Tp>,
}

/// A started record's place: the partition life it belongs to and its stop signal.
pub(super) struct Ticket {
    pub(super) epoch: u64,
    pub(super) stop: CancellationToken,
}

/// The runner's shared bookkeeping.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<State>,
    ended: Condvar,
    assignments: AtomicU64,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a fetched record, waiting or running, as not yet done.
    pub(super) fn fetched(&self, tp: &Tp, offset: i64) {
        self.lock().offsets.start(tp, offset);
    }

    /// Notes a record as running.
    pub(super) fn started(&self, tp: &Tp) -> Ticket {
        let mut st = self.lock();
        *st.running.entry(tp.clone()).or_default() += 1;
        Ticket {
            epoch: st.epochs.get(tp).copied().unwrap_or(0),
            stop: st.stops.entry(tp.clone()).or_default().clone(),
        }
    }

    /// Notes a record as ended. A handled one (`done`) moves its partition's watermark,
    /// handing the new offset to `store` under the lock (so a revoke cannot come between),
    /// unless the partition was revoked since the record started.
    pub(super) fn ended(
        &self,
        tp: &Tp,
        ticket: &Ticket,
        offset: i64,
        done: bool,
        store: impl FnOnce(i64),
    ) {
        let mut st = self.lock();
        if done
            && st.epochs.get(tp).copied().unwrap_or(0) == ticket.epoch
            && let Some(next) = st.offsets.finish(tp, offset)
        {
            store(next);
        }
        if let Some(n) = st.running.get_mut(tp) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.running.remove(tp);
            }
        }
        drop(st);
        self.ended.notify_all();
    }

    /// Partitions revoked since the last call.
    pub(super) fn take_revoked(&self) -> Vec<Tp> {
        std::mem::take(&mut self.lock().revoked)
    }

    /// Bumped at every assignment, so the loop knows to pause the new partitions too.
    pub(super) fn assignments(&self) -> u64 {
        self.assignments.load(Ordering::Relaxed)
    }

    /// Records of `tps` still running.
    fn running(&self, tps: &[Tp]) -> usize {
        let st = self.lock();
        tps.iter().filter_map(|tp| st.running.get(tp)).sum()
    }

    /// Waits until no record of `tps` runs, at most `bound`; whether they all ended.
    pub(super) fn wait_ended(&self, tps: &[Tp], bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut st = self.lock();
        loop {
            if tps.iter().all(|tp| !st.running.contains_key(tp)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .ended
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops every running handler at its next await.
    pub(super) fn stop_all(&self) {
        for t in self.lock().stops.values() {
            t.cancel();
        }
    }

    /// Ends `tps`' life in this member: their offsets are forgotten, records still running
    /// are stopped, and records started from now on belong to a new life.
    fn revoke(&self, tps: &[Tp]) {
        let mut st = self.lock();
        for tp in tps {
            st.offsets.forget(tp);
            *st.epochs.entry(tp.clone()).or_default() += 1;
            if let Some(t) = st.stops.remove(tp) {
                t.cancel();
            }
            st.revoked.push(tp.clone());
        }
    }
}

/// The consumer's context: finishes revoked partitions' records before giving them up.
pub struct RebalanceContext {
    pub(super) in_flight: Arc<InFlight>,
    pub(super) handler: Arc<dyn Handler>,
    /// Longest a revoke waits for the partitions' running records.
    pub(super) drain: Duration,
    pub(super) stage: String,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let tps: Vec<Tp> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let busy = self.in_flight.running(&tps);
        if busy > 0 {
            let started = Instant::now();
            let ended = block_while(|| self.in_flight.wait_ended(&tps, self.drain));
            let left = self.in_flight.running(&tps);
            if ended {
                tracing::info!(stage = %self.stage, records = busy, waited_ms = started.elapsed().as_millis(), "Revoked partitions' records finished before giving them up.");
            } else {
                tracing::warn!(stage = %self.stage, running = left, waited_ms = started.elapsed().as_millis(), "Revoked partitions' records outlived the drain; they are stopped and their new owner runs them again.");
            }
        }
        self.in_flight.revoke(&tps);
        self.handler.revoked(&tps);
        for tp in &tps {
            tracing::info!(stage = %self.stage, topic = %tp.0, partition = tp.1, "Partition revoked.");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // librdkafka keeps a partition's pause across a revoke and its re-assignment,
            // and the loop, waiting on a message, would never come to resume it: start
            // every assignment fetching, and let the loop pause it again if still full.
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(stage = %self.stage, error = ?e, "Assigned partitions not resumed.");
            }
            self.in_flight.assignments.fetch_add(1, Ordering::Relaxed);
            tracing::info!(stage = %self.stage, partitions = tpl.count(), "Partitions assigned.");
        }
    }
}

/// Runs a blocking wait from inside the runtime. On a multi-thread runtime the thread
/// hands its other tasks to the rest first; a current-thread runtime cannot run the
/// handlers while it blocks, so there it does not wait at all.
fn block_while(wait: impl FnOnce() -> bool) -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        Ok(_) => false,
        Err(_) => wait(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_waits_for_the_lowest_offset() {
        let mut t = OffsetTracker::default();
        let tp = ("t".to_owned(), 0);
        for o in 10..13 {
            t.start(&tp, o);
        }
        assert_eq!(t.finish(&tp, 11), None);
        assert_eq!(t.finish(&tp, 10), Some(12));
        assert_eq!(t.finish(&tp, 12), Some(13));
        assert_eq!(t.finish(&tp, 12), None);
    }

    #[test]
    fn a_revoke_waits_for_running_records_and_stops_the_rest() {
        let f = Arc::new(InFlight::default());
        let tp = ("t".to_owned(), 0);
        let other = ("t".to_owned(), 1);
        f.fetched(&tp, 7);
        let a = f.started(&tp);
        let _b = f.started(&other);
        assert!(!f.wait_ended(std::slice::from_ref(&tp), Duration::from_millis(20)));
        let (g, t) = (f.clone(), tp.clone());
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut stored = None;
            g.ended(&t, &a, 7, true, |o| stored = Some(o));
            stored
        });
        assert!(
            f.wait_ended(std::slice::from_ref(&tp), Duration::from_secs(5)),
            "the other partition's record does not hold up this one's revoke"
        );
        assert_eq!(ender.join().unwrap(), Some(8));
        f.fetched(&tp, 8);
        let late = f.started(&tp);
        f.revoke(std::slice::from_ref(&tp));
        assert!(
            late.stop.is_cancelled(),
            "a record outliving the wait is stopped"
        );
        let mut stored = None;
        f.ended(&tp, &late, 8, true, |o| stored = Some(o));
        assert_eq!(stored, None, "a record of an earlier life stores no offset");
        assert_eq!(
            f.started(&tp).epoch,
            1,
            "later records belong to a new life"
        );
        assert_eq!(f.take_revoked(), vec![tp]);
    }
}
