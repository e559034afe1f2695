//! zoom_webinar: zoom_meeting for Zoom webinars (needs the Webinar add-on licence).
//! `create` schedules a webinar with `POST /users/{userId}/webinars` (`type: 5`,
//! `settings` with `approval_type`, `registration_type`, `auto_recording` — cloud by
//! default — and registrant email notifications on); `register` adds the contact with
//! `POST /webinars/{webinarId}/registrants` (`email`, `first_name`, `last_name` and
//! optional `custom_questions` whose values are `{{field}}` templates). The join URL goes
//! to `save_join_url_to`; with manual approval the registrant is `pending` and has none
//! yet. Once per execution; a dry run calls nothing. The plumbing lives in zoom_meeting.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_first, default_last};
use crate::helpers::integration::zoom_meeting::{
    Action, AutoRecording, Kind, Plan, default_duration, default_registration_type,
    default_timezone, default_user, run_plan,
};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    finish,
};
use serde::Deserialize;

/// One answer to a registration question.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The question's title as set up in Zoom.
    pub title: String,
    /// The answer template.
    pub value: String,
}

/// Config of zoom_webinar.
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
    /// The webinar to register for.
    pub webinar_id: Option<String>,
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
    /// Webinar passcode (a secret; never reported).
    pub password: Option<String>,
    /// `none`, `local` or `cloud` (default).
    #[serde(default = "default_recording")]
    pub auto_recording: AutoRecording,
    /// 1, 2 or 3 (Zoom's registration types); default 1.
    #[serde(default = "default_registration_type")]
    pub registration_type: u8,
    /// 0 automatic (default), 1 manual, 2 no registration.
    #[serde(default)]
    pub approval_type: u8,
    /// Answers to the webinar's registration questions.
    #[serde(default)]
    pub custom_questions: Vec<Question>,
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

fn default_topic() -> String {
    "Webinar".into()
}
fn default_recording() -> AutoRecording {
    AutoRecording::Cloud
}

impl Config {
    fn plan(&self) -> Plan {
        Plan {
            kind: Kind::Webinar,
            access_token: self.access_token.clone(),
            action: self.action,
            user_id: self.user_id.clone(),
            target_id: self.webinar_id.clone(),
            target_field: "webinar_id",
            topic: self.topic.clone(),
            start_time: self.start_time.clone(),
            duration: self.duration,
            timezone: self.timezone.trim().to_owned(),
            password: self.password.clone(),
            auto_recording: self.auto_recording,
            registration_type: self.registration_type,
            approval_type: Some(self.approval_type),
            first_name_field: self.first_name_field.clone(),
            last_name_field: self.last_name_field.clone(),
            email_field: self.email_field.clone(),
            save_join_url_to: self.save_join_url_to.clone(),
            apply_tag: self.apply_tag.clone(),
            custom_questions: self
                .custom_questions
                .iter()
                .map(|q| (q.title.trim().to_owned(), q.value.clone()))
                .collect(),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = self.plan().problems();
        if self.action == Action::Create && self.approval_type == 2 {
            errors.push(FieldError::new(
                "approval_type",
                "webinars created here take registrations: use 0 or 1",
            ));
        }
        finish(errors)
    }
}

/// The zoom_webinar helper.
pub struct ZoomWebinar;

impl Helper for ZoomWebinar {
    const NAME: &'static str = "zoom_webinar";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Creates a Zoom webinar, or registers the contact for one, and saves the join URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "token", "action": "register", "webinar_id": "81234567890", "custom_questions": [{"title": "Company", "value": "{{company}}"}], "save_join_url_to": "_WebinarLink"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "webinar_id",
        "registrant_id",
        "join_url",
        "topic",
        "start_time",
        "status",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ZoomWebinarStep(config.plan())))
    }
}

struct ZoomWebinarStep(Plan);

#[async_trait::async_trait]
impl AsyncStep for ZoomWebinarStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        run_plan(ctx, contact, &self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::{Value, json};

    fn ada() -> Contact {
        contact(
            &[
                ("email", "ada@x.io"),
                ("first_name", "Ada"),
                ("company", "Engines Ltd"),
            ],
            &[],
        )
    }

    fn register_cfg() -> Value {
        json!({"access_token": "zt", "action": "register", "webinar_id": "81234567890",
            "custom_questions": [{"title": "Company", "value": "{{company}}"}],
            "save_join_url_to": "_Web", "apply_tag": "8"})
    }

    #[tokio::test]
    async fn registers_with_custom_questions() {
        let mock = MockVendor::start(&[(
            "POST",
            "/webinars/81234567890/registrants",
            201,
            json!({"id": 81234567890_u64, "join_url": "https://zoom.us/w/812?tk=t",
                "registrant_id": "reg1", "start_time": "2026-04-01T17:00:00Z", "topic": "Launch"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let out = env.run(&ZoomWebinar, register_cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["webinar_id"], json!("81234567890"));
        assert_eq!(out.output["registrant_id"], json!("reg1"));
        assert_eq!(out.output["topic"], json!("Launch"));
        assert_eq!(
            out.changes,
            vec![
                set("_Web", "https://zoom.us/w/812?tk=t"),
                Change::ApplyTag { tag_id: "8".into() }
            ]
        );
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/webinars/81234567890/registrants")
        );
        assert_eq!(req.header("authorization"), Some("Bearer zt"));
        assert_eq!(
            req.json(),
            json!({"email": "ada@x.io", "first_name": "Ada", "last_name": "",
            "custom_questions": [{"title": "Company", "value": "Engines Ltd"}]})
        );
    }

    #[tokio::test]
    async fn creates_a_webinar_with_registration_settings() {
        let mock = MockVendor::start(&[(
            "POST",
            "/users/me/webinars",
            201,
            json!({"id": 87654321098_u64, "join_url": "https://zoom.us/j/876", "topic": "Launch",
                "start_url": "https://zoom.us/s/876?zak=SECRET"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let cfg = json!({"access_token": "zt", "topic": "Launch", "start_time": "2026-04-01T17:00:00Z",
            "duration": 90, "approval_type": 1});
        let out = env.run(&ZoomWebinar, cfg, &ada()).await.unwrap();
        assert_eq!(out.output["webinar_id"], json!("87654321098"));
        assert!(out.changes.is_empty());
        assert!(!format!("{out:?}").contains("SECRET"));
        assert_eq!(
            mock.single().json(),
            json!({"topic": "Launch", "type": 5,
            "start_time": "2026-04-01T17:00:00Z", "duration": 90, "timezone": "UTC",
            "settings": {"auto_recording": "cloud", "approval_type": 1, "registration_type": 1,
                "registrants_email_notification": true}})
        );
    }

    #[tokio::test]
    async fn manual_approval_errors_dry_run_and_rerun() {
        let path = "/webinars/81234567890/registrants";
        let mock = MockVendor::start(&[(
            "POST",
            path,
            201,
            json!({"id": 1, "registrant_id": "r2", "topic": "Launch"}),
        )])
        .await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&ZoomWebinar, register_cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would") && out.changes.is_empty());
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let out = env.run(&ZoomWebinar, register_cfg(), &ada()).await.unwrap();
        assert_eq!(out.output["status"], json!("pending"));
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "8".into() }]);
        assert_eq!(
            env.run(&ZoomWebinar, register_cfg(), &ada()).await.unwrap(),
            out
        );
        assert_eq!(mock.received().len(), 1);
        env.execution_id = "e2".into();
        mock.route(
            "POST",
            path,
            400,
            json!({"code": 3043, "message": "Webinar has reached maximum attendee capacity."}),
        );
        assert!(matches!(
            env.run(&ZoomWebinar, register_cfg(), &ada())
                .await
                .unwrap_err(),
            StepError::External {
                retryable: false,
                ..
            }
        ));
        mock.route("POST", path, 500, json!({}));
        assert!(matches!(
            env.run(&ZoomWebinar, register_cfg(), &ada())
                .await
                .unwrap_err(),
            StepError::External {
                retryable: true,
                ..
            }
        ));
        let out = env
            .run(
                &ZoomWebinar,
                register_cfg(),
                &contact(&[("email", "nope")], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &ZoomWebinar,
            json!({"access_token": "t", "action": "register",
            "custom_questions": [{"title": " ", "value": "x"}], "approval_type": 5}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["webinar_id", "approval_type", "custom_questions"]);
        let errs = config_errors(
            &ZoomWebinar,
            json!({"access_token": "t", "start_time": "2026-04-01T17:00:00Z", "approval_type": 2}),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "approval_type");
        assert!(
            !config_errors(
                &ZoomWebinar,
                json!({"access_token": "t", "custom_questions": [{"title": "x"}]})
            )
            .is_empty()
        );
        assert!(config_errors(&ZoomWebinar, register_cfg()).is_empty());
    }
}
