//! opt_out: makes the contact's email unmarketable with a reason and a category, through a
//! `SetOptIn { opted_in: false }` change (the rebuild only prepared the data). It can also
//! write the reason to a field and apply an "unsubscribed" tag. An empty or malformed email
//! fails with no write; an address already opted out is not opted out again, while the
//! field and tag are still made sure of. Idempotent.

use super::opt_in::{default_email_field, plausible_email};
use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Why the contact opted out.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptOutCategory {
    /// The person asked (default).
    #[default]
    UserRequest,
    /// A spam complaint.
    SpamComplaint,
    /// The address bounced.
    Bounce,
    /// The content was not relevant.
    ContentIrrelevant,
    /// Too many emails.
    FrequencyTooHigh,
    /// Anything else.
    Other,
}

impl OptOutCategory {
    fn as_str(self) -> &'static str {
        match self {
            Self::UserRequest => "user_request",
            Self::SpamComplaint => "spam_complaint",
            Self::Bounce => "bounce",
            Self::ContentIrrelevant => "content_irrelevant",
            Self::FrequencyTooHigh => "frequency_too_high",
            Self::Other => "other",
        }
    }
}

/// Config of opt_out.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the address; default `email`.
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// The opt-out reason recorded by the CRM.
    pub reason: String,
    /// Field that receives the reason.
    pub reason_field: Option<String>,
    /// Tag applied on opt-out.
    pub unsubscribe_tag: Option<String>,
    /// The opt-out category; default `user_request`.
    #[serde(default)]
    pub category: OptOutCategory,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
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
        for (name, v) in [
            ("reason_field", &self.reason_field),
            ("unsubscribe_tag", &self.unsubscribe_tag),
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

/// The opt_out helper.
pub struct OptOut;

impl Helper for OptOut {
    const NAME: &'static str = "opt_out";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Makes the contact's email unmarketable with a reason, category, field and tag.";
    const EXAMPLE_CONFIG: &'static str = r#"{"reason": "Asked to stop by phone", "reason_field": "_OptOutReason", "unsubscribe_tag": "410", "category": "user_request"}"#;
    const OUTPUTS: &'static [&'static str] = &["email", "status", "reason", "category"];
    const REQUIRES: &'static [Capability] = &[Capability::OptIn];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(OptOutStep(config)))
    }
}

struct OptOutStep(Config);

impl Step for OptOutStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let field = c.email_field.trim();
        let Some(email) = contact.field(field).map(str::trim) else {
            return Ok(Outcome::failed(format!(
                "{field} is empty; nothing to opt out"
            )));
        };
        if !plausible_email(email) {
            return Ok(
                Outcome::failed(format!("{field} is not an email address")).with("email", email)
            );
        }
        let reason = c.reason.trim();
        let mut out = Outcome::ok("")
            .with("email", email)
            .with("status", "opted_out")
            .with("reason", reason)
            .with("category", c.category.as_str());
        if contact.marketable == Some(false) {
            out.message = format!("{email} is already opted out");
        } else {
            out.message = format!("Opted out {email} ({})", c.category.as_str());
            out = out.change(Change::SetOptIn {
                email: email.to_owned(),
                opted_in: false,
                reason: reason.to_owned(),
            });
        }
        if let Some(f) = &c.reason_field {
            out = out.set_field(contact, f.trim(), reason);
        }
        Ok(out.branch(contact, c.unsubscribe_tag.as_deref().map(str::trim), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    fn cfg() -> serde_json::Value {
        json!({"reason": "Asked", "reason_field": "why", "unsubscribe_tag": "410", "category": "spam_complaint"})
    }

    #[test]
    fn opts_out_writes_the_reason_and_tags() {
        let out = run(&OptOut, cfg(), &contact(&[("email", "A@b.co")], &[]));
        assert_eq!(
            out.changes,
            vec![
                Change::SetOptIn {
                    email: "A@b.co".into(),
                    opted_in: false,
                    reason: "Asked".into()
                },
                set("why", "Asked"),
                Change::ApplyTag {
                    tag_id: "410".into()
                }
            ]
        );
        assert_eq!(out.output["category"], json!("spam_complaint"));
        assert_eq!(out.output["status"], json!("opted_out"));
    }

    #[test]
    fn already_opted_out_is_a_no_op() {
        let mut c = contact(&[("email", "a@b.co"), ("why", "Asked")], &["410"]);
        c.marketable = Some(false);
        let out = run(&OptOut, cfg(), &c);
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.message, "a@b.co is already opted out");
    }

    #[test]
    fn empty_or_invalid_email_fails() {
        for bad in ["", " ", "nope"] {
            let out = run(
                &OptOut,
                json!({"reason": "x"}),
                &contact(&[("email", bad)], &[]),
            );
            assert!(!out.success && out.changes.is_empty(), "{bad}");
        }
    }

    #[test]
    fn category_defaults_to_user_request() {
        let out = run(
            &OptOut,
            json!({"reason": "x"}),
            &contact(&[("email", "a@b.co")], &[]),
        );
        assert_eq!(out.output["category"], json!("user_request"));
        assert_eq!(out.changes.len(), 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(config_errors(&OptOut, json!({})).len(), 1);
        let errs = config_errors(
            &OptOut,
            json!({"email_field": " ", "reason": "", "reason_field": "", "unsubscribe_tag": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["email_field", "reason", "reason_field", "unsubscribe_tag"]
        );
        assert!(!config_errors(&OptOut, json!({"reason": "x", "category": "angry"})).is_empty());
    }
}
