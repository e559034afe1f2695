//! Data helpers.

pub mod date_calc;
pub mod format_it;
pub mod math_it;
pub mod split_it_basic;
