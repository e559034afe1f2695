//! The notifier: consumes notification requests (keyed by account), renders each as an
//! HTML+text email and sends it by SMTP, or writes it to the outbox directory when no
//! SMTP server is configured (the embedded default).
//!
//! Each notification id is sent once per account: it is claimed in DynamoDB before the
//! send and marked sent after it. Two requests with one id (a checkout and its
//! `customer.subscription.created` arriving together) produce one email.

use crate::Services;
use crate::billing::config::EmailConfig;
use crate::billing::{NotificationKind, render};
use crate::router::decode;
use crate::store::accounts::NotificationClaim;
use crate::with_retries;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::Notification;
use std::path::PathBuf;
use std::sync::Arc;

/// How messages leave.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message under this directory.
    Outbox(PathBuf),
}

/// Why the mailer could not be built or a message not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL or an address is invalid.
    #[error("invalid email setting: {0}")]
    Config(String),
    /// The SMTP server refused or could not be reached.
    #[error("smtp: {0}")]
    Smtp(String),
    /// The outbox could not be written.
    #[error("outbox: {0}")]
    Outbox(#[from] std::io::Error),
}

impl Mailer {
    /// The mailer `cfg` describes.
    ///
    /// # Errors
    /// [`MailError::Config`] for an invalid SMTP URL.
    pub fn new(cfg: &EmailConfig) -> Result<Self, MailError> {
        if cfg.smtp_url.is_empty() {
            return Ok(Self::Outbox(cfg.outbox_dir.clone()));
        }
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.smtp_url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(cfg.smtp_timeout));
        if !cfg.smtp_user.is_empty() {
            b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
                cfg.smtp_user.clone(),
                cfg.smtp_password.clone(),
            ));
        }
        Ok(Self::Smtp(b.build()))
    }

    /// Sends `message`; `name` names its outbox file.
    ///
    /// # Errors
    /// [`MailError`].
    pub async fn send(&self, name: &str, message: Message) -> Result<(), MailError> {
        match self {
            Self::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Smtp(mfh_pipeline::report(&e))),
            Self::Outbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let file = dir.join(format!("{}.eml", safe_name(name)));
                let tmp = dir.join(format!(".{}.tmp", safe_name(name)));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, &file).await?;
                Ok(())
            }
        }
    }
}

/// A file name from an id: every character but `[A-Za-z0-9._-]` becomes `_`.
fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the email of one notification.
///
/// # Errors
/// [`MailError::Config`] for an invalid sender or recipient address.
pub fn compose(
    from: &str,
    to: &str,
    kind: NotificationKind,
    data: &serde_json::Value,
    account_id: &str,
    notification_id: &str,
) -> Result<Message, MailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| MailError::Config(format!("from {from:?}: {e}")))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| MailError::Config(format!("recipient {to:?}: {e}")))?;
    let r = render(kind, data);
    Message::builder()
        .from(from)
        .to(to)
        .subject(r.subject)
        .message_id(Some(format!(
            "<{}.{}@mfh>",
            safe_name(account_id),
            safe_name(notification_id)
        )))
        .multipart(MultiPart::alternative_plain_html(r.text, r.html))
        .map_err(|e| MailError::Config(e.to_string()))
}

/// `data` with the dashboard links the templates use: `dashboard_url` (the page of the
/// dashboard this kind leads to) and, for an execution alert, `execution_url`. Links the
/// data already carries are kept; without a dashboard URL nothing is added.
pub fn with_dashboard_links(
    mut data: serde_json::Value,
    dashboard: &str,
    kind: NotificationKind,
) -> serde_json::Value {
    let base = dashboard.trim_end_matches('/');
    let Some(obj) = data.as_object_mut().filter(|_| !base.is_empty()) else {
        return data;
    };
    obj.entry("dashboard_url")
        .or_insert_with(|| format!("{base}{}", kind.dashboard_path()).into());
    if let Some(id) = obj.get("execution_id").and_then(serde_json::Value::as_str) {
        let url = format!("{base}/executions/{}", urlencode(id));
        obj.entry("execution_url").or_insert_with(|| url.into());
    }
    data
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The notifier's handler.
pub struct Notifier {
    svc: Services,
    mailer: Mailer,
}

/// Runs the notifier until `cancel` fires.
///
/// # Errors
/// An invalid email config, or a fatal failure of the runner.
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let mailer = Mailer::new(&svc.billing.email)?;
    let (cfg, deps) = svc.runner(
        "notifier",
        "notifier",
        svc.kafka.topics().notifications().name,
    );
    mfh_pipeline::runner::run(cfg, deps, Arc::new(Notifier { svc, mailer }), cancel).await
}

#[async_trait]
impl Handler for Notifier {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let Some(payload) = &rec.payload else {
            return Err(Failure::dead_letter("invalid_avro", "record has no value"));
        };
        let n: Notification = decode(&self.svc, payload).await?;
        let kind = NotificationKind::parse(&n.kind).ok_or_else(|| {
            Failure::dead_letter("unknown_notification", format!("no template {:?}", n.kind))
        })?;
        let data: serde_json::Value = serde_json::from_str(&n.data_json)
            .map_err(|e| Failure::dead_letter("invalid_json", format!("data_json: {e}")))?;
        let data = with_dashboard_links(data, &self.svc.billing.email.dashboard_url, kind);
        let store = &self.svc.store;
        let account = if n.recipient.is_none() || kind.preference().is_some() {
            with_retries("read account", || store.account(&n.account_id))
                .await
                .map_err(|e| crate::store_failure(&e))?
        } else {
            None
        };
        if let Some(a) = &account
            && !a.notification_prefs.allows(kind)
        {
            tracing::info!(kind = %n.kind, account = %n.account_id, "Notification turned off by the account.");
            return Ok(());
        }
        let recipient = match &n.recipient {
            Some(r) => r.clone(),
            None => account.and_then(|a| a.billing_email).ok_or_else(|| {
                Failure::dead_letter(
                    "no_recipient",
                    format!("account {} has no billing email", n.account_id),
                )
            })?,
        };
        let claim = with_retries("claim notification", || {
            store.claim_notification(&n.account_id, &n.notification_id)
        })
        .await
        .map_err(|e| crate::store_failure(&e))?;
        if claim == NotificationClaim::AlreadySent {
            tracing::debug!(id = %n.notification_id, "Notification already sent.");
            return Ok(());
        }
        let message = compose(
            &self.svc.billing.email.from,
            &recipient,
            kind,
            &data,
            &n.account_id,
            &n.notification_id,
        )
        .map_err(|e| Failure::dead_letter("invalid_address", e.to_string()))?;
        let name = format!("{}-{}", n.account_id, n.notification_id);
        with_retries("send email", || self.mailer.send(&name, message.clone()))
            .await
            .map_err(|e| Failure::Fatal(mfh_pipeline::report(&e)))?;
        with_retries("mark notification sent", || {
            store.notification_sent(&n.account_id, &n.notification_id, &recipient)
        })
        .await
        .map_err(|e| crate::store_failure(&e))?;
        tracing::info!(kind = %n.kind, account = %n.account_id, "Notification sent.");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn emails_lead_into_the_dashboard() {
        let d = with_dashboard_links(
            serde_json::json!({"execution_id": "ex 1/2"}),
            "http://127.0.0.1:8080/",
            NotificationKind::ExecutionAlert,
        );
        assert_eq!(d["dashboard_url"], "http://127.0.0.1:8080/executions");
        assert_eq!(
            d["execution_url"],
            "http://127.0.0.1:8080/executions/ex%201%2F2"
        );
        let kept = with_dashboard_links(
            serde_json::json!({"dashboard_url": "https://x/"}),
            "http://d",
            NotificationKind::Welcome,
        );
        assert_eq!(kept["dashboard_url"], "https://x/");
        let none = with_dashboard_links(serde_json::json!({}), "", NotificationKind::Welcome);
        assert_eq!(none, serde_json::json!({}));
    }

    #[test]
    fn ids_become_safe_file_names() {
        assert_eq!(
            safe_name("subscription_created:sub_1/../x"),
            "subscription_created_sub_1_.._x"
        );
    }

    #[test]
    fn a_message_has_both_parts_and_a_message_id_from_its_notification() {
        let data =
            serde_json::json!({"plan": "<script>x</script>", "amount": 4900, "currency": "usd"});
        let m = compose(
            "Billing <billing@mfh.localhost>",
            "owner@example.com",
            NotificationKind::PaymentReceipt,
            &data,
            "acct_1",
            "payment_receipt:in_1",
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/plain") && text.contains("text/html"));
        assert!(text.contains("<acct_1.payment_receipt_in_1@mfh>"), "{text}");
        assert!(compose("nope", "a@b.c", NotificationKind::Welcome, &data, "a", "w").is_err());
    }
}
