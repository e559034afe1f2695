//! The registry: every helper, one line each, in the order docs and the API list them.

use super::{DynHelper, contact, data, integration, tagging};

/// All helpers.
pub static HELPERS: &[&dyn DynHelper] = &[
    &tagging::tag_it::TagIt,
    &tagging::clear_tags::ClearTags,
    &tagging::score_it::ScoreIt,
    &contact::copy_it::CopyIt,
    &contact::name_parse_it::NameParseIt,
    &data::date_calc::DateCalc,
    &data::format_it::FormatIt,
    &data::math_it::MathIt,
    &data::split_it_basic::SplitItBasic,
    &integration::hook_it::HookIt,
];

/// The helper registered under `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static dyn DynHelper> {
    HELPERS.iter().copied().find(|h| h.name() == name)
}
