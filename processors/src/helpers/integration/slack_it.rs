//! slack_it: posts a message about the contact to a Slack channel with the Web API's
//! `chat.postMessage` (`POST /chat.postMessage`, bot token as a bearer token, JSON body
//! `{channel, text, blocks?, username?, icon_emoji?}`). `message` and every string inside
//! `blocks` are `{{field}}` templates; merged values have `&`, `<` and `>` escaped as Slack
//! mrkdwn requires, so a contact's data cannot inject mentions or links. Slack answers
//! HTTP 200 with `{"ok": false, "error": …}` on failure: that is an error (retryable for
//! `ratelimited` and Slack-side faults, final otherwise, e.g. `channel_not_found` or a
//! revoked token). The post runs once per execution and a dry run posts nothing.

use crate::helpers::integration::mail_it::{
    escape_html, escaped_contact, parse_answer, vendor_error,
};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of slack_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bot token (`xoxb-…`; a secret, never logged).
    pub bot_token: String,
    /// Channel id (`C0123…`) or name (`#sales`).
    pub channel: String,
    /// Message template (also the notification text when `blocks` are given).
    pub message: String,
    /// Display name override (needs the `chat:write.customize` scope).
    pub username: Option<String>,
    /// Emoji icon override, e.g. `:tada:`.
    pub icon_emoji: Option<String>,
    /// Block Kit blocks; every string inside is a template.
    pub blocks: Option<Value>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            !self.bot_token.trim().starts_with("xox"),
            "bot_token",
            "must be a Slack token (xoxb-…)",
        );
        check(
            &mut errors,
            self.channel.trim().is_empty() || self.channel.contains(char::is_whitespace),
            "channel",
            "must be a channel id or #name",
        );
        check(
            &mut errors,
            self.message.trim().is_empty(),
            "message",
            "is required",
        );
        check(
            &mut errors,
            self.username
                .as_deref()
                .is_some_and(|u| u.trim().is_empty()),
            "username",
            "must not be empty when given",
        );
        check(
            &mut errors,
            self.icon_emoji
                .as_deref()
                .is_some_and(|e| !(e.len() > 2 && e.starts_with(':') && e.ends_with(':'))),
            "icon_emoji",
            "must look like :emoji:",
        );
        check(
            &mut errors,
            self.blocks
                .as_ref()
                .is_some_and(|b| b.as_array().is_none_or(|a| a.is_empty() || a.len() > 50)),
            "blocks",
            "must be an array of 1 to 50 blocks",
        );
        finish(errors)
    }
}

/// Slack's answer to a Web API call.
#[derive(Debug, Deserialize)]
pub(crate) struct SlackAnswer {
    /// Whether the call worked.
    pub(crate) ok: bool,
    /// The error code when it did not.
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// The channel posted to.
    #[serde(default)]
    pub(crate) channel: Option<String>,
    /// The message timestamp (its id).
    #[serde(default)]
    pub(crate) ts: Option<String>,
}

/// Slack error codes worth retrying.
const RETRYABLE: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Renders every string in `v` against `contact`.
fn render_value(v: &Value, contact: &Contact) -> Value {
    match v {
        Value::String(s) => Value::String(template::render(s, contact)),
        Value::Array(a) => a.iter().map(|x| render_value(x, contact)).collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| (k.clone(), render_value(x, contact)))
            .collect(),
        other => other.clone(),
    }
}

/// The slack_it helper.
pub struct SlackIt;

impl Helper for SlackIt {
    const NAME: &'static str = "slack_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Posts a templated message about the contact to a Slack channel.";
    const EXAMPLE_CONFIG: &'static str = r##"{"bot_token": "xoxb-example", "channel": "#sales", "message": "New lead: {{first_name}} {{last_name}} ({{email}})"}"##;
    const OUTPUTS: &'static [&'static str] = &["payload", "http_status", "channel", "ts"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(SlackItStep(config)))
    }
}

struct SlackItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for SlackItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let safe = escaped_contact(contact, |v| escape_html(v, false));
        let text = template::render(&c.message, &safe).trim().to_owned();
        if text.is_empty() {
            return Ok(Outcome::failed("The message is empty after merging fields"));
        }
        let mut payload = json!({"channel": c.channel.trim(), "text": text});
        if let Some(b) = &c.blocks {
            payload["blocks"] = render_value(b, &safe);
        }
        if let Some(u) = &c.username {
            payload["username"] = json!(u.trim());
        }
        if let Some(e) = &c.icon_emoji {
            payload["icon_emoji"] = json!(e);
        }
        let posted = crate::helpers::once(ctx, "slack_it post", || async {
            let resp = ctx
                .http
                .send(
                    reqwest::Method::POST,
                    &ctx.vendors.url("slack", "/chat.postMessage"),
                    |r| r.bearer_auth(c.bot_token.trim()).json(&payload),
                )
                .await
                .map_err(|e| vendor_error("slack", &e))?;
            let answer: SlackAnswer = parse_answer("slack", &resp.body)?;
            if !answer.ok {
                let code = answer.error.unwrap_or_else(|| "unknown_error".into());
                return Err(StepError::External {
                    retryable: RETRYABLE.contains(&code.as_str()),
                    message: format!("slack refused the message: {code}"),
                });
            }
            Ok(json!({"http_status": resp.status, "channel": answer.channel, "ts": answer.ts}))
        })
        .await?;
        let Some(r) = posted else {
            return Ok(
                Outcome::ok(format!("Would post to Slack {}", c.channel.trim()))
                    .with("payload", payload)
                    .with("http_status", Value::Null),
            );
        };
        Ok(Outcome::ok(format!("Posted to Slack {}", c.channel.trim()))
            .with("payload", payload)
            .with("http_status", r["http_status"].clone())
            .with("channel", r["channel"].clone())
            .with("ts", r["ts"].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    fn cfg() -> Value {
        json!({"bot_token": "xoxb-1-2", "channel": "C024BE91L",
            "message": "New lead {{first_name}} <{{email}}>"})
    }

    async fn slack(body: Value) -> (MockVendor, Env) {
        let mock = MockVendor::start(&[("POST", "/chat.postMessage", 200, body)]).await;
        let env = Env::new().vendor("slack", &mock.base);
        (mock, env)
    }

    fn ok() -> Value {
        json!({"ok": true, "channel": "C024BE91L", "ts": "1503435956.000247",
            "message": {"text": "New lead"}})
    }

    fn ada() -> Contact {
        contact(
            &[("first_name", "Ada <@U123> & co"), ("email", "ada@x.io")],
            &[],
        )
    }

    #[tokio::test]
    async fn posts_with_bearer_token_and_escaped_values() {
        let (mock, env) = slack(ok()).await;
        let out = env.run(&SlackIt, cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["ts"], json!("1503435956.000247"));
        assert_eq!(out.output["http_status"], json!(200));
        let req = mock.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/chat.postMessage")
        );
        assert_eq!(req.header("authorization"), Some("Bearer xoxb-1-2"));
        assert!(
            req.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let expected = json!({"channel": "C024BE91L",
            "text": "New lead Ada &lt;@U123&gt; &amp; co <ada@x.io>"});
        assert_eq!(req.json(), expected);
        assert_eq!(out.output["payload"], expected);
    }

    #[tokio::test]
    async fn renders_blocks_and_overrides() {
        let (mock, env) = slack(ok()).await;
        let mut c = cfg();
        c["blocks"] =
            json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*{{first_name}}*"}}]);
        c["username"] = json!("MFH");
        c["icon_emoji"] = json!(":tada:");
        env.run(&SlackIt, c, &ada()).await.unwrap();
        let body = mock.single().json();
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            "*Ada &lt;@U123&gt; &amp; co*"
        );
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(
            (body["username"].as_str(), body["icon_emoji"].as_str()),
            (Some("MFH"), Some(":tada:"))
        );
    }

    #[tokio::test]
    async fn ok_false_is_an_error() {
        let (mock, env) = slack(json!({"ok": false, "error": "channel_not_found"})).await;
        let err = env.run(&SlackIt, cfg(), &ada()).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("channel_not_found")),
            "{err:?}"
        );
        mock.route(
            "POST",
            "/chat.postMessage",
            200,
            json!({"ok": false, "error": "ratelimited"}),
        );
        let err = env.run(&SlackIt, cfg(), &ada()).await.unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: true,
                ..
            }
        ));
        // A failed post releases its claim: the retry posts.
        mock.route("POST", "/chat.postMessage", 200, ok());
        assert!(env.run(&SlackIt, cfg(), &ada()).await.unwrap().success);
        assert_eq!(mock.received().len(), 3);
    }

    #[tokio::test]
    async fn http_errors_map_to_retryable_or_final() {
        let (mock, env) = slack(ok()).await;
        mock.route("POST", "/chat.postMessage", 404, json!({}));
        let err = env.run(&SlackIt, cfg(), &ada()).await.unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: false,
                ..
            }
        ));
        mock.route("POST", "/chat.postMessage", 429, json!({}));
        let err = env.run(&SlackIt, cfg(), &ada()).await.unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn dry_run_and_rerun_post_once() {
        let (mock, mut env) = slack(ok()).await;
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env.run(&SlackIt, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would post"));
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let first = env.run(&SlackIt, cfg(), &ada()).await.unwrap();
        assert_eq!(env.run(&SlackIt, cfg(), &ada()).await.unwrap(), first);
        assert_eq!(mock.received().len(), 1);
        let mut c = cfg();
        c["message"] = json!("{{missing}}");
        assert!(!env.run(&SlackIt, c, &ada()).await.unwrap().success);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &SlackIt,
            json!({"bot_token": "abc", "channel": "my channel", "message": "",
                "username": " ", "icon_emoji": "tada", "blocks": {"type": "section"}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "bot_token",
                "channel",
                "message",
                "username",
                "icon_emoji",
                "blocks"
            ]
        );
        assert!(
            !config_errors(&SlackIt, json!({"bot_token": "xoxb-1", "channel": "C1"})).is_empty()
        );
        assert!(config_errors(&SlackIt, cfg()).is_empty());
    }
}
