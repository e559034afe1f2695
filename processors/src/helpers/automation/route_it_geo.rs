//! route_it_geo: locates the visitor's IP (the trigger payload's `ip`, else `ip_field`)
//! and redirects: the region map is checked first (region code `TX`, name `Texas` or
//! ISO 3166-2 `US-TX`, case-insensitively), then the country map, then `fallback_url`.
//! A missing, private or unknown address or an unreachable geolocation service takes the
//! fallback. Optionally saves "City, Region, Country" and the chosen URL to fields and
//! applies a tag. The redirect itself is served elsewhere. Idempotent.

use super::route_it::{
    Visitor, check_country_codes, check_opt_name, check_url, deliver, locate_visitor,
    location_string, region_matches,
};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Config of route_it_geo.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Contact field holding the IP, used when the trigger payload has no `ip`.
    pub ip_field: Option<String>,
    /// ISO 3166-1 alpha-2 country code → URL.
    #[serde(default)]
    pub country_routes: BTreeMap<String, String>,
    /// Region code, name or ISO 3166-2 code → URL; checked before countries.
    #[serde(default)]
    pub region_routes: BTreeMap<String, String>,
    /// URL when nothing matches.
    pub fallback_url: Option<String>,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Field that receives "City, Region, Country".
    pub save_location_to: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.country_routes.is_empty() && self.region_routes.is_empty(),
            "country_routes",
            "map at least one country or region",
        );
        check_country_codes(&mut errors, "country_routes", self.country_routes.keys());
        for (k, url) in &self.country_routes {
            check_url(&mut errors, &format!("country_routes.{k}"), url);
        }
        for (k, url) in &self.region_routes {
            check(
                &mut errors,
                k.trim().is_empty(),
                "region_routes",
                "region names must not be empty",
            );
            check_url(&mut errors, &format!("region_routes.{k}"), url);
        }
        if let Some(u) = &self.fallback_url {
            check_url(&mut errors, "fallback_url", u);
        }
        check_opt_name(&mut errors, "ip_field", self.ip_field.as_ref());
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(
            &mut errors,
            "save_location_to",
            self.save_location_to.as_ref(),
        );
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it_geo helper.
pub struct RouteItGeo;

impl Helper for RouteItGeo {
    const NAME: &'static str = "route_it_geo";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Picks a redirect URL by the region, then the country, of the visitor's IP address.";
    const EXAMPLE_CONFIG: &'static str = r#"{"region_routes": {"Texas": "https://example.com/tx"}, "country_routes": {"US": "https://example.com/us", "CA": "https://example.ca/"}, "fallback_url": "https://example.com/", "save_location_to": "_GeoLocation"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "routing_reason",
        "country",
        "country_code",
        "region",
        "city",
        "location",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(RouteItGeoStep(config)))
    }
}

struct RouteItGeoStep(Config);

#[async_trait::async_trait]
impl AsyncStep for RouteItGeoStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let fallback = c.fallback_url.as_deref().map(str::trim);
        let loc = match locate_visitor(ctx, contact, c.ip_field.as_deref(), true).await? {
            Visitor::Found(l) => l,
            Visitor::Unlocated(why, detail) => {
                let out = deliver(
                    contact,
                    fallback,
                    &format!("{why}; fallback"),
                    c.save_to_field.as_deref(),
                    c.apply_tag.as_deref(),
                );
                return Ok(out.log(detail));
            }
        };
        let region = c
            .region_routes
            .iter()
            .find(|(k, _)| region_matches(&loc, k))
            .map(|(k, u)| (u.trim(), format!("region {} matched", k.trim())));
        let country = || {
            c.country_routes
                .iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(&loc.country_code))
                .map(|(_, u)| (u.trim(), format!("country {} matched", loc.country_code)))
        };
        let (url, reason) = match region.or_else(country) {
            Some((u, r)) => (Some(u), r),
            None => (
                fallback,
                format!("no route for {}; fallback", location_string(&loc)),
            ),
        };
        let place = location_string(&loc);
        let mut out = deliver(
            contact,
            url,
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        );
        if let Some(f) = c.save_location_to.as_deref().filter(|_| !place.is_empty()) {
            out = out.set_field(contact, f.trim(), place.clone());
        }
        Ok(out
            .with("country", loc.country.clone())
            .with("country_code", loc.country_code.clone())
            .with("region", loc.region_name.clone())
            .with("city", loc.city.clone())
            .with("location", place))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::{Value, json};

    fn answer(cc: &str, region: &str, name: &str, city: &str) -> Value {
        json!({"status": "success", "country": "United States", "countryCode": cc, "region": region, "regionName": name, "city": city, "zip": "1", "lat": 1.0, "lon": 2.0, "timezone": "UTC", "isp": "x", "query": "8.8.8.8"})
    }

    fn cfg() -> Value {
        json!({"region_routes": {"us-tx": "https://x.com/tx", "California": "https://x.com/ca"}, "country_routes": {"US": "https://x.com/us"}, "fallback_url": "https://x.com/", "save_to_field": "u", "save_location_to": "loc", "apply_tag": "8"})
    }

    async fn route(answer: Value, cfg: Value) -> (Outcome, MockVendor) {
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 200, answer)]).await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": "8.8.8.8"}));
        let out = env.run(&RouteItGeo, cfg, &contact(&[], &[])).await.unwrap();
        (out, mock)
    }

    #[tokio::test]
    async fn regions_are_checked_before_countries() {
        let (out, _m) = route(answer("US", "TX", "Texas", "Austin"), cfg()).await;
        assert_eq!(out.output["redirect_url"], "https://x.com/tx");
        assert_eq!(out.output["location"], "Austin, Texas, United States");
        assert_eq!(
            out.changes,
            vec![
                set("u", "https://x.com/tx"),
                Change::ApplyTag { tag_id: "8".into() },
                set("loc", "Austin, Texas, United States")
            ]
        );
        let (ca, _m) = route(answer("US", "CA", "California", "LA"), cfg()).await;
        assert_eq!(ca.output["redirect_url"], "https://x.com/ca");
        let (ny, _m) = route(answer("US", "NY", "New York", "NYC"), cfg()).await;
        assert_eq!(ny.output["redirect_url"], "https://x.com/us");
        assert_eq!(ny.output["routing_reason"], "country US matched");
        let (de, _m) = route(answer("DE", "BE", "Berlin", "Berlin"), cfg()).await;
        assert_eq!(de.output["redirect_url"], "https://x.com/");
        assert_eq!(de.output["country_code"], "DE");
    }

    #[tokio::test]
    async fn unlocatable_visitors_take_the_fallback_without_a_location() {
        let mut env = Env::new();
        env.input = Some(json!({"ip": "127.0.0.1"}));
        let out = env
            .run(&RouteItGeo, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["redirect_url"], "https://x.com/");
        assert_eq!(out.output["routing_reason"], "reserved_ip; fallback");
        assert!(!out.changes.iter().any(|c| c.target() == "loc"));
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 500, json!({}))]).await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": "8.8.8.8"}));
        let out = env
            .run(&RouteItGeo, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["routing_reason"], "geo_unavailable; fallback");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RouteItGeo,
            json!({"country_routes": {"U": "https://x.com"}, "region_routes": {" ": "https://x.com"}, "fallback_url": "x"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["country_routes", "region_routes", "fallback_url"]);
        assert_eq!(
            config_errors(&RouteItGeo, json!({}))[0].field,
            "country_routes"
        );
    }
}
