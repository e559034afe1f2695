//! webinar_jam: registers the contact for a live WebinarJam webinar with
//! `POST /webinarjam/register` (form fields `api_key`, `webinar_id`, `schedule`,
//! `first_name`, `last_name`, `email`, and optionally `phone`, `phone_country_code` and
//! `timezone`). Without a configured `schedule` it first reads the webinar
//! (`POST /webinarjam/webinar`) and takes the next listed schedule. The registrant's live
//! room URL and session date are saved to fields so reminders can merge them, and
//! `apply_tag` is applied. A WebinarJam answer with `status` other than `success` is a
//! final error. The registration runs once per execution; a dry run registers nobody.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_first, default_last};
use crate::helpers::integration::mail_it::{is_email, parse_answer, vendor_error, with_form};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// An id given as a number or a string.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum Id {
    /// `123`.
    Number(u64),
    /// `"123"`.
    Text(String),
}

impl Id {
    fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.trim().to_owned(),
        }
    }
}

/// Config of webinar_jam.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// WebinarJam API key (a secret; never logged).
    pub api_key: String,
    /// The webinar.
    pub webinar_id: Id,
    /// Schedule id; the next listed schedule when absent.
    pub schedule: Option<Id>,
    /// Field with the first name; default `first_name`.
    #[serde(default = "default_first")]
    pub first_name_field: String,
    /// Field with the last name; default `last_name`.
    #[serde(default = "default_last")]
    pub last_name_field: String,
    /// Field with the email; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Field with the phone number (digits are sent).
    pub phone_field: Option<String>,
    /// Phone country code without `+`, e.g. `1`.
    pub phone_country_code: Option<String>,
    /// Registrant time zone for auto-detect webinars, e.g. `GMT-5`.
    pub timezone: Option<String>,
    /// Tag id applied after registering.
    pub apply_tag: Option<String>,
    /// Field that receives the live room URL.
    pub save_live_room_url_to: Option<String>,
    /// Field that receives the session date.
    pub save_session_date_to: Option<String>,
}

/// Problems with the fields shared by the WebinarJam-family configs.
pub(crate) fn check_common(errors: &mut Vec<FieldError>, c: &Config) {
    check(
        errors,
        c.api_key.trim().is_empty(),
        "api_key",
        "is required",
    );
    check(
        errors,
        c.webinar_id.text().is_empty(),
        "webinar_id",
        "is required",
    );
    check(
        errors,
        c.schedule.as_ref().is_some_and(|s| s.text().is_empty()),
        "schedule",
        "must not be empty when given",
    );
    for (field, v) in [
        ("first_name_field", &c.first_name_field),
        ("last_name_field", &c.last_name_field),
        ("email_field", &c.email_field),
    ] {
        check(errors, v.trim().is_empty(), field, "must not be empty");
    }
    for (field, v) in [
        ("phone_field", &c.phone_field),
        ("timezone", &c.timezone),
        ("apply_tag", &c.apply_tag),
        ("save_live_room_url_to", &c.save_live_room_url_to),
        ("save_session_date_to", &c.save_session_date_to),
    ] {
        check(
            errors,
            v.as_deref().is_some_and(|s| s.trim().is_empty()),
            field,
            "must not be empty when given",
        );
    }
    check(
        errors,
        c.phone_country_code
            .as_deref()
            .is_some_and(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit())),
        "phone_country_code",
        "must be 1 to 4 digits without +",
    );
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_common(&mut errors, self);
        finish(errors)
    }
}

/// `{status, …}` of every WebinarJam answer.
#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    webinar: Option<Value>,
}

/// Posts a WebinarJam API form and checks its `status`.
async fn call(
    ctx: &Ctx<'_>,
    vendor: &str,
    path: &str,
    form: &[(&str, String)],
) -> Result<Answer, StepError> {
    let resp = ctx
        .http
        .send(reqwest::Method::POST, &ctx.vendors.url(vendor, path), |r| {
            with_form(r, form)
        })
        .await
        .map_err(|e| vendor_error(vendor, &e))?;
    let answer: Answer = parse_answer(vendor, &resp.body)?;
    if answer.status != "success" {
        return Err(StepError::External {
            message: format!(
                "{vendor} refused the request: {}",
                answer.message.as_deref().unwrap_or(&answer.status)
            ),
            retryable: false,
        });
    }
    Ok(answer)
}

/// A value as text (WebinarJam mixes numbers and strings).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Registers the contact with the WebinarJam-family API at `vendor` under `prefix`
/// (`/webinarjam` or `/everwebinar`) and builds the outcome.
pub(crate) async fn register(
    ctx: &Ctx<'_>,
    contact: &Contact,
    c: &Config,
    vendor: &str,
    prefix: &str,
) -> Result<Outcome, StepError> {
    let Some(email) = contact.field(&c.email_field).map(str::trim) else {
        return Ok(Outcome::failed(format!(
            "The contact has no email in {}",
            c.email_field
        )));
    };
    if !is_email(email) {
        return Ok(Outcome::failed(format!(
            "{email:?} is not a valid email address"
        )));
    }
    let first = contact
        .field(&c.first_name_field)
        .map_or_else(|| email.split('@').next().unwrap_or(email), str::trim);
    let last = contact.field(&c.last_name_field).map_or("", str::trim);
    let webinar_id = c.webinar_id.text();
    let key = || ("api_key", c.api_key.trim().to_owned());
    let schedule = match &c.schedule {
        Some(s) => s.text(),
        None => {
            let details = call(
                ctx,
                vendor,
                &format!("{prefix}/webinar"),
                &[key(), ("webinar_id", webinar_id.clone())],
            )
            .await?;
            let first_schedule = details
                .webinar
                .as_ref()
                .and_then(|w| w["schedules"].as_array())
                .and_then(|s| s.first())
                .and_then(|s| text(&s["schedule"]));
            match first_schedule {
                Some(s) => s,
                None => {
                    return Ok(Outcome::failed(format!(
                        "Webinar {webinar_id} has no upcoming schedule"
                    )));
                }
            }
        }
    };
    let mut form = vec![
        key(),
        ("webinar_id", webinar_id.clone()),
        ("schedule", schedule.clone()),
        ("first_name", first.to_owned()),
        ("last_name", last.to_owned()),
        ("email", email.to_owned()),
    ];
    if let Some(phone) = c.phone_field.as_deref().and_then(|f| contact.field(f)) {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            form.push(("phone", digits));
            if let Some(cc) = &c.phone_country_code {
                form.push(("phone_country_code", cc.clone()));
            }
        }
    }
    if let Some(tz) = &c.timezone {
        form.push(("timezone", tz.trim().to_owned()));
    }
    let registered = crate::helpers::once(ctx, &format!("{vendor} registration"), || async {
        let answer = call(ctx, vendor, &format!("{prefix}/register"), &form).await?;
        Ok(answer.user.unwrap_or(Value::Null))
    })
    .await?;
    let Some(user) = registered else {
        return Ok(Outcome::ok(format!(
            "Would register {email} for webinar {webinar_id} (schedule {schedule})"
        ))
        .with("webinar_id", webinar_id)
        .with("email", email)
        .with("schedule", schedule));
    };
    let live = text(&user["live_room_url"]);
    let date = text(&user["date"]);
    let mut out = Outcome::ok(format!("Registered {email} for webinar {webinar_id}"))
        .with("webinar_id", webinar_id)
        .with("email", email)
        .with("schedule", schedule)
        .with(
            "live_room_url",
            live.clone().map_or(Value::Null, Value::from),
        )
        .with(
            "session_date",
            date.clone().map_or(Value::Null, Value::from),
        );
    for (field, value) in [
        (&c.save_live_room_url_to, live),
        (&c.save_session_date_to, date),
    ] {
        if let (Some(f), Some(v)) = (field, value) {
            out = out.set_field(contact, f.trim(), v);
        }
    }
    Ok(out.branch(contact, c.apply_tag.as_deref(), None))
}

/// The webinar_jam helper.
pub struct WebinarJam;

impl Helper for WebinarJam {
    const NAME: &'static str = "webinar_jam";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Registers the contact for a live WebinarJam webinar and saves the live room URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_key": "key", "webinar_id": 12, "schedule": 21, "apply_tag": "301", "save_live_room_url_to": "_WebinarLink", "save_session_date_to": "_WebinarDate"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "webinar_id",
        "email",
        "schedule",
        "live_room_url",
        "session_date",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(WebinarJamStep(config)))
    }
}

struct WebinarJamStep(Config);

#[async_trait::async_trait]
impl AsyncStep for WebinarJamStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        register(ctx, contact, &self.0, "webinarjam", "/webinarjam").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::json;

    fn cfg() -> Value {
        json!({"api_key": "k", "webinar_id": 12, "schedule": "21", "apply_tag": "301",
            "save_live_room_url_to": "_Live", "save_session_date_to": "_Date",
            "phone_field": "phone", "phone_country_code": "1"})
    }

    fn registered() -> Value {
        json!({"status": "success", "user": {"webinar_id": 12, "webinar_hash": "h", "user_id": 9,
            "first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io", "schedule": 21,
            "date": "2026-03-20 19:00", "timezone": "America/New_York",
            "live_room_url": "https://event.webinarjam.com/go/live/12/abc",
            "replay_room_url": "https://event.webinarjam.com/go/replay/12/abc",
            "thank_you_url": "https://event.webinarjam.com/registration/thank-you/12/abc"}})
    }

    fn ada() -> Contact {
        contact(
            &[
                ("email", "ada@x.io"),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("phone", "(415) 555-0100"),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn registers_with_the_documented_form() {
        let mock = MockVendor::start(&[("POST", "/webinarjam/register", 200, registered())]).await;
        let env = Env::new().vendor("webinarjam", &mock.base);
        let out = env.run(&WebinarJam, cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(
            out.output["live_room_url"],
            json!("https://event.webinarjam.com/go/live/12/abc")
        );
        assert_eq!(out.output["session_date"], json!("2026-03-20 19:00"));
        assert_eq!(out.output["webinar_id"], json!("12"));
        assert_eq!(
            out.changes,
            vec![
                set("_Live", "https://event.webinarjam.com/go/live/12/abc"),
                set("_Date", "2026-03-20 19:00"),
                Change::ApplyTag {
                    tag_id: "301".into()
                }
            ]
        );
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/webinarjam/register")
        );
        assert!(
            req.header("content-type")
                .unwrap()
                .starts_with("application/x-www-form-urlencoded")
        );
        let form = req.form();
        let expect = [
            ("api_key", "k"),
            ("webinar_id", "12"),
            ("schedule", "21"),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("email", "ada@x.io"),
            ("phone", "4155550100"),
            ("phone_country_code", "1"),
        ];
        assert_eq!(form.len(), expect.len());
        for (k, v) in expect {
            assert_eq!(form[k], v, "{k}");
        }
    }

    #[tokio::test]
    async fn picks_the_next_schedule_when_none_is_set() {
        let mock = MockVendor::start(&[
            ("POST", "/webinarjam/webinar", 200, json!({"status": "success", "webinar": {
                "webinar_id": 12, "name": "Launch",
                "schedules": [{"date": "2026-03-20 19:00", "schedule": 33, "comment": "Thursday"}]}})),
            ("POST", "/webinarjam/register", 200, registered()),
        ])
        .await;
        let env = Env::new().vendor("webinarjam", &mock.base);
        let mut c = cfg();
        c.as_object_mut().unwrap().remove("schedule");
        let out = env
            .run(&WebinarJam, c, &contact(&[("email", "ada@x.io")], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["schedule"], json!("33"));
        let all = mock.received();
        assert_eq!(all[0].form()["webinar_id"], "12");
        assert_eq!(all[1].form()["schedule"], "33");
        assert_eq!(all[1].form()["first_name"], "ada");
        mock.route(
            "POST",
            "/webinarjam/webinar",
            200,
            json!({"status": "success", "webinar": {"schedules": []}}),
        );
        let mut env = Env::new().vendor("webinarjam", &mock.base);
        env.execution_id = "e2".into();
        let mut c = cfg();
        c.as_object_mut().unwrap().remove("schedule");
        let out = env.run(&WebinarJam, c, &ada()).await.unwrap();
        assert!(!out.success && out.message.contains("no upcoming schedule"));
    }

    #[tokio::test]
    async fn missing_email_and_api_errors() {
        let mock = MockVendor::start(&[(
            "POST",
            "/webinarjam/register",
            200,
            json!({"status": "error", "message": "Invalid schedule"}),
        )])
        .await;
        let env = Env::new().vendor("webinarjam", &mock.base);
        let out = env
            .run(&WebinarJam, cfg(), &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("no email"));
        let out = env
            .run(&WebinarJam, cfg(), &contact(&[("email", "ada")], &[]))
            .await
            .unwrap();
        assert!(!out.success);
        assert!(mock.received().is_empty());
        let err = env.run(&WebinarJam, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("Invalid schedule"))
        );
        mock.route("POST", "/webinarjam/register", 401, json!({}));
        assert!(matches!(
            env.run(&WebinarJam, cfg(), &ada()).await.unwrap_err(),
            StepError::External {
                retryable: false,
                ..
            }
        ));
        mock.route("POST", "/webinarjam/register", 503, json!({}));
        assert!(matches!(
            env.run(&WebinarJam, cfg(), &ada()).await.unwrap_err(),
            StepError::External {
                retryable: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn dry_run_and_rerun_register_once() {
        let mock = MockVendor::start(&[("POST", "/webinarjam/register", 200, registered())]).await;
        let mut env = Env::new().vendor("webinarjam", &mock.base);
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&WebinarJam, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would register") && out.changes.is_empty());
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let first = env.run(&WebinarJam, cfg(), &ada()).await.unwrap();
        assert_eq!(env.run(&WebinarJam, cfg(), &ada()).await.unwrap(), first);
        assert_eq!(mock.received().len(), 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &WebinarJam,
            json!({"api_key": "", "webinar_id": " ", "schedule": "", "email_field": "",
                "apply_tag": "", "phone_country_code": "+1"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "api_key",
                "webinar_id",
                "schedule",
                "email_field",
                "apply_tag",
                "phone_country_code"
            ]
        );
        assert!(!config_errors(&WebinarJam, json!({"api_key": "k"})).is_empty());
        assert!(
            !config_errors(&WebinarJam, json!({"api_key": "k", "webinar_id": true})).is_empty()
        );
        assert!(config_errors(&WebinarJam, cfg()).is_empty());
    }
}
