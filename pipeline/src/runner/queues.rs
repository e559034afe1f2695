//! Per-key queues: a key runs one record at a time, in offset order.

use super::{Record, Tp};
use std::collections::{HashMap, HashSet, VecDeque};

/// Per-key queues: a key runs one record at a time.
#[derive(Default)]
pub(super) struct KeyedQueues {
    waiting: HashMap<Vec<u8>, VecDeque<Record>>,
    busy: HashSet<Vec<u8>>,
    ready: VecDeque<Vec<u8>>,
}

impl KeyedQueues {
    pub(super) fn push(&mut self, key: Vec<u8>, rec: Record) {
        let q = self.waiting.entry(key.clone()).or_default();
        q.push_back(rec);
        if q.len() == 1 && !self.busy.contains(&key) {
            self.ready.push_back(key);
        }
    }

    pub(super) fn next_ready(&mut self) -> Option<(Vec<u8>, Record)> {
        while let Some(key) = self.ready.pop_front() {
            if self.busy.contains(&key) {
                continue;
            }
            if let Some(rec) = self.waiting.get_mut(&key).and_then(VecDeque::pop_front) {
                if self.waiting.get(&key).is_some_and(VecDeque::is_empty) {
                    self.waiting.remove(&key);
                }
                self.busy.insert(key.clone());
                return Some((key, rec));
            }
        }
        None
    }

    pub(super) fn done(&mut self, key: &[u8]) {
        self.busy.remove(key);
        if self.waiting.contains_key(key) {
            self.ready.push_back(key.to_vec());
        }
    }

    /// Drops waiting records of a partition; returns how many.
    pub(super) fn drop_partition(&mut self, tp: &Tp) -> usize {
        let mut dropped = 0;
        for q in self.waiting.values_mut() {
            let before = q.len();
            q.retain(|r| !(r.topic == tp.0 && r.partition == tp.1));
            dropped += before - q.len();
        }
        self.waiting.retain(|_, q| !q.is_empty());
        dropped
    }
}

pub(super) fn record_key(rec: &Record) -> Vec<u8> {
    // A record without a key has no order to keep with others; give it a unique one.
    rec.key
        .clone()
        .unwrap_or_else(|| format!("\0{}:{}:{}", rec.topic, rec.partition, rec.offset).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::tests::rec;

    #[test]
    fn a_key_runs_one_record_at_a_time_in_order() {
        let mut q = KeyedQueues::default();
        q.push(b"a".to_vec(), rec(0, 1, "a"));
        q.push(b"a".to_vec(), rec(0, 2, "a"));
        q.push(b"b".to_vec(), rec(0, 3, "b"));
        let (k1, r1) = q.next_ready().unwrap();
        let (k2, r2) = q.next_ready().unwrap();
        assert_eq!((k1.as_slice(), r1.offset), (&b"a"[..], 1));
        assert_eq!((k2.as_slice(), r2.offset), (&b"b"[..], 3));
        assert!(q.next_ready().is_none(), "a is busy");
        q.done(b"a");
        assert_eq!(q.next_ready().unwrap().1.offset, 2);
    }

    #[test]
    fn revocation_drops_waiting_records_of_that_partition_only() {
        let mut q = KeyedQueues::default();
        q.push(b"a".to_vec(), rec(0, 1, "a"));
        q.push(b"a".to_vec(), rec(1, 2, "a"));
        assert_eq!(q.drop_partition(&("t".into(), 0)), 1);
        assert_eq!(q.next_ready().unwrap().1.partition, 1);
    }
}
