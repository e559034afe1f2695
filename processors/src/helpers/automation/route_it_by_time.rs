//! route_it_by_time: redirects by time-of-day ranges in a time zone, e.g. office hours →
//! "call us now", after hours → "book a call". Ranges are `HH:MM` (24 h) and half-open,
//! `[start, end)`, so adjacent ranges (09:00–12:00, 12:00–17:00) never overlap; a range
//! may cross midnight (22:00–06:00). The first matching range wins. A range limited to
//! `days` counts the hours after midnight of an overnight range as the evening's day
//! (Friday 22:00–06:00 covers Saturday 03:00). Malformed times are config errors. The URL
//! goes to output `redirect_url`, optionally to a field, with an optional tag.

use super::route_it::{check_opt_name, check_url, deliver};
use super::route_it_by_day::{check_tz, parse_day};
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use chrono::{Datelike, NaiveTime, Timelike, Weekday};
use serde::Deserialize;

/// One time range.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRoute {
    /// Start, `HH:MM`, inclusive.
    pub start_time: String,
    /// End, `HH:MM`, exclusive; earlier than the start for an overnight range.
    pub end_time: String,
    /// The URL.
    pub url: String,
    /// Name reported as `matched_label`.
    #[serde(default)]
    pub label: String,
    /// Days the range applies on; default every day.
    #[serde(default)]
    pub days: Vec<String>,
}

fn hhmm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

impl TimeRoute {
    /// Whether the range covers local `time` on `day`.
    fn covers(&self, day: Weekday, time: NaiveTime) -> bool {
        let (Some(start), Some(end)) = (hhmm(&self.start_time), hhmm(&self.end_time)) else {
            return false;
        };
        let (inside, range_day) = if start < end {
            (start <= time && time < end, day)
        } else if time >= start {
            (true, day)
        } else {
            (time < end, day.pred())
        };
        inside
            && (self.days.is_empty() || self.days.iter().any(|d| parse_day(d) == Some(range_day)))
    }
}

/// Config of route_it_by_time.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Ranges, first match wins.
    pub time_routes: Vec<TimeRoute>,
    /// URL when no range matches.
    pub fallback_url: Option<String>,
    /// IANA time zone of the ranges; default `UTC`.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
}

fn default_tz() -> String {
    "UTC".to_owned()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.time_routes.is_empty(),
            "time_routes",
            "must list at least one range",
        );
        for (i, r) in self.time_routes.iter().enumerate() {
            let at = format!("time_routes[{i}]");
            let (s, e) = (hhmm(&r.start_time), hhmm(&r.end_time));
            check(
                &mut errors,
                s.is_none(),
                &format!("{at}.start_time"),
                "must be HH:MM (24 h)",
            );
            check(
                &mut errors,
                e.is_none(),
                &format!("{at}.end_time"),
                "must be HH:MM (24 h)",
            );
            check(
                &mut errors,
                s.is_some() && s == e,
                &format!("{at}.end_time"),
                "must differ from start_time",
            );
            check_url(&mut errors, &format!("{at}.url"), &r.url);
            check(
                &mut errors,
                r.days.iter().any(|d| parse_day(d).is_none()),
                &format!("{at}.days"),
                "must name days of the week",
            );
        }
        check_tz(&mut errors, "timezone", &self.timezone);
        if let Some(u) = &self.fallback_url {
            check_url(&mut errors, "fallback_url", u);
        }
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it_by_time helper.
pub struct RouteItByTime;

impl Helper for RouteItByTime {
    const NAME: &'static str = "route_it_by_time";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL by time-of-day ranges in a time zone.";
    const EXAMPLE_CONFIG: &'static str = r#"{"time_routes": [{"label": "office", "start_time": "09:00", "end_time": "17:00", "url": "https://example.com/call", "days": ["mon", "tue", "wed", "thu", "fri"]}], "fallback_url": "https://example.com/book", "timezone": "America/Chicago"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "current_time",
        "timezone",
        "routing_reason",
        "matched_label",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let tz = config.timezone.trim().parse().unwrap_or(chrono_tz::UTC);
        Runnable::Sync(Box::new(RouteItByTimeStep { config, tz }))
    }
}

struct RouteItByTimeStep {
    config: Config,
    tz: chrono_tz::Tz,
}

impl Step for RouteItByTimeStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let local = ctx.now.with_timezone(&self.tz);
        let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), 0).unwrap_or_default();
        let now = time.format("%H:%M").to_string();
        let hit = c
            .time_routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.covers(local.weekday(), time));
        let (url, reason, label) = match hit {
            Some((i, r)) => (
                Some(r.url.trim()),
                format!(
                    "{now} is in range {i} ({}–{})",
                    r.start_time.trim(),
                    r.end_time.trim()
                ),
                r.label.clone(),
            ),
            None => (
                c.fallback_url.as_deref().map(str::trim),
                format!("{now} is in no range"),
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
        .with("current_time", now)
        .with("timezone", self.tz.name())
        .with("matched_label", label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, fixed_now};
    use serde_json::json;

    /// The URL chosen at `hh:mm` UTC on 2026-03-15 (a Sunday) plus `days`.
    fn at(cfg: &serde_json::Value, days: i64, hh: u32, mm: u32) -> Outcome {
        let mut env = Env::new();
        let base = fixed_now().date_naive() + chrono::Duration::days(days);
        env.now = base.and_hms_opt(hh, mm, 0).unwrap().and_utc();
        env.block_on_run(&RouteItByTime, cfg.clone(), &contact(&[], &[]))
            .unwrap()
    }

    fn url(o: &Outcome) -> &str {
        o.output["redirect_url"].as_str().unwrap_or("")
    }

    #[test]
    fn ranges_are_half_open_so_adjacent_ones_do_not_overlap() {
        let cfg = json!({"time_routes": [
            {"label": "am", "start_time": "09:00", "end_time": "12:00", "url": "https://x.com/am"},
            {"label": "pm", "start_time": "12:00", "end_time": "17:00", "url": "https://x.com/pm"}
        ], "fallback_url": "https://x.com/closed", "apply_tag": "3"});
        assert_eq!(url(&at(&cfg, 0, 9, 0)), "https://x.com/am");
        assert_eq!(url(&at(&cfg, 0, 11, 59)), "https://x.com/am");
        let noon = at(&cfg, 0, 12, 0);
        assert_eq!(url(&noon), "https://x.com/pm");
        assert_eq!(noon.output["matched_label"], "pm");
        assert_eq!(noon.changes, vec![Change::ApplyTag { tag_id: "3".into() }]);
        assert_eq!(url(&at(&cfg, 0, 17, 0)), "https://x.com/closed");
    }

    #[test]
    fn overnight_ranges_and_their_days() {
        let cfg = json!({"time_routes": [{"start_time": "22:00", "end_time": "6:00", "url": "https://x.com/night", "days": ["Friday"]}], "fallback_url": "https://x.com/day"});
        // Friday 23:00 and Saturday 03:00 belong to Friday night; Sunday 03:00 does not.
        assert_eq!(url(&at(&cfg, -2, 23, 0)), "https://x.com/night");
        assert_eq!(url(&at(&cfg, -1, 3, 0)), "https://x.com/night");
        assert_eq!(url(&at(&cfg, -1, 6, 0)), "https://x.com/day");
        assert_eq!(url(&at(&cfg, 0, 3, 0)), "https://x.com/day");
    }

    #[test]
    fn the_time_zone_decides_the_local_time() {
        let cfg = json!({"time_routes": [{"start_time": "08:00", "end_time": "09:00", "url": "https://x.com/early"}], "timezone": "America/New_York"});
        // 12:30 UTC is 08:30 in New York (EDT since March 8).
        let out = at(&cfg, 0, 12, 30);
        assert_eq!(url(&out), "https://x.com/early");
        assert_eq!(out.output["current_time"], "08:30");
        assert_eq!(out.output["timezone"], "America/New_York");
        let miss = at(&cfg, 0, 14, 0);
        assert!(!miss.success && miss.changes.is_empty());
    }

    #[test]
    fn malformed_times_and_zones_are_config_errors() {
        let errs = config_errors(
            &RouteItByTime,
            json!({"time_routes": [{"start_time": "9am", "end_time": "25:00", "url": "https://x.com", "days": ["someday"]}, {"start_time": "10:00", "end_time": "10:00", "url": "https://x.com"}], "timezone": "Nowhere"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "time_routes[0].start_time",
                "time_routes[0].end_time",
                "time_routes[0].days",
                "time_routes[1].end_time",
                "timezone"
            ]
        );
        assert!(!config_errors(&RouteItByTime, json!({"time_routes": []})).is_empty());
    }
}
