//! phone_lookup: validates and normalises the phone number in `phone_field` and branches
//! on `valid`, `invalid` or `empty` with that status's goal and/or tag (the other status
//! tags are removed, so a contact carries one). Validation is local by default: an
//! extension (`x123`, `ext. 123`, `#123`) is split off, vanity letters become keypad digits,
//! `+`, `00` (and `011` in North America) mark an international number whose calling code
//! is looked up, and other numbers are read in the default region `country_code`, whose
//! trunk prefix is dropped. The national number must have the length its country allows
//! (North American numbers also need area and exchange codes starting 2–9); these are
//! digit-count rules per country, not full numbering plans, and numbers of countries
//! outside the table are accepted at 8–15 digits. A valid number can be saved as `e164`
//! (default), `national` or `digits`. With `use_carrier_lookup` a locally valid number is
//! also checked with Twilio Lookup v2 (line type intelligence, HTTP basic auth with
//! `account_sid`/`auth_token`); Twilio's verdict wins and the line type can be saved. The
//! lookup is billed, so it runs once per execution (journaled) and not in a dry run.
//! Idempotent.

use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish, once,
};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::LazyLock;

/// How a valid number is saved.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `+15125550100` (default).
    #[default]
    E164,
    /// `(512) 555-0100`, or the trunk prefix and national number elsewhere.
    National,
    /// `15125550100`.
    Digits,
}

/// Config of phone_lookup.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the number; default `Phone1`.
    #[serde(default = "default_phone_field")]
    pub phone_field: String,
    /// Default region (ISO 3166-1 alpha-2) of numbers without a calling code; default `US`.
    #[serde(default = "default_country")]
    pub country_code: String,
    /// Goal achieved for a valid number.
    pub valid_goal: Option<String>,
    /// Goal achieved for an invalid number.
    pub invalid_goal: Option<String>,
    /// Goal achieved for an empty field.
    pub empty_goal: Option<String>,
    /// Tag applied for a valid number.
    pub valid_tag: Option<String>,
    /// Tag applied for an invalid number.
    pub invalid_tag: Option<String>,
    /// Tag applied for an empty field.
    pub empty_tag: Option<String>,
    /// Field that receives the formatted valid number.
    pub save_formatted_to: Option<String>,
    /// Format of `save_formatted_to`: `e164` (default), `national` or `digits`.
    #[serde(default)]
    pub format: Format,
    /// Also check valid numbers with Twilio Lookup; default false.
    #[serde(default)]
    pub use_carrier_lookup: bool,
    /// Field that receives Twilio's line type (`mobile`, `landline`, `nonFixedVoip`, ...).
    pub save_line_type_to: Option<String>,
    /// Twilio account SID (or API key SID) for the lookup.
    pub account_sid: Option<String>,
    /// Twilio auth token (or API key secret) for the lookup.
    pub auth_token: Option<String>,
}

fn default_phone_field() -> String {
    "Phone1".into()
}
fn default_country() -> String {
    "US".into()
}

/// A country's numbering: region, calling code, national number lengths, trunk prefix.
struct Plan {
    region: &'static str,
    code: &'static str,
    min: usize,
    max: usize,
    trunk: &'static str,
}

const fn plan(
    region: &'static str,
    code: &'static str,
    min: usize,
    max: usize,
    trunk: &'static str,
) -> Plan {
    Plan {
        region,
        code,
        min,
        max,
        trunk,
    }
}

/// Countries whose numbers are checked by length; the first of a shared code is the
/// region reported for international input.
#[rustfmt::skip]
const PLANS: &[Plan] = &[
    plan("US", "1", 10, 10, "1"), plan("CA", "1", 10, 10, "1"),
    plan("GB", "44", 9, 10, "0"), plan("IE", "353", 7, 9, "0"), plan("AU", "61", 9, 9, "0"),
    plan("NZ", "64", 8, 10, "0"), plan("DE", "49", 6, 11, "0"), plan("FR", "33", 9, 9, "0"),
    plan("ES", "34", 9, 9, ""), plan("IT", "39", 6, 11, ""), plan("NL", "31", 9, 9, "0"),
    plan("BE", "32", 8, 9, "0"), plan("CH", "41", 9, 9, "0"), plan("AT", "43", 4, 13, "0"),
    plan("SE", "46", 7, 9, "0"), plan("NO", "47", 8, 8, ""), plan("DK", "45", 8, 8, ""),
    plan("FI", "358", 5, 10, "0"), plan("PT", "351", 9, 9, ""), plan("PL", "48", 9, 9, ""),
    plan("MX", "52", 10, 10, ""), plan("BR", "55", 10, 11, "0"), plan("AR", "54", 10, 10, "0"),
    plan("IN", "91", 10, 10, "0"), plan("JP", "81", 9, 10, "0"), plan("CN", "86", 9, 11, "0"),
    plan("SG", "65", 8, 8, ""), plan("HK", "852", 8, 8, ""), plan("PH", "63", 10, 10, "0"),
    plan("ZA", "27", 9, 9, "0"), plan("AE", "971", 8, 9, "0"), plan("IL", "972", 8, 9, "0"),
    plan("NG", "234", 8, 10, "0"),
];

fn plan_for(region: &str) -> Option<&'static Plan> {
    PLANS
        .iter()
        .find(|p| p.region.eq_ignore_ascii_case(region.trim()))
}

impl Config {
    fn outputs<'a>(&'a self, status: &str) -> (Option<&'a str>, Option<&'a str>) {
        let s = |o: &'a Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match status {
            "valid" => (s(&self.valid_tag), s(&self.valid_goal)),
            "invalid" => (s(&self.invalid_tag), s(&self.invalid_goal)),
            _ => (s(&self.empty_tag), s(&self.empty_goal)),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.phone_field.trim().is_empty(),
            "phone_field",
            "must not be empty",
        );
        check(
            &mut errors,
            plan_for(&self.country_code).is_none(),
            "country_code",
            "is not a supported region (ISO code such as US, GB, AU)",
        );
        for (name, v) in [
            ("valid_goal", &self.valid_goal),
            ("invalid_goal", &self.invalid_goal),
            ("empty_goal", &self.empty_goal),
            ("valid_tag", &self.valid_tag),
            ("invalid_tag", &self.invalid_tag),
            ("empty_tag", &self.empty_tag),
            ("save_formatted_to", &self.save_formatted_to),
            ("save_line_type_to", &self.save_line_type_to),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                name,
                "must not be empty",
            );
        }
        let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        for (name, v) in [
            ("account_sid", &self.account_sid),
            ("auth_token", &self.auth_token),
        ] {
            check(
                &mut errors,
                self.use_carrier_lookup && missing(v),
                name,
                "is required with use_carrier_lookup",
            );
        }
        check(
            &mut errors,
            self.save_line_type_to.is_some() && !self.use_carrier_lookup,
            "save_line_type_to",
            "needs use_carrier_lookup",
        );
        finish(errors)
    }
}

/// The phone_lookup helper.
pub struct PhoneLookup;

impl Helper for PhoneLookup {
    const NAME: &'static str = "phone_lookup";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Validates and normalises a phone number and branches on valid, invalid or empty.";
    const EXAMPLE_CONFIG: &'static str = r#"{"phone_field": "phone", "valid_goal": "phonevalid", "invalid_goal": "phoneinvalid", "empty_goal": "phoneempty", "save_formatted_to": "_PhoneE164"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "status",
        "number",
        "country_code",
        "formatted",
        "extension",
        "line_type",
        "carrier",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::Fields, Capability::Tags, Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(PhoneLookupStep(config)))
    }
}

/// A locally valid number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Phone {
    /// The calling code's region, or "" for a code outside [`PLANS`].
    region: &'static str,
    code: String,
    national: String,
    extension: Option<String>,
}

impl Phone {
    fn e164(&self) -> String {
        format!("+{}{}", self.code, self.national)
    }
    fn format(&self, f: Format) -> String {
        match f {
            Format::E164 => self.e164(),
            Format::Digits => format!("{}{}", self.code, self.national),
            Format::National if self.code == "1" => {
                let n = &self.national;
                format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])
            }
            Format::National => {
                let trunk = PLANS
                    .iter()
                    .find(|p| p.code == self.code)
                    .map_or("", |p| p.trunk);
                format!("{trunk}{}", self.national)
            }
        }
    }
}

static EXTENSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*(?:ext\.?|extension|x|#)\s*(\d{1,6})\s*$")
        .expect("a valid constant pattern")
});

/// The keypad digit of a vanity letter.
fn keypad(c: char) -> Option<char> {
    let d = match c.to_ascii_uppercase() {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    };
    Some(d)
}

/// Parses `raw` in the default region `home`; `None` when it is not a valid number.
fn parse(raw: &str, home: &Plan) -> Option<Phone> {
    let mut text = raw.trim();
    let mut extension = None;
    if let Some(m) = EXTENSION.captures(text) {
        let whole = m.get(0)?;
        extension = m.get(1).map(|e| e.as_str().to_owned());
        text = &text[..whole.start()];
    }
    let plus = text.starts_with('+');
    let mut digits = String::new();
    for (i, c) in text.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '(' | ')' | '-' | '.' | '/' => {}
            c if c.is_ascii_alphabetic() && !digits.is_empty() => digits.push(keypad(c)?),
            _ => return None,
        }
    }
    let international = if plus {
        Some(digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else if home.code == "1" {
        digits.strip_prefix("011")
    } else {
        None
    };
    let (region, code, national) = match international {
        Some(d) => {
            let found = (1..=3).find_map(|n| {
                let code = d.get(..n)?;
                PLANS.iter().find(|p| p.code == code).map(|p| (p, &d[n..]))
            });
            match found {
                Some((p, rest)) => {
                    // "+44 (0)20 ..." keeps a trunk 0 people write in brackets.
                    let rest = match rest.strip_prefix(p.trunk) {
                        Some(r) if !p.trunk.is_empty() && rest.len() > p.max => r,
                        _ => rest,
                    };
                    (p.region, p.code.to_owned(), rest.to_owned())
                }
                None if (8..=15).contains(&d.len()) => {
                    return Some(Phone {
                        region: "",
                        code: String::new(),
                        national: d.to_owned(),
                        extension,
                    });
                }
                None => return None,
            }
        }
        None => {
            let national =
                if digits.len() == home.code.len() + home.max && digits.starts_with(home.code) {
                    &digits[home.code.len()..]
                } else {
                    match digits.strip_prefix(home.trunk) {
                        Some(r) if !home.trunk.is_empty() && r.len() >= home.min => r,
                        _ => &digits,
                    }
                };
            (home.region, home.code.to_owned(), national.to_owned())
        }
    };
    let p = PLANS.iter().find(|p| p.code == code)?;
    if !(p.min..=p.max).contains(&national.len()) || code.len() + national.len() > 15 {
        return None;
    }
    if code == "1" {
        let b = national.as_bytes();
        if b[0] < b'2' || b[3] < b'2' {
            return None;
        }
    }
    let region = if home.code == code {
        home.region
    } else {
        region
    };
    Some(Phone {
        region,
        code,
        national,
        extension,
    })
}

#[derive(Deserialize)]
struct LookupAnswer {
    #[serde(default)]
    valid: Option<bool>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    line_type_intelligence: Option<LineType>,
}

#[derive(Deserialize)]
struct LineType {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    carrier_name: Option<String>,
}

struct PhoneLookupStep(Config);

impl PhoneLookupStep {
    /// Twilio Lookup v2 for `e164`: `{valid, country_code, line_type, carrier}`.
    async fn carrier(&self, ctx: &Ctx<'_>, e164: &str) -> Result<Option<Value>, StepError> {
        let c = &self.0;
        let sid = c.account_sid.as_deref().unwrap_or_default().trim();
        let token = c.auth_token.as_deref().unwrap_or_default().trim();
        let url = ctx.vendors.url(
            "twilio_lookup",
            &format!("/v2/PhoneNumbers/{e164}?Fields=line_type_intelligence"),
        );
        once(ctx, "twilio_lookup", || async move {
            let resp = ctx
                .http
                .send(reqwest::Method::GET, &url, |r| {
                    r.basic_auth(sid, Some(token))
                })
                .await?;
            let a: LookupAnswer =
                serde_json::from_slice(&resp.body).map_err(|e| StepError::External {
                    message: format!("Twilio Lookup answered with unexpected JSON: {e}"),
                    retryable: false,
                })?;
            let lt = a.line_type_intelligence;
            Ok(json!({
                "valid": a.valid.unwrap_or(true),
                "country_code": a.country_code,
                "line_type": lt.as_ref().and_then(|l| l.kind.clone()),
                "carrier": lt.and_then(|l| l.carrier_name),
            }))
        })
        .await
    }
}

#[async_trait::async_trait]
impl AsyncStep for PhoneLookupStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let home = plan_for(&c.country_code).unwrap_or(&PLANS[0]);
        let raw = contact.field(c.phone_field.trim()).map(str::trim);
        let phone = raw.and_then(|r| parse(r, home));
        let mut status = match (raw, &phone) {
            (None, _) => "empty",
            (Some(_), None) => "invalid",
            (Some(_), Some(_)) => "valid",
        };
        let mut out = Outcome::ok("").with("number", raw.unwrap_or_default());
        if let Some(p) = &phone {
            out = out
                .with("country_code", p.region)
                .with("formatted", p.format(c.format));
            if let Some(x) = &p.extension {
                out = out.with("extension", x.clone());
            }
            if c.use_carrier_lookup {
                match self.carrier(ctx, &p.e164()).await? {
                    None => out = out.log(format!("Would look up {} with Twilio.", p.e164())),
                    Some(answer) => {
                        if answer["valid"] == false {
                            status = "invalid";
                        }
                        for key in ["line_type", "carrier"] {
                            out = out.with(key, answer[key].clone());
                        }
                    }
                }
            }
        }
        out.message = match (status, &phone) {
            ("empty", _) => format!("{} is empty", c.phone_field),
            ("valid", Some(p)) => format!("{} is a valid number", p.e164()),
            _ => format!("{} is not a valid phone number", c.phone_field),
        };
        out = out.with("status", status);
        if let (Some(p), "valid") = (&phone, status) {
            if let Some(f) = c.save_formatted_to.as_deref().map(str::trim) {
                out = out.set_field(contact, f, p.format(c.format));
            }
            let line_type = out
                .output
                .get("line_type")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let (Some(f), Some(lt)) = (c.save_line_type_to.as_deref().map(str::trim), line_type)
            {
                out = out.set_field(contact, f, lt);
            }
        }
        for other in ["valid", "invalid", "empty"]
            .into_iter()
            .filter(|s| *s != status)
        {
            if let (Some(t), _) = c.outputs(other)
                && contact.has_tag(t)
            {
                out = out.change(Change::RemoveTag {
                    tag_id: t.to_owned(),
                });
            }
        }
        let (tag, goal) = c.outputs(status);
        Ok(out.branch(contact, tag, goal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn us() -> &'static Plan {
        plan_for("US").unwrap()
    }

    fn e164(raw: &str, home: &str) -> Option<String> {
        parse(raw, plan_for(home).unwrap()).map(|p| p.e164())
    }

    #[test]
    fn extension_pattern_compiles() {
        assert!(EXTENSION.is_match("555 x12"));
    }

    #[test]
    fn local_parsing_and_normalisation() {
        let cases = [
            ("(512) 555-0100", "US", Some("+15125550100")),
            ("1-512-555-0100", "US", Some("+15125550100")),
            ("+1 512.555.0100", "GB", Some("+15125550100")),
            ("011 44 20 7946 0958", "US", Some("+442079460958")),
            ("0044 20 7946 0958", "DE", Some("+442079460958")),
            ("+44 (0)20 7946 0958", "US", Some("+442079460958")),
            ("020 7946 0958", "GB", Some("+442079460958")),
            ("0412 345 678", "AU", Some("+61412345678")),
            ("1-800-FLOWERS", "US", Some("+18003569377")),
            ("+886 2 2345 6789", "US", Some("+886223456789")),
            ("555-0100", "US", None),
            ("(012) 555-0100", "US", None),
            ("512 155 0100", "US", None),
            ("+1 512 555 01001", "US", None),
            ("call me maybe", "US", None),
            ("512-555-0100 or 512-555-0101", "US", None),
            ("+12345", "US", None),
            ("512+555+0100", "US", None),
        ];
        for (raw, home, want) in cases {
            assert_eq!(e164(raw, home).as_deref(), want, "{raw} in {home}");
        }
        let p = parse("512-555-0100 ext. 42", us()).unwrap();
        assert_eq!(
            (p.e164(), p.extension.as_deref()),
            ("+15125550100".into(), Some("42"))
        );
        assert_eq!(
            parse("+1 512 555 0100 x7", us())
                .unwrap()
                .extension
                .as_deref(),
            Some("7")
        );
        assert_eq!(parse("+44 20 7946 0958", us()).unwrap().region, "GB");
        assert_eq!(
            parse("6135550100", plan_for("CA").unwrap()).unwrap().region,
            "CA"
        );
        let p = parse("5125550100", us()).unwrap();
        assert_eq!(p.format(Format::National), "(512) 555-0100");
        assert_eq!(p.format(Format::Digits), "15125550100");
        let gb = parse("+442079460958", us()).unwrap();
        assert_eq!(gb.format(Format::National), "02079460958");
    }

    fn cfg() -> serde_json::Value {
        json!({"phone_field": "Phone1", "valid_goal": "gv", "invalid_goal": "gi", "empty_goal": "ge",
               "valid_tag": "tv", "invalid_tag": "ti", "empty_tag": "te", "save_formatted_to": "p164"})
    }

    #[tokio::test]
    async fn branches_on_valid_invalid_and_empty() {
        let env = Env::new();
        let c = contact(&[("Phone1", "(512) 555-0100")], &["ti"]);
        let out = env.run(&PhoneLookup, cfg(), &c).await.unwrap();
        assert!(out.success);
        assert_eq!(out.output["status"], "valid");
        assert_eq!(out.output["country_code"], "US");
        assert_eq!(
            out.changes,
            vec![
                set("p164", "+15125550100"),
                Change::RemoveTag {
                    tag_id: "ti".into()
                },
                Change::ApplyTag {
                    tag_id: "tv".into()
                },
                Change::AchieveGoal {
                    call_name: "gv".into()
                },
            ]
        );
        let out = env
            .run(&PhoneLookup, cfg(), &contact(&[("Phone1", "12345")], &[]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(out.output["status"], "invalid");
        assert_eq!(
            out.changes,
            vec![
                Change::ApplyTag {
                    tag_id: "ti".into()
                },
                Change::AchieveGoal {
                    call_name: "gi".into()
                }
            ]
        );
        let out = env
            .run(&PhoneLookup, cfg(), &contact(&[("Phone1", "  ")], &["te"]))
            .await
            .unwrap();
        assert_eq!(out.output["status"], "empty");
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "ge".into()
            }]
        );
    }

    #[tokio::test]
    async fn rerun_on_the_result_only_refires_the_goal() {
        let env = Env::new();
        let c = contact(
            &[("Phone1", "+15125550100"), ("p164", "+15125550100")],
            &["tv"],
        );
        let out = env.run(&PhoneLookup, cfg(), &c).await.unwrap();
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "gv".into()
            }]
        );
    }

    fn lookup_cfg() -> serde_json::Value {
        json!({"use_carrier_lookup": true, "account_sid": "AC123", "auth_token": "tok",
               "save_line_type_to": "line", "save_formatted_to": "p", "format": "national", "valid_goal": "gv", "invalid_goal": "gi"})
    }

    const PATH: &str = "/v2/PhoneNumbers/+15125550100";

    fn twilio(valid: bool) -> serde_json::Value {
        json!({"calling_country_code": "1", "country_code": "US", "phone_number": "+15125550100",
               "national_format": "(512) 555-0100", "valid": valid, "validation_errors": [],
               "line_type_intelligence": {"carrier_name": "Verizon Wireless", "error_code": null,
               "mobile_country_code": "310", "mobile_network_code": "012", "type": "mobile"},
               "url": "https://lookups.twilio.com/v2/PhoneNumbers/+15125550100"})
    }

    #[tokio::test]
    async fn carrier_lookup_calls_twilio_once_per_execution() {
        let mock = MockVendor::start(&[("GET", PATH, 200, twilio(true))]).await;
        let env = Env::new().vendor("twilio_lookup", &mock.base);
        // The journal's expiry is set from ctx.now; pin the store's clock to it.
        env.state.set_now(env.now);
        let c = contact(&[("Phone1", "512-555-0100")], &[]);
        let out = env.run(&PhoneLookup, lookup_cfg(), &c).await.unwrap();
        assert_eq!(
            out.changes,
            vec![
                set("p", "(512) 555-0100"),
                set("line", "mobile"),
                Change::AchieveGoal {
                    call_name: "gv".into()
                }
            ]
        );
        assert_eq!(out.output["carrier"], "Verizon Wireless");
        let req = mock.single();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", PATH));
        assert_eq!(req.query, "Fields=line_type_intelligence");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("AC123:tok");
        assert_eq!(
            req.header("authorization"),
            Some(format!("Basic {basic}").as_str())
        );
        assert!(
            !out.logs
                .iter()
                .chain([&out.message])
                .any(|l| l.contains("tok"))
        );
        let again = env.run(&PhoneLookup, lookup_cfg(), &c).await.unwrap();
        assert_eq!(again, out);
        assert_eq!(
            mock.received().len(),
            1,
            "a redelivery reuses the journaled answer"
        );
    }

    #[tokio::test]
    async fn twilio_can_overrule_and_invalid_numbers_are_not_looked_up() {
        let mock = MockVendor::start(&[("GET", PATH, 200, twilio(false))]).await;
        let mut env = Env::new().vendor("twilio_lookup", &mock.base);
        let out = env
            .run(
                &PhoneLookup,
                lookup_cfg(),
                &contact(&[("Phone1", "5125550100")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["status"], "invalid");
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "gi".into()
            }]
        );
        env.execution_id = "exec-2".into();
        let out = env
            .run(
                &PhoneLookup,
                lookup_cfg(),
                &contact(&[("Phone1", "555")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["status"], "invalid");
        assert_eq!(mock.received().len(), 1);
    }

    #[tokio::test]
    async fn dry_run_and_vendor_errors() {
        let mock = MockVendor::start(&[(
            "GET",
            PATH,
            401,
            json!({"code": 20003, "message": "Authenticate"}),
        )])
        .await;
        let mut env = Env::new().vendor("twilio_lookup", &mock.base);
        let c = contact(&[("Phone1", "5125550100")], &[]);
        let err = env.run(&PhoneLookup, lookup_cfg(), &c).await.unwrap_err();
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
        mock.route("GET", PATH, 503, json!({}));
        env.execution_id = "exec-503".into();
        let err = env.run(&PhoneLookup, lookup_cfg(), &c).await.unwrap_err();
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
        let before = mock.received().len();
        env.dry_run = true;
        env.execution_id = "exec-dry".into();
        let out = env.run(&PhoneLookup, lookup_cfg(), &c).await.unwrap();
        assert_eq!(out.output["status"], "valid");
        assert!(out.logs.iter().any(|l| l.contains("Would look up")));
        assert_eq!(mock.received().len(), before);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &PhoneLookup,
            json!({"phone_field": "", "country_code": "XX", "valid_tag": " ", "use_carrier_lookup": true, "auth_token": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "phone_field",
                "country_code",
                "valid_tag",
                "account_sid",
                "auth_token"
            ]
        );
        let line = json!({"save_line_type_to": "line"});
        assert_eq!(
            config_errors(&PhoneLookup, line)[0].field,
            "save_line_type_to"
        );
        assert!(!config_errors(&PhoneLookup, json!({"format": "international"})).is_empty());
        assert!(config_errors(&PhoneLookup, json!({"country_code": "gb"})).is_empty());
    }
}
