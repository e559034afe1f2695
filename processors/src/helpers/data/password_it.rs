//! password_it: generates a random password into `target_field`, e.g. membership-site
//! credentials emailed with a merge field. A field that already holds a value is kept
//! unless `overwrite` is on, so re-running a campaign never changes a password the
//! customer already received. Characters are drawn from the execution's seeded `StdRng`
//! (a CSPRNG), so a redelivered execution writes the same password; look-alikes
//! (`0 O o l 1 I`) are left out by default, and the special characters are limited to
//! `! @ $ * - _ .`, which survive email templates and URLs. With `require_each_class`
//! (default) every password holds a lower-case letter, an upper-case letter, a digit and,
//! when enabled, a special character. The password never appears in the message, the logs
//! or the outputs (which show it masked); only the field change carries it.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::Deserialize;

/// Config of password_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field written.
    pub target_field: String,
    /// Password length, 6–128; default 12.
    #[serde(default = "default_length")]
    pub length: usize,
    /// Include special characters; default true.
    #[serde(default = "default_true")]
    pub include_special: bool,
    /// Replace a password the field already holds; default false.
    #[serde(default)]
    pub overwrite: bool,
    /// Leave out look-alike characters (0 O o l 1 I); default true.
    #[serde(default = "default_true")]
    pub exclude_ambiguous: bool,
    /// Use at least one character of every enabled class; default true.
    #[serde(default = "default_true")]
    pub require_each_class: bool,
}

const fn default_length() -> usize {
    12
}
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const SPECIAL: &str = "!@$*-_.";
const AMBIGUOUS: &str = "0Ool1I";

impl Config {
    /// The character classes in use.
    fn classes(&self) -> Vec<Vec<char>> {
        let keep = |set: &str| -> Vec<char> {
            set.chars()
                .filter(|c| !(self.exclude_ambiguous && AMBIGUOUS.contains(*c)))
                .collect()
        };
        let mut classes = vec![keep(LOWER), keep(UPPER), keep(DIGITS)];
        if self.include_special {
            classes.push(keep(SPECIAL));
        }
        classes
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            !(6..=128).contains(&self.length),
            "length",
            "must be between 6 and 128",
        );
        finish(errors)
    }
}

/// The password_it helper.
pub struct PasswordIt;

impl Helper for PasswordIt {
    const NAME: &'static str = "password_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str = "Generates a random password into a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"target_field": "_Password", "length": 14}"#;
    const OUTPUTS: &'static [&'static str] = &["generated", "length", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(PasswordItStep(config)))
    }
}

struct PasswordItStep(Config);

impl PasswordItStep {
    fn generate(&self, rng: &mut impl Rng) -> String {
        let c = &self.0;
        let classes = c.classes();
        let all: Vec<char> = classes.iter().flatten().copied().collect();
        let mut chars: Vec<char> = if c.require_each_class {
            classes
                .iter()
                .map(|class| class[rng.random_range(0..class.len())])
                .collect()
        } else {
            Vec::new()
        };
        while chars.len() < c.length {
            chars.push(all[rng.random_range(0..all.len())]);
        }
        chars.shuffle(rng);
        chars.into_iter().collect()
    }
}

impl Step for PasswordItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let target = c.target_field.trim();
        if !c.overwrite && contact.field(target).is_some() {
            return Ok(Outcome::ok(format!(
                "{target} already holds a password; kept (overwrite is off)"
            ))
            .with("generated", false));
        }
        let password = self.generate(&mut ctx.rng());
        Ok(Outcome::ok(format!(
            "Generated a {}-character password into {target}",
            c.length
        ))
        .with("generated", true)
        .with("length", c.length)
        .with(target, "*".repeat(8))
        .set_field(contact, target, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, run};
    use crate::helpers::{Change, DynHelper, seed_for};
    use serde_json::json;

    fn written(out: &Outcome) -> String {
        match out.changes.as_slice() {
            [Change::SetField { value: Some(v), .. }] => v.clone(),
            other => panic!("expected one field write, got {other:?}"),
        }
    }

    fn passwords(cfg: serde_json::Value, n: usize) -> Vec<String> {
        let Ok(Runnable::Sync(step)) = PasswordIt.build_json(&cfg) else {
            panic!("sync step")
        };
        let mut env = Env::new();
        (0..n)
            .map(|i| {
                env.execution_id = format!("exec-{i}");
                env.seed = seed_for(&env.execution_id);
                written(&step.run(&env.ctx(), &contact(&[], &[])).unwrap())
            })
            .collect()
    }

    #[test]
    fn generates_into_an_empty_field_without_leaking_it() {
        let out = run(
            &PasswordIt,
            json!({"target_field": "_Password"}),
            &contact(&[], &[]),
        );
        let pw = written(&out);
        assert_eq!(pw.chars().count(), 12);
        assert_eq!(out.output["_Password"], "********");
        assert_eq!(out.output["generated"], true);
        assert!(!out.message.contains(&pw));
        assert!(out.logs.iter().all(|l| !l.contains(&pw)));
        assert!(!serde_json::to_string(&out.output).unwrap().contains(&pw));
    }

    #[test]
    fn every_class_appears_and_no_ambiguous_or_unsafe_characters() {
        for pw in passwords(json!({"target_field": "p", "length": 6}), 300) {
            assert_eq!(pw.len(), 6);
            assert!(pw.chars().any(|c| c.is_ascii_lowercase()), "{pw}");
            assert!(pw.chars().any(|c| c.is_ascii_uppercase()), "{pw}");
            assert!(pw.chars().any(|c| c.is_ascii_digit()), "{pw}");
            assert!(pw.chars().any(|c| SPECIAL.contains(c)), "{pw}");
            assert!(
                !pw.chars()
                    .any(|c| AMBIGUOUS.contains(c) || "<>&\"'`%#?=+ ".contains(c)),
                "{pw}"
            );
        }
        for pw in passwords(
            json!({"target_field": "p", "length": 128, "include_special": false}),
            20,
        ) {
            assert_eq!(pw.len(), 128);
            assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");
        }
        let loose = passwords(
            json!({"target_field": "p", "exclude_ambiguous": false, "length": 64}),
            50,
        );
        assert!(
            loose
                .iter()
                .any(|pw| pw.chars().any(|c| AMBIGUOUS.contains(c)))
        );
    }

    #[test]
    fn passwords_differ_per_execution_and_redelivery_repeats() {
        let all = passwords(json!({"target_field": "p"}), 100);
        let unique: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 100);
        let again = passwords(json!({"target_field": "p"}), 100);
        assert_eq!(all, again);
    }

    #[test]
    fn existing_value_is_kept_unless_overwriting() {
        let c = contact(&[("p", "sent-to-customer")], &[]);
        let out = run(&PasswordIt, json!({"target_field": "p"}), &c);
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["generated"], false);
        let out = run(
            &PasswordIt,
            json!({"target_field": "p", "overwrite": true}),
            &c,
        );
        assert_ne!(written(&out), "sent-to-customer");
        let blank = run(
            &PasswordIt,
            json!({"target_field": "p"}),
            &contact(&[("p", "  ")], &[]),
        );
        assert_eq!(written(&blank).len(), 12);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(&PasswordIt, json!({"target_field": " ", "length": 5}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["target_field", "length"]);
        assert_eq!(
            config_errors(&PasswordIt, json!({"target_field": "p", "length": 129}))[0].field,
            "length"
        );
        assert!(!config_errors(&PasswordIt, json!({"target_field": "p", "length": -1})).is_empty());
        assert!(!config_errors(&PasswordIt, json!({"length": 12})).is_empty());
    }
}
