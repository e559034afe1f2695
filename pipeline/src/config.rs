//! Layered config: embedded defaults, then an optional TOML file, then environment
//! variables `MFH__SECTION__KEY` (double underscore separates levels).

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;
use std::path::Path;

/// The environment prefix of every config key.
pub const ENV_PREFIX: &str = "MFH__";

/// Loads `T` from `defaults` (TOML text), then `file` if given, then the environment.
///
/// # Errors
/// Every parse or type error figment finds, with the key and the layer it came from.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
) -> Result<T, Box<figment::Error>> {
    load_over(Figment::new(), defaults, file)
}

/// Like [`load`], over `base`: values (such as a section's serialized defaults) that
/// every later layer, the TOML defaults included, overrides key by key. Without it a
/// file or variable naming one key of a section serde fills from a `default` function
/// replaces the whole section, and its other keys are missing.
///
/// # Errors
/// As [`load`].
pub fn load_over<T: DeserializeOwned>(
    base: Figment,
    defaults: &str,
    file: Option<&Path>,
) -> Result<T, Box<figment::Error>> {
    let mut fig = base.merge(Toml::string(defaults));
    if let Some(f) = file {
        fig = fig.merge(Toml::file_exact(f));
    }
    fig.merge(Env::prefixed(ENV_PREFIX).split("__").lowercase(true))
        .extract()
        .map_err(Box::new)
}
