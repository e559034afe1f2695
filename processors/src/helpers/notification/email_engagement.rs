//! email_engagement: scores how engaged the contact is with email from the CRM's email
//! statistics. `score = (opens × w_opens + clicks × w_clicks + sent × w_sends) × decay`,
//! counting only the metric `engagement_type` names (`all`: every metric; sends weigh 0 by
//! default). The decay falls linearly from 1.0 to 0.5 over `time_decay_days` since the last
//! engagement (last open or click; last send for `sends`) and stays at 0.5 after that, or
//! when the date is unknown. Level: `highly_engaged` (score ≥ its threshold and engaged
//! within `lookback_days`), `engaged`, else `disengaged`; segment: `hot`, `warm`, `cold`.
//! The matching tag of each set is applied and the set's other tags are removed, so a
//! contact is in one level and one segment. With `trend_analysis` the score is compared
//! with a baseline kept in platform state (`rising`, `falling`, `stable`, or `new` the
//! first time); the baseline rolls forward every `comparison_days`. No email or no
//! statistics means a score of 0: disengaged and cold. The result depends on "now".

use crate::connectors::Capability;
use crate::helpers::defaults::default_email;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Which statistics count.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EngagementType {
    /// Opens only.
    Opens,
    /// Clicks only.
    Clicks,
    /// Sends only.
    Sends,
    /// Everything (default).
    #[default]
    All,
}

/// Points per event.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Per open; default 1.
    #[serde(default = "one")]
    pub opens: f64,
    /// Per click; default 3.
    #[serde(default = "three")]
    pub clicks: f64,
    /// Per email sent; default 0.
    #[serde(default)]
    pub sends: f64,
}

/// Score levels.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Score for `highly_engaged`; default 5.
    #[serde(default = "five")]
    pub highly_engaged: f64,
    /// Score for `engaged`; default 2.
    #[serde(default = "two")]
    pub engaged: f64,
}

/// Score segments.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Segments {
    /// Score for `hot`; default 10.
    #[serde(default = "ten")]
    pub hot_threshold: f64,
    /// Score for `warm`; default 5.
    #[serde(default = "five")]
    pub warm_threshold: f64,
}

/// Trend settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trend {
    /// Compute a trend; default false.
    #[serde(default)]
    pub enabled: bool,
    /// Days between baselines; default 30.
    #[serde(default = "thirty")]
    pub comparison_days: u32,
}

/// Tag ids per level and segment.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// For `highly_engaged`.
    pub highly_engaged_tag: Option<String>,
    /// For `engaged`.
    pub engaged_tag: Option<String>,
    /// For `disengaged`.
    pub disengaged_tag: Option<String>,
    /// For `hot`.
    pub hot_segment_tag: Option<String>,
    /// For `warm`.
    pub warm_segment_tag: Option<String>,
    /// For `cold`.
    pub cold_segment_tag: Option<String>,
}

fn one() -> f64 {
    1.0
}
fn two() -> f64 {
    2.0
}
fn three() -> f64 {
    3.0
}
fn five() -> f64 {
    5.0
}
fn ten() -> f64 {
    10.0
}
const fn thirty() -> u32 {
    30
}
const fn ninety() -> u32 {
    90
}
impl Default for Weights {
    fn default() -> Self {
        Self {
            opens: 1.0,
            clicks: 3.0,
            sends: 0.0,
        }
    }
}
impl Default for Thresholds {
    fn default() -> Self {
        Self {
            highly_engaged: 5.0,
            engaged: 2.0,
        }
    }
}
impl Default for Segments {
    fn default() -> Self {
        Self {
            hot_threshold: 10.0,
            warm_threshold: 5.0,
        }
    }
}
impl Default for Trend {
    fn default() -> Self {
        Self {
            enabled: false,
            comparison_days: 30,
        }
    }
}

/// Config of email_engagement.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `opens`, `clicks`, `sends` or `all` (default).
    #[serde(default)]
    pub engagement_type: EngagementType,
    /// Recent-engagement window for `highly_engaged`; default 30 days.
    #[serde(default = "thirty")]
    pub lookback_days: u32,
    /// Days over which the score decays to half; default 90.
    #[serde(default = "ninety")]
    pub time_decay_days: u32,
    /// Points per event.
    #[serde(default)]
    pub engagement_weights: Weights,
    /// Level thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Segment thresholds.
    #[serde(default)]
    pub segments: Segments,
    /// Trend settings.
    #[serde(default)]
    pub trend_analysis: Trend,
    /// Tag ids per level and segment.
    #[serde(default)]
    pub tags: Tags,
    /// Field that receives the score.
    pub score_field: Option<String>,
    /// Field that receives the last engagement date (`YYYY-MM-DD`).
    pub last_engagement_field: Option<String>,
    /// Field that receives the segment.
    pub segment_field: Option<String>,
    /// Field that receives the trend.
    pub trend_field: Option<String>,
    /// Field with the address whose statistics are read; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let days = |d: u32| (1..=3650).contains(&d);
        check(
            &mut errors,
            !days(self.lookback_days),
            "lookback_days",
            "must be 1 to 3650",
        );
        check(
            &mut errors,
            !days(self.time_decay_days),
            "time_decay_days",
            "must be 1 to 3650",
        );
        let w = &self.engagement_weights;
        check(
            &mut errors,
            [w.opens, w.clicks, w.sends]
                .iter()
                .any(|x| !x.is_finite() || *x < 0.0),
            "engagement_weights",
            "weights must be zero or more",
        );
        let t = &self.thresholds;
        check(
            &mut errors,
            !(t.engaged >= 0.0 && t.highly_engaged > t.engaged),
            "thresholds",
            "need 0 <= engaged < highly_engaged",
        );
        let s = &self.segments;
        check(
            &mut errors,
            !(s.warm_threshold >= 0.0 && s.hot_threshold > s.warm_threshold),
            "segments",
            "need 0 <= warm_threshold < hot_threshold",
        );
        check(
            &mut errors,
            !days(self.trend_analysis.comparison_days),
            "trend_analysis.comparison_days",
            "must be 1 to 3650",
        );
        let tg = &self.tags;
        for (field, v) in [
            ("tags.highly_engaged_tag", &tg.highly_engaged_tag),
            ("tags.engaged_tag", &tg.engaged_tag),
            ("tags.disengaged_tag", &tg.disengaged_tag),
            ("tags.hot_segment_tag", &tg.hot_segment_tag),
            ("tags.warm_segment_tag", &tg.warm_segment_tag),
            ("tags.cold_segment_tag", &tg.cold_segment_tag),
            ("score_field", &self.score_field),
            ("last_engagement_field", &self.last_engagement_field),
            ("segment_field", &self.segment_field),
            ("trend_field", &self.trend_field),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|x| x.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut errors,
            self.trend_field.is_some() && !self.trend_analysis.enabled,
            "trend_field",
            "needs trend_analysis.enabled",
        );
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The email_engagement helper.
pub struct EmailEngagement;

impl Helper for EmailEngagement {
    const NAME: &'static str = "email_engagement";
    const CATEGORY: Category = Category::Notification;
    const SUMMARY: &'static str =
        "Scores the contact's email engagement and tags its level and segment.";
    const EXAMPLE_CONFIG: &'static str = r#"{"tags": {"highly_engaged_tag": "901", "engaged_tag": "902", "disengaged_tag": "903"}, "score_field": "_EngagementScore", "segment_field": "_EngagementSegment"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "engagement_level",
        "engagement_score",
        "engagement_segment",
        "engagement_trend",
        "last_engagement",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::EmailStats, Capability::Tags, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(EngagementStep(config)))
    }
}

struct EngagementStep(Config);

/// `x` with at most two decimals and no trailing zeros.
fn num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Applies `chosen` and removes the set's other tags the contact holds.
fn exclusive(out: Outcome, contact: &Contact, set: &[&Option<String>], chosen: usize) -> Outcome {
    let pick = set[chosen].as_deref().map(str::trim);
    let mut out = out;
    for (i, t) in set.iter().enumerate() {
        if let Some(t) = t.as_deref().map(str::trim)
            && i != chosen
            && Some(t) != pick
            && contact.has_tag(t)
        {
            out = out.change(Change::RemoveTag {
                tag_id: t.to_owned(),
            });
        }
    }
    out.branch(contact, pick, None)
}

impl EngagementStep {
    /// The trend against the stored baseline, rolling the baseline when it is old.
    async fn trend(
        &self,
        ctx: &Ctx<'_>,
        contact: &Contact,
        score: f64,
    ) -> Result<String, StepError> {
        let key = format!("email_engagement/{}/{}", ctx.instance, contact.id);
        let window = Duration::days(i64::from(self.0.trend_analysis.comparison_days));
        let baseline = json!({"score": score, "at": ctx.now.to_rfc3339()});
        let expires = Some(ctx.now + window * 3);
        let Some(prev) = ctx.state.get(&key).await? else {
            ctx.state.put(&key, baseline, expires).await?;
            return Ok("new".into());
        };
        let old = prev["score"].as_f64().unwrap_or(0.0);
        let at = prev["at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map_or(ctx.now, |t| t.to_utc());
        if ctx.now - at >= window {
            ctx.state.put(&key, baseline, expires).await?;
        }
        let margin = (old * 0.1).max(0.5);
        Ok(if score > old + margin {
            "rising"
        } else if score < old - margin {
            "falling"
        } else {
            "stable"
        }
        .into())
    }
}

#[async_trait::async_trait]
impl AsyncStep for EngagementStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let stats = match contact.field(c.email_field.trim()) {
            Some(email) => ctx.crm.email_stats(email.trim()).await?,
            None => crate::connectors::EmailStats::default(),
        };
        let w = &c.engagement_weights;
        #[allow(clippy::cast_precision_loss)]
        let (opens, clicks, sent) = (stats.opens as f64, stats.clicks as f64, stats.sent as f64);
        let (raw, last): (f64, Option<DateTime<Utc>>) = match c.engagement_type {
            EngagementType::Opens => (opens * w.opens, stats.last_open),
            EngagementType::Clicks => (clicks * w.clicks, stats.last_click),
            EngagementType::Sends => (sent * w.sends, stats.last_sent),
            EngagementType::All => (
                opens * w.opens + clicks * w.clicks + sent * w.sends,
                stats.last_open.max(stats.last_click),
            ),
        };
        let decay_days = f64::from(c.time_decay_days);
        #[allow(clippy::cast_precision_loss)]
        let age_days = last.map(|t| (ctx.now - t).num_seconds().max(0) as f64 / 86_400.0);
        let factor = age_days.map_or(0.5, |d| {
            if d >= decay_days {
                0.5
            } else {
                1.0 - 0.5 * d / decay_days
            }
        });
        let score = (raw * factor * 100.0).round() / 100.0;
        let recent = age_days.is_some_and(|d| d <= f64::from(c.lookback_days));
        let t = &c.thresholds;
        let level = if score >= t.highly_engaged && recent {
            0
        } else if score >= t.engaged {
            1
        } else {
            2
        };
        let s = &c.segments;
        let segment = if score >= s.hot_threshold {
            0
        } else if score >= s.warm_threshold {
            1
        } else {
            2
        };
        let level_name = ["highly_engaged", "engaged", "disengaged"][level];
        let segment_name = ["hot", "warm", "cold"][segment];
        let trend = if c.trend_analysis.enabled {
            Some(self.trend(ctx, contact, score).await?)
        } else {
            None
        };
        let tg = &c.tags;
        let mut out = Outcome::ok(format!(
            "Email engagement {level_name} ({segment_name}), score {}",
            num(score)
        ))
        .with("engagement_level", level_name)
        .with("engagement_score", score)
        .with("engagement_segment", segment_name)
        .with(
            "engagement_trend",
            trend.clone().map_or(Value::Null, Value::from),
        )
        .with(
            "last_engagement",
            last.map_or(Value::Null, |t| json!(t.to_rfc3339())),
        );
        out = exclusive(
            out,
            contact,
            &[&tg.highly_engaged_tag, &tg.engaged_tag, &tg.disengaged_tag],
            level,
        );
        out = exclusive(
            out,
            contact,
            &[
                &tg.hot_segment_tag,
                &tg.warm_segment_tag,
                &tg.cold_segment_tag,
            ],
            segment,
        );
        let mut writes = vec![
            (&c.score_field, Some(num(score))),
            (
                &c.last_engagement_field,
                last.map(|t| t.format("%Y-%m-%d").to_string()),
            ),
            (&c.segment_field, Some(segment_name.to_owned())),
        ];
        writes.push((&c.trend_field, trend));
        for (field, value) in writes {
            if let (Some(f), Some(v)) = (field, value) {
                out = out.set_field(contact, f.trim(), v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::EmailStats;
    use crate::helpers::testing::{Env, config_errors, contact, set};

    fn days_ago(env: &Env, d: i64) -> Option<DateTime<Utc>> {
        Some(env.now - Duration::days(d))
    }

    fn cfg() -> Value {
        json!({"tags": {"highly_engaged_tag": "h", "engaged_tag": "e", "disengaged_tag": "d",
            "hot_segment_tag": "hot", "warm_segment_tag": "warm", "cold_segment_tag": "cold"},
            "score_field": "_Score", "last_engagement_field": "_Last", "segment_field": "_Seg"})
    }

    fn env_with(stats: EmailStats) -> Env {
        let mut env = Env::new();
        env.crm.email_stats.insert("ada@x.io".into(), stats);
        env
    }

    fn ada(tags: &[&str]) -> Contact {
        contact(&[("email", "Ada@X.io")], tags)
    }

    #[tokio::test]
    async fn fresh_engagement_is_hot_and_highly_engaged() {
        let mut env = env_with(EmailStats::default());
        let stats = EmailStats {
            sent: 20,
            opens: 4,
            clicks: 2,
            last_open: days_ago(&env, 3),
            last_click: days_ago(&env, 1),
            ..EmailStats::default()
        };
        env.crm.email_stats.insert("ada@x.io".into(), stats);
        let out = env
            .run(&EmailEngagement, cfg(), &ada(&["d", "cold", "warm"]))
            .await
            .unwrap();
        // raw 4 + 6 = 10; 1 day old: factor 1 - 0.5/90.
        assert_eq!(out.output["engagement_score"], json!(9.94));
        assert_eq!(out.output["engagement_level"], json!("highly_engaged"));
        assert_eq!(out.output["engagement_segment"], json!("warm"));
        assert_eq!(
            out.output["last_engagement"],
            json!("2026-03-14T12:00:00+00:00")
        );
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag { tag_id: "d".into() },
                Change::ApplyTag { tag_id: "h".into() },
                Change::RemoveTag {
                    tag_id: "cold".into()
                },
                set("_Score", "9.94"),
                set("_Last", "2026-03-14"),
                set("_Seg", "warm"),
            ]
        );
    }

    #[tokio::test]
    async fn old_engagement_decays_to_half_and_is_not_recent() {
        let mut env = env_with(EmailStats::default());
        let stats = EmailStats {
            opens: 20,
            clicks: 2,
            last_open: days_ago(&env, 200),
            ..EmailStats::default()
        };
        env.crm.email_stats.insert("ada@x.io".into(), stats);
        let out = env
            .run(&EmailEngagement, cfg(), &ada(&["h"]))
            .await
            .unwrap();
        assert_eq!(out.output["engagement_score"], json!(13.0));
        assert_eq!(out.output["engagement_level"], json!("engaged"));
        assert_eq!(out.output["engagement_segment"], json!("hot"));
        assert!(
            out.changes
                .contains(&Change::RemoveTag { tag_id: "h".into() })
        );
        assert!(
            out.changes
                .contains(&Change::ApplyTag { tag_id: "e".into() })
        );
        // Halfway through the decay window the factor is 0.75.
        let stats = EmailStats {
            opens: 4,
            last_open: days_ago(&env, 45),
            ..EmailStats::default()
        };
        env.crm.email_stats.insert("ada@x.io".into(), stats);
        let out = env
            .run(&EmailEngagement, json!({}), &ada(&[]))
            .await
            .unwrap();
        assert_eq!(out.output["engagement_score"], json!(3.0));
    }

    #[tokio::test]
    async fn no_email_or_no_stats_is_disengaged_and_cold() {
        let env = Env::new();
        for who in [contact(&[], &[]), ada(&["d", "cold"])] {
            let out = env.run(&EmailEngagement, cfg(), &who).await.unwrap();
            assert_eq!(out.output["engagement_score"], json!(0.0));
            assert_eq!(out.output["engagement_level"], json!("disengaged"));
            assert_eq!(out.output["engagement_segment"], json!("cold"));
            assert_eq!(out.output["last_engagement"], Value::Null);
        }
        let out = env
            .run(&EmailEngagement, cfg(), &ada(&["d", "cold"]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_Score", "0"), set("_Seg", "cold")]);
    }

    #[tokio::test]
    async fn engagement_type_picks_the_metric() {
        let mut env = env_with(EmailStats::default());
        let stats = EmailStats {
            sent: 10,
            opens: 4,
            clicks: 2,
            last_sent: days_ago(&env, 0),
            last_open: days_ago(&env, 0),
            last_click: days_ago(&env, 0),
        };
        env.crm.email_stats.insert("ada@x.io".into(), stats);
        let score = |v: Value| v["engagement_score"].as_f64().unwrap();
        let out = env
            .run(
                &EmailEngagement,
                json!({"engagement_type": "clicks"}),
                &ada(&[]),
            )
            .await
            .unwrap();
        assert!((score(Value::Object(out.output)) - 6.0).abs() < 1e-9);
        let out = env
            .run(
                &EmailEngagement,
                json!({"engagement_type": "opens"}),
                &ada(&[]),
            )
            .await
            .unwrap();
        assert!((score(Value::Object(out.output)) - 4.0).abs() < 1e-9);
        let out = env
            .run(
                &EmailEngagement,
                json!({"engagement_type": "sends", "engagement_weights": {"sends": 0.5}}),
                &ada(&[]),
            )
            .await
            .unwrap();
        assert!((score(Value::Object(out.output)) - 5.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn trend_compares_with_a_rolling_baseline() {
        let mut env = env_with(EmailStats::default());
        env.state.set_now(env.now);
        let c = json!({"trend_analysis": {"enabled": true, "comparison_days": 30}, "trend_field": "_Trend"});
        let put = |env: &mut Env, opens: u64| {
            let stats = EmailStats {
                opens,
                last_open: Some(env.now),
                ..EmailStats::default()
            };
            env.crm.email_stats.insert("ada@x.io".into(), stats);
        };
        put(&mut env, 4);
        let out = env
            .run(&EmailEngagement, c.clone(), &ada(&[]))
            .await
            .unwrap();
        assert_eq!(out.output["engagement_trend"], json!("new"));
        assert!(out.changes.contains(&set("_Trend", "new")));
        env.now += Duration::days(10);
        env.state.set_now(env.now);
        put(&mut env, 8);
        assert_eq!(
            env.run(&EmailEngagement, c.clone(), &ada(&[]))
                .await
                .unwrap()
                .output["engagement_trend"],
            json!("rising")
        );
        put(&mut env, 4);
        assert_eq!(
            env.run(&EmailEngagement, c.clone(), &ada(&[]))
                .await
                .unwrap()
                .output["engagement_trend"],
            json!("stable")
        );
        // After the window the baseline rolls to the current score.
        env.now += Duration::days(25);
        env.state.set_now(env.now);
        put(&mut env, 1);
        assert_eq!(
            env.run(&EmailEngagement, c.clone(), &ada(&[]))
                .await
                .unwrap()
                .output["engagement_trend"],
            json!("falling")
        );
        env.now += Duration::days(1);
        env.state.set_now(env.now);
        assert_eq!(
            env.run(&EmailEngagement, c, &ada(&[]))
                .await
                .unwrap()
                .output["engagement_trend"],
            json!("stable")
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &EmailEngagement,
            json!({"lookback_days": 0, "time_decay_days": 5000,
            "engagement_weights": {"opens": -1}, "thresholds": {"highly_engaged": 1, "engaged": 2},
            "segments": {"hot_threshold": 5, "warm_threshold": 5}, "trend_analysis": {"comparison_days": 0},
            "tags": {"engaged_tag": ""}, "trend_field": "_T", "email_field": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lookback_days",
                "time_decay_days",
                "engagement_weights",
                "thresholds",
                "segments",
                "trend_analysis.comparison_days",
                "tags.engaged_tag",
                "trend_field",
                "email_field"
            ]
        );
        assert!(!config_errors(&EmailEngagement, json!({"tags": {"vip_tag": "1"}})).is_empty());
        assert!(!config_errors(&EmailEngagement, json!({"engagement_type": "bounces"})).is_empty());
        assert!(config_errors(&EmailEngagement, cfg()).is_empty());
    }
}
