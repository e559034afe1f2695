//! everwebinar: registers the contact for an EverWebinar session. The EverWebinar API
//! takes form posts: `POST /everwebinar/register` with `api_key`, `webinar_id`,
//! `first_name`, `last_name`, `email`, `schedule` (and `timezone`, `date`). Without a
//! configured `schedule`, the webinar's first listed schedule is used ("next available"),
//! read with `POST /everwebinar/webinar`. The returned live-room URL and session date can
//! be saved to fields so reminders can merge them, and a tag marks the registration. A
//! missing email fails; a missing first name uses `default_first_name`. The registration
//! is journaled, so a redelivered execution does not register again (and EverWebinar
//! returns the existing registrant for a repeated email anyway).

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_first, default_last, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once,
};
use serde::Deserialize;
use serde_json::Value;

/// Config of everwebinar.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EverWebinar API key.
    pub api_key: String,
    /// The webinar id.
    pub webinar_id: u64,
    /// Schedule id; default the webinar's next available schedule.
    pub schedule: Option<u64>,
    /// Time zone for webinars that auto-detect it, e.g. `GMT-5` or `GMT+4:30`.
    pub timezone: Option<String>,
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
    /// Tag applied after registering.
    pub apply_tag: Option<String>,
    /// Field for the live-room URL.
    pub save_live_room_url_to: Option<String>,
    /// Field for the session date.
    pub save_session_date_to: Option<String>,
}

fn default_friend() -> String {
    "Friend".into()
}

/// Whether `tz` looks like `GMT-5`, `GMT+2` or `GMT+4:30`.
fn valid_timezone(tz: &str) -> bool {
    let Some(rest) = tz.strip_prefix("GMT") else {
        return false;
    };
    let Some(offset) = rest.strip_prefix('+').or_else(|| rest.strip_prefix('-')) else {
        return false;
    };
    let (hours, minutes) = offset.split_once(':').unwrap_or((offset, "00"));
    hours.parse::<u8>().is_ok_and(|h| h <= 14)
        && minutes.len() == 2
        && minutes.parse::<u8>().is_ok_and(|m| m < 60)
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
            self.webinar_id == 0,
            "webinar_id",
            "must be a webinar id",
        );
        check(
            &mut errors,
            self.timezone
                .as_deref()
                .is_some_and(|t| !valid_timezone(t.trim())),
            "timezone",
            "must look like GMT-5 or GMT+4:30",
        );
        for (name, value) in [
            ("email_field", &self.email_field),
            ("first_name_field", &self.first_name_field),
            ("last_name_field", &self.last_name_field),
            ("default_first_name", &self.default_first_name),
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
            ("save_live_room_url_to", &self.save_live_room_url_to),
            ("save_session_date_to", &self.save_session_date_to),
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

/// The everwebinar helper.
pub struct Everwebinar;

impl Helper for Everwebinar {
    const NAME: &'static str = "everwebinar";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Registers the contact for an EverWebinar session and saves the live-room URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_key": "ew_key", "webinar_id": 12, "schedule": 3, "apply_tag": "620", "save_live_room_url_to": "_WebinarUrl", "save_session_date_to": "_WebinarDate"}"#;
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
        Runnable::Async(Box::new(EverwebinarStep { config }))
    }
}

struct EverwebinarStep {
    config: Config,
}

/// EverWebinar's answer envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    user: Option<Registrant>,
    #[serde(default)]
    webinar: Option<Webinar>,
}

#[derive(Debug, Deserialize)]
struct Registrant {
    #[serde(default)]
    live_room_url: String,
    #[serde(default)]
    date: String,
}

#[derive(Debug, Deserialize)]
struct Webinar {
    #[serde(default)]
    schedules: Vec<Schedule>,
}

#[derive(Debug, Deserialize)]
struct Schedule {
    schedule: u64,
    #[serde(default)]
    date: String,
}

fn form(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// Parses an answer; a non-success status is a final vendor error.
fn envelope(body: &[u8]) -> Result<Envelope, StepError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| StepError::External {
        message: format!("unexpected EverWebinar response: {e}"),
        retryable: false,
    })?;
    if env.status != "success" {
        return Err(StepError::External {
            message: format!(
                "EverWebinar refused the request: {}",
                env.message.as_deref().unwrap_or(&env.status)
            ),
            retryable: false,
        });
    }
    Ok(env)
}

impl EverwebinarStep {
    async fn post(
        &self,
        ctx: &Ctx<'_>,
        path: &str,
        pairs: &[(&str, String)],
    ) -> Result<Vec<u8>, StepError> {
        let body = form(pairs);
        let url = ctx.vendors.url("everwebinar", path);
        let resp = ctx
            .http
            .send(reqwest::Method::POST, &url, |r| {
                r.header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
            })
            .await?;
        Ok(resp.body)
    }

    /// The configured schedule, or the webinar's first listed one with its date.
    async fn schedule(&self, ctx: &Ctx<'_>) -> Result<Option<(u64, Option<String>)>, StepError> {
        let c = &self.config;
        if let Some(s) = c.schedule {
            return Ok(Some((s, None)));
        }
        let mut pairs = vec![
            ("api_key", c.api_key.trim().to_owned()),
            ("webinar_id", c.webinar_id.to_string()),
        ];
        if let Some(tz) = given(&c.timezone) {
            pairs.push(("timezone", tz.to_owned()));
        }
        let body = self.post(ctx, "/everwebinar/webinar", &pairs).await?;
        let first = envelope(&body)?
            .webinar
            .and_then(|w| w.schedules.into_iter().next());
        Ok(first.map(|s| (s.schedule, Some(s.date).filter(|d| !d.is_empty()))))
    }
}

#[async_trait::async_trait]
impl AsyncStep for EverwebinarStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let Some(email) = contact.field(c.email_field.trim()).map(str::trim) else {
            return Ok(Outcome::failed("The contact has no email to register"));
        };
        let Some((schedule, date)) = self.schedule(ctx).await? else {
            return Ok(Outcome::failed(format!(
                "Webinar {} has no schedule to register for",
                c.webinar_id
            )));
        };
        let first = contact
            .field(c.first_name_field.trim())
            .unwrap_or(c.default_first_name.trim());
        let mut pairs = vec![
            ("api_key", c.api_key.trim().to_owned()),
            ("webinar_id", c.webinar_id.to_string()),
            ("first_name", first.trim().to_owned()),
            ("email", email.to_owned()),
            ("schedule", schedule.to_string()),
        ];
        if let Some(last) = contact.field(c.last_name_field.trim()) {
            pairs.push(("last_name", last.trim().to_owned()));
        }
        if let Some(tz) = given(&c.timezone) {
            pairs.push(("timezone", tz.to_owned()));
        }
        if let Some(d) = date {
            pairs.push(("date", d));
        }
        let registered = once(ctx, "everwebinar registration", || async move {
            let body = self.post(ctx, "/everwebinar/register", &pairs).await?;
            envelope(&body)?;
            serde_json::from_slice::<Value>(&body).map_err(|e| StepError::External {
                message: format!("unexpected EverWebinar response: {e}"),
                retryable: false,
            })
        })
        .await?;
        let base = |out: Outcome| {
            out.with("webinar_id", c.webinar_id)
                .with("email", email)
                .with("schedule", schedule)
        };
        let Some(registered) = registered else {
            return Ok(base(Outcome::ok(format!(
                "Would register {email} for webinar {} (schedule {schedule})",
                c.webinar_id
            ))));
        };
        let user = serde_json::from_value::<Envelope>(registered)
            .ok()
            .and_then(|e| e.user);
        let (room, date) = user.map_or((String::new(), String::new()), |u| {
            (u.live_room_url, u.date)
        });
        let mut out = Outcome::ok(format!("Registered {email} for webinar {}", c.webinar_id));
        for (field, value) in [
            (given(&c.save_live_room_url_to), &room),
            (given(&c.save_session_date_to), &date),
        ] {
            if let Some(f) = field.filter(|_| !value.is_empty()) {
                out = out.set_field(contact, f, value.clone());
            }
        }
        Ok(base(out.branch(contact, given(&c.apply_tag), None))
            .with("live_room_url", room)
            .with("session_date", date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn registered() -> Value {
        json!({"status": "success", "user": {"webinar_id": 12, "webinar_hash": "abc", "user_id": 99,
            "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "schedule": 3, "date": "2026-03-20 14:00", "timezone": "GMT-5",
            "live_room_url": "https://event.webinarjam.com/go/live/12/abc99",
            "replay_room_url": "https://event.webinarjam.com/go/replay/12/abc99",
            "thank_you_url": "https://event.webinarjam.com/registration/thank-you/12/abc99"}})
    }

    fn cfg() -> Value {
        json!({"api_key": "ew_key", "webinar_id": 12, "schedule": 3, "apply_tag": "620",
            "save_live_room_url_to": "_Room", "save_session_date_to": "_Date"})
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

    async fn setup(routes: &[(&str, &str, u16, Value)]) -> (MockVendor, Env) {
        let m = MockVendor::start(routes).await;
        let env = Env::new().vendor("everwebinar", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    #[tokio::test]
    async fn registers_with_the_documented_form_and_saves_the_room() {
        let (m, env) = setup(&[("POST", "/everwebinar/register", 200, registered())]).await;
        let out = env.run(&Everwebinar, cfg(), &ada()).await.unwrap();
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/everwebinar/register")
        );
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let expected: BTreeMap<String, String> = [
            ("api_key", "ew_key"),
            ("webinar_id", "12"),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("email", "ada@example.com"),
            ("schedule", "3"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(req.form(), expected);
        assert_eq!(
            out.changes,
            vec![
                set("_Room", "https://event.webinarjam.com/go/live/12/abc99"),
                set("_Date", "2026-03-20 14:00"),
                Change::ApplyTag {
                    tag_id: "620".into()
                },
            ]
        );
        assert_eq!(out.output["schedule"], json!(3));
    }

    #[tokio::test]
    async fn without_a_schedule_the_next_available_one_is_used() {
        let (m, env) = setup(&[
            (
                "POST",
                "/everwebinar/webinar",
                200,
                json!({"status": "success", "webinar": {
                "webinar_id": 12, "name": "Evergreen", "schedules": [
                    {"date": "2026-03-16 10:00", "schedule": 7, "comment": "Daily"},
                    {"date": "2026-03-17 10:00", "schedule": 8, "comment": "Daily"}]}}),
            ),
            ("POST", "/everwebinar/register", 200, registered()),
        ])
        .await;
        let mut cfg = cfg();
        cfg.as_object_mut().unwrap().remove("schedule");
        cfg["timezone"] = json!("GMT-5");
        let c = contact(&[("email", "ada@example.com")], &[]);
        env.run(&Everwebinar, cfg, &c).await.unwrap();
        let reqs = m.received();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].form()["timezone"], "GMT-5");
        let form = reqs[1].form();
        assert_eq!(
            (form["schedule"].as_str(), form["date"].as_str()),
            ("7", "2026-03-16 10:00")
        );
        assert_eq!(form["first_name"], "Friend");
        assert!(!form.contains_key("last_name"));
    }

    #[tokio::test]
    async fn missing_email_or_schedule_fails() {
        let (m, env) = setup(&[(
            "POST",
            "/everwebinar/webinar",
            200,
            json!({"status": "success", "webinar": {"schedules": []}}),
        )])
        .await;
        let out = env
            .run(&Everwebinar, cfg(), &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert!(!out.success && m.received().is_empty());
        let mut cfg = cfg();
        cfg.as_object_mut().unwrap().remove("schedule");
        let out = env.run(&Everwebinar, cfg, &ada()).await.unwrap();
        assert!(!out.success && out.message.contains("no schedule"));
    }

    #[tokio::test]
    async fn dry_run_rerun_and_vendor_errors() {
        let (m, mut env) = setup(&[("POST", "/everwebinar/register", 200, registered())]).await;
        env.dry_run = true;
        let out = env.run(&Everwebinar, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.changes.is_empty() && m.received().is_empty());
        env.dry_run = false;
        let first = env.run(&Everwebinar, cfg(), &ada()).await.unwrap();
        let again = env.run(&Everwebinar, cfg(), &ada()).await.unwrap();
        assert_eq!((m.received().len(), first), (1, again));
        m.route(
            "POST",
            "/everwebinar/register",
            200,
            json!({"status": "error", "message": "Invalid schedule"}),
        );
        env.execution_id = "e2".into();
        let err = env.run(&Everwebinar, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("Invalid schedule"))
        );
        for (status, retryable) in [(401, false), (503, true)] {
            m.route("POST", "/everwebinar/register", status, json!({}));
            let err = env.run(&Everwebinar, cfg(), &ada()).await.unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}"
            );
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &Everwebinar,
            json!({"api_key": "", "webinar_id": 0, "timezone": "EST"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["api_key", "webinar_id", "timezone"]);
        assert!(!config_errors(&Everwebinar, json!({"api_key": "k"})).is_empty());
        assert!(
            !config_errors(&Everwebinar, json!({"api_key": "k", "webinar_id": "abc"})).is_empty()
        );
        assert!(
            !config_errors(
                &Everwebinar,
                json!({"api_key": "k", "webinar_id": 1, "apply_tag": ""})
            )
            .is_empty()
        );
        assert!(
            valid_timezone("GMT+4:30") && valid_timezone("GMT-5") && !valid_timezone("GMT+4:3")
        );
    }
}
