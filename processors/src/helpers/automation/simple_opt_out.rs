//! simple_opt_out: marks the contact's primary email (`email`) unmarketable, with an
//! optional reason (default "Opted out via MyFusionHelper"). An already opted-out address
//! is left alone and reported as success; an empty or malformed email fails without a
//! change. Idempotent. Shares its body with simple_opt_in.

use super::simple_opt_in::set_opt_in;
use crate::connectors::Capability;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// Config of simple_opt_out.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The opt-out reason recorded by the CRM; a default is used when absent.
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

/// The simple_opt_out helper.
pub struct SimpleOptOut;

impl Helper for SimpleOptOut {
    const NAME: &'static str = "simple_opt_out";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Marks the contact's email as unmarketable, with a reason.";
    const EXAMPLE_CONFIG: &'static str = r#"{"reason": "Asked to stop on the phone"}"#;
    const OUTPUTS: &'static [&'static str] = &["status", "email", "reason"];
    const REQUIRES: &'static [Capability] = &[Capability::OptIn];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let reason = config.reason.map_or_else(
            || "Opted out via MyFusionHelper".to_owned(),
            |r| r.trim().to_owned(),
        );
        Runnable::Sync(Box::new(SimpleOptOutStep(reason)))
    }
}

struct SimpleOptOutStep(String);

impl Step for SimpleOptOutStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        Ok(set_opt_in(contact, false, &self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    #[test]
    fn opts_the_primary_email_out() {
        let out = run(
            &SimpleOptOut,
            json!({}),
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
        assert_eq!(out.output["status"], "opted_out");
    }

    #[test]
    fn already_opted_out_succeeds_without_a_change() {
        let mut c = contact(&[("email", "a@x.com")], &[]);
        c.marketable = Some(false);
        let out = run(&SimpleOptOut, json!({"reason": "phone"}), &c);
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["reason"], "phone");
    }

    #[test]
    fn a_missing_email_fails() {
        let out = run(&SimpleOptOut, json!({}), &contact(&[], &[]));
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(out.output["status"], "no_email");
    }

    #[test]
    fn a_blank_reason_is_a_config_error() {
        assert_eq!(
            config_errors(&SimpleOptOut, json!({"reason": ""}))[0].field,
            "reason"
        );
        assert!(!config_errors(&SimpleOptOut, json!({"opt_in": true})).is_empty());
    }
}
