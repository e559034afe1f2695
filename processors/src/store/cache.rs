//! A small time-bounded cache of items that change rarely (saved helper definitions),
//! shared by every component of a process through its [`super::Store`]. A write through
//! the store forgets the entry at once; a write made by another process reaches this
//! one within the cache's time to live, which is the stated bound on staleness.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before the cache drops its expired ones (and, if still full, all).
const MAX_ENTRIES: usize = 50_000;

/// Values by string key, each served for at most `ttl` after it was read.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// A cache serving entries for `ttl`; a zero `ttl` caches nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic elsewhere while holding the lock leaves a map that is still valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value read for `key` less than `ttl` ago.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        let (at, v) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Remembers `value`, read just now, for `key`.
    pub(crate) fn put(&self, key: &str, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    /// Changes the cached value of `key` in place, keeping the time it was read: what
    /// this process wrote itself, without stretching the bound on others' changes.
    pub(crate) fn update(&self, key: &str, f: impl FnOnce(&mut V)) {
        if let Some((_, v)) = self.lock().get_mut(key) {
            f(v);
        }
    }

    /// Forgets `key`: the next read goes to the table.
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_forget_is_immediate() {
        let c = TtlCache::new(Duration::from_millis(40));
        c.put("a", 1);
        c.put("b", 2);
        assert_eq!(c.get("a"), Some(1));
        c.forget("a");
        assert_eq!(c.get("a"), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.get("b"), None, "served past its time to live");
    }

    #[test]
    fn a_zero_ttl_caches_nothing_and_the_size_is_bounded() {
        let off = TtlCache::new(Duration::ZERO);
        off.put("a", 1);
        assert_eq!(off.get("a"), None);
        let c = TtlCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            c.put(&i.to_string(), i);
        }
        assert!(c.lock().len() <= MAX_ENTRIES);
        assert_eq!(c.get(&MAX_ENTRIES.to_string()), Some(MAX_ENTRIES));
    }
}
