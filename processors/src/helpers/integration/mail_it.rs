//! mail_it: sends an email from the platform (not the CRM's own email engine) through
//! SendGrid's v3 API: `POST /v3/mail/send` with the API key as a bearer token and the
//! documented JSON body (personalizations, from, reply_to, subject, content, attachments).
//! The recipient is the contact's email field or a fixed `to_override`; subject and body
//! are `{{field}}` templates (merged values are HTML-escaped in an HTML body, and CR/LF
//! are stripped from the subject against header injection). A contact whose email is not
//! marketable is skipped unless the mail is `transactional`. The send runs once per
//! execution (a redelivery returns the first result) and a dry run sends nothing.
//!
//! SendGrid answers 202 with an empty body and puts its id in the `X-Message-Id` header,
//! which the shared HTTP client does not expose; `message_id` is therefore the helper's
//! own reference, sent as `custom_args.mfh_message_id` so SendGrid's event webhook can be
//! matched back to the execution.
//!
//! The module also holds the small vendor utilities the other messaging helpers share.

use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, error_chain, finish, template,
};
use crate::http::HttpError;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

/// A vendor failure as a step error, without the request URL (which may carry secrets).
pub(crate) fn vendor_error(vendor: &str, e: &HttpError) -> StepError {
    let message = match e {
        HttpError::Status { status, body, .. } => {
            let body: String = body.chars().take(300).collect();
            format!("{vendor} answered HTTP {status}: {body}")
        }
        HttpError::Transport { source, .. } if source.is_timeout() => {
            format!("{vendor} did not answer in time")
        }
        HttpError::Transport { .. } => format!("{vendor} could not be reached"),
        HttpError::Blocked { .. } => {
            format!("{vendor} URL resolves to a private or internal address")
        }
        HttpError::InvalidUrl { reason, .. } => format!("invalid {vendor} URL: {reason}"),
    };
    StepError::External {
        message,
        retryable: e.retryable(),
    }
}

/// Parses a vendor's JSON answer.
pub(crate) fn parse_answer<T: serde::de::DeserializeOwned>(
    vendor: &str,
    body: &[u8],
) -> Result<T, StepError> {
    serde_json::from_slice(body).map_err(|e| StepError::External {
        message: format!("unexpected {vendor} answer: {}", error_chain(&e)),
        retryable: false,
    })
}

/// A form-encoded request: the body plus its content type (the shared client's reqwest
/// is built without the `form` feature).
pub(crate) fn with_form<K: AsRef<str>, V: AsRef<str>>(
    req: reqwest::RequestBuilder,
    pairs: &[(K, V)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .finish();
    req.header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    )
    .body(body)
}

/// A plausible email address: one `@`, a dotted domain, no whitespace.
pub(crate) fn is_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// `&`, `<`, `>` (and quotes when `quotes`) escaped as HTML entities.
pub(crate) fn escape_html(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The contact with every field value passed through `escape`, for rendering templates
/// whose output is markup.
pub(crate) fn escaped_contact(contact: &Contact, escape: impl Fn(&str) -> String) -> Contact {
    let mut c = contact.clone();
    for v in c.fields.values_mut() {
        *v = escape(v);
    }
    c
}

/// One line: CR and LF become spaces (no header injection through a subject).
pub(crate) fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ").trim().to_owned()
}

/// An email for SendGrid.
#[derive(Debug, Clone)]
pub(crate) struct Email {
    pub(crate) from_email: String,
    pub(crate) from_name: String,
    pub(crate) to: String,
    pub(crate) cc: Vec<String>,
    pub(crate) bcc: Vec<String>,
    pub(crate) reply_to: Option<String>,
    pub(crate) subject: String,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    /// (file name, MIME type, bytes).
    pub(crate) attachments: Vec<(String, String, Vec<u8>)>,
    /// Our reference, sent as `custom_args.mfh_message_id`.
    pub(crate) reference: String,
}

impl Email {
    /// The v3 `mail/send` body. SendGrid rejects an address repeated across to/cc/bcc,
    /// so repeats are dropped.
    pub(crate) fn body(&self) -> Value {
        let mut seen = vec![self.to.to_lowercase()];
        let mut keep = |list: &[String]| -> Vec<Value> {
            list.iter()
                .filter(|a| {
                    let l = a.to_lowercase();
                    !seen.contains(&l) && {
                        seen.push(l);
                        true
                    }
                })
                .map(|a| json!({"email": a}))
                .collect()
        };
        let (cc, bcc) = (keep(&self.cc), keep(&self.bcc));
        let mut p = json!({"to": [{"email": self.to}]});
        if !cc.is_empty() {
            p["cc"] = json!(cc);
        }
        if !bcc.is_empty() {
            p["bcc"] = json!(bcc);
        }
        let mut body = json!({
            "personalizations": [p],
            "from": {"email": self.from_email, "name": self.from_name},
            "subject": self.subject,
            "content": [{"type": self.content_type, "value": self.body}],
            "custom_args": {"mfh_message_id": self.reference},
        });
        if let Some(r) = &self.reply_to {
            body["reply_to"] = json!({"email": r});
        }
        if !self.attachments.is_empty() {
            body["attachments"] = self
                .attachments
                .iter()
                .map(|(name, mime, bytes)| {
                    json!({"content": base64::engine::general_purpose::STANDARD.encode(bytes),
                        "filename": name, "type": mime, "disposition": "attachment"})
                })
                .collect();
        }
        body
    }

    /// Sends the email.
    pub(crate) async fn send(&self, ctx: &Ctx<'_>, api_key: &str) -> Result<(), StepError> {
        let body = self.body();
        ctx.http
            .send(
                reqwest::Method::POST,
                &ctx.vendors.url("sendgrid", "/v3/mail/send"),
                |r| r.bearer_auth(api_key).json(&body),
            )
            .await
            .map_err(|e| vendor_error("sendgrid", &e))?;
        Ok(())
    }
}

/// Attachments above this size are refused (SendGrid's total limit is 30 MB).
const MAX_ATTACHMENT: usize = 10 * 1024 * 1024;

/// Body format.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub enum ContentType {
    /// HTML (default).
    #[default]
    #[serde(rename = "text/html")]
    Html,
    /// Plain text.
    #[serde(rename = "text/plain")]
    Plain,
}

/// Config of mail_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SendGrid API key (a secret; never logged).
    pub api_key: String,
    /// Verified sender address.
    pub from_email: String,
    /// Sender name.
    pub from_name: String,
    /// Field holding the recipient; default `email`.
    #[serde(default = "default_to_field")]
    pub to_field: String,
    /// A fixed recipient instead of the contact's address.
    pub to_override: Option<String>,
    /// Copy recipients.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Blind-copy recipients.
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Reply-to address.
    pub reply_to: Option<String>,
    /// Subject template.
    pub subject_template: String,
    /// Body template.
    pub body_template: String,
    /// `text/html` (default) or `text/plain`.
    #[serde(default)]
    pub content_type: ContentType,
    /// A URL (template) whose file is attached; fetched through the guarded client.
    pub attachment_from_url: Option<String>,
    /// Send even when the contact's email is not marketable; default false.
    #[serde(default)]
    pub transactional: bool,
    /// Add an "Email sent" note to the contact; default false.
    #[serde(default)]
    pub add_note: bool,
}

fn default_to_field() -> String {
    "email".into()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let blank = |s: &str| s.trim().is_empty();
        check(&mut errors, blank(&self.api_key), "api_key", "is required");
        check(
            &mut errors,
            !is_email(&self.from_email),
            "from_email",
            "must be an email address",
        );
        check(
            &mut errors,
            blank(&self.from_name),
            "from_name",
            "is required",
        );
        check(
            &mut errors,
            blank(&self.to_field),
            "to_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.to_override.as_deref().is_some_and(|a| !is_email(a)),
            "to_override",
            "must be an email address",
        );
        check(
            &mut errors,
            self.cc.iter().any(|a| !is_email(a)),
            "cc",
            "must hold email addresses",
        );
        check(
            &mut errors,
            self.bcc.iter().any(|a| !is_email(a)),
            "bcc",
            "must hold email addresses",
        );
        check(
            &mut errors,
            self.reply_to.as_deref().is_some_and(|a| !is_email(a)),
            "reply_to",
            "must be an email address",
        );
        check(
            &mut errors,
            blank(&self.subject_template),
            "subject_template",
            "is required",
        );
        check(
            &mut errors,
            blank(&self.body_template),
            "body_template",
            "is required",
        );
        check(
            &mut errors,
            self.attachment_from_url.as_deref().is_some_and(blank),
            "attachment_from_url",
            "must not be empty when given",
        );
        finish(errors)
    }
}

/// The mail_it helper.
pub struct MailIt;

impl Helper for MailIt {
    const NAME: &'static str = "mail_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Sends a templated email to the contact from the platform through SendGrid.";
    const EXAMPLE_CONFIG: &'static str = r#"{"api_key": "SG.example", "from_email": "team@example.com", "from_name": "Team", "subject_template": "Welcome, {{first_name}}", "body_template": "<p>Hi {{first_name}}, thanks for joining.</p>"}"#;
    const OUTPUTS: &'static [&'static str] = &["message_id", "to", "subject"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(MailItStep(config)))
    }
}

struct MailItStep(Config);

/// The file name at the end of a URL's path, or `attachment`.
fn file_name(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "attachment".into())
}

/// The MIME type for a file name's extension.
pub(crate) fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

#[async_trait::async_trait]
impl AsyncStep for MailItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let to = match c.to_override.as_deref() {
            Some(a) => a.trim().to_owned(),
            None => match contact.field(&c.to_field) {
                Some(a) if is_email(a) => a.trim().to_owned(),
                Some(_) => {
                    return Ok(Outcome::failed(format!(
                        "Field {} does not hold a valid email address",
                        c.to_field
                    )));
                }
                None => {
                    return Ok(Outcome::failed(format!(
                        "The contact has no email address in {}",
                        c.to_field
                    )));
                }
            },
        };
        if !c.transactional && c.to_override.is_none() && contact.marketable == Some(false) {
            return Ok(Outcome::failed(
                "The contact has opted out of email; not sent (mark the mail transactional to send anyway)",
            )
            .with("to", to));
        }
        let subject = one_line(&template::render(&c.subject_template, contact));
        let body = match c.content_type {
            ContentType::Html => {
                let safe = escaped_contact(contact, |v| escape_html(v, true));
                template::render(&c.body_template, &safe)
            }
            ContentType::Plain => template::render(&c.body_template, contact),
        };
        let attachment_url = c
            .attachment_from_url
            .as_deref()
            .map(|u| template::render(u, contact).trim().to_owned());
        let mut email = Email {
            from_email: c.from_email.trim().to_owned(),
            from_name: one_line(&c.from_name),
            to: to.clone(),
            cc: c.cc.iter().map(|a| a.trim().to_owned()).collect(),
            bcc: c.bcc.iter().map(|a| a.trim().to_owned()).collect(),
            reply_to: c.reply_to.as_deref().map(|a| a.trim().to_owned()),
            subject: subject.clone(),
            content_type: match c.content_type {
                ContentType::Html => "text/html",
                ContentType::Plain => "text/plain",
            },
            body,
            attachments: Vec::new(),
            reference: format!("mfh-{}", ctx.execution_id),
        };
        let reference = email.reference.clone();
        let sent = crate::helpers::once(ctx, "mail_it send", || async move {
            if let Some(url) = attachment_url.filter(|u| !u.is_empty()) {
                let file = ctx
                    .http
                    .send(reqwest::Method::GET, &url, |r| r)
                    .await
                    .map_err(|e| vendor_error("attachment host", &e))?;
                if file.body.len() > MAX_ATTACHMENT {
                    return Err(StepError::External {
                        message: format!(
                            "attachment is {} bytes, over the {MAX_ATTACHMENT}-byte limit",
                            file.body.len()
                        ),
                        retryable: false,
                    });
                }
                let name = file_name(&url);
                let mime = mime_for(&name).to_owned();
                email.attachments.push((name, mime, file.body));
            }
            email.send(ctx, &c.api_key).await?;
            Ok(json!({"message_id": email.reference}))
        })
        .await?;
        let Some(result) = sent else {
            return Ok(
                Outcome::ok(format!("Would send email \"{subject}\" to {to}"))
                    .with("message_id", Value::Null)
                    .with("to", to)
                    .with("subject", subject),
            );
        };
        let mut out = Outcome::ok(format!("Sent email \"{subject}\" to {to}"))
            .with(
                "message_id",
                result
                    .get("message_id")
                    .cloned()
                    .unwrap_or(json!(reference)),
            )
            .with("to", to.clone())
            .with("subject", subject.clone());
        if c.add_note {
            out = out.change(Change::AddNote {
                title: "Email sent".into(),
                body: format!("\"{subject}\" was sent to {to} by mail_it."),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    fn cfg() -> Value {
        json!({"api_key": "SG.key", "from_email": "team@example.com", "from_name": "Team",
            "subject_template": "Hi {{first_name}}\r\nBcc: evil@x.com",
            "body_template": "<p>Hello {{first_name}}</p>", "cc": ["boss@example.com", "ada@example.com"],
            "reply_to": "help@example.com"})
    }

    async fn sendgrid(status: u16) -> MockVendor {
        MockVendor::start(&[("POST", "/v3/mail/send", status, json!({}))]).await
    }

    fn ada() -> Contact {
        contact(
            &[("email", "ada@example.com"), ("first_name", "Ada <b>")],
            &[],
        )
    }

    #[tokio::test]
    async fn sends_the_documented_request() {
        let mock = sendgrid(202).await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let out = env.run(&MailIt, cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["to"], json!("ada@example.com"));
        assert_eq!(out.output["subject"], json!("Hi Ada <b>  Bcc: evil@x.com"));
        assert_eq!(out.output["message_id"], json!("mfh-exec-test"));
        assert!(out.changes.is_empty());
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/v3/mail/send")
        );
        assert_eq!(req.header("authorization"), Some("Bearer SG.key"));
        assert_eq!(
            req.json(),
            json!({
                "personalizations": [{"to": [{"email": "ada@example.com"}],
                    "cc": [{"email": "boss@example.com"}]}],
                "from": {"email": "team@example.com", "name": "Team"},
                "reply_to": {"email": "help@example.com"},
                "subject": "Hi Ada <b>  Bcc: evil@x.com",
                "content": [{"type": "text/html", "value": "<p>Hello Ada &lt;b&gt;</p>"}],
                "custom_args": {"mfh_message_id": "mfh-exec-test"}
            })
        );
    }

    #[tokio::test]
    async fn plain_text_to_override_and_note() {
        let mock = sendgrid(202).await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let mut c = cfg();
        c["content_type"] = json!("text/plain");
        c["to_override"] = json!("owner@example.com");
        c["add_note"] = json!(true);
        let mut who = contact(&[("first_name", "Ada <b>")], &[]);
        who.marketable = Some(false);
        let out = env.run(&MailIt, c, &who).await.unwrap();
        assert!(out.success);
        let body = mock.single().json();
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "owner@example.com"
        );
        assert_eq!(body["content"][0]["value"], "<p>Hello Ada <b></p>");
        assert!(matches!(&out.changes[0], Change::AddNote { title, .. } if title == "Email sent"));
    }

    #[tokio::test]
    async fn missing_or_bad_address_and_opt_out_fail_without_sending() {
        let mock = sendgrid(202).await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let out = env
            .run(&MailIt, cfg(), &contact(&[("email", " ")], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("no email"));
        let out = env
            .run(
                &MailIt,
                cfg(),
                &contact(&[("email", "not-an-address")], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("valid"));
        let mut opted_out = ada();
        opted_out.marketable = Some(false);
        let out = env.run(&MailIt, cfg(), &opted_out).await.unwrap();
        assert!(!out.success && out.message.contains("opted out"));
        assert!(mock.received().is_empty());
        let mut c = cfg();
        c["transactional"] = json!(true);
        assert!(env.run(&MailIt, c, &opted_out).await.unwrap().success);
        assert_eq!(mock.received().len(), 1);
    }

    #[tokio::test]
    async fn attaches_a_fetched_file() {
        let mock = MockVendor::start(&[
            ("POST", "/v3/mail/send", 202, json!({})),
            ("GET", "/files/guide.pdf", 200, json!("PDF")),
        ])
        .await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let mut c = cfg();
        c["attachment_from_url"] = json!(format!("{}/files/{{{{doc}}}}", mock.base));
        let who = contact(&[("email", "ada@example.com"), ("doc", "guide.pdf")], &[]);
        assert!(env.run(&MailIt, c, &who).await.unwrap().success);
        let all = mock.received();
        assert_eq!(all.len(), 2);
        let att = &all[1].json()["attachments"][0];
        assert_eq!(att["filename"], "guide.pdf");
        assert_eq!(att["type"], "application/pdf");
        assert_eq!(
            att["content"],
            json!(base64::engine::general_purpose::STANDARD.encode(b"\"PDF\""))
        );
    }

    #[tokio::test]
    async fn vendor_errors_map_to_retryable_or_final() {
        let mock = sendgrid(400).await;
        let env = Env::new().vendor("sendgrid", &mock.base);
        let err = env.run(&MailIt, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("400") && !message.contains("127.0.0.1")),
            "{err:?}"
        );
        mock.route("POST", "/v3/mail/send", 503, json!({}));
        let err = env.run(&MailIt, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        mock.route("POST", "/v3/mail/send", 429, json!({}));
        let err = env.run(&MailIt, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn dry_run_sends_nothing_and_reruns_send_once() {
        let mock = sendgrid(202).await;
        let mut env = Env::new().vendor("sendgrid", &mock.base);
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&MailIt, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would send"));
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let first = env.run(&MailIt, cfg(), &ada()).await.unwrap();
        let again = env.run(&MailIt, cfg(), &ada()).await.unwrap();
        assert_eq!(first.output, again.output);
        assert_eq!(mock.received().len(), 1);
        env.execution_id = "exec-2".into();
        env.run(&MailIt, cfg(), &ada()).await.unwrap();
        assert_eq!(mock.received().len(), 2);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &MailIt,
            json!({"api_key": " ", "from_email": "nope", "from_name": "", "to_field": "",
                "to_override": "x", "cc": ["a@b.co", "bad"], "bcc": ["b c@d.co"], "reply_to": "r",
                "subject_template": "", "body_template": " ", "attachment_from_url": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "api_key",
                "from_email",
                "from_name",
                "to_field",
                "to_override",
                "cc",
                "bcc",
                "reply_to",
                "subject_template",
                "body_template",
                "attachment_from_url"
            ]
        );
        assert!(!config_errors(&MailIt, json!({"api_key": "k"})).is_empty());
        let mut c = cfg();
        c["content_type"] = json!("text/markdown");
        assert!(!config_errors(&MailIt, c).is_empty());
        assert!(config_errors(&MailIt, cfg()).is_empty());
    }

    #[test]
    fn helpers_validate_and_escape() {
        assert!(
            is_email("a.b@c.io") && !is_email("a@b") && !is_email("a@@b.c") && !is_email("@b.c")
        );
        assert_eq!(escape_html("a&<b>\"'", true), "a&amp;&lt;b&gt;&quot;&#39;");
        assert_eq!(escape_html("\"x\"", false), "\"x\"");
        assert_eq!(file_name("https://h.io/a/b/report.pdf?x=1"), "report.pdf");
        assert_eq!(file_name("https://h.io/"), "attachment");
        assert_eq!(mime_for("x.JPG"), "image/jpeg");
    }
}
