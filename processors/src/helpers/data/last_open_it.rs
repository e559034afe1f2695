//! last_open_it: writes the date the contact last opened a CRM email into a field. The
//! same step as last_click_it ([`email_date_step`]) on the open date, without the
//! attribution window: `email_field` (default `Email`), `date_format` (default
//! `%Y-%m-%d`) and `timezone` (default UTC) work alike, never opened is a success without
//! a write and an empty address fails. Apple Mail Privacy Protection inflates opens, so
//! the date may be an automatic prefetch rather than a person. Idempotent.

use super::last_click_it::{EmailDateConfig, Metric, email_date_step};
use crate::connectors::Capability;
use crate::helpers::{Category, Helper, Runnable};

/// The last_open_it helper.
pub struct LastOpenIt;

impl Helper for LastOpenIt {
    const NAME: &'static str = "last_open_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str = "Writes the date the contact last opened an email into a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"save_to": "_LastOpen", "email_field": "email"}"#;
    const OUTPUTS: &'static [&'static str] = &["last_open_date", "count", "<save_to>"];
    const REQUIRES: &'static [Capability] = &[Capability::EmailStats, Capability::Fields];
    type Config = EmailDateConfig;

    fn build(&self, config: EmailDateConfig) -> Runnable {
        email_date_step(Metric::Open, config, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::data::last_click_it::tests::env_with_stats;
    use crate::helpers::testing::{config_errors, contact, set};
    use serde_json::json;

    #[tokio::test]
    async fn writes_the_last_open_date() {
        let env = env_with_stats();
        let c = contact(&[("email", "ada@example.com")], &[]);
        let cfg = json!({"save_to": "_LastOpen", "email_field": "email", "date_format": "%m/%d/%Y %H:%M"});
        let out = env.run(&LastOpenIt, cfg, &c).await.unwrap();
        assert_eq!(out.changes, vec![set("_LastOpen", "03/02/2026 08:30")]);
        assert_eq!(out.output["last_open_date"], "03/02/2026 08:30");
        assert_eq!(out.output["count"], 22);
        assert!(out.output.get("within_window").is_none());
    }

    #[tokio::test]
    async fn never_opened_and_empty_address() {
        let env = env_with_stats();
        let cfg = json!({"save_to": "t"});
        let out = env
            .run(
                &LastOpenIt,
                cfg.clone(),
                &contact(&[("Email", "new@example.com")], &[]),
            )
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["last_open_date"], serde_json::Value::Null);
        let out = env
            .run(&LastOpenIt, cfg.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
        let c = contact(&[("Email", "ada@example.com"), ("t", "2026-03-02")], &[]);
        assert!(
            env.run(&LastOpenIt, cfg, &c)
                .await
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(&LastOpenIt, json!({"save_to": "", "timezone": "EST5"}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["save_to", "timezone"]);
        assert!(
            !config_errors(
                &LastOpenIt,
                json!({"save_to": "t", "attribution_window_days": 3})
            )
            .is_empty()
        );
    }
}
