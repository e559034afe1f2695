//! IP geolocation shared by ip_location, ip_notifications, ip_redirects and route_it_geo:
//! one client for the ip-api.com JSON API (`GET /json/{ip}`), which answers
//! `{"status": "success", "country", "countryCode", "region", "regionName", "city",
//! "zip", "lat", "lon", "timezone", "isp", "query"}` or `{"status": "fail", "message"}`.
//! Private and reserved addresses are answered locally as `reserved`, never sent out.

use super::{Ctx, StepError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Where an IP address is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The address looked up.
    pub ip: String,
    /// Country name.
    pub country: String,
    /// ISO 3166-1 alpha-2 code.
    pub country_code: String,
    /// Region code (e.g. `TX`).
    pub region: String,
    /// Region name (e.g. `Texas`).
    pub region_name: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub zip: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// IANA time zone.
    pub timezone: String,
    /// Internet service provider.
    pub isp: String,
}

/// The answer of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Located.
    Found(Box<Location>),
    /// A private, loopback or otherwise reserved address: nothing to look up.
    Reserved,
    /// The service could not locate a public address.
    Unknown(String),
}

/// Parses `raw` as an IP address, trimming whitespace.
///
/// # Errors
/// [`StepError::Input`] for anything that is not an IPv4 or IPv6 address.
pub fn parse_ip(raw: &str) -> Result<IpAddr, StepError> {
    raw.trim()
        .parse()
        .map_err(|_| StepError::Input(format!("{raw:?} is not an IP address")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    country_code: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    region_name: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    zip: String,
    #[serde(default)]
    lat: f64,
    #[serde(default)]
    lon: f64,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    isp: String,
}

/// Looks `ip` up through the `ip_api` vendor.
///
/// # Errors
/// [`StepError::External`] when the service fails (retryable for 429/5xx).
pub async fn locate(ctx: &Ctx<'_>, ip: IpAddr) -> Result<Lookup, StepError> {
    if crate::http::is_internal(ip) {
        return Ok(Lookup::Reserved);
    }
    let url = ctx.vendors.url(
        "ip_api",
        &format!("/json/{ip}?fields=status,message,country,countryCode,region,regionName,city,zip,lat,lon,timezone,isp,query"),
    );
    let resp = ctx.http.send(reqwest::Method::GET, &url, |r| r).await?;
    let a: Answer = serde_json::from_slice(&resp.body).map_err(|e| StepError::External {
        message: format!("ip-api answered with unexpected JSON: {e}"),
        retryable: false,
    })?;
    if a.status != "success" {
        return Ok(Lookup::Unknown(a.message));
    }
    Ok(Lookup::Found(Box::new(Location {
        ip: ip.to_string(),
        country: a.country,
        country_code: a.country_code,
        region: a.region,
        region_name: a.region_name,
        city: a.city,
        zip: a.zip,
        lat: a.lat,
        lon: a.lon,
        timezone: a.timezone,
        isp: a.isp,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor};
    use serde_json::json;

    #[tokio::test]
    async fn locates_public_addresses_and_skips_private_ones() {
        let mock = MockVendor::start(&[(
            "GET",
            "/json/8.8.8.8",
            200,
            json!({"status": "success", "country": "United States", "countryCode": "US", "region": "CA", "regionName": "California", "city": "Mountain View", "zip": "94043", "lat": 37.4, "lon": -122.1, "timezone": "America/Los_Angeles", "isp": "Google", "query": "8.8.8.8"}),
        )])
        .await;
        let env = Env::new().vendor("ip_api", &mock.base);
        let ctx = env.ctx();
        let Lookup::Found(l) = locate(&ctx, parse_ip("8.8.8.8").unwrap()).await.unwrap() else {
            panic!("found")
        };
        assert_eq!(
            (l.city.as_str(), l.region.as_str()),
            ("Mountain View", "CA")
        );
        assert!(mock.single().query.contains("fields="));
        assert_eq!(
            locate(&ctx, parse_ip("10.1.2.3").unwrap()).await.unwrap(),
            Lookup::Reserved
        );
        assert_eq!(mock.received().len(), 1);
        assert!(parse_ip("999.1.1.1").is_err());
    }
}
