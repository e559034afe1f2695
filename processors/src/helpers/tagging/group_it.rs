//! group_it: turns a field value into group membership. It builds the tag name
//! `tag_prefix + value` (e.g. `State: Texas`), finds that tag in the CRM's tag catalog
//! (names compared without case) and applies it. A missing tag is created (in
//! `tag_category`) through `ApplyTagNamed` when `create_missing` (default); otherwise the
//! run fails. The value is normalised first (`trim` by default; `title`, `upper` and
//! `lower` also trim and collapse inner spaces) so case and spacing variants do not make
//! duplicate groups, and the name is cut to 100 characters (Keap's limit). With
//! `exclusive`, the contact's other tags whose catalog name starts with the prefix are
//! removed first, so it sits in exactly one group. An empty field succeeds without a tag.
//! Idempotent.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// Longest tag name written; longer names are cut.
pub const MAX_TAG_NAME: usize = 100;

/// How the field value is cleaned before it becomes part of the tag name.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// As written.
    None,
    /// Surrounding whitespace removed (default).
    #[default]
    Trim,
    /// Trimmed, inner spaces collapsed, each word capitalised.
    Title,
    /// Trimmed, inner spaces collapsed, upper case.
    Upper,
    /// Trimmed, inner spaces collapsed, lower case.
    Lower,
}

impl Normalize {
    fn apply(self, value: &str) -> String {
        let words = || value.split_whitespace().collect::<Vec<_>>().join(" ");
        match self {
            Self::None => value.to_owned(),
            Self::Trim => value.trim().to_owned(),
            Self::Upper => words().to_uppercase(),
            Self::Lower => words().to_lowercase(),
            Self::Title => value
                .split_whitespace()
                .map(|w| {
                    let mut chars = w.chars();
                    chars.next().map_or_else(String::new, |f| {
                        f.to_uppercase()
                            .chain(chars.flat_map(char::to_lowercase))
                            .collect()
                    })
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Config of group_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field whose value names the group. Example: `State`.
    pub field: String,
    /// Put before the value to make the tag name. Example: `"State: "`.
    pub tag_prefix: String,
    /// Create the tag when the CRM lacks it; default true.
    #[serde(default = "default_true")]
    pub create_missing: bool,
    /// Category for a created tag.
    pub tag_category: Option<String>,
    /// Remove the contact's other tags that share the prefix; default false.
    #[serde(default)]
    pub exclusive: bool,
    /// `none`, `trim` (default), `title`, `upper` or `lower`.
    #[serde(default)]
    pub normalize: Normalize,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.field.trim().is_empty(),
            "field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.tag_prefix.trim().is_empty(),
            "tag_prefix",
            "must not be empty",
        );
        check(
            &mut errors,
            self.tag_prefix.chars().count() >= MAX_TAG_NAME,
            "tag_prefix",
            "leaves no room for the value in a 100-character tag name",
        );
        check(
            &mut errors,
            self.tag_category
                .as_deref()
                .is_some_and(|c| c.trim().is_empty()),
            "tag_category",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The group_it helper.
pub struct GroupIt;

impl Helper for GroupIt {
    const NAME: &'static str = "group_it";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str =
        "Applies the tag named prefix plus a field value, creating it when missing.";
    const EXAMPLE_CONFIG: &'static str = r#"{"field": "state", "tag_prefix": "State: ", "tag_category": "States", "exclusive": true, "normalize": "title"}"#;
    const OUTPUTS: &'static [&'static str] = &["tag_name", "tag_id", "created", "removed"];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(GroupItStep(config)))
    }
}

struct GroupItStep(Config);

impl GroupItStep {
    /// The lower-cased prefix other group tags are recognised by. A prefix ending in
    /// punctuation and a space (`"State: "`) also matches names the CRM trimmed
    /// (`"State:Texas"`).
    fn group_prefix(&self) -> String {
        let p = self.0.tag_prefix.trim_start();
        let t = p.trim_end();
        let key = if t.ends_with(|c: char| !c.is_alphanumeric()) {
            t
        } else {
            p
        };
        key.to_lowercase()
    }
}

#[async_trait::async_trait]
impl AsyncStep for GroupItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let Some(raw) = contact.field(&c.field) else {
            return Ok(Outcome::ok(format!("{} is empty; no group tag", c.field))
                .with("tag_name", Value::Null)
                .with("tag_id", Value::Null)
                .with("created", false)
                .with("removed", Vec::<String>::new()));
        };
        let mut name: String = format!("{}{}", c.tag_prefix, c.normalize.apply(raw))
            .trim()
            .chars()
            .take(MAX_TAG_NAME)
            .collect();
        name = name.trim_end().to_owned();
        let catalog = ctx.crm.list_tags().await?;
        let wanted = name.to_lowercase();
        let found = catalog
            .iter()
            .find(|t| t.name.trim().to_lowercase() == wanted)
            .map(|t| t.id.clone());
        if found.is_none() && !c.create_missing {
            return Ok(Outcome::failed(format!(
                "Tag {name:?} does not exist and create_missing is off"
            ))
            .with("tag_name", name)
            .with("tag_id", Value::Null)
            .with("created", false)
            .with("removed", Vec::<String>::new()));
        }
        let mut removed = Vec::new();
        if c.exclusive {
            let prefix = self.group_prefix();
            for (id, contact_name) in &contact.tags {
                let tag_name = catalog
                    .iter()
                    .find(|t| t.id == *id)
                    .map_or(contact_name.as_str(), |t| t.name.as_str());
                let folded = tag_name.trim().to_lowercase();
                let same = found.as_ref() == Some(id) || folded == wanted;
                if !same && folded.starts_with(&prefix) {
                    removed.push(id.clone());
                }
            }
        }
        let mut out = Outcome::ok("");
        for id in &removed {
            out = out.change(Change::RemoveTag { tag_id: id.clone() });
        }
        let created = found.is_none();
        out = match &found {
            Some(id) if contact.has_tag(id) => out,
            Some(id) => out.change(Change::ApplyTag { tag_id: id.clone() }),
            None => out.change(Change::ApplyTagNamed {
                name: name.clone(),
                category: c.tag_category.as_deref().map(|s| s.trim().to_owned()),
            }),
        };
        out.message = if created {
            format!("Creating and applying tag {name:?}")
        } else {
            format!("Contact is in group {name:?}")
        };
        Ok(out
            .with("tag_name", name)
            .with("tag_id", found.map_or(Value::Null, Value::from))
            .with("created", created)
            .with("removed", removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Tag;
    use crate::helpers::testing::{Env, config_errors};
    use serde_json::json;

    fn env() -> Env {
        let mut env = Env::new();
        env.crm.tags = [
            ("1", "State: Texas"),
            ("2", "State: Ohio"),
            ("3", "Buyer"),
            ("4", "State:Utah"),
        ]
        .iter()
        .map(|(i, n)| Tag {
            id: (*i).into(),
            name: (*n).into(),
            category: None,
        })
        .collect();
        env
    }

    fn person(state: &str, tags: &[(&str, &str)]) -> Contact {
        Contact {
            id: "c-1".into(),
            fields: [("state".to_owned(), state.to_owned())].into(),
            tags: tags
                .iter()
                .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
                .collect(),
            ..Contact::default()
        }
    }

    #[tokio::test]
    async fn applies_the_existing_tag_found_without_case() {
        let out = env()
            .run(
                &GroupIt,
                json!({"field": "state", "tag_prefix": "State: "}),
                &person("  texas ", &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "1".into() }]);
        assert_eq!(out.output["tag_id"], json!("1"));
        assert_eq!(out.output["tag_name"], json!("State: texas"));
        assert_eq!(out.output["created"], json!(false));
    }

    #[tokio::test]
    async fn creates_a_missing_tag_in_its_category() {
        let cfg = json!({"field": "state", "tag_prefix": "State: ", "tag_category": "States", "normalize": "title"});
        let out = env()
            .run(&GroupIt, cfg, &person("new   MEXICO", &[]))
            .await
            .unwrap();
        assert_eq!(
            out.changes,
            vec![Change::ApplyTagNamed {
                name: "State: New Mexico".into(),
                category: Some("States".into())
            }]
        );
        assert_eq!(out.output["created"], json!(true));
        assert_eq!(out.output["tag_id"], Value::Null);
    }

    #[tokio::test]
    async fn missing_tag_fails_when_creation_is_off() {
        let cfg = json!({"field": "state", "tag_prefix": "State: ", "create_missing": false});
        let out = env()
            .run(&GroupIt, cfg, &person("Maine", &[]))
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(
            out.message,
            "Tag \"State: Maine\" does not exist and create_missing is off"
        );
    }

    #[tokio::test]
    async fn exclusive_removes_other_groups_first() {
        let cfg = json!({"field": "state", "tag_prefix": "State: ", "exclusive": true});
        let c = person(
            "Texas",
            &[("2", "State: Ohio"), ("3", "Buyer"), ("4", "State:Utah")],
        );
        let out = env().run(&GroupIt, cfg.clone(), &c).await.unwrap();
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag { tag_id: "2".into() },
                Change::RemoveTag { tag_id: "4".into() },
                Change::ApplyTag { tag_id: "1".into() }
            ]
        );
        assert_eq!(out.output["removed"], json!(["2", "4"]));
        let done = person("Texas", &[("1", "State: Texas"), ("3", "Buyer")]);
        let again = env().run(&GroupIt, cfg, &done).await.unwrap();
        assert!(
            again.changes.is_empty() && again.success,
            "{:?}",
            again.changes
        );
    }

    #[tokio::test]
    async fn empty_field_succeeds_without_a_tag() {
        let cfg = json!({"field": "state", "tag_prefix": "State: ", "exclusive": true});
        let out = env()
            .run(&GroupIt, cfg, &person("  ", &[("2", "State: Ohio")]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["tag_name"], Value::Null);
    }

    #[tokio::test]
    async fn long_names_are_cut_to_100_characters() {
        let cfg = json!({"field": "state", "tag_prefix": "State: "});
        let out = env()
            .run(&GroupIt, cfg, &person(&"é".repeat(150), &[]))
            .await
            .unwrap();
        let name = out.output["tag_name"].as_str().unwrap();
        assert_eq!(name.chars().count(), MAX_TAG_NAME);
        assert!(name.starts_with("State: éé"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(Normalize::Title.apply(" sAN  antonio "), "San Antonio");
        assert_eq!(Normalize::Upper.apply(" ny "), "NY");
        assert_eq!(Normalize::Lower.apply("A  B"), "a b");
        assert_eq!(Normalize::None.apply(" x "), " x ");
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&GroupIt, json!({"field": "state"})).is_empty());
        let errs = config_errors(
            &GroupIt,
            json!({"field": " ", "tag_prefix": " ", "tag_category": "", "normalize": "trim"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["field", "tag_prefix", "tag_category"]);
        assert!(
            !config_errors(
                &GroupIt,
                json!({"field": "a", "tag_prefix": "x".repeat(100)})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &GroupIt,
                json!({"field": "a", "tag_prefix": "p", "normalize": "snake"})
            )
            .is_empty()
        );
    }
}
