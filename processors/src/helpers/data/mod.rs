//! Data helpers: transforms of field values, lookups and splits.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod date_calc;
pub mod format_it;
pub mod math_it;
pub mod split_it_basic;

/// The data helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &date_calc::DateCalc,
    &format_it::FormatIt,
    &math_it::MathIt,
    &split_it_basic::SplitItBasic,
];
