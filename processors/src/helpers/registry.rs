//! The registry: every helper, listed by category. Each category's `mod.rs` holds its
//! own list, so adding a helper touches only its category.

use super::{
    Category, DynHelper, analytics, automation, contact, data, integration, notification, platform,
    tagging,
};
use std::sync::LazyLock;

/// All helpers, category by category in [`Category::ALL`] order.
pub static HELPERS: LazyLock<Vec<&'static dyn DynHelper>> = LazyLock::new(|| {
    Category::ALL
        .iter()
        .flat_map(|c| match c {
            Category::Tagging => tagging::HELPERS,
            Category::Contact => contact::HELPERS,
            Category::Data => data::HELPERS,
            Category::Automation => automation::HELPERS,
            Category::Integration => integration::HELPERS,
            Category::Notification => notification::HELPERS,
            Category::Analytics => analytics::HELPERS,
            Category::Platform => platform::HELPERS,
        })
        .copied()
        .collect()
});

/// The helper registered under `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static dyn DynHelper> {
    HELPERS.iter().copied().find(|h| h.name() == name)
}
