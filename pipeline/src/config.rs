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
    let mut fig = Figment::new().merge(Toml::string(defaults));
    if let Some(f) = file {
        fig = fig.merge(Toml::file_exact(f));
    }
    fig.merge(Env::prefixed(ENV_PREFIX).split("__").lowercase(true))
        .extract()
        .map_err(Box::new)
}
