//! keap_backup: a backup of the CRM account to the platform's file storage. For each
//! selected data type it reads everything through the connector — `contacts` page by
//! page over the whole search (not `search_all`, which is capped), `tags` from the tag
//! catalog, `users`, and `companies` — and writes one JSON object per line to
//! `backups/<timestamp>/<type>.ndjson`. Contacts are streamed: each page is written into a
//! multipart upload as it arrives, so memory stays at about one page plus one upload part
//! however large the account. A type that fails is reported failed and the others go on;
//! a `manifest.json` with the counts is written last. With `retention_count`, older backup
//! folders beyond that many are deleted. The account is not contact-scoped: the triggering
//! contact is ignored. The backup runs once per execution and a dry run writes nothing.
//!
//! The connector has no "list every company" query, so companies are gathered by
//! searching for every letter and digit and de-duplicating by id; a company whose name
//! has none of them is missed.

use crate::connectors::{Capability, ContactQuery};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What can be backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Every contact with fields and tags.
    Contacts,
    /// Companies.
    Companies,
    /// The tag catalog.
    Tags,
    /// CRM users.
    Users,
}

impl DataType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Companies => "companies",
            Self::Tags => "tags",
            Self::Users => "users",
        }
    }
}

/// Config of keap_backup.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Types to back up; default contacts, companies, tags.
    #[serde(default = "default_types")]
    pub data_types: Vec<DataType>,
    /// Backups to keep, this one included; older ones are deleted. Unset keeps all.
    pub retention_count: Option<u32>,
    /// Keep custom fields (keys starting with `_`) on contacts; default true.
    #[serde(default = "default_true")]
    pub include_custom_fields_on_contacts: bool,
}

fn default_types() -> Vec<DataType> {
    vec![DataType::Contacts, DataType::Companies, DataType::Tags]
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.data_types.is_empty(),
            "data_types",
            "must list at least one type",
        );
        let mut sorted = self.data_types.clone();
        sorted.sort();
        sorted.dedup();
        check(
            &mut errors,
            sorted.len() != self.data_types.len(),
            "data_types",
            "must not repeat a type",
        );
        check(
            &mut errors,
            self.retention_count
                .is_some_and(|r| !(1..=1000).contains(&r)),
            "retention_count",
            "must be 1 to 1000",
        );
        finish(errors)
    }
}

/// Where backups live.
const ROOT: &str = "backups";
/// Most contact pages read (a guard against a connector that never ends).
const MAX_PAGES: usize = 1_000_000;

/// The keap_backup helper.
pub struct KeapBackup;

impl Helper for KeapBackup {
    const NAME: &'static str = "keap_backup";
    const CATEGORY: Category = Category::Platform;
    const SUMMARY: &'static str = "Backs up the CRM's contacts, companies, tags and users as NDJSON files in platform storage.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"data_types": ["contacts", "companies", "tags"], "retention_count": 7}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "timestamp",
        "total_types",
        "successful",
        "failed",
        "backup_results",
        "pruned",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::Search, Capability::Tags, Capability::Companies];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(BackupStep(config)))
    }
}

struct BackupStep(Config);

fn store_err(e: &object_store::Error) -> StepError {
    StepError::External {
        message: format!("file storage failed: {e}"),
        retryable: true,
    }
}

fn line(v: &impl serde::Serialize) -> Result<Vec<u8>, StepError> {
    let mut b = serde_json::to_vec(v).map_err(|e| StepError::External {
        message: format!("could not encode a record: {e}"),
        retryable: false,
    })?;
    b.push(b'\n');
    Ok(b)
}

impl BackupStep {
    /// Streams every contact into `path`; returns the count.
    async fn contacts(&self, ctx: &Ctx<'_>, path: &Path) -> Result<u64, StepError> {
        let upload = ctx
            .files
            .put_multipart(path)
            .await
            .map_err(|e| store_err(&e))?;
        let mut writer = WriteMultipart::new(upload);
        let result = async {
            let (mut count, mut page) = (0_u64, None::<String>);
            for _ in 0..MAX_PAGES {
                let p = ctx
                    .crm
                    .search_contacts(&ContactQuery::All, page.as_deref())
                    .await?;
                let mut chunk = Vec::new();
                for mut c in p.contacts {
                    if !self.0.include_custom_fields_on_contacts {
                        c.fields.retain(|k, _| !k.starts_with('_'));
                    }
                    chunk.extend(line(&c)?);
                    count += 1;
                }
                writer
                    .wait_for_capacity(4)
                    .await
                    .map_err(|e| store_err(&e))?;
                writer.write(&chunk);
                match p.next {
                    Some(n) if page.as_deref() != Some(n.as_str()) => page = Some(n),
                    _ => return Ok(count),
                }
            }
            Ok(count)
        }
        .await;
        match result {
            Ok(count) => {
                writer.finish().await.map_err(|e| store_err(&e))?;
                Ok(count)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Every company, gathered by single-character searches.
    async fn companies(ctx: &Ctx<'_>) -> Result<Vec<Value>, StepError> {
        let mut all = BTreeMap::new();
        for ch in ('a'..='z').chain('0'..='9') {
            for c in ctx.crm.find_companies(&ch.to_string()).await? {
                all.entry(c.id.clone()).or_insert(c);
            }
        }
        Ok(all.into_values().map(|c| json!(c)).collect())
    }

    /// Backs up one type; returns (count, key).
    async fn backup(
        &self,
        ctx: &Ctx<'_>,
        t: DataType,
        dir: &str,
    ) -> Result<(u64, String), StepError> {
        let key = format!("{dir}/{}.ndjson", t.as_str());
        let path = Path::from(key.as_str());
        let records: Vec<Value> = match t {
            DataType::Contacts => return Ok((self.contacts(ctx, &path).await?, key)),
            DataType::Companies => Self::companies(ctx).await?,
            DataType::Tags => ctx
                .crm
                .list_tags()
                .await?
                .iter()
                .map(|x| json!(x))
                .collect(),
            DataType::Users => ctx
                .crm
                .list_users()
                .await?
                .iter()
                .map(|x| json!(x))
                .collect(),
        };
        let mut body = Vec::new();
        for r in &records {
            body.extend(line(r)?);
        }
        ctx.files
            .put(&path, body.into())
            .await
            .map_err(|e| store_err(&e))?;
        Ok((records.len() as u64, key))
    }

    /// Deletes backup folders beyond the newest `keep`; returns their names.
    async fn prune(ctx: &Ctx<'_>, keep: usize) -> Result<Vec<String>, StepError> {
        let listing = ctx
            .files
            .list_with_delimiter(Some(&Path::from(ROOT)))
            .await
            .map_err(|e| store_err(&e))?;
        let mut dirs: Vec<Path> = listing.common_prefixes;
        dirs.sort_by(|a, b| b.as_ref().cmp(a.as_ref()));
        let mut pruned = Vec::new();
        for dir in dirs.into_iter().skip(keep) {
            let inside = ctx
                .files
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|e| store_err(&e))?;
            for o in inside.objects {
                match ctx.files.delete(&o.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_err(&e)),
                }
            }
            pruned.push(dir.filename().unwrap_or_default().to_owned());
        }
        Ok(pruned)
    }
}

#[async_trait::async_trait]
impl AsyncStep for BackupStep {
    async fn run(&self, ctx: &Ctx<'_>, _contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let stamp = ctx.now.format("%Y%m%dT%H%M%SZ").to_string();
        let dir = format!("{ROOT}/{stamp}");
        let names: Vec<&str> = c.data_types.iter().map(|t| t.as_str()).collect();
        let done = crate::helpers::once(ctx, "keap_backup run", || async {
            let mut results = Map::new();
            for t in &c.data_types {
                let r = match self.backup(ctx, *t, &dir).await {
                    Ok((count, key)) => json!({"success": true, "count": count, "key": key}),
                    Err(e) => json!({"success": false, "error": e.to_string()}),
                };
                results.insert(t.as_str().to_owned(), r);
            }
            let manifest = json!({"timestamp": stamp, "account_id": ctx.account_id,
                "execution_id": ctx.execution_id, "backup_results": results});
            ctx.files
                .put(
                    &Path::from(format!("{dir}/manifest.json")),
                    line(&manifest)?.into(),
                )
                .await
                .map_err(|e| store_err(&e))?;
            let pruned = match c.retention_count {
                Some(keep) => Self::prune(ctx, usize::try_from(keep).unwrap_or(usize::MAX)).await?,
                None => Vec::new(),
            };
            Ok(json!({"backup_results": results, "pruned": pruned}))
        })
        .await?;
        let Some(r) = done else {
            return Ok(
                Outcome::ok(format!("Would back up {} to {dir}/", names.join(", ")))
                    .with("timestamp", stamp)
                    .with("total_types", names.len()),
            );
        };
        let results = r["backup_results"].as_object().cloned().unwrap_or_default();
        let ok = results
            .values()
            .filter(|v| v["success"] == json!(true))
            .count();
        let failed = results.len() - ok;
        let mut out = Outcome::ok(format!(
            "Backed up {ok} of {} types to {dir}/",
            results.len()
        ))
        .with("timestamp", stamp)
        .with("total_types", results.len())
        .with("successful", ok)
        .with("failed", failed)
        .with("backup_results", Value::Object(results))
        .with("pruned", r["pruned"].clone());
        if ok == 0 {
            out.success = false;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{Company, ContactPage, CrmData, CrmError, CrmRead, Tag, User};
    use crate::helpers::DynHelper;
    use crate::helpers::testing::{Env, config_errors, contact};
    use object_store::ObjectStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn filled(n: usize) -> Env {
        let mut env = Env::new();
        for i in 0..n {
            let mut c = contact(
                &[("email", &format!("u{i}@x.io")), ("_Secret", "s")],
                &["7"],
            );
            c.id = format!("{i:05}");
            env.crm.contacts.push(c);
        }
        env.crm.tags = vec![Tag {
            id: "7".into(),
            name: "VIP".into(),
            category: None,
        }];
        env.crm.companies = vec![
            Company {
                id: "co1".into(),
                name: "Acme".into(),
                fields: BTreeMap::new(),
                created_at: 0,
            },
            Company {
                id: "co2".into(),
                name: "Beta 9".into(),
                fields: BTreeMap::new(),
                created_at: 0,
            },
        ];
        env.crm.users = vec![User {
            id: "u1".into(),
            name: "Owner".into(),
            email: "o@x.io".into(),
            active: true,
        }];
        env
    }

    async fn read(env: &Env, key: &str) -> Vec<Value> {
        let bytes = env
            .files
            .get(&Path::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn writes_one_ndjson_file_per_type_and_a_manifest() {
        let env = filled(250);
        let cfg = json!({"data_types": ["contacts", "companies", "tags", "users"]});
        let out = env.run(&KeapBackup, cfg, &contact(&[], &[])).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["timestamp"], json!("20260315T120000Z"));
        assert_eq!(
            (
                out.output["successful"].clone(),
                out.output["failed"].clone()
            ),
            (json!(4), json!(0))
        );
        let r = &out.output["backup_results"];
        assert_eq!(
            r["contacts"],
            json!({"success": true, "count": 250, "key": "backups/20260315T120000Z/contacts.ndjson"})
        );
        assert_eq!(r["companies"]["count"], json!(2));
        let contacts = read(&env, "backups/20260315T120000Z/contacts.ndjson").await;
        assert_eq!(contacts.len(), 250);
        assert_eq!(contacts[249]["id"], json!("00249"));
        assert_eq!(contacts[0]["fields"]["_Secret"], json!("s"));
        let companies = read(&env, "backups/20260315T120000Z/companies.ndjson").await;
        assert_eq!(
            companies
                .iter()
                .map(|c| c["id"].clone())
                .collect::<Vec<_>>(),
            [json!("co1"), json!("co2")]
        );
        assert_eq!(
            read(&env, "backups/20260315T120000Z/tags.ndjson").await[0]["name"],
            json!("VIP")
        );
        assert_eq!(
            read(&env, "backups/20260315T120000Z/users.ndjson").await[0]["email"],
            json!("o@x.io")
        );
        let manifest = read(&env, "backups/20260315T120000Z/manifest.json").await;
        assert_eq!(manifest[0]["backup_results"], *r);
    }

    #[tokio::test]
    async fn custom_fields_can_be_left_out() {
        let env = filled(3);
        let cfg = json!({"data_types": ["contacts"], "include_custom_fields_on_contacts": false});
        env.run(&KeapBackup, cfg, &contact(&[], &[])).await.unwrap();
        let contacts = read(&env, "backups/20260315T120000Z/contacts.ndjson").await;
        assert_eq!(contacts[0]["fields"], json!({"email": "u0@x.io"}));
    }

    /// A CRM whose contact search fails on the second page and counts page reads.
    struct Flaky(CrmData, AtomicUsize);

    #[async_trait::async_trait]
    impl CrmRead for Flaky {
        async fn search_contacts(
            &self,
            q: &ContactQuery,
            page: Option<&str>,
        ) -> Result<ContactPage, CrmError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            if page.is_some() {
                return Err(CrmError::Unsupported {
                    what: "page two".into(),
                });
            }
            self.0.search_contacts(q, page).await
        }
        async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
            self.0.list_tags().await
        }
    }

    #[tokio::test]
    async fn a_failed_type_does_not_stop_the_others() {
        let env = filled(150);
        let crm = Flaky(env.crm.clone(), AtomicUsize::new(0));
        let mut ctx = env.ctx();
        ctx.crm = &crm;
        let step = KeapBackup
            .build_json(&json!({"data_types": ["contacts", "companies", "tags"]}))
            .unwrap();
        let out = step.run(&ctx, &contact(&[], &[])).await.unwrap();
        assert!(out.success);
        assert_eq!(
            (
                out.output["successful"].clone(),
                out.output["failed"].clone()
            ),
            (json!(1), json!(2))
        );
        let r = &out.output["backup_results"];
        assert_eq!(r["contacts"]["success"], json!(false));
        assert!(
            r["contacts"]["error"]
                .as_str()
                .unwrap()
                .contains("page two")
        );
        assert_eq!(r["tags"]["count"], json!(1));
        assert_eq!(crm.1.load(Ordering::SeqCst), 2);
        assert!(
            env.files
                .get(&Path::from("backups/20260315T120000Z/contacts.ndjson"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn retention_prunes_the_oldest_backups() {
        let mut env = filled(2);
        env.state.set_now(env.now);
        let cfg = json!({"data_types": ["tags"], "retention_count": 2});
        for (i, day) in [
            "2026-03-13T12:00:00Z",
            "2026-03-14T12:00:00Z",
            "2026-03-15T12:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            env.now = chrono::DateTime::parse_from_rfc3339(day).unwrap().to_utc();
            env.execution_id = format!("exec-{i}");
            let out = env
                .run(&KeapBackup, cfg.clone(), &contact(&[], &[]))
                .await
                .unwrap();
            if i == 2 {
                assert_eq!(out.output["pruned"], json!(["20260313T120000Z"]));
            }
        }
        let left = env
            .files
            .list_with_delimiter(Some(&Path::from("backups")))
            .await
            .unwrap();
        let dirs: Vec<String> = left
            .common_prefixes
            .iter()
            .map(|p| p.filename().unwrap().to_owned())
            .collect();
        assert_eq!(dirs, ["20260314T120000Z", "20260315T120000Z"]);
    }

    #[tokio::test]
    async fn dry_run_writes_nothing_and_rerun_backs_up_once() {
        let mut env = filled(2);
        env.state.set_now(env.now);
        env.dry_run = true;
        let out = env
            .run(&KeapBackup, json!({}), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(
            out.success
                && out
                    .message
                    .starts_with("Would back up contacts, companies, tags")
        );
        let listing = env.files.list_with_delimiter(None).await.unwrap();
        assert!(listing.objects.is_empty() && listing.common_prefixes.is_empty());
        env.dry_run = false;
        let first = env
            .run(&KeapBackup, json!({}), &contact(&[], &[]))
            .await
            .unwrap();
        env.crm.tags.clear();
        assert_eq!(
            env.run(&KeapBackup, json!({}), &contact(&[], &[]))
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            read(&env, "backups/20260315T120000Z/tags.ndjson")
                .await
                .len(),
            1
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(&KeapBackup, json!({"data_types": [], "retention_count": 0}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["data_types", "retention_count"]);
        assert_eq!(
            config_errors(&KeapBackup, json!({"data_types": ["tags", "tags"]}))[0].field,
            "data_types"
        );
        assert!(!config_errors(&KeapBackup, json!({"data_types": ["payment_methods"]})).is_empty());
        assert!(!config_errors(&KeapBackup, json!({"s3_bucket": "b"})).is_empty());
        assert!(config_errors(&KeapBackup, json!({})).is_empty());
    }
}
