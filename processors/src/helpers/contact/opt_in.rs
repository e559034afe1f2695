//! opt_in: makes the contact's email marketable with a consent reason (Keap requires one;
//! it shows in the email status history) through a `SetOptIn` change, which the rebuild
//! never sent. With `double_opt_in`, the first run only applies `confirmation_tag` (the
//! CRM campaign it starts sends the confirmation email) and reports
//! `pending_confirmation`; the run triggered by the confirmation link, whose input carries
//! `"confirmed": true`, or any run on a contact holding `confirmed_tag`, opts the address in,
//! applies `confirmed_tag` and removes `confirmation_tag`. An empty or malformed email
//! fails with no write. A CRM that refuses to re-opt-in an address the person unsubscribed
//! themselves reports that change as failed when it is applied. Idempotent.

use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use std::sync::LazyLock;

/// Config of opt_in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the address; default `email`.
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// The consent reason; default "Opted in via MyFusionHelper".
    #[serde(default = "default_reason")]
    pub reason: String,
    /// Ask for confirmation first; default false.
    #[serde(default)]
    pub double_opt_in: bool,
    /// Tag applied while confirmation is pending; required with `double_opt_in`.
    pub confirmation_tag: Option<String>,
    /// Tag applied once confirmed.
    pub confirmed_tag: Option<String>,
}

pub(crate) fn default_email_field() -> String {
    "email".into()
}
fn default_reason() -> String {
    "Opted in via MyFusionHelper".into()
}

/// A plausible address: one `@`, no spaces, a dot in the domain.
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$").expect("a valid constant pattern"));

/// Whether `email` looks like an address.
pub(crate) fn plausible_email(email: &str) -> bool {
    EMAIL.is_match(email)
}

/// Whether the trigger input says the confirmation came back.
fn confirmed_by_input(input: Option<&Value>) -> bool {
    match input.and_then(|i| i.get("confirmed")) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim().to_lowercase().as_str(), "true" | "1" | "yes"),
        _ => false,
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.reason.trim().is_empty(),
            "reason",
            "must not be empty",
        );
        check(
            &mut errors,
            self.double_opt_in && self.confirmation_tag.is_none(),
            "confirmation_tag",
            "is required with double_opt_in",
        );
        check(
            &mut errors,
            blank(&self.confirmation_tag),
            "confirmation_tag",
            "must not be empty",
        );
        check(
            &mut errors,
            blank(&self.confirmed_tag),
            "confirmed_tag",
            "must not be empty",
        );
        check(
            &mut errors,
            self.confirmed_tag.is_some() && self.confirmed_tag == self.confirmation_tag,
            "confirmed_tag",
            "must differ from confirmation_tag",
        );
        finish(errors)
    }
}

/// The opt_in helper.
pub struct OptIn;

impl Helper for OptIn {
    const NAME: &'static str = "opt_in";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Makes the contact's email marketable with a consent reason, optionally double opt-in.";
    const EXAMPLE_CONFIG: &'static str = r#"{"reason": "Signed up on the webinar form", "double_opt_in": true, "confirmation_tag": "401", "confirmed_tag": "402"}"#;
    const OUTPUTS: &'static [&'static str] = &["email", "status", "reason"];
    const REQUIRES: &'static [Capability] = &[Capability::OptIn, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(OptInStep(config)))
    }
}

struct OptInStep(Config);

impl Step for OptInStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let field = c.email_field.trim();
        let Some(email) = contact.field(field).map(str::trim) else {
            return Ok(Outcome::failed(format!(
                "{field} is empty; nothing to opt in"
            )));
        };
        if !plausible_email(email) {
            return Ok(
                Outcome::failed(format!("{field} is not an email address")).with("email", email)
            );
        }
        let reason = c.reason.trim();
        let tag = |t: &Option<String>| t.as_deref().map(str::trim).map(str::to_owned);
        let (pending_tag, confirmed_tag) = (tag(&c.confirmation_tag), tag(&c.confirmed_tag));
        let confirmed = confirmed_by_input(ctx.input)
            || confirmed_tag.as_deref().is_some_and(|t| contact.has_tag(t));
        let out = Outcome::ok("").with("email", email).with("reason", reason);
        if c.double_opt_in && !confirmed {
            let mut out = out.with("status", "pending_confirmation").branch(
                contact,
                pending_tag.as_deref(),
                None,
            );
            out.message = format!("Confirmation pending for {email}");
            return Ok(out);
        }
        let mut out = out.with("status", "opted_in");
        if contact.marketable != Some(true) {
            out = out.change(Change::SetOptIn {
                email: email.to_owned(),
                opted_in: true,
                reason: reason.to_owned(),
            });
        }
        if c.double_opt_in {
            if let Some(t) = pending_tag.filter(|t| contact.has_tag(t)) {
                out = out.change(Change::RemoveTag { tag_id: t });
            }
            out = out.branch(contact, confirmed_tag.as_deref(), None);
        }
        out.message = format!("Opted in {email}");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, run};
    use serde_json::json;

    fn opt_in(email: &str) -> Change {
        Change::SetOptIn {
            email: email.into(),
            opted_in: true,
            reason: "Opted in via MyFusionHelper".into(),
        }
    }

    #[test]
    fn opts_in_with_the_default_reason() {
        let out = run(&OptIn, json!({}), &contact(&[("email", " a@b.co ")], &[]));
        assert_eq!(out.changes, vec![opt_in("a@b.co")]);
        assert_eq!(out.output["status"], json!("opted_in"));
        assert_eq!(out.output["reason"], json!("Opted in via MyFusionHelper"));
    }

    #[test]
    fn other_email_fields_and_reasons() {
        let out = run(
            &OptIn,
            json!({"email_field": "email2", "reason": "Form"}),
            &contact(&[("email2", "x@y.org")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetOptIn {
                email: "x@y.org".into(),
                opted_in: true,
                reason: "Form".into()
            }]
        );
    }

    #[test]
    fn empty_or_invalid_email_fails_without_writes() {
        for bad in ["", "  ", "not-an-email", "a@b", "a b@c.com"] {
            let out = run(&OptIn, json!({}), &contact(&[("email", bad)], &[]));
            assert!(!out.success && out.changes.is_empty(), "{bad}");
        }
    }

    #[test]
    fn already_marketable_is_a_no_op() {
        let mut c = contact(&[("email", "a@b.co")], &[]);
        c.marketable = Some(true);
        let out = run(&OptIn, json!({}), &c);
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn double_opt_in_first_tags_then_confirms() {
        let cfg = json!({"double_opt_in": true, "confirmation_tag": "401", "confirmed_tag": "402"});
        let first = run(&OptIn, cfg.clone(), &contact(&[("email", "a@b.co")], &[]));
        assert_eq!(
            first.changes,
            vec![Change::ApplyTag {
                tag_id: "401".into()
            }]
        );
        assert_eq!(first.output["status"], json!("pending_confirmation"));
        // Submitting the form again while pending changes nothing.
        let again = run(
            &OptIn,
            cfg.clone(),
            &contact(&[("email", "a@b.co")], &["401"]),
        );
        assert!(again.changes.is_empty());
        let mut env = Env::new();
        env.input = Some(json!({"confirmed": "true"}));
        let confirm = env
            .block_on_run(
                &OptIn,
                cfg.clone(),
                &contact(&[("email", "a@b.co")], &["401"]),
            )
            .unwrap();
        assert_eq!(
            confirm.changes,
            vec![
                opt_in("a@b.co"),
                Change::RemoveTag {
                    tag_id: "401".into()
                },
                Change::ApplyTag {
                    tag_id: "402".into()
                }
            ]
        );
        assert_eq!(confirm.output["status"], json!("opted_in"));
        let mut done = contact(&[("email", "a@b.co")], &["402"]);
        done.marketable = Some(true);
        assert!(run(&OptIn, cfg, &done).changes.is_empty());
    }

    #[test]
    fn confirmation_input_forms() {
        assert!(confirmed_by_input(Some(&json!({"confirmed": true}))));
        assert!(confirmed_by_input(Some(&json!({"confirmed": 1}))));
        assert!(confirmed_by_input(Some(&json!({"confirmed": " YES "}))));
        assert!(!confirmed_by_input(Some(&json!({"confirmed": "no"}))));
        assert!(!confirmed_by_input(Some(&json!({}))));
        assert!(!confirmed_by_input(None));
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&OptIn, json!({"double_opt_in": true}))[0].field,
            "confirmation_tag"
        );
        let errs = config_errors(
            &OptIn,
            json!({"email_field": "", "reason": " ", "confirmation_tag": "", "confirmed_tag": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "email_field",
                "reason",
                "confirmation_tag",
                "confirmed_tag",
                "confirmed_tag"
            ]
        );
        assert!(config_errors(&OptIn, json!({})).is_empty());
        assert!(!config_errors(&OptIn, json!({"double": true})).is_empty());
    }
}
