//! Small value types of the registry API: [`CompatibilityLevel`], [`VersionSelector`] and
//! [`SubjectVersion`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::RegistryError;

/// Largest id or version number; Confluent clients read them as signed 32-bit integers.
pub(super) const MAX_NUMBER: u32 = i32::MAX as u32;

/// A compatibility level, as in Confluent's `/config` API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema can read data written with the latest version.
    #[default]
    Backward,
    /// The new schema can read data written with every live version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every live version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every live version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// The level's wire name, e.g. `BACKWARD_TRANSITIVE`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    pub(super) const fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The new schema must read what existing versions wrote.
    pub(super) const fn backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Existing versions must read what the new schema writes.
    pub(super) const fn forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Parses a wire name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::None,
            Self::Backward,
            Self::BackwardTransitive,
            Self::Forward,
            Self::ForwardTransitive,
            Self::Full,
            Self::FullTransitive,
        ]
        .into_iter()
        .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| RegistryError::InvalidCompatibilityLevel {
            level: s.to_owned(),
        })
    }
}

/// Which version of a subject a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    /// The highest visible version (`latest` or `-1` on the wire).
    Latest,
    /// A version number (1 or more).
    Number(u32),
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for VersionSelector {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(Self::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=MAX_NUMBER).contains(&n) => Ok(Self::Number(n)),
            _ => Err(RegistryError::InvalidVersion {
                version: s.to_owned(),
            }),
        }
    }
}

/// One version of a subject, as returned by `GET /subjects/{subject}/versions/{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number within the subject.
    pub version: u32,
    /// The global schema id.
    pub id: u32,
    /// The schema text, as first registered under this id.
    pub schema: String,
}
