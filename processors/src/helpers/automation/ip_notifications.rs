//! ip_notifications: locates a visitor's IP (the trigger payload's `ip`, else `ip_field`)
//! and, when the location matches one of `match_countries` (ISO alpha-2) or
//! `match_regions` (code `TX`, name `Texas` or `US-TX`, case-insensitively), or when no
//! filter is set, applies `apply_tag`, achieves `achieve_goal` and starts the `notify`
//! helpers (e.g. notify_me or slack_it: "hot lead from Texas on the pricing page") as
//! follow-ups whose input carries the location. "City, Region, Country" is saved to
//! `save_location_to` whenever the address is located. A private or unknown address
//! never matches; a missing or malformed IP fails. A geolocation outage is a retryable
//! error. Idempotent, except for the notifications.

use super::chain_it::{HelperRun, attach, check_runs, plan};
use super::route_it::{
    Visitor, check_country_codes, check_opt_name, locate_visitor, location_string, region_matches,
};
use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::json;

/// Config of ip_notifications.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Contact field holding the IP, used when the trigger payload has no `ip`.
    pub ip_field: Option<String>,
    /// Country codes that match.
    #[serde(default)]
    pub match_countries: Vec<String>,
    /// Regions (code, name or ISO 3166-2) that match.
    #[serde(default)]
    pub match_regions: Vec<String>,
    /// Tag applied on a match.
    pub apply_tag: Option<String>,
    /// Goal achieved on a match.
    pub achieve_goal: Option<String>,
    /// Field that receives "City, Region, Country".
    pub save_location_to: Option<String>,
    /// Helpers started on a match (notify_me, slack_it, ...); their input is the location.
    #[serde(default)]
    pub notify: Vec<HelperRun>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_country_codes(&mut errors, "match_countries", self.match_countries.iter());
        check(
            &mut errors,
            self.match_regions.iter().any(|r| r.trim().is_empty()),
            "match_regions",
            "regions must not be empty",
        );
        check(
            &mut errors,
            self.apply_tag.is_none()
                && self.achieve_goal.is_none()
                && self.save_location_to.is_none()
                && self.notify.is_empty(),
            "apply_tag",
            "set apply_tag, achieve_goal, save_location_to or notify",
        );
        check_opt_name(&mut errors, "ip_field", self.ip_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        check_opt_name(&mut errors, "achieve_goal", self.achieve_goal.as_ref());
        check_opt_name(
            &mut errors,
            "save_location_to",
            self.save_location_to.as_ref(),
        );
        check_runs(&mut errors, "notify", &self.notify);
        finish(errors)
    }
}

/// The ip_notifications helper.
pub struct IpNotifications;

impl Helper for IpNotifications {
    const NAME: &'static str = "ip_notifications";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Tags, goals or alerts when a visitor's IP address is in chosen countries or regions.";
    const EXAMPLE_CONFIG: &'static str = r#"{"match_countries": ["US"], "match_regions": ["Ontario"], "apply_tag": "310", "save_location_to": "_LastLocation"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "ip",
        "country",
        "country_code",
        "region",
        "city",
        "location_string",
        "location_matches",
        "queued_helpers",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(IpNotificationsStep(config)))
    }
}

struct IpNotificationsStep(Config);

#[async_trait::async_trait]
impl AsyncStep for IpNotificationsStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let loc = match locate_visitor(ctx, contact, c.ip_field.as_deref(), false).await? {
            Visitor::Found(l) => l,
            Visitor::Unlocated(why @ ("no_ip" | "invalid_ip"), detail) => {
                return Ok(
                    Outcome::failed(format!("Cannot locate the visitor: {detail}"))
                        .with("location_matches", false)
                        .with("reason", why),
                );
            }
            Visitor::Unlocated(why, detail) => {
                return Ok(
                    Outcome::ok(format!("Visitor not located ({why}): no match"))
                        .with("location_matches", false)
                        .with("reason", why)
                        .log(detail),
                );
            }
        };
        let unfiltered = c.match_countries.is_empty() && c.match_regions.is_empty();
        let matches = unfiltered
            || c.match_countries
                .iter()
                .any(|cc| cc.trim().eq_ignore_ascii_case(&loc.country_code))
            || c.match_regions.iter().any(|r| region_matches(&loc, r));
        let place = location_string(&loc);
        let mut out = if matches {
            Outcome::ok(format!("Visitor from {place} matches"))
        } else {
            Outcome::ok(format!("Visitor from {place} does not match"))
        }
        .with("ip", loc.ip.clone())
        .with("country", loc.country.clone())
        .with("country_code", loc.country_code.clone())
        .with("region", loc.region_name.clone())
        .with("city", loc.city.clone())
        .with("location_string", place.clone())
        .with("location_matches", matches);
        if let Some(f) = c.save_location_to.as_deref().filter(|_| !place.is_empty()) {
            out = out.set_field(contact, f.trim(), place.clone());
        }
        if !matches {
            return Ok(out);
        }
        out = out.branch(contact, c.apply_tag.as_deref(), c.achieve_goal.as_deref());
        let input = json!({"ip": loc.ip, "location": place, "country_code": loc.country_code, "region": loc.region_name, "city": loc.city});
        let (runs, _) = plan(ctx, contact, &c.notify, 0, Some(&input));
        Ok(attach(out, runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::Value;

    fn answer(cc: &str, region: &str, name: &str, city: &str) -> Value {
        json!({"status": "success", "country": "United States", "countryCode": cc, "region": region, "regionName": name, "city": city, "zip": "1", "lat": 1.0, "lon": 2.0, "timezone": "UTC", "isp": "x", "query": "8.8.8.8"})
    }

    fn cfg() -> Value {
        json!({"match_regions": ["tx"], "match_countries": ["ca"], "apply_tag": "7", "achieve_goal": "hotLead", "save_location_to": "loc",
               "notify": [{"helper": "goal_it", "config": {"goal_name": "alert"}}]})
    }

    async fn check_ip(answer: Value, c: &Contact) -> Result<Outcome, StepError> {
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 200, answer)]).await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": "8.8.8.8"}));
        env.run(&IpNotifications, cfg(), c).await
    }

    #[tokio::test]
    async fn a_matching_region_tags_goals_saves_and_notifies() {
        let out = check_ip(answer("US", "TX", "Texas", "Austin"), &contact(&[], &["7"]))
            .await
            .unwrap();
        assert_eq!(out.output["location_matches"], true);
        assert_eq!(
            out.changes,
            vec![
                set("loc", "Austin, Texas, United States"),
                Change::AchieveGoal {
                    call_name: "hotLead".into()
                }
            ]
        );
        assert_eq!(out.follow_ups.len(), 1);
        assert_eq!(out.follow_ups[0].helper, "goal_it");
        assert_eq!(
            out.follow_ups[0].input.as_ref().unwrap()["location"],
            "Austin, Texas, United States"
        );
    }

    #[tokio::test]
    async fn other_places_only_save_the_location() {
        let out = check_ip(answer("US", "NY", "New York", "NYC"), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(out.output["location_matches"], false);
        assert_eq!(
            out.changes,
            vec![set("loc", "NYC, New York, United States")]
        );
        assert!(out.follow_ups.is_empty());
        let canada = check_ip(answer("CA", "ON", "Ontario", "Toronto"), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(canada.output["location_matches"], true);
    }

    #[tokio::test]
    async fn no_filter_matches_any_located_visitor_from_the_ip_field() {
        let mock = MockVendor::start(&[(
            "GET",
            "/json/8.8.8.8",
            200,
            answer("JP", "13", "Tokyo", "Tokyo"),
        )])
        .await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let cfg = json!({"apply_tag": "1", "ip_field": "_IP"});
        let out = env
            .run(&IpNotifications, cfg, &contact(&[("_IP", "8.8.8.8")], &[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "1".into() }]);
    }

    #[tokio::test]
    async fn private_missing_and_malformed_ips() {
        let mut env = Env::new();
        env.input = Some(json!({"ip": "10.1.2.3"}));
        let out = env
            .run(&IpNotifications, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["reason"], "reserved_ip");
        env.input = Some(json!({"ip": "300.1.1.1"}));
        let out = env
            .run(&IpNotifications, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success);
        env.input = None;
        let out = env
            .run(&IpNotifications, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.output["reason"] == "no_ip");
    }

    #[tokio::test]
    async fn geo_errors_are_external_and_retryable_only_for_429_and_5xx() {
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 429, json!({}))]).await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": "8.8.8.8"}));
        let err = env
            .run(&IpNotifications, cfg(), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: true,
                ..
            }
        ));
        mock.route("GET", "/json/8.8.8.8", 403, json!({"message": "forbidden"}));
        let err = env
            .run(&IpNotifications, cfg(), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: false,
                ..
            }
        ));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &IpNotifications,
            json!({"match_countries": ["Texas"], "match_regions": [""]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["match_countries", "match_regions", "apply_tag"]);
        assert_eq!(
            config_errors(
                &IpNotifications,
                json!({"apply_tag": "1", "notify": [{"helper": "nope"}]})
            )[0]
            .field,
            "notify[0].helper"
        );
    }
}
