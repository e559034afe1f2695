//! Analytics helpers: customer value and RFM scoring.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod customer_lifetime_value;
pub mod rfm_calculation;

/// The analytics helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &customer_lifetime_value::CustomerLifetimeValue,
    &rfm_calculation::RfmCalculation,
];
