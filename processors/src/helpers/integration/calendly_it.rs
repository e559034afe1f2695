//! calendly_it: Calendly in two modes.
//!
//! `link` (default) creates a single-use scheduling link for an event type (Calendly
//! `POST /scheduling_links`, bearer token, `max_event_count: 1`) and saves its
//! `booking_url` to `result_field`. A link still in that field is reused instead of
//! creating another (`reuse_existing_link`, default true); the webhook mode clears the
//! field once the contact books, so the next run creates a fresh link.
//!
//! `webhook` processes the Calendly webhook in `ctx.input` (`invitee.created` /
//! `invitee.canceled`). A reschedule arrives as a cancel carrying `rescheduled: true`,
//! which is skipped, plus a create carrying `old_invitee`, which applies
//! `rescheduled_tag` (or `created_tag` when unset). Created removes `canceled_tag`,
//! canceled removes the created and rescheduled tags. The meeting start (RFC 3339),
//! duration in minutes and event-type name can be saved to fields. The invitee must be
//! the contact: an empty contact email is filled in, a different one fails. The webhook
//! signature is checked by the inbound endpoint, which sees the request headers.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_true, given};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish, once,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// What the helper does.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Create a single-use scheduling link (default).
    #[default]
    Link,
    /// Process a Calendly invitee webhook.
    Webhook,
}

/// A Calendly webhook event.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A booking (including the new half of a reschedule).
    #[serde(rename = "invitee.created")]
    InviteeCreated,
    /// A cancellation.
    #[serde(rename = "invitee.canceled")]
    InviteeCanceled,
}

impl WebhookEvent {
    fn name(self) -> &'static str {
        match self {
            Self::InviteeCreated => "invitee.created",
            Self::InviteeCanceled => "invitee.canceled",
        }
    }
}

/// Config of calendly_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `link` (default) or `webhook`.
    #[serde(default)]
    pub mode: Mode,
    /// Calendly personal access or OAuth token; required in link mode.
    pub api_token: Option<String>,
    /// Event type URI, `https://api.calendly.com/event_types/…`; required in link mode.
    pub event_type_uri: Option<String>,
    /// Field for the link; required in link mode, cleared on a booking in webhook mode.
    pub result_field: Option<String>,
    /// Keep a link already in `result_field`; default true.
    #[serde(default = "default_true")]
    pub reuse_existing_link: bool,
    /// The contact's email field; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Only process this event; default both.
    pub webhook_event: Option<WebhookEvent>,
    /// Tag for a booking.
    pub created_tag: Option<String>,
    /// Tag for a cancellation.
    pub canceled_tag: Option<String>,
    /// Tag for a reschedule; `created_tag` when unset.
    pub rescheduled_tag: Option<String>,
    /// Field for the meeting start time.
    pub save_meeting_time_to: Option<String>,
    /// Field for the meeting duration in minutes.
    pub save_duration_to: Option<String>,
    /// Field for the event type's name.
    pub save_event_type_to: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.mode == Mode::Link {
            for (name, value) in [
                ("api_token", &self.api_token),
                ("event_type_uri", &self.event_type_uri),
                ("result_field", &self.result_field),
            ] {
                check(
                    &mut errors,
                    given(value).is_none(),
                    name,
                    "is required in link mode",
                );
            }
            let uri_ok = given(&self.event_type_uri).is_none_or(|u| {
                url::Url::parse(u)
                    .is_ok_and(|p| p.scheme() == "https" && p.path().contains("/event_types/"))
            });
            check(
                &mut errors,
                !uri_ok,
                "event_type_uri",
                "must be an https Calendly event type URI",
            );
        }
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        for (name, value) in [
            ("created_tag", &self.created_tag),
            ("canceled_tag", &self.canceled_tag),
            ("rescheduled_tag", &self.rescheduled_tag),
            ("save_meeting_time_to", &self.save_meeting_time_to),
            ("save_duration_to", &self.save_duration_to),
            ("save_event_type_to", &self.save_event_type_to),
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

/// The calendly_it helper.
pub struct CalendlyIt;

impl Helper for CalendlyIt {
    const NAME: &'static str = "calendly_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Creates a single-use Calendly scheduling link for the contact, or applies tags and meeting fields from a Calendly webhook.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_token": "cal_token", "event_type_uri": "https://api.calendly.com/event_types/AAAA", "result_field": "_CalendlyLink"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "scheduling_url",
        "reused",
        "event_type",
        "tag_applied",
        "field_updates",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(CalendlyStep { config }))
    }
}

struct CalendlyStep {
    config: Config,
}

/// `resource` of Calendly's create-scheduling-link response.
#[derive(Debug, Deserialize)]
struct LinkResponse {
    resource: LinkResource,
}

#[derive(Debug, Deserialize)]
struct LinkResource {
    booking_url: String,
}

/// The parts of an invitee webhook the helper uses.
#[derive(Debug, Deserialize)]
struct Webhook {
    event: String,
    payload: Invitee,
}

#[derive(Debug, Default, Deserialize)]
struct Invitee {
    #[serde(default)]
    email: String,
    #[serde(default)]
    rescheduled: bool,
    #[serde(default)]
    old_invitee: Option<String>,
    #[serde(default)]
    scheduled_event: Option<ScheduledEvent>,
}

#[derive(Debug, Default, Deserialize)]
struct ScheduledEvent {
    #[serde(default)]
    name: String,
    start_time: Option<chrono::DateTime<chrono::Utc>>,
    end_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl CalendlyStep {
    async fn link(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let (Some(token), Some(uri), Some(field)) = (
            given(&c.api_token),
            given(&c.event_type_uri),
            given(&c.result_field),
        ) else {
            return Err(StepError::Input("link mode is not configured".into()));
        };
        if let Some(existing) = contact.field(field).filter(|_| c.reuse_existing_link) {
            return Ok(Outcome::ok(format!("Kept the unused link in {field}"))
                .with("scheduling_url", existing)
                .with("reused", true));
        }
        let body = json!({"max_event_count": 1, "owner": uri, "owner_type": "EventType"});
        let url = ctx.vendors.url("calendly", "/scheduling_links");
        let created = once(ctx, "calendly scheduling link", || async move {
            let resp = ctx
                .http
                .send(reqwest::Method::POST, &url, |r| {
                    r.bearer_auth(token).json(&body)
                })
                .await?;
            parse(&resp.body)
        })
        .await?;
        let Some(created) = created else {
            return Ok(Outcome::ok(format!(
                "Would create a single-use scheduling link into {field}"
            ))
            .with("reused", false));
        };
        let link: LinkResponse = serde_json::from_value(created).map_err(unexpected)?;
        let url = link.resource.booking_url;
        Ok(
            Outcome::ok(format!("Created a single-use link into {field}"))
                .set_field(contact, field, url.clone())
                .with("scheduling_url", url)
                .with("reused", false),
        )
    }

    fn webhook(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let Some(input) = ctx.input.filter(|v| !v.is_null()) else {
            return Ok(Outcome::failed("No Calendly webhook payload"));
        };
        let Ok(hook) = serde_json::from_value::<Webhook>(input.clone()) else {
            return Ok(Outcome::failed(
                "The payload is not a Calendly invitee webhook",
            ));
        };
        let event = match hook.event.as_str() {
            "invitee.created" => WebhookEvent::InviteeCreated,
            "invitee.canceled" => WebhookEvent::InviteeCanceled,
            other => return Ok(Outcome::ok(format!("Ignored Calendly event {other}"))),
        };
        if c.webhook_event.is_some_and(|w| w != event) {
            return Ok(Outcome::ok(format!(
                "Ignored {}: configured for another event",
                event.name()
            )));
        }
        let invitee = hook.payload;
        let email_field = c.email_field.trim();
        let mut out = Outcome::ok("");
        match contact.field(email_field) {
            _ if invitee.email.trim().is_empty() => {}
            None => out = out.set_field(contact, email_field, invitee.email.trim()),
            Some(e) if e.trim().eq_ignore_ascii_case(invitee.email.trim()) => {}
            Some(_) => {
                return Ok(Outcome::failed(
                    "The invitee's email differs from the contact's; not applied",
                ));
            }
        }
        let remove = |out: Outcome, tag: Option<&str>| match tag {
            Some(t) if contact.has_tag(t) => out.change(Change::RemoveTag { tag_id: t.into() }),
            _ => out,
        };
        let (kind, tag) = match event {
            WebhookEvent::InviteeCanceled if invitee.rescheduled => {
                return Ok(Outcome::ok(
                    "Skipped the cancel half of a reschedule; the new booking updates the contact",
                )
                .with("event_type", "rescheduled"));
            }
            WebhookEvent::InviteeCanceled => {
                out = remove(out, given(&c.created_tag));
                out = remove(out, given(&c.rescheduled_tag));
                ("canceled", given(&c.canceled_tag))
            }
            WebhookEvent::InviteeCreated => {
                out = remove(out, given(&c.canceled_tag));
                if invitee.old_invitee.is_some() {
                    let t = given(&c.rescheduled_tag).or(given(&c.created_tag));
                    ("rescheduled", t)
                } else {
                    ("created", given(&c.created_tag))
                }
            }
        };
        out = out.branch(contact, tag, None);
        let mut updates = Map::new();
        if let Some(ev) = &invitee.scheduled_event {
            let start = ev
                .start_time
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let minutes = ev
                .start_time
                .zip(ev.end_time)
                .map(|(s, e)| (e - s).num_minutes().to_string());
            let name = Some(ev.name.trim().to_owned()).filter(|n| !n.is_empty());
            for (target, value) in [
                (given(&c.save_meeting_time_to), start),
                (given(&c.save_duration_to), minutes),
                (given(&c.save_event_type_to), name),
            ] {
                if let (Some(f), Some(v)) = (target, value) {
                    updates.insert(f.to_owned(), json!(v));
                    out = out.set_field(contact, f, v);
                }
            }
        }
        if kind != "canceled"
            && let Some(f) = given(&c.result_field).filter(|f| contact.field(f).is_some())
        {
            out = out.change(Change::SetField {
                field: f.to_owned(),
                value: None,
            });
        }
        out.message = format!("Calendly booking {kind}");
        Ok(out
            .with("event_type", kind)
            .with("tag_applied", tag)
            .with("field_updates", updates))
    }
}

fn parse(body: &[u8]) -> Result<Value, StepError> {
    serde_json::from_slice(body).map_err(unexpected)
}

fn unexpected(e: serde_json::Error) -> StepError {
    StepError::External {
        message: format!("unexpected Calendly response: {e}"),
        retryable: false,
    }
}

#[async_trait::async_trait]
impl AsyncStep for CalendlyStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        match self.config.mode {
            Mode::Link => self.link(ctx, contact).await,
            Mode::Webhook => self.webhook(ctx, contact),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    const URI: &str = "https://api.calendly.com/event_types/ET1";

    fn link_cfg() -> Value {
        json!({"api_token": "tok", "event_type_uri": URI, "result_field": "_Link"})
    }

    async fn mock(status: u16) -> MockVendor {
        MockVendor::start(&[(
            "POST",
            "/scheduling_links",
            status,
            json!({"resource": {"booking_url": "https://calendly.com/s/FOO-BAR",
                "owner": URI, "owner_type": "EventType"}}),
        )])
        .await
    }

    #[tokio::test]
    async fn creates_a_single_use_link_and_saves_it() {
        let m = mock(201).await;
        let env = Env::new().vendor("calendly", &m.base);
        let out = env
            .run(&CalendlyIt, link_cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/scheduling_links")
        );
        assert_eq!(req.header("authorization"), Some("Bearer tok"));
        assert_eq!(
            req.json(),
            json!({"max_event_count": 1, "owner": URI, "owner_type": "EventType"})
        );
        assert_eq!(
            out.changes,
            vec![set("_Link", "https://calendly.com/s/FOO-BAR")]
        );
        assert_eq!(
            out.output["scheduling_url"],
            json!("https://calendly.com/s/FOO-BAR")
        );
        assert_eq!(out.output["reused"], json!(false));
    }

    #[tokio::test]
    async fn an_unused_link_in_the_field_is_reused() {
        let m = mock(201).await;
        let env = Env::new().vendor("calendly", &m.base);
        let c = contact(&[("_Link", "https://calendly.com/s/OLD")], &[]);
        let out = env.run(&CalendlyIt, link_cfg(), &c).await.unwrap();
        assert!(m.received().is_empty() && out.changes.is_empty());
        assert_eq!(out.output["reused"], json!(true));
        let mut cfg = link_cfg();
        cfg["reuse_existing_link"] = json!(false);
        let out = env.run(&CalendlyIt, cfg, &c).await.unwrap();
        assert_eq!(m.received().len(), 1);
        assert_eq!(
            out.changes,
            vec![set("_Link", "https://calendly.com/s/FOO-BAR")]
        );
    }

    #[tokio::test]
    async fn dry_run_and_rerun_do_not_create_again() {
        let m = mock(201).await;
        let mut env = Env::new().vendor("calendly", &m.base);
        // The journal expires relative to env.now; pin the state clock to it.
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env
            .run(&CalendlyIt, link_cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.message.starts_with("Would create"));
        assert!(m.received().is_empty());
        env.dry_run = false;
        let first = env
            .run(&CalendlyIt, link_cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        let again = env
            .run(&CalendlyIt, link_cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(m.received().len(), 1);
        assert_eq!(first, again);
    }

    #[tokio::test]
    async fn vendor_errors_are_external() {
        for (status, retryable) in [(401, false), (503, true), (429, true)] {
            let m = mock(status).await;
            let env = Env::new().vendor("calendly", &m.base);
            let err = env
                .run(&CalendlyIt, link_cfg(), &contact(&[], &[]))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}: {err:?}"
            );
        }
    }

    fn hook(event: &str, extra: Value) -> Value {
        let mut payload = json!({"email": "ada@example.com", "name": "Ada L", "rescheduled": false,
            "old_invitee": null, "scheduled_event": {"name": "Intro Call",
            "start_time": "2026-03-20T15:00:00.000000Z", "end_time": "2026-03-20T15:30:00.000000Z"}});
        for (k, v) in extra.as_object().unwrap() {
            payload[k] = v.clone();
        }
        json!({"event": event, "created_at": "2026-03-15T12:00:00Z", "payload": payload})
    }

    fn hook_cfg() -> Value {
        json!({"mode": "webhook", "created_tag": "10", "canceled_tag": "20", "rescheduled_tag": "30",
            "save_meeting_time_to": "_MeetAt", "save_duration_to": "_MeetMin",
            "save_event_type_to": "_MeetType", "result_field": "_Link"})
    }

    async fn on_hook(input: Value, cfg: Value, c: &Contact) -> Outcome {
        let mut env = Env::new();
        env.input = Some(input);
        env.run(&CalendlyIt, cfg, c).await.unwrap()
    }

    #[tokio::test]
    async fn a_booking_tags_saves_meeting_fields_and_clears_the_used_link() {
        let c = contact(
            &[
                ("email", "Ada@Example.com"),
                ("_Link", "https://calendly.com/s/X"),
            ],
            &["20"],
        );
        let out = on_hook(hook("invitee.created", json!({})), hook_cfg(), &c).await;
        assert!(out.success, "{}", out.message);
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag {
                    tag_id: "20".into()
                },
                Change::ApplyTag {
                    tag_id: "10".into()
                },
                set("_MeetAt", "2026-03-20T15:00:00Z"),
                set("_MeetMin", "30"),
                set("_MeetType", "Intro Call"),
                Change::SetField {
                    field: "_Link".into(),
                    value: None
                },
            ]
        );
        assert_eq!(out.output["event_type"], json!("created"));
        assert_eq!(out.output["tag_applied"], json!("10"));
        assert_eq!(out.output["field_updates"]["_MeetMin"], json!("30"));
    }

    #[tokio::test]
    async fn a_reschedule_is_one_rescheduled_booking() {
        let c = contact(&[("email", "ada@example.com")], &["10"]);
        let cancel = on_hook(
            hook("invitee.canceled", json!({"rescheduled": true})),
            hook_cfg(),
            &c,
        )
        .await;
        assert!(cancel.success && cancel.changes.is_empty());
        let create = on_hook(
            hook(
                "invitee.created",
                json!({"old_invitee": "https://api.calendly.com/scheduled_events/E/invitees/OLD"}),
            ),
            hook_cfg(),
            &c,
        )
        .await;
        assert_eq!(create.output["event_type"], json!("rescheduled"));
        assert_eq!(
            create.changes[0],
            Change::ApplyTag {
                tag_id: "30".into()
            }
        );
    }

    #[tokio::test]
    async fn a_cancellation_swaps_tags_and_fills_a_missing_email() {
        let c = contact(&[], &["10"]);
        let out = on_hook(hook("invitee.canceled", json!({})), hook_cfg(), &c).await;
        assert_eq!(
            out.changes[..3],
            [
                set("email", "ada@example.com"),
                Change::RemoveTag {
                    tag_id: "10".into()
                },
                Change::ApplyTag {
                    tag_id: "20".into()
                },
            ]
        );
        assert!(!out.changes.iter().any(|ch| ch.target() == "_Link"));
    }

    #[tokio::test]
    async fn mismatched_invitees_other_events_and_filters() {
        let other = contact(&[("email", "bob@example.com")], &[]);
        let out = on_hook(hook("invitee.created", json!({})), hook_cfg(), &other).await;
        assert!(!out.success && out.changes.is_empty());
        let c = contact(&[("email", "ada@example.com")], &[]);
        let out = on_hook(
            hook("routing_form_submission.created", json!({})),
            hook_cfg(),
            &c,
        )
        .await;
        assert!(out.success && out.changes.is_empty());
        let mut only_cancel = hook_cfg();
        only_cancel["webhook_event"] = json!("invitee.canceled");
        let out = on_hook(hook("invitee.created", json!({})), only_cancel, &c).await;
        assert!(out.success && out.changes.is_empty());
        let out = on_hook(json!({"nope": 1}), hook_cfg(), &c).await;
        assert!(!out.success);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(&CalendlyIt, json!({}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["api_token", "event_type_uri", "result_field"]);
        let mut cfg = link_cfg();
        cfg["event_type_uri"] = json!("http://example.com/x");
        assert_eq!(config_errors(&CalendlyIt, cfg)[0].field, "event_type_uri");
        assert!(config_errors(&CalendlyIt, json!({"mode": "webhook"})).is_empty());
        assert!(
            !config_errors(&CalendlyIt, json!({"mode": "webhook", "created_tag": " "})).is_empty()
        );
        assert!(
            !config_errors(
                &CalendlyIt,
                json!({"mode": "webhook", "webhook_event": "x"})
            )
            .is_empty()
        );
    }
}
