//! query_it_basic: a simple CRM query through the connector's search: contacts whose
//! email equals a template (default `{{email}}`: "does anyone else use this address?"),
//! that hold a tag, whose field equals a value, or all contacts. The count is the real
//! number of matches over every page (the CRM's reported total, or a count of every page
//! when it reports none), not the size of one page; the triggering contact is left out
//! unless `exclude_self` is off. Up to `limit` matches are listed, as ids only unless
//! `include_details` (PII stays out of outputs by default). The count can be saved to a
//! field, and `found_goal`/`none_goal` branch on it. Idempotent.

use crate::connectors::{Capability, ContactQuery};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// What to look for.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueryType {
    /// `email_field` equals `email`.
    Email,
    /// The contact holds `tag_id`.
    Tag,
    /// `field` equals `value`.
    Field,
    /// Every contact (default).
    #[default]
    All,
}

impl QueryType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Tag => "tag",
            Self::Field => "field",
            Self::All => "all",
        }
    }
}

/// Config of query_it_basic.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `email`, `tag`, `field` or `all` (default).
    #[serde(default)]
    pub query_type: QueryType,
    /// Email template for `email`; default `{{email}}`.
    pub email: Option<String>,
    /// The field searched by `email`; default `email`.
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// Tag id for `tag`.
    pub tag_id: Option<String>,
    /// Field key for `field`.
    pub field: Option<String>,
    /// Value template for `field`.
    pub value: Option<String>,
    /// Most contacts listed in the output; default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Field that receives the count.
    pub save_count_to: Option<String>,
    /// Goal achieved when there are matches.
    pub found_goal: Option<String>,
    /// Goal achieved when there are none.
    pub none_goal: Option<String>,
    /// Leave the triggering contact out; default true.
    #[serde(default = "default_true")]
    pub exclude_self: bool,
    /// List names and email with each id; default false.
    #[serde(default)]
    pub include_details: bool,
}

fn default_email_field() -> String {
    "email".into()
}
const fn default_limit() -> usize {
    100
}
/// Most pages read when the CRM reports no total (a guard against runaway scans).
pub(crate) const MAX_PAGES: usize = 10_000;

fn blank(v: Option<&String>) -> bool {
    v.is_none_or(|s| s.trim().is_empty())
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let t = self.query_type;
        check(
            &mut errors,
            t == QueryType::Email && self.email.as_deref().is_some_and(|e| e.trim().is_empty()),
            "email",
            "must not be empty when given",
        );
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        check(
            &mut errors,
            t == QueryType::Tag && blank(self.tag_id.as_ref()),
            "tag_id",
            "is required for query_type tag",
        );
        check(
            &mut errors,
            t == QueryType::Field && blank(self.field.as_ref()),
            "field",
            "is required for query_type field",
        );
        check(
            &mut errors,
            t == QueryType::Field && blank(self.value.as_ref()),
            "value",
            "is required for query_type field",
        );
        check(
            &mut errors,
            !(1..=1000).contains(&self.limit),
            "limit",
            "must be 1 to 1000",
        );
        for (field, v) in [
            ("save_count_to", &self.save_count_to),
            ("found_goal", &self.found_goal),
            ("none_goal", &self.none_goal),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        finish(errors)
    }
}

/// A listed contact: its id, plus names and email with `details`.
pub(crate) fn listed(c: &Contact, details: bool) -> Value {
    if !details {
        return json!({"id": c.id});
    }
    let f = |k: &str| c.field(k).map_or(Value::Null, |v| json!(v));
    json!({"id": c.id, "first_name": f("first_name"), "last_name": f("last_name"), "email": f("email")})
}

/// The query_it_basic helper.
pub struct QueryItBasic;

impl Helper for QueryItBasic {
    const NAME: &'static str = "query_it_basic";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Counts and lists CRM contacts matching an email, a tag or a field value.";
    const EXAMPLE_CONFIG: &'static str = r#"{"query_type": "field", "field": "_ReferralCode", "value": "{{_ReferralCode}}", "save_count_to": "_ReferralUses", "found_goal": "referralused", "none_goal": "referralfree"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["query_type", "result_count", "has_more", "contacts"];
    const REQUIRES: &'static [Capability] = &[Capability::Search];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(QueryItBasicStep(config)))
    }
}

struct QueryItBasicStep(Config);

impl QueryItBasicStep {
    /// The query, or why none can be built from this contact.
    fn query(&self, contact: &Contact) -> Result<ContactQuery, String> {
        let c = &self.0;
        let render = |t: &str| template::render(t, contact).trim().to_owned();
        match c.query_type {
            QueryType::All => Ok(ContactQuery::All),
            QueryType::Tag => Ok(ContactQuery::HasTag {
                tag_id: c.tag_id.as_deref().unwrap_or("").trim().to_owned(),
            }),
            QueryType::Email => {
                let email = render(c.email.as_deref().unwrap_or("{{email}}"));
                if email.is_empty() {
                    return Err("The email to search for is empty".into());
                }
                Ok(ContactQuery::FieldEquals {
                    field: c.email_field.trim().to_owned(),
                    value: email,
                })
            }
            QueryType::Field => {
                let value = render(c.value.as_deref().unwrap_or(""));
                if value.is_empty() {
                    return Err("The value to search for is empty".into());
                }
                Ok(ContactQuery::FieldEquals {
                    field: c.field.as_deref().unwrap_or("").trim().to_owned(),
                    value,
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for QueryItBasicStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let query = match self.query(contact) {
            Ok(q) => q,
            Err(why) => return Ok(Outcome::failed(why)),
        };
        let skip_self = c.exclude_self && query.matches(contact);
        let mut listed_contacts = Vec::new();
        let mut reported: Option<u64> = None;
        let mut counted: u64 = 0;
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let p = ctx.crm.search_contacts(&query, page.as_deref()).await?;
            reported = reported.or(p.total);
            for m in &p.contacts {
                if skip_self && m.id == contact.id {
                    continue;
                }
                counted += 1;
                if listed_contacts.len() < c.limit {
                    listed_contacts.push(listed(m, c.include_details));
                }
            }
            let enough = listed_contacts.len() >= c.limit && reported.is_some();
            match p.next {
                Some(n) if !enough && page.as_deref() != Some(n.as_str()) => page = Some(n),
                _ => break,
            }
        }
        let count = match reported {
            Some(t) => t.saturating_sub(u64::from(skip_self)),
            None => counted,
        };
        let has_more = count > listed_contacts.len() as u64;
        let mut out = Outcome::ok(format!(
            "Found {count} contact{} ({})",
            if count == 1 { "" } else { "s" },
            c.query_type.as_str()
        ))
        .with("query_type", c.query_type.as_str())
        .with("result_count", count)
        .with("has_more", has_more)
        .with("contacts", listed_contacts);
        if let Some(f) = &c.save_count_to {
            out = out.set_field(contact, f.trim(), count.to_string());
        }
        let goal = if count > 0 {
            &c.found_goal
        } else {
            &c.none_goal
        };
        Ok(out.branch(contact, None, goal.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{ContactPage, CrmData, CrmError, CrmRead};
    use crate::helpers::Change;
    use crate::helpers::DynHelper;
    use crate::helpers::testing::{Env, config_errors, contact, set};

    fn person(id: usize, email: &str, tags: &[&str]) -> Contact {
        let mut c = contact(&[("email", email), ("first_name", "P")], tags);
        c.id = format!("p{id:04}");
        c
    }

    fn env_with(n: usize) -> Env {
        let mut env = Env::new();
        for i in 0..n {
            let tags: &[&str] = if i % 2 == 0 { &["7"] } else { &[] };
            env.crm
                .contacts
                .push(person(i, &format!("u{i}@x.io"), tags));
        }
        env
    }

    #[tokio::test]
    async fn counts_the_real_total_over_all_pages() {
        let env = env_with(250);
        let cfg = json!({"query_type": "tag", "tag_id": "7", "limit": 5, "save_count_to": "_N",
            "found_goal": "found", "none_goal": "none"});
        let out = env
            .run(&QueryItBasic, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["result_count"], json!(125));
        assert_eq!(out.output["has_more"], json!(true));
        assert_eq!(
            out.output["contacts"],
            json!([{"id": "p0000"}, {"id": "p0002"}, {"id": "p0004"}, {"id": "p0006"}, {"id": "p0008"}])
        );
        assert_eq!(
            out.changes,
            vec![
                set("_N", "125"),
                Change::AchieveGoal {
                    call_name: "found".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn email_query_excludes_self_and_branches_none() {
        let mut env = env_with(3);
        let mut me = person(1, "u1@x.io", &[]);
        me.id = "p0001".into();
        let cfg = json!({"query_type": "email", "found_goal": "dup", "none_goal": "unique", "include_details": true});
        let out = env.run(&QueryItBasic, cfg.clone(), &me).await.unwrap();
        assert_eq!(out.output["result_count"], json!(0));
        assert_eq!(out.output["contacts"], json!([]));
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "unique".into()
            }]
        );
        env.crm.contacts.push(person(9, "U1@X.io", &[]));
        let out = env.run(&QueryItBasic, cfg.clone(), &me).await.unwrap();
        assert_eq!(out.output["result_count"], json!(1));
        assert_eq!(
            out.output["contacts"],
            json!([{"id": "p0009", "first_name": "P", "last_name": null, "email": "U1@X.io"}])
        );
        let mut c = cfg;
        c["exclude_self"] = json!(false);
        let out = env.run(&QueryItBasic, c, &me).await.unwrap();
        assert_eq!(out.output["result_count"], json!(2));
        let out = env
            .run(
                &QueryItBasic,
                json!({"query_type": "email"}),
                &contact(&[("email", " ")], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("empty"));
    }

    #[tokio::test]
    async fn field_query_and_all() {
        let mut env = env_with(3);
        env.crm.contacts[2]
            .fields
            .insert("_Ref".into(), "ABC".into());
        let cfg = json!({"query_type": "field", "field": "_Ref", "value": "{{code}}"});
        let out = env
            .run(&QueryItBasic, cfg, &contact(&[("code", "abc")], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["result_count"], json!(1));
        assert_eq!(out.output["has_more"], json!(false));
        let me = env.crm.contacts[0].clone();
        let out = env.run(&QueryItBasic, json!({}), &me).await.unwrap();
        assert_eq!(out.output["result_count"], json!(2));
        assert_eq!(
            out.output["contacts"],
            json!([{"id": "p0001"}, {"id": "p0002"}])
        );
        let out = env
            .run(&QueryItBasic, json!({"exclude_self": false}), &me)
            .await
            .unwrap();
        assert_eq!(out.output["result_count"], json!(3));
        assert_eq!(out.output["query_type"], json!("all"));
    }

    /// A CRM that reports no totals, to check the count of every page.
    struct NoTotals(CrmData);

    #[async_trait::async_trait]
    impl CrmRead for NoTotals {
        async fn search_contacts(
            &self,
            q: &ContactQuery,
            page: Option<&str>,
        ) -> Result<ContactPage, CrmError> {
            let mut p = self.0.search_contacts(q, page).await?;
            p.total = None;
            Ok(p)
        }
    }

    #[tokio::test]
    async fn counts_pages_when_the_crm_reports_no_total() {
        let env = env_with(230);
        let crm = NoTotals(env.crm.clone());
        let mut ctx = env.ctx();
        ctx.crm = &crm;
        let step = QueryItBasic.build_json(&json!({"limit": 3})).unwrap();
        let out = step.run(&ctx, &contact(&[], &[])).await.unwrap();
        assert_eq!(out.output["result_count"], json!(230));
        assert_eq!(out.output["contacts"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &QueryItBasic,
            json!({"query_type": "tag", "email_field": "", "limit": 0, "found_goal": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email_field", "tag_id", "limit", "found_goal"]);
        let errs = config_errors(&QueryItBasic, json!({"query_type": "field", "value": " "}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["field", "value"]);
        assert!(
            !config_errors(&QueryItBasic, json!({"query_type": "email", "email": ""})).is_empty()
        );
        assert!(!config_errors(&QueryItBasic, json!({"query_type": "phone"})).is_empty());
        assert!(config_errors(&QueryItBasic, json!({})).is_empty());
    }
}
