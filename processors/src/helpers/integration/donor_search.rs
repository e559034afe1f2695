//! donor_search: philanthropy prospect research. Sends the contact's first and last name,
//! email and phone to the DonorLead/DonorSearch lookup (`GET /v2.1/?api_key=…&first=…&
//! last=…&email=…&phone=…`) and saves the returned `DS_Rating` (capacity rating) and
//! `ProfileLink` into fields, applying `apply_tag`. Lookups are paid, so a contact that
//! already holds a rating is skipped (`skip_if_rated`, default true) and the call is
//! journaled: a redelivered execution or a dry run does not pay again. No match is a
//! success without writes, optionally tagged `no_match_tag`. A missing first or last name
//! fails without a lookup. The raw response and the API key never reach the logs.

use crate::connectors::Capability;
use crate::helpers::defaults::{
    default_email, default_first, default_last, default_phone, default_true, given,
};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, error_chain, finish, once,
};
use crate::http::HttpError;
use serde::Deserialize;
use serde_json::Value;

/// Config of donor_search.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The DonorLead API key.
    pub api_key: String,
    /// Field for the DS rating.
    pub ds_rating_field: Option<String>,
    /// Field for the profile link.
    pub ds_profile_link_field: Option<String>,
    /// Tag applied after a match.
    pub apply_tag: Option<String>,
    /// Tag applied when there is no match.
    pub no_match_tag: Option<String>,
    /// Skip contacts whose rating field is already filled; default true.
    #[serde(default = "default_true")]
    pub skip_if_rated: bool,
    /// First-name field; default `first_name`.
    #[serde(default = "default_first")]
    pub first_name_field: String,
    /// Last-name field; default `last_name`.
    #[serde(default = "default_last")]
    pub last_name_field: String,
    /// Email field; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Phone field; default `phone`.
    #[serde(default = "default_phone")]
    pub phone_field: String,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.api_key.trim().is_empty(),
            "api_key",
            "is required",
        );
        check(
            &mut errors,
            given(&self.ds_rating_field).is_none() && given(&self.ds_profile_link_field).is_none(),
            "ds_rating_field",
            "set ds_rating_field and/or ds_profile_link_field",
        );
        for (name, value) in [
            ("ds_rating_field", &self.ds_rating_field),
            ("ds_profile_link_field", &self.ds_profile_link_field),
            ("apply_tag", &self.apply_tag),
            ("no_match_tag", &self.no_match_tag),
        ] {
            check(
                &mut errors,
                value.is_some() && given(value).is_none(),
                name,
                "must not be empty when set",
            );
        }
        for (name, value) in [
            ("first_name_field", &self.first_name_field),
            ("last_name_field", &self.last_name_field),
            ("email_field", &self.email_field),
            ("phone_field", &self.phone_field),
        ] {
            check(
                &mut errors,
                value.trim().is_empty(),
                name,
                "must not be empty",
            );
        }
        finish(errors)
    }
}

/// The donor_search helper.
pub struct DonorSearch;

impl Helper for DonorSearch {
    const NAME: &'static str = "donor_search";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Looks the contact up in DonorSearch and saves the philanthropic rating and profile link.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_key": "dl_key", "ds_rating_field": "_DSRating", "ds_profile_link_field": "_DSProfile", "apply_tag": "410"}"#;
    const OUTPUTS: &'static [&'static str] = &["ds_rating", "profile_link", "matched", "skipped"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(DonorSearchStep { config }))
    }
}

struct DonorSearchStep {
    config: Config,
}

/// An HTTP error as a step error, with the API key (sent in the query) masked.
fn masked(e: &HttpError, secret: &str) -> StepError {
    let mut message = error_chain(e);
    if !secret.is_empty() {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        message = message.replace(&encoded, "***").replace(secret, "***");
    }
    StepError::External {
        message,
        retryable: e.retryable(),
    }
}

/// `key` at the top level of the response or under `result`/`data`, as text.
fn pick(resp: &Value, key: &str) -> String {
    let found = resp.get(key).or_else(|| {
        ["result", "Result", "data", "Data"]
            .iter()
            .find_map(|k| resp.get(k).and_then(|n| n.get(key)))
    });
    match found {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[async_trait::async_trait]
impl AsyncStep for DonorSearchStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let rating_field = given(&c.ds_rating_field);
        let link_field = given(&c.ds_profile_link_field);
        if c.skip_if_rated
            && let Some(existing) = rating_field.and_then(|f| contact.field(f))
        {
            return Ok(Outcome::ok("Already rated; no paid lookup")
                .with("ds_rating", existing)
                .with("skipped", true));
        }
        let (Some(first), Some(last)) = (
            contact.field(c.first_name_field.trim()),
            contact.field(c.last_name_field.trim()),
        ) else {
            return Ok(
                Outcome::failed("A first and last name are needed for a donor lookup")
                    .with("skipped", true),
            );
        };
        let mut url = url::Url::parse(&ctx.vendors.url("donor_search", "/v2.1/"))
            .map_err(|e| StepError::Input(format!("donor_search base URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api_key", c.api_key.trim())
                .append_pair("first", first.trim())
                .append_pair("last", last.trim());
            for (name, field) in [("email", &c.email_field), ("phone", &c.phone_field)] {
                if let Some(v) = contact.field(field.trim()) {
                    q.append_pair(name, v.trim());
                }
            }
        }
        let url = url.to_string();
        let key = c.api_key.trim();
        let found = once(ctx, "donor lookup", || async move {
            let resp = ctx
                .http
                .send(reqwest::Method::GET, &url, |r| r)
                .await
                .map_err(|e| masked(&e, key))?;
            serde_json::from_slice::<Value>(&resp.body).map_err(|e| StepError::External {
                message: format!("unexpected DonorSearch response: {e}"),
                retryable: false,
            })
        })
        .await?;
        let Some(found) = found else {
            return Ok(Outcome::ok("Would run a paid donor lookup").with("skipped", false));
        };
        let rating = pick(&found, "DS_Rating");
        let link = pick(&found, "ProfileLink");
        if rating.is_empty() && link.is_empty() {
            return Ok(Outcome::ok("No DonorSearch match")
                .branch(contact, given(&c.no_match_tag), None)
                .with("ds_rating", "")
                .with("profile_link", "")
                .with("matched", false)
                .with("skipped", false));
        }
        let mut out = Outcome::ok(format!("DonorSearch rating {rating} saved"));
        for (field, value) in [(rating_field, &rating), (link_field, &link)] {
            if let Some(f) = field.filter(|_| !value.is_empty()) {
                out = out.set_field(contact, f, value.clone());
            }
        }
        Ok(out
            .branch(contact, given(&c.apply_tag), None)
            .with("ds_rating", rating)
            .with("profile_link", link)
            .with("matched", true)
            .with("skipped", false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::json;

    fn cfg() -> Value {
        json!({"api_key": "k&1", "ds_rating_field": "_DS", "ds_profile_link_field": "_DSLink",
            "apply_tag": "410", "no_match_tag": "411"})
    }

    fn ada() -> Contact {
        contact(
            &[
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("email", "ada@example.com"),
            ],
            &[],
        )
    }

    async fn mock(status: u16, body: Value) -> (MockVendor, Env) {
        let m = MockVendor::start(&[("GET", "/v2.1/", status, body)]).await;
        let env = Env::new().vendor("donor_search", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    #[tokio::test]
    async fn saves_rating_and_link_and_tags() {
        let (m, env) = mock(
            200,
            json!({"DS_Rating": "DS3-2", "ProfileLink": "https://ds.example/p/1"}),
        )
        .await;
        let out = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        let req = m.single();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/v2.1/"));
        let q: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(req.query.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(q["api_key"], "k&1");
        assert_eq!(
            (q["first"].as_str(), q["last"].as_str()),
            ("Ada", "Lovelace")
        );
        assert_eq!(q["email"], "ada@example.com");
        assert!(!q.contains_key("phone"));
        assert_eq!(
            out.changes,
            vec![
                set("_DS", "DS3-2"),
                set("_DSLink", "https://ds.example/p/1"),
                Change::ApplyTag {
                    tag_id: "410".into()
                }
            ]
        );
        assert_eq!(out.output["matched"], json!(true));
        assert!(!out.message.contains("Ada"), "no PII in the message");
    }

    #[tokio::test]
    async fn nested_and_numeric_results_are_read() {
        let (_m, env) = mock(200, json!({"result": {"DS_Rating": 4, "ProfileLink": ""}})).await;
        let out = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        assert_eq!(out.changes[0], set("_DS", "4"));
        assert_eq!(out.changes.len(), 2, "no empty link written");
    }

    #[tokio::test]
    async fn no_match_tags_without_writes() {
        let (_m, env) = mock(200, json!({"DS_Rating": null})).await;
        let out = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "411".into()
            }]
        );
        assert_eq!(out.output["matched"], json!(false));
    }

    #[tokio::test]
    async fn rated_contacts_and_missing_names_are_not_looked_up() {
        let (m, env) = mock(200, json!({})).await;
        let mut rated = ada();
        rated.fields.insert("_DS".into(), "DS1".into());
        let out = env.run(&DonorSearch, cfg(), &rated).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["skipped"], json!(true));
        let nameless = contact(&[("first_name", "Ada"), ("last_name", " ")], &[]);
        let out = env.run(&DonorSearch, cfg(), &nameless).await.unwrap();
        assert!(!out.success);
        assert!(m.received().is_empty());
    }

    #[tokio::test]
    async fn dry_run_and_rerun_do_not_pay_twice() {
        let (m, mut env) = mock(200, json!({"DS_Rating": "DS2"})).await;
        env.dry_run = true;
        let out = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.changes.is_empty() && m.received().is_empty());
        env.dry_run = false;
        let first = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        let again = env.run(&DonorSearch, cfg(), &ada()).await.unwrap();
        assert_eq!(m.received().len(), 1);
        assert_eq!(first, again);
    }

    #[tokio::test]
    async fn errors_are_external_and_hide_the_key() {
        for (status, retryable) in [(403, false), (500, true)] {
            let (_m, env) = mock(status, json!({"error": "denied"})).await;
            let err = env.run(&DonorSearch, cfg(), &ada()).await.unwrap_err();
            match err {
                StepError::External {
                    message,
                    retryable: r,
                } => {
                    assert_eq!(r, retryable);
                    assert!(
                        !message.contains("k%261") && !message.contains("k&1"),
                        "{message}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(&DonorSearch, json!({"api_key": " "}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["api_key", "ds_rating_field"]);
        assert!(!config_errors(&DonorSearch, json!({"ds_rating_field": "x"})).is_empty());
        assert!(
            !config_errors(
                &DonorSearch,
                json!({"api_key": "k", "ds_rating_field": "x", "apply_tag": "", "email_field": ""})
            )
            .is_empty()
        );
    }
}
