//! merge_it: merges duplicate contacts into one, as the original product describes it
//! (the rebuild's field concatenation was combine_it again). Duplicates are the other
//! contacts equal to this one on every `match_on` key (case-insensitive); a contact with an
//! empty key fails, because nothing is ever matched on an empty key. The survivor is the
//! `oldest` (default) or `newest` by CRM creation time, or the `current` contact. Fields:
//! `fill_empty` (default) fills the survivor's empty fields from the most recently updated
//! loser that has a value; `most_recent` takes every field from the most recently updated
//! record that has a value. Then one `MergeContact` per loser unions its tags (and, in the
//! CRM's native merge, notes and orders) into the survivor and retires or deletes it. When
//! the survivor is another contact, its changes are addressed to it with `ForContact`.
//! `loser_tag_id` marks each loser before the merge (and is taken off the survivor after
//! the tag union). More than `max_merge` duplicates aborts with `needs_review`; the config
//! flag `dry_run` reports the plan without changes. A second run finds no duplicates, so
//! the helper converges.

use crate::connectors::{Capability, ContactQuery, search_all};
use crate::helpers::tagging::count_it_tags::by_id;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Which record survives.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Survivor {
    /// The earliest created (default).
    #[default]
    Oldest,
    /// The latest created.
    Newest,
    /// The contact the helper runs on, so its id stays valid for later campaign steps.
    Current,
}

/// How field values are chosen.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldPolicy {
    /// Keep the survivor's values; fill its empty fields (default).
    #[default]
    FillEmpty,
    /// The most recently updated record with a value wins.
    MostRecent,
}

/// Config of merge_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Keys that must all be equal; default `["email"]`.
    #[serde(default = "default_match_on")]
    pub match_on: Vec<String>,
    /// `oldest` (default), `newest` or `current`.
    #[serde(default)]
    pub survivor: Survivor,
    /// `fill_empty` (default) or `most_recent`.
    #[serde(default)]
    pub field_policy: FieldPolicy,
    /// Delete losers instead of marking them merged; default false.
    #[serde(default)]
    pub delete_losers: bool,
    /// Tag applied to each loser.
    pub loser_tag_id: Option<String>,
    /// Most duplicates merged in one run; more needs review. Default 5.
    #[serde(default = "default_max_merge")]
    pub max_merge: u32,
    /// Report the plan without making changes; default false.
    #[serde(default)]
    pub dry_run: bool,
    /// Goal achieved on the survivor after a merge.
    pub merged_goal: Option<String>,
    /// Goal achieved on the contact when it has no duplicates.
    pub no_duplicates_goal: Option<String>,
}

fn default_match_on() -> Vec<String> {
    vec!["email".into()]
}
fn default_max_merge() -> u32 {
    5
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.match_on.is_empty(),
            "match_on",
            "must list at least one key",
        );
        check(
            &mut errors,
            self.match_on.iter().any(|k| k.trim().is_empty()),
            "match_on",
            "keys must not be empty",
        );
        check(
            &mut errors,
            self.max_merge == 0 || self.max_merge > 100,
            "max_merge",
            "must be between 1 and 100",
        );
        for (name, v) in [
            ("loser_tag_id", &self.loser_tag_id),
            ("merged_goal", &self.merged_goal),
            ("no_duplicates_goal", &self.no_duplicates_goal),
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

/// The merge_it helper.
pub struct MergeIt;

impl Helper for MergeIt {
    const NAME: &'static str = "merge_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Merges duplicate contacts into one survivor, keeping the most complete data.";
    const EXAMPLE_CONFIG: &'static str = r#"{"match_on": ["email"], "survivor": "oldest", "field_policy": "fill_empty", "loser_tag_id": "990", "max_merge": 5, "merged_goal": "merged"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "survivor_id",
        "merged_ids",
        "fields_filled",
        "dry_run",
        "needs_review",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::Search, Capability::Merge, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(MergeItStep(config)))
    }
}

struct MergeItStep(Config);

/// Update time for ordering; unknown counts as oldest.
fn updated(c: &Contact) -> i64 {
    c.updated_at.unwrap_or(i64::MIN)
}

impl MergeItStep {
    fn survivor<'a>(&self, current: &'a Contact, group: &[&'a Contact]) -> &'a Contact {
        let ids = |a: &Contact, b: &Contact| by_id(&a.id, &b.id);
        match self.0.survivor {
            Survivor::Current => current,
            Survivor::Oldest => group
                .iter()
                .min_by(|a, b| {
                    let (x, y) = (
                        a.created_at.unwrap_or(i64::MAX),
                        b.created_at.unwrap_or(i64::MAX),
                    );
                    x.cmp(&y).then_with(|| ids(a, b))
                })
                .copied()
                .unwrap_or(current),
            Survivor::Newest => group
                .iter()
                .min_by(|a, b| {
                    let (x, y) = (
                        a.created_at.unwrap_or(i64::MIN),
                        b.created_at.unwrap_or(i64::MIN),
                    );
                    y.cmp(&x).then_with(|| ids(a, b))
                })
                .copied()
                .unwrap_or(current),
        }
    }

    /// The field writes that bring the losers' data into the survivor.
    fn fills(&self, survivor: &Contact, losers: &[&Contact]) -> Vec<(String, String)> {
        let keys: BTreeSet<&String> = losers.iter().flat_map(|l| l.fields.keys()).collect();
        let mut out = Vec::new();
        for key in keys {
            let mine = survivor.field(key);
            if self.0.field_policy == FieldPolicy::FillEmpty && mine.is_some() {
                continue;
            }
            // The most recently updated loser with a value; the first on ties.
            let best = losers.iter().filter(|l| l.field(key).is_some()).fold(
                None::<&&Contact>,
                |best, l| match best {
                    Some(b) if updated(b) >= updated(l) => Some(b),
                    _ => Some(l),
                },
            );
            let Some(best) = best else { continue };
            if mine.is_some() && updated(best) <= updated(survivor) {
                continue;
            }
            let value = best.fields.get(key).cloned().unwrap_or_default();
            if survivor.fields.get(key) != Some(&value) {
                out.push((key.clone(), value));
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl AsyncStep for MergeItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let mut parts = Vec::new();
        for key in &c.match_on {
            let key = key.trim();
            let Some(value) = contact.field(key) else {
                return Ok(Outcome::failed(format!(
                    "{key} is empty; duplicates are never matched on an empty key"
                ))
                .with("needs_review", false));
            };
            parts.push(ContactQuery::FieldEquals {
                field: key.to_owned(),
                value: value.trim().to_owned(),
            });
        }
        let limit = usize::try_from(c.max_merge)
            .unwrap_or(usize::MAX)
            .saturating_add(2);
        let mut dupes: Vec<Contact> = search_all(ctx.crm, &ContactQuery::And(parts), limit)
            .await?
            .into_iter()
            .filter(|d| d.id != contact.id)
            .collect();
        dupes.sort_by(|a, b| by_id(&a.id, &b.id));
        let base = Outcome::ok("").with("dry_run", c.dry_run);
        if dupes.is_empty() {
            let mut out = base
                .with("survivor_id", contact.id.clone())
                .with("merged_ids", Vec::<String>::new())
                .with("fields_filled", Vec::<String>::new())
                .with("needs_review", false);
            out.message = "No duplicates found".into();
            if !c.dry_run {
                out = out.branch(contact, None, c.no_duplicates_goal.as_deref());
            }
            return Ok(out);
        }
        if dupes.len() > c.max_merge as usize {
            let ids: Vec<&str> = dupes.iter().map(|d| d.id.as_str()).collect();
            return Ok(Outcome::failed(format!(
                "{} or more duplicates exceed max_merge {}; needs review",
                dupes.len(),
                c.max_merge
            ))
            .with("needs_review", true)
            .with("candidate_ids", ids)
            .with("dry_run", c.dry_run));
        }
        let group: Vec<&Contact> = std::iter::once(contact).chain(dupes.iter()).collect();
        let survivor = self.survivor(contact, &group);
        let losers: Vec<&Contact> = group
            .iter()
            .copied()
            .filter(|g| g.id != survivor.id)
            .collect();
        let fills = self.fills(survivor, &losers);
        let merged_ids: Vec<String> = losers.iter().map(|l| l.id.clone()).collect();
        let filled: Vec<String> = fills.iter().map(|(k, _)| k.clone()).collect();
        let mut out = base
            .with("survivor_id", survivor.id.clone())
            .with("merged_ids", merged_ids.clone())
            .with("fields_filled", filled.clone())
            .with("needs_review", false);
        if c.dry_run {
            out.message = format!(
                "Would merge {} into {} and fill {} fields",
                merged_ids.join(", "),
                survivor.id,
                filled.len()
            );
            return Ok(out);
        }
        let other = survivor.id != contact.id;
        let address = |change: Change, id: &str| {
            if id == contact.id {
                change
            } else {
                Change::ForContact {
                    contact_id: id.to_owned(),
                    change: Box::new(change),
                }
            }
        };
        let loser_tag = c.loser_tag_id.as_deref().map(str::trim);
        if let Some(tag) = loser_tag {
            for l in losers.iter().filter(|l| !l.has_tag(tag)) {
                out = out.change(address(
                    Change::ApplyTag {
                        tag_id: tag.to_owned(),
                    },
                    &l.id,
                ));
            }
        }
        let mut on_survivor: Vec<Change> = fills
            .into_iter()
            .map(|(field, value)| Change::SetField {
                field,
                value: Some(value),
            })
            .collect();
        on_survivor.extend(losers.iter().map(|l| Change::MergeContact {
            loser_id: l.id.clone(),
            delete_loser: c.delete_losers,
        }));
        if let Some(tag) = loser_tag.filter(|t| other && !survivor.has_tag(t)) {
            on_survivor.push(Change::RemoveTag {
                tag_id: tag.to_owned(),
            });
        }
        if let Some(goal) = c.merged_goal.as_deref() {
            on_survivor.push(Change::AchieveGoal {
                call_name: goal.trim().to_owned(),
            });
        }
        for change in on_survivor {
            out = out.change(address(change, &survivor.id));
        }
        out.message = format!(
            "Merging {} into {}; {} fields filled",
            merged_ids.join(", "),
            survivor.id,
            filled.len()
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, set};
    use serde_json::json;

    fn person(id: &str, created: i64, updated: i64, fields: &[(&str, &str)]) -> Contact {
        Contact {
            id: id.into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created_at: Some(created),
            updated_at: Some(updated),
            ..Contact::default()
        }
    }

    /// The triggering contact 30 (newest), its duplicates 10 (oldest) and 20, and 40 with
    /// another email.
    fn env() -> (Env, Contact) {
        let me = person(
            "30",
            300,
            900,
            &[("email", "ada@x.com"), ("phone", "555"), ("city", "Paris")],
        );
        let mut env = Env::new();
        env.crm.contacts = vec![
            person(
                "10",
                100,
                100,
                &[("email", "ADA@x.com"), ("city", "London")],
            ),
            person(
                "20",
                200,
                500,
                &[
                    ("email", "ada@x.com "),
                    ("company", "Acme"),
                    ("phone", "444"),
                ],
            ),
            me.clone(),
            person("40", 50, 50, &[("email", "bob@x.com")]),
        ];
        (env, me)
    }

    fn on(id: &str, change: Change) -> Change {
        Change::ForContact {
            contact_id: id.into(),
            change: Box::new(change),
        }
    }

    fn merge(id: &str) -> Change {
        Change::MergeContact {
            loser_id: id.into(),
            delete_loser: false,
        }
    }

    #[tokio::test]
    async fn merges_into_the_oldest_filling_its_empty_fields() {
        let (env, me) = env();
        let cfg = json!({"loser_tag_id": "990", "merged_goal": "merged"});
        let out = env.run(&MergeIt, cfg, &me).await.unwrap();
        assert_eq!(out.output["survivor_id"], json!("10"));
        assert_eq!(out.output["merged_ids"], json!(["30", "20"]));
        assert_eq!(out.output["fields_filled"], json!(["company", "phone"]));
        let tag = |id: &str| Change::ApplyTag { tag_id: id.into() };
        assert_eq!(
            out.changes,
            vec![
                tag("990"),
                on("20", tag("990")),
                on("10", set("company", "Acme")),
                on("10", set("phone", "555")),
                on("10", merge("30")),
                on("10", merge("20")),
                on(
                    "10",
                    Change::RemoveTag {
                        tag_id: "990".into()
                    }
                ),
                on(
                    "10",
                    Change::AchieveGoal {
                        call_name: "merged".into()
                    }
                ),
            ]
        );
    }

    #[tokio::test]
    async fn current_survivor_with_most_recent_values() {
        let (env, me) = env();
        let cfg =
            json!({"survivor": "current", "field_policy": "most_recent", "delete_losers": true});
        let out = env.run(&MergeIt, cfg, &me).await.unwrap();
        assert_eq!(out.output["survivor_id"], json!("30"));
        let gone = |id: &str| Change::MergeContact {
            loser_id: id.into(),
            delete_loser: true,
        };
        // 30 is the most recently updated, so only its empty company is filled.
        assert_eq!(
            out.changes,
            vec![set("company", "Acme"), gone("10"), gone("20")]
        );
    }

    #[tokio::test]
    async fn most_recent_overrides_an_older_survivor() {
        let (env, me) = env();
        let out = env
            .run(&MergeIt, json!({"field_policy": "most_recent"}), &me)
            .await
            .unwrap();
        assert_eq!(out.output["survivor_id"], json!("10"));
        // The newer loser's spelling of the email wins too.
        assert_eq!(
            out.output["fields_filled"],
            json!(["city", "company", "email", "phone"])
        );
        assert_eq!(out.changes[0], on("10", set("city", "Paris")));
    }

    #[tokio::test]
    async fn newest_survivor_is_picked_by_creation_time() {
        let (env, _) = env();
        let twenty = env.crm.contacts[1].clone();
        let out = env
            .run(&MergeIt, json!({"survivor": "newest"}), &twenty)
            .await
            .unwrap();
        assert_eq!(out.output["survivor_id"], json!("30"));
        assert_eq!(out.output["merged_ids"], json!(["20", "10"]));
        assert_eq!(out.changes[0], on("30", set("company", "Acme")));
    }

    #[tokio::test]
    async fn no_duplicates_fires_its_goal_and_a_rerun_converges() {
        let (mut env, me) = env();
        env.crm.contacts.retain(|c| c.id == "30" || c.id == "40");
        let out = env
            .run(&MergeIt, json!({"no_duplicates_goal": "unique"}), &me)
            .await
            .unwrap();
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "unique".into()
            }]
        );
        assert_eq!(out.output["survivor_id"], json!("30"));
        assert_eq!(out.message, "No duplicates found");
    }

    #[tokio::test]
    async fn too_many_duplicates_need_review() {
        let (env, me) = env();
        let out = env
            .run(&MergeIt, json!({"max_merge": 1}), &me)
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(out.output["needs_review"], json!(true));
        assert_eq!(out.output["candidate_ids"], json!(["10", "20"]));
    }

    #[tokio::test]
    async fn dry_run_reports_the_plan_without_changes() {
        let (env, me) = env();
        let out = env
            .run(&MergeIt, json!({"dry_run": true, "merged_goal": "m"}), &me)
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["dry_run"], json!(true));
        assert_eq!(out.output["merged_ids"], json!(["30", "20"]));
        assert_eq!(out.message, "Would merge 30, 20 into 10 and fill 2 fields");
    }

    #[tokio::test]
    async fn an_empty_match_key_refuses_to_merge() {
        let (env, _) = env();
        let blank = person("50", 1, 1, &[("email", "  ")]);
        let out = env.run(&MergeIt, json!({}), &blank).await.unwrap();
        assert!(!out.success && out.changes.is_empty());
        let two_keys = env
            .run(
                &MergeIt,
                json!({"match_on": ["email", "phone"]}),
                &env.crm.contacts[2].clone(),
            )
            .await
            .unwrap();
        assert_eq!(two_keys.output["survivor_id"], json!("30"));
        assert_eq!(two_keys.output["merged_ids"], json!([]));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &MergeIt,
            json!({"match_on": [], "max_merge": 0, "loser_tag_id": " ", "merged_goal": "", "no_duplicates_goal": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "match_on",
                "max_merge",
                "loser_tag_id",
                "merged_goal",
                "no_duplicates_goal"
            ]
        );
        assert_eq!(
            config_errors(&MergeIt, json!({"match_on": [""]}))[0].field,
            "match_on"
        );
        assert!(!config_errors(&MergeIt, json!({"survivor": "random"})).is_empty());
        assert!(config_errors(&MergeIt, json!({})).is_empty());
    }
}
