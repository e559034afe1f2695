//! twilio_sms: sends an SMS to the contact through Twilio's Messages API:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth
//! (`AccountSid:AuthToken`) and a form-encoded body of `To`, `From` (or
//! `MessagingServiceSid`), `Body` and an optional `StatusCallback`. The number comes from a
//! contact field and is normalised to E.164 (a national number needs `default_country`).
//! A missing or invalid number, an empty message or a contact holding the opt-out tag
//! fails the step without sending and applies `failed_tag`; a sent message applies
//! `sent_tag`. The send runs once per execution and a dry run sends nothing.

use crate::connectors::Capability;
use crate::helpers::integration::mail_it::{parse_answer, vendor_error, with_form};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, template,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// ISO 3166 alpha-2 country → (calling code, national trunk prefix).
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("US", "1", "1"),
    ("CA", "1", "1"),
    ("GB", "44", "0"),
    ("IE", "353", "0"),
    ("AU", "61", "0"),
    ("NZ", "64", "0"),
    ("DE", "49", "0"),
    ("FR", "33", "0"),
    ("ES", "34", ""),
    ("IT", "39", ""),
    ("NL", "31", "0"),
    ("BE", "32", "0"),
    ("CH", "41", "0"),
    ("AT", "43", "0"),
    ("SE", "46", "0"),
    ("NO", "47", ""),
    ("DK", "45", ""),
    ("FI", "358", "0"),
    ("PT", "351", ""),
    ("PL", "48", ""),
    ("MX", "52", ""),
    ("BR", "55", "0"),
    ("AR", "54", "0"),
    ("IN", "91", "0"),
    ("SG", "65", ""),
    ("HK", "852", ""),
    ("JP", "81", "0"),
    ("PH", "63", "0"),
    ("ZA", "27", "0"),
    ("NG", "234", "0"),
    ("AE", "971", "0"),
    ("IL", "972", "0"),
];

/// Whether `country` is a supported ISO alpha-2 code.
pub(crate) fn known_country(country: &str) -> bool {
    COUNTRIES
        .iter()
        .any(|(c, _, _)| c.eq_ignore_ascii_case(country.trim()))
}

/// Whether `s` is an E.164 number: `+` and 8 to 15 digits, no leading zero.
pub(crate) fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// `raw` in E.164, or `None`. International forms (`+…`, `00…`) need no country; a
/// national number takes `default_country`'s calling code after dropping its trunk
/// prefix (`07700 900123` in GB → `+447700900123`; `(415) 555-0100` in US →
/// `+14155550100`).
pub(crate) fn to_e164(raw: &str, default_country: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    let raw = raw
        .split_once(|c: char| c.is_ascii_alphabetic())
        .map_or(raw, |(number, _)| number); // drop "ext. 12"
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let candidate = if raw.starts_with('+') {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else {
        let (code, trunk) = COUNTRIES
            .iter()
            .find(|(c, _, _)| default_country.is_some_and(|d| c.eq_ignore_ascii_case(d.trim())))
            .map(|(_, code, trunk)| (*code, *trunk))?;
        if code == "1" {
            match digits.len() {
                10 => format!("+1{digits}"),
                11 if digits.starts_with('1') => format!("+{digits}"),
                _ => return None,
            }
        } else {
            let national = if trunk.is_empty() {
                digits.as_str()
            } else {
                digits.strip_prefix(trunk).unwrap_or(&digits)
            };
            format!("+{code}{national}")
        }
    };
    is_e164(&candidate).then_some(candidate)
}

/// GSM-7 characters that take one septet.
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM-7 extension characters that take two septets.
const GSM7_EXT: &str = "^{}\\[~]|€\x0c";

/// How many SMS segments `body` takes: GSM-7 160/153 septets, otherwise UCS-2 70/67.
pub(crate) fn segments(body: &str) -> usize {
    let septets: Option<usize> = body
        .chars()
        .map(|c| {
            if GSM7.contains(c) {
                Some(1)
            } else if GSM7_EXT.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (len, single, multi) = match septets {
        Some(n) => (n, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    if len <= single {
        1
    } else {
        len.div_ceil(multi)
    }
}

/// Where a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sender {
    /// A Twilio number.
    Number(String),
    /// A messaging service.
    Service(String),
}

/// What Twilio reports for a created message.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub(crate) struct Sent {
    /// Message SID.
    pub(crate) sid: String,
    /// `queued`, `accepted`, `sent`, ...
    #[serde(default)]
    pub(crate) status: String,
    /// Segments, as a string in Twilio's answer.
    #[serde(default)]
    pub(crate) num_segments: Option<String>,
}

/// Sends one SMS.
pub(crate) async fn send_sms(
    ctx: &Ctx<'_>,
    account_sid: &str,
    auth_token: &str,
    from: &Sender,
    to: &str,
    body: &str,
    status_callback: Option<&str>,
) -> Result<Sent, StepError> {
    let mut form: Vec<(&str, &str)> = vec![("To", to)];
    match from {
        Sender::Number(n) => form.push(("From", n)),
        Sender::Service(s) => form.push(("MessagingServiceSid", s)),
    }
    form.push(("Body", body));
    if let Some(cb) = status_callback {
        form.push(("StatusCallback", cb));
    }
    let path = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    let resp = ctx
        .http
        .send(
            reqwest::Method::POST,
            &ctx.vendors.url("twilio", &path),
            |r| with_form(r.basic_auth(account_sid, Some(auth_token)), &form),
        )
        .await
        .map_err(|e| vendor_error("twilio", &e))?;
    parse_answer("twilio", &resp.body)
}

/// Whether `s` looks like a Twilio SID with `prefix` (`AC`, `MG`): 34 characters.
pub(crate) fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Config of twilio_sms.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Twilio account SID (`AC…`).
    pub account_sid: String,
    /// Twilio auth token (a secret; never logged).
    pub auth_token: String,
    /// Sending number in E.164; required unless `messaging_service_sid` is set.
    pub from_number: Option<String>,
    /// Messaging service (`MG…`) to send from instead of a number.
    pub messaging_service_sid: Option<String>,
    /// Message template.
    pub message_template: String,
    /// Field holding the recipient's phone; default `phone`.
    #[serde(default = "default_to_field")]
    pub to_field: String,
    /// ISO country code for national numbers, e.g. `US`.
    pub default_country: Option<String>,
    /// Tag id applied after a send.
    pub sent_tag: Option<String>,
    /// Tag id applied when the message cannot be sent (no or bad number).
    pub failed_tag: Option<String>,
    /// Contacts holding this tag id (an SMS opt-out) are not messaged.
    pub opt_out_tag: Option<String>,
    /// URL Twilio posts delivery status to.
    pub status_callback: Option<String>,
}

fn default_to_field() -> String {
    "phone".into()
}

/// Twilio's limit on a message body.
const MAX_BODY: usize = 1600;

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            !is_sid(self.account_sid.trim(), "AC"),
            "account_sid",
            "must be a Twilio account SID (AC followed by 32 hex digits)",
        );
        check(
            &mut errors,
            self.auth_token.trim().is_empty(),
            "auth_token",
            "is required",
        );
        match (&self.from_number, &self.messaging_service_sid) {
            (None, None) => errors.push(FieldError::new(
                "from_number",
                "set from_number or messaging_service_sid",
            )),
            (Some(_), Some(_)) => errors.push(FieldError::new(
                "messaging_service_sid",
                "set only one of from_number and messaging_service_sid",
            )),
            (Some(n), None) => check(
                &mut errors,
                !is_e164(n.trim()),
                "from_number",
                "must be in E.164 form, e.g. +14155550100",
            ),
            (None, Some(s)) => check(
                &mut errors,
                !is_sid(s.trim(), "MG"),
                "messaging_service_sid",
                "must be a messaging service SID (MG…)",
            ),
        }
        check(
            &mut errors,
            self.message_template.trim().is_empty(),
            "message_template",
            "is required",
        );
        check(
            &mut errors,
            self.to_field.trim().is_empty(),
            "to_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.default_country
                .as_deref()
                .is_some_and(|c| !known_country(c)),
            "default_country",
            "is not a supported ISO country code",
        );
        for (field, tag) in [
            ("sent_tag", &self.sent_tag),
            ("failed_tag", &self.failed_tag),
            ("opt_out_tag", &self.opt_out_tag),
        ] {
            check(
                &mut errors,
                tag.as_deref().is_some_and(|t| t.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut errors,
            self.status_callback
                .as_deref()
                .is_some_and(|u| !url::Url::parse(u).is_ok_and(|u| u.scheme() == "https")),
            "status_callback",
            "must be an https URL",
        );
        finish(errors)
    }
}

/// The twilio_sms helper.
pub struct TwilioSms;

impl Helper for TwilioSms {
    const NAME: &'static str = "twilio_sms";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Sends a templated SMS to the contact's phone through Twilio.";
    const EXAMPLE_CONFIG: &'static str = r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "token", "from_number": "+14155550100", "message_template": "Hi {{first_name}}, your order shipped.", "default_country": "US"}"#;
    const OUTPUTS: &'static [&'static str] = &["message_sid", "to_number", "status", "segments"];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(TwilioSmsStep(config)))
    }
}

struct TwilioSmsStep(Config);

impl TwilioSmsStep {
    fn fail(&self, contact: &Contact, message: String) -> Outcome {
        Outcome::failed(message).branch(contact, self.0.failed_tag.as_deref(), None)
    }
}

#[async_trait::async_trait]
impl AsyncStep for TwilioSmsStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        if c.opt_out_tag
            .as_deref()
            .is_some_and(|t| contact.has_tag(t.trim()))
        {
            return Ok(Outcome::failed(
                "The contact has opted out of SMS; not sent",
            ));
        }
        let Some(raw) = contact.field(&c.to_field) else {
            return Ok(self.fail(
                contact,
                format!("The contact has no phone in {}", c.to_field),
            ));
        };
        let Some(to) = to_e164(raw, c.default_country.as_deref()) else {
            return Ok(self.fail(
                contact,
                format!("{raw:?} in {} is not a valid phone number", c.to_field),
            ));
        };
        let body = template::render(&c.message_template, contact)
            .trim()
            .to_owned();
        if body.is_empty() {
            return Ok(self.fail(contact, "The message is empty after merging fields".into()));
        }
        if body.chars().count() > MAX_BODY {
            return Ok(self.fail(
                contact,
                format!("The message is over Twilio's {MAX_BODY}-character limit"),
            ));
        }
        let from = match (&c.from_number, &c.messaging_service_sid) {
            (Some(n), _) => Sender::Number(n.trim().to_owned()),
            (None, Some(s)) => Sender::Service(s.trim().to_owned()),
            (None, None) => return Err(StepError::Input("no sender configured".into())),
        };
        let estimate = segments(&body);
        let sent = crate::helpers::once(ctx, "twilio_sms send", || async {
            let sent = send_sms(
                ctx,
                c.account_sid.trim(),
                &c.auth_token,
                &from,
                &to,
                &body,
                c.status_callback.as_deref(),
            )
            .await?;
            Ok(json!(sent))
        })
        .await?;
        let Some(result) = sent else {
            return Ok(
                Outcome::ok(format!("Would send a {estimate}-segment SMS to {to}"))
                    .with("message_sid", Value::Null)
                    .with("to_number", to)
                    .with("status", "dry_run")
                    .with("segments", estimate),
            );
        };
        let sent: Sent = serde_json::from_value(result).map_err(|e| StepError::External {
            message: format!("unexpected recorded twilio answer: {e}"),
            retryable: false,
        })?;
        let segments = sent
            .num_segments
            .as_deref()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(estimate);
        Ok(Outcome::ok(format!("Sent SMS {} to {to}", sent.sid))
            .with("message_sid", sent.sid)
            .with("to_number", to)
            .with("status", sent.status)
            .with("segments", segments)
            .branch(contact, c.sent_tag.as_deref(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

    fn cfg() -> Value {
        json!({"account_sid": SID, "auth_token": "tok", "from_number": "+14155550100",
            "message_template": "Hi {{first_name}}!", "default_country": "US",
            "sent_tag": "10", "failed_tag": "11"})
    }

    fn answer() -> Value {
        json!({"sid": "SM123", "status": "queued", "num_segments": "1", "to": "+14155550123",
            "from": "+14155550100", "body": "Hi Ada!", "error_code": null})
    }

    async fn twilio(status: u16, body: Value) -> (MockVendor, Env) {
        let mock = MockVendor::start(&[("POST", PATH, status, body)]).await;
        let env = Env::new().vendor("twilio", &mock.base);
        (mock, env)
    }

    fn ada(phone: &str) -> Contact {
        contact(&[("phone", phone), ("first_name", "Ada")], &[])
    }

    #[tokio::test]
    async fn sends_the_documented_form_with_basic_auth() {
        let (mock, env) = twilio(201, answer()).await;
        let out = env
            .run(&TwilioSms, cfg(), &ada("(415) 555-0123"))
            .await
            .unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["message_sid"], json!("SM123"));
        assert_eq!(out.output["to_number"], json!("+14155550123"));
        assert_eq!(out.output["status"], json!("queued"));
        assert_eq!(out.output["segments"], json!(1));
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "10".into()
            }]
        );
        let req = mock.single();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", PATH));
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{SID}:tok"),
        );
        assert_eq!(
            req.header("authorization"),
            Some(format!("Basic {basic}").as_str())
        );
        let form = req.form();
        assert_eq!(form["To"], "+14155550123");
        assert_eq!(form["From"], "+14155550100");
        assert_eq!(form["Body"], "Hi Ada!");
        assert_eq!(form.len(), 3);
    }

    #[tokio::test]
    async fn messaging_service_and_status_callback() {
        let (mock, env) = twilio(201, answer()).await;
        let mut c = cfg();
        c.as_object_mut().unwrap().remove("from_number");
        c["messaging_service_sid"] = json!("MG0123456789abcdef0123456789abcdef");
        c["status_callback"] = json!("https://hooks.example.com/sms");
        env.run(&TwilioSms, c, &ada("+44 7700 900123"))
            .await
            .unwrap();
        let form = mock.single().form();
        assert_eq!(
            form["MessagingServiceSid"],
            "MG0123456789abcdef0123456789abcdef"
        );
        assert_eq!(form["StatusCallback"], "https://hooks.example.com/sms");
        assert_eq!(form["To"], "+447700900123");
        assert!(!form.contains_key("From"));
    }

    #[tokio::test]
    async fn bad_numbers_and_opt_outs_are_not_sent() {
        let (mock, env) = twilio(201, answer()).await;
        let out = env.run(&TwilioSms, cfg(), &ada("")).await.unwrap();
        assert!(!out.success && out.message.contains("no phone"));
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "11".into()
            }]
        );
        let out = env.run(&TwilioSms, cfg(), &ada("555-01")).await.unwrap();
        assert!(!out.success && out.message.contains("not a valid"));
        let mut c = cfg();
        c["message_template"] = json!("{{nothing}}");
        let out = env.run(&TwilioSms, c, &ada("4155550123")).await.unwrap();
        assert!(!out.success && out.message.contains("empty"));
        let mut c = cfg();
        c["opt_out_tag"] = json!("99");
        let stop = contact(&[("phone", "4155550123")], &["99"]);
        let out = env.run(&TwilioSms, c, &stop).await.unwrap();
        assert!(!out.success && out.changes.is_empty());
        let mut c = cfg();
        c["message_template"] = json!("x".repeat(1601));
        assert!(
            !env.run(&TwilioSms, c, &ada("4155550123"))
                .await
                .unwrap()
                .success
        );
        assert!(mock.received().is_empty());
    }

    #[tokio::test]
    async fn vendor_errors_map_to_retryable_or_final() {
        let (mock, env) = twilio(
            400,
            json!({"code": 21211, "message": "The 'To' number is not valid.", "status": 400}),
        )
        .await;
        let err = env
            .run(&TwilioSms, cfg(), &ada("4155550123"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("21211")),
            "{err:?}"
        );
        mock.route("POST", PATH, 500, json!({}));
        let err = env
            .run(&TwilioSms, cfg(), &ada("4155550123"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn dry_run_and_rerun_send_nothing_more() {
        let (mock, mut env) = twilio(201, answer()).await;
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env
            .run(&TwilioSms, cfg(), &ada("4155550123"))
            .await
            .unwrap();
        assert!(out.success && out.message.starts_with("Would send"));
        assert_eq!(out.output["segments"], json!(1));
        assert!(out.changes.is_empty());
        assert!(mock.received().is_empty());
        env.dry_run = false;
        let first = env
            .run(&TwilioSms, cfg(), &ada("4155550123"))
            .await
            .unwrap();
        let again = env
            .run(&TwilioSms, cfg(), &ada("4155550123"))
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(mock.received().len(), 1);
    }

    #[test]
    fn normalises_numbers_to_e164() {
        assert_eq!(
            to_e164("(415) 555-0123", Some("US")).as_deref(),
            Some("+14155550123")
        );
        assert_eq!(
            to_e164("1-415-555-0123", Some("us")).as_deref(),
            Some("+14155550123")
        );
        assert_eq!(
            to_e164("07700 900123", Some("GB")).as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            to_e164("0044 7700 900123", None).as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            to_e164("+49 30 1234567", None).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            to_e164("415 555 0123 ext. 9", Some("US")).as_deref(),
            Some("+14155550123")
        );
        assert_eq!(to_e164("4155550123", None), None);
        assert_eq!(to_e164("12345", Some("US")), None);
        assert_eq!(to_e164("+0123456789", None), None);
        assert_eq!(to_e164("+1234567890123456", None), None);
    }

    #[test]
    fn counts_segments() {
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"é".repeat(160)), 1);
        assert_eq!(segments(&"😀".repeat(35)), 1);
        assert_eq!(segments(&"😀".repeat(36)), 2);
        assert_eq!(segments(&"ж".repeat(71)), 2);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &TwilioSms,
            json!({"account_sid": "XX1", "auth_token": "", "message_template": " ",
                "to_field": "", "default_country": "ZZ", "sent_tag": "", "status_callback": "http://x.io"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "account_sid",
                "auth_token",
                "from_number",
                "message_template",
                "to_field",
                "default_country",
                "sent_tag",
                "status_callback"
            ]
        );
        let mut c = cfg();
        c["messaging_service_sid"] = json!("MG0123456789abcdef0123456789abcdef");
        assert_eq!(
            config_errors(&TwilioSms, c)[0].field,
            "messaging_service_sid"
        );
        let mut c = cfg();
        c["from_number"] = json!("415-555-0100");
        assert_eq!(config_errors(&TwilioSms, c)[0].field, "from_number");
        assert!(config_errors(&TwilioSms, cfg()).is_empty());
    }
}
