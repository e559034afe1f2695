//! zoom_meeting: two modes against the Zoom API (bearer access token).
//! `create` schedules a meeting for the contact with `POST /users/{userId}/meetings`
//! (`topic`, `type: 2`, `start_time`, `duration`, `timezone`, `password`, `settings`)
//! and `register` adds the contact to a registration-enabled meeting with
//! `POST /meetings/{meetingId}/registrants` (`email`, `first_name`, `last_name`). Either
//! way the join URL is saved to `save_join_url_to` and `apply_tag` is applied; the host's
//! `start_url` is never reported. `topic` and `start_time` are `{{field}}` templates; a
//! start time without an offset is read in `timezone`, and one in the past fails the step.
//! A registrant waiting for manual approval has no join URL yet (`status: pending`). The
//! call runs once per execution (creating is not idempotent at Zoom) and a dry run calls
//! nothing. The shared Zoom plumbing here also serves zoom_webinar.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_first, default_last};
use crate::helpers::integration::mail_it::{is_email, parse_answer, vendor_error};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// What to do.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Schedule a new meeting or webinar (default).
    #[default]
    Create,
    /// Register the contact for an existing one.
    Register,
}

/// Cloud recording setting.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AutoRecording {
    /// No recording.
    None,
    /// Record on the host's computer.
    Local,
    /// Record to the Zoom cloud.
    Cloud,
}

impl AutoRecording {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Local => "local",
            Self::Cloud => "cloud",
        }
    }
}

/// Meeting or webinar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Meeting,
    Webinar,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Self::Meeting => "meetings",
            Self::Webinar => "webinars",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Self::Meeting => "meeting",
            Self::Webinar => "webinar",
        }
    }
}

/// Everything a Zoom create or register call needs, built from either helper's config.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) kind: Kind,
    pub(crate) access_token: String,
    pub(crate) action: Action,
    pub(crate) user_id: String,
    /// The meeting or webinar id (register).
    pub(crate) target_id: Option<String>,
    /// Its config field name, for errors.
    pub(crate) target_field: &'static str,
    pub(crate) topic: String,
    pub(crate) start_time: Option<String>,
    pub(crate) duration: u32,
    pub(crate) timezone: String,
    pub(crate) password: Option<String>,
    pub(crate) auto_recording: AutoRecording,
    pub(crate) registration_type: u8,
    pub(crate) approval_type: Option<u8>,
    pub(crate) first_name_field: String,
    pub(crate) last_name_field: String,
    pub(crate) email_field: String,
    pub(crate) save_join_url_to: Option<String>,
    pub(crate) apply_tag: Option<String>,
    /// (title, value template) answers for webinar registration.
    pub(crate) custom_questions: Vec<(String, String)>,
}

impl Plan {
    /// Every problem with the plan, naming the config fields.
    pub(crate) fn problems(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check(
            &mut e,
            self.access_token.trim().is_empty(),
            "access_token",
            "is required",
        );
        let create = self.action == Action::Create;
        check(
            &mut e,
            create && self.user_id.trim().is_empty(),
            "user_id",
            "is required to create",
        );
        check(
            &mut e,
            !create
                && self
                    .target_id
                    .as_deref()
                    .is_none_or(|t| t.trim().is_empty()),
            self.target_field,
            "is required to register",
        );
        check(
            &mut e,
            self.target_id
                .as_deref()
                .is_some_and(|t| !t.replace(' ', "").bytes().all(|b| b.is_ascii_digit())),
            self.target_field,
            "must be a numeric Zoom id",
        );
        check(
            &mut e,
            create
                && self
                    .start_time
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty()),
            "start_time",
            "is required to create",
        );
        check(
            &mut e,
            !(1..=1440).contains(&self.duration),
            "duration",
            "must be 1 to 1440 minutes",
        );
        check(
            &mut e,
            self.timezone.parse::<chrono_tz::Tz>().is_err(),
            "timezone",
            "is not an IANA time zone",
        );
        check(
            &mut e,
            self.password.as_deref().is_some_and(|p| {
                p.is_empty()
                    || p.chars().count() > 10
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@-_*".contains(c))
            }),
            "password",
            "must be 1 to 10 of letters, digits and @ - _ *",
        );
        check(
            &mut e,
            !(1..=3).contains(&self.registration_type),
            "registration_type",
            "must be 1, 2 or 3",
        );
        check(
            &mut e,
            self.approval_type.is_some_and(|a| a > 2),
            "approval_type",
            "must be 0 (automatic), 1 (manual) or 2 (no registration)",
        );
        for (field, v) in [
            ("first_name_field", &self.first_name_field),
            ("last_name_field", &self.last_name_field),
            ("email_field", &self.email_field),
        ] {
            check(&mut e, v.trim().is_empty(), field, "must not be empty");
        }
        for (field, v) in [
            ("save_join_url_to", &self.save_join_url_to),
            ("apply_tag", &self.apply_tag),
        ] {
            check(
                &mut e,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut e,
            self.custom_questions
                .iter()
                .any(|(t, _)| t.trim().is_empty()),
            "custom_questions",
            "every question needs a title",
        );
        e
    }
}

/// `base(vendor)` plus `segments`, each percent-encoded as one path segment.
pub(crate) fn vendor_url(
    ctx: &Ctx<'_>,
    vendor: &str,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<String, StepError> {
    let bad = |e: String| StepError::External {
        message: format!("invalid {vendor} base URL: {e}"),
        retryable: false,
    };
    let mut url = url::Url::parse(ctx.vendors.base(vendor)).map_err(|e| bad(e.to_string()))?;
    url.path_segments_mut()
        .map_err(|()| bad("cannot hold a path".into()))?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url.into())
}

/// Sends a Zoom API request and parses the JSON answer (`Null` for an empty body).
pub(crate) async fn zoom_call(
    ctx: &Ctx<'_>,
    token: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, StepError> {
    let resp = ctx
        .http
        .send(method, url, |r| {
            let r = r.bearer_auth(token.trim());
            match body {
                Some(b) => r.json(b),
                None => r,
            }
        })
        .await
        .map_err(|e| vendor_error("zoom", &e))?;
    if resp.body.is_empty() {
        return Ok(Value::Null);
    }
    parse_answer("zoom", &resp.body)
}

/// A rendered start time as Zoom wants it (`…Z` for an instant, local
/// `YYYY-MM-DDTHH:MM:SS` read in `tz` otherwise) and its instant.
pub(crate) fn start_time(raw: &str, tz: chrono_tz::Tz) -> Option<(String, DateTime<Utc>)> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let t = t.to_utc();
        return Some((t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), t));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())?;
    let instant = tz.from_local_datetime(&naive).earliest()?.to_utc();
    Some((naive.format("%Y-%m-%dT%H:%M:%S").to_string(), instant))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Runs a plan against the contact.
pub(crate) async fn run_plan(
    ctx: &Ctx<'_>,
    contact: &Contact,
    p: &Plan,
) -> Result<Outcome, StepError> {
    let noun = p.kind.noun();
    let (url, body, label) = match p.action {
        Action::Create => {
            let tz: chrono_tz::Tz = p.timezone.parse().unwrap_or(chrono_tz::UTC);
            let raw = template::render(p.start_time.as_deref().unwrap_or(""), contact);
            let Some((start, instant)) = start_time(&raw, tz) else {
                return Ok(Outcome::failed(format!("{raw:?} is not a start time")));
            };
            if instant < ctx.now {
                return Ok(Outcome::failed(format!(
                    "The start time {start} is in the past"
                )));
            }
            let topic = template::render(&p.topic, contact).trim().to_owned();
            let topic = if topic.is_empty() {
                format!("Zoom {noun}")
            } else {
                topic
            };
            let mut settings = json!({"auto_recording": p.auto_recording.as_str()});
            match p.kind {
                Kind::Meeting => {
                    if let Some(a) = p.approval_type {
                        settings["approval_type"] = json!(a);
                        if a < 2 {
                            settings["registration_type"] = json!(p.registration_type);
                        }
                    }
                }
                Kind::Webinar => {
                    settings["approval_type"] = json!(p.approval_type.unwrap_or(0));
                    settings["registration_type"] = json!(p.registration_type);
                    settings["registrants_email_notification"] = json!(true);
                }
            }
            let mut body = json!({"topic": topic, "type": if p.kind == Kind::Meeting { 2 } else { 5 },
                "start_time": start, "duration": p.duration, "timezone": p.timezone,
                "settings": settings});
            if let Some(pw) = &p.password {
                body["password"] = json!(pw);
            }
            let url = vendor_url(
                ctx,
                "zoom",
                &["users", p.user_id.trim(), p.kind.collection()],
                &[],
            )?;
            (url, body, format!("create a {noun} \"{topic}\" at {start}"))
        }
        Action::Register => {
            let Some(email) = contact.field(&p.email_field).map(str::trim) else {
                return Ok(Outcome::failed(format!(
                    "The contact has no email in {}",
                    p.email_field
                )));
            };
            if !is_email(email) {
                return Ok(Outcome::failed(format!(
                    "{email:?} is not a valid email address"
                )));
            }
            let first = contact
                .field(&p.first_name_field)
                .map_or_else(|| email.split('@').next().unwrap_or(email), str::trim);
            let last = contact.field(&p.last_name_field).map_or("", str::trim);
            let mut body = json!({"email": email, "first_name": first, "last_name": last});
            if !p.custom_questions.is_empty() {
                body["custom_questions"] = p
                    .custom_questions
                    .iter()
                    .map(|(t, v)| json!({"title": t, "value": template::render(v, contact)}))
                    .collect();
            }
            let id = p.target_id.as_deref().unwrap_or("").replace(' ', "");
            let url = vendor_url(ctx, "zoom", &[p.kind.collection(), &id, "registrants"], &[])?;
            (url, body, format!("register {email} for {noun} {id}"))
        }
    };
    let answer = crate::helpers::once(ctx, &format!("zoom {noun} {:?}", p.action), || async {
        zoom_call(
            ctx,
            &p.access_token,
            reqwest::Method::POST,
            &url,
            Some(&body),
        )
        .await
    })
    .await?;
    let Some(a) = answer else {
        return Ok(Outcome::ok(format!("Would {label}"))
            .with(
                &format!("{noun}_id"),
                p.target_id.clone().map_or(Value::Null, Value::from),
            )
            .with("join_url", Value::Null));
    };
    let join_url = text(&a["join_url"]);
    let id = match p.action {
        Action::Create => text(&a["id"]),
        Action::Register => p.target_id.as_deref().map(|t| t.replace(' ', "")),
    };
    let mut out = Outcome::ok(match (&p.action, &join_url) {
        (Action::Create, _) => format!("Created {noun} {}", id.as_deref().unwrap_or("")),
        (Action::Register, Some(_)) => {
            format!("Registered for {noun} {}", id.as_deref().unwrap_or(""))
        }
        (Action::Register, None) => format!(
            "Registration for {noun} {} awaits approval",
            id.as_deref().unwrap_or("")
        ),
    })
    .with(&format!("{noun}_id"), id.map_or(Value::Null, Value::from))
    .with(
        "join_url",
        join_url.clone().map_or(Value::Null, Value::from),
    )
    .with("topic", text(&a["topic"]).map_or(Value::Null, Value::from))
    .with(
        "start_time",
        text(&a["start_time"]).map_or(Value::Null, Value::from),
    );
    if p.action == Action::Register {
        out = out
            .with(
                "registrant_id",
                text(&a["registrant_id"])
                    .or_else(|| text(&a["id"]))
                    .map_or(Value::Null, Value::from),
            )
            .with(
                "status",
                if join_url.is_some() {
                    "approved"
                } else {
                    "pending"
                },
            );
    }
    if let (Some(f), Some(u)) = (&p.save_join_url_to, join_url) {
        out = out.set_field(contact, f.trim(), u);
    }
    Ok(out.branch(contact, p.apply_tag.as_deref(), None))
}

/// Config of zoom_meeting.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zoom OAuth access token (a secret; never logged).
    pub access_token: String,
    /// `create` (default) or `register`.
    #[serde(default)]
    pub action: Action,
    /// Host user id or email for `create`; default `me`.
    #[serde(default = "default_user")]
    pub user_id: String,
    /// The meeting to register for.
    pub meeting_id: Option<String>,
    /// Topic template.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Start time template (RFC 3339, or local `YYYY-MM-DDTHH:MM[:SS]` in `timezone`).
    pub start_time: Option<String>,
    /// Minutes; default 60.
    #[serde(default = "default_duration")]
    pub duration: u32,
    /// IANA time zone; default `UTC`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Meeting passcode (a secret; never reported).
    pub password: Option<String>,
    /// `none` (default), `local` or `cloud`.
    #[serde(default = "default_recording")]
    pub auto_recording: AutoRecording,
    /// 1, 2 or 3 (Zoom's registration types); default 1.
    #[serde(default = "default_registration_type")]
    pub registration_type: u8,
    /// 0 automatic, 1 manual approval, 2 no registration (Zoom's default).
    pub approval_type: Option<u8>,
    /// Field with the first name; default `first_name`.
    #[serde(default = "default_first")]
    pub first_name_field: String,
    /// Field with the last name; default `last_name`.
    #[serde(default = "default_last")]
    pub last_name_field: String,
    /// Field with the email; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Field that receives the join URL.
    pub save_join_url_to: Option<String>,
    /// Tag id applied afterwards.
    pub apply_tag: Option<String>,
}

pub(crate) fn default_user() -> String {
    "me".into()
}
fn default_topic() -> String {
    "Meeting with {{first_name}} {{last_name}}".into()
}
pub(crate) const fn default_duration() -> u32 {
    60
}
pub(crate) fn default_timezone() -> String {
    "UTC".into()
}
fn default_recording() -> AutoRecording {
    AutoRecording::None
}
pub(crate) const fn default_registration_type() -> u8 {
    1
}
impl Config {
    fn plan(&self) -> Plan {
        Plan {
            kind: Kind::Meeting,
            access_token: self.access_token.clone(),
            action: self.action,
            user_id: self.user_id.clone(),
            target_id: self.meeting_id.clone(),
            target_field: "meeting_id",
            topic: self.topic.clone(),
            start_time: self.start_time.clone(),
            duration: self.duration,
            timezone: self.timezone.trim().to_owned(),
            password: self.password.clone(),
            auto_recording: self.auto_recording,
            registration_type: self.registration_type,
            approval_type: self.approval_type,
            first_name_field: self.first_name_field.clone(),
            last_name_field: self.last_name_field.clone(),
            email_field: self.email_field.clone(),
            save_join_url_to: self.save_join_url_to.clone(),
            apply_tag: self.apply_tag.clone(),
            custom_questions: Vec::new(),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        finish(self.plan().problems())
    }
}

/// The zoom_meeting helper.
pub struct ZoomMeeting;

impl Helper for ZoomMeeting {
    const NAME: &'static str = "zoom_meeting";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Creates a Zoom meeting for the contact, or registers the contact for one, and saves the join URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "token", "action": "register", "meeting_id": "85746065432", "save_join_url_to": "_ZoomLink", "apply_tag": "410"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "meeting_id",
        "registrant_id",
        "join_url",
        "topic",
        "start_time",
        "status",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ZoomMeetingStep(config.plan())))
    }
}

struct ZoomMeetingStep(Plan);

#[async_trait::async_trait]
impl AsyncStep for ZoomMeetingStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        run_plan(ctx, contact, &self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn register_cfg() -> Value {
        json!({"access_token": "zt", "action": "register", "meeting_id": "857 4606 5432",
            "save_join_url_to": "_Zoom", "apply_tag": "5"})
    }

    fn create_cfg() -> Value {
        json!({"access_token": "zt", "user_id": "host@x.io", "topic": "Call with {{first_name}}",
            "start_time": "{{appt}}", "timezone": "America/New_York", "password": "abc123",
            "auto_recording": "cloud", "save_join_url_to": "_Zoom"})
    }

    fn ada() -> Contact {
        contact(
            &[
                ("email", "ada@x.io"),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("appt", "2026-03-20 14:30"),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn registers_the_contact() {
        let mock = MockVendor::start(&[("POST", "/meetings/85746065432/registrants", 201,
            json!({"id": 85746065432_u64, "join_url": "https://zoom.us/w/857?tk=abc",
                "registrant_id": "fdgsfh2ey82fuh", "start_time": "2026-03-20T18:30:00Z", "topic": "Demo"}))]).await;
        let env = Env::new().vendor("zoom", &mock.base);
        let out = env.run(&ZoomMeeting, register_cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["meeting_id"], json!("85746065432"));
        assert_eq!(out.output["registrant_id"], json!("fdgsfh2ey82fuh"));
        assert_eq!(out.output["status"], json!("approved"));
        assert_eq!(
            out.changes,
            vec![
                set("_Zoom", "https://zoom.us/w/857?tk=abc"),
                Change::ApplyTag { tag_id: "5".into() }
            ]
        );
        let req = mock.single();
        assert_eq!(req.path, "/meetings/85746065432/registrants");
        assert_eq!(req.header("authorization"), Some("Bearer zt"));
        assert_eq!(
            req.json(),
            json!({"email": "ada@x.io", "first_name": "Ada", "last_name": "Lovelace"})
        );
    }

    #[tokio::test]
    async fn creates_a_meeting_in_the_configured_zone() {
        let mock = MockVendor::start(&[(
            "POST",
            "/users/host@x.io/meetings",
            201,
            json!({"id": 91234567890_u64, "join_url": "https://zoom.us/j/91234567890?pwd=x",
                "start_url": "https://zoom.us/s/91234567890?zak=SECRET", "topic": "Call with Ada",
                "start_time": "2026-03-20T18:30:00Z", "password": "abc123"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let out = env.run(&ZoomMeeting, create_cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["meeting_id"], json!("91234567890"));
        assert!(!format!("{out:?}").contains("SECRET") && !format!("{out:?}").contains("abc123"));
        assert_eq!(
            out.changes,
            vec![set("_Zoom", "https://zoom.us/j/91234567890?pwd=x")]
        );
        let req = mock.single();
        assert_eq!(
            req.json(),
            json!({"topic": "Call with Ada", "type": 2,
            "start_time": "2026-03-20T14:30:00", "duration": 60, "timezone": "America/New_York",
            "password": "abc123", "settings": {"auto_recording": "cloud"}})
        );
    }

    #[tokio::test]
    async fn bad_or_past_start_times_and_missing_email_fail() {
        let mock = MockVendor::start(&[]).await;
        let env = Env::new().vendor("zoom", &mock.base);
        let past = contact(&[("appt", "2026-03-15T11:00:00Z")], &[]);
        let out = env.run(&ZoomMeeting, create_cfg(), &past).await.unwrap();
        assert!(!out.success && out.message.contains("past"));
        let bad = contact(&[("appt", "soon")], &[]);
        assert!(
            !env.run(&ZoomMeeting, create_cfg(), &bad)
                .await
                .unwrap()
                .success
        );
        let out = env
            .run(&ZoomMeeting, register_cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("no email"));
        assert!(mock.received().is_empty());
    }

    #[tokio::test]
    async fn pending_approval_has_no_join_url() {
        let mock = MockVendor::start(&[(
            "POST",
            "/meetings/85746065432/registrants",
            201,
            json!({"id": 85746065432_u64, "registrant_id": "r1", "topic": "Demo"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let out = env.run(&ZoomMeeting, register_cfg(), &ada()).await.unwrap();
        assert_eq!(out.output["status"], json!("pending"));
        assert_eq!(out.output["join_url"], Value::Null);
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "5".into() }]);
    }

    #[tokio::test]
    async fn errors_dry_run_and_rerun() {
        let path = "/meetings/85746065432/registrants";
        let mock = MockVendor::start(&[(
            "POST",
            path,
            404,
            json!({"code": 3001, "message": "Meeting does not exist"}),
        )])
        .await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        let err = env
            .run(&ZoomMeeting, register_cfg(), &ada())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("3001"))
        );
        mock.route("POST", path, 429, json!({}));
        assert!(matches!(
            env.run(&ZoomMeeting, register_cfg(), &ada())
                .await
                .unwrap_err(),
            StepError::External {
                retryable: true,
                ..
            }
        ));
        mock.route(
            "POST",
            path,
            201,
            json!({"join_url": "https://zoom.us/w/1", "registrant_id": "r"}),
        );
        let before = mock.received().len();
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&ZoomMeeting, register_cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would register") && out.changes.is_empty());
        assert_eq!(mock.received().len(), before);
        env.dry_run = false;
        let first = env.run(&ZoomMeeting, register_cfg(), &ada()).await.unwrap();
        assert_eq!(
            env.run(&ZoomMeeting, register_cfg(), &ada()).await.unwrap(),
            first
        );
        assert_eq!(mock.received().len(), before + 1);
    }

    #[test]
    fn parses_start_times() {
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let (s, t) = start_time("2026-03-20T14:30", ny).unwrap();
        assert_eq!(s, "2026-03-20T14:30:00");
        assert_eq!(t.to_rfc3339(), "2026-03-20T18:30:00+00:00");
        assert_eq!(
            start_time("2026-03-20T14:30:00+01:00", ny).unwrap().0,
            "2026-03-20T13:30:00Z"
        );
        assert!(start_time("20/03/2026", ny).is_none());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &ZoomMeeting,
            json!({"access_token": "", "action": "register",
            "meeting_id": "abc", "duration": 0, "timezone": "Mars/Base", "password": "way-too-long-pw",
            "registration_type": 4, "approval_type": 3, "email_field": "", "apply_tag": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "access_token",
                "meeting_id",
                "duration",
                "timezone",
                "password",
                "registration_type",
                "approval_type",
                "email_field",
                "apply_tag"
            ]
        );
        let errs = config_errors(&ZoomMeeting, json!({"access_token": "t", "user_id": " "}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["user_id", "start_time"]);
        assert_eq!(
            config_errors(
                &ZoomMeeting,
                json!({"access_token": "t", "action": "register"})
            )[0]
            .field,
            "meeting_id"
        );
        assert!(
            !config_errors(&ZoomMeeting, json!({"access_token": "t", "action": "join"})).is_empty()
        );
        assert!(config_errors(&ZoomMeeting, create_cfg()).is_empty());
        assert!(config_errors(&ZoomMeeting, register_cfg()).is_empty());
    }
}
