//! gotowebinar: registers the contact for a GoToWebinar webinar (`POST /G2W/rest/v2/
//! organizers/{organizerKey}/webinars/{webinarKey}/registrants`, bearer token, JSON
//! `{firstName, lastName, email}`) and saves the returned `joinUrl` and `registrantKey`
//! to fields, applying a tag. GoToWebinar needs both names: a missing one is sent as
//! `default_first_name` / `default_last_name`; a missing email fails. An address already
//! registered (409) counts as success, using the join URL the answer carries when it has
//! one. The registration is journaled, so a redelivered execution does not register
//! again.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_first, default_last, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once,
};
use crate::http::HttpError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of gotowebinar.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// GoTo OAuth access token.
    pub access_token: String,
    /// The organizer key (digits).
    pub organizer_key: String,
    /// The webinar key (digits).
    pub webinar_key: String,
    /// Email field; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// First-name field; default `first_name`.
    #[serde(default = "default_first")]
    pub first_name_field: String,
    /// Last-name field; default `last_name`.
    #[serde(default = "default_last")]
    pub last_name_field: String,
    /// First name sent when the contact has none; default `Friend`.
    #[serde(default = "default_friend")]
    pub default_first_name: String,
    /// Last name sent when the contact has none; default `-`.
    #[serde(default = "default_dash")]
    pub default_last_name: String,
    /// Tag applied after registering.
    pub apply_tag: Option<String>,
    /// Field for the join URL.
    pub save_join_url_to: Option<String>,
    /// Field for the registrant key.
    pub save_registrant_key_to: Option<String>,
}

fn default_friend() -> String {
    "Friend".into()
}
fn default_dash() -> String {
    "-".into()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.access_token.trim().is_empty(),
            "access_token",
            "is required",
        );
        for (name, value) in [
            ("organizer_key", &self.organizer_key),
            ("webinar_key", &self.webinar_key),
        ] {
            let v = value.trim();
            check(
                &mut errors,
                v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()),
                name,
                "must be the numeric key",
            );
        }
        for (name, value) in [
            ("email_field", &self.email_field),
            ("first_name_field", &self.first_name_field),
            ("last_name_field", &self.last_name_field),
            ("default_first_name", &self.default_first_name),
            ("default_last_name", &self.default_last_name),
        ] {
            check(
                &mut errors,
                value.trim().is_empty(),
                name,
                "must not be empty",
            );
        }
        for (name, value) in [
            ("apply_tag", &self.apply_tag),
            ("save_join_url_to", &self.save_join_url_to),
            ("save_registrant_key_to", &self.save_registrant_key_to),
        ] {
            check(
                &mut errors,
                value.is_some() && given(value).is_none(),
                name,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The gotowebinar helper.
pub struct Gotowebinar;

impl Helper for Gotowebinar {
    const NAME: &'static str = "gotowebinar";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Registers the contact for a GoToWebinar webinar and saves the join URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "goto_token", "organizer_key": "7000000000000000000", "webinar_key": "2575945029611729921", "apply_tag": "630", "save_join_url_to": "_JoinUrl"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "webinar_key",
        "registrant_key",
        "join_url",
        "already_registered",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(GotoStep { config }))
    }
}

struct GotoStep {
    config: Config,
}

/// The registration answer (also carried by a 409 for an existing registrant).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registration {
    #[serde(default)]
    registrant_key: Option<Value>,
    #[serde(default)]
    join_url: Option<String>,
}

#[async_trait::async_trait]
impl AsyncStep for GotoStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let Some(email) = contact.field(c.email_field.trim()).map(str::trim) else {
            return Ok(Outcome::failed("The contact has no email to register"));
        };
        let name = |field: &str, fallback: &str| {
            contact
                .field(field.trim())
                .unwrap_or(fallback)
                .trim()
                .to_owned()
        };
        let body = json!({
            "firstName": name(&c.first_name_field, &c.default_first_name),
            "lastName": name(&c.last_name_field, &c.default_last_name),
            "email": email,
        });
        let path = format!(
            "/G2W/rest/v2/organizers/{}/webinars/{}/registrants",
            c.organizer_key.trim(),
            c.webinar_key.trim()
        );
        let url = ctx.vendors.url("gotowebinar", &path);
        let token = c.access_token.trim();
        let registered = once(ctx, "gotowebinar registrant", || async move {
            let sent = ctx
                .http
                .send(reqwest::Method::POST, &url, |r| {
                    r.bearer_auth(token)
                        .header(reqwest::header::ACCEPT, "application/json")
                        .json(&body)
                })
                .await;
            match sent {
                Ok(resp) => {
                    let reg: Value =
                        serde_json::from_slice(&resp.body).map_err(|e| StepError::External {
                            message: format!("unexpected GoToWebinar response: {e}"),
                            retryable: false,
                        })?;
                    Ok(json!({"registration": reg, "already_registered": false}))
                }
                Err(HttpError::Status {
                    status: 409, body, ..
                }) => {
                    let reg = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
                    Ok(json!({"registration": reg, "already_registered": true}))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        let webinar = c.webinar_key.trim();
        let Some(registered) = registered else {
            return Ok(
                Outcome::ok(format!("Would register {email} for webinar {webinar}"))
                    .with("webinar_key", webinar),
            );
        };
        let already = registered["already_registered"].as_bool().unwrap_or(false);
        let reg: Registration =
            serde_json::from_value(registered["registration"].clone()).unwrap_or_default();
        let key = match reg.registrant_key {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let join = reg.join_url.unwrap_or_default();
        let mut out = Outcome::ok(if already {
            format!("{email} was already registered for webinar {webinar}")
        } else {
            format!("Registered {email} for webinar {webinar}")
        });
        for (field, value) in [
            (given(&c.save_join_url_to), &join),
            (given(&c.save_registrant_key_to), &key),
        ] {
            if let Some(f) = field.filter(|_| !value.is_empty()) {
                out = out.set_field(contact, f, value.clone());
            }
        }
        Ok(out
            .branch(contact, given(&c.apply_tag), None)
            .with("webinar_key", webinar)
            .with("registrant_key", key)
            .with("join_url", join)
            .with("already_registered", already))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    const PATH: &str = "/G2W/rest/v2/organizers/700/webinars/2575/registrants";

    fn cfg() -> Value {
        json!({"access_token": "gt", "organizer_key": "700", "webinar_key": "2575", "apply_tag": "630",
            "save_join_url_to": "_Join", "save_registrant_key_to": "_RegKey"})
    }

    fn answer() -> Value {
        json!({"registrantKey": 5_952_055_018_763_404_000_i64, "joinUrl": "https://global.gotowebinar.com/join/2575/abc", "status": "APPROVED"})
    }

    async fn setup(status: u16, body: Value) -> (MockVendor, Env) {
        let m = MockVendor::start(&[("POST", PATH, status, body)]).await;
        let env = Env::new().vendor("gotowebinar", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    fn ada() -> Contact {
        contact(
            &[
                ("email", "ada@example.com"),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn registers_and_saves_the_join_url() {
        let (m, env) = setup(201, answer()).await;
        let out = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        let req = m.single();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", PATH));
        assert_eq!(req.header("authorization"), Some("Bearer gt"));
        assert_eq!(req.header("accept"), Some("application/json"));
        assert_eq!(
            req.json(),
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"})
        );
        assert_eq!(
            out.changes,
            vec![
                set("_Join", "https://global.gotowebinar.com/join/2575/abc"),
                set("_RegKey", "5952055018763404000"),
                Change::ApplyTag {
                    tag_id: "630".into()
                },
            ]
        );
        assert_eq!(out.output["already_registered"], json!(false));
    }

    #[tokio::test]
    async fn missing_names_use_fallbacks_and_missing_email_fails() {
        let (m, env) = setup(201, answer()).await;
        env.run(
            &Gotowebinar,
            cfg(),
            &contact(&[("email", "x@example.com")], &[]),
        )
        .await
        .unwrap();
        assert_eq!(m.single().json()["firstName"], json!("Friend"));
        assert_eq!(m.single().json()["lastName"], json!("-"));
        let out = env
            .run(&Gotowebinar, cfg(), &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(m.received().len(), 1);
    }

    #[tokio::test]
    async fn an_existing_registration_counts_as_success() {
        let (_m, env) = setup(
            409,
            json!({"errorCode": "DuplicateRegistrant", "description": "already registered",
            "registrantKey": 42, "joinUrl": "https://global.gotowebinar.com/join/2575/old"}),
        )
        .await;
        let out = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        assert!(out.success);
        assert_eq!(out.output["already_registered"], json!(true));
        assert_eq!(
            out.changes[0],
            set("_Join", "https://global.gotowebinar.com/join/2575/old")
        );
        let (_m, env) = setup(409, json!({"description": "already registered"})).await;
        let out = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "630".into()
            }]
        );
    }

    #[tokio::test]
    async fn dry_run_rerun_and_vendor_errors() {
        let (m, mut env) = setup(201, answer()).await;
        env.dry_run = true;
        let out = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.changes.is_empty() && m.received().is_empty());
        env.dry_run = false;
        let first = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        let again = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap();
        assert_eq!((m.received().len(), first), (1, again));
        for (status, retryable) in [(400, false), (403, false), (429, true), (500, true)] {
            m.route("POST", PATH, status, json!({"errorCode": "x"}));
            env.execution_id = format!("e{status}");
            let err = env.run(&Gotowebinar, cfg(), &ada()).await.unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}"
            );
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &Gotowebinar,
            json!({"access_token": "", "organizer_key": "abc", "webinar_key": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["access_token", "organizer_key", "webinar_key"]);
        assert!(
            !config_errors(
                &Gotowebinar,
                json!({"access_token": "t", "organizer_key": "1"})
            )
            .is_empty()
        );
        assert!(!config_errors(&Gotowebinar, json!({"access_token": "t", "organizer_key": "1", "webinar_key": "2", "default_last_name": " "})).is_empty());
    }
}
