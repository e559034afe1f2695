//! last_click_it: writes the date the contact last clicked a link in a CRM email into a
//! field, so campaigns can branch on it (the CRM keeps the statistic but cannot merge it).
//! The address comes from `email_field` (default `Email`; `Email2`/`Email3` also find
//! Keap's `EmailAddress2`/`EmailAddress3`). The date is rendered with `date_format` (chrono
//! strftime, default `%Y-%m-%d`) in `timezone` (IANA, default UTC). Never clicked is a
//! success without a write; so is a click older than `attribution_window_days` (0 = off),
//! reported as `within_window: false`. An empty address fails. last_open_it and
//! last_send_it run the same step ([`email_date_step`]) for the open and send dates.
//! Idempotent.

use crate::connectors::{Capability, EmailStats};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use std::fmt::Write as _;

/// Config of last_click_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field written.
    pub save_to: String,
    /// The field holding the address; default `Email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Ignore clicks older than this many days; default 0 (off).
    #[serde(default)]
    pub attribution_window_days: u32,
    /// chrono strftime format of the date; default `%Y-%m-%d`.
    pub date_format: Option<String>,
    /// IANA time zone the date is given in; default UTC.
    pub timezone: Option<String>,
}

/// Config of last_open_it and last_send_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailDateConfig {
    /// The field written.
    pub save_to: String,
    /// The field holding the address; default `Email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// chrono strftime format of the date; default `%Y-%m-%d`.
    pub date_format: Option<String>,
    /// IANA time zone the date is given in; default UTC.
    pub timezone: Option<String>,
}

fn default_email() -> String {
    "Email".into()
}

/// Which date of the address's statistics is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// The last click.
    Click,
    /// The last open.
    Open,
    /// The last send.
    Sent,
}

impl Metric {
    fn output_key(self) -> &'static str {
        match self {
            Self::Click => "last_click_date",
            Self::Open => "last_open_date",
            Self::Sent => "last_sent_date",
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Self::Click => "clicked",
            Self::Open => "opened",
            Self::Sent => "was sent",
        }
    }
    fn pick(self, s: &EmailStats) -> (Option<DateTime<Utc>>, u64) {
        match self {
            Self::Click => (s.last_click, s.clicks),
            Self::Open => (s.last_open, s.opens),
            Self::Sent => (s.last_sent, s.sent),
        }
    }
}

/// Checks the fields every email-date config shares.
pub(crate) fn validate_common(
    errors: &mut Vec<FieldError>,
    save_to: &str,
    email_field: &str,
    date_format: Option<&str>,
    timezone: Option<&str>,
) {
    check(
        errors,
        save_to.trim().is_empty(),
        "save_to",
        "must not be empty",
    );
    check(
        errors,
        email_field.trim().is_empty(),
        "email_field",
        "must not be empty",
    );
    check(
        errors,
        date_format.is_some_and(|f| render(DateTime::UNIX_EPOCH, Tz::UTC, f).is_none()),
        "date_format",
        "is not a valid strftime format",
    );
    check(
        errors,
        timezone.is_some_and(|t| t.parse::<Tz>().is_err()),
        "timezone",
        "is not an IANA time zone name",
    );
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        validate_common(
            &mut errors,
            &self.save_to,
            &self.email_field,
            self.date_format.as_deref(),
            self.timezone.as_deref(),
        );
        check(
            &mut errors,
            self.attribution_window_days > 36_500,
            "attribution_window_days",
            "must be at most 36500",
        );
        finish(errors)
    }
}

impl Validate for EmailDateConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        validate_common(
            &mut errors,
            &self.save_to,
            &self.email_field,
            self.date_format.as_deref(),
            self.timezone.as_deref(),
        );
        finish(errors)
    }
}

fn render(at: DateTime<Utc>, tz: Tz, format: &str) -> Option<String> {
    let items = chrono::format::StrftimeItems::new(format).parse().ok()?;
    let mut s = String::new();
    write!(
        s,
        "{}",
        at.with_timezone(&tz).format_with_items(items.iter())
    )
    .ok()?;
    Some(s)
}

/// The last_click_it helper.
pub struct LastClickIt;

impl Helper for LastClickIt {
    const NAME: &'static str = "last_click_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Writes the date the contact last clicked a link in an email into a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"save_to": "_LastClick", "email_field": "email"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["last_click_date", "within_window", "count", "<save_to>"];
    const REQUIRES: &'static [Capability] = &[Capability::EmailStats, Capability::Fields];
    type Config = Config;

    fn build(&self, c: Config) -> Runnable {
        email_date_step(
            Metric::Click,
            EmailDateConfig {
                save_to: c.save_to,
                email_field: c.email_field,
                date_format: c.date_format,
                timezone: c.timezone,
            },
            c.attribution_window_days,
        )
    }
}

/// The step shared by last_click_it, last_open_it and last_send_it: writes the `metric`
/// date of the contact's address, ignoring dates older than `window_days` (0 = off).
pub(crate) fn email_date_step(
    metric: Metric,
    config: EmailDateConfig,
    window_days: u32,
) -> Runnable {
    let tz = config
        .timezone
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or(Tz::UTC);
    Runnable::Async(Box::new(EmailDateStep {
        metric,
        config,
        window_days,
        tz,
    }))
}

struct EmailDateStep {
    metric: Metric,
    config: EmailDateConfig,
    window_days: u32,
    tz: Tz,
}

/// The address in `field`; `Email2`/`Email3` also find Keap's `EmailAddress2`/`3`.
fn address<'a>(contact: &'a Contact, field: &str) -> Option<&'a str> {
    let alias = match field {
        "Email2" => Some("EmailAddress2"),
        "Email3" => Some("EmailAddress3"),
        _ => None,
    };
    contact
        .field(field)
        .or_else(|| alias.and_then(|a| contact.field(a)))
        .map(str::trim)
}

#[async_trait::async_trait]
impl AsyncStep for EmailDateStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let key = self.metric.output_key();
        let Some(email) = address(contact, c.email_field.trim()) else {
            return Ok(Outcome::failed(format!("{} is empty", c.email_field)));
        };
        let stats = ctx.crm.email_stats(email).await?;
        let (at, count) = self.metric.pick(&stats);
        let Some(at) = at else {
            return Ok(Outcome::ok(format!(
                "The address never {} an email; nothing written",
                self.metric.verb()
            ))
            .with(key, serde_json::Value::Null)
            .with("count", count));
        };
        let format = c.date_format.as_deref().unwrap_or("%Y-%m-%d");
        let date = render(at, self.tz, format).unwrap_or_else(|| at.to_rfc3339());
        let mut out = Outcome::ok("").with(key, date.clone()).with("count", count);
        if self.metric == Metric::Click {
            let window = TimeDelta::days(i64::from(self.window_days));
            let within = self.window_days == 0 || at >= ctx.now - window;
            out = out.with("within_window", within);
            if !within {
                out.message = format!(
                    "The last click ({date}) is older than {} days; nothing written",
                    self.window_days
                );
                return Ok(out);
            }
        }
        let to = c.save_to.trim();
        out.message = format!("{to} = {date}");
        Ok(out.with(to, date.clone()).set_field(contact, to, date))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// An env where `ada@example.com` has full statistics and `new@example.com` none.
    pub(crate) fn env_with_stats() -> Env {
        let mut env = Env::new();
        env.crm.email_stats.insert(
            "ada@example.com".into(),
            EmailStats {
                sent: 40,
                opens: 22,
                clicks: 9,
                last_sent: Some(at("2026-03-01T09:00:00Z")),
                last_open: Some(at("2026-03-02T08:30:00Z")),
                last_click: Some(at("2026-02-27T23:45:00Z")),
            },
        );
        env.crm
            .email_stats
            .insert("new@example.com".into(), EmailStats::default());
        env
    }

    #[tokio::test]
    async fn writes_the_last_click_date() {
        let env = env_with_stats();
        let c = contact(&[("Email", " Ada@Example.com ")], &[]);
        let out = env
            .run(&LastClickIt, json!({"save_to": "_LastClick"}), &c)
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_LastClick", "2026-02-27")]);
        assert_eq!(out.output["last_click_date"], "2026-02-27");
        assert_eq!(out.output["within_window"], true);
        assert_eq!(out.output["count"], 9);
        let cfg =
            json!({"save_to": "t", "date_format": "%Y-%m-%d %H:%M", "timezone": "Asia/Tokyo"});
        let out = env.run(&LastClickIt, cfg, &c).await.unwrap();
        assert_eq!(out.changes, vec![set("t", "2026-02-28 08:45")]);
    }

    #[tokio::test]
    async fn attribution_window_ignores_old_clicks() {
        let env = env_with_stats();
        let c = contact(&[("Email", "ada@example.com")], &[]);
        // now = 2026-03-15T12:00Z; the click was 15.5 days earlier.
        let out = env
            .run(
                &LastClickIt,
                json!({"save_to": "t", "attribution_window_days": 15}),
                &c,
            )
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["within_window"], false);
        let out = env
            .run(
                &LastClickIt,
                json!({"save_to": "t", "attribution_window_days": 16}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("t", "2026-02-27")]);
    }

    #[tokio::test]
    async fn never_clicked_empty_address_and_aliases() {
        let env = env_with_stats();
        let cfg = json!({"save_to": "t"});
        let out = env
            .run(
                &LastClickIt,
                cfg.clone(),
                &contact(&[("Email", "new@example.com")], &[]),
            )
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["last_click_date"], serde_json::Value::Null);
        let out = env
            .run(&LastClickIt, cfg, &contact(&[("Email", " ")], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("Email is empty"));
        let c = contact(&[("EmailAddress2", "ada@example.com")], &[]);
        let out = env
            .run(
                &LastClickIt,
                json!({"save_to": "t", "email_field": "Email2"}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("t", "2026-02-27")]);
    }

    #[tokio::test]
    async fn rerun_writes_nothing() {
        let env = env_with_stats();
        let c = contact(&[("Email", "ada@example.com"), ("t", "2026-02-27")], &[]);
        let out = env
            .run(&LastClickIt, json!({"save_to": "t"}), &c)
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &LastClickIt,
            json!({"save_to": " ", "email_field": "", "date_format": "%Q", "timezone": "Mars/Base", "attribution_window_days": 99999}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "save_to",
                "email_field",
                "date_format",
                "timezone",
                "attribution_window_days"
            ]
        );
        assert!(!config_errors(&LastClickIt, json!({})).is_empty());
        assert!(
            !config_errors(
                &LastClickIt,
                json!({"save_to": "t", "attribution_window_days": -1})
            )
            .is_empty()
        );
    }
}
