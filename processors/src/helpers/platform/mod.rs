//! Platform helpers: backups.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod keap_backup;

/// The platform helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &keap_backup::KeapBackup,
];
