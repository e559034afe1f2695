//! own_it: sets the contact's owner to one specific user: `owner_id` (`owner_source:
//! fixed`, default), or the user named in a contact field (`owner_source: field`, e.g. a
//! `_RepEmail` filled by a form), matched by user id or email without case; an empty field
//! falls back to `owner_id` when one is configured. The user is checked against the CRM's
//! user list: an unknown or inactive user fails with no write. With `only_if_unowned` a
//! contact that already has an owner is left alone. Setting the current owner again is a
//! no-op. Idempotent. (assign_it distributes contacts over a pool; own_it sets one owner.)

use crate::connectors::{Capability, User};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// Where the owner comes from.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OwnerSource {
    /// `owner_id` (default).
    #[default]
    Fixed,
    /// The user id or email in `owner_field`.
    Field,
}

/// Config of own_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The owner's user id (or email); required for `fixed`, the fallback for `field`.
    pub owner_id: Option<String>,
    /// `fixed` (default) or `field`.
    #[serde(default)]
    pub owner_source: OwnerSource,
    /// The contact field holding a user id or email; required for `field`.
    pub owner_field: Option<String>,
    /// Leave contacts that already have an owner alone; default false.
    #[serde(default)]
    pub only_if_unowned: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let fixed = self.owner_source == OwnerSource::Fixed;
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        check(
            &mut errors,
            fixed && blank(&self.owner_id),
            "owner_id",
            "is required for owner_source fixed",
        );
        check(
            &mut errors,
            !fixed && blank(&self.owner_field),
            "owner_field",
            "is required for owner_source field",
        );
        check(
            &mut errors,
            self.owner_id.is_some() && blank(&self.owner_id) && !fixed,
            "owner_id",
            "must not be empty",
        );
        check(
            &mut errors,
            fixed && self.owner_field.is_some(),
            "owner_field",
            "is only used with owner_source field",
        );
        finish(errors)
    }
}

/// The user with this id, or else this email (case-insensitive).
pub(crate) fn find_user<'a>(users: &'a [User], wanted: &str) -> Option<&'a User> {
    let wanted = wanted.trim();
    users.iter().find(|u| u.id == wanted).or_else(|| {
        users
            .iter()
            .find(|u| !u.email.trim().is_empty() && u.email.trim().eq_ignore_ascii_case(wanted))
    })
}

/// The contact's current owner, if any.
pub(crate) fn current_owner(contact: &Contact) -> Option<&str> {
    contact
        .owner_id
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
}

/// The own_it helper.
pub struct OwnIt;

impl Helper for OwnIt {
    const NAME: &'static str = "own_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Sets the contact's owner to a fixed user or the user named in a field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"owner_source": "field", "owner_field": "_RepEmail", "owner_id": "12", "only_if_unowned": true}"#;
    const OUTPUTS: &'static [&'static str] = &["owner_id", "previous_owner_id"];
    const REQUIRES: &'static [Capability] = &[Capability::Owners];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(OwnItStep(config)))
    }
}

struct OwnItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for OwnItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let previous = current_owner(contact);
        let prev = || previous.map_or(Value::Null, Value::from);
        if c.only_if_unowned
            && let Some(p) = previous
        {
            return Ok(Outcome::ok(format!("Already owned by {p}; left alone"))
                .with("owner_id", p)
                .with("previous_owner_id", p));
        }
        let from_field = match c.owner_source {
            OwnerSource::Field => c
                .owner_field
                .as_deref()
                .and_then(|f| contact.field(f.trim())),
            OwnerSource::Fixed => None,
        };
        let Some(wanted) = from_field.or(c.owner_id.as_deref()).map(str::trim) else {
            let f = c.owner_field.as_deref().unwrap_or_default();
            return Ok(
                Outcome::failed(format!("{f} is empty and no owner_id is set"))
                    .with("previous_owner_id", prev()),
            );
        };
        let users = ctx.crm.list_users().await?;
        let user = match find_user(&users, wanted) {
            None => {
                return Ok(Outcome::failed(format!("No CRM user matches {wanted:?}"))
                    .with("previous_owner_id", prev()));
            }
            Some(u) if !u.active => {
                return Ok(Outcome::failed(format!("User {} is inactive", u.id))
                    .with("previous_owner_id", prev()));
            }
            Some(u) => u,
        };
        let out = Outcome::ok("")
            .with("owner_id", user.id.clone())
            .with("previous_owner_id", prev());
        if previous == Some(user.id.as_str()) {
            let mut out = out;
            out.message = format!("{} already owns the contact", user.name);
            return Ok(out);
        }
        let mut out = out.change(Change::SetOwner {
            user_id: user.id.clone(),
        });
        out.message = format!("Owner set to {} ({})", user.name, user.id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::json;

    fn user(id: &str, email: &str, active: bool) -> User {
        User {
            id: id.into(),
            name: format!("User {id}"),
            email: email.into(),
            active,
        }
    }

    fn env() -> Env {
        let mut env = Env::new();
        env.crm.users = vec![
            user("12", "ann@x.com", true),
            user("15", "bob@x.com", true),
            user("18", "cy@x.com", false),
        ];
        env
    }

    fn owned(fields: &[(&str, &str)], owner: Option<&str>) -> Contact {
        Contact {
            owner_id: owner.map(Into::into),
            ..contact(fields, &[])
        }
    }

    fn set_owner(id: &str) -> Change {
        Change::SetOwner { user_id: id.into() }
    }

    #[tokio::test]
    async fn sets_a_fixed_owner() {
        let out = env()
            .run(&OwnIt, json!({"owner_id": "15"}), &owned(&[], Some("12")))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set_owner("15")]);
        assert_eq!(out.output["previous_owner_id"], json!("12"));
        assert_eq!(out.output["owner_id"], json!("15"));
    }

    #[tokio::test]
    async fn owner_from_a_field_by_email_with_fallback() {
        let cfg = json!({"owner_source": "field", "owner_field": "_Rep", "owner_id": "12"});
        let by_email = env()
            .run(
                &OwnIt,
                cfg.clone(),
                &owned(&[("_Rep", " BOB@x.com ")], None),
            )
            .await
            .unwrap();
        assert_eq!(by_email.changes, vec![set_owner("15")]);
        assert_eq!(by_email.output["previous_owner_id"], Value::Null);
        let fallback = env()
            .run(&OwnIt, cfg, &owned(&[("_Rep", " ")], None))
            .await
            .unwrap();
        assert_eq!(fallback.changes, vec![set_owner("12")]);
        let no_fallback = env()
            .run(
                &OwnIt,
                json!({"owner_source": "field", "owner_field": "_Rep"}),
                &owned(&[], None),
            )
            .await
            .unwrap();
        assert!(!no_fallback.success && no_fallback.changes.is_empty());
    }

    #[tokio::test]
    async fn unknown_or_inactive_users_fail_without_writes() {
        for id in ["99", "18"] {
            let out = env()
                .run(&OwnIt, json!({"owner_id": id}), &owned(&[], None))
                .await
                .unwrap();
            assert!(!out.success && out.changes.is_empty(), "{id}");
        }
    }

    #[tokio::test]
    async fn only_if_unowned_and_rerun_are_no_ops() {
        let skip = env()
            .run(
                &OwnIt,
                json!({"owner_id": "15", "only_if_unowned": true}),
                &owned(&[], Some("12")),
            )
            .await
            .unwrap();
        assert!(skip.success && skip.changes.is_empty());
        assert_eq!(skip.output["owner_id"], json!("12"));
        let unowned = env()
            .run(
                &OwnIt,
                json!({"owner_id": "15", "only_if_unowned": true}),
                &owned(&[], Some(" ")),
            )
            .await
            .unwrap();
        assert_eq!(unowned.changes, vec![set_owner("15")]);
        let same = env()
            .run(&OwnIt, json!({"owner_id": "15"}), &owned(&[], Some("15")))
            .await
            .unwrap();
        assert!(same.success && same.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(config_errors(&OwnIt, json!({}))[0].field, "owner_id");
        assert_eq!(
            config_errors(&OwnIt, json!({"owner_id": " "}))[0].field,
            "owner_id"
        );
        assert_eq!(
            config_errors(&OwnIt, json!({"owner_source": "field"}))[0].field,
            "owner_field"
        );
        let errs = config_errors(
            &OwnIt,
            json!({"owner_source": "field", "owner_field": "f", "owner_id": ""}),
        );
        assert_eq!(errs[0].field, "owner_id");
        assert!(!config_errors(&OwnIt, json!({"owner_id": "1", "owner_field": "f"})).is_empty());
    }
}
