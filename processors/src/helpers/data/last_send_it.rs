//! last_send_it: writes the date an email was last sent to the contact into a field. The
//! same step as last_click_it ([`email_date_step`]) on the send date, without the
//! attribution window: `email_field` (default `Email`), `date_format` (default
//! `%Y-%m-%d`) and `timezone` (default UTC) work alike, never sent is a success without a
//! write and an empty address fails. Idempotent.

use super::last_click_it::{EmailDateConfig, Metric, email_date_step};
use crate::connectors::Capability;
use crate::helpers::{Category, Helper, Runnable};

/// The last_send_it helper.
pub struct LastSendIt;

impl Helper for LastSendIt {
    const NAME: &'static str = "last_send_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Writes the date an email was last sent to the contact into a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"save_to": "_LastSent", "email_field": "email"}"#;
    const OUTPUTS: &'static [&'static str] = &["last_sent_date", "count", "<save_to>"];
    const REQUIRES: &'static [Capability] = &[Capability::EmailStats, Capability::Fields];
    type Config = EmailDateConfig;

    fn build(&self, config: EmailDateConfig) -> Runnable {
        email_date_step(Metric::Sent, config, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::data::last_click_it::tests::env_with_stats;
    use crate::helpers::testing::{config_errors, contact, set};
    use serde_json::json;

    #[tokio::test]
    async fn writes_the_last_send_date() {
        let env = env_with_stats();
        let c = contact(&[("Email", "ada@example.com")], &[]);
        let cfg = json!({"save_to": "_LastSent", "timezone": "America/New_York"});
        let out = env.run(&LastSendIt, cfg, &c).await.unwrap();
        assert_eq!(out.changes, vec![set("_LastSent", "2026-03-01")]);
        assert_eq!(out.output["last_sent_date"], "2026-03-01");
        assert_eq!(out.output["count"], 40);
        let cfg = json!({"save_to": "_LastSent", "timezone": "Pacific/Honolulu"});
        let out = env.run(&LastSendIt, cfg, &c).await.unwrap();
        assert_eq!(
            out.changes,
            vec![set("_LastSent", "2026-02-28")],
            "09:00Z is still Feb 28 in Hawaii"
        );
    }

    #[tokio::test]
    async fn never_sent_and_empty_address() {
        let env = env_with_stats();
        let cfg = json!({"save_to": "t", "email_field": "Email3"});
        let out = env
            .run(
                &LastSendIt,
                cfg.clone(),
                &contact(&[("EmailAddress3", "new@example.com")], &[]),
            )
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["count"], 0);
        let out = env
            .run(
                &LastSendIt,
                cfg,
                &contact(&[("Email", "ada@example.com")], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("Email3 is empty"));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &LastSendIt,
            json!({"save_to": "t", "email_field": " ", "date_format": "%Y-%"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email_field", "date_format"]);
        assert!(!config_errors(&LastSendIt, json!({"email_field": "Email"})).is_empty());
    }
}
