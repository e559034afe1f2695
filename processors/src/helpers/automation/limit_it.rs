//! limit_it: a rate-limit gate allowing at most `max_executions` passes per window per
//! scope: the contact (default), the helper instance, or the whole account (every
//! limit_it with the same `limit_type` and `window` shares that counter). Windows are
//! calendar hours, days, weeks (from Monday) or months in `timezone` (default), with the
//! window start in the counter key and an expiry after its end, never a TTL refreshed on
//! each hit (the old rebuild's "per day" meant "until a quiet day"); or `rolling`: the
//! last hour/day/week/30 days, counted in small buckets (1 min, 15 min, 1 h, 6 h) so the
//! edge is at most one bucket off. Counting is one atomic increment per execution, so a
//! race cannot let two through and a redelivery counts once; a refused run gives its
//! count back so only passes are counted. Passing delivers the allowed tag/goal; a
//! refusal delivers the limited tag/goal and either succeeds with `limit_reached`
//! (`skip`, default) or fails (`error`). Not idempotent by design.

use super::route_it_by_day::check_tz;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use serde::{Deserialize, Serialize};

/// The window length.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum LimitType {
    /// An hour.
    PerHour,
    /// A day (default).
    #[default]
    PerDay,
    /// A week.
    PerWeek,
    /// A month (30 days when rolling).
    PerMonth,
}

/// Whose runs are counted.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each contact's runs of this helper (default).
    #[default]
    Contact,
    /// All runs of this helper instance.
    Helper,
    /// All runs of limit_it gates in the account with the same window.
    Account,
}

/// What a refused run reports.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// Success with `limit_reached: true` (default).
    #[default]
    Skip,
    /// A failed execution.
    Error,
}

/// How windows are cut.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Calendar windows in `timezone` (default).
    #[default]
    Calendar,
    /// The last hour/day/week/30 days.
    Rolling,
}

/// Config of limit_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `per_day`.
    #[serde(default)]
    pub limit_type: LimitType,
    /// Passes allowed per window; default 1.
    #[serde(default = "default_max")]
    pub max_executions: u32,
    /// Default `contact`.
    #[serde(default)]
    pub scope: Scope,
    /// Default `skip`.
    #[serde(default)]
    pub action_on_limit: OnLimit,
    /// Goal achieved on a pass.
    pub allowed_goal: Option<String>,
    /// Goal achieved on a refusal.
    pub limited_goal: Option<String>,
    /// Tag applied on a pass.
    pub allowed_tag: Option<String>,
    /// Tag applied on a refusal.
    pub limited_tag: Option<String>,
    /// Default `calendar`.
    #[serde(default)]
    pub window: Window,
    /// IANA time zone of calendar windows; default `UTC`.
    #[serde(default = "default_tz")]
    pub timezone: String,
}

fn default_max() -> u32 {
    1
}

fn default_tz() -> String {
    "UTC".to_owned()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.max_executions == 0,
            "max_executions",
            "must be at least 1",
        );
        check_tz(&mut errors, "timezone", &self.timezone);
        for (field, v) in [
            ("allowed_goal", &self.allowed_goal),
            ("limited_goal", &self.limited_goal),
            ("allowed_tag", &self.allowed_tag),
            ("limited_tag", &self.limited_tag),
        ] {
            check(
                &mut errors,
                v.as_ref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The limit_it helper.
pub struct LimitIt;

impl Helper for LimitIt {
    const NAME: &'static str = "limit_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Lets at most N runs per hour, day, week or month through, per contact, helper or account.";
    const EXAMPLE_CONFIG: &'static str = r#"{"limit_type": "per_day", "max_executions": 1, "scope": "contact", "allowed_goal": "smsOk", "limited_goal": "smsLimited", "timezone": "America/New_York"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "limit_reached",
        "current_count",
        "max_allowed",
        "limit_type",
        "scope",
        "window_ends_at",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let tz = config.timezone.trim().parse().unwrap_or(chrono_tz::UTC);
        Runnable::Async(Box::new(LimitItStep { config, tz }))
    }
}

struct LimitItStep {
    config: Config,
    tz: chrono_tz::Tz,
}

/// The UTC instant of a local time; the earlier one when ambiguous, the first valid one
/// after a DST gap.
pub(crate) fn to_utc(tz: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    (0..=4)
        .find_map(|h| {
            tz.from_local_datetime(&(local + Duration::minutes(30 * h)))
                .earliest()
        })
        .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The calendar window holding `now`: (label, start, end).
fn calendar(
    kind: LimitType,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let local = now.with_timezone(&tz).naive_local();
    let day = local.date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default();
    let (start, end) = match kind {
        LimitType::PerHour => {
            let s = day.and_hms_opt(local.hour(), 0, 0).unwrap_or_default();
            (s, s + Duration::hours(1))
        }
        LimitType::PerDay => (midnight(day), midnight(day) + Duration::days(1)),
        LimitType::PerWeek => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            (midnight(monday), midnight(monday) + Duration::days(7))
        }
        LimitType::PerMonth => {
            let first = day.with_day(1).unwrap_or(day);
            let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
            (midnight(first), midnight(next))
        }
    };
    (
        start.format("%Y-%m-%dT%H").to_string(),
        to_utc(tz, start),
        to_utc(tz, end),
    )
}

/// Rolling window length and bucket size, in seconds.
fn rolling(kind: LimitType) -> (i64, i64) {
    match kind {
        LimitType::PerHour => (3600, 60),
        LimitType::PerDay => (86_400, 900),
        LimitType::PerWeek => (604_800, 3600),
        LimitType::PerMonth => (2_592_000, 21_600),
    }
}

fn name<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl AsyncStep for LimitItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let (kind, window) = (name(c.limit_type), name(c.window));
        let prefix = match c.scope {
            Scope::Contact => format!("limit_it/{}/contact/{}/{window}", ctx.instance, contact.id),
            Scope::Helper => format!("limit_it/{}/helper/{window}", ctx.instance),
            Scope::Account => format!("limit_it/account/{kind}/{window}"),
        };
        let (key, expires, earlier, ends) = match c.window {
            Window::Calendar => {
                let (label, _, end) = calendar(c.limit_type, self.tz, ctx.now);
                (
                    format!("{prefix}/{label}"),
                    end + Duration::hours(1),
                    0,
                    Some(end),
                )
            }
            Window::Rolling => {
                let (len, bucket) = rolling(c.limit_type);
                let now = ctx.now.timestamp();
                let start = now.div_euclid(bucket) * bucket;
                let key = format!("{prefix}/{start:012}");
                let mut earlier = 0;
                for (k, v) in ctx.state.list(&format!("{prefix}/")).await? {
                    let s: i64 = k
                        .rsplit('/')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if k != key && s + bucket > now - len && s < start {
                        earlier += v.as_i64().unwrap_or(0);
                    }
                }
                let expires = DateTime::from_timestamp(start + len + bucket, 0).unwrap_or(ctx.now);
                (key, expires, earlier, None)
            }
        };
        let count = earlier
            + ctx
                .state
                .incr(&key, 1, ctx.execution_id, Some(expires))
                .await?;
        let max = i64::from(c.max_executions);
        let ends = ends.map_or(serde_json::Value::Null, |e| e.to_rfc3339().into());
        if count <= max {
            return Ok(
                Outcome::ok(format!("Allowed: run {count} of {max} in this window"))
                    .with("limit_reached", false)
                    .with("current_count", count)
                    .with("max_allowed", max)
                    .with("limit_type", kind)
                    .with("scope", name(c.scope))
                    .with("window_ends_at", ends)
                    .branch(contact, c.allowed_tag.as_deref(), c.allowed_goal.as_deref()),
            );
        }
        let release = format!("{}/release", ctx.execution_id);
        ctx.state.incr(&key, -1, &release, Some(expires)).await?;
        let message = format!("Limit of {max} per window reached");
        let out = match c.action_on_limit {
            OnLimit::Skip => Outcome::ok(format!("{message}; skipped")),
            OnLimit::Error => Outcome::failed(message),
        };
        Ok(out
            .with("limit_reached", true)
            .with("current_count", max)
            .with("max_allowed", max)
            .with("limit_type", kind)
            .with("scope", name(c.scope))
            .with("window_ends_at", ends)
            .branch(contact, c.limited_tag.as_deref(), c.limited_goal.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, fixed_now};
    use serde_json::json;

    async fn attempt(env: &mut Env, cfg: &serde_json::Value, exec: &str, c: &Contact) -> Outcome {
        env.execution_id = exec.into();
        env.state.set_now(env.now);
        env.run(&LimitIt, cfg.clone(), c).await.unwrap()
    }

    fn reached(o: &Outcome) -> bool {
        o.output["limit_reached"] == true
    }

    #[tokio::test]
    async fn allows_n_per_calendar_day_then_branches_limited() {
        let cfg = json!({"max_executions": 2, "allowed_goal": "ok", "limited_tag": "9"});
        let (mut env, c) = (Env::new(), contact(&[], &[]));
        assert!(!reached(&attempt(&mut env, &cfg, "e1", &c).await));
        let second = attempt(&mut env, &cfg, "e2", &c).await;
        assert_eq!(second.output["current_count"], 2);
        assert_eq!(
            second.changes,
            vec![Change::AchieveGoal {
                call_name: "ok".into()
            }]
        );
        let third = attempt(&mut env, &cfg, "e3", &c).await;
        assert!(reached(&third) && third.success);
        assert_eq!(third.changes, vec![Change::ApplyTag { tag_id: "9".into() }]);
        assert_eq!(third.output["window_ends_at"], "2026-03-16T00:00:00+00:00");
        // A redelivered pass still passes; a redelivered refusal is still refused.
        assert!(!reached(&attempt(&mut env, &cfg, "e2", &c).await));
        assert!(reached(&attempt(&mut env, &cfg, "e3", &c).await));
        // Midnight UTC starts a new window.
        env.now = fixed_now() + Duration::hours(12);
        assert!(!reached(&attempt(&mut env, &cfg, "e4", &c).await));
    }

    #[tokio::test]
    async fn refusals_are_given_back_and_the_time_zone_cuts_days() {
        // 2026-03-15T12:00Z is 08:00 in New York; its day ends at 04:00Z on the 16th.
        let cfg = json!({"timezone": "America/New_York"});
        let (mut env, c) = (Env::new(), contact(&[], &[]));
        assert!(!reached(&attempt(&mut env, &cfg, "e1", &c).await));
        for i in 0..3 {
            assert!(reached(
                &attempt(&mut env, &cfg, &format!("x{i}"), &c).await
            ));
        }
        env.now = fixed_now() + Duration::hours(15);
        let out = attempt(&mut env, &cfg, "e2", &c).await;
        assert!(reached(&out));
        assert_eq!(out.output["window_ends_at"], "2026-03-16T04:00:00+00:00");
        env.now = fixed_now() + Duration::hours(16);
        assert!(!reached(&attempt(&mut env, &cfg, "e3", &c).await));
    }

    #[tokio::test]
    async fn scopes_separate_or_share_counters() {
        let (mut env, a) = (Env::new(), contact(&[], &[]));
        let mut b = a.clone();
        b.id = "c-2".into();
        let per_contact = json!({});
        attempt(&mut env, &per_contact, "e1", &a).await;
        assert!(!reached(&attempt(&mut env, &per_contact, "e2", &b).await));
        let helper = json!({"scope": "helper", "limit_type": "per_hour"});
        attempt(&mut env, &helper, "e3", &a).await;
        assert!(reached(&attempt(&mut env, &helper, "e4", &b).await));
        let account = json!({"scope": "account", "action_on_limit": "error"});
        attempt(&mut env, &account, "e5", &a).await;
        env.instance = "another-gate".into();
        let refused = attempt(&mut env, &account, "e6", &b).await;
        assert!(reached(&refused) && !refused.success);
    }

    #[tokio::test]
    async fn rolling_windows_slide() {
        let cfg = json!({"window": "rolling", "limit_type": "per_hour", "max_executions": 2});
        let (mut env, c) = (Env::new(), contact(&[], &[]));
        attempt(&mut env, &cfg, "e1", &c).await;
        env.now = fixed_now() + Duration::minutes(40);
        assert!(!reached(&attempt(&mut env, &cfg, "e2", &c).await));
        env.now = fixed_now() + Duration::minutes(59);
        assert!(reached(&attempt(&mut env, &cfg, "e3", &c).await));
        // One hour after the first run it has left the window; the second has not.
        env.now = fixed_now() + Duration::minutes(61);
        let out = attempt(&mut env, &cfg, "e4", &c).await;
        assert!(!reached(&out));
        assert_eq!(out.output["current_count"], 2);
        env.now = fixed_now() + Duration::minutes(62);
        assert!(reached(&attempt(&mut env, &cfg, "e5", &c).await));
    }

    #[test]
    fn calendar_windows() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let (label, start, end) = calendar(LimitType::PerWeek, tz, fixed_now());
        assert_eq!(label, "2026-03-09T00");
        assert_eq!(start.to_rfc3339(), "2026-03-08T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-03-15T23:00:00+00:00");
        let (_, start, end) = calendar(LimitType::PerMonth, chrono_tz::UTC, fixed_now());
        assert_eq!((start.day(), end.month()), (1, 4));
        let (label, _, _) = calendar(LimitType::PerHour, chrono_tz::UTC, fixed_now());
        assert_eq!(label, "2026-03-15T12");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &LimitIt,
            json!({"max_executions": 0, "timezone": "Moon/Base", "limited_goal": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["max_executions", "timezone", "limited_goal"]);
        assert!(!config_errors(&LimitIt, json!({"limit_type": "per_year"})).is_empty());
    }
}
