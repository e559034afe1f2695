//! Platform-side helper state: rotation counters (split_it, assign_it, route_it), run
//! counters (limit_it), drip steps, evergreen deadlines, snapshots and the effect journal.
//!
//! A [`StateStore`] handed to a helper is already scoped to one account, so a helper
//! cannot see another account's keys. The durable implementation is
//! [`crate::store::state::DynamoState`] (conditional writes, safe with two instances of a
//! category running at once); [`MemoryState`] serves unit tests, and [`DryRunState`] lets
//! a dry run read real state while keeping its writes in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why a state operation failed; always worth retrying later.
#[derive(Debug, thiserror::Error)]
#[error("helper state unavailable: {0}")]
pub struct StateError(pub String);

/// Key-value state of one account's helpers. Expired entries read as absent.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The value at `key`.
    ///
    /// # Errors
    /// [`StateError`].
    async fn get(&self, key: &str) -> Result<Option<Value>, StateError>;
    /// Sets `key`.
    ///
    /// # Errors
    /// [`StateError`].
    async fn put(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StateError>;
    /// Sets `key` unless it holds an unexpired value; returns the value now stored and
    /// whether this call created it.
    ///
    /// # Errors
    /// [`StateError`].
    async fn put_if_absent(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(Value, bool), StateError>;
    /// Adds `by` to the counter at `key` (absent or expired counts as 0) and returns the
    /// new value. Once per `execution_id`: a repeated call with the same execution id
    /// returns the first call's result without adding again. `expires_at` applies when
    /// the counter is (re)created.
    ///
    /// # Errors
    /// [`StateError`].
    async fn incr(
        &self,
        key: &str,
        by: i64,
        execution_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StateError>;
    /// Removes `key`.
    ///
    /// # Errors
    /// [`StateError`].
    async fn delete(&self, key: &str) -> Result<(), StateError>;
    /// Every unexpired entry whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// [`StateError`].
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError>;
}

/// How many executions a counter remembers for [`StateStore::incr`]'s replay check.
pub const REMEMBERED_INCREMENTS: usize = 64;

#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    expires_at: Option<DateTime<Utc>>,
    increments: Vec<(String, i64)>,
}

/// State in memory; the clock it uses for expiry is settable so tests can move time.
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: Mutex<BTreeMap<String, Entry>>,
    now: Mutex<Option<DateTime<Utc>>>,
}

impl MemoryState {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins the clock used for expiry (default: the real clock).
    pub fn set_now(&self, now: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or_else(Utc::now)
    }

    fn live(&self, e: &Entry) -> bool {
        e.expires_at.is_none_or(|t| t > self.now())
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> T) -> T {
        f(&mut self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

#[async_trait]
impl StateStore for MemoryState {
    async fn get(&self, key: &str) -> Result<Option<Value>, StateError> {
        Ok(self.with(|m| m.get(key).filter(|e| self.live(e)).map(|e| e.value.clone())))
    }

    async fn put(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StateError> {
        self.with(|m| {
            // The `incr` journal stays, as in the DynamoDB store.
            let increments = m
                .get(key)
                .filter(|e| self.live(e))
                .map(|e| e.increments.clone())
                .unwrap_or_default();
            m.insert(
                key.to_owned(),
                Entry {
                    value,
                    expires_at,
                    increments,
                },
            );
        });
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(Value, bool), StateError> {
        Ok(self.with(|m| match m.get(key).filter(|e| self.live(e)) {
            Some(e) => (e.value.clone(), false),
            None => {
                m.insert(
                    key.to_owned(),
                    Entry {
                        value: value.clone(),
                        expires_at,
                        increments: Vec::new(),
                    },
                );
                (value, true)
            }
        }))
    }

    async fn incr(
        &self,
        key: &str,
        by: i64,
        execution_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StateError> {
        Ok(self.with(|m| {
            let fresh = Entry {
                value: Value::from(0),
                expires_at,
                increments: Vec::new(),
            };
            let e = m.entry(key.to_owned()).or_insert_with(|| fresh.clone());
            if !self.live(e) {
                *e = fresh;
            }
            if let Some((_, v)) = e.increments.iter().find(|(id, _)| id == execution_id) {
                return *v;
            }
            let next = e.value.as_i64().unwrap_or(0) + by;
            e.value = Value::from(next);
            e.increments.push((execution_id.to_owned(), next));
            if e.increments.len() > REMEMBERED_INCREMENTS {
                e.increments.remove(0);
            }
            next
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        self.with(|m| m.remove(key));
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        Ok(self.with(|m| {
            m.range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, e)| self.live(e))
                .map(|(k, e)| (k.clone(), e.value.clone()))
                .collect()
        }))
    }
}

/// A dry run's view: reads fall through to the real store unless the dry run wrote the
/// key; writes stay in memory, so a dry run shows the next rotation without taking it.
pub struct DryRunState<'a> {
    real: &'a dyn StateStore,
    overlay: MemoryState,
    deleted: Mutex<Vec<String>>,
}

impl<'a> DryRunState<'a> {
    /// An overlay over `real`.
    #[must_use]
    pub fn new(real: &'a dyn StateStore) -> Self {
        Self {
            real,
            overlay: MemoryState::new(),
            deleted: Mutex::new(Vec::new()),
        }
    }

    fn is_deleted(&self, key: &str) -> bool {
        self.deleted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|k| k == key)
    }

    async fn current(&self, key: &str) -> Result<Option<Value>, StateError> {
        if let Some(v) = self.overlay.get(key).await? {
            return Ok(Some(v));
        }
        if self.is_deleted(key) {
            return Ok(None);
        }
        self.real.get(key).await
    }
}

#[async_trait]
impl StateStore for DryRunState<'_> {
    async fn get(&self, key: &str) -> Result<Option<Value>, StateError> {
        self.current(key).await
    }

    async fn put(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StateError> {
        self.overlay.put(key, value, expires_at).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(Value, bool), StateError> {
        match self.current(key).await? {
            Some(v) => Ok((v, false)),
            None => {
                self.overlay.put(key, value.clone(), expires_at).await?;
                Ok((value, true))
            }
        }
    }

    async fn incr(
        &self,
        key: &str,
        by: i64,
        _execution_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StateError> {
        let base = self
            .current(key)
            .await?
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let next = base + by;
        self.overlay.put(key, Value::from(next), expires_at).await?;
        Ok(next)
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        self.overlay.delete(key).await?;
        self.deleted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(key.to_owned());
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        let mut all: BTreeMap<String, Value> = self
            .real
            .list(prefix)
            .await?
            .into_iter()
            .filter(|(k, _)| !self.is_deleted(k))
            .collect();
        all.extend(self.overlay.list(prefix).await?);
        Ok(all.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Review finding 13: a put used to erase the journal, so a redelivered execution
    /// incremented a second time after a reset.
    #[tokio::test]
    async fn a_put_keeps_the_incr_journal() {
        let s = MemoryState::new();
        assert_eq!(s.incr("k", 1, "e1", None).await.unwrap(), 1);
        s.put("k", Value::from(0), None).await.unwrap();
        assert_eq!(s.incr("k", 1, "e1", None).await.unwrap(), 1);
        assert_eq!(s.get("k").await.unwrap(), Some(Value::from(0)));
    }

    #[tokio::test]
    async fn incr_is_once_per_execution_and_expiry_resets() {
        let s = MemoryState::new();
        let t0 = Utc::now();
        s.set_now(t0);
        let exp = Some(t0 + chrono::Duration::seconds(10));
        assert_eq!(s.incr("k", 1, "e1", exp).await.unwrap(), 1);
        assert_eq!(s.incr("k", 1, "e1", exp).await.unwrap(), 1);
        assert_eq!(s.incr("k", 1, "e2", exp).await.unwrap(), 2);
        s.set_now(t0 + chrono::Duration::seconds(11));
        assert_eq!(s.incr("k", 1, "e3", None).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn dry_run_reads_real_state_and_writes_nowhere() {
        let real = MemoryState::new();
        real.put("rot", json!(4), None).await.unwrap();
        let dry = DryRunState::new(&real);
        assert_eq!(dry.incr("rot", 1, "x", None).await.unwrap(), 5);
        assert_eq!(dry.get("rot").await.unwrap(), Some(json!(5)));
        assert_eq!(real.get("rot").await.unwrap(), Some(json!(4)));
        let (_, created) = dry.put_if_absent("new", json!(1), None).await.unwrap();
        assert!(created && real.get("new").await.unwrap().is_none());
    }
}
