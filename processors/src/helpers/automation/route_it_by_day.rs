//! route_it_by_day: redirects by the current day of the week in a time zone (default UTC),
//! e.g. a weekend offer page vs a weekday page. Day keys are case-insensitive and accept
//! abbreviations (`Mon`, `tues`, `thurs`) and the groups `weekday` / `weekend`; a named
//! day wins over its group. No route for today → `fallback_url`. The URL goes to output
//! `redirect_url`, optionally to a field, with an optional tag. Idempotent within a day.

use super::route_it::{check_opt_name, check_url, deliver};
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use chrono::{Datelike, Weekday};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The weekday a name or abbreviation means (case-insensitive), e.g. `Tue` or `tuesday`.
pub(crate) fn parse_day(name: &str) -> Option<Weekday> {
    let n = name.trim().to_lowercase();
    let d = match n.as_str() {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    };
    Some(d)
}

/// Adds an error unless `tz` is an IANA time zone name.
pub(crate) fn check_tz(errors: &mut Vec<FieldError>, field: &str, tz: &str) {
    check(
        errors,
        tz.trim().parse::<chrono_tz::Tz>().is_err(),
        field,
        "is not an IANA time zone name",
    );
}

fn is_group(key: &str) -> bool {
    matches!(key.trim().to_lowercase().as_str(), "weekday" | "weekend")
}

/// Config of route_it_by_day.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Day (`Monday`…`Sunday`, abbreviations, `weekday`, `weekend`) → URL.
    pub day_routes: BTreeMap<String, String>,
    /// URL when today has no route.
    pub fallback_url: Option<String>,
    /// IANA time zone that decides the day; default `UTC`.
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
            self.day_routes.is_empty(),
            "day_routes",
            "must map at least one day",
        );
        let mut seen = std::collections::BTreeSet::new();
        for (day, url) in &self.day_routes {
            let at = format!("day_routes.{day}");
            let key = parse_day(day)
                .map(|d| d.to_string())
                .or_else(|| is_group(day).then(|| day.trim().to_lowercase()));
            match key {
                None => errors.push(FieldError::new(&at, "is not a day of the week")),
                Some(k) => check(&mut errors, !seen.insert(k), &at, "names a day twice"),
            }
            check_url(&mut errors, &at, url);
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

/// The route_it_by_day helper.
pub struct RouteItByDay;

impl Helper for RouteItByDay {
    const NAME: &'static str = "route_it_by_day";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL by the day of the week in a time zone.";
    const EXAMPLE_CONFIG: &'static str = r#"{"day_routes": {"weekday": "https://example.com/weekday", "Saturday": "https://example.com/weekend", "Sun": "https://example.com/weekend"}, "timezone": "America/New_York"}"#;
    const OUTPUTS: &'static [&'static str] = &["redirect_url", "day_of_week", "routing_reason"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let tz = config.timezone.trim().parse().unwrap_or(chrono_tz::UTC);
        Runnable::Sync(Box::new(RouteItByDayStep { config, tz }))
    }
}

struct RouteItByDayStep {
    config: Config,
    tz: chrono_tz::Tz,
}

impl Step for RouteItByDayStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let today = ctx.now.with_timezone(&self.tz).weekday();
        let group = if matches!(today, Weekday::Sat | Weekday::Sun) {
            "weekend"
        } else {
            "weekday"
        };
        let find = |want: &dyn Fn(&str) -> bool| {
            c.day_routes
                .iter()
                .find(|(k, _)| want(k))
                .map(|(_, u)| u.trim())
        };
        let day = find(&|k| parse_day(k) == Some(today));
        let grouped = find(&|k| k.trim().eq_ignore_ascii_case(group));
        let name = full_name(today);
        let (url, reason) = match (day, grouped) {
            (Some(u), _) => (Some(u), format!("today is {name}")),
            (None, Some(u)) => (Some(u), format!("today is a {group}")),
            (None, None) => (
                c.fallback_url.as_deref().map(str::trim),
                format!("no route for {name}"),
            ),
        };
        Ok(deliver(
            contact,
            url,
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        )
        .with("day_of_week", name))
    }
}

fn full_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn route(env: &Env, cfg: serde_json::Value) -> Outcome {
        env.block_on_run(&RouteItByDay, cfg, &contact(&[], &[]))
            .unwrap()
    }

    #[test]
    fn the_day_is_taken_in_the_time_zone() {
        // 2026-03-15T12:00Z is Sunday in New York and Monday 02:00 in Kiritimati.
        let cfg = json!({"day_routes": {"sun": "https://x.com/sun", "MONDAY": "https://x.com/mon"}, "timezone": "Pacific/Kiritimati", "save_to_field": "u"});
        let env = Env::new();
        let out = route(&env, cfg.clone());
        assert_eq!(out.output["redirect_url"], "https://x.com/mon");
        assert_eq!(out.output["day_of_week"], "Monday");
        assert_eq!(out.changes, vec![set("u", "https://x.com/mon")]);
        let mut ny = cfg;
        ny["timezone"] = json!("America/New_York");
        assert_eq!(route(&env, ny).output["redirect_url"], "https://x.com/sun");
    }

    #[test]
    fn a_named_day_wins_over_its_group_and_groups_cover_the_rest() {
        let cfg = json!({"day_routes": {"weekend": "https://x.com/we", "Sunday": "https://x.com/sun", "weekday": "https://x.com/wd"}});
        let mut env = Env::new();
        assert_eq!(
            route(&env, cfg.clone()).output["redirect_url"],
            "https://x.com/sun"
        );
        env.now -= chrono::Duration::days(1);
        let sat = route(&env, cfg.clone());
        assert_eq!(sat.output["redirect_url"], "https://x.com/we");
        assert_eq!(sat.output["routing_reason"], "today is a weekend");
        env.now -= chrono::Duration::days(1);
        assert_eq!(route(&env, cfg).output["redirect_url"], "https://x.com/wd");
    }

    #[test]
    fn no_route_for_today_uses_the_fallback_or_fails() {
        let env = Env::new();
        let cfg =
            json!({"day_routes": {"tue": "https://x.com/tue"}, "fallback_url": "https://x.com/"});
        assert_eq!(route(&env, cfg).output["redirect_url"], "https://x.com/");
        let out = route(&env, json!({"day_routes": {"tue": "https://x.com/tue"}}));
        assert!(!out.success);
        assert_eq!(out.output["routing_reason"], "no route for Sunday");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RouteItByDay,
            json!({"day_routes": {"Funday": "https://x.com", "mon": "https://x.com", "Monday": "x"}, "timezone": "Mars/Base"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "day_routes.Funday",
                "day_routes.Monday",
                "day_routes.mon",
                "timezone"
            ]
        );
        assert!(!config_errors(&RouteItByDay, json!({"day_routes": {}})).is_empty());
        assert!(parse_day("THURS") == Some(Weekday::Thu) && parse_day("th").is_none());
    }
}
