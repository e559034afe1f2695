//! found_it: a branch on "was something found?". Mode `field` (default, REB) is true when
//! `check_field` has a value (whitespace-only counts as empty). Mode `duplicate` searches
//! the CRM for other contacts equal to this one on every `match_on` field (case-insensitive,
//! surrounding space ignored), excluding the contact itself; a contact lacking one of the
//! keys is never matched on it, so it is "not found". The outcome is delivered as the
//! found / not-found tag and goal; `save_match_id_to` stores the first match's id (lowest
//! id). Idempotent (goals re-fire on every run).

use crate::connectors::{Capability, ContactQuery, search_all};
use crate::helpers::tagging::count_it_tags::by_id;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// What is looked for.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A value in `check_field` (default).
    #[default]
    Field,
    /// Another contact matching on `match_on`.
    Duplicate,
}

/// Config of found_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `field` (default) or `duplicate`.
    #[serde(default)]
    pub mode: Mode,
    /// The field checked; required for `field`.
    pub check_field: Option<String>,
    /// Fields that must all match; required for `duplicate`. Example: `["email"]`.
    #[serde(default)]
    pub match_on: Vec<String>,
    /// Tag applied when found.
    pub found_tag_id: Option<String>,
    /// Tag applied when not found.
    pub not_found_tag_id: Option<String>,
    /// Goal achieved when found.
    pub found_goal: Option<String>,
    /// Goal achieved when not found.
    pub not_found_goal: Option<String>,
    /// Field that receives the first matching contact's id (`duplicate`).
    pub save_match_id_to: Option<String>,
}

/// Matches reported at most.
pub const MAX_REPORTED: usize = 100;

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        let field = self.mode == Mode::Field;
        check(
            &mut errors,
            field
                && self
                    .check_field
                    .as_deref()
                    .is_none_or(|f| f.trim().is_empty()),
            "check_field",
            "is required for mode field",
        );
        check(
            &mut errors,
            !field && self.match_on.is_empty(),
            "match_on",
            "must list at least one field for mode duplicate",
        );
        check(
            &mut errors,
            self.match_on.iter().any(|f| f.trim().is_empty()),
            "match_on",
            "field keys must not be empty",
        );
        check(
            &mut errors,
            field && !self.match_on.is_empty(),
            "match_on",
            "is only used with mode duplicate",
        );
        check(
            &mut errors,
            field && self.save_match_id_to.is_some(),
            "save_match_id_to",
            "is only used with mode duplicate",
        );
        for (name, v) in [
            ("found_tag_id", &self.found_tag_id),
            ("not_found_tag_id", &self.not_found_tag_id),
            ("found_goal", &self.found_goal),
            ("not_found_goal", &self.not_found_goal),
            ("save_match_id_to", &self.save_match_id_to),
        ] {
            check(&mut errors, blank(v), name, "must not be empty");
        }
        finish(errors)
    }
}

/// The found_it helper.
pub struct FoundIt;

impl Helper for FoundIt {
    const NAME: &'static str = "found_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Branches on whether a field has a value or a duplicate contact exists.";
    const EXAMPLE_CONFIG: &'static str = r#"{"mode": "duplicate", "match_on": ["email"], "found_tag_id": "301", "not_found_goal": "newLead"}"#;
    const OUTPUTS: &'static [&'static str] = &["found", "matched_contact_ids"];
    const REQUIRES: &'static [Capability] =
        &[Capability::Search, Capability::Tags, Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(FoundItStep(config)))
    }
}

struct FoundItStep(Config);

impl FoundItStep {
    /// Ids of other contacts matching on every key, lowest first; `Err` names an empty key.
    async fn duplicates(
        &self,
        ctx: &Ctx<'_>,
        contact: &Contact,
    ) -> Result<Result<Vec<String>, String>, StepError> {
        let mut parts = Vec::new();
        for key in &self.0.match_on {
            let key = key.trim();
            let Some(value) = contact.field(key) else {
                return Ok(Err(key.to_owned()));
            };
            parts.push(ContactQuery::FieldEquals {
                field: key.to_owned(),
                value: value.trim().to_owned(),
            });
        }
        let query = ContactQuery::And(parts);
        let mut ids: Vec<String> = search_all(ctx.crm, &query, MAX_REPORTED + 1)
            .await?
            .into_iter()
            .map(|c| c.id)
            .filter(|id| *id != contact.id)
            .collect();
        ids.sort_by(|a, b| by_id(a, b));
        ids.truncate(MAX_REPORTED);
        Ok(Ok(ids))
    }
}

#[async_trait::async_trait]
impl AsyncStep for FoundItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let mut out = Outcome::ok("");
        let found = match c.mode {
            Mode::Field => {
                let f = c.check_field.as_deref().unwrap_or_default().trim();
                let found = contact.field(f).is_some();
                out.message = format!("{f} {}", if found { "has a value" } else { "is empty" });
                found
            }
            Mode::Duplicate => match self.duplicates(ctx, contact).await? {
                Err(key) => {
                    out.message = format!("{key} is empty; no duplicate search");
                    out = out.with("matched_contact_ids", Vec::<String>::new());
                    false
                }
                Ok(ids) => {
                    out.message = format!("Found {} other matching contacts", ids.len());
                    if let (Some(field), Some(first)) = (&c.save_match_id_to, ids.first()) {
                        out = out.set_field(contact, field.trim(), first.clone());
                    }
                    let found = !ids.is_empty();
                    out = out.with("matched_contact_ids", ids);
                    found
                }
            },
        };
        out = out.with("found", found);
        Ok(if found {
            out.branch(contact, c.found_tag_id.as_deref(), c.found_goal.as_deref())
        } else {
            out.branch(
                contact,
                c.not_found_tag_id.as_deref(),
                c.not_found_goal.as_deref(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn person(id: &str, fields: &[(&str, &str)]) -> Contact {
        let mut c = contact(fields, &[]);
        c.id = id.into();
        c
    }

    fn env() -> Env {
        let mut env = Env::new();
        env.crm.contacts = vec![
            person("c-1", &[("email", "ada@x.com"), ("last_name", "Lovelace")]),
            person("9", &[("email", " ADA@x.com "), ("last_name", "Byron")]),
            person("12", &[("email", "ada@x.com"), ("last_name", "lovelace")]),
            person("30", &[("email", "bob@x.com")]),
        ];
        env
    }

    #[tokio::test]
    async fn field_mode_branches_on_a_value() {
        let cfg = json!({"check_field": "phone", "found_tag_id": "1", "not_found_tag_id": "2", "not_found_goal": "noPhone"});
        let env = Env::new();
        let yes = env
            .run(&FoundIt, cfg.clone(), &contact(&[("phone", "555")], &[]))
            .await
            .unwrap();
        assert_eq!(yes.changes, vec![Change::ApplyTag { tag_id: "1".into() }]);
        assert_eq!(yes.output["found"], json!(true));
        let no = env
            .run(&FoundIt, cfg, &contact(&[("phone", "  ")], &[]))
            .await
            .unwrap();
        assert_eq!(
            no.changes,
            vec![
                Change::ApplyTag { tag_id: "2".into() },
                Change::AchieveGoal {
                    call_name: "noPhone".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn duplicate_mode_excludes_the_contact_itself() {
        let cfg = json!({"mode": "duplicate", "match_on": ["email"], "found_goal": "dup", "save_match_id_to": "_DupId"});
        let me = env().crm.contacts[0].clone();
        let out = env().run(&FoundIt, cfg, &me).await.unwrap();
        assert_eq!(out.output["matched_contact_ids"], json!(["9", "12"]));
        assert_eq!(
            out.changes,
            vec![
                set("_DupId", "9"),
                Change::AchieveGoal {
                    call_name: "dup".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn duplicate_mode_requires_every_key_to_match() {
        let cfg = json!({"mode": "duplicate", "match_on": ["email", "last_name"]});
        let me = env().crm.contacts[0].clone();
        let out = env().run(&FoundIt, cfg, &me).await.unwrap();
        assert_eq!(out.output["matched_contact_ids"], json!(["12"]));
        let only = person("30", &[("email", "bob@x.com"), ("last_name", "B")]);
        let alone = env()
            .run(
                &FoundIt,
                json!({"mode": "duplicate", "match_on": ["email"], "not_found_tag_id": "5"}),
                &only,
            )
            .await
            .unwrap();
        assert_eq!(alone.output["found"], json!(false));
        assert_eq!(alone.changes, vec![Change::ApplyTag { tag_id: "5".into() }]);
    }

    #[tokio::test]
    async fn an_empty_key_is_never_matched() {
        let cfg = json!({"mode": "duplicate", "match_on": ["email"], "not_found_goal": "n"});
        let mut env = env();
        env.crm.contacts.push(person("40", &[("email", " ")]));
        let out = env
            .run(&FoundIt, cfg, &person("41", &[("email", " ")]))
            .await
            .unwrap();
        assert_eq!(out.output["found"], json!(false));
        assert_eq!(out.message, "email is empty; no duplicate search");
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "n".into()
            }]
        );
    }

    #[tokio::test]
    async fn rerun_does_not_reapply_a_held_tag() {
        let cfg = json!({"check_field": "phone", "found_tag_id": "1"});
        let out = Env::new()
            .run(&FoundIt, cfg, &contact(&[("phone", "5")], &["1"]))
            .await
            .unwrap();
        assert!(out.changes.is_empty() && out.success);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(config_errors(&FoundIt, json!({}))[0].field, "check_field");
        assert_eq!(
            config_errors(&FoundIt, json!({"mode": "duplicate"}))[0].field,
            "match_on"
        );
        let errs = config_errors(
            &FoundIt,
            json!({"check_field": "a", "match_on": ["email"], "save_match_id_to": "x", "found_goal": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["match_on", "save_match_id_to", "found_goal"]);
        assert!(!config_errors(&FoundIt, json!({"mode": "fuzzy", "check_field": "a"})).is_empty());
    }
}
