//! Tagging helpers.

pub mod clear_tags;
pub mod score_it;
pub mod tag_it;
