//! ip_redirects: a geo redirect link. Locates the visitor's IP (the trigger payload's
//! `ip`, the live click, else `ip_field` on the contact) and picks the URL mapped to the
//! visitor's country code, else `default_url`. A missing, private or unknown address, or
//! an unreachable geolocation service, also takes `default_url` (a click must go
//! somewhere). With `pass_query_params` the click's query (`input.query`, an object or a
//! query string) is appended. The URL goes to output `redirect_url` and optionally to
//! `save_redirect_to`; the HTTP layer serves the redirect. Idempotent.

use super::route_it::{
    Visitor, check_country_codes, check_opt_name, check_url, deliver, locate_visitor,
};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Config of ip_redirects.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// ISO 3166-1 alpha-2 country code → URL.
    pub country_urls: BTreeMap<String, String>,
    /// URL for every other visitor.
    pub default_url: Option<String>,
    /// Field that receives the chosen URL.
    pub save_redirect_to: Option<String>,
    /// Contact field holding the IP, used when the trigger payload has no `ip`.
    pub ip_field: Option<String>,
    /// Append the click's query parameters to the URL; default false.
    #[serde(default)]
    pub pass_query_params: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.country_urls.is_empty() && self.default_url.is_none(),
            "country_urls",
            "map at least one country or set default_url",
        );
        check_country_codes(&mut errors, "country_urls", self.country_urls.keys());
        for (code, url) in &self.country_urls {
            check_url(&mut errors, &format!("country_urls.{code}"), url);
        }
        if let Some(u) = &self.default_url {
            check_url(&mut errors, "default_url", u);
        }
        check_opt_name(
            &mut errors,
            "save_redirect_to",
            self.save_redirect_to.as_ref(),
        );
        check_opt_name(&mut errors, "ip_field", self.ip_field.as_ref());
        finish(errors)
    }
}

/// Appends the click's query (`input.query`: an object of values or a query string).
fn with_query(url: &str, input: Option<&Value>) -> String {
    let Some(q) = input.and_then(|i| i.get("query")) else {
        return url.to_owned();
    };
    let pairs: Vec<(String, String)> = match q {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
        Value::String(s) => url::form_urlencoded::parse(s.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect(),
        _ => Vec::new(),
    };
    match url::Url::parse(url) {
        Ok(mut u) if !pairs.is_empty() => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The ip_redirects helper.
pub struct IpRedirects;

impl Helper for IpRedirects {
    const NAME: &'static str = "ip_redirects";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Picks a redirect URL by the country of the visitor's IP address.";
    const EXAMPLE_CONFIG: &'static str = r#"{"country_urls": {"US": "https://example.com/us", "GB": "https://example.co.uk/"}, "default_url": "https://example.com/intl", "save_redirect_to": "_GeoPage"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "country_code",
        "match_reason",
        "routing_reason",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(IpRedirectsStep(config)))
    }
}

struct IpRedirectsStep(Config);

#[async_trait::async_trait]
impl AsyncStep for IpRedirectsStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let visitor = locate_visitor(ctx, contact, c.ip_field.as_deref(), true).await?;
        let (code, hit, why) = match &visitor {
            Visitor::Found(l) => {
                let hit = c
                    .country_urls
                    .iter()
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(&l.country_code))
                    .map(|(_, u)| u.trim());
                (l.country_code.clone(), hit, "no_country_route")
            }
            Visitor::Unlocated(why, _) => (String::new(), None, *why),
        };
        let (url, match_reason) = match hit {
            Some(u) => (Some(u), "country"),
            None => (c.default_url.as_deref().map(str::trim), why),
        };
        let url = url.map(|u| {
            if c.pass_query_params {
                with_query(u, ctx.input)
            } else {
                u.to_owned()
            }
        });
        let reason = match (&visitor, hit) {
            (_, Some(_)) => format!("visitor is in {code}"),
            (Visitor::Unlocated(why, detail), None) => format!("{why}: {detail}; default"),
            (Visitor::Found(_), None) => format!("no URL for {code}; default"),
        };
        let mut out = deliver(
            contact,
            url.as_deref(),
            &reason,
            c.save_redirect_to.as_deref(),
            None,
        )
        .with("country_code", code)
        .with("match_reason", match_reason);
        if let Visitor::Unlocated(_, detail) = &visitor {
            out = out.log(detail.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::json;

    fn answer(cc: &str, region: &str, name: &str, city: &str) -> Value {
        json!({"status": "success", "country": "Somewhere", "countryCode": cc, "region": region, "regionName": name, "city": city, "zip": "1", "lat": 1.0, "lon": 2.0, "timezone": "UTC", "isp": "x", "query": "8.8.8.8"})
    }

    fn cfg() -> Value {
        json!({"country_urls": {"us": "https://x.com/us", "GB": "https://x.co.uk/"}, "default_url": "https://x.com/intl", "save_redirect_to": "_Geo"})
    }

    #[tokio::test]
    async fn the_visitor_country_picks_the_url() {
        let mock = MockVendor::start(&[(
            "GET",
            "/json/8.8.8.8",
            200,
            answer("US", "CA", "California", "MV"),
        )])
        .await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": " 8.8.8.8 "}));
        let out = env
            .run(&IpRedirects, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["redirect_url"], "https://x.com/us");
        assert_eq!(out.output["country_code"], "US");
        assert_eq!(out.output["match_reason"], "country");
        assert_eq!(out.changes, vec![set("_Geo", "https://x.com/us")]);
        assert_eq!(mock.single().path, "/json/8.8.8.8");
    }

    #[tokio::test]
    async fn other_countries_and_unlocatable_visitors_get_the_default() {
        let mock = MockVendor::start(&[
            (
                "GET",
                "/json/81.2.69.142",
                200,
                answer("FR", "IDF", "Île-de-France", "Paris"),
            ),
            (
                "GET",
                "/json/1.1.1.1",
                200,
                json!({"status": "fail", "message": "invalid query"}),
            ),
        ])
        .await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        let cases = [
            (json!({"ip": "81.2.69.142"}), "no_country_route"),
            (json!({"ip": "1.1.1.1"}), "unknown_location"),
            (json!({"ip": "192.168.1.4"}), "reserved_ip"),
            (json!({"ip": "not-an-ip"}), "invalid_ip"),
            (json!({}), "no_ip"),
        ];
        for (input, why) in cases {
            env.input = Some(input);
            let out = env
                .run(&IpRedirects, cfg(), &contact(&[], &[]))
                .await
                .unwrap();
            assert!(out.success);
            assert_eq!(out.output["redirect_url"], "https://x.com/intl");
            assert_eq!(out.output["match_reason"], why);
        }
        assert_eq!(mock.received().len(), 2);
    }

    #[tokio::test]
    async fn a_geo_outage_falls_back_and_the_ip_field_is_used_without_input() {
        let mock = MockVendor::start(&[("GET", "/json/8.8.4.4", 503, json!({}))]).await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let cfg = json!({"country_urls": {"US": "https://x.com/us"}, "default_url": "https://x.com/intl", "ip_field": "_LastIP"});
        let out = env
            .run(&IpRedirects, cfg, &contact(&[("_LastIP", "8.8.4.4")], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["redirect_url"], "https://x.com/intl");
        assert_eq!(out.output["match_reason"], "geo_unavailable");
        assert!(!mock.received().is_empty());
    }

    #[tokio::test]
    async fn query_params_are_passed_and_no_default_fails() {
        let mock = MockVendor::start(&[(
            "GET",
            "/json/8.8.8.8",
            200,
            answer("US", "CA", "California", "MV"),
        )])
        .await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.input = Some(json!({"ip": "8.8.8.8", "query": "?utm_source=mail&x=a b"}));
        let cfg =
            json!({"country_urls": {"US": "https://x.com/us?ref=1"}, "pass_query_params": true});
        let out = env
            .run(&IpRedirects, cfg.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(
            out.output["redirect_url"],
            "https://x.com/us?ref=1&utm_source=mail&x=a+b"
        );
        env.input = Some(json!({"ip": "10.0.0.1"}));
        let out = env
            .run(&IpRedirects, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &IpRedirects,
            json!({"country_urls": {"USA": "https://x.com", "GB": "x"}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["country_urls", "country_urls.GB"]);
        assert!(!config_errors(&IpRedirects, json!({"country_urls": {}})).is_empty());
        assert!(
            config_errors(
                &IpRedirects,
                json!({"country_urls": {}, "default_url": "https://x.com"})
            )
            .is_empty()
        );
    }
}
