//! ip_location: geolocates the IP address held in `ip_field` (through the shared ip-api.com
//! client) and writes city, state (region name), country, country code, postal code, time
//! zone and "lat,lon" to whichever fields are configured. An empty IP is a success without
//! a lookup; a value that is not an IPv4/IPv6 address fails without a write; a private or
//! reserved address (10.x, 192.168.x, ::1, ...) is reported as `reserved` and never sent
//! out; an address the service cannot place fails. Empty answers are never written, and
//! with `overwrite: false` fields that already hold a value are kept. Service failures and
//! rate limits are retryable errors. The lookup only reads, so it also runs in a dry run.
//! Idempotent (the answer may drift slowly).

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::geo::{self, Location, Lookup};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::json;

/// Config of ip_location.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the IP address, e.g. `_LastIP`.
    pub ip_field: String,
    /// Field for the city.
    pub city_field: Option<String>,
    /// Field for the state or region name (e.g. `Texas`).
    pub state_field: Option<String>,
    /// Field for the country name.
    pub country_field: Option<String>,
    /// Field for the postal code.
    pub zip_field: Option<String>,
    /// Field for the IANA time zone.
    pub timezone_field: Option<String>,
    /// Field for `lat,lon`.
    pub latlon_field: Option<String>,
    /// Field for the ISO 3166-1 alpha-2 country code.
    pub country_code_field: Option<String>,
    /// Replace values the contact already has; default true.
    #[serde(default = "default_true")]
    pub overwrite: bool,
}

impl Config {
    /// (config name, target field, value) for every configured target.
    fn targets(&self, l: &Location) -> Vec<(&str, String)> {
        let latlon = format!("{},{}", l.lat, l.lon);
        [
            (&self.city_field, l.city.clone()),
            (&self.state_field, l.region_name.clone()),
            (&self.country_field, l.country.clone()),
            (&self.zip_field, l.zip.clone()),
            (&self.timezone_field, l.timezone.clone()),
            (&self.latlon_field, latlon),
            (&self.country_code_field, l.country_code.clone()),
        ]
        .into_iter()
        .filter_map(|(f, v)| f.as_deref().map(|f| (f.trim(), v)))
        .collect()
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.ip_field.trim().is_empty(),
            "ip_field",
            "must not be empty",
        );
        for (name, v) in [
            ("city_field", &self.city_field),
            ("state_field", &self.state_field),
            ("country_field", &self.country_field),
            ("zip_field", &self.zip_field),
            ("timezone_field", &self.timezone_field),
            ("latlon_field", &self.latlon_field),
            ("country_code_field", &self.country_code_field),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                name,
                "must not be empty",
            );
        }
        finish(errors)
    }
}

/// The ip_location helper.
pub struct IpLocation;

impl Helper for IpLocation {
    const NAME: &'static str = "ip_location";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Geolocates the IP address in a field and writes city, state, country and postal code.";
    const EXAMPLE_CONFIG: &'static str = r#"{"ip_field": "_LastIP", "city_field": "city", "state_field": "state", "country_field": "country", "zip_field": "postal_code"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "status",
        "ip_address",
        "city",
        "state",
        "country",
        "country_code",
        "zip",
        "latitude",
        "longitude",
        "timezone",
        "isp",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(IpLocationStep(config)))
    }
}

struct IpLocationStep(Config);

#[async_trait::async_trait]
impl AsyncStep for IpLocationStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let Some(raw) = contact.field(c.ip_field.trim()) else {
            return Ok(
                Outcome::ok(format!("{} is empty; nothing to look up", c.ip_field))
                    .with("status", "empty"),
            );
        };
        let ip = match geo::parse_ip(raw) {
            Ok(ip) => ip,
            Err(e) => {
                return Ok(Outcome::failed(e.to_string())
                    .with("status", "invalid")
                    .with("ip_address", raw.trim()));
            }
        };
        let location = match geo::locate(ctx, ip).await? {
            Lookup::Found(l) => l,
            Lookup::Reserved => {
                return Ok(Outcome::ok(format!(
                    "{ip} is a private or reserved address; nothing written"
                ))
                .with("status", "reserved")
                .with("ip_address", ip.to_string()));
            }
            Lookup::Unknown(why) => {
                return Ok(Outcome::failed(format!("{ip} could not be located: {why}"))
                    .with("status", "unknown")
                    .with("ip_address", ip.to_string()));
            }
        };
        let l = &location;
        let mut out = Outcome::ok(format!(
            "{ip} is in {}, {}, {}",
            l.city, l.region_name, l.country
        ))
        .with("status", "found")
        .with("ip_address", ip.to_string())
        .with("city", l.city.clone())
        .with("state", l.region_name.clone())
        .with("country", l.country.clone())
        .with("country_code", l.country_code.clone())
        .with("zip", l.zip.clone())
        .with("latitude", json!(l.lat))
        .with("longitude", json!(l.lon))
        .with("timezone", l.timezone.clone())
        .with("isp", l.isp.clone());
        for (field, value) in c.targets(l) {
            if value.trim().is_empty() {
                continue;
            }
            if !c.overwrite && contact.field(field).is_some() {
                out = out.log(format!("{field} already has a value; kept."));
                continue;
            }
            out = out.set_field(contact, field, value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn answer() -> serde_json::Value {
        json!({"status": "success", "country": "United States", "countryCode": "US", "region": "CA",
               "regionName": "California", "city": "Mountain View", "zip": "94043", "lat": 37.4,
               "lon": -122.1, "timezone": "America/Los_Angeles", "isp": "Google", "query": "8.8.8.8"})
    }

    fn all_fields() -> serde_json::Value {
        json!({"ip_field": "_LastIP", "city_field": "city", "state_field": "state", "country_field": "country",
               "zip_field": "zip", "timezone_field": "tz", "latlon_field": "ll", "country_code_field": "cc"})
    }

    #[tokio::test]
    async fn writes_every_configured_field() {
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 200, answer())]).await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let c = contact(&[("_LastIP", " 8.8.8.8 "), ("city", "Old")], &[]);
        let out = env.run(&IpLocation, all_fields(), &c).await.unwrap();
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![
                set("city", "Mountain View"),
                set("state", "California"),
                set("country", "United States"),
                set("zip", "94043"),
                set("tz", "America/Los_Angeles"),
                set("ll", "37.4,-122.1"),
                set("cc", "US"),
            ]
        );
        assert_eq!(out.output["status"], "found");
        assert_eq!(out.output["latitude"], json!(37.4));
        assert_eq!(out.output["isp"], "Google");
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/json/8.8.8.8")
        );
    }

    #[tokio::test]
    async fn keeps_existing_values_without_overwrite_and_skips_empty_answers() {
        let mut a = answer();
        a["zip"] = json!("");
        let mock = MockVendor::start(&[("GET", "/json/2001:4860:4860::8888", 200, a)]).await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let mut cfg = all_fields();
        cfg["overwrite"] = json!(false);
        let c = contact(
            &[
                ("_LastIP", "2001:4860:4860::8888"),
                ("city", "Old"),
                ("cc", "US"),
            ],
            &[],
        );
        let out = env.run(&IpLocation, cfg, &c).await.unwrap();
        let written: Vec<&str> = out.changes.iter().map(|ch| ch.target()).collect();
        assert_eq!(written, ["state", "country", "tz", "ll"]);
        assert!(
            out.logs
                .iter()
                .any(|l| l.contains("city already has a value"))
        );
    }

    #[tokio::test]
    async fn empty_invalid_and_reserved_addresses_are_not_looked_up() {
        let mock = MockVendor::start(&[]).await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let run = async |ip: &str| {
            let c = contact(&[("_LastIP", ip)], &[]);
            env.run(&IpLocation, all_fields(), &c).await.unwrap()
        };
        let empty = run(" ").await;
        assert!(empty.success && empty.changes.is_empty());
        assert_eq!(empty.output["status"], "empty");
        let invalid = run("999.1.1.1").await;
        assert!(!invalid.success && invalid.changes.is_empty());
        assert_eq!(invalid.output["status"], "invalid");
        for ip in ["10.1.2.3", "192.168.0.9", "::1"] {
            let out = run(ip).await;
            assert!(out.success && out.changes.is_empty(), "{ip}");
            assert_eq!(out.output["status"], "reserved");
        }
        assert!(mock.received().is_empty());
    }

    #[tokio::test]
    async fn service_failures() {
        let fail = json!({"status": "fail", "message": "invalid query"});
        let mock = MockVendor::start(&[("GET", "/json/1.1.1.1", 200, fail)]).await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let c = contact(&[("_LastIP", "1.1.1.1")], &[]);
        let out = env.run(&IpLocation, all_fields(), &c).await.unwrap();
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(out.output["status"], "unknown");
        mock.route("GET", "/json/1.1.1.1", 429, json!({}));
        let err = env.run(&IpLocation, all_fields(), &c).await.unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        mock.route("GET", "/json/1.1.1.1", 403, json!({}));
        let err = env.run(&IpLocation, all_fields(), &c).await.unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn dry_run_still_looks_up_and_rerun_writes_nothing() {
        let mock = MockVendor::start(&[("GET", "/json/8.8.8.8", 200, answer())]).await;
        let mut env = Env::new().vendor("ip_api", &mock.base);
        env.dry_run = true;
        let cfg = json!({"ip_field": "_LastIP", "city_field": "city"});
        let c = contact(&[("_LastIP", "8.8.8.8"), ("city", "Mountain View")], &[]);
        let out = env.run(&IpLocation, cfg, &c).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(mock.received().len(), 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &IpLocation,
            json!({"ip_field": " ", "city_field": "", "latlon_field": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["ip_field", "city_field", "latlon_field"]);
        assert!(!config_errors(&IpLocation, json!({"city_field": "city"})).is_empty());
    }
}
