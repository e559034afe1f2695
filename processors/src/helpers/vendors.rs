//! Base URLs of the third-party services helpers call. Each has the vendor's public
//! default; config (`processors.vendors.<name> = "http://…"`) overrides any of them, which
//! is how tests point a helper at a local server that answers as the vendor documents.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every vendor a helper may call, with its public base URL.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("calendly", "https://api.calendly.com"),
    ("donor_search", "https://api.donorsearch.net"),
    ("dropbox", "https://api.dropboxapi.com"),
    ("dropbox_content", "https://content.dropboxapi.com"),
    ("email_validation", "https://api.zerobounce.net"),
    ("everwebinar", "https://api.webinarjam.com"),
    ("facebook_graph", "https://graph.facebook.com"),
    ("google_sheets", "https://sheets.googleapis.com"),
    ("gotowebinar", "https://api.getgo.com"),
    ("ip_api", "http://ip-api.com"),
    ("microsoft_graph", "https://graph.microsoft.com"),
    ("sendgrid", "https://api.sendgrid.com"),
    ("slack", "https://slack.com/api"),
    ("stripe", "https://api.stripe.com"),
    ("trello", "https://api.trello.com"),
    ("twilio", "https://api.twilio.com"),
    ("twilio_lookup", "https://lookups.twilio.com"),
    ("webinarjam", "https://api.webinarjam.com"),
    ("zoom", "https://api.zoom.us/v2"),
];

/// Vendor base URLs: the defaults plus configured overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vendors {
    overrides: BTreeMap<String, String>,
}

impl Vendors {
    /// The base URL of `vendor`, without a trailing slash.
    ///
    /// # Panics
    /// If `vendor` is not in [`DEFAULTS`]: that is a programming error a unit test of
    /// the calling helper catches.
    #[must_use]
    #[allow(clippy::panic)]
    pub fn base(&self, vendor: &str) -> &str {
        let base = self.overrides.get(vendor).map(String::as_str).or_else(|| {
            DEFAULTS
                .iter()
                .find(|(name, _)| *name == vendor)
                .map(|(_, url)| *url)
        });
        match base {
            Some(b) => b.trim_end_matches('/'),
            None => panic!("unknown vendor {vendor:?}; add it to vendors::DEFAULTS"),
        }
    }

    /// `base(vendor)` joined with `path` (which starts with `/`).
    #[must_use]
    pub fn url(&self, vendor: &str, path: &str) -> String {
        format!("{}{path}", self.base(vendor))
    }

    /// Overrides the base URL of `vendor`.
    #[must_use]
    pub fn with(mut self, vendor: &str, base: &str) -> Self {
        self.overrides.insert(vendor.to_owned(), base.to_owned());
        self
    }

    /// Overrides every vendor's base URL with `base` (one local server for all).
    #[must_use]
    pub fn all_at(base: &str) -> Self {
        DEFAULTS
            .iter()
            .fold(Self::default(), |v, (name, _)| v.with(name, base))
    }

    /// Names configured that are not known vendors (a config mistake worth reporting).
    #[must_use]
    pub fn unknown(&self) -> Vec<&str> {
        self.overrides
            .keys()
            .filter(|k| !DEFAULTS.iter().any(|(n, _)| n == k))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_slashes_are_trimmed() {
        let v = Vendors::default().with("slack", "http://127.0.0.1:9/");
        assert_eq!(
            v.url("slack", "/chat.postMessage"),
            "http://127.0.0.1:9/chat.postMessage"
        );
        assert_eq!(v.base("zoom"), "https://api.zoom.us/v2");
        assert!(Vendors::default().with("nope", "x").unknown() == vec!["nope"]);
    }
}
