//! count_tags: counts the tags on this contact and writes the number into a field. With
//! `category`, only tags the CRM's tag catalog files under that category count (compared
//! without case); a CRM without a tag catalog falls back to the `Category: Name` naming
//! convention. With `prefix`, only tags whose name starts with it count (case-insensitive
//! unless `case_sensitive`). Both filters may be combined. Zero tags writes "0"; it does not
//! skip. Idempotent.

use crate::connectors::{Capability, CrmError};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Config of count_tags.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field that receives the count.
    pub target_field: String,
    /// Count only tags in this category (name).
    pub category: Option<String>,
    /// Count only tags whose name starts with this.
    pub prefix: Option<String>,
    /// Compare `prefix` case-sensitively; default false.
    #[serde(default)]
    pub case_sensitive: bool,
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
            self.category
                .as_deref()
                .is_some_and(|c| c.trim().is_empty()),
            "category",
            "must not be empty",
        );
        check(
            &mut errors,
            self.prefix.as_deref().is_some_and(|p| p.trim().is_empty()),
            "prefix",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The count_tags helper.
pub struct CountTags;

impl Helper for CountTags {
    const NAME: &'static str = "count_tags";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str =
        "Counts the tags on the contact, optionally by category or name prefix, into a field.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"target_field": "_WebinarCount", "category": "Webinars"}"#;
    const OUTPUTS: &'static [&'static str] = &["count", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(CountTagsStep(config)))
    }
}

struct CountTagsStep(Config);

impl CountTagsStep {
    /// Tag id → category name from the catalog, or `None` when the CRM has no catalog.
    async fn categories(
        &self,
        ctx: &Ctx<'_>,
    ) -> Result<Option<BTreeMap<String, String>>, StepError> {
        if self.0.category.is_none() {
            return Ok(Some(BTreeMap::new()));
        }
        match ctx.crm.list_tags().await {
            Ok(tags) => Ok(Some(
                tags.into_iter()
                    .filter_map(|t| t.category.map(|c| (t.id, c)))
                    .collect(),
            )),
            Err(CrmError::Unsupported { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for CountTagsStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let catalog = self.categories(ctx).await?;
        let fold = |s: &str| {
            if c.case_sensitive {
                s.to_owned()
            } else {
                s.to_lowercase()
            }
        };
        let prefix = c.prefix.as_deref().map(|p| fold(p.trim_start()));
        let category = c.category.as_deref().map(|s| s.trim().to_lowercase());
        let in_category = |id: &str, name: &str| match (&category, &catalog) {
            (None, _) => true,
            (Some(want), Some(cats)) => cats
                .get(id)
                .is_some_and(|have| have.trim().to_lowercase() == *want),
            (Some(want), None) => name
                .split_once(':')
                .is_some_and(|(cat, _)| cat.trim().to_lowercase() == *want),
        };
        let count = contact
            .tags
            .iter()
            .filter(|(id, name)| in_category(id, name))
            .filter(|(_, name)| {
                prefix
                    .as_deref()
                    .is_none_or(|p| fold(name.trim_start()).starts_with(p))
            })
            .count();
        let target = c.target_field.trim();
        let mut out = Outcome::ok(format!("{target} = {count}"))
            .with("count", count)
            .with(target, count.to_string())
            .set_field(contact, target, count.to_string());
        if catalog.is_none() {
            out = out.log("The CRM has no tag catalog; matched categories by \"Category: Name\".");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{CrmRead, Tag};
    use crate::helpers::testing::{Env, config_errors, set};
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

    fn tag(id: &str, name: &str, category: Option<&str>) -> Tag {
        Tag {
            id: id.into(),
            name: name.into(),
            category: category.map(Into::into),
        }
    }

    #[tokio::test]
    async fn counts_all_tags() {
        let out = Env::new()
            .run(
                &CountTags,
                json!({"target_field": "n"}),
                &named(&[("1", "A"), ("2", "B")]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("n", "2")]);
        assert_eq!(
            (out.output["count"].clone(), out.output["n"].clone()),
            (json!(2), json!("2"))
        );
    }

    #[tokio::test]
    async fn zero_tags_writes_zero_and_rerun_is_a_no_op() {
        let env = Env::new();
        let out = env
            .run(&CountTags, json!({"target_field": "n"}), &named(&[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("n", "0")]);
        let mut done = named(&[]);
        done.fields.insert("n".into(), "0".into());
        let again = env
            .run(&CountTags, json!({"target_field": "n"}), &done)
            .await
            .unwrap();
        assert!(again.changes.is_empty() && again.success);
    }

    #[tokio::test]
    async fn category_uses_the_tag_catalog() {
        let mut env = Env::new();
        env.crm.tags = vec![
            tag("1", "March", Some("Webinars")),
            tag("2", "April", Some("webinars ")),
            tag("3", "Buyer", Some("Customers")),
            tag("4", "Webinars: May", None),
        ];
        let c = named(&[
            ("1", "March"),
            ("2", "April"),
            ("3", "Buyer"),
            ("4", "Webinars: May"),
        ]);
        let out = env
            .run(
                &CountTags,
                json!({"target_field": "n", "category": "Webinars"}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(out.output["count"], json!(2));
        let both = env
            .run(
                &CountTags,
                json!({"target_field": "n", "category": "webinars", "prefix": "mar"}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(both.output["count"], json!(1));
    }

    #[tokio::test]
    async fn prefix_ignores_case_unless_asked() {
        let c = named(&[("1", "Zoom: a"), ("2", "zoom: b"), ("3", "My Zoom")]);
        let env = Env::new();
        let out = env
            .run(
                &CountTags,
                json!({"target_field": "n", "prefix": "Zoom:"}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(out.output["count"], json!(2));
        let strict = env
            .run(
                &CountTags,
                json!({"target_field": "n", "prefix": "Zoom:", "case_sensitive": true}),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(strict.output["count"], json!(1));
    }

    /// A CRM without a tag catalog.
    struct NoCatalog;
    #[async_trait::async_trait]
    impl CrmRead for NoCatalog {}

    #[tokio::test]
    async fn without_a_catalog_categories_come_from_tag_names() {
        let env = Env::new();
        let mut ctx = env.ctx();
        ctx.crm = &NoCatalog;
        let step = CountTags.build(Config {
            target_field: "n".into(),
            category: Some("Webinars".into()),
            prefix: None,
            case_sensitive: false,
        });
        let c = named(&[
            ("1", "Webinars: March"),
            ("2", "webinars:April"),
            ("3", "Webinars"),
        ]);
        let out = step.run(&ctx, &c).await.unwrap();
        assert_eq!(out.output["count"], json!(2));
        assert_eq!(out.logs.len(), 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&CountTags, json!({})).is_empty());
        let errs = config_errors(
            &CountTags,
            json!({"target_field": " ", "category": "", "prefix": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["target_field", "category", "prefix"]);
    }
}
