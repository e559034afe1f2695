//! rfm_calculation: RFM scoring from the contact's invoices (aggregated by
//! customer_lifetime_value's [`summarize`]: zero-value and refunded invoices left out).
//! Recency is the days since the last order, frequency the order count and monetary the
//! total paid; each scores 1–5 by step thresholds (recency: at most `4_5_threshold` days
//! → 5, at most `3_4` → 4, ...; frequency and monetary: at least `4_5_threshold` → 5, ...).
//! Unset thresholds get sensible defaults (recency 120/90/60/30 days, frequency 2/3/5/10
//! orders, monetary 100/250/500/1000 paid); a partly given set is a config error, as are
//! recency thresholds that do not descend or F/M thresholds that do not ascend.
//! `percentile_based_scoring` instead scales linearly over 0–365 days, 0–100 orders and
//! 0–10,000 paid (a fixed scale, not a percentile of the customer base). Composite =
//! R×100 + F×10 + M. The segment comes from the first matching rule, most specific first:
//! Champions 5/5/5; Loyal ≥4/≥4/≥4; Lost R≤1, F≤1, M≤2; Promising R3–4, F≤2, M≤2; At Risk
//! R2–3, F2–3, M≥4; Hibernating R≤2, F≤2, M2–3; Need Attention 2–3 on all; else Other.
//! The segment's tag is applied and the other segment tags removed. Any of 13 metrics can
//! be saved to fields, and with `fire_goals` (default) three goals fire:
//! `<prefix>recency<R>`, `<prefix>frequency<F>`, `<prefix>monetary<M>`, where the prefix is
//! `goal_prefix` or the helper instance id. No orders is a success without a write.
//! Idempotent except that goals re-fire.

use super::customer_lifetime_value::{InvoiceFilter, money, summarize};
use crate::connectors::{Capability, RecordKind};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// The score range; only 1–5 is supported, since the segment rules are defined on it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRange {
    /// Lowest score: 1.
    pub min: u8,
    /// Highest score: 5.
    pub max: u8,
}

impl Default for ScoreRange {
    fn default() -> Self {
        Self { min: 1, max: 5 }
    }
}

/// The four step thresholds of one dimension.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Boundary between scores 1 and 2.
    #[serde(rename = "1_2_threshold")]
    pub t12: f64,
    /// Boundary between scores 2 and 3.
    #[serde(rename = "2_3_threshold")]
    pub t23: f64,
    /// Boundary between scores 3 and 4.
    #[serde(rename = "3_4_threshold")]
    pub t34: f64,
    /// Boundary between scores 4 and 5.
    #[serde(rename = "4_5_threshold")]
    pub t45: f64,
}

const fn thresholds(t12: f64, t23: f64, t34: f64, t45: f64) -> Thresholds {
    Thresholds { t12, t23, t34, t45 }
}
const fn recency_default() -> Thresholds {
    thresholds(120.0, 90.0, 60.0, 30.0)
}
const fn frequency_default() -> Thresholds {
    thresholds(2.0, 3.0, 5.0, 10.0)
}
const fn monetary_default() -> Thresholds {
    thresholds(100.0, 250.0, 500.0, 1000.0)
}

/// Segment tag ids; each optional.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentTags {
    /// Champions.
    pub champions_tag: Option<String>,
    /// Loyal.
    pub loyal_tag: Option<String>,
    /// At Risk.
    pub at_risk_tag: Option<String>,
    /// Hibernating.
    pub hibernating_tag: Option<String>,
    /// Lost.
    pub lost_tag: Option<String>,
    /// Promising.
    pub promising_tag: Option<String>,
    /// Need Attention.
    pub need_attention_tag: Option<String>,
}

impl SegmentTags {
    /// (segment label, config name, tag) for every segment with a tag slot.
    fn all<'a>(&'a self) -> [(&'static str, &'static str, Option<&'a str>); 7] {
        let t = |o: &'a Option<String>| o.as_deref().map(str::trim);
        [
            ("Champions", "champions_tag", t(&self.champions_tag)),
            ("Loyal", "loyal_tag", t(&self.loyal_tag)),
            ("At Risk", "at_risk_tag", t(&self.at_risk_tag)),
            ("Hibernating", "hibernating_tag", t(&self.hibernating_tag)),
            ("Lost", "lost_tag", t(&self.lost_tag)),
            ("Promising", "promising_tag", t(&self.promising_tag)),
            (
                "Need Attention",
                "need_attention_tag",
                t(&self.need_attention_tag),
            ),
        ]
    }
}

/// Contact fields for the metrics; each optional.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveData {
    /// R score.
    pub recency_score: Option<String>,
    /// F score.
    pub frequency_score: Option<String>,
    /// M score.
    pub monetary_score: Option<String>,
    /// R×100 + F×10 + M.
    pub rfm_composite_score: Option<String>,
    /// Segment label.
    pub rfm_segment_label: Option<String>,
    /// Total paid.
    pub total_order_value: Option<String>,
    /// Total paid ÷ paid orders.
    pub average_order_value: Option<String>,
    /// Order count.
    pub total_order_count: Option<String>,
    /// Date of the first order (`YYYY-MM-DD`).
    pub first_order_date: Option<String>,
    /// Total of the first order.
    pub first_order_value: Option<String>,
    /// Date of the last order.
    pub last_order_date: Option<String>,
    /// Total of the last order.
    pub last_order_value: Option<String>,
    /// Days since the last order.
    pub days_since_last_order: Option<String>,
}

/// The scoring options.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Must be `{min: 1, max: 5}` (the default).
    #[serde(default)]
    pub score_range: ScoreRange,
    /// Score on a linear scale over fixed ranges instead of thresholds; default false.
    #[serde(default)]
    pub percentile_based_scoring: bool,
    /// Recency thresholds in days, descending; default 120/90/60/30.
    #[serde(default = "recency_default")]
    pub recency_calculation: Thresholds,
    /// Frequency thresholds in orders, ascending; default 2/3/5/10.
    #[serde(default = "frequency_default")]
    pub frequency_calculation: Thresholds,
    /// Monetary thresholds in total paid, ascending; default 100/250/500/1000.
    #[serde(default = "monetary_default")]
    pub monetary_calculation: Thresholds,
    /// Label a segment (and apply segment tags); default true.
    #[serde(default = "default_true")]
    pub segment_labels: bool,
    /// Segment tag ids, applied exclusively.
    #[serde(default)]
    pub segment_tags: SegmentTags,
    /// Fields for the metrics.
    #[serde(default)]
    pub save_data: SaveData,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            score_range: ScoreRange::default(),
            percentile_based_scoring: false,
            recency_calculation: recency_default(),
            frequency_calculation: frequency_default(),
            monetary_calculation: monetary_default(),
            segment_labels: true,
            segment_tags: SegmentTags::default(),
            save_data: SaveData::default(),
        }
    }
}

/// Config of rfm_calculation.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Scoring, segments and fields.
    #[serde(default)]
    pub options: Options,
    /// Fire the recency/frequency/monetary goals; default true.
    #[serde(default = "default_true")]
    pub fire_goals: bool,
    /// Prefix of the goal names; default the helper instance id.
    pub goal_prefix: Option<String>,
}

fn check_thresholds(errors: &mut Vec<FieldError>, name: &str, t: &Thresholds, descending: bool) {
    let v = [t.t12, t.t23, t.t34, t.t45];
    let ordered = v
        .windows(2)
        .all(|w| if descending { w[0] > w[1] } else { w[0] < w[1] });
    let field = format!("options.{name}");
    check(
        errors,
        v.iter().any(|x| !x.is_finite() || *x < 0.0),
        &field,
        "thresholds must be finite and not negative",
    );
    let order = if descending { "descend" } else { "ascend" };
    check(
        errors,
        !ordered,
        &field,
        &format!("thresholds must strictly {order} from 1_2 to 4_5"),
    );
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let o = &self.options;
        check(
            &mut errors,
            o.score_range.min != 1 || o.score_range.max != 5,
            "options.score_range",
            "only 1 to 5 is supported (the segment rules use it)",
        );
        check_thresholds(
            &mut errors,
            "recency_calculation",
            &o.recency_calculation,
            true,
        );
        check_thresholds(
            &mut errors,
            "frequency_calculation",
            &o.frequency_calculation,
            false,
        );
        check_thresholds(
            &mut errors,
            "monetary_calculation",
            &o.monetary_calculation,
            false,
        );
        for (_, name, tag) in o.segment_tags.all() {
            check(
                &mut errors,
                tag.is_some_and(str::is_empty),
                &format!("options.segment_tags.{name}"),
                "must not be empty",
            );
        }
        check(
            &mut errors,
            !o.segment_labels && o.segment_tags.all().iter().any(|s| s.2.is_some()),
            "options.segment_tags",
            "need segment_labels",
        );
        for (name, field) in save_fields(&o.save_data) {
            check(
                &mut errors,
                field.is_some_and(|f| f.trim().is_empty()),
                &format!("options.save_data.{name}"),
                "must not be empty",
            );
        }
        check(
            &mut errors,
            self.goal_prefix
                .as_deref()
                .is_some_and(|p| p.trim().is_empty()),
            "goal_prefix",
            "must not be empty",
        );
        finish(errors)
    }
}

fn save_fields<'a>(s: &'a SaveData) -> [(&'static str, Option<&'a str>); 13] {
    let f = |o: &'a Option<String>| o.as_deref();
    [
        ("recency_score", f(&s.recency_score)),
        ("frequency_score", f(&s.frequency_score)),
        ("monetary_score", f(&s.monetary_score)),
        ("rfm_composite_score", f(&s.rfm_composite_score)),
        ("rfm_segment_label", f(&s.rfm_segment_label)),
        ("total_order_value", f(&s.total_order_value)),
        ("average_order_value", f(&s.average_order_value)),
        ("total_order_count", f(&s.total_order_count)),
        ("first_order_date", f(&s.first_order_date)),
        ("first_order_value", f(&s.first_order_value)),
        ("last_order_date", f(&s.last_order_date)),
        ("last_order_value", f(&s.last_order_value)),
        ("days_since_last_order", f(&s.days_since_last_order)),
    ]
}

/// The rfm_calculation helper.
pub struct RfmCalculation;

impl Helper for RfmCalculation {
    const NAME: &'static str = "rfm_calculation";
    const CATEGORY: Category = Category::Analytics;
    const SUMMARY: &'static str = "Scores recency, frequency and monetary value from invoices, with a segment, tags and goals.";
    const EXAMPLE_CONFIG: &'static str = r#"{"options": {"save_data": {"rfm_composite_score": "_RFMScore", "rfm_segment_label": "_RFMSegment", "days_since_last_order": "_DaysSinceOrder"}}}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "recency_score",
        "frequency_score",
        "monetary_score",
        "composite_score",
        "segment_label",
        "total_spend",
        "total_orders",
        "average_order_size",
        "days_since_last_order",
        "first_order_date",
        "last_order_date",
    ];
    const REQUIRES: &'static [Capability] = &[
        Capability::RelatedRecords,
        Capability::Fields,
        Capability::Tags,
        Capability::Goals,
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(RfmStep(config)))
    }
}

/// A step score: descending thresholds reward small values (recency), ascending ones
/// large values.
fn step_score(v: f64, t: &Thresholds, descending: bool) -> u8 {
    let passes = |limit: f64| if descending { v <= limit } else { v >= limit };
    [t.t45, t.t34, t.t23, t.t12]
        .iter()
        .position(|l| passes(*l))
        .map_or(1, |i| 5 - i as u8)
}

/// A linear score over `0..=range`; `inverse` scores small values high.
fn linear_score(v: f64, range: f64, inverse: bool) -> u8 {
    let f = (v / range).clamp(0.0, 1.0);
    let f = if inverse { 1.0 - f } else { f };
    1 + (f * 4.0).round() as u8
}

/// The segment of scores `r`, `f`, `m`, most specific rule first.
fn segment(r: u8, f: u8, m: u8) -> &'static str {
    let mid = |x: u8| (2..=3).contains(&x);
    if (r, f, m) == (5, 5, 5) {
        "Champions"
    } else if r >= 4 && f >= 4 && m >= 4 {
        "Loyal"
    } else if r <= 1 && f <= 1 && m <= 2 {
        "Lost"
    } else if (3..=4).contains(&r) && f <= 2 && m <= 2 {
        "Promising"
    } else if mid(r) && mid(f) && m >= 4 {
        "At Risk"
    } else if r <= 2 && f <= 2 && mid(m) {
        "Hibernating"
    } else if mid(r) && mid(f) && mid(m) {
        "Need Attention"
    } else {
        "Other"
    }
}

struct RfmStep(Config);

#[async_trait::async_trait]
impl AsyncStep for RfmStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let o = &c.options;
        let invoices = ctx
            .crm
            .related_records(&contact.id, RecordKind::Invoice)
            .await?;
        let filter = InvoiceFilter {
            exclude_refunded: true,
            ..InvoiceFilter::default()
        };
        let s = summarize(&invoices, &filter);
        let (Some(first), Some(last)) = (s.first, s.last) else {
            let mut out = Outcome::ok("No orders to score; nothing written");
            out.logs = s.skipped;
            return Ok(out);
        };
        let days = (ctx.now.date_naive() - last.date.date_naive())
            .num_days()
            .max(0);
        let (r, f, m) = if o.percentile_based_scoring {
            (
                linear_score(days as f64, 365.0, true),
                linear_score(s.count as f64, 100.0, false),
                linear_score(s.total_paid, 10_000.0, false),
            )
        } else {
            (
                step_score(days as f64, &o.recency_calculation, true),
                step_score(s.count as f64, &o.frequency_calculation, false),
                step_score(s.total_paid, &o.monetary_calculation, false),
            )
        };
        let composite = u32::from(r) * 100 + u32::from(f) * 10 + u32::from(m);
        let label = o.segment_labels.then(|| segment(r, f, m));
        let day = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%d").to_string();
        let values = [
            r.to_string(),
            f.to_string(),
            m.to_string(),
            composite.to_string(),
            label.unwrap_or_default().to_owned(),
            money(s.total_paid),
            money(s.average_paid()),
            s.count.to_string(),
            day(first.date),
            money(first.value),
            day(last.date),
            money(last.value),
            days.to_string(),
        ];
        let mut out = Outcome::ok(format!(
            "RFM {r}{f}{m}{}",
            label.map(|l| format!(" ({l})")).unwrap_or_default()
        ))
        .with("recency_score", r)
        .with("frequency_score", f)
        .with("monetary_score", m)
        .with("composite_score", composite)
        .with("segment_label", label)
        .with("total_spend", money(s.total_paid))
        .with("total_orders", s.count)
        .with("average_order_size", money(s.average_paid()))
        .with("days_since_last_order", days)
        .with("first_order_date", day(first.date))
        .with("last_order_date", day(last.date));
        for ((name, field), value) in save_fields(&o.save_data).into_iter().zip(values) {
            if let Some(field) = field.map(str::trim) {
                if name == "rfm_segment_label" && label.is_none() {
                    continue;
                }
                out = out.set_field(contact, field, value);
            }
        }
        if let Some(label) = label {
            let tags = o.segment_tags.all();
            for (_, _, tag) in tags.iter().filter(|(l, _, _)| *l != label) {
                if let Some(t) = tag.filter(|t| contact.has_tag(t)) {
                    out = out.change(Change::RemoveTag {
                        tag_id: t.to_owned(),
                    });
                }
            }
            let mine = tags.iter().find(|(l, _, _)| *l == label).and_then(|s| s.2);
            out = out.branch(contact, mine, None);
        }
        if c.fire_goals {
            let prefix = c.goal_prefix.as_deref().map_or(ctx.instance, str::trim);
            for (dim, score) in [("recency", r), ("frequency", f), ("monetary", m)] {
                out = out.change(Change::AchieveGoal {
                    call_name: format!("{prefix}{dim}{score}"),
                });
            }
        }
        out.logs = s.skipped;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::analytics::customer_lifetime_value::tests::{env_with, invoice};
    use crate::helpers::testing::{config_errors, contact, set};
    use serde_json::{Value, json};

    fn goal(name: &str) -> Change {
        Change::AchieveGoal {
            call_name: name.into(),
        }
    }

    /// A loyal customer: 6 paid orders, 900 in total, the last 10 days before "now".
    fn loyal() -> Vec<crate::connectors::RelatedRecord> {
        let days = [
            "2025-04-01",
            "2025-06-01",
            "2025-08-01",
            "2025-10-01",
            "2026-01-01",
            "2026-03-05",
        ];
        days.iter()
            .enumerate()
            .map(|(i, d)| invoice(&format!("i{i}"), d, "150", "150", "paid"))
            .collect()
    }

    #[tokio::test]
    async fn scores_segments_saves_and_fires_goals() {
        let env = env_with(loyal());
        let cfg = json!({"options": {"save_data": {"rfm_composite_score": "rfm", "rfm_segment_label": "seg",
            "first_order_date": "first", "last_order_value": "lastv", "days_since_last_order": "days", "average_order_value": "avg"},
            "segment_tags": {"loyal_tag": "t-loyal", "lost_tag": "t-lost"}}, "goal_prefix": "rfm"});
        let out = env
            .run(&RfmCalculation, cfg, &contact(&[], &["t-lost"]))
            .await
            .unwrap();
        assert!(out.success, "{}", out.message);
        assert_eq!(
            (
                out.output["recency_score"].clone(),
                out.output["frequency_score"].clone(),
                out.output["monetary_score"].clone()
            ),
            (json!(5), json!(4), json!(4))
        );
        assert_eq!(out.output["composite_score"], 544);
        assert_eq!(out.output["segment_label"], "Loyal");
        assert_eq!(out.output["days_since_last_order"], 10);
        assert_eq!(
            out.changes,
            vec![
                set("rfm", "544"),
                set("seg", "Loyal"),
                set("avg", "150.00"),
                set("first", "2025-04-01"),
                set("lastv", "150.00"),
                set("days", "10"),
                Change::RemoveTag {
                    tag_id: "t-lost".into()
                },
                Change::ApplyTag {
                    tag_id: "t-loyal".into()
                },
                goal("rfmrecency5"),
                goal("rfmfrequency4"),
                goal("rfmmonetary4"),
            ]
        );
    }

    #[tokio::test]
    async fn goals_default_to_the_instance_and_reruns_only_refire_goals() {
        let env = env_with(loyal());
        let cfg = json!({"options": {"save_data": {"rfm_segment_label": "seg"}, "segment_tags": {"loyal_tag": "t-loyal"}}});
        let c = contact(&[("seg", "Loyal")], &["t-loyal"]);
        let out = env.run(&RfmCalculation, cfg, &c).await.unwrap();
        assert_eq!(
            out.changes,
            vec![
                goal("inst-testrecency5"),
                goal("inst-testfrequency4"),
                goal("inst-testmonetary4")
            ]
        );
        let quiet =
            json!({"fire_goals": false, "options": {"save_data": {"rfm_segment_label": "seg"}}});
        assert!(
            env.run(&RfmCalculation, quiet, &c)
                .await
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn step_scores_and_segments() {
        let r = recency_default();
        let cases = [
            (0.0, 5),
            (30.0, 5),
            (31.0, 4),
            (60.0, 4),
            (90.0, 3),
            (120.0, 2),
            (121.0, 1),
        ];
        for (days, want) in cases {
            assert_eq!(step_score(days, &r, true), want, "{days} days");
        }
        let f = frequency_default();
        for (n, want) in [
            (0.0, 1),
            (1.0, 1),
            (2.0, 2),
            (3.0, 3),
            (5.0, 4),
            (9.0, 4),
            (10.0, 5),
            (99.0, 5),
        ] {
            assert_eq!(step_score(n, &f, false), want, "{n} orders");
        }
        let segments = [
            ((5, 5, 5), "Champions"),
            ((4, 5, 4), "Loyal"),
            ((1, 1, 1), "Lost"),
            ((1, 1, 2), "Lost"),
            ((4, 1, 2), "Promising"),
            ((2, 3, 5), "At Risk"),
            ((2, 2, 3), "Hibernating"),
            ((3, 3, 3), "Need Attention"),
            ((5, 1, 5), "Other"),
        ];
        for ((r, f, m), want) in segments {
            assert_eq!(segment(r, f, m), want, "{r}{f}{m}");
        }
        assert_eq!(linear_score(0.0, 365.0, true), 5);
        assert_eq!(linear_score(400.0, 365.0, true), 1);
        assert_eq!(linear_score(50.0, 100.0, false), 3);
    }

    #[tokio::test]
    async fn custom_thresholds_linear_scoring_and_exclusions() {
        let mut invoices = loyal();
        invoices.push(invoice("refund", "2026-03-14", "5000", "5000", "refunded"));
        invoices.push(invoice("zero", "2026-03-14", "0", "0", "paid"));
        let env = env_with(invoices);
        let cfg = json!({"fire_goals": false, "options": {
            "recency_calculation": {"1_2_threshold": 40, "2_3_threshold": 30, "3_4_threshold": 20, "4_5_threshold": 5},
            "monetary_calculation": {"1_2_threshold": 1000, "2_3_threshold": 2000, "3_4_threshold": 3000, "4_5_threshold": 4000}}});
        let out = env
            .run(&RfmCalculation, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(
            out.output["recency_score"], 4,
            "10 days; refund and zero invoices do not count"
        );
        assert_eq!(out.output["monetary_score"], 1);
        assert_eq!(out.output["total_orders"], 6);
        assert_eq!(out.output["segment_label"], "Other");
        let linear = json!({"fire_goals": false, "options": {"percentile_based_scoring": true, "segment_labels": false}});
        let out = env
            .run(&RfmCalculation, linear, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["recency_score"], 5);
        assert_eq!(out.output["frequency_score"], 1);
        assert_eq!(out.output["monetary_score"], 1);
        assert_eq!(out.output["segment_label"], Value::Null);
    }

    #[tokio::test]
    async fn no_orders_is_a_success_without_a_write() {
        let env = env_with(vec![invoice("zero", "2026-01-01", "0", "0", "paid")]);
        let cfg = json!({"options": {"save_data": {"rfm_composite_score": "rfm"}}});
        let out = env
            .run(&RfmCalculation, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RfmCalculation,
            json!({"goal_prefix": " ", "options": {"score_range": {"min": 0, "max": 10},
                "recency_calculation": {"1_2_threshold": 30, "2_3_threshold": 60, "3_4_threshold": 90, "4_5_threshold": 120},
                "frequency_calculation": {"1_2_threshold": 5, "2_3_threshold": 3, "3_4_threshold": 8, "4_5_threshold": 9},
                "monetary_calculation": {"1_2_threshold": -1, "2_3_threshold": 2, "3_4_threshold": 3, "4_5_threshold": 4},
                "segment_tags": {"loyal_tag": ""}, "save_data": {"recency_score": " "}}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "options.score_range",
                "options.recency_calculation",
                "options.frequency_calculation",
                "options.monetary_calculation",
                "options.segment_tags.loyal_tag",
                "options.save_data.recency_score",
                "goal_prefix",
            ]
        );
        let partial = json!({"options": {"recency_calculation": {"1_2_threshold": 120}}});
        assert!(
            !config_errors(&RfmCalculation, partial).is_empty(),
            "unset thresholds are not 0"
        );
        let tags = json!({"options": {"segment_labels": false, "segment_tags": {"lost_tag": "9"}}});
        assert_eq!(
            config_errors(&RfmCalculation, tags)[0].field,
            "options.segment_tags"
        );
        assert!(config_errors(&RfmCalculation, json!({})).is_empty());
    }
}
