//! date_calc: date arithmetic on a date field, written to `target_field` (default: the
//! field itself). Adds or subtracts days, weeks, months, years, hours, minutes or business
//! days (Mon–Fri); stamps "now" (`set_now`, from the worker's clock shifted by
//! `utc_offset`); writes the days from `field` to `compare_field` (`diff_days`, compare −
//! source); or only re-formats (`format`). Month arithmetic clamps to the month's end
//! (Jan 31 + 1 month = Feb 28/29). Arithmetic is on wall-clock time, so there is no DST
//! shift. Input may be RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]`, Keap's `YYYYMMDDTHH:MM:SS`,
//! `MM/DD/YYYY` or `MM-DD-YYYY` (`DD/MM/YYYY` with `date_order: eu`), `Jan 2, 2006`,
//! `January 2, 2006` or `02 Jan 2006`. Output uses chrono strftime (`output_format`,
//! default `%Y-%m-%d`, or `%Y-%m-%d %H:%M:%S` for hour and minute arithmetic). An empty or
//! unparsable date fails without a write, except that `source_default_now` turns an empty
//! one into "now". Adding in place is not idempotent.

use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, FixedOffset, Months, NaiveDate, NaiveDateTime, Offset, TimeDelta, Utc,
    Weekday,
};
use serde::Deserialize;
use std::fmt::Write as _;

/// The date operation.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Add `amount` days.
    AddDays,
    /// Subtract `amount` days.
    SubtractDays,
    /// Add `amount` weeks.
    AddWeeks,
    /// Add `amount` months, clamped to the month's end.
    AddMonths,
    /// Subtract `amount` months, clamped to the month's end.
    SubtractMonths,
    /// Add `amount` years (Feb 29 becomes Feb 28).
    AddYears,
    /// Subtract `amount` years.
    SubtractYears,
    /// Add `amount` hours.
    AddHours,
    /// Add `amount` minutes.
    AddMinutes,
    /// Add `amount` weekdays, skipping Saturdays and Sundays.
    AddBusinessDays,
    /// Write the current date.
    SetNow,
    /// Write the whole days from `field` to `compare_field`.
    DiffDays,
    /// Only re-format.
    Format,
}

/// How ambiguous numeric dates like `03/04/2025` are read.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// Month first (default): March 4.
    #[default]
    Us,
    /// Day first: 3 April.
    Eu,
}

/// Config of date_calc.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The operation.
    pub operation: Operation,
    /// The source date field; required except for `set_now`.
    pub field: Option<String>,
    /// How many units to add or subtract; required for arithmetic. May be negative.
    pub amount: Option<i64>,
    /// The field written; default `field`. Required for `diff_days`.
    pub target_field: Option<String>,
    /// The second date of `diff_days`.
    pub compare_field: Option<String>,
    /// chrono strftime format of the result.
    pub output_format: Option<String>,
    /// Month-first (`us`, default) or day-first (`eu`) numeric dates.
    #[serde(default)]
    pub date_order: DateOrder,
    /// Offset of "now" from UTC, e.g. `-05:00`; default UTC.
    pub utc_offset: Option<String>,
    /// Use "now" when the source is empty; default false.
    #[serde(default)]
    pub source_default_now: bool,
}

impl Config {
    fn amount_needed(&self) -> bool {
        !matches!(
            self.operation,
            Operation::SetNow | Operation::DiffDays | Operation::Format
        )
    }
    fn format(&self) -> &str {
        let with_time = matches!(self.operation, Operation::AddHours | Operation::AddMinutes);
        self.output_format.as_deref().unwrap_or(if with_time {
            "%Y-%m-%d %H:%M:%S"
        } else {
            "%Y-%m-%d"
        })
    }
}

fn render(dt: &NaiveDateTime, items: &[Item<'_>]) -> Option<String> {
    let mut s = String::new();
    write!(s, "{}", dt.format_with_items(items.iter()))
        .ok()
        .map(|()| s)
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let op = self.operation;
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        check(
            &mut errors,
            op != Operation::SetNow && self.field.is_none(),
            "field",
            "is required for this operation",
        );
        check(
            &mut errors,
            op == Operation::SetNow && self.field.is_none() && self.target_field.is_none(),
            "target_field",
            "set_now needs target_field or field",
        );
        check(
            &mut errors,
            op == Operation::DiffDays && self.compare_field.is_none(),
            "compare_field",
            "is required for diff_days",
        );
        check(
            &mut errors,
            op == Operation::DiffDays && self.target_field.is_none(),
            "target_field",
            "is required for diff_days",
        );
        for (name, v) in [
            ("field", &self.field),
            ("target_field", &self.target_field),
            ("compare_field", &self.compare_field),
        ] {
            check(&mut errors, blank(v), name, "must not be empty");
        }
        check(
            &mut errors,
            self.amount_needed() && self.amount.is_none(),
            "amount",
            "is required for this operation",
        );
        check(
            &mut errors,
            self.amount.is_some_and(|a| a.unsigned_abs() > 100_000),
            "amount",
            "must be between -100000 and 100000",
        );
        let sample = NaiveDate::MIN.and_time(chrono::NaiveTime::MIN);
        let items = StrftimeItems::new(self.format()).parse().ok();
        check(
            &mut errors,
            items.is_none_or(|i| render(&sample, &i).is_none()),
            "output_format",
            "is not a valid strftime format for a date without timezone",
        );
        check(
            &mut errors,
            self.utc_offset
                .as_deref()
                .is_some_and(|o| o.parse::<FixedOffset>().is_err()),
            "utc_offset",
            "must look like +05:30 or -05:00",
        );
        finish(errors)
    }
}

/// The date_calc helper.
pub struct DateCalc;

impl Helper for DateCalc {
    const NAME: &'static str = "date_calc";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Adds to, subtracts from, compares, stamps or re-formats a date field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"operation": "add_days", "field": "_SignupDate", "amount": 30, "target_field": "_TrialEnds"}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] = &["result", "<target_field>"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let offset = config
            .utc_offset
            .as_deref()
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| Utc.fix());
        Runnable::Sync(Box::new(DateCalcStep { config, offset }))
    }
}

/// Date-and-time forms tried after RFC 3339, before the numeric ones.
const TIMES: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y%m%dT%H:%M:%S",
];
/// Date-only forms.
const DATES: &[&str] = &["%Y-%m-%d", "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y"];

/// Parses the date forms listed in the module doc; date-only values get midnight.
pub(crate) fn parse_date(raw: &str, order: DateOrder) -> Option<NaiveDateTime> {
    let s = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.naive_local());
    }
    let numeric: &[&str] = match order {
        DateOrder::Us => &[
            "%m/%d/%Y",
            "%m-%d-%Y",
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
        ],
        DateOrder::Eu => &[
            "%d/%m/%Y",
            "%d-%m-%Y",
            "%d.%m.%Y",
            "%d/%m/%Y %H:%M:%S",
            "%d/%m/%Y %H:%M",
        ],
    };
    let times = TIMES
        .iter()
        .chain(numeric.iter().filter(|f| f.contains('H')));
    let dates = DATES
        .iter()
        .chain(numeric.iter().filter(|f| !f.contains('H')));
    times
        .clone()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            dates
                .clone()
                .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
}

fn add_business_days(mut dt: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let step = TimeDelta::try_days(n.signum())?;
    for _ in 0..n.unsigned_abs() {
        dt = dt.checked_add_signed(step)?;
        while matches!(dt.weekday(), Weekday::Sat | Weekday::Sun) {
            dt = dt.checked_add_signed(step)?;
        }
    }
    Some(dt)
}

fn add_months(dt: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let m = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n < 0 {
        dt.checked_sub_months(m)
    } else {
        dt.checked_add_months(m)
    }
}

struct DateCalcStep {
    config: Config,
    offset: FixedOffset,
}

impl Step for DateCalcStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let now = ctx.now.with_timezone(&self.offset).naive_local();
        let read = |field: &str| -> Result<NaiveDateTime, String> {
            match contact.field(field) {
                Some(raw) => parse_date(raw, c.date_order)
                    .ok_or_else(|| format!("{field} value {raw:?} is not a date")),
                None => Err(format!("{field} is empty")),
            }
        };
        let source = match (&c.field, c.operation) {
            (_, Operation::SetNow) | (None, _) => Ok(now),
            (Some(f), _) if c.source_default_now && contact.field(f).is_none() => Ok(now),
            (Some(f), _) => read(f),
        };
        let source = match source {
            Ok(d) => d,
            Err(e) => return Ok(Outcome::failed(e)),
        };
        let n = c.amount.unwrap_or(0);
        let result = match c.operation {
            Operation::DiffDays => {
                let compare = match read(c.compare_field.as_deref().unwrap_or_default()) {
                    Ok(d) => d,
                    Err(e) => return Ok(Outcome::failed(e)),
                };
                Some((compare.date() - source.date()).num_days().to_string())
            }
            op => {
                let delta = |f: fn(i64) -> Option<TimeDelta>, k: i64| {
                    n.checked_mul(k)
                        .and_then(f)
                        .and_then(|d| source.checked_add_signed(d))
                };
                let dt = match op {
                    Operation::AddDays => delta(TimeDelta::try_days, 1),
                    Operation::SubtractDays => delta(TimeDelta::try_days, -1),
                    Operation::AddWeeks => delta(TimeDelta::try_weeks, 1),
                    Operation::AddHours => delta(TimeDelta::try_hours, 1),
                    Operation::AddMinutes => delta(TimeDelta::try_minutes, 1),
                    Operation::AddMonths => add_months(source, n),
                    Operation::SubtractMonths => add_months(source, -n),
                    Operation::AddYears => n.checked_mul(12).and_then(|m| add_months(source, m)),
                    Operation::SubtractYears => {
                        n.checked_mul(-12).and_then(|m| add_months(source, m))
                    }
                    Operation::AddBusinessDays => add_business_days(source, n),
                    Operation::SetNow | Operation::Format | Operation::DiffDays => Some(source),
                };
                let items = StrftimeItems::new(c.format()).parse().unwrap_or_default();
                dt.and_then(|dt| render(&dt, &items))
            }
        };
        let Some(value) = result else {
            return Ok(Outcome::failed(format!(
                "{:?} by {n} is out of the supported date range",
                c.operation
            )));
        };
        let target = c
            .target_field
            .as_deref()
            .or(c.field.as_deref())
            .unwrap_or_default();
        Ok(Outcome::ok(format!("{target} = {value}"))
            .with(target, value.clone())
            .with("result", value.clone())
            .set_field(contact, target, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    fn calc(cfg: serde_json::Value, date: &str) -> String {
        let out = run(
            &DateCalc,
            cfg,
            &contact(&[("d", date), ("e", "2025-03-10")], &[]),
        );
        if out.success {
            out.output["result"].as_str().unwrap_or_default().to_owned()
        } else {
            format!("failed: {}", out.message)
        }
    }

    fn op(operation: &str, amount: i64, date: &str) -> String {
        calc(
            json!({"operation": operation, "field": "d", "amount": amount}),
            date,
        )
    }

    #[test]
    fn arithmetic() {
        let cases = [
            ("add_days", 30, "2025-02-01", "2025-03-03"),
            ("subtract_days", 1, "2025-03-01", "2025-02-28"),
            ("add_days", -1, "2024-03-01", "2024-02-29"),
            ("add_weeks", 2, "2025-01-01", "2025-01-15"),
            ("add_months", 1, "2025-01-31", "2025-02-28"),
            ("subtract_months", 1, "2024-03-31", "2024-02-29"),
            ("add_years", 1, "2024-02-29", "2025-02-28"),
            ("subtract_years", 2, "2025-06-15", "2023-06-15"),
            ("add_hours", 5, "2025-03-01 22:30", "2025-03-02 03:30:00"),
            (
                "add_minutes",
                -45,
                "2025-03-01T00:15:00Z",
                "2025-02-28 23:30:00",
            ),
            ("add_business_days", 1, "2025-03-07", "2025-03-10"),
            ("add_business_days", 5, "2025-03-08", "2025-03-14"),
            ("add_business_days", -1, "2025-03-10", "2025-03-07"),
            ("add_business_days", 0, "2025-03-08", "2025-03-08"),
        ];
        for (operation, amount, date, want) in cases {
            assert_eq!(
                op(operation, amount, date),
                want,
                "{operation} {amount} {date}"
            );
        }
    }

    #[test]
    fn input_forms_and_date_order() {
        for s in [
            "2025-03-04",
            "03/04/2025",
            "3-4-2025",
            "Mar 4, 2025",
            "March 4, 2025",
            "04 Mar 2025",
            "20250304T10:00:00",
            "2025-03-04T23:00:00-05:00",
        ] {
            assert_eq!(
                calc(json!({"operation": "format", "field": "d"}), s),
                "2025-03-04",
                "{s}"
            );
        }
        assert_eq!(
            calc(
                json!({"operation": "format", "field": "d", "date_order": "eu"}),
                "03/04/2025"
            ),
            "2025-04-03"
        );
        assert_eq!(
            calc(
                json!({"operation": "format", "field": "d", "output_format": "%B %-d, %Y"}),
                "2025-03-04"
            ),
            "March 4, 2025"
        );
    }

    #[test]
    fn set_now_and_diff_days() {
        assert_eq!(
            calc(json!({"operation": "set_now", "target_field": "t"}), ""),
            "2026-03-15"
        );
        let shifted = json!({"operation": "set_now", "field": "d", "utc_offset": "-13:00", "output_format": "%Y-%m-%d %H:%M"});
        assert_eq!(calc(shifted, "x"), "2026-03-14 23:00");
        assert_eq!(
            calc(
                json!({"operation": "diff_days", "field": "d", "compare_field": "e", "target_field": "t"}),
                "2025-03-01"
            ),
            "9"
        );
        assert_eq!(
            calc(
                json!({"operation": "diff_days", "field": "e", "compare_field": "d", "target_field": "t"}),
                "2025-03-01"
            ),
            "-9"
        );
    }

    #[test]
    fn empty_source_fails_unless_defaulting_to_now() {
        assert!(op("add_days", 1, "").starts_with("failed: d is empty"));
        assert!(op("add_days", 1, "someday").starts_with("failed"));
        let cfg =
            json!({"operation": "add_days", "field": "d", "amount": 1, "source_default_now": true});
        assert_eq!(calc(cfg.clone(), ""), "2026-03-16");
        assert!(calc(cfg, "someday").starts_with("failed"));
    }

    #[test]
    fn writes_the_target_and_skips_no_ops() {
        let cfg = json!({"operation": "add_days", "field": "d", "amount": 1, "target_field": "t"});
        let out = run(
            &DateCalc,
            cfg.clone(),
            &contact(&[("d", "2025-01-01")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetField {
                field: "t".into(),
                value: Some("2025-01-02".into())
            }]
        );
        assert!(
            run(
                &DateCalc,
                cfg,
                &contact(&[("d", "2025-01-01"), ("t", "2025-01-02")], &[])
            )
            .changes
            .is_empty()
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(
            !config_errors(&DateCalc, json!({"operation": "add_days", "field": "d"})).is_empty()
        );
        assert!(
            !config_errors(
                &DateCalc,
                json!({"operation": "format", "field": "d", "output_format": "%Y-%Q"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &DateCalc,
                json!({"operation": "format", "field": "d", "output_format": "%Y %z"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &DateCalc,
                json!({"operation": "add_days", "field": "d", "amount": 1_000_000})
            )
            .is_empty()
        );
        let errs = config_errors(
            &DateCalc,
            json!({"operation": "diff_days", "utc_offset": "EST"}),
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            config_errors(
                &DateCalc,
                json!({"operation": "set_now", "target_field": "t"})
            )
            .is_empty()
        );
    }
}
