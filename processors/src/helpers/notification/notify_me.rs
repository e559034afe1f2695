//! notify_me: sends an internal alert about the contact to the account's people, on one
//! channel: `email` (SendGrid `POST /v3/mail/send`), `slack` (a Slack incoming-webhook
//! URL), `webhook` (a JSON POST to the customer's URL, with `Idempotency-Key`) or `sms`
//! (Twilio Messages API). Subject and message are `{{field}}` templates; the listed
//! `include_fields` and an optional contact link (a template such as
//! `https://app.example.com/contacts/{{contact.id}}`) are appended. Customer URLs go
//! through the guarded HTTP client, so they cannot reach internal addresses; Slack values
//! are mrkdwn-escaped. Only the listed fields leave the CRM. The alert is sent once per
//! execution and a dry run sends nothing; combine with limit_it against alert storms.
//! Webhook and Slack URLs can hold secrets, so only their host is reported.

use crate::connectors::Capability;
use crate::helpers::integration::mail_it::{
    Email, escape_html, escaped_contact, is_email, one_line, vendor_error,
};
use crate::helpers::integration::twilio_sms::{Sender, is_e164, is_sid, send_sms};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Where the alert goes.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An email to `recipient`.
    Email,
    /// A Slack incoming webhook at `recipient`.
    Slack,
    /// A JSON POST to `recipient`.
    Webhook,
    /// An SMS to `recipient`.
    Sms,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Sms => "sms",
        }
    }
}

/// SendGrid settings for the email channel.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendgridSettings {
    /// SendGrid API key (a secret; never logged).
    pub api_key: String,
    /// Verified sender address.
    pub from_email: String,
    /// Sender name; default `MyFusionHelper`.
    #[serde(default = "default_from_name")]
    pub from_name: String,
}

fn default_from_name() -> String {
    "MyFusionHelper".into()
}

/// Twilio settings for the SMS channel.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// Account SID (`AC…`).
    pub account_sid: String,
    /// Auth token (a secret; never logged).
    pub auth_token: String,
    /// Sending number in E.164.
    pub from_number: String,
}

/// Config of notify_me.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `email`, `slack`, `webhook` or `sms`.
    pub channel: Channel,
    /// Message template.
    pub message: String,
    /// Subject template (email subject; first line elsewhere).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Email address, Slack webhook URL, webhook URL or E.164 phone, by channel.
    pub recipient: String,
    /// Field keys whose values are added to the alert.
    #[serde(default)]
    pub include_fields: Vec<String>,
    /// Link to the contact in the CRM, a template.
    pub contact_link_template: Option<String>,
    /// Required for `email`.
    pub sendgrid: Option<SendgridSettings>,
    /// Required for `sms`.
    pub twilio: Option<TwilioSettings>,
}

fn default_subject() -> String {
    "Contact alert: {{first_name}} {{last_name}}".into()
}

fn http_url(s: &str) -> bool {
    url::Url::parse(s.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.message.trim().is_empty(),
            "message",
            "is required",
        );
        let r = self.recipient.trim();
        let (ok, what) = match self.channel {
            Channel::Email => (is_email(r), "an email address"),
            Channel::Slack | Channel::Webhook => (http_url(r), "an http(s) URL"),
            Channel::Sms => (is_e164(r), "a phone number in E.164 form"),
        };
        if !ok {
            errors.push(FieldError::new(
                "recipient",
                format!("must be {what} for channel {}", self.channel.as_str()),
            ));
        }
        check(
            &mut errors,
            self.include_fields.iter().any(|f| f.trim().is_empty()),
            "include_fields",
            "field keys must not be empty",
        );
        check(
            &mut errors,
            self.contact_link_template
                .as_deref()
                .is_some_and(|t| t.trim().is_empty()),
            "contact_link_template",
            "must not be empty when given",
        );
        match (&self.sendgrid, self.channel) {
            (None, Channel::Email) => {
                errors.push(FieldError::new("sendgrid", "is required for channel email"))
            }
            (Some(s), _) => {
                check(
                    &mut errors,
                    s.api_key.trim().is_empty(),
                    "sendgrid.api_key",
                    "is required",
                );
                check(
                    &mut errors,
                    !is_email(&s.from_email),
                    "sendgrid.from_email",
                    "must be an email address",
                );
            }
            _ => {}
        }
        match (&self.twilio, self.channel) {
            (None, Channel::Sms) => {
                errors.push(FieldError::new("twilio", "is required for channel sms"));
            }
            (Some(t), _) => {
                check(
                    &mut errors,
                    !is_sid(t.account_sid.trim(), "AC"),
                    "twilio.account_sid",
                    "must be a Twilio account SID",
                );
                check(
                    &mut errors,
                    t.auth_token.trim().is_empty(),
                    "twilio.auth_token",
                    "is required",
                );
                check(
                    &mut errors,
                    !is_e164(t.from_number.trim()),
                    "twilio.from_number",
                    "must be in E.164 form",
                );
            }
            _ => {}
        }
        finish(errors)
    }
}

/// The notify_me helper.
pub struct NotifyMe;

impl Helper for NotifyMe {
    const NAME: &'static str = "notify_me";
    const CATEGORY: Category = Category::Notification;
    const SUMMARY: &'static str =
        "Alerts the team about the contact by email, Slack, webhook or SMS.";
    const EXAMPLE_CONFIG: &'static str = r#"{"channel": "webhook", "recipient": "https://alerts.example.invalid/mfh", "message": "New high-value lead: {{first_name}} {{last_name}}", "include_fields": ["email", "phone"]}"#;
    const OUTPUTS: &'static [&'static str] =
        &["channel", "subject", "message", "recipient", "delivered"];
    const REQUIRES: &'static [Capability] = &[];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(NotifyMeStep(config)))
    }
}

struct NotifyMeStep(Config);

impl NotifyMeStep {
    /// The subject, the text (message, fields, link) and the fields sent.
    fn compose(&self, contact: &Contact, escape: bool) -> (String, String, Map<String, Value>) {
        let c = &self.0;
        let shown = if escape {
            escaped_contact(contact, |v| escape_html(v, false))
        } else {
            contact.clone()
        };
        let subject = one_line(&template::render(&c.subject, &shown));
        let mut text = template::render(&c.message, &shown).trim().to_owned();
        let mut fields = Map::new();
        for f in &c.include_fields {
            let f = f.trim();
            let v = shown
                .fields
                .get(f)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            fields.insert(f.to_owned(), json!(contact.field(f)));
            if fields.len() == 1 {
                text.push('\n');
            }
            text.push('\n');
            text.push_str(f);
            text.push_str(": ");
            text.push_str(&v);
        }
        if let Some(link) = &c.contact_link_template {
            text.push_str("\n\n");
            text.push_str(template::render(link, contact).trim());
        }
        (subject, text, fields)
    }

    /// The recipient as reported: URLs cut to their host.
    fn shown_recipient(&self) -> String {
        let r = self.0.recipient.trim();
        match self.0.channel {
            Channel::Slack | Channel::Webhook => url::Url::parse(r)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            Channel::Email | Channel::Sms => r.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for NotifyMeStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let (subject, text, fields) = self.compose(contact, c.channel == Channel::Slack);
        let recipient = c.recipient.trim();
        let sent = crate::helpers::once(ctx, "notify_me alert", || async {
            match c.channel {
                Channel::Email => {
                    let s = c.sendgrid.as_ref().ok_or_else(|| StepError::Input("sendgrid settings missing".into()))?;
                    Email {
                        from_email: s.from_email.trim().to_owned(),
                        from_name: one_line(&s.from_name),
                        to: recipient.to_owned(),
                        cc: Vec::new(),
                        bcc: Vec::new(),
                        reply_to: None,
                        subject: subject.clone(),
                        content_type: "text/plain",
                        body: text.clone(),
                        attachments: Vec::new(),
                        reference: format!("mfh-{}", ctx.execution_id),
                    }
                    .send(ctx, &s.api_key)
                    .await?;
                }
                Channel::Slack => {
                    let body = json!({"text": format!("*{subject}*\n{text}")});
                    ctx.http
                        .send(reqwest::Method::POST, recipient, |r| r.json(&body))
                        .await
                        .map_err(|e| vendor_error("slack webhook", &e))?;
                }
                Channel::Webhook => {
                    let body = json!({"event": "notify_me", "subject": subject, "message": text,
                        "contact_id": contact.id, "fields": fields, "execution_id": ctx.execution_id});
                    ctx.http
                        .send(reqwest::Method::POST, recipient, |r| {
                            r.header("Idempotency-Key", ctx.execution_id).json(&body)
                        })
                        .await
                        .map_err(|e| vendor_error("webhook", &e))?;
                }
                Channel::Sms => {
                    let t = c.twilio.as_ref().ok_or_else(|| StepError::Input("twilio settings missing".into()))?;
                    let from = Sender::Number(t.from_number.trim().to_owned());
                    let body = format!("{subject}\n{text}");
                    send_sms(ctx, t.account_sid.trim(), &t.auth_token, &from, recipient, &body, None)
                        .await?;
                }
            }
            Ok(json!({"delivered": true}))
        })
        .await?;
        let delivered = sent.is_some();
        let shown = self.shown_recipient();
        let verb = if delivered { "Sent" } else { "Would send" };
        Ok(
            Outcome::ok(format!("{verb} a {} alert to {shown}", c.channel.as_str()))
                .with("channel", c.channel.as_str())
                .with("subject", subject)
                .with("message", text)
                .with("recipient", shown)
                .with("delivered", delivered),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn ada() -> Contact {
        contact(
            &[
                ("first_name", "Ada"),
                ("last_name", "<L>"),
                ("email", "ada@x.io"),
                ("phone", "+1 415"),
            ],
            &[],
        )
    }

    fn base(channel: &str, recipient: &str) -> Value {
        json!({"channel": channel, "recipient": recipient, "message": "Hot lead {{first_name}}",
            "include_fields": ["email", "city"], "contact_link_template": "https://crm.example.com/c/{{contact.id}}"})
    }

    #[tokio::test]
    async fn email_goes_through_sendgrid() {
        let mock = MockVendor::start(&[("POST", "/v3/mail/send", 202, json!({}))]).await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let mut c = base("email", "owner@example.com");
        c["sendgrid"] = json!({"api_key": "SG.k", "from_email": "alerts@example.com"});
        let out = env.run(&NotifyMe, c, &ada()).await.unwrap();
        assert!(
            out.success && out.output["delivered"] == json!(true),
            "{out:?}"
        );
        let text = "Hot lead Ada\n\nemail: ada@x.io\ncity: \n\nhttps://crm.example.com/c/c-1";
        assert_eq!(out.output["message"], json!(text));
        assert_eq!(out.output["subject"], json!("Contact alert: Ada <L>"));
        let req = mock.single();
        assert_eq!(req.header("authorization"), Some("Bearer SG.k"));
        assert_eq!(
            req.json(),
            json!({
            "personalizations": [{"to": [{"email": "owner@example.com"}]}],
            "from": {"email": "alerts@example.com", "name": "MyFusionHelper"},
            "subject": "Contact alert: Ada <L>",
            "content": [{"type": "text/plain", "value": text}],
            "custom_args": {"mfh_message_id": "mfh-exec-test"}})
        );
    }

    #[tokio::test]
    async fn slack_webhook_gets_escaped_text_and_only_the_host_is_reported() {
        let mock = MockVendor::start(&[("POST", "/services/T1/B1/secret", 200, json!("ok"))]).await;
        let env = Env::new();
        let url = format!("{}/services/T1/B1/secret", mock.base);
        let out = env
            .run(&NotifyMe, base("slack", &url), &ada())
            .await
            .unwrap();
        assert_eq!(out.output["recipient"], json!("127.0.0.1"));
        assert!(!format!("{out:?}").contains("secret"));
        let req = mock.single();
        assert_eq!(
            req.json(),
            json!({"text":
            "*Contact alert: Ada &lt;L&gt;*\nHot lead Ada\n\nemail: ada@x.io\ncity: \n\nhttps://crm.example.com/c/c-1"})
        );
    }

    #[tokio::test]
    async fn webhook_posts_json_with_only_listed_fields() {
        let mock = MockVendor::start(&[("POST", "/alerts", 200, json!({}))]).await;
        let env = Env::new();
        let out = env
            .run(
                &NotifyMe,
                base("webhook", &format!("{}/alerts", mock.base)),
                &ada(),
            )
            .await
            .unwrap();
        assert!(out.success);
        let req = mock.single();
        assert_eq!(req.header("idempotency-key"), Some("exec-test"));
        let body = req.json();
        assert_eq!(body["fields"], json!({"email": "ada@x.io", "city": null}));
        assert_eq!(body["contact_id"], json!("c-1"));
        assert_eq!(body["event"], json!("notify_me"));
        assert!(body.get("phone").is_none() && !req.body.contains("+1 415"));
    }

    #[tokio::test]
    async fn sms_goes_through_twilio() {
        let path = format!("/2010-04-01/Accounts/{SID}/Messages.json");
        let mock = MockVendor::start(&[(
            "POST",
            &path,
            201,
            json!({"sid": "SM1", "status": "queued"}),
        )])
        .await;
        let env = Env::new().vendor("twilio", &mock.base);
        let mut c = base("sms", "+14155550199");
        c["include_fields"] = json!([]);
        c.as_object_mut().unwrap().remove("contact_link_template");
        c["twilio"] =
            json!({"account_sid": SID, "auth_token": "tok", "from_number": "+14155550100"});
        env.run(&NotifyMe, c, &ada()).await.unwrap();
        let form = mock.single().form();
        assert_eq!(form["To"], "+14155550199");
        assert_eq!(form["From"], "+14155550100");
        assert_eq!(form["Body"], "Contact alert: Ada <L>\nHot lead Ada");
    }

    #[tokio::test]
    async fn errors_dry_run_and_once_per_execution() {
        let mock = MockVendor::start(&[("POST", "/alerts", 500, json!({}))]).await;
        let mut env = Env::new();
        env.state.set_now(env.now);
        let c = base("webhook", &format!("{}/alerts", mock.base));
        let err = env.run(&NotifyMe, c.clone(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: true, message } if !message.contains("/alerts"))
        );
        mock.route("POST", "/alerts", 404, json!({}));
        assert!(matches!(
            env.run(&NotifyMe, c.clone(), &ada()).await.unwrap_err(),
            StepError::External {
                retryable: false,
                ..
            }
        ));
        mock.route("POST", "/alerts", 200, json!({}));
        let sent_before = mock.received().len();
        env.dry_run = true;
        let out = env.run(&NotifyMe, c.clone(), &ada()).await.unwrap();
        assert_eq!(out.output["delivered"], json!(false));
        assert!(out.message.starts_with("Would send"));
        assert_eq!(mock.received().len(), sent_before);
        env.dry_run = false;
        let first = env.run(&NotifyMe, c.clone(), &ada()).await.unwrap();
        assert_eq!(env.run(&NotifyMe, c, &ada()).await.unwrap(), first);
        assert_eq!(mock.received().len(), sent_before + 1);
    }

    #[tokio::test]
    async fn internal_webhook_targets_are_blocked() {
        let mut env = Env::new();
        env.http = crate::http::HttpClient::new(crate::http::HttpConfig::default()).unwrap();
        let err = env
            .run(&NotifyMe, base("webhook", "http://10.0.0.5/alerts"), &ada())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("private"))
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &NotifyMe,
            json!({"channel": "email", "recipient": "nobody", "message": " ",
            "include_fields": [""], "contact_link_template": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "message",
                "recipient",
                "include_fields",
                "contact_link_template",
                "sendgrid"
            ]
        );
        let errs = config_errors(
            &NotifyMe,
            json!({"channel": "sms", "recipient": "555", "message": "m",
            "twilio": {"account_sid": "x", "auth_token": "", "from_number": "1"}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "recipient",
                "twilio.account_sid",
                "twilio.auth_token",
                "twilio.from_number"
            ]
        );
        assert_eq!(
            config_errors(
                &NotifyMe,
                json!({"channel": "slack", "recipient": "ftp://x", "message": "m"})
            )[0]
            .field,
            "recipient"
        );
        assert!(
            !config_errors(
                &NotifyMe,
                json!({"channel": "pager", "recipient": "x", "message": "m"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &NotifyMe,
                json!({"channel": "email", "recipient": "a@b.co", "message": "m",
            "sendgrid": {"api_key": "k", "from_email": "f@b.co", "extra": 1}})
            )
            .is_empty()
        );
        assert!(
            config_errors(&NotifyMe, base("webhook", "https://hooks.example.com/x")).is_empty()
        );
    }
}
