//! note_it: adds a note to the contact record (Keap "Apply Note" style). Subject and body
//! are `{{field}}` templates rendered against the contact; missing fields render empty.
//! The rebuild only built the note data; here the note is an `AddNote` change the worker
//! applies through the CRM. Not idempotent: each run adds a note, unless
//! `dedupe_per_day` is on, in which case one note per contact, day (UTC) and identical
//! subject + body is kept through a state claim (`note_it/<instance>/<contact>/<day>/<hash>`
//! expiring after two days); a redelivered execution keeps its own claim and still adds
//! its note. `note_type`, `user_id` and `completion_date` are reported in the outputs: the
//! `AddNote` change carries only a title and a body.

use crate::connectors::Capability;
use crate::helpers::template::render;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

/// Config of note_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Note title template. Example: `"Requested demo on {{_DemoDate}}"`.
    pub subject: String,
    /// Note body template.
    pub body: String,
    /// Note / action type (Keap: Call, Email, Other); default `general`.
    #[serde(default = "default_type")]
    pub note_type: String,
    /// The note's author or assignee.
    pub user_id: Option<String>,
    /// `now` or a template giving the completion date.
    pub completion_date: Option<String>,
    /// Add at most one identical note per contact and day; default false.
    #[serde(default)]
    pub dedupe_per_day: bool,
}

fn default_type() -> String {
    "general".into()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.subject.trim().is_empty(),
            "subject",
            "must not be empty",
        );
        check(
            &mut errors,
            self.body.trim().is_empty(),
            "body",
            "must not be empty",
        );
        check(
            &mut errors,
            self.note_type.trim().is_empty(),
            "note_type",
            "must not be empty",
        );
        for (name, v) in [
            ("user_id", &self.user_id),
            ("completion_date", &self.completion_date),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                name,
                "must not be empty",
            );
        }
        finish(errors)
    }
}

/// The note_it helper.
pub struct NoteIt;

impl Helper for NoteIt {
    const NAME: &'static str = "note_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Adds a templated note to the contact record.";
    const EXAMPLE_CONFIG: &'static str = r#"{"subject": "Demo requested", "body": "{{first_name}} asked for a demo on {{_DemoDate}}.", "note_type": "Call", "dedupe_per_day": true}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "subject",
        "note_type",
        "user_id",
        "completion_date",
        "deduplicated",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Notes];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(NoteItStep(config)))
    }
}

struct NoteItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for NoteItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let subject = render(&c.subject, contact).trim().to_owned();
        let body = render(&c.body, contact).trim().to_owned();
        if subject.is_empty() && body.is_empty() {
            return Ok(Outcome::failed(
                "Subject and body rendered empty; no note added",
            ));
        }
        let completion = c.completion_date.as_deref().map(|d| {
            if d.trim().eq_ignore_ascii_case("now") {
                ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            } else {
                render(d, contact).trim().to_owned()
            }
        });
        let out = Outcome::ok("")
            .with("subject", subject.clone())
            .with("note_type", c.note_type.trim())
            .with(
                "user_id",
                c.user_id.as_deref().map_or(Value::Null, Value::from),
            )
            .with(
                "completion_date",
                completion
                    .filter(|d| !d.is_empty())
                    .map_or(Value::Null, Value::from),
            );
        if c.dedupe_per_day {
            let digest = sha2::Sha256::digest(format!("{subject}\n{body}").as_bytes());
            let key = format!(
                "note_it/{}/{}/{}/{}",
                ctx.instance,
                contact.id,
                ctx.now.format("%Y-%m-%d"),
                hex::encode(&digest[..8])
            );
            let expires = Some(ctx.now + chrono::Duration::days(2));
            let (stored, created) = ctx
                .state
                .put_if_absent(&key, json!({"execution_id": ctx.execution_id}), expires)
                .await?;
            if !created && stored["execution_id"] != ctx.execution_id {
                let mut skip = out.with("deduplicated", true);
                skip.message = format!("An identical note was added today; skipped {subject:?}");
                return Ok(skip);
            }
        }
        let mut out = out.with("deduplicated", false).change(Change::AddNote {
            title: subject.clone(),
            body,
        });
        out.message = format!("Adding note {subject:?}");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact};

    fn note(title: &str, body: &str) -> Change {
        Change::AddNote {
            title: title.into(),
            body: body.into(),
        }
    }

    #[tokio::test]
    async fn renders_templates_with_missing_fields_empty() {
        let cfg = json!({"subject": "Demo for {{first_name}}", "body": "On {{_DemoDate}}{{nope}}.", "completion_date": "now", "user_id": "7"});
        let out = Env::new()
            .run(&NoteIt, cfg, &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![note("Demo for Ada", "On .")]);
        assert_eq!(out.output["note_type"], json!("general"));
        assert_eq!(out.output["user_id"], json!("7"));
        assert_eq!(out.output["completion_date"], json!("2026-03-15T12:00:00Z"));
    }

    #[tokio::test]
    async fn each_run_adds_a_note_without_dedupe() {
        let mut env = Env::new();
        let cfg = json!({"subject": "S", "body": "B"});
        let c = contact(&[], &[]);
        assert_eq!(
            env.run(&NoteIt, cfg.clone(), &c)
                .await
                .unwrap()
                .changes
                .len(),
            1
        );
        env.execution_id = "exec-2".into();
        assert_eq!(env.run(&NoteIt, cfg, &c).await.unwrap().changes.len(), 1);
    }

    #[tokio::test]
    async fn dedupe_keeps_one_identical_note_per_day() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        let cfg = json!({"subject": "S {{a}}", "body": "B", "dedupe_per_day": true});
        let c = contact(&[("a", "1")], &[]);
        let first = env.run(&NoteIt, cfg.clone(), &c).await.unwrap();
        assert_eq!(first.changes, vec![note("S 1", "B")]);
        // A redelivery of the same execution still adds its note.
        let redelivered = env.run(&NoteIt, cfg.clone(), &c).await.unwrap();
        assert_eq!(redelivered.changes.len(), 1);
        env.execution_id = "exec-2".into();
        let second = env.run(&NoteIt, cfg.clone(), &c).await.unwrap();
        assert!(second.success && second.changes.is_empty());
        assert_eq!(second.output["deduplicated"], json!(true));
        let other = env
            .run(&NoteIt, cfg.clone(), &contact(&[("a", "2")], &[]))
            .await
            .unwrap();
        assert_eq!(other.changes, vec![note("S 2", "B")]);
        env.now += chrono::Duration::days(1);
        env.execution_id = "exec-3".into();
        let tomorrow = env.run(&NoteIt, cfg, &c).await.unwrap();
        assert_eq!(tomorrow.changes.len(), 1);
    }

    #[tokio::test]
    async fn an_all_empty_note_fails() {
        let out = Env::new()
            .run(
                &NoteIt,
                json!({"subject": "{{x}}", "body": " {{y}} "}),
                &contact(&[], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&NoteIt, json!({"subject": "s"})).is_empty());
        let errs = config_errors(
            &NoteIt,
            json!({"subject": " ", "body": "", "note_type": "", "user_id": " ", "completion_date": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["subject", "body", "note_type", "user_id", "completion_date"]
        );
    }
}
