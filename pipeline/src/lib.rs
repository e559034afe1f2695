//! mfh's stream runtime, free of business logic.
//!
//! # Layout
//! - [`config`] — layered config loading (defaults → file → env), shared by every binary.
//! - [`kafka`] — broker settings, the idempotent producer, consumers.
//! - [`avro`] — registry-aware Avro encode/decode (Confluent wire format).
//! - [`runner`] — a consumer-group loop with per-key ordering, bounded concurrency,
//!   at-least-once offset storage and dead letters.
//! - [`metrics`] — Prometheus metrics of every stage.
//! - [`registry_server`] — an embedded Confluent-API Schema Registry for the embedded default.

pub mod avro;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod registry_server;
pub mod runner;

pub use tokio_util::sync::CancellationToken;

/// Milliseconds since the Unix epoch, from the system clock.
#[must_use]
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Renders an error with its whole source chain, for logs and problem bodies.
#[must_use]
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        out.push_str(": ");
        out.push_str(&e.to_string());
        src = e.source();
    }
    out
}
