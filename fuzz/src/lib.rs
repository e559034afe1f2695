//! Fuzz targets: each takes arbitrary bytes, shapes them into the input of one of mfh's
//! parsers, validators or helpers, and calls the real code. A panic is a finding; an
//! error is the right answer to bad input.
//!
//! libFuzzer drives them (`scripts/fuzz`, through `fuzz/libfuzzer/`, coverage-guided);
//! `tests/short_pass.rs` runs every target over seeded random inputs in the test suite.

pub mod avro;
pub mod helpers;
mod json;
pub mod outbound;
pub mod run_url;
pub mod stripe;
pub mod webhooks;

/// A target: arbitrary bytes in, a panic when it finds something.
pub type Target = fn(&[u8]);

/// Every target by name, as `scripts/fuzz` and the short pass list them.
pub const TARGETS: &[(&str, Target)] = &[
    ("helper", helpers::helper),
    ("crm_webhook", webhooks::crm_webhook),
    ("stripe_event", stripe::stripe_event),
    ("avro", avro::avro),
    ("run_url", run_url::run_url),
    ("outbound", outbound::outbound),
];
