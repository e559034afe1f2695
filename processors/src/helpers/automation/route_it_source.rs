//! route_it_source: redirects by a traffic or lead-source field (default `LeadSource`;
//! or utm_source, utm_campaign, Referrer) matched `exact`, `contains` or `starts_with`,
//! case-insensitively by default. Routes are an ordered list, and the longest matching
//! pattern wins, ties going to the earlier route, so "google ads" beats "google" whatever
//! the order (the old rebuild iterated a hash map: a random winner). An empty source or no
//! match → `fallback_url`. The URL goes to output `redirect_url`, optionally to a field,
//! with an optional tag. Idempotent.

use super::route_it::{check_opt_name, check_url, deliver};
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// How the source is compared with a pattern.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Equal after trimming (default).
    #[default]
    Exact,
    /// The source contains the pattern.
    Contains,
    /// The source starts with the pattern.
    StartsWith,
}

/// One source route.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRoute {
    /// The source value or fragment.
    #[serde(alias = "value")]
    pub pattern: String,
    /// The URL.
    pub url: String,
}

/// Config of route_it_source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The source field; default `LeadSource`.
    #[serde(default = "default_field")]
    pub source_field: String,
    /// Routes, in order.
    pub source_routes: Vec<SourceRoute>,
    /// `exact` (default), `contains` or `starts_with`.
    #[serde(default)]
    pub match_mode: MatchMode,
    /// Compare case-sensitively; default false.
    #[serde(default)]
    pub case_sensitive: bool,
    /// URL when nothing matches.
    pub fallback_url: Option<String>,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
}

fn default_field() -> String {
    "LeadSource".to_owned()
}

impl Config {
    fn norm(&self, s: &str) -> String {
        if self.case_sensitive {
            s.trim().to_owned()
        } else {
            s.trim().to_lowercase()
        }
    }

    fn hits(&self, source: &str, pattern: &str) -> bool {
        match self.match_mode {
            MatchMode::Exact => source == pattern,
            MatchMode::Contains => source.contains(pattern),
            MatchMode::StartsWith => source.starts_with(pattern),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.source_field.trim().is_empty(),
            "source_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.source_routes.is_empty(),
            "source_routes",
            "must list at least one route",
        );
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.source_routes.iter().enumerate() {
            let at = format!("source_routes[{i}]");
            check(
                &mut errors,
                r.pattern.trim().is_empty(),
                &format!("{at}.pattern"),
                "must not be empty",
            );
            check(
                &mut errors,
                !seen.insert(self.norm(&r.pattern)),
                &format!("{at}.pattern"),
                "repeats an earlier pattern",
            );
            check_url(&mut errors, &format!("{at}.url"), &r.url);
        }
        if let Some(u) = &self.fallback_url {
            check_url(&mut errors, "fallback_url", u);
        }
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it_source helper.
pub struct RouteItSource;

impl Helper for RouteItSource {
    const NAME: &'static str = "route_it_source";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL by the contact's lead or traffic source.";
    const EXAMPLE_CONFIG: &'static str = r#"{"source_field": "utm_source", "source_routes": [{"pattern": "google", "url": "https://example.com/g"}, {"pattern": "facebook", "url": "https://example.com/fb"}], "match_mode": "contains", "fallback_url": "https://example.com/"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "source",
        "matched_source",
        "match_mode",
        "routing_reason",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(RouteItSourceStep(config)))
    }
}

struct RouteItSourceStep(Config);

impl Step for RouteItSourceStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let raw = contact.field(c.source_field.trim()).unwrap_or("").trim();
        let source = c.norm(raw);
        let mut best: Option<&SourceRoute> = None;
        if !source.is_empty() {
            for r in &c.source_routes {
                let longer = best.is_none_or(|b| r.pattern.trim().len() > b.pattern.trim().len());
                if longer && c.hits(&source, &c.norm(&r.pattern)) {
                    best = Some(r);
                }
            }
        }
        let (url, reason, matched) = match best {
            Some(r) => (
                Some(r.url.trim()),
                format!("source {raw:?} matched {:?}", r.pattern.trim()),
                r.pattern.trim(),
            ),
            None if raw.is_empty() => (c.fallback_url.as_deref(), "source is empty".into(), ""),
            None => (
                c.fallback_url.as_deref(),
                format!("no route for source {raw:?}"),
                "",
            ),
        };
        let mode = match c.match_mode {
            MatchMode::Exact => "exact",
            MatchMode::Contains => "contains",
            MatchMode::StartsWith => "starts_with",
        };
        Ok(deliver(
            contact,
            url.map(str::trim),
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        )
        .with("source", raw)
        .with("matched_source", matched)
        .with("match_mode", mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    fn pick(cfg: &serde_json::Value, source: &str) -> Outcome {
        run(
            &RouteItSource,
            cfg.clone(),
            &contact(&[("LeadSource", source)], &[]),
        )
    }

    #[test]
    fn exact_matching_ignores_case_and_spaces_by_default() {
        let cfg = json!({"source_routes": [{"pattern": "Google", "url": "https://x.com/g"}], "fallback_url": "https://x.com/", "apply_tag": "4"});
        let out = pick(&cfg, " google ");
        assert_eq!(out.output["redirect_url"], "https://x.com/g");
        assert_eq!(out.output["matched_source"], "Google");
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "4".into() }]);
        assert_eq!(
            pick(&cfg, "google ads").output["redirect_url"],
            "https://x.com/"
        );
        let mut strict = cfg;
        strict["case_sensitive"] = json!(true);
        assert_eq!(
            pick(&strict, "google").output["redirect_url"],
            "https://x.com/"
        );
    }

    #[test]
    fn the_longest_pattern_wins_whatever_the_order() {
        for routes in [
            json!([{"pattern": "google", "url": "https://x.com/g"}, {"pattern": "google ads", "url": "https://x.com/ads"}]),
            json!([{"pattern": "google ads", "url": "https://x.com/ads"}, {"pattern": "google", "url": "https://x.com/g"}]),
        ] {
            let cfg = json!({"source_routes": routes, "match_mode": "contains"});
            assert_eq!(
                pick(&cfg, "Paid Google Ads").output["redirect_url"],
                "https://x.com/ads"
            );
            assert_eq!(
                pick(&cfg, "google organic").output["redirect_url"],
                "https://x.com/g"
            );
        }
        let ties = json!({"source_routes": [{"pattern": "fb", "url": "https://x.com/1"}, {"pattern": "ig", "url": "https://x.com/2"}], "match_mode": "contains"});
        assert_eq!(
            pick(&ties, "ig-fb").output["redirect_url"],
            "https://x.com/1"
        );
    }

    #[test]
    fn starts_with_and_empty_sources() {
        let cfg = json!({"source_field": "utm", "source_routes": [{"value": "news", "url": "https://x.com/n"}], "match_mode": "starts_with", "fallback_url": "https://x.com/"});
        let hit = run(
            &RouteItSource,
            cfg.clone(),
            &contact(&[("utm", "newsletter-3")], &[]),
        );
        assert_eq!(hit.output["redirect_url"], "https://x.com/n");
        let miss = run(
            &RouteItSource,
            cfg.clone(),
            &contact(&[("utm", "the news")], &[]),
        );
        assert_eq!(miss.output["redirect_url"], "https://x.com/");
        let empty = run(&RouteItSource, cfg, &contact(&[], &[]));
        assert_eq!(empty.output["routing_reason"], "source is empty");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RouteItSource,
            json!({"source_routes": [{"pattern": "a", "url": "https://x.com"}, {"pattern": " A", "url": "mailto:x"}, {"pattern": "", "url": "https://x.com"}]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source_routes[1].pattern",
                "source_routes[1].url",
                "source_routes[2].pattern"
            ]
        );
        assert!(!config_errors(&RouteItSource, json!({"source_routes": []})).is_empty());
        assert!(!config_errors(&RouteItSource, json!({"source_routes": [{"pattern": "a", "url": "https://x.com"}], "match_mode": "regex"})).is_empty());
    }
}
