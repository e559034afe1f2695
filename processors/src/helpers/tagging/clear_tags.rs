//! clear_tags: removes tags from the contact, chosen by mode: the listed ids (`specific`),
//! every tag (`all`), tags whose name starts with `prefix`, or tags in a `category`. The
//! contact snapshot carries tag names but no tag catalog, so a tag counts as being in
//! category `C` when its name starts with `C:` (the `Category: Name` convention, e.g.
//! `Webinar: March`); a trailing colon on the configured category is ignored. Prefix and
//! category matching ignore case unless `case_sensitive` is set. `exclude_tag_ids` protects
//! tags (consent, system) in every mode. Tags the contact lacks are never removed, so the
//! helper is idempotent.

use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// How the tags to remove are chosen.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The ids in `tag_ids`.
    Specific,
    /// Every tag on the contact.
    All,
    /// Tags whose name starts with `prefix`.
    Prefix,
    /// Tags whose name starts with `<category>:`.
    Category,
}

/// Config of clear_tags.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The selection mode.
    pub mode: Mode,
    /// Tag ids to remove; required for `specific`.
    #[serde(default)]
    pub tag_ids: Vec<String>,
    /// Tag-name prefix; required for `prefix`. Example: `"Webinar:"`.
    pub prefix: Option<String>,
    /// Category name; required for `category`. Example: `"Webinar"`.
    pub category: Option<String>,
    /// Compare prefixes and categories case-sensitively; default false.
    #[serde(default)]
    pub case_sensitive: bool,
    /// Tag ids never removed, whatever the mode.
    #[serde(default)]
    pub exclude_tag_ids: Vec<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        let cat_blank = self
            .category
            .as_deref()
            .is_none_or(|c| c.trim().trim_end_matches(':').trim().is_empty());
        check(
            &mut errors,
            self.mode == Mode::Specific && self.tag_ids.is_empty(),
            "tag_ids",
            "must list at least one tag id for mode specific",
        );
        check(
            &mut errors,
            self.mode == Mode::Prefix && blank(&self.prefix),
            "prefix",
            "is required for mode prefix",
        );
        check(
            &mut errors,
            self.mode == Mode::Category && cat_blank,
            "category",
            "is required for mode category",
        );
        check(
            &mut errors,
            self.tag_ids.iter().any(|t| t.trim().is_empty()),
            "tag_ids",
            "tag ids must not be empty",
        );
        check(
            &mut errors,
            self.exclude_tag_ids.iter().any(|t| t.trim().is_empty()),
            "exclude_tag_ids",
            "tag ids must not be empty",
        );
        finish(errors)
    }
}

/// The clear_tags helper.
pub struct ClearTags;

impl Helper for ClearTags {
    const NAME: &'static str = "clear_tags";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str =
        "Removes listed tags, all tags, or tags by name prefix or category.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"mode": "prefix", "prefix": "Webinar:", "exclude_tag_ids": ["9"]}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Tags];
    const OUTPUTS: &'static [&'static str] = &["removed", "matched", "failed"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let needle = match config.mode {
            Mode::Prefix => config
                .prefix
                .as_deref()
                .map(str::trim_start)
                .map(str::to_owned),
            Mode::Category => config
                .category
                .as_deref()
                .map(|c| format!("{}:", c.trim().trim_end_matches(':').trim())),
            Mode::Specific | Mode::All => None,
        };
        let needle = needle.map(|n| fold(&n, config.case_sensitive));
        Runnable::Sync(Box::new(ClearTagsStep { config, needle }))
    }
}

/// The form names are compared in: as written, or lower-cased.
fn fold(s: &str, case_sensitive: bool) -> String {
    if case_sensitive {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

struct ClearTagsStep {
    config: Config,
    /// The folded name prefix for `prefix` and `category` modes.
    needle: Option<String>,
}

impl ClearTagsStep {
    fn selects(&self, id: &str, name: &str) -> bool {
        match self.config.mode {
            Mode::Specific => self.config.tag_ids.iter().any(|t| t == id),
            Mode::All => true,
            Mode::Prefix | Mode::Category => {
                let name = fold(name.trim_start(), self.config.case_sensitive);
                self.needle.as_deref().is_some_and(|n| name.starts_with(n))
            }
        }
    }
}

impl Step for ClearTagsStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let matched: Vec<&String> = contact
            .tags
            .iter()
            .filter(|(id, name)| self.selects(id, name))
            .map(|(id, _)| id)
            .collect();
        let (excluded, removed): (Vec<&String>, Vec<&String>) = matched
            .iter()
            .copied()
            .partition(|id| self.config.exclude_tag_ids.contains(*id));
        let mode = format!("{:?}", self.config.mode).to_lowercase();
        let mut out = Outcome::ok(format!(
            "Removed {} of {} tags ({mode})",
            removed.len(),
            matched.len()
        ))
        .with(
            "removed",
            removed.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        )
        .with(
            "excluded",
            excluded.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        )
        .with("matched", matched.len())
        .with("failed", Vec::<String>::new());
        for t in removed {
            out = out.change(Change::RemoveTag { tag_id: t.clone() });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, run};
    use serde_json::json;

    fn named(tags: &[(&str, &str)]) -> Contact {
        Contact {
            id: "c-1".into(),
            tags: tags
                .iter()
                .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
                .collect(),
            ..Contact::default()
        }
    }

    fn removed(out: &Outcome) -> Vec<&str> {
        out.changes.iter().map(Change::target).collect()
    }

    #[test]
    fn specific_removes_only_listed_tags_the_contact_has() {
        let c = named(&[("1", "A"), ("2", "B")]);
        let out = run(
            &ClearTags,
            json!({"mode": "specific", "tag_ids": ["2", "7"]}),
            &c,
        );
        assert_eq!(out.changes, vec![Change::RemoveTag { tag_id: "2".into() }]);
        assert_eq!(out.output["matched"], json!(1));
        assert_eq!(out.message, "Removed 1 of 1 tags (specific)");
    }

    #[test]
    fn all_respects_exclusions() {
        let c = named(&[("1", "A"), ("2", "Consent"), ("3", "C")]);
        let out = run(
            &ClearTags,
            json!({"mode": "all", "exclude_tag_ids": ["2"]}),
            &c,
        );
        assert_eq!(removed(&out), vec!["1", "3"]);
        assert_eq!(out.output["excluded"], json!(["2"]));
        assert_eq!(out.output["matched"], json!(3));
    }

    #[test]
    fn prefix_is_case_insensitive_by_default() {
        let c = named(&[
            ("1", "webinar: March"),
            ("2", "Webinar: April"),
            ("3", "Buyer"),
            ("4", "My Webinar:"),
        ]);
        let out = run(
            &ClearTags,
            json!({"mode": "prefix", "prefix": "Webinar:"}),
            &c,
        );
        assert_eq!(removed(&out), vec!["1", "2"]);
        let strict = run(
            &ClearTags,
            json!({"mode": "prefix", "prefix": "Webinar:", "case_sensitive": true}),
            &c,
        );
        assert_eq!(removed(&strict), vec!["2"]);
    }

    #[test]
    fn category_matches_category_colon_names() {
        let c = named(&[
            ("1", "Lead Source: Facebook"),
            ("2", "Lead Source:Google"),
            ("3", "Lead Sources"),
            ("4", "Lead Source"),
        ]);
        let out = run(
            &ClearTags,
            json!({"mode": "category", "category": "lead source"}),
            &c,
        );
        assert_eq!(removed(&out), vec!["1", "2"]);
        let colon = run(
            &ClearTags,
            json!({"mode": "category", "category": "Lead Source:"}),
            &c,
        );
        assert_eq!(removed(&colon), vec!["1", "2"]);
    }

    #[test]
    fn nothing_matching_is_a_success_without_changes() {
        let out = run(
            &ClearTags,
            json!({"mode": "prefix", "prefix": "Zoom"}),
            &named(&[("1", "A")]),
        );
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.message, "Removed 0 of 0 tags (prefix)");
    }

    #[test]
    fn mode_requirements_are_config_errors() {
        assert!(!config_errors(&ClearTags, json!({"mode": "specific"})).is_empty());
        assert!(!config_errors(&ClearTags, json!({"mode": "prefix", "prefix": " "})).is_empty());
        assert!(
            !config_errors(&ClearTags, json!({"mode": "category", "category": ":"})).is_empty()
        );
        assert!(!config_errors(&ClearTags, json!({"mode": "wipe"})).is_empty());
        assert!(!config_errors(&ClearTags, json!({})).is_empty());
        let errs = config_errors(
            &ClearTags,
            json!({"mode": "all", "tag_ids": [""], "exclude_tag_ids": [" "]}),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(config_errors(&ClearTags, json!({"mode": "all"})).is_empty());
    }
}
