//! route_it_score: reads a numeric score field (default `Score`, e.g. score_it's output)
//! and redirects to the URL of the first range `[min_score, max_score]` (inclusive;
//! either end may be open) that contains it, e.g. hot/warm/cold leads get different
//! calendars. An empty score counts as 0; a non-numeric one fails without a write.
//! Overlapping ranges: the first wins. The URL goes to output `redirect_url`, optionally
//! to a field, with an optional tag. Idempotent.

use super::route_it::{check_opt_name, check_url, deliver};
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// One score range.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRange {
    /// Name reported as `matched_label`.
    #[serde(default)]
    pub label: String,
    /// Lowest score, inclusive; open when absent.
    pub min_score: Option<f64>,
    /// Highest score, inclusive; open when absent.
    pub max_score: Option<f64>,
    /// The URL.
    pub redirect_url: String,
}

impl ScoreRange {
    fn contains(&self, score: f64) -> bool {
        self.min_score.is_none_or(|m| score >= m) && self.max_score.is_none_or(|m| score <= m)
    }
}

/// Config of route_it_score.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The score field; default `Score`.
    #[serde(default = "default_field")]
    pub score_field: String,
    /// Ranges, first match wins.
    pub score_ranges: Vec<ScoreRange>,
    /// URL when no range contains the score.
    pub fallback_url: Option<String>,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
}

fn default_field() -> String {
    "Score".to_owned()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.score_field.trim().is_empty(),
            "score_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.score_ranges.is_empty(),
            "score_ranges",
            "must list at least one range",
        );
        for (i, r) in self.score_ranges.iter().enumerate() {
            let at = format!("score_ranges[{i}]");
            check(
                &mut errors,
                matches!((r.min_score, r.max_score), (Some(a), Some(b)) if a > b),
                &format!("{at}.max_score"),
                "must not be below min_score",
            );
            check_url(&mut errors, &format!("{at}.redirect_url"), &r.redirect_url);
        }
        if let Some(u) = &self.fallback_url {
            check_url(&mut errors, "fallback_url", u);
        }
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it_score helper.
pub struct RouteItScore;

impl Helper for RouteItScore {
    const NAME: &'static str = "route_it_score";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL by the range a numeric score falls in.";
    const EXAMPLE_CONFIG: &'static str = r#"{"score_field": "_LeadScore", "score_ranges": [{"label": "hot", "min_score": 80, "redirect_url": "https://example.com/hot"}, {"label": "warm", "min_score": 40, "max_score": 79, "redirect_url": "https://example.com/warm"}], "fallback_url": "https://example.com/cold"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["redirect_url", "score", "matched_label", "routing_reason"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(RouteItScoreStep(config)))
    }
}

struct RouteItScoreStep(Config);

impl Step for RouteItScoreStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let field = c.score_field.trim();
        let raw = contact.field(field).unwrap_or("0").trim();
        let Some(score) = raw.parse::<f64>().ok().filter(|s| s.is_finite()) else {
            return Ok(Outcome::failed(format!("{field} is not a number: {raw:?}"))
                .with("routing_reason", "score is not a number"));
        };
        let hit = c
            .score_ranges
            .iter()
            .enumerate()
            .find(|(_, r)| r.contains(score));
        let (url, reason, label) = match hit {
            Some((i, r)) => (
                Some(r.redirect_url.trim()),
                format!("score {score} is in range {i}"),
                r.label.clone(),
            ),
            None => (
                c.fallback_url.as_deref().map(str::trim),
                format!("score {score} is in no range"),
                String::new(),
            ),
        };
        Ok(deliver(
            contact,
            url,
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        )
        .with("score", score)
        .with("matched_label", label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    fn cfg() -> serde_json::Value {
        json!({"score_ranges": [
            {"label": "hot", "min_score": 80, "redirect_url": "https://x.com/hot"},
            {"label": "warm", "min_score": 40, "max_score": 80, "redirect_url": "https://x.com/warm"},
            {"label": "cold", "max_score": 39.5, "redirect_url": "https://x.com/cold"}
        ], "save_to_field": "u"})
    }

    fn url(score: &str) -> String {
        let out = run(&RouteItScore, cfg(), &contact(&[("Score", score)], &[]));
        out.output
            .get("redirect_url")
            .and_then(|u| u.as_str())
            .unwrap_or("none")
            .to_owned()
    }

    #[test]
    fn bounds_are_inclusive_and_the_first_range_wins() {
        assert_eq!(url("80"), "https://x.com/hot");
        assert_eq!(url("79.9"), "https://x.com/warm");
        assert_eq!(url("40"), "https://x.com/warm");
        assert_eq!(url("39.5"), "https://x.com/cold");
        assert_eq!(url("-3"), "https://x.com/cold");
        assert_eq!(url("39.7"), "none");
        let out = run(&RouteItScore, cfg(), &contact(&[("Score", " 95 ")], &[]));
        assert_eq!(out.output["matched_label"], "hot");
        assert_eq!(out.output["score"], 95.0);
        assert_eq!(out.changes, vec![set("u", "https://x.com/hot")]);
    }

    #[test]
    fn an_empty_score_is_zero_and_a_word_fails() {
        assert_eq!(url(""), "https://x.com/cold");
        let out = run(&RouteItScore, cfg(), &contact(&[("Score", "high")], &[]));
        assert!(!out.success && out.changes.is_empty());
        assert!(out.message.contains("not a number"));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RouteItScore,
            json!({"score_field": "", "score_ranges": [{"min_score": 5, "max_score": 1, "redirect_url": "x"}]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "score_field",
                "score_ranges[0].max_score",
                "score_ranges[0].redirect_url"
            ]
        );
        assert!(!config_errors(&RouteItScore, json!({"score_ranges": []})).is_empty());
    }
}
