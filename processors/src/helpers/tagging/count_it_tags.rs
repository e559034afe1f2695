//! count_it_tags: counts how many contacts in the whole CRM account hold a tag (a
//! population count, e.g. "the first 100 buyers get the bonus"), then branches on a
//! threshold: `count >= threshold` is "met". Every page of the tag search is read (the
//! rebuild stopped at 1000, so later positions came out as 0). The contact's position is
//! its rank among the tagged contacts ordered by contact id (numeric ids numerically):
//! the CRM search does not report tag-application dates. A contact whose snapshot holds
//! the tag but whom the search does not list yet (search indexes lag) is counted too.
//! The count and position can be saved to fields. Branch tags equal to `no_tag` or empty
//! are skipped. Not idempotent: the count changes as contacts are tagged; for a hard cap
//! combine with limit_it's atomic counter.

use crate::connectors::{Capability, ContactQuery};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::Value;
use std::cmp::Ordering;

/// Config of count_it_tags.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The tag counted.
    pub tag_id: String,
    /// The branch threshold; `count >= threshold` is "met".
    pub threshold: Option<u64>,
    /// Tag applied when the threshold is met; `no_tag` or empty skips it.
    pub threshold_met_tag: Option<String>,
    /// Tag applied when it is not met; `no_tag` or empty skips it.
    pub threshold_not_met_tag: Option<String>,
    /// Goal achieved when the threshold is met.
    pub threshold_met_goal: Option<String>,
    /// Goal achieved when it is not met.
    pub threshold_not_met_goal: Option<String>,
    /// Field that receives the total count.
    pub save_count_to: Option<String>,
    /// Field that receives the contact's position among the tagged contacts.
    pub save_position_to: Option<String>,
}

/// A configured tag or goal, unless empty or `no_tag`.
fn output(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("no_tag"))
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.tag_id.trim().is_empty(),
            "tag_id",
            "must not be empty",
        );
        let branches = [
            ("threshold_met_tag", &self.threshold_met_tag),
            ("threshold_not_met_tag", &self.threshold_not_met_tag),
            ("threshold_met_goal", &self.threshold_met_goal),
            ("threshold_not_met_goal", &self.threshold_not_met_goal),
        ];
        for (name, value) in branches {
            check(
                &mut errors,
                self.threshold.is_none() && output(value.as_ref()).is_some(),
                name,
                "needs a threshold",
            );
        }
        for (name, value) in [
            ("save_count_to", &self.save_count_to),
            ("save_position_to", &self.save_position_to),
        ] {
            check(
                &mut errors,
                value.as_deref().is_some_and(|v| v.trim().is_empty()),
                name,
                "must not be empty",
            );
        }
        check(
            &mut errors,
            self.save_count_to.is_some() && self.save_count_to == self.save_position_to,
            "save_position_to",
            "must differ from save_count_to",
        );
        finish(errors)
    }
}

/// The count_it_tags helper.
pub struct CountItTags;

impl Helper for CountItTags {
    const NAME: &'static str = "count_it_tags";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str = "Counts the contacts holding a tag, branches on a threshold and saves the contact's position.";
    const EXAMPLE_CONFIG: &'static str = r#"{"tag_id": "101", "threshold": 100, "threshold_met_tag": "102", "threshold_not_met_goal": "seatLeft", "save_count_to": "_BuyerCount", "save_position_to": "_BuyerNumber"}"#;
    const OUTPUTS: &'static [&'static str] = &["total_count", "position", "threshold_met"];
    const REQUIRES: &'static [Capability] = &[
        Capability::Search,
        Capability::Tags,
        Capability::Goals,
        Capability::Fields,
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(CountItTagsStep(config)))
    }
}

struct CountItTagsStep(Config);

/// Contact ids in order: numerically when both are numbers, else as text (numbers first).
pub(crate) fn by_id(a: &str, b: &str) -> Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[async_trait::async_trait]
impl AsyncStep for CountItTagsStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let tag = c.tag_id.trim();
        let query = ContactQuery::HasTag {
            tag_id: tag.to_owned(),
        };
        let mut ids: Vec<String> = Vec::new();
        let mut page: Option<String> = None;
        let mut pages = 0usize;
        loop {
            let p = ctx.crm.search_contacts(&query, page.as_deref()).await?;
            pages += 1;
            ids.extend(p.contacts.into_iter().map(|c| c.id));
            match p.next {
                Some(next) if Some(&next) != page.as_ref() => page = Some(next),
                _ => break,
            }
        }
        ids.sort_by(|a, b| by_id(a, b));
        ids.dedup();
        let mut out = Outcome::ok("");
        if contact.has_tag(tag) && !ids.contains(&contact.id) {
            ids.push(contact.id.clone());
            ids.sort_by(|a, b| by_id(a, b));
            out = out
                .log("The contact holds the tag but the search does not list it yet; counted it.");
        }
        let total = ids.len() as u64;
        let position = ids.iter().position(|id| *id == contact.id).map(|i| i + 1);
        let met = c.threshold.map(|t| total >= t);
        out = out
            .with("total_count", total)
            .with("position", position.map_or(Value::Null, Value::from))
            .with("threshold_met", met.map_or(Value::Null, Value::from))
            .log(format!("Read {pages} search pages for tag {tag}."));
        out.message = match (met, c.threshold) {
            (Some(m), Some(t)) => format!(
                "{total} contacts hold tag {tag}; threshold {t} {}",
                if m { "met" } else { "not met" }
            ),
            _ => format!("{total} contacts hold tag {tag}"),
        };
        if let Some(f) = c.save_count_to.as_deref() {
            out = out.set_field(contact, f.trim(), total.to_string());
        }
        if let Some(f) = c.save_position_to.as_deref() {
            match position {
                Some(p) => out = out.set_field(contact, f.trim(), p.to_string()),
                None => {
                    out = out.log(format!(
                        "The contact does not hold tag {tag}; {f} is left unchanged."
                    ));
                }
            }
        }
        out = match met {
            Some(true) => out.branch(
                contact,
                output(c.threshold_met_tag.as_ref()),
                output(c.threshold_met_goal.as_ref()),
            ),
            Some(false) => out.branch(
                contact,
                output(c.threshold_not_met_tag.as_ref()),
                output(c.threshold_not_met_goal.as_ref()),
            ),
            None => out,
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn tagged(id: &str, tags: &[&str]) -> Contact {
        let mut c = contact(&[], tags);
        c.id = id.into();
        c
    }

    /// An env holding contacts 1..=n with tag 101, plus a few without it.
    fn env_with(n: usize) -> Env {
        let mut env = Env::new();
        for i in (1..=n).rev() {
            env.crm.contacts.push(tagged(&i.to_string(), &["101"]));
        }
        env.crm.contacts.push(tagged("5000", &["7"]));
        env
    }

    #[tokio::test]
    async fn counts_every_page_and_ranks_by_numeric_id() {
        let env = env_with(1250);
        let cfg = json!({"tag_id": "101", "save_count_to": "n", "save_position_to": "p"});
        let out = env
            .run(&CountItTags, cfg, &tagged("1100", &["101"]))
            .await
            .unwrap();
        assert_eq!(out.output["total_count"], json!(1250));
        assert_eq!(out.output["position"], json!(1100));
        assert_eq!(out.output["threshold_met"], Value::Null);
        assert_eq!(out.changes, vec![set("n", "1250"), set("p", "1100")]);
        assert_eq!(out.message, "1250 contacts hold tag 101");
    }

    #[tokio::test]
    async fn threshold_met_when_count_reaches_it() {
        let env = env_with(3);
        let cfg = json!({"tag_id": "101", "threshold": 3, "threshold_met_tag": "8", "threshold_met_goal": "full", "threshold_not_met_tag": "9"});
        let out = env
            .run(&CountItTags, cfg, &tagged("2", &["101"]))
            .await
            .unwrap();
        assert_eq!(out.output["threshold_met"], json!(true));
        assert_eq!(out.output["position"], json!(2));
        assert_eq!(
            out.changes,
            vec![
                Change::ApplyTag { tag_id: "8".into() },
                Change::AchieveGoal {
                    call_name: "full".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn threshold_not_met_below_and_no_tag_is_skipped() {
        let env = env_with(3);
        let cfg = json!({"tag_id": "101", "threshold": 4, "threshold_not_met_tag": "no_tag", "threshold_not_met_goal": "seatLeft"});
        let out = env
            .run(&CountItTags, cfg, &tagged("1", &["101"]))
            .await
            .unwrap();
        assert_eq!(out.output["threshold_met"], json!(false));
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "seatLeft".into()
            }]
        );
        assert_eq!(out.message, "3 contacts hold tag 101; threshold 4 not met");
    }

    #[tokio::test]
    async fn a_freshly_tagged_contact_missing_from_the_search_is_counted() {
        let env = env_with(2);
        let cfg = json!({"tag_id": "101", "save_position_to": "p"});
        let out = env
            .run(&CountItTags, cfg, &tagged("10", &["101"]))
            .await
            .unwrap();
        assert_eq!(out.output["total_count"], json!(3));
        assert_eq!(out.output["position"], json!(3));
        assert_eq!(out.logs.len(), 2, "{:?}", out.logs);
    }

    #[tokio::test]
    async fn an_untagged_contact_has_no_position_and_keeps_its_field() {
        let env = env_with(2);
        let cfg = json!({"tag_id": "101", "save_count_to": "n", "save_position_to": "p"});
        let c = Contact {
            fields: [("n".to_owned(), "2".to_owned())].into(),
            ..tagged("5000", &["7"])
        };
        let out = env.run(&CountItTags, cfg, &c).await.unwrap();
        assert_eq!(out.output["position"], Value::Null);
        assert!(out.changes.is_empty(), "{:?}", out.changes);
    }

    #[tokio::test]
    async fn no_tagged_contacts_counts_zero_and_text_ids_sort_after_numbers() {
        let env = Env::new();
        let out = env
            .run(
                &CountItTags,
                json!({"tag_id": "101", "threshold": 1}),
                &tagged("a", &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["total_count"], json!(0));
        assert_eq!(out.output["threshold_met"], json!(false));
        let mut ids = vec!["b", "10", "a", "9"];
        ids.sort_by(|a, b| by_id(a, b));
        assert_eq!(ids, vec!["9", "10", "a", "b"]);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&CountItTags, json!({})).is_empty());
        let errs = config_errors(
            &CountItTags,
            json!({"tag_id": " ", "threshold_met_tag": "5", "save_count_to": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["tag_id", "threshold_met_tag", "save_count_to"]);
        assert!(
            !config_errors(
                &CountItTags,
                json!({"tag_id": "1", "save_count_to": "x", "save_position_to": "x"})
            )
            .is_empty()
        );
        assert!(!config_errors(&CountItTags, json!({"tag_id": "1", "threshold": -1})).is_empty());
        assert!(
            config_errors(
                &CountItTags,
                json!({"tag_id": "1", "threshold_met_tag": "no_tag"})
            )
            .is_empty()
        );
    }
}
