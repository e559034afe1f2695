//! Tagging helpers: tags and scores.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod clear_tags;
pub mod count_it_tags;
pub mod count_tags;
pub mod group_it;
pub mod score_it;
pub mod tag_it;

/// The tagging helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &tag_it::TagIt,
    &clear_tags::ClearTags,
    &count_it_tags::CountItTags,
    &count_tags::CountTags,
    &group_it::GroupIt,
    &score_it::ScoreIt,
];
