//! timezone_triggers: fires `trigger_goal` at a local time of the contact, e.g. "next
//! Tuesday 9:00 AM" where the contact lives. The contact's IANA time zone comes from
//! `timezone_field`, else `fallback_timezone`; the next occurrence of `day` + `time`
//! there (a weekday, `today`, `tomorrow` or `next_business_day`; a time already passed
//! today moves to the next occurrence) becomes a follow-up running goal_it at that
//! instant, kept in the durable timer table and fired by the scheduler. DST: a time in a
//! spring-forward gap moves to the first valid time after it, an ambiguous one takes the
//! earlier instant. Without a usable time zone `failed_goal` fires at once. The zone and
//! UTC offset can be saved to fields. Re-running for the same target time does not
//! schedule a duplicate (dedupe on instance, contact and time in platform state).
//! Address geocoding is not offered: no geocoding vendor is configured for the platform.

use super::limit_it::to_utc;
use super::route_it_by_day::check_tz;
use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, FollowUp, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Offset, Utc, Weekday};
use serde::Deserialize;
use serde_json::json;

/// The day of the trigger.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Today, or tomorrow once the time has passed.
    Today,
    /// Tomorrow.
    Tomorrow,
    /// The next Monday–Friday after today.
    NextBusinessDay,
    /// The next Monday (today if the time is still ahead).
    Monday,
    /// The next Tuesday.
    Tuesday,
    /// The next Wednesday.
    Wednesday,
    /// The next Thursday.
    Thursday,
    /// The next Friday.
    Friday,
    /// The next Saturday.
    Saturday,
    /// The next Sunday.
    Sunday,
}

/// Config of timezone_triggers.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The day.
    pub day: Day,
    /// Local time: `9:00 AM`, `9am`, `14:00`.
    pub time: String,
    /// Goal achieved at that time.
    pub trigger_goal: String,
    /// Goal achieved at once when no time zone is known.
    pub failed_goal: Option<String>,
    /// Contact field holding an IANA time zone, e.g. `America/Chicago`.
    #[serde(alias = "use_existing_timezone_field")]
    pub timezone_field: Option<String>,
    /// Zone used when the field is empty or invalid.
    pub fallback_timezone: Option<String>,
    /// Field that receives the zone used.
    pub save_time_zone: Option<String>,
    /// Field that receives its UTC offset at the scheduled time, e.g. `-05:00`.
    pub save_time_zone_offset: Option<String>,
}

/// Parses `9:00 AM`, `9am`, `12:15 pm`, `14:00`.
fn parse_time(raw: &str) -> Option<NaiveTime> {
    let s = raw.trim().to_lowercase();
    let (clock, half) = match (s.strip_suffix("am"), s.strip_suffix("pm")) {
        (Some(c), _) => (c.trim(), Some(0)),
        (_, Some(c)) => (c.trim(), Some(12)),
        _ => (s.as_str(), None),
    };
    let (h, m) = clock.split_once(':').unwrap_or((clock, "00"));
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    let hour = match half {
        Some(add) if (1..=12).contains(&h) => h % 12 + add,
        Some(_) => return None,
        None => h,
    };
    NaiveTime::from_hms_opt(hour, m, 0)
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            parse_time(&self.time).is_none(),
            "time",
            "must be like 9:00 AM or 14:00",
        );
        check(
            &mut errors,
            self.trigger_goal.trim().is_empty(),
            "trigger_goal",
            "is required",
        );
        check(
            &mut errors,
            self.timezone_field.is_none() && self.fallback_timezone.is_none(),
            "timezone_field",
            "set timezone_field, fallback_timezone or both",
        );
        if let Some(tz) = &self.fallback_timezone {
            check_tz(&mut errors, "fallback_timezone", tz);
        }
        for (field, v) in [
            ("failed_goal", &self.failed_goal),
            ("timezone_field", &self.timezone_field),
            ("save_time_zone", &self.save_time_zone),
            ("save_time_zone_offset", &self.save_time_zone_offset),
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

/// The timezone_triggers helper.
pub struct TimezoneTriggers;

impl Helper for TimezoneTriggers {
    const NAME: &'static str = "timezone_triggers";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Schedules an API goal for the next given day and local time in the contact's time zone.";
    const EXAMPLE_CONFIG: &'static str = r#"{"day": "tuesday", "time": "9:00 AM", "trigger_goal": "callWindow", "timezone_field": "_TimeZone", "fallback_timezone": "America/New_York", "save_time_zone_offset": "_UtcOffset"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "timezone",
        "timezone_source",
        "utc_offset",
        "scheduled_for_utc",
        "scheduled_for_local",
        "already_scheduled",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let time = parse_time(&config.time).unwrap_or_default();
        Runnable::Async(Box::new(TimezoneTriggersStep { config, time }))
    }
}

struct TimezoneTriggersStep {
    config: Config,
    time: NaiveTime,
}

/// The next instant after `now` that is `day` at `time` in `tz`.
fn next_occurrence(
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
    day: Day,
    time: NaiveTime,
) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let at = |d: NaiveDate| to_utc(tz, d.and_time(time));
    let later = |d: NaiveDate, step: i64| {
        if at(d) > now {
            d
        } else {
            d + Duration::days(step)
        }
    };
    let weekday = |w: Weekday| {
        let ahead = (7 + w.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
        later(today + Duration::days(i64::from(ahead)), 7)
    };
    let date = match day {
        Day::Today => later(today, 1),
        Day::Tomorrow => today + Duration::days(1),
        Day::NextBusinessDay => {
            let mut d = today + Duration::days(1);
            while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                d += Duration::days(1);
            }
            d
        }
        Day::Monday => weekday(Weekday::Mon),
        Day::Tuesday => weekday(Weekday::Tue),
        Day::Wednesday => weekday(Weekday::Wed),
        Day::Thursday => weekday(Weekday::Thu),
        Day::Friday => weekday(Weekday::Fri),
        Day::Saturday => weekday(Weekday::Sat),
        Day::Sunday => weekday(Weekday::Sun),
    };
    at(date)
}

#[async_trait::async_trait]
impl AsyncStep for TimezoneTriggersStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let parse = |s: &str| s.trim().parse::<chrono_tz::Tz>().ok();
        let from_field = c
            .timezone_field
            .as_deref()
            .and_then(|f| contact.field(f.trim()));
        let zone = from_field
            .and_then(parse)
            .map(|tz| (tz, "field"))
            .or_else(|| {
                c.fallback_timezone
                    .as_deref()
                    .and_then(parse)
                    .map(|tz| (tz, "fallback"))
            });
        let Some((tz, source)) = zone else {
            let why = from_field.map_or("no time zone on the contact".to_owned(), |v| {
                format!("{v:?} is not a time zone")
            });
            return Ok(Outcome::failed(format!("Cannot schedule: {why}"))
                .with("timezone_source", "none")
                .branch(contact, None, c.failed_goal.as_deref().map(str::trim)));
        };
        let at = next_occurrence(tz, ctx.now, c.day, self.time);
        let local = at.with_timezone(&tz);
        let offset = local.offset().fix().to_string();
        let key = format!(
            "timezone_triggers/{}/{}/{}",
            ctx.instance,
            contact.id,
            at.timestamp()
        );
        let mark = json!({"execution_id": ctx.execution_id});
        let (stored, _) = ctx
            .state
            .put_if_absent(&key, mark, Some(at + Duration::days(1)))
            .await?;
        let duplicate = stored["execution_id"] != ctx.execution_id;
        let mut out = Outcome::ok(if duplicate {
            format!(
                "Already scheduled for {}",
                local.format("%Y-%m-%d %H:%M %Z")
            )
        } else {
            format!(
                "Scheduled {} for {}",
                c.trigger_goal.trim(),
                local.format("%Y-%m-%d %H:%M %Z")
            )
        })
        .with("timezone", tz.name())
        .with("timezone_source", source)
        .with("utc_offset", offset.clone())
        .with("scheduled_for_utc", at.to_rfc3339())
        .with("scheduled_for_local", local.to_rfc3339())
        .with("already_scheduled", duplicate);
        if let Some(f) = c.save_time_zone.as_deref() {
            out = out.set_field(contact, f.trim(), tz.name());
        }
        if let Some(f) = c.save_time_zone_offset.as_deref() {
            out = out.set_field(contact, f.trim(), offset);
        }
        if duplicate {
            return Ok(out);
        }
        Ok(out.follow_up(FollowUp {
            helper: "goal_it".into(),
            config: json!({"goal_name": c.trigger_goal.trim()}),
            input: None,
            at: Some(at),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, fixed_now, set};
    use serde_json::Value;

    fn when(tz: &str, day: Day, time: &str) -> String {
        let tz: chrono_tz::Tz = tz.parse().unwrap();
        next_occurrence(tz, fixed_now(), day, parse_time(time).unwrap()).to_rfc3339()
    }

    #[test]
    fn times_parse_in_12_and_24_hour_forms() {
        let t = |s: &str| parse_time(s).map(|t| t.format("%H:%M").to_string());
        assert_eq!(t("9:00 AM").as_deref(), Some("09:00"));
        assert_eq!(t("9am").as_deref(), Some("09:00"));
        assert_eq!(t("12:15 pm").as_deref(), Some("12:15"));
        assert_eq!(t("12 AM").as_deref(), Some("00:00"));
        assert_eq!(t(" 21:30 ").as_deref(), Some("21:30"));
        assert!(t("13 PM").is_none() && t("25:00").is_none() && t("noon").is_none());
    }

    #[test]
    fn next_occurrences_in_local_time() {
        // Now: Sunday 2026-03-15 12:00Z = 08:00 EDT in New York, 21:00 in Tokyo.
        assert_eq!(
            when("Asia/Tokyo", Day::Monday, "9:00 AM"),
            "2026-03-16T00:00:00+00:00"
        );
        assert_eq!(
            when("America/New_York", Day::Today, "14:00"),
            "2026-03-15T18:00:00+00:00"
        );
        assert_eq!(
            when("America/New_York", Day::Today, "7:00"),
            "2026-03-16T11:00:00+00:00"
        );
        assert_eq!(
            when("America/New_York", Day::Sunday, "7 AM"),
            "2026-03-22T11:00:00+00:00"
        );
        assert_eq!(
            when("America/New_York", Day::Sunday, "9 AM"),
            "2026-03-15T13:00:00+00:00"
        );
        assert_eq!(
            when("America/New_York", Day::Tomorrow, "7:00"),
            "2026-03-16T11:00:00+00:00"
        );
        assert_eq!(
            when("Asia/Tokyo", Day::NextBusinessDay, "8:00"),
            "2026-03-15T23:00:00+00:00"
        );
        let friday = (fixed_now() - Duration::days(2))
            .date_naive()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        let next = next_occurrence(
            chrono_tz::UTC,
            friday,
            Day::NextBusinessDay,
            parse_time("9:00").unwrap(),
        );
        assert_eq!(next.to_rfc3339(), "2026-03-16T09:00:00+00:00");
    }

    #[test]
    fn dst_gaps_move_to_the_first_valid_time() {
        // London springs forward on 2026-03-29 at 01:00 → 02:00.
        let sunday = fixed_now() + Duration::days(7);
        let at = next_occurrence(
            "Europe/London".parse().unwrap(),
            sunday,
            Day::Sunday,
            parse_time("1:30").unwrap(),
        );
        assert_eq!(at.to_rfc3339(), "2026-03-29T01:00:00+00:00");
    }

    fn cfg() -> Value {
        json!({"day": "monday", "time": "9:00 AM", "trigger_goal": "call", "failed_goal": "noZone", "timezone_field": "_TZ", "fallback_timezone": "America/New_York", "save_time_zone": "tz", "save_time_zone_offset": "off"})
    }

    #[tokio::test]
    async fn schedules_goal_it_at_the_contacts_local_time() {
        let out = Env::new()
            .run(
                &TimezoneTriggers,
                cfg(),
                &contact(&[("_TZ", "Asia/Tokyo")], &[]),
            )
            .await
            .unwrap();
        let at: DateTime<Utc> = "2026-03-16T00:00:00Z".parse().unwrap();
        assert_eq!(
            out.follow_ups,
            vec![FollowUp {
                helper: "goal_it".into(),
                config: json!({"goal_name": "call"}),
                input: None,
                at: Some(at)
            }]
        );
        assert_eq!(
            out.changes,
            vec![set("tz", "Asia/Tokyo"), set("off", "+09:00")]
        );
        assert_eq!(
            out.output["scheduled_for_local"],
            "2026-03-16T09:00:00+09:00"
        );
        assert_eq!(out.output["timezone_source"], "field");
    }

    #[tokio::test]
    async fn an_invalid_zone_uses_the_fallback_and_no_zone_fires_the_failed_goal() {
        let out = Env::new()
            .run(
                &TimezoneTriggers,
                cfg(),
                &contact(&[("_TZ", "Mars/Olympus")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["timezone"], "America/New_York");
        assert_eq!(out.output["utc_offset"], "-04:00");
        assert_eq!(out.output["scheduled_for_utc"], "2026-03-16T13:00:00+00:00");
        let mut no_fallback = cfg();
        no_fallback
            .as_object_mut()
            .unwrap()
            .remove("fallback_timezone");
        let out = Env::new()
            .run(&TimezoneTriggers, no_fallback, &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.follow_ups.is_empty());
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "noZone".into()
            }]
        );
    }

    #[tokio::test]
    async fn a_rerun_for_the_same_time_does_not_schedule_twice() {
        let mut env = Env::new();
        // Env's MemoryState expires entries by the real clock unless pinned.
        env.state.set_now(env.now);
        let c = contact(&[("_TZ", "Asia/Tokyo")], &[]);
        let first = env.run(&TimezoneTriggers, cfg(), &c).await.unwrap();
        let redelivered = env.run(&TimezoneTriggers, cfg(), &c).await.unwrap();
        assert_eq!(redelivered.follow_ups, first.follow_ups);
        env.execution_id = "another".into();
        let again = env.run(&TimezoneTriggers, cfg(), &c).await.unwrap();
        assert!(again.success && again.follow_ups.is_empty());
        assert_eq!(again.output["already_scheduled"], true);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &TimezoneTriggers,
            json!({"day": "monday", "time": "9 o'clock", "trigger_goal": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["time", "trigger_goal", "timezone_field"]);
        assert_eq!(
            config_errors(&TimezoneTriggers, json!({"day": "monday", "time": "9:00", "trigger_goal": "g", "fallback_timezone": "EST5EDTX"}))[0].field,
            "fallback_timezone"
        );
        assert!(!config_errors(&TimezoneTriggers, json!({"day": "someday", "time": "9:00", "trigger_goal": "g", "fallback_timezone": "UTC"})).is_empty());
    }
}
