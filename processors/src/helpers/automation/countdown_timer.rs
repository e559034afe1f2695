//! countdown_timer: builds a personalised countdown-timer image URL for emails and pages.
//! The deadline is fixed (`standard`, `end_time`), read from a contact date field
//! (`contact_field`), or `evergreen`: the first time this contact's timer is generated
//! plus `add_days`/`add_hours`/`add_minutes`, kept per (instance, contact) in platform
//! state so it never resets. The URL points at `image_base_url` with the deadline and
//! styling as query parameters, signed with HMAC-SHA256 over the query string
//! (`…&sig=<hex>`) using `signing_secret`, which is required: the old rebuild signed with
//! a random secret when none was set, making every URL unverifiable. The image service
//! renders 00:00:00 or `expired_image_url` past the deadline and sends
//! `Cache-Control: no-cache`. Times without an offset are read in `timezone`
//! (default UTC). An empty or unparsable field date fails. Idempotent.

use super::route_it::{check_opt_name, check_url};
use super::route_it_by_day::check_tz;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Where the deadline comes from.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimerType {
    /// `end_time`.
    Standard,
    /// A contact date field.
    ContactField,
    /// First generation plus a duration, per contact.
    Evergreen,
}

/// Config of countdown_timer.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `standard`, `contact_field` or `evergreen`.
    #[serde(alias = "timerType")]
    pub timer_type: TimerType,
    /// The deadline of `standard`: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in `timezone`.
    #[serde(alias = "endTime")]
    pub end_time: Option<String>,
    /// The date field of `contact_field`.
    #[serde(alias = "contactField")]
    pub contact_field: Option<String>,
    /// Evergreen days.
    #[serde(default, alias = "addDays")]
    pub add_days: u32,
    /// Evergreen hours.
    #[serde(default, alias = "addHours")]
    pub add_hours: u32,
    /// Evergreen minutes.
    #[serde(default, alias = "addMinutes")]
    pub add_minutes: u32,
    /// Background colour; default `#000000`.
    #[serde(default = "default_bg", alias = "backgroundColor")]
    pub background_color: String,
    /// Digit colour; default `#FFFFFF`.
    #[serde(default = "default_digit", alias = "digitColor")]
    pub digit_color: String,
    /// Label colour; default `#CCCCCC`.
    #[serde(default = "default_label", alias = "labelColor")]
    pub label_color: String,
    /// Transparent background; default false.
    #[serde(default, alias = "transparentBg")]
    pub transparent_bg: bool,
    /// Text shown once expired.
    pub expired_text: Option<String>,
    /// Image shown once expired.
    pub expired_image_url: Option<String>,
    /// Field that receives the URL.
    pub save_url_to: Option<String>,
    /// Time zone of times without an offset; default `UTC`.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// The image endpoint, e.g. `https://timers.example.com/v1/countdown.gif`.
    pub image_base_url: String,
    /// HMAC key the image service verifies with; at least 16 characters.
    pub signing_secret: String,
}

fn default_bg() -> String {
    "#000000".to_owned()
}
fn default_digit() -> String {
    "#FFFFFF".to_owned()
}
fn default_label() -> String {
    "#CCCCCC".to_owned()
}
fn default_tz() -> String {
    "UTC".to_owned()
}

/// Parses a date or date-time; one without an offset is read in `tz`.
fn parse_deadline(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y%m%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.to_utc())
}

fn is_hex_colour(s: &str) -> bool {
    let h = s.trim().trim_start_matches('#');
    h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit())
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The longest evergreen countdown: ten years, far inside chrono's range.
const MAX_DAYS: u32 = 3650;

impl Config {
    fn tz(&self) -> chrono_tz::Tz {
        self.timezone.trim().parse().unwrap_or(chrono_tz::UTC)
    }

    fn evergreen(&self) -> Duration {
        Duration::days(i64::from(self.add_days))
            + Duration::hours(i64::from(self.add_hours))
            + Duration::minutes(i64::from(self.add_minutes))
    }

    /// The signed URL for `deadline`.
    fn url(&self, deadline: DateTime<Utc>) -> String {
        let colour = |c: &str| c.trim().trim_start_matches('#').to_uppercase();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("deadline", &deadline.timestamp().to_string())
            .append_pair("bg", &colour(&self.background_color))
            .append_pair("digit", &colour(&self.digit_color))
            .append_pair("label", &colour(&self.label_color))
            .append_pair("transparent", if self.transparent_bg { "1" } else { "0" });
        if let Some(t) = &self.expired_text {
            q.append_pair("expired_text", t);
        }
        if let Some(u) = &self.expired_image_url {
            q.append_pair("expired_image", u.trim());
        }
        let query = q.finish();
        let sig = hex::encode(hmac_sha256(
            self.signing_secret.as_bytes(),
            query.as_bytes(),
        ));
        format!("{}?{query}&sig={sig}", self.image_base_url.trim())
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let t = self.timer_type;
        check_tz(&mut errors, "timezone", &self.timezone);
        match (t, &self.end_time) {
            (TimerType::Standard, None) => {
                errors.push(FieldError::new("end_time", "is required for standard"))
            }
            (TimerType::Standard, Some(e)) => check(
                &mut errors,
                parse_deadline(e, self.tz()).is_none(),
                "end_time",
                "is not a date-time (RFC 3339 or YYYY-MM-DD HH:MM)",
            ),
            _ => {}
        }
        check(
            &mut errors,
            t == TimerType::ContactField
                && self
                    .contact_field
                    .as_ref()
                    .is_none_or(|f| f.trim().is_empty()),
            "contact_field",
            "is required for contact_field",
        );
        check(
            &mut errors,
            t == TimerType::Evergreen && self.evergreen() <= Duration::zero(),
            "add_days",
            "evergreen needs add_days, add_hours or add_minutes",
        );
        for (field, value, max) in [
            ("add_days", self.add_days, MAX_DAYS),
            ("add_hours", self.add_hours, MAX_DAYS * 24),
            ("add_minutes", self.add_minutes, MAX_DAYS * 24 * 60),
        ] {
            check(
                &mut errors,
                value > max,
                field,
                &format!("must be at most {max} ({MAX_DAYS} days)"),
            );
        }
        for (field, c) in [
            ("background_color", &self.background_color),
            ("digit_color", &self.digit_color),
            ("label_color", &self.label_color),
        ] {
            check(
                &mut errors,
                !is_hex_colour(c),
                field,
                "must be a #RRGGBB colour",
            );
        }
        match url::Url::parse(self.image_base_url.trim()) {
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                errors.push(FieldError::new(
                    "image_base_url",
                    "must not have a query or fragment",
                ));
            }
            _ => check_url(&mut errors, "image_base_url", &self.image_base_url),
        }
        if let Some(u) = &self.expired_image_url {
            check_url(&mut errors, "expired_image_url", u);
        }
        check(
            &mut errors,
            self.signing_secret.trim().chars().count() < 16,
            "signing_secret",
            "is required and must be at least 16 characters",
        );
        check_opt_name(&mut errors, "save_url_to", self.save_url_to.as_ref());
        finish(errors)
    }
}

/// The countdown_timer helper.
pub struct CountdownTimer;

impl Helper for CountdownTimer {
    const NAME: &'static str = "countdown_timer";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Builds a signed, per-contact countdown-timer image URL with a fixed, field-based or evergreen deadline.";
    const EXAMPLE_CONFIG: &'static str = r##"{"timer_type": "evergreen", "add_days": 3, "background_color": "#112233", "save_url_to": "_TimerUrl", "image_base_url": "https://timers.example.com/v1/countdown.gif", "signing_secret": "change-me-to-a-long-random-secret"}"##;
    const OUTPUTS: &'static [&'static str] = &["timer_url", "expires_at", "timer_type", "expired"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(CountdownTimerStep(config)))
    }
}

struct CountdownTimerStep(Config);

#[async_trait::async_trait]
impl AsyncStep for CountdownTimerStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let (deadline, kind) = match c.timer_type {
            TimerType::Standard => (
                c.end_time
                    .as_deref()
                    .and_then(|e| parse_deadline(e, c.tz())),
                "standard",
            ),
            TimerType::ContactField => {
                let field = c.contact_field.as_deref().unwrap_or("").trim();
                let Some(raw) = contact.field(field) else {
                    return Ok(Outcome::failed(format!("{field} is empty: no deadline")));
                };
                let Some(d) = parse_deadline(raw, c.tz()) else {
                    return Ok(Outcome::failed(format!("{field} is not a date: {raw:?}")));
                };
                (Some(d), "contact_field")
            }
            TimerType::Evergreen => {
                let key = format!("countdown_timer/{}/{}", ctx.instance, contact.id);
                let Some(deadline) = ctx.now.checked_add_signed(c.evergreen()) else {
                    return Err(StepError::Input(format!(
                        "the evergreen deadline is past the calendar's end: {} days from now",
                        c.evergreen().num_days()
                    )));
                };
                let fresh = json!({"deadline": deadline.to_rfc3339()});
                let (stored, _) = ctx.state.put_if_absent(&key, fresh, None).await?;
                let d = stored["deadline"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.to_utc());
                (d, "evergreen")
            }
        };
        let Some(deadline) = deadline else {
            return Err(StepError::Input(
                "the deadline could not be determined".into(),
            ));
        };
        let url = c.url(deadline);
        let expired = deadline <= ctx.now;
        let mut out = Outcome::ok(if expired {
            format!("Timer expired at {}", deadline.to_rfc3339())
        } else {
            format!("Timer counts down to {}", deadline.to_rfc3339())
        })
        .with("timer_url", url.clone())
        .with("expires_at", deadline.to_rfc3339())
        .with("timer_type", kind)
        .with("expired", expired);
        if let Some(f) = c.save_url_to.as_deref() {
            out = out.set_field(contact, f.trim(), url);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evergreen_lengths_are_bounded_by_validation() {
        let h = crate::helpers::find("countdown_timer").unwrap();
        let with = |field: &str, n: u64| {
            let mut c: serde_json::Value =
                serde_json::from_str(<CountdownTimer as Helper>::EXAMPLE_CONFIG).unwrap();
            c[field] = json!(n);
            c
        };
        for field in ["add_days", "add_hours", "add_minutes"] {
            let err = h.build_json(&with(field, 4_000_000_000)).err().unwrap();
            assert!(
                err.errors
                    .iter()
                    .any(|e| e.field == field && e.message.contains("at most")),
                "{err:?}"
            );
        }
        assert!(h.build_json(&with("add_days", 3650)).is_ok());
    }
    use crate::helpers::testing::{Env, config_errors, contact, fixed_now, set};
    use serde_json::Value;

    const SECRET: &str = "0123456789abcdef-secret";

    fn cfg(extra: Value) -> Value {
        let mut base =
            json!({"image_base_url": "https://t.example.com/c.gif", "signing_secret": SECRET});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    /// The query's deadline, after checking the signature like the image service would.
    fn verified_deadline(url: &str) -> i64 {
        let (_, query) = url.split_once('?').unwrap();
        let (signed, sig) = query.rsplit_once("&sig=").unwrap();
        let expected = hex::encode(hmac_sha256(SECRET.as_bytes(), signed.as_bytes()));
        assert_eq!(sig, expected, "signature");
        let pairs: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(signed.as_bytes())
                .into_owned()
                .collect();
        pairs["deadline"].parse().unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long_key = [0xaa_u8; 131];
        assert_eq!(
            hex::encode(hmac_sha256(
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[tokio::test]
    async fn standard_deadlines_are_signed_and_read_in_the_time_zone() {
        let c = cfg(
            json!({"timer_type": "standard", "end_time": "2026-03-20 18:00", "timezone": "America/New_York", "expired_text": "Too late!", "save_url_to": "u"}),
        );
        let out = Env::new()
            .run(&CountdownTimer, c, &contact(&[], &[]))
            .await
            .unwrap();
        let url = out.output["timer_url"].as_str().unwrap();
        assert!(url.starts_with("https://t.example.com/c.gif?deadline="));
        assert!(url.contains(
            "bg=000000&digit=FFFFFF&label=CCCCCC&transparent=0&expired_text=Too+late%21"
        ));
        assert_eq!(verified_deadline(url), 1_774_044_000); // 2026-03-20T22:00:00Z
        assert_eq!(out.output["expires_at"], "2026-03-20T22:00:00+00:00");
        assert_eq!(out.output["expired"], false);
        assert_eq!(out.changes, vec![set("u", url)]);
        assert!(!out.message.contains(SECRET) && !url.contains(SECRET));
    }

    #[tokio::test]
    async fn a_tampered_url_does_not_verify() {
        let c = cfg(json!({"timer_type": "standard", "end_time": "2026-03-20T18:00:00Z"}));
        let out = Env::new()
            .run(&CountdownTimer, c, &contact(&[], &[]))
            .await
            .unwrap();
        let url = out.output["timer_url"]
            .as_str()
            .unwrap()
            .replace("deadline=17", "deadline=18");
        let (_, query) = url.split_once('?').unwrap();
        let (signed, sig) = query.rsplit_once("&sig=").unwrap();
        assert_ne!(
            hex::encode(hmac_sha256(SECRET.as_bytes(), signed.as_bytes())),
            sig
        );
    }

    #[tokio::test]
    async fn field_deadlines_past_empty_and_unparsable() {
        let c = cfg(json!({"timer_type": "contact_field", "contact_field": "_Ends"}));
        let env = Env::new();
        let past = env
            .run(
                &CountdownTimer,
                c.clone(),
                &contact(&[("_Ends", "2026-03-01")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(past.output["expired"], true);
        assert_eq!(past.output["expires_at"], "2026-03-01T00:00:00+00:00");
        let keap = env
            .run(
                &CountdownTimer,
                c.clone(),
                &contact(&[("_Ends", "20260401T09:30:00")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(keap.output["expires_at"], "2026-04-01T09:30:00+00:00");
        for bad in ["", "next friday"] {
            let out = env
                .run(&CountdownTimer, c.clone(), &contact(&[("_Ends", bad)], &[]))
                .await
                .unwrap();
            assert!(!out.success && out.changes.is_empty(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn evergreen_deadlines_stick_per_contact() {
        let c = cfg(json!({"timer_type": "evergreen", "add_days": 2, "add_hours": 3}));
        let mut env = Env::new();
        let first = env
            .run(&CountdownTimer, c.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        let due = fixed_now() + Duration::hours(51);
        assert_eq!(first.output["expires_at"], due.to_rfc3339());
        env.now = fixed_now() + Duration::days(1);
        env.execution_id = "later".into();
        let later = env
            .run(&CountdownTimer, c.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(later.output["timer_url"], first.output["timer_url"]);
        assert_eq!(
            verified_deadline(later.output["timer_url"].as_str().unwrap()),
            due.timestamp()
        );
        let mut other = contact(&[], &[]);
        other.id = "c-2".into();
        let theirs = env.run(&CountdownTimer, c, &other).await.unwrap();
        assert_eq!(
            theirs.output["expires_at"],
            (env.now + Duration::hours(51)).to_rfc3339()
        );
    }

    #[test]
    fn a_missing_secret_and_other_bad_configs_are_rejected() {
        let errs = config_errors(
            &CountdownTimer,
            json!({"timer_type": "standard", "image_base_url": "https://t.example.com/c.gif", "signing_secret": "", "end_time": "soon"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["end_time", "signing_secret"]);
        assert!(!config_errors(&CountdownTimer, json!({"timer_type": "standard", "end_time": "2026-01-01", "image_base_url": "https://t.example.com"})).is_empty());
        let errs = config_errors(
            &CountdownTimer,
            cfg(
                json!({"timer_type": "evergreen", "digit_color": "white", "image_base_url": "https://t.example.com/c.gif?x=1", "timezone": "Atlantis"}),
            ),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["timezone", "add_days", "digit_color", "image_base_url"]
        );
        assert_eq!(
            config_errors(&CountdownTimer, cfg(json!({"timer_type": "contact_field"})))[0].field,
            "contact_field"
        );
        assert!(
            config_errors(
                &CountdownTimer,
                cfg(json!({"timerType": "evergreen", "addMinutes": 30}))
            )
            .is_empty()
        );
    }
}
