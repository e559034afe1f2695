//! company_link: reads a company name from a contact field, finds that company in the CRM
//! and links the contact to the company record (Keap `company_id`, a HubSpot association,
//! ...), creating the company when it is missing and `create_if_missing` (default). The
//! rebuild only copied the name into a text field, which is no link. `match: normalized`
//! (default) compares names without case, punctuation or legal suffixes ("Acme, Inc." =
//! "ACME LLC"); `exact_ci` compares trimmed names without case. Several matches → the
//! oldest company wins, and that is logged. `copy_fields` copies company fields (or its
//! `name`) into contact fields. An empty field is a no-op. Idempotent: an existing link is
//! not rewritten.

use crate::connectors::{Capability, Company};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// How names are compared.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Trimmed, case-insensitive.
    ExactCi,
    /// Also ignoring punctuation and legal suffixes (default).
    #[default]
    Normalized,
}

/// Config of company_link.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the company name. Example: `company`.
    pub company_field: String,
    /// Create the company when none matches; default true.
    #[serde(default = "default_true")]
    pub create_if_missing: bool,
    /// `normalized` (default) or `exact_ci`.
    #[serde(default, rename = "match")]
    pub match_mode: Match,
    /// Company field (or `name`) → contact field, copied from a found company.
    #[serde(default)]
    pub copy_fields: BTreeMap<String, String>,
}

/// Legal-form words ignored at the end of a normalised name.
const SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "plc",
    "sa",
    "ag",
    "pty",
    "pllc",
];

/// A name without case, punctuation or trailing legal suffixes.
pub(crate) fn normalize(name: &str) -> String {
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    while words.len() > 1 && words.last().is_some_and(|w| SUFFIXES.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.company_field.trim().is_empty(),
            "company_field",
            "must not be empty",
        );
        for (from, to) in &self.copy_fields {
            check(
                &mut errors,
                from.trim().is_empty() || to.trim().is_empty(),
                &format!("copy_fields.{from}"),
                "company and contact field keys must not be empty",
            );
            check(
                &mut errors,
                !to.trim().is_empty() && to.trim() == self.company_field.trim(),
                &format!("copy_fields.{from}"),
                "must not overwrite company_field",
            );
        }
        finish(errors)
    }
}

/// The company_link helper.
pub struct CompanyLink;

impl Helper for CompanyLink {
    const NAME: &'static str = "company_link";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Links the contact to the company named in a field, creating the company when missing.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"company_field": "company", "copy_fields": {"website": "_CompanySite"}}"#;
    const OUTPUTS: &'static [&'static str] = &["company_id", "company_name", "created"];
    const REQUIRES: &'static [Capability] = &[Capability::Companies];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(CompanyLinkStep(config)))
    }
}

struct CompanyLinkStep(Config);

impl CompanyLinkStep {
    /// The search text: the whole name for `exact_ci`, else its first word without
    /// surrounding punctuation, which every spelling variant contains.
    fn needle<'a>(&self, name: &'a str) -> &'a str {
        if self.0.match_mode == Match::ExactCi {
            return name;
        }
        name.split_whitespace()
            .next()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .unwrap_or(name)
    }

    fn same(&self, a: &str, b: &str) -> bool {
        match self.0.match_mode {
            Match::ExactCi => a.trim().to_lowercase() == b.trim().to_lowercase(),
            Match::Normalized => normalize(a) == normalize(b),
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for CompanyLinkStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let field = c.company_field.trim();
        let Some(name) = contact.field(field).map(str::trim) else {
            return Ok(Outcome::ok(format!("{field} is empty; nothing to link"))
                .with("company_id", Value::Null)
                .with("created", false));
        };
        let mut matches: Vec<Company> = ctx
            .crm
            .find_companies(self.needle(name))
            .await?
            .into_iter()
            .filter(|co| self.same(&co.name, name))
            .collect();
        matches.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let mut out = Outcome::ok("");
        let Some(company) = matches.first() else {
            if !c.create_if_missing {
                return Ok(Outcome::failed(format!(
                    "No company matches {name:?} and create_if_missing is off"
                ))
                .with("company_id", Value::Null)
                .with("company_name", name)
                .with("created", false));
            }
            out.message = format!("Creating company {name:?} and linking the contact");
            return Ok(out
                .with("company_id", Value::Null)
                .with("company_name", name)
                .with("created", true)
                .change(Change::LinkCompany {
                    company_id: None,
                    company_name: name.to_owned(),
                }));
        };
        if matches.len() > 1 {
            let ids: Vec<&str> = matches.iter().map(|m| m.id.as_str()).collect();
            out = out.log(format!(
                "{} companies match {name:?} ({}); linked the oldest.",
                matches.len(),
                ids.join(", ")
            ));
        }
        out = out
            .with("company_id", company.id.clone())
            .with("company_name", company.name.clone())
            .with("created", false);
        if contact.company_id.as_deref() == Some(company.id.as_str()) {
            out.message = format!("Already linked to {}", company.name);
        } else {
            out.message = format!("Linked to {} ({})", company.name, company.id);
            out = out.change(Change::LinkCompany {
                company_id: Some(company.id.clone()),
                company_name: company.name.clone(),
            });
        }
        for (from, to) in &c.copy_fields {
            let value = company
                .fields
                .get(from.trim())
                .map(String::as_str)
                .or((from.trim() == "name").then_some(company.name.as_str()))
                .map(str::trim)
                .filter(|v| !v.is_empty());
            if let Some(v) = value {
                out = out.set_field(contact, to.trim(), v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn company(id: &str, name: &str, created_at: i64) -> Company {
        Company {
            id: id.into(),
            name: name.into(),
            fields: [("website".to_owned(), format!("https://{id}.example"))].into(),
            created_at,
        }
    }

    fn env() -> Env {
        let mut env = Env::new();
        env.crm.companies = vec![
            company("co-2", "ACME LLC", 200),
            company("co-1", "Acme, Inc.", 100),
            company("co-3", "Acme Rockets", 50),
            company("co-4", "A.B.C. Corporation", 10),
        ];
        env
    }

    fn link(id: &str, name: &str) -> Change {
        Change::LinkCompany {
            company_id: Some(id.into()),
            company_name: name.into(),
        }
    }

    #[tokio::test]
    async fn links_the_oldest_normalised_match_and_copies_fields() {
        let cfg = json!({"company_field": "company", "copy_fields": {"website": "_Site", "name": "_CompanyName"}});
        let out = env()
            .run(&CompanyLink, cfg, &contact(&[("company", " acme ")], &[]))
            .await
            .unwrap();
        assert_eq!(
            out.changes,
            vec![
                link("co-1", "Acme, Inc."),
                set("_CompanyName", "Acme, Inc."),
                set("_Site", "https://co-1.example")
            ]
        );
        assert_eq!(out.output["company_id"], json!("co-1"));
        assert_eq!(out.logs.len(), 1, "{:?}", out.logs);
        let abc = env()
            .run(
                &CompanyLink,
                json!({"company_field": "company"}),
                &contact(&[("company", "A.B.C. Corp")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(abc.changes, vec![link("co-4", "A.B.C. Corporation")]);
    }

    #[tokio::test]
    async fn exact_ci_needs_the_same_name() {
        let cfg =
            json!({"company_field": "company", "match": "exact_ci", "create_if_missing": false});
        let out = env()
            .run(
                &CompanyLink,
                cfg.clone(),
                &contact(&[("company", "acme llc")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![link("co-2", "ACME LLC")]);
        let none = env()
            .run(&CompanyLink, cfg, &contact(&[("company", "Acme")], &[]))
            .await
            .unwrap();
        assert!(!none.success && none.changes.is_empty());
    }

    #[tokio::test]
    async fn creates_a_missing_company() {
        let out = env()
            .run(
                &CompanyLink,
                json!({"company_field": "company"}),
                &contact(&[("company", " Globex ")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(
            out.changes,
            vec![Change::LinkCompany {
                company_id: None,
                company_name: "Globex".into()
            }]
        );
        assert_eq!(out.output["created"], json!(true));
    }

    #[tokio::test]
    async fn empty_field_and_existing_link_are_no_ops() {
        let env = env();
        let cfg = json!({"company_field": "company"});
        let empty = env
            .run(
                &CompanyLink,
                cfg.clone(),
                &contact(&[("company", " ")], &[]),
            )
            .await
            .unwrap();
        assert!(empty.success && empty.changes.is_empty());
        let linked = Contact {
            company_id: Some("co-3".into()),
            ..contact(&[("company", "Acme Rockets")], &[])
        };
        let out = env.run(&CompanyLink, cfg, &linked).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["company_id"], json!("co-3"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("Acme, Inc."), "acme");
        assert_eq!(normalize("ACME  Co LLC"), "acme");
        assert_eq!(normalize("The Company"), "the");
        assert_eq!(normalize("Co"), "co");
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&CompanyLink, json!({})).is_empty());
        let errs = config_errors(
            &CompanyLink,
            json!({"company_field": " ", "copy_fields": {"website": ""}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["company_field", "copy_fields.website"]);
        assert_eq!(
            config_errors(
                &CompanyLink,
                json!({"company_field": "c", "copy_fields": {"name": "c"}})
            )[0]
            .field,
            "copy_fields.name"
        );
        assert!(
            !config_errors(
                &CompanyLink,
                json!({"company_field": "c", "match": "fuzzy"})
            )
            .is_empty()
        );
    }
}
