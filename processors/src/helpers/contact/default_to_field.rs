//! default_to_field: writes a default value into one field. The value is a literal, a date
//! macro (the whole value `now`, `today`, `@date_now` or `@date_today`), or a template
//! mixing text with `{{field}}` and `@field` references (`@` counts only at the start or
//! after a space or punctuation, so `team@acme.com` stays literal). `@date_now` and
//! `@date_today` also work inside templates; an `@token` naming no field on the contact
//! becomes empty and is logged. Dates use `ctx.now` in `timezone` (IANA, default UTC) and
//! `date_format` (`YYYY-MM-DD` style tokens or a strftime string; default `YYYY-MM-DD`, or
//! `YYYY-MM-DD HH:mm:ss` for `now`). With `only_if_empty` the write happens only when the
//! field is empty, the "default" sense. A value that resolves to empty is not written.
//! Literals are idempotent; `now` is not.

use crate::connectors::Capability;
use crate::helpers::template::render;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use chrono::format::{Item, StrftimeItems};
use chrono_tz::Tz;
use regex::Regex;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::LazyLock;

/// Config of default_to_field.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The value: literal, date macro or template. Example: `"today"`.
    pub default: String,
    /// The field written.
    pub to_field: String,
    /// Write only when the field is empty; default false.
    #[serde(default)]
    pub only_if_empty: bool,
    /// Date format: `YYYY-MM-DD HH:mm:ss` tokens or strftime (`%d/%m/%Y`).
    pub date_format: Option<String>,
    /// IANA time zone for dates, e.g. `America/New_York`; default UTC.
    pub timezone: Option<String>,
}

/// `@token` at the start or after a character that cannot be part of an address.
static AT_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^A-Za-z0-9_.@])@([A-Za-z_][A-Za-z0-9_]*)").expect("a valid constant pattern")
});

/// Moment-style tokens, longest first, and their strftime forms.
const TOKENS: &[(&str, &str)] = &[
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("dddd", "%A"),
    ("ddd", "%a"),
    ("DD", "%d"),
    ("HH", "%H"),
    ("hh", "%I"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("A", "%p"),
];

/// The strftime form of a format: as given when it holds `%`, else tokens translated.
fn strftime(format: &str) -> String {
    if format.contains('%') {
        return format.to_owned();
    }
    let mut out = String::new();
    let mut rest = format;
    'outer: while let Some(ch) = rest.chars().next() {
        for (token, spec) in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str(spec);
                rest = after;
                continue 'outer;
            }
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// Formats `at` with a strftime string; `None` for an invalid format.
fn format_date(at: &chrono::DateTime<Tz>, format: &str) -> Option<String> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).parse().ok()?;
    let mut s = String::new();
    write!(s, "{}", at.format_with_items(items.iter())).ok()?;
    Some(s)
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.default.trim().is_empty(),
            "default",
            "must not be empty",
        );
        check(
            &mut errors,
            self.to_field.trim().is_empty(),
            "to_field",
            "must not be empty",
        );
        let tz = self.timezone.as_deref().map(|t| t.trim().parse::<Tz>());
        check(
            &mut errors,
            matches!(tz, Some(Err(_))),
            "timezone",
            "is not an IANA time zone name such as America/New_York",
        );
        let sample = chrono::DateTime::UNIX_EPOCH.with_timezone(&Tz::UTC);
        check(
            &mut errors,
            self.date_format.as_deref().is_some_and(|f| {
                f.trim().is_empty() || format_date(&sample, &strftime(f)).is_none()
            }),
            "date_format",
            "is not a valid date format",
        );
        finish(errors)
    }
}

/// The default_to_field helper.
pub struct DefaultToField;

impl Helper for DefaultToField {
    const NAME: &'static str = "default_to_field";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Writes a literal, date or templated default value into a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"default": "today", "to_field": "_DateJoined", "only_if_empty": true, "timezone": "America/New_York"}"#;
    const OUTPUTS: &'static [&'static str] = &["<to_field>", "written"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let tz = config
            .timezone
            .as_deref()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(Tz::UTC);
        Runnable::Sync(Box::new(DefaultToFieldStep { config, tz }))
    }
}

struct DefaultToFieldStep {
    config: Config,
    tz: Tz,
}

impl DefaultToFieldStep {
    fn date(&self, ctx: &Ctx<'_>, with_time: bool) -> String {
        let format = self.config.date_format.as_deref().map_or_else(
            || {
                if with_time {
                    "%Y-%m-%d %H:%M:%S"
                } else {
                    "%Y-%m-%d"
                }
                .to_owned()
            },
            strftime,
        );
        format_date(&ctx.now.with_timezone(&self.tz), &format).unwrap_or_default()
    }

    /// The resolved value and any warnings.
    fn resolve(&self, ctx: &Ctx<'_>, contact: &Contact) -> (String, Vec<String>) {
        let raw = self.config.default.trim();
        match raw.to_lowercase().as_str() {
            "now" | "@date_now" => return (self.date(ctx, true), vec![]),
            "today" | "@date_today" => return (self.date(ctx, false), vec![]),
            _ => {}
        }
        let mut warnings = Vec::new();
        let expanded = AT_TOKEN.replace_all(&self.config.default, |caps: &regex::Captures<'_>| {
            let (lead, key) = (&caps[1], &caps[2]);
            let value = match key.to_lowercase().as_str() {
                "date_now" => self.date(ctx, true),
                "date_today" => self.date(ctx, false),
                _ if contact.fields.contains_key(key) => format!("{{{{{key}}}}}"),
                _ => {
                    warnings.push(format!("@{key} names no field on the contact; left empty."));
                    String::new()
                }
            };
            format!("{lead}{value}")
        });
        (render(&expanded, contact), warnings)
    }
}

impl Step for DefaultToFieldStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let field = self.config.to_field.trim();
        let (value, warnings) = self.resolve(ctx, contact);
        let mut out = Outcome::ok("");
        out.logs = warnings;
        if value.trim().is_empty() {
            out.message = format!("The default resolved empty; {field} left unchanged");
            return Ok(out.with("written", false));
        }
        out = out.with(field, value.clone());
        if self.config.only_if_empty && contact.field(field).is_some() {
            out.message = format!("{field} already has a value; left unchanged");
            return Ok(out.with("written", false));
        }
        out.message = format!("{field} = {value}");
        Ok(out.with("written", true).set_field(contact, field, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, run, set};
    use serde_json::json;

    fn value(cfg: serde_json::Value, c: &Contact) -> String {
        let out = run(&DefaultToField, cfg, c);
        match out.changes.first() {
            Some(crate::helpers::Change::SetField { value: Some(v), .. }) => v.clone(),
            _ => format!("unchanged: {}", out.message),
        }
    }

    #[test]
    fn writes_a_literal() {
        let out = run(
            &DefaultToField,
            json!({"default": "Website", "to_field": "src"}),
            &contact(&[("src", "Ads")], &[]),
        );
        assert_eq!(out.changes, vec![set("src", "Website")]);
        assert_eq!(out.output["src"], json!("Website"));
    }

    #[test]
    fn date_macros_use_the_clock_zone_and_format() {
        let c = contact(&[], &[]);
        assert_eq!(
            value(json!({"default": "today", "to_field": "d"}), &c),
            "2026-03-15"
        );
        assert_eq!(
            value(json!({"default": "NOW", "to_field": "d"}), &c),
            "2026-03-15 12:00:00"
        );
        assert_eq!(
            value(
                json!({"default": "@date_now", "to_field": "d", "timezone": "Pacific/Kiritimati", "date_format": "DD/MM/YYYY hh:mm A"}),
                &c
            ),
            "16/03/2026 02:00 AM"
        );
        assert_eq!(
            value(
                json!({"default": "today", "to_field": "d", "date_format": "%B %-d, %Y"}),
                &c
            ),
            "March 15, 2026"
        );
    }

    #[test]
    fn templates_mix_braces_at_tokens_and_dates() {
        let c = contact(&[("first_name", "Ada"), ("company", "Acme")], &[]);
        let out = run(
            &DefaultToField,
            json!({"default": "@first_name from {{company}} (@date_today), mail team@acme.com @nope", "to_field": "t"}),
            &c,
        );
        assert_eq!(
            out.changes,
            vec![set("t", "Ada from Acme (2026-03-15), mail team@acme.com ")]
        );
        assert_eq!(
            out.logs,
            vec!["@nope names no field on the contact; left empty."]
        );
    }

    #[test]
    fn only_if_empty_keeps_a_value_and_fills_a_blank() {
        let cfg = json!({"default": "x", "to_field": "f", "only_if_empty": true});
        let kept = run(&DefaultToField, cfg.clone(), &contact(&[("f", "y")], &[]));
        assert!(kept.success && kept.changes.is_empty());
        assert_eq!(kept.output["written"], json!(false));
        let filled = run(&DefaultToField, cfg, &contact(&[("f", "  ")], &[]));
        assert_eq!(filled.changes, vec![set("f", "x")]);
    }

    #[test]
    fn empty_resolution_writes_nothing_and_literals_are_idempotent() {
        let empty = run(
            &DefaultToField,
            json!({"default": "{{missing}}", "to_field": "f"}),
            &contact(&[("f", "keep")], &[]),
        );
        assert!(empty.success && empty.changes.is_empty());
        let again = run(
            &DefaultToField,
            json!({"default": "x", "to_field": "f"}),
            &contact(&[("f", "x")], &[]),
        );
        assert!(again.changes.is_empty());
    }

    #[test]
    fn now_moves_with_the_clock() {
        let mut env = Env::new();
        env.now += chrono::Duration::days(1);
        let out = env
            .block_on_run(
                &DefaultToField,
                json!({"default": "today", "to_field": "d"}),
                &contact(&[], &[]),
            )
            .unwrap();
        assert_eq!(out.changes, vec![set("d", "2026-03-16")]);
    }

    #[test]
    fn format_tokens_translate() {
        assert_eq!(strftime("YYYY-MM-DD HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(strftime("dddd, MMMM DD YY"), "%A, %B %d %y");
        assert_eq!(strftime("%d.%m"), "%d.%m");
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&DefaultToField, json!({"default": "x"})).is_empty());
        let errs = config_errors(
            &DefaultToField,
            json!({"default": " ", "to_field": "", "timezone": "Mars/Base", "date_format": "%Y-%Q"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["default", "to_field", "timezone", "date_format"]
        );
        assert!(
            config_errors(
                &DefaultToField,
                json!({"default": "now", "to_field": "d", "timezone": "Europe/Paris", "date_format": "%Y %z"})
            )
            .is_empty()
        );
    }
}
