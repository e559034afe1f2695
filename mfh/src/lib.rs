//! The mfh command's library: config and the wiring of every component, shared by the
//! binary and the end-to-end tests.
//!
//! # Layout
//! - [`config`] — the one typed config (defaults → file → env) and its validation.
//! - [`stack`] — builds the services and runs the API and processors.
//! - [`embedded`] — starts the broker and the DynamoDB-compatible server as child
//!   processes, and the Schema Registry in-process, for `mfh up`.

pub mod config;
pub mod embedded;
pub mod stack;
