//! Contact helpers.

pub mod copy_it;
pub mod name_parse_it;
