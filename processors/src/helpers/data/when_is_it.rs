//! when_is_it: says whether the date in `date_field` (a birthday, an anniversary, any date
//! or date-time field) is in the past, today, in the future, or empty, and fires that
//! case's API goal so a campaign can branch (the documented product offers goals; tags are
//! an optional extension, applied exclusively). "Today" is the current date in `timezone`
//! (IANA, default UTC). In `date_only` mode (default) a date-time counts by its date, so
//! earlier today is `today`; in `datetime` mode it is compared with the current instant,
//! while a value without a time still counts by its date. With `ignore_year` the month and
//! day are compared within the current year ("is the birthday today?"; Feb 29 counts as
//! Feb 28 in other years). Values with an offset (`2025-03-04T23:00:00-05:00`) are
//! converted to `timezone`; others are read as local to it. An unparsable value counts as
//! empty with a warning in the logs, or as `invalid` when `invalid_goal` or `invalid_tag`
//! is set. Idempotent within a day.

use super::date_calc::{DateOrder, parse_date};
use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use std::cmp::Ordering;

/// What is compared.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The date only (default).
    #[default]
    DateOnly,
    /// Date and time, against the current instant.
    Datetime,
}

/// Config of when_is_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The date field read.
    pub date_field: String,
    /// Goal for a date in the past.
    pub past_goal: Option<String>,
    /// Goal for today.
    pub today_goal: Option<String>,
    /// Goal for a date in the future.
    pub future_goal: Option<String>,
    /// Goal for an empty field.
    pub empty_goal: Option<String>,
    /// Goal for an unparsable value; without it (and `invalid_tag`) such a value counts
    /// as empty.
    pub invalid_goal: Option<String>,
    /// Tag for a date in the past.
    pub past_tag: Option<String>,
    /// Tag for today.
    pub today_tag: Option<String>,
    /// Tag for a date in the future.
    pub future_tag: Option<String>,
    /// Tag for an empty field.
    pub empty_tag: Option<String>,
    /// Tag for an unparsable value.
    pub invalid_tag: Option<String>,
    /// IANA time zone of "today"; default UTC.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// `date_only` (default) or `datetime`.
    #[serde(default)]
    pub compare: Compare,
    /// Compare month and day only; default false.
    #[serde(default)]
    pub ignore_year: bool,
    /// Month-first (`us`, default) or day-first (`eu`) numeric dates.
    #[serde(default)]
    pub date_order: DateOrder,
}

fn default_timezone() -> String {
    "UTC".into()
}

const STATES: [&str; 5] = ["past", "today", "future", "empty", "invalid"];

impl Config {
    /// (tag, goal) of `state`.
    fn outputs<'a>(&'a self, state: &str) -> (Option<&'a str>, Option<&'a str>) {
        let (tag, goal) = match state {
            "past" => (&self.past_tag, &self.past_goal),
            "today" => (&self.today_tag, &self.today_goal),
            "future" => (&self.future_tag, &self.future_goal),
            "empty" => (&self.empty_tag, &self.empty_goal),
            _ => (&self.invalid_tag, &self.invalid_goal),
        };
        let s = |o: &'a Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty());
        (s(tag), s(goal))
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.date_field.trim().is_empty(),
            "date_field",
            "must not be empty",
        );
        for (name, v) in [
            ("past_goal", &self.past_goal),
            ("today_goal", &self.today_goal),
            ("future_goal", &self.future_goal),
            ("empty_goal", &self.empty_goal),
            ("invalid_goal", &self.invalid_goal),
            ("past_tag", &self.past_tag),
            ("today_tag", &self.today_tag),
            ("future_tag", &self.future_tag),
            ("empty_tag", &self.empty_tag),
            ("invalid_tag", &self.invalid_tag),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                name,
                "must not be empty",
            );
        }
        check(
            &mut errors,
            self.timezone.parse::<Tz>().is_err(),
            "timezone",
            "is not an IANA time zone name",
        );
        finish(errors)
    }
}

/// The when_is_it helper.
pub struct WhenIsIt;

impl Helper for WhenIsIt {
    const NAME: &'static str = "when_is_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Classifies a date field as past, today, future or empty and fires that case's goal.";
    const EXAMPLE_CONFIG: &'static str = r#"{"date_field": "_Birthday", "past_goal": "birthdaypast", "today_goal": "birthdaytoday", "future_goal": "birthdayfuture", "empty_goal": "birthdayempty", "ignore_year": true, "timezone": "America/New_York"}"#;
    const OUTPUTS: &'static [&'static str] = &["state", "date", "now_in_tz"];
    const REQUIRES: &'static [Capability] = &[Capability::Goals, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let tz = config.timezone.parse().unwrap_or(Tz::UTC);
        Runnable::Sync(Box::new(WhenIsItStep { config, tz }))
    }
}

struct WhenIsItStep {
    config: Config,
    tz: Tz,
}

impl WhenIsItStep {
    /// The value as a local date-time in the zone, and whether it carried a time.
    fn read(&self, raw: &str) -> Option<(NaiveDateTime, bool)> {
        let has_time = raw.contains(':');
        if let Ok(dt) = DateTime::parse_from_rfc3339(raw.trim()) {
            return Some((dt.with_timezone(&self.tz).naive_local(), true));
        }
        parse_date(raw, self.config.date_order).map(|d| (d, has_time))
    }

    /// `date` moved into `year` (Feb 29 → Feb 28 in other years).
    fn in_year(date: NaiveDate, year: i32) -> Option<NaiveDate> {
        date.with_year(year)
            .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
    }

    fn classify(&self, value: NaiveDateTime, has_time: bool, now: NaiveDateTime) -> Ordering {
        let value = if self.config.ignore_year {
            match Self::in_year(value.date(), now.year()) {
                Some(d) => d.and_time(value.time()),
                None => value,
            }
        } else {
            value
        };
        if self.config.compare == Compare::Datetime && has_time {
            value.cmp(&now)
        } else {
            value.date().cmp(&now.date())
        }
    }
}

impl Step for WhenIsItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let field = c.date_field.trim();
        let now = self
            .tz
            .from_utc_datetime(&ctx.now.naive_utc())
            .naive_local();
        let raw = contact.field(field).map(str::trim);
        let mut logs = Vec::new();
        let parsed = raw.map(|r| (r, self.read(r)));
        let has_invalid = c.invalid_goal.is_some() || c.invalid_tag.is_some();
        let (state, date) = match parsed {
            None => ("empty", None),
            Some((r, None)) => {
                logs.push(format!("{field} value {r:?} is not a date."));
                (if has_invalid { "invalid" } else { "empty" }, None)
            }
            Some((_, Some((value, has_time)))) => {
                let state = match self.classify(value, has_time, now) {
                    Ordering::Less => "past",
                    Ordering::Equal => "today",
                    Ordering::Greater => "future",
                };
                let shown = if has_time {
                    value.format("%Y-%m-%d %H:%M:%S").to_string()
                } else {
                    value.format("%Y-%m-%d").to_string()
                };
                (state, Some(shown))
            }
        };
        let mut out = Outcome::ok(format!("{field} is {state}"))
            .with("state", state)
            .with("date", date)
            .with("now_in_tz", now.format("%Y-%m-%d %H:%M:%S").to_string());
        out.logs = logs;
        for other in STATES.iter().filter(|s| **s != state) {
            if let (Some(t), _) = c.outputs(other)
                && contact.has_tag(t)
            {
                out = out.change(Change::RemoveTag {
                    tag_id: t.to_owned(),
                });
            }
        }
        let (tag, goal) = c.outputs(state);
        Ok(out.branch(contact, tag, goal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, run};
    use serde_json::{Value, json};

    fn goals() -> Value {
        json!({"date_field": "d", "past_goal": "gp", "today_goal": "gt", "future_goal": "gf", "empty_goal": "ge"})
    }

    /// The state of `value` with extra config `extra`, at `now` (RFC 3339).
    fn state(extra: Value, value: &str, now: &str) -> String {
        let mut cfg = goals();
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut env = Env::new();
        env.now = DateTime::parse_from_rfc3339(now).unwrap().to_utc();
        let out = env
            .block_on_run(&WhenIsIt, cfg, &contact(&[("d", value)], &[]))
            .unwrap();
        out.output["state"].as_str().unwrap().to_owned()
    }

    const NOW: &str = "2026-03-15T12:00:00Z";

    #[test]
    fn past_today_future_and_empty_fire_their_goal() {
        for (value, want, goal) in [
            ("2026-03-14", "past", "gp"),
            ("03/15/2026", "today", "gt"),
            ("March 16, 2026", "future", "gf"),
            ("", "empty", "ge"),
        ] {
            let out = run(&WhenIsIt, goals(), &contact(&[("d", value)], &[]));
            assert!(out.success);
            assert_eq!(out.output["state"], want, "{value}");
            assert_eq!(
                out.changes,
                vec![Change::AchieveGoal {
                    call_name: goal.into()
                }]
            );
        }
        let out = run(&WhenIsIt, goals(), &contact(&[("d", "2026-03-16")], &[]));
        assert_eq!(out.output["date"], "2026-03-16");
        assert_eq!(out.output["now_in_tz"], "2026-03-15 12:00:00");
    }

    #[test]
    fn today_depends_on_the_timezone() {
        // 02:00 UTC on the 16th is still the 15th in New York.
        let late = "2026-03-16T02:00:00Z";
        assert_eq!(state(json!({}), "2026-03-15", late), "past");
        assert_eq!(
            state(json!({"timezone": "America/New_York"}), "2026-03-15", late),
            "today"
        );
        assert_eq!(
            state(
                json!({"timezone": "Asia/Tokyo"}),
                "2026-03-16",
                "2026-03-15T16:00:00Z"
            ),
            "today"
        );
    }

    #[test]
    fn date_only_versus_datetime() {
        let earlier = "2026-03-15 09:00:00";
        assert_eq!(state(json!({}), earlier, NOW), "today");
        assert_eq!(state(json!({"compare": "datetime"}), earlier, NOW), "past");
        assert_eq!(
            state(json!({"compare": "datetime"}), "2026-03-15T13:00:00Z", NOW),
            "future"
        );
        assert_eq!(
            state(json!({"compare": "datetime"}), "2026-03-15", NOW),
            "today",
            "no time: by date"
        );
        // 23:00 at -05:00 on the 14th is 04:00 UTC on the 15th.
        assert_eq!(state(json!({}), "2026-03-14T23:00:00-05:00", NOW), "today");
    }

    #[test]
    fn ignore_year_for_birthdays() {
        assert_eq!(
            state(json!({"ignore_year": true}), "1815-03-15", NOW),
            "today"
        );
        assert_eq!(
            state(json!({"ignore_year": true}), "1815-12-10", NOW),
            "future"
        );
        assert_eq!(
            state(json!({"ignore_year": true}), "1990-01-02", NOW),
            "past"
        );
        assert_eq!(
            state(
                json!({"ignore_year": true}),
                "2000-02-29",
                "2026-02-28T12:00:00Z"
            ),
            "today"
        );
        assert_eq!(state(json!({}), "1815-03-15", NOW), "past");
    }

    #[test]
    fn unparsable_values_are_empty_or_invalid() {
        let out = run(&WhenIsIt, goals(), &contact(&[("d", "someday")], &[]));
        assert_eq!(out.output["state"], "empty");
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "ge".into()
            }]
        );
        assert!(out.logs[0].contains("not a date"));
        let mut cfg = goals();
        cfg["invalid_goal"] = json!("gi");
        let out = run(&WhenIsIt, cfg, &contact(&[("d", "someday")], &[]));
        assert_eq!(out.output["state"], "invalid");
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "gi".into()
            }]
        );
    }

    #[test]
    fn tags_are_exclusive_and_reruns_only_refire_goals() {
        let cfg =
            json!({"date_field": "d", "past_tag": "tp", "today_tag": "tt", "future_tag": "tf"});
        let out = run(
            &WhenIsIt,
            cfg.clone(),
            &contact(&[("d", "2026-03-15")], &["tf"]),
        );
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag {
                    tag_id: "tf".into()
                },
                Change::ApplyTag {
                    tag_id: "tt".into()
                }
            ]
        );
        let out = run(&WhenIsIt, cfg, &contact(&[("d", "2026-03-15")], &["tt"]));
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &WhenIsIt,
            json!({"date_field": " ", "past_goal": "", "timezone": "Eastern"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["date_field", "past_goal", "timezone"]);
        assert!(
            !config_errors(&WhenIsIt, json!({"date_field": "d", "compare": "week"})).is_empty()
        );
        assert!(!config_errors(&WhenIsIt, json!({})).is_empty());
    }
}
