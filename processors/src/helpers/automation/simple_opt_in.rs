//! simple_opt_in: marks the contact's primary email (`email`) marketable, with a consent
//! reason (Keap shows it in the email status history). The all-CRM version of opt_in: no
//! double opt-in, no tags. Like the old rebuild it keeps an `opt_in` flag (default true)
//! so the same helper can opt out. An empty or malformed email fails without a change; a
//! contact already in the wanted state is left alone. CRMs refuse to re-opt-in addresses
//! that unsubscribed themselves; the connector reports that as a refused change.
//! Idempotent.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Whether `email` looks like an address: one `@`, a local part and a dotted domain.
pub(crate) fn plausible_email(email: &str) -> bool {
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

/// Sets the marketing status of the contact's primary email: the shared body of
/// simple_opt_in and simple_opt_out.
pub(crate) fn set_opt_in(contact: &Contact, opted_in: bool, reason: &str) -> Outcome {
    let status = if opted_in { "opted_in" } else { "opted_out" };
    let Some(email) = contact.field("email").map(str::trim) else {
        return Outcome::failed("The contact has no email address").with("status", "no_email");
    };
    if !plausible_email(email) {
        return Outcome::failed(format!("{email:?} is not a valid email address"))
            .with("status", "invalid_email")
            .with("email", email);
    }
    let out = Outcome::ok(format!("{email} {}", status.replace('_', " ")))
        .with("status", status)
        .with("email", email)
        .with("reason", reason);
    if contact.marketable == Some(opted_in) {
        return out.log("Already in that state; nothing to change");
    }
    out.change(Change::SetOptIn {
        email: email.to_owned(),
        opted_in,
        reason: reason.to_owned(),
    })
}

/// Config of simple_opt_in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// True (default) to opt in, false to opt out.
    #[serde(default = "default_true")]
    pub opt_in: bool,
    /// The consent reason recorded by the CRM; a default is used when absent.
    pub reason: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.reason.as_ref().is_some_and(|r| r.trim().is_empty()),
            "reason",
            "must not be empty when set",
        );
        finish(errors)
    }
}

/// The simple_opt_in helper.
pub struct SimpleOptIn;

impl Helper for SimpleOptIn {
    const NAME: &'static str = "simple_opt_in";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Marks the contact's email as marketable, with a reason.";
    const EXAMPLE_CONFIG: &'static str = r#"{"reason": "Signed up on the webinar form"}"#;
    const OUTPUTS: &'static [&'static str] = &["status", "email", "reason"];
    const REQUIRES: &'static [Capability] = &[Capability::OptIn];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let default = if config.opt_in {
            "Opted in via MyFusionHelper"
        } else {
            "Opted out via MyFusionHelper"
        };
        let reason = config
            .reason
            .map_or_else(|| default.to_owned(), |r| r.trim().to_owned());
        Runnable::Sync(Box::new(SimpleOptInStep {
            opt_in: config.opt_in,
            reason,
        }))
    }
}

struct SimpleOptInStep {
    opt_in: bool,
    reason: String,
}

impl Step for SimpleOptInStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        Ok(set_opt_in(contact, self.opt_in, &self.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    #[test]
    fn opts_the_primary_email_in_with_the_reason() {
        let out = run(
            &SimpleOptIn,
            json!({"reason": " form "}),
            &contact(&[("email", " a@x.com ")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetOptIn {
                email: "a@x.com".into(),
                opted_in: true,
                reason: "form".into()
            }]
        );
        assert_eq!(out.output["status"], "opted_in");
    }

    #[test]
    fn the_flag_opts_out_with_a_default_reason() {
        let out = run(
            &SimpleOptIn,
            json!({"opt_in": false}),
            &contact(&[("email", "a@x.com")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetOptIn {
                email: "a@x.com".into(),
                opted_in: false,
                reason: "Opted out via MyFusionHelper".into()
            }]
        );
    }

    #[test]
    fn already_marketable_is_a_no_op() {
        let mut c = contact(&[("email", "a@x.com")], &[]);
        c.marketable = Some(true);
        let out = run(&SimpleOptIn, json!({}), &c);
        assert!(out.success && out.changes.is_empty());
        c.marketable = Some(false);
        assert_eq!(run(&SimpleOptIn, json!({}), &c).changes.len(), 1);
    }

    #[test]
    fn empty_or_malformed_emails_fail_without_a_change() {
        for email in [
            "",
            "  ",
            "not-an-email",
            "a@b",
            "a b@x.com",
            "a@x.com@y.com",
        ] {
            let out = run(&SimpleOptIn, json!({}), &contact(&[("email", email)], &[]));
            assert!(!out.success && out.changes.is_empty(), "{email:?}");
        }
        assert!(plausible_email("first.last+tag@sub.example.co.uk"));
    }

    #[test]
    fn a_blank_reason_is_a_config_error() {
        assert_eq!(
            config_errors(&SimpleOptIn, json!({"reason": " "}))[0].field,
            "reason"
        );
        assert!(!config_errors(&SimpleOptIn, json!({"opt_in": "yes"})).is_empty());
    }
}
