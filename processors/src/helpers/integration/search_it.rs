//! search_it: searches the CRM for a term (a `{{field}}` template) across chosen fields,
//! with `exact`, `contains` or `starts_with` matching and an optional tag filter. The
//! search runs server-side through the connector and reads every page (the rebuild
//! filtered only the first page client-side and missed later matches); `starts_with` asks
//! the CRM for `contains` matches and keeps those that start with the term. The count
//! covers every match, up to `limit` are listed (ids only), and with
//! `apply_tag_to_results` every match not yet holding the tag gets it, addressed to that
//! contact (`Change::ForContact`), up to `bulk_limit` contacts per run. Idempotent.

use crate::connectors::{Capability, ContactQuery};
use crate::helpers::integration::query_it_basic::MAX_PAGES;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish, template,
};
use serde::Deserialize;
use serde_json::json;

/// How a field value must match the term (case-insensitive).
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// The whole value.
    Exact,
    /// Anywhere in the value (default).
    #[default]
    Contains,
    /// At the start of the value.
    StartsWith,
}

/// Config of search_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The term, a template.
    pub search_term: String,
    /// Fields searched; default `email`, `first_name`, `last_name`.
    #[serde(default = "default_fields")]
    pub search_fields: Vec<String>,
    /// `exact`, `contains` (default) or `starts_with`.
    #[serde(default)]
    pub match_mode: MatchMode,
    /// Only contacts holding this tag id.
    pub tag_id: Option<String>,
    /// Most contacts listed in the output; default 50.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Tag id applied to every match.
    pub apply_tag_to_results: Option<String>,
    /// Most contacts tagged per run; default 5000.
    #[serde(default = "default_bulk")]
    pub bulk_limit: usize,
    /// Field that receives the count.
    pub save_count_to: Option<String>,
}

fn default_fields() -> Vec<String> {
    vec!["email".into(), "first_name".into(), "last_name".into()]
}
const fn default_limit() -> usize {
    50
}
const fn default_bulk() -> usize {
    5000
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.search_term.trim().is_empty(),
            "search_term",
            "is required",
        );
        check(
            &mut errors,
            self.search_fields.is_empty() || self.search_fields.iter().any(|f| f.trim().is_empty()),
            "search_fields",
            "must list at least one field key, none empty",
        );
        for (field, v) in [
            ("tag_id", &self.tag_id),
            ("apply_tag_to_results", &self.apply_tag_to_results),
            ("save_count_to", &self.save_count_to),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut errors,
            !(1..=1000).contains(&self.limit),
            "limit",
            "must be 1 to 1000",
        );
        check(
            &mut errors,
            !(1..=50_000).contains(&self.bulk_limit),
            "bulk_limit",
            "must be 1 to 50000",
        );
        finish(errors)
    }
}

/// The search_it helper.
pub struct SearchIt;

impl Helper for SearchIt {
    const NAME: &'static str = "search_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Searches contacts for a term across fields and can tag every match.";
    const EXAMPLE_CONFIG: &'static str = r#"{"search_term": "{{company}}", "search_fields": ["company"], "match_mode": "exact", "apply_tag_to_results": "612", "save_count_to": "_CompanyContacts"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "search_term",
        "result_count",
        "contacts",
        "tagged",
        "truncated",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Search, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(SearchItStep(config)))
    }
}

struct SearchItStep(Config);

impl SearchItStep {
    fn query(&self, term: &str) -> ContactQuery {
        let c = &self.0;
        let per_field = c
            .search_fields
            .iter()
            .map(|f| {
                let (field, value) = (f.trim().to_owned(), term.to_owned());
                match c.match_mode {
                    MatchMode::Exact => ContactQuery::FieldEquals { field, value },
                    MatchMode::Contains | MatchMode::StartsWith => {
                        ContactQuery::FieldContains { field, value }
                    }
                }
            })
            .collect();
        let any = ContactQuery::Or(per_field);
        match &c.tag_id {
            Some(t) => ContactQuery::And(vec![
                ContactQuery::HasTag {
                    tag_id: t.trim().to_owned(),
                },
                any,
            ]),
            None => any,
        }
    }

    /// Whether a server-side match also passes the local check `starts_with` needs.
    fn keeps(&self, m: &Contact, term: &str) -> bool {
        self.0.match_mode != MatchMode::StartsWith
            || self.0.search_fields.iter().any(|f| {
                m.field(f.trim())
                    .is_some_and(|v| v.trim().to_lowercase().starts_with(term))
            })
    }
}

#[async_trait::async_trait]
impl AsyncStep for SearchItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let term = template::render(&c.search_term, contact).trim().to_owned();
        if term.is_empty() {
            return Ok(Outcome::failed(
                "The search term is empty after merging fields",
            ));
        }
        let query = self.query(&term);
        let lower = term.to_lowercase();
        let tag = c.apply_tag_to_results.as_deref().map(str::trim);
        let (mut count, mut listed, mut tagged) = (0_u64, Vec::new(), Vec::new());
        let (mut truncated, mut page) = (false, None::<String>);
        let mut pages = 0;
        loop {
            let p = ctx.crm.search_contacts(&query, page.as_deref()).await?;
            pages += 1;
            for m in p.contacts.iter().filter(|m| self.keeps(m, &lower)) {
                count += 1;
                if listed.len() < c.limit {
                    listed.push(json!({"id": m.id}));
                }
                let Some(t) = tag.filter(|t| !m.has_tag(t)) else {
                    continue;
                };
                if tagged.len() >= c.bulk_limit {
                    truncated = true;
                    continue;
                }
                let apply = Change::ApplyTag {
                    tag_id: t.to_owned(),
                };
                tagged.push(if m.id == contact.id {
                    apply
                } else {
                    Change::ForContact {
                        contact_id: m.id.clone(),
                        change: Box::new(apply),
                    }
                });
            }
            match p.next {
                Some(n) if pages < MAX_PAGES && page.as_deref() != Some(n.as_str()) => {
                    page = Some(n);
                }
                Some(_) => {
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
        let n_tagged = tagged.len();
        let mut out = Outcome::ok(format!("Found {count} contacts matching {term:?}"))
            .with("search_term", term)
            .with("result_count", count)
            .with("contacts", listed)
            .with("tagged", n_tagged)
            .with("truncated", truncated);
        if truncated {
            out = out.log(format!(
                "Stopped tagging at {} contacts; run again to tag the rest",
                c.bulk_limit
            ));
        }
        out.changes = tagged;
        if let Some(f) = &c.save_count_to {
            out = out.set_field(contact, f.trim(), count.to_string());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::Value;

    fn person(id: &str, first: &str, email: &str, tags: &[&str]) -> Contact {
        let mut c = contact(&[("first_name", first), ("email", email)], tags);
        c.id = id.into();
        c
    }

    fn env() -> Env {
        let mut env = Env::new();
        // 150 filler contacts first, so matches sit beyond the first page.
        for i in 0..150 {
            env.crm.contacts.push(person(
                &format!("f{i:03}"),
                "Zed",
                &format!("z{i}@x.io"),
                &[],
            ));
        }
        env.crm
            .contacts
            .push(person("m1", "Annabel", "annabel@x.io", &["3"]));
        env.crm
            .contacts
            .push(person("m2", "Hannah", "hannah@x.io", &[]));
        env.crm
            .contacts
            .push(person("m3", "Ann", "ann@x.io", &["9"]));
        env
    }

    fn ids(out: &Outcome) -> Vec<String> {
        out.output["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn cfg(mode: &str) -> Value {
        json!({"search_term": "{{q}}", "search_fields": ["first_name"], "match_mode": mode})
    }

    #[tokio::test]
    async fn modes_find_matches_beyond_the_first_page() {
        let env = env();
        let who = contact(&[("q", "ANN")], &[]);
        let out = env.run(&SearchIt, cfg("contains"), &who).await.unwrap();
        assert_eq!(ids(&out), ["m1", "m2", "m3"]);
        assert_eq!(out.output["result_count"], json!(3));
        let out = env.run(&SearchIt, cfg("starts_with"), &who).await.unwrap();
        assert_eq!(ids(&out), ["m1", "m3"]);
        let out = env.run(&SearchIt, cfg("exact"), &who).await.unwrap();
        assert_eq!(ids(&out), ["m3"]);
        let mut c = cfg("contains");
        c["tag_id"] = json!("3");
        assert_eq!(ids(&env.run(&SearchIt, c, &who).await.unwrap()), ["m1"]);
        let out = env
            .run(&SearchIt, cfg("contains"), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("empty"));
    }

    #[tokio::test]
    async fn default_fields_count_and_limit() {
        let env = env();
        let cfg = json!({"search_term": "x.io", "limit": 2, "save_count_to": "_Hits"});
        let out = env.run(&SearchIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(out.output["result_count"], json!(153));
        assert_eq!(ids(&out), ["f000", "f001"]);
        assert_eq!(out.changes, vec![set("_Hits", "153")]);
    }

    #[tokio::test]
    async fn bulk_tags_every_match_not_holding_the_tag() {
        let env = env();
        let mut c = cfg("contains");
        c["apply_tag_to_results"] = json!("9");
        let mut me = person("m2", "Hannah", "hannah@x.io", &[]);
        me.fields.insert("q".into(), "ann".into());
        let out = env.run(&SearchIt, c.clone(), &me).await.unwrap();
        assert_eq!(out.output["tagged"], json!(2));
        assert_eq!(
            out.changes,
            vec![
                Change::ForContact {
                    contact_id: "m1".into(),
                    change: Box::new(Change::ApplyTag { tag_id: "9".into() })
                },
                Change::ApplyTag { tag_id: "9".into() },
            ]
        );
        c["bulk_limit"] = json!(1);
        let out = env.run(&SearchIt, c, &me).await.unwrap();
        assert_eq!(out.output["tagged"], json!(1));
        assert_eq!(out.output["truncated"], json!(true));
        assert_eq!(out.output["result_count"], json!(3));
        assert!(out.logs[0].contains("run again"));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &SearchIt,
            json!({"search_term": " ", "search_fields": [],
            "tag_id": "", "limit": 0, "bulk_limit": 60000}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "search_term",
                "search_fields",
                "tag_id",
                "limit",
                "bulk_limit"
            ]
        );
        assert!(
            !config_errors(
                &SearchIt,
                json!({"search_term": "a", "match_mode": "fuzzy"})
            )
            .is_empty()
        );
        assert!(config_errors(&SearchIt, json!({"search_term": "a"})).is_empty());
    }
}
