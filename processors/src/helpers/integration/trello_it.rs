//! trello_it: creates a Trello card for the contact with `POST /1/cards?key=…&token=…`
//! and a JSON body of `idList`, `name`, `desc` and, when configured, `idLabels`,
//! `idMembers` and `due` (from a date field). Name and description are `{{field}}`
//! templates. Afterwards it applies `apply_tag` and saves the card URL to
//! `save_card_url_to`. The key and token travel in the query string as Trello documents,
//! so no error or log line ever includes the request URL. The card is created once per
//! execution (a redelivery returns the first card) and a dry run creates nothing.

use crate::connectors::Capability;
use crate::helpers::integration::mail_it::{parse_answer, vendor_error};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of trello_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Trello API key.
    pub api_key: String,
    /// Trello API token (a secret; never logged).
    pub token: String,
    /// The board the list belongs to; informational, the card goes to `list_id`.
    pub board_id: Option<String>,
    /// The list the card is created in.
    pub list_id: String,
    /// Card name template.
    pub card_name_template: String,
    /// Card description template.
    #[serde(default)]
    pub card_description_template: String,
    /// Tag id applied after the card is created.
    pub apply_tag: Option<String>,
    /// Field that receives the card URL.
    pub save_card_url_to: Option<String>,
    /// Label ids for the card.
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Member ids assigned to the card.
    #[serde(default)]
    pub member_ids: Vec<String>,
    /// Field holding the due date (RFC 3339, `YYYY-MM-DD HH:MM:SS` UTC or `YYYY-MM-DD`).
    pub due_date_field: Option<String>,
}

/// Trello ids are 24 hex digits.
fn is_trello_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
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
            self.token.trim().is_empty(),
            "token",
            "is required",
        );
        check(
            &mut errors,
            self.board_id
                .as_deref()
                .is_some_and(|b| b.trim().is_empty()),
            "board_id",
            "must not be empty when given",
        );
        check(
            &mut errors,
            !is_trello_id(self.list_id.trim()),
            "list_id",
            "must be a Trello list id (24 hex digits)",
        );
        check(
            &mut errors,
            self.card_name_template.trim().is_empty(),
            "card_name_template",
            "is required",
        );
        for (field, v) in [
            ("apply_tag", &self.apply_tag),
            ("save_card_url_to", &self.save_card_url_to),
            ("due_date_field", &self.due_date_field),
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
            self.label_ids.iter().any(|l| !is_trello_id(l.trim())),
            "label_ids",
            "must hold Trello label ids",
        );
        check(
            &mut errors,
            self.member_ids.iter().any(|m| !is_trello_id(m.trim())),
            "member_ids",
            "must hold Trello member ids",
        );
        finish(errors)
    }
}

/// A date or date-time as UTC RFC 3339, or `None`.
fn due_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let t = chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|n| Utc.from_utc_datetime(&n))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| Utc.from_utc_datetime(&n))
        })?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The card Trello created.
#[derive(Debug, Deserialize, serde::Serialize)]
struct Card {
    id: String,
    #[serde(default)]
    url: String,
    #[serde(default, rename = "shortUrl")]
    short_url: String,
    #[serde(default)]
    name: String,
}

/// The trello_it helper.
pub struct TrelloIt;

impl Helper for TrelloIt {
    const NAME: &'static str = "trello_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Creates a Trello card for the contact in a list, named from contact fields.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_key": "key", "token": "token", "list_id": "5abbe4b7ddc1b351ef961414", "card_name_template": "Call {{first_name}} {{last_name}}", "card_description_template": "Email: {{email}}", "save_card_url_to": "_TrelloCard"}"#;
    const OUTPUTS: &'static [&'static str] = &["card_id", "card_url", "card_name"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(TrelloItStep(config)))
    }
}

struct TrelloItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for TrelloItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let name = template::render(&c.card_name_template, contact)
            .trim()
            .to_owned();
        if name.is_empty() {
            return Ok(Outcome::failed(
                "The card name is empty after merging fields",
            ));
        }
        let desc = template::render(&c.card_description_template, contact);
        let mut body = json!({"idList": c.list_id.trim(), "name": name, "desc": desc});
        if !c.label_ids.is_empty() {
            body["idLabels"] = json!(c.label_ids);
        }
        if !c.member_ids.is_empty() {
            body["idMembers"] = json!(c.member_ids);
        }
        let mut logs = Vec::new();
        if let Some(f) = &c.due_date_field {
            match contact.field(f).map(|raw| (raw, due_date(raw))) {
                Some((_, Some(due))) => body["due"] = json!(due),
                Some((raw, None)) => {
                    logs.push(format!(
                        "{raw:?} in {f} is not a date; the card has no due date"
                    ));
                }
                None => logs.push(format!("{f} is empty; the card has no due date")),
            }
        }
        let created = crate::helpers::once(ctx, "trello_it card", || async {
            let mut url = url::Url::parse(&ctx.vendors.url("trello", "/1/cards")).map_err(|e| {
                StepError::External {
                    message: format!("invalid trello base URL: {e}"),
                    retryable: false,
                }
            })?;
            url.query_pairs_mut()
                .append_pair("key", c.api_key.trim())
                .append_pair("token", c.token.trim());
            let resp = ctx
                .http
                .send(reqwest::Method::POST, url.as_str(), |r| r.json(&body))
                .await
                .map_err(|e| vendor_error("trello", &e))?;
            let card: Card = parse_answer("trello", &resp.body)?;
            Ok(json!(card))
        })
        .await?;
        let Some(card) = created else {
            let mut out = Outcome::ok(format!("Would create Trello card \"{name}\""))
                .with("card_id", Value::Null)
                .with("card_url", Value::Null)
                .with("card_name", name);
            out.logs = logs;
            return Ok(out);
        };
        let card: Card = serde_json::from_value(card).map_err(|e| StepError::External {
            message: format!("unexpected recorded trello answer: {e}"),
            retryable: false,
        })?;
        let url = if card.short_url.is_empty() {
            card.url
        } else {
            card.short_url
        };
        let mut out = Outcome::ok(format!("Created Trello card \"{}\"", card.name))
            .with("card_id", card.id)
            .with("card_url", url.clone())
            .with("card_name", card.name);
        out.logs = logs;
        if let Some(f) = &c.save_card_url_to
            && !url.is_empty()
        {
            out = out.set_field(contact, f.trim(), url);
        }
        Ok(out.branch(contact, c.apply_tag.as_deref(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    const LIST: &str = "5abbe4b7ddc1b351ef961414";
    const LABEL: &str = "5abbe4b7ddc1b351ef961415";

    fn cfg() -> Value {
        json!({"api_key": "k3y", "token": "s3cret", "list_id": LIST,
            "card_name_template": "Call {{first_name}}", "card_description_template": "Email: {{email}}",
            "apply_tag": "7", "save_card_url_to": "_Card"})
    }

    fn card() -> Value {
        json!({"id": "5abbe4b7ddc1b351ef961499", "name": "Call Ada",
            "url": "https://trello.com/c/AbC123/1-call-ada", "shortUrl": "https://trello.com/c/AbC123",
            "idList": LIST, "desc": "Email: ada@x.io"})
    }

    async fn trello(status: u16, body: Value) -> (MockVendor, Env) {
        let mock = MockVendor::start(&[("POST", "/1/cards", status, body)]).await;
        let env = Env::new().vendor("trello", &mock.base);
        (mock, env)
    }

    fn ada() -> Contact {
        contact(
            &[
                ("first_name", "Ada"),
                ("email", "ada@x.io"),
                ("due", "2026-04-01"),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn creates_the_card_and_saves_its_url() {
        let (mock, env) = trello(200, card()).await;
        let out = env.run(&TrelloIt, cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["card_id"], json!("5abbe4b7ddc1b351ef961499"));
        assert_eq!(out.output["card_url"], json!("https://trello.com/c/AbC123"));
        assert_eq!(out.output["card_name"], json!("Call Ada"));
        assert_eq!(
            out.changes,
            vec![
                set("_Card", "https://trello.com/c/AbC123"),
                Change::ApplyTag { tag_id: "7".into() }
            ]
        );
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/1/cards")
        );
        assert_eq!(req.query, "key=k3y&token=s3cret");
        assert_eq!(
            req.json(),
            json!({"idList": LIST, "name": "Call Ada", "desc": "Email: ada@x.io"})
        );
        assert!(!format!("{out:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn labels_members_and_due_date() {
        let (mock, env) = trello(200, card()).await;
        let mut c = cfg();
        c["label_ids"] = json!([LABEL]);
        c["member_ids"] = json!([LABEL]);
        c["due_date_field"] = json!("due");
        env.run(&TrelloIt, c.clone(), &ada()).await.unwrap();
        let body = mock.single().json();
        assert_eq!(body["idLabels"], json!([LABEL]));
        assert_eq!(body["idMembers"], json!([LABEL]));
        assert_eq!(body["due"], json!("2026-04-01T00:00:00.000Z"));
        let mut env2 = Env::new().vendor("trello", &mock.base);
        env2.execution_id = "exec-2".into();
        let bad = contact(&[("first_name", "Ada"), ("due", "next week")], &[]);
        let out = env2.run(&TrelloIt, c, &bad).await.unwrap();
        assert!(out.success && out.logs[0].contains("not a date"));
        assert!(mock.received()[1].json().get("due").is_none());
    }

    #[tokio::test]
    async fn errors_never_leak_the_token() {
        let (mock, env) = trello(401, json!("invalid token")).await;
        let err = env.run(&TrelloIt, cfg(), &ada()).await.unwrap_err();
        match &err {
            StepError::External { retryable, message } => {
                assert!(!retryable && message.contains("401"));
                assert!(
                    !message.contains("s3cret") && !message.contains("k3y"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        mock.route("POST", "/1/cards", 502, json!({}));
        let err = env.run(&TrelloIt, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: true, message } if !message.contains("s3cret"))
        );
    }

    #[tokio::test]
    async fn dry_run_empty_name_and_rerun() {
        let (mock, mut env) = trello(200, card()).await;
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&TrelloIt, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would create") && out.changes.is_empty());
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let mut c = cfg();
        c["card_name_template"] = json!("{{nope}} ");
        assert!(!env.run(&TrelloIt, c, &ada()).await.unwrap().success);
        let first = env.run(&TrelloIt, cfg(), &ada()).await.unwrap();
        assert_eq!(env.run(&TrelloIt, cfg(), &ada()).await.unwrap(), first);
        assert_eq!(mock.received().len(), 1);
        // A contact already holding the URL and tag gets no changes.
        let done = contact(
            &[
                ("first_name", "Ada"),
                ("_Card", "https://trello.com/c/AbC123"),
            ],
            &["7"],
        );
        assert!(
            env.run(&TrelloIt, cfg(), &done)
                .await
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn parses_due_dates() {
        assert_eq!(
            due_date("2026-04-01T10:00:00+02:00").as_deref(),
            Some("2026-04-01T08:00:00.000Z")
        );
        assert_eq!(
            due_date("2026-04-01 10:30:00").as_deref(),
            Some("2026-04-01T10:30:00.000Z")
        );
        assert_eq!(due_date("04/01/2026"), None);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &TrelloIt,
            json!({"api_key": "", "token": " ", "board_id": "", "list_id": "abc",
                "card_name_template": "", "apply_tag": "", "label_ids": ["x"], "member_ids": ["y"]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "api_key",
                "token",
                "board_id",
                "list_id",
                "card_name_template",
                "apply_tag",
                "label_ids",
                "member_ids"
            ]
        );
        assert!(config_errors(&TrelloIt, cfg()).is_empty());
    }
}
