//! assign_it: assigns the contact's owner from a pool of users, like Keap's native round
//! robin ("one record per round" or "distribute by ratio"). `round_robin` (default) gives
//! each active user one contact in turn; `weighted` gives user i `weights[i]` consecutive
//! contacts per round; `fixed` always picks `owner_id` (the rebuild's only behaviour, which
//! made it own_it). The rotation is an atomic platform counter per helper instance
//! (`assign_it/<instance>/rotation`, incremented once per execution, so a redelivered
//! execution picks the same user). Users the CRM lists as inactive, or does not list, are
//! skipped. With `skip_if_owned` (default) a contact that already has an owner is left
//! alone and the rotation does not move; otherwise every run moves it on. `owner_field`
//! (legacy) writes the user id into a field instead of the native owner.

use super::own_it::current_owner;
use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// How the owner is chosen.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One contact per user in turn (default).
    #[default]
    RoundRobin,
    /// `weights[i]` contacts for user i per round.
    Weighted,
    /// Always `owner_id`.
    Fixed,
}

/// Config of assign_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `round_robin` (default), `weighted` or `fixed`.
    #[serde(default)]
    pub mode: Mode,
    /// The pool of user ids; required unless `fixed`. Example: `["12", "15", "18"]`.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// Share of each user in `user_ids`, for `weighted`.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// The owner for `fixed`.
    pub owner_id: Option<String>,
    /// Leave contacts that already have an owner alone; default true.
    #[serde(default = "default_true")]
    pub skip_if_owned: bool,
    /// Write the user id into this field instead of the native owner (legacy).
    pub owner_field: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let fixed = self.mode == Mode::Fixed;
        let weighted = self.mode == Mode::Weighted;
        check(
            &mut errors,
            !fixed && self.user_ids.is_empty(),
            "user_ids",
            "must list at least one user for this mode",
        );
        check(
            &mut errors,
            self.user_ids.iter().any(|u| u.trim().is_empty()),
            "user_ids",
            "user ids must not be empty",
        );
        let distinct: BTreeSet<&str> = self.user_ids.iter().map(|u| u.trim()).collect();
        check(
            &mut errors,
            distinct.len() != self.user_ids.len(),
            "user_ids",
            "lists a user twice; use weights instead",
        );
        check(
            &mut errors,
            weighted && self.weights.len() != self.user_ids.len(),
            "weights",
            "needs one weight per user id",
        );
        check(
            &mut errors,
            weighted && self.weights.iter().all(|w| *w == 0),
            "weights",
            "must give at least one user a weight above 0",
        );
        check(
            &mut errors,
            !weighted && !self.weights.is_empty(),
            "weights",
            "is only used with mode weighted",
        );
        check(
            &mut errors,
            fixed && self.owner_id.as_deref().is_none_or(|o| o.trim().is_empty()),
            "owner_id",
            "is required for mode fixed",
        );
        check(
            &mut errors,
            !fixed && self.owner_id.is_some(),
            "owner_id",
            "is only used with mode fixed",
        );
        check(
            &mut errors,
            self.owner_field
                .as_deref()
                .is_some_and(|f| f.trim().is_empty()),
            "owner_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The assign_it helper.
pub struct AssignIt;

impl Helper for AssignIt {
    const NAME: &'static str = "assign_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Assigns the contact's owner from a pool of users by round robin or weights.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"mode": "weighted", "user_ids": ["12", "15", "18"], "weights": [2, 1, 1]}"#;
    const OUTPUTS: &'static [&'static str] = &["owner_id", "previous_owner_id", "rotation_index"];
    const REQUIRES: &'static [Capability] = &[Capability::Owners];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(AssignItStep(config)))
    }
}

struct AssignItStep(Config);

impl AssignItStep {
    /// The contact's current owner: the native owner, or `owner_field`'s value.
    fn previous<'a>(&self, contact: &'a Contact) -> Option<&'a str> {
        match &self.0.owner_field {
            Some(f) => contact.field(f.trim()).map(str::trim),
            None => current_owner(contact),
        }
    }

    /// The change that makes `user_id` the owner.
    fn assign(&self, user_id: &str) -> Change {
        match &self.0.owner_field {
            Some(f) => Change::SetField {
                field: f.trim().to_owned(),
                value: Some(user_id.to_owned()),
            },
            None => Change::SetOwner {
                user_id: user_id.to_owned(),
            },
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for AssignItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let previous = self.previous(contact);
        let prev = previous.map_or(Value::Null, Value::from);
        if c.skip_if_owned
            && let Some(p) = previous
        {
            return Ok(Outcome::ok(format!("Already owned by {p}; left alone"))
                .with("owner_id", p)
                .with("previous_owner_id", p)
                .with("rotation_index", Value::Null));
        }
        let users = ctx.crm.list_users().await?;
        let active = |id: &str| users.iter().any(|u| u.id == id && u.active);
        let (chosen, index) = if c.mode == Mode::Fixed {
            let id = c.owner_id.as_deref().unwrap_or_default().trim();
            if !active(id) {
                return Ok(Outcome::failed(format!("User {id} is unknown or inactive"))
                    .with("previous_owner_id", prev));
            }
            (id.to_owned(), Value::Null)
        } else {
            // (index in user_ids, share per round) of each active user.
            let pool: Vec<(usize, u64)> = c
                .user_ids
                .iter()
                .enumerate()
                .filter(|(_, id)| active(id.trim()))
                .map(|(i, _)| (i, u64::from(c.weights.get(i).copied().unwrap_or(1))))
                .filter(|(_, w)| *w > 0)
                .collect();
            let round: u64 = pool.iter().map(|(_, w)| w).sum();
            if round == 0 {
                return Ok(Outcome::failed("No user in the pool is active")
                    .with("previous_owner_id", prev));
            }
            let key = format!("assign_it/{}/rotation", ctx.instance);
            let n = ctx.state.incr(&key, 1, ctx.execution_id, None).await?;
            let mut slot = (n - 1).rem_euclid(i64::try_from(round).unwrap_or(i64::MAX)) as u64;
            let mut pick = pool[0].0;
            for (i, w) in &pool {
                if slot < *w {
                    pick = *i;
                    break;
                }
                slot -= w;
            }
            (c.user_ids[pick].trim().to_owned(), Value::from(pick))
        };
        let mut out = Outcome::ok("")
            .with("owner_id", chosen.clone())
            .with("previous_owner_id", prev)
            .with("rotation_index", index);
        if previous == Some(chosen.as_str()) {
            out.message = format!("{chosen} already owns the contact");
            return Ok(out);
        }
        out.message = format!("Assigned to {chosen}");
        Ok(out.change(self.assign(&chosen)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::User;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn env(inactive: &[&str]) -> Env {
        let mut env = Env::new();
        env.crm.users = ["12", "15", "18", "20"]
            .iter()
            .map(|id| User {
                id: (*id).into(),
                name: format!("U{id}"),
                email: format!("{id}@x.com"),
                active: !inactive.contains(id),
            })
            .collect();
        env
    }

    /// The owners picked by `runs` executions, each with its own execution id.
    async fn picks(env: &mut Env, cfg: &Value, runs: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..runs {
            env.execution_id = format!("exec-{i}");
            let o = env
                .run(&AssignIt, cfg.clone(), &contact(&[], &[]))
                .await
                .unwrap();
            out.push(o.output["owner_id"].as_str().unwrap().to_owned());
        }
        out
    }

    #[tokio::test]
    async fn round_robin_rotates_and_skips_inactive_users() {
        let mut env = env(&["15"]);
        let cfg = json!({"user_ids": ["12", "15", "18"]});
        assert_eq!(
            picks(&mut env, &cfg, 5).await,
            vec!["12", "18", "12", "18", "12"]
        );
        let again = env.run(&AssignIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(
            again.output["owner_id"],
            json!("12"),
            "same execution, same pick"
        );
        assert_eq!(
            again.changes,
            vec![Change::SetOwner {
                user_id: "12".into()
            }]
        );
        assert_eq!(again.output["rotation_index"], json!(0));
    }

    #[tokio::test]
    async fn weighted_shares_by_ratio() {
        let mut env = env(&[]);
        let cfg = json!({"mode": "weighted", "user_ids": ["12", "15", "18"], "weights": [2, 1, 0]});
        assert_eq!(
            picks(&mut env, &cfg, 6).await,
            vec!["12", "12", "15", "12", "12", "15"]
        );
    }

    #[tokio::test]
    async fn owned_contacts_are_skipped_without_moving_the_rotation() {
        let mut env = env(&[]);
        let cfg = json!({"user_ids": ["12", "15"]});
        let owned = Contact {
            owner_id: Some("20".into()),
            ..contact(&[], &[])
        };
        env.execution_id = "e-owned".into();
        let out = env.run(&AssignIt, cfg.clone(), &owned).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["owner_id"], json!("20"));
        assert_eq!(picks(&mut env, &cfg, 1).await, vec!["12"]);
        let cfg = json!({"user_ids": ["12", "15"], "skip_if_owned": false});
        env.execution_id = "e-reassign".into();
        let moved = env.run(&AssignIt, cfg, &owned).await.unwrap();
        assert_eq!(
            moved.changes,
            vec![Change::SetOwner {
                user_id: "15".into()
            }]
        );
        assert_eq!(moved.output["previous_owner_id"], json!("20"));
    }

    #[tokio::test]
    async fn fixed_mode_and_owner_field() {
        let env = env(&["18"]);
        let out = env
            .run(
                &AssignIt,
                json!({"mode": "fixed", "owner_id": "15", "owner_field": "_Rep"}),
                &contact(&[], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_Rep", "15")]);
        let inactive = env
            .run(
                &AssignIt,
                json!({"mode": "fixed", "owner_id": "18"}),
                &contact(&[], &[]),
            )
            .await
            .unwrap();
        assert!(!inactive.success && inactive.changes.is_empty());
        let kept = env
            .run(
                &AssignIt,
                json!({"mode": "fixed", "owner_id": "15", "owner_field": "_Rep"}),
                &contact(&[("_Rep", "12")], &[]),
            )
            .await
            .unwrap();
        assert!(kept.changes.is_empty());
    }

    #[tokio::test]
    async fn an_all_inactive_pool_fails() {
        let env = env(&["12", "15"]);
        let out = env
            .run(
                &AssignIt,
                json!({"user_ids": ["12", "15", "99"]}),
                &contact(&[], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(config_errors(&AssignIt, json!({}))[0].field, "user_ids");
        assert_eq!(
            config_errors(&AssignIt, json!({"user_ids": ["1", "1"]}))[0].field,
            "user_ids"
        );
        let errs = config_errors(
            &AssignIt,
            json!({"mode": "weighted", "user_ids": ["1", ""], "weights": [0], "owner_id": "1", "owner_field": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["user_ids", "weights", "weights", "owner_id", "owner_field"]
        );
        assert_eq!(
            config_errors(&AssignIt, json!({"mode": "fixed"}))[0].field,
            "owner_id"
        );
        assert!(!config_errors(&AssignIt, json!({"user_ids": ["1"], "weights": [1]})).is_empty());
    }
}
