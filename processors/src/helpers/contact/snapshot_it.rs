//! snapshot_it: saves a point-in-time copy of the contact (fields, tags with names, owner,
//! company, marketable status, CRM created/updated times) to platform state, for audit,
//! rollback or "what did this record look like when they bought". The key is
//! `snapshot_it/<contact id>/<timestamp>-<execution id>`, so every snapshot of a contact can
//! be listed and deleted by prefix (GDPR erasure) and a redelivered execution rewrites the
//! same snapshot instead of adding one. Custom fields (keys starting with `_`) and tags can
//! be left out. `retention_days` sets an expiry; without it the snapshot is kept. A
//! snapshot over 350 kB fails rather than hit the store's item limit. `also_write_note`
//! adds the compact JSON as a note (cut at 10 000 characters). Not idempotent across
//! executions: each one makes a new snapshot.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Largest snapshot stored, in bytes of JSON.
pub const MAX_SNAPSHOT_BYTES: usize = 350_000;
/// Longest note body written, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;

/// Config of snapshot_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Include the tags with their names; default true.
    #[serde(default = "default_true")]
    pub include_tags: bool,
    /// Include custom fields (keys starting with `_`); default true.
    #[serde(default = "default_true")]
    pub include_custom_fields: bool,
    /// Delete the snapshot after this many days; default: keep it.
    pub retention_days: Option<u32>,
    /// Also add the snapshot as a note; default false.
    #[serde(default)]
    pub also_write_note: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.retention_days.is_some_and(|d| d == 0 || d > 36_500),
            "retention_days",
            "must be between 1 and 36500",
        );
        finish(errors)
    }
}

/// The snapshot_it helper.
pub struct SnapshotIt;

impl Helper for SnapshotIt {
    const NAME: &'static str = "snapshot_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Saves a point-in-time copy of the contact to platform storage.";
    const EXAMPLE_CONFIG: &'static str = r#"{"include_tags": true, "retention_days": 365}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "snapshot_id",
        "timestamp",
        "tag_count",
        "field_count",
        "expires_at",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(SnapshotItStep(config)))
    }
}

struct SnapshotItStep(Config);

impl SnapshotItStep {
    fn snapshot(&self, ctx: &Ctx<'_>, contact: &Contact, id: &str) -> Value {
        let c = &self.0;
        let fields: Map<String, Value> = contact
            .fields
            .iter()
            .filter(|(k, _)| c.include_custom_fields || !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let mut snap = json!({
            "snapshot_id": id,
            "contact_id": contact.id,
            "account_id": ctx.account_id,
            "execution_id": ctx.execution_id,
            "instance": ctx.instance,
            "captured_at": ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "fields": fields,
            "owner_id": contact.owner_id,
            "company_id": contact.company_id,
            "marketable": contact.marketable,
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
        });
        if c.include_tags {
            snap["tags"] = json!(contact.tags);
        }
        snap
    }
}

#[async_trait::async_trait]
impl AsyncStep for SnapshotItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        if contact.id.trim().is_empty() {
            return Err(StepError::Input("the contact has no id".into()));
        }
        let id = format!("{}-{}", ctx.now.format("%Y%m%dT%H%M%SZ"), ctx.execution_id);
        let snap = self.snapshot(ctx, contact, &id);
        let text = snap.to_string();
        if text.len() > MAX_SNAPSHOT_BYTES {
            return Ok(Outcome::failed(format!(
                "The snapshot is {} bytes, over the {MAX_SNAPSHOT_BYTES}-byte limit; leave out custom fields or tags",
                text.len()
            )));
        }
        let expires = c
            .retention_days
            .map(|d| ctx.now + chrono::Duration::days(i64::from(d)));
        let key = format!("snapshot_it/{}/{id}", contact.id);
        ctx.state.put(&key, snap.clone(), expires).await?;
        let field_count = snap["fields"].as_object().map_or(0, Map::len);
        let tag_count = if c.include_tags {
            contact.tags.len()
        } else {
            0
        };
        let stamp = ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut out = Outcome::ok(format!(
            "Saved snapshot {id} ({field_count} fields, {tag_count} tags)"
        ))
        .with("snapshot_id", id.clone())
        .with("timestamp", stamp.clone())
        .with("tag_count", tag_count)
        .with("field_count", field_count)
        .with(
            "expires_at",
            expires.map_or(Value::Null, |e| {
                Value::from(e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }),
        );
        if c.also_write_note {
            let mut body: String = text.chars().take(MAX_NOTE_CHARS).collect();
            if body.len() < text.len() {
                body.push_str(" …(truncated)");
                out = out.log("The snapshot note was cut at 10000 characters.");
            }
            out = out.change(Change::AddNote {
                title: format!("Contact snapshot {stamp}"),
                body,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact};
    use crate::state::StateStore;

    fn person() -> Contact {
        Contact {
            owner_id: Some("12".into()),
            created_at: Some(1_700_000_000_000),
            ..contact(&[("email", "a@b.co"), ("_Score", "7")], &["101", "102"])
        }
    }

    #[tokio::test]
    async fn stores_the_snapshot_under_the_contact_prefix() {
        let env = Env::new();
        let out = env.run(&SnapshotIt, json!({}), &person()).await.unwrap();
        let id = "20260315T120000Z-exec-test";
        assert_eq!(out.output["snapshot_id"], json!(id));
        assert_eq!(out.output["timestamp"], json!("2026-03-15T12:00:00Z"));
        assert_eq!(
            (
                out.output["tag_count"].clone(),
                out.output["field_count"].clone()
            ),
            (json!(2), json!(2))
        );
        assert!(out.changes.is_empty());
        let stored = env
            .state
            .get(&format!("snapshot_it/c-1/{id}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored["fields"], json!({"email": "a@b.co", "_Score": "7"}));
        assert_eq!(stored["tags"], json!({"101": "101", "102": "102"}));
        assert_eq!(stored["owner_id"], json!("12"));
        assert_eq!(stored["created_at"], json!(1_700_000_000_000_i64));
        assert_eq!(out.output["expires_at"], Value::Null);
    }

    #[tokio::test]
    async fn each_execution_adds_one_and_redelivery_rewrites_it() {
        let mut env = Env::new();
        env.run(&SnapshotIt, json!({}), &person()).await.unwrap();
        env.run(&SnapshotIt, json!({}), &person()).await.unwrap();
        assert_eq!(env.state.list("snapshot_it/c-1/").await.unwrap().len(), 1);
        env.execution_id = "exec-2".into();
        env.now += chrono::Duration::minutes(5);
        env.run(&SnapshotIt, json!({}), &person()).await.unwrap();
        let keys: Vec<String> = env
            .state
            .list("snapshot_it/c-1/")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![
                "snapshot_it/c-1/20260315T120000Z-exec-test",
                "snapshot_it/c-1/20260315T120500Z-exec-2"
            ]
        );
    }

    #[tokio::test]
    async fn exclusions_retention_and_note() {
        let env = Env::new();
        env.state.set_now(env.now);
        let cfg = json!({"include_tags": false, "include_custom_fields": false, "retention_days": 30, "also_write_note": true});
        let out = env.run(&SnapshotIt, cfg, &person()).await.unwrap();
        assert_eq!(out.output["expires_at"], json!("2026-04-14T12:00:00Z"));
        assert_eq!(
            (
                out.output["tag_count"].clone(),
                out.output["field_count"].clone()
            ),
            (json!(0), json!(1))
        );
        let key = "snapshot_it/c-1/20260315T120000Z-exec-test";
        let stored = env.state.get(key).await.unwrap().unwrap();
        assert_eq!(stored["fields"], json!({"email": "a@b.co"}));
        assert!(stored.get("tags").is_none());
        let Change::AddNote { title, body } = &out.changes[0] else {
            panic!("expected a note, got {:?}", out.changes);
        };
        assert_eq!(title, "Contact snapshot 2026-03-15T12:00:00Z");
        assert_eq!(serde_json::from_str::<Value>(body).unwrap(), stored);
        env.state.set_now(env.now + chrono::Duration::days(31));
        assert!(env.state.get(key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_snapshots_fail_and_long_notes_are_cut() {
        let env = Env::new();
        let huge = "x".repeat(MAX_SNAPSHOT_BYTES);
        let out = env
            .run(&SnapshotIt, json!({}), &contact(&[("_Big", &huge)], &[]))
            .await
            .unwrap();
        assert!(!out.success);
        assert!(env.state.list("snapshot_it/").await.unwrap().is_empty());
        let long = "y".repeat(MAX_NOTE_CHARS);
        let noted = env
            .run(
                &SnapshotIt,
                json!({"also_write_note": true}),
                &contact(&[("_Long", &long)], &[]),
            )
            .await
            .unwrap();
        let Change::AddNote { body, .. } = &noted.changes[0] else {
            panic!("expected a note");
        };
        assert!(body.ends_with(" …(truncated)"));
        assert_eq!(noted.logs.len(), 1);
    }

    #[tokio::test]
    async fn a_contact_without_id_is_an_input_error() {
        let c = Contact::default();
        let err = Env::new()
            .run(&SnapshotIt, json!({}), &c)
            .await
            .unwrap_err();
        assert!(matches!(err, StepError::Input(_)));
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&SnapshotIt, json!({"retention_days": 0}))[0].field,
            "retention_days"
        );
        assert!(!config_errors(&SnapshotIt, json!({"retention_days": -3})).is_empty());
        assert!(!config_errors(&SnapshotIt, json!({"include_tags": "yes"})).is_empty());
        assert!(config_errors(&SnapshotIt, json!({})).is_empty());
    }
}
