//! Contact helpers: fields, names, notes, owners, consent, companies, duplicates.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod copy_it;
pub mod name_parse_it;

/// The contact helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &copy_it::CopyIt,
    &name_parse_it::NameParseIt,
];
