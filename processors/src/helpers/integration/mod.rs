//! Integration helpers.

pub mod hook_it;
