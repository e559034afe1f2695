//! An embedded schema registry speaking the subset of Confluent's REST API that
//! `schema_registry_converter` and ordinary Kafka clients use, for running mfh without an
//! external registry.
//!
//! Supported: registering and looking up Avro schemas (`/subjects/...`), fetching by global
//! id (`/schemas/ids/{id}`), compatibility checks (`/compatibility/...`; levels `NONE`,
//! `BACKWARD` (default), `FORWARD`, `FULL` and their `_TRANSITIVE` forms, checked with
//! `apache_avro`'s `SchemaCompatibility`), `/config` and soft or permanent deletes. Not
//! supported: schema types other than `AVRO`, schema references, modes, contexts and auth.
//!
//! # Layout
//! - [`RegistryState`] — the shared handle (a [`RegistryStore`] behind a mutex).
//! - `store`: [`RegistryStore`], subjects, versions, ids and the registration rules.
//! - `persist`: the store file's layout and its crash-safe write.
//! - `schema`: parsing, the identity key that decides "same schema", compatibility checks.
//! - `types`: [`CompatibilityLevel`], [`VersionSelector`], [`SubjectVersion`].
//! - `http`: routes, extractors and Confluent-style error bodies.
//! - `error`: [`RegistryError`].
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mfh_pipeline::registry_server::{RegistryState, serve};
//! let state = RegistryState::open(Some(std::path::Path::new("data/registry")))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

mod error;
mod http;
mod persist;
mod schema;
mod store;
#[cfg(test)]
mod tests;
mod types;

pub use error::RegistryError;
pub use persist::STORE_FILE;
pub use store::RegistryStore;
pub use types::{CompatibilityLevel, SubjectVersion, VersionSelector};

/// The content type of every registry response.
pub const CONTENT_TYPE: &str = http::CONTENT_TYPE;

/// Shared handle to the registry's store; cheap to clone.
///
/// Reads lock a `std` mutex briefly on the calling task (no `.await` while locked). Writes
/// run on `spawn_blocking`, because each one fsyncs the store file while holding the lock,
/// which keeps writes serialized and the file in step with memory.
#[derive(Debug, Clone)]
pub struct RegistryState {
    inner: Arc<Mutex<RegistryStore>>,
}

impl RegistryState {
    /// Opens the registry persisted in `dir` (created if missing), or an empty memory-only
    /// registry when `dir` is `None`.
    ///
    /// # Errors
    ///
    /// See [`RegistryStore::open`].
    pub fn open(dir: Option<&Path>) -> Result<Self, RegistryError> {
        RegistryStore::open(dir).map(Self::from)
    }

    /// Runs `f` with the store locked.
    ///
    /// A poisoned lock is recovered: every change is applied to a copy and swapped in only
    /// after it was persisted, so a panic cannot leave a half-applied change behind.
    pub fn read<T>(&self, f: impl FnOnce(&RegistryStore) -> T) -> T {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// Runs `f` with the store locked for writing, on the blocking pool.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns, or [`RegistryError::Internal`] if the blocking task fails.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut RegistryStore) -> Result<T, RegistryError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|err| RegistryError::Internal {
            reason: format!("registry write task failed: {}", crate::report(&err)),
        })?
    }
}

impl From<RegistryStore> for RegistryState {
    fn from(store: RegistryStore) -> Self {
        Self {
            inner: Arc::new(Mutex::new(store)),
        }
    }
}

/// The registry's routes, ready to serve or to nest under a prefix.
pub fn router(state: RegistryState) -> axum::Router {
    http::routes(state)
}

/// Serves the registry on `listener` until `shutdown` completes, then finishes in-flight
/// requests and returns.
///
/// # Errors
///
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: RegistryState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Schema registry listening.");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("Schema registry stopped.");
    Ok(())
}
