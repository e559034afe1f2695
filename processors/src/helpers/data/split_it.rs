//! split_it: a split test over 2–5 variants (A–E), each a tag id (`mode: tag`) or a goal
//! call name (`mode: goal`). `split_method` chooses the variant: `counter` (default) takes
//! the next value of a shared atomic counter of this helper instance, so the population
//! goes A, B, C, A, B, C, ...; `weighted_random` draws with `weights` (percentages summing
//! to 100) from the execution's seeded RNG; `state_field` reads the contact's last variant
//! from `state_field` and advances one step, which rotates one contact through the
//! variants on repeated runs (every new contact starts at A, so it does not split a
//! population). With `sticky` (default) a contact that already has a variant — a letter
//! in `state_field` or one of the variant tags — keeps it for `counter` and
//! `weighted_random`. The variant's letter is recorded in `state_field` when one is set. In
//! tag mode the other variants' tags are removed, so a contact is in one variant only. A
//! redelivered execution picks the same variant (the counter increment and the draw are
//! both pinned to the execution). Non-idempotent unless sticky.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use rand::Rng;
use serde::Deserialize;

/// What a variant is.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A tag id per variant.
    Tag,
    /// A goal call name per variant.
    Goal,
}

/// How the variant is chosen.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A shared rotation counter (default).
    #[default]
    Counter,
    /// A random draw with `weights`.
    WeightedRandom,
    /// The variant after the one in `state_field`.
    StateField,
}

/// Config of split_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `tag` or `goal`.
    pub mode: Mode,
    /// Variant A: tag id or goal call name.
    pub option_a: String,
    /// Variant B.
    pub option_b: String,
    /// Variant C (split_count ≥ 3).
    pub option_c: Option<String>,
    /// Variant D (split_count ≥ 4).
    pub option_d: Option<String>,
    /// Variant E (split_count = 5).
    pub option_e: Option<String>,
    /// Number of variants, 2–5; default 2.
    #[serde(default = "default_count")]
    pub split_count: usize,
    /// `counter` (default), `weighted_random` or `state_field`.
    #[serde(default)]
    pub split_method: Method,
    /// Percentages per variant summing to 100; required for `weighted_random`.
    pub weights: Option<Vec<u32>>,
    /// Field holding the contact's variant letter; required for `state_field`.
    pub state_field: Option<String>,
    /// Keep the variant a contact already has; default true.
    #[serde(default = "default_true")]
    pub sticky: bool,
}

const fn default_count() -> usize {
    2
}
const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];

impl Config {
    /// The options in use, in variant order (blank entries stay blank for validation).
    fn options(&self) -> Vec<&str> {
        let all = [
            Some(&self.option_a),
            Some(&self.option_b),
            self.option_c.as_ref(),
            self.option_d.as_ref(),
            self.option_e.as_ref(),
        ];
        all.iter()
            .take(self.split_count.clamp(2, 5))
            .map(|o| o.map_or("", |s| s.trim()))
            .collect()
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            !(2..=5).contains(&self.split_count),
            "split_count",
            "must be between 2 and 5",
        );
        let names = ["option_a", "option_b", "option_c", "option_d", "option_e"];
        let options = self.options();
        for (i, o) in options.iter().enumerate() {
            check(
                &mut errors,
                o.is_empty(),
                names[i],
                "is required for this split_count",
            );
        }
        let extra = [&self.option_c, &self.option_d, &self.option_e];
        for (i, o) in extra.iter().enumerate() {
            check(
                &mut errors,
                o.is_some() && i + 2 >= self.split_count,
                names[i + 2],
                "is beyond split_count",
            );
        }
        let mut seen = options.clone();
        seen.sort_unstable();
        seen.dedup();
        check(
            &mut errors,
            seen.len() < options.len(),
            "option_b",
            "each variant needs its own option",
        );
        let weighted = self.split_method == Method::WeightedRandom;
        match &self.weights {
            None => check(
                &mut errors,
                weighted,
                "weights",
                "is required for weighted_random",
            ),
            Some(_) if !weighted => errors.push(FieldError::new(
                "weights",
                "is only used with weighted_random",
            )),
            Some(w) => check(
                &mut errors,
                w.len() != self.split_count || w.iter().sum::<u32>() != 100 || w.contains(&0),
                "weights",
                "needs one weight above 0 per variant, summing to 100",
            ),
        }
        check(
            &mut errors,
            self.split_method == Method::StateField && self.state_field.is_none(),
            "state_field",
            "is required for split_method state_field",
        );
        check(
            &mut errors,
            self.state_field
                .as_deref()
                .is_some_and(|s| s.trim().is_empty()),
            "state_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The split_it helper.
pub struct SplitIt;

impl Helper for SplitIt {
    const NAME: &'static str = "split_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Splits contacts over 2–5 variants by rotation or weighted draw, as a tag or goal.";
    const EXAMPLE_CONFIG: &'static str = r#"{"mode": "tag", "option_a": "201", "option_b": "202"}"#;
    const OUTPUTS: &'static [&'static str] = &["variant", "option", "method", "sticky"];
    const REQUIRES: &'static [Capability] =
        &[Capability::Tags, Capability::Goals, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(SplitItStep(config)))
    }
}

struct SplitItStep(Config);

impl SplitItStep {
    /// The variant index recorded in `state_field`, if any.
    fn recorded(&self, contact: &Contact, count: usize) -> Option<usize> {
        let value = contact.field(self.0.state_field.as_deref()?.trim())?;
        LETTERS[..count]
            .iter()
            .position(|l| l.eq_ignore_ascii_case(value.trim()))
    }

    async fn choose(
        &self,
        ctx: &Ctx<'_>,
        contact: &Contact,
        count: usize,
    ) -> Result<(usize, bool), StepError> {
        let c = &self.0;
        if c.split_method == Method::StateField {
            let next = self.recorded(contact, count).map_or(0, |i| (i + 1) % count);
            return Ok((next, false));
        }
        if c.sticky {
            let held = self.recorded(contact, count).or_else(|| match c.mode {
                Mode::Tag => c.options().iter().position(|t| contact.has_tag(t)),
                Mode::Goal => None,
            });
            if let Some(i) = held {
                return Ok((i, true));
            }
        }
        if let (Method::WeightedRandom, Some(w)) = (c.split_method, &c.weights) {
            let roll = ctx.rng().random_range(0..100u32);
            let mut acc = 0;
            let i = w.iter().position(|x| {
                acc += x;
                roll < acc
            });
            return Ok((i.unwrap_or(count - 1), false));
        }
        let key = format!("split_it/{}/counter", ctx.instance);
        let n = ctx.state.incr(&key, 1, ctx.execution_id, None).await?;
        let i = usize::try_from((n - 1).rem_euclid(count as i64)).unwrap_or(0);
        Ok((i, false))
    }
}

#[async_trait::async_trait]
impl AsyncStep for SplitItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let options = c.options();
        let count = options.len();
        let (index, sticky) = self.choose(ctx, contact, count).await?;
        let (letter, option) = (LETTERS[index], options[index]);
        let method = match c.split_method {
            Method::Counter => "counter",
            Method::WeightedRandom => "weighted_random",
            Method::StateField => "state_field",
        };
        let how = if sticky { "kept" } else { "assigned" };
        let mut out = Outcome::ok(format!("Contact {how} variant {letter} ({option})"))
            .with("variant", letter)
            .with("option", option)
            .with("method", method)
            .with("sticky", sticky);
        match c.mode {
            Mode::Tag => {
                for other in options.iter().filter(|o| **o != option) {
                    if contact.has_tag(other) {
                        out = out.change(Change::RemoveTag {
                            tag_id: (*other).to_owned(),
                        });
                    }
                }
                out = out.branch(contact, Some(option), None);
            }
            Mode::Goal => out = out.branch(contact, None, Some(option)),
        }
        if let Some(f) = c.state_field.as_deref().map(str::trim) {
            out = out.set_field(contact, f, letter);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::seed_for;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use crate::state::StateStore as _;
    use serde_json::{Value, json};

    async fn variants(env: &mut Env, cfg: &Value, c: &Contact, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..n {
            env.execution_id = format!("exec-{i}");
            env.seed = seed_for(&env.execution_id);
            let o = env.run(&SplitIt, cfg.clone(), c).await.unwrap();
            out.push(o.output["variant"].as_str().unwrap().to_owned());
        }
        out
    }

    #[tokio::test]
    async fn counter_rotates_the_population_and_redelivery_does_not_advance() {
        let mut env = Env::new();
        let cfg = json!({"mode": "goal", "option_a": "ga", "option_b": "gb", "option_c": "gc", "split_count": 3});
        let c = contact(&[], &[]);
        let got = variants(&mut env, &cfg, &c, 7).await;
        assert_eq!(got, ["A", "B", "C", "A", "B", "C", "A"]);
        env.execution_id = "exec-3".into();
        let again = env.run(&SplitIt, cfg.clone(), &c).await.unwrap();
        assert_eq!(again.output["variant"], "A", "exec-3 drew A the first time");
        assert_eq!(
            again.changes,
            vec![Change::AchieveGoal {
                call_name: "ga".into()
            }]
        );
        env.execution_id = "exec-new".into();
        let next = env.run(&SplitIt, cfg, &c).await.unwrap();
        assert_eq!(
            next.output["variant"], "B",
            "the rerun did not advance the counter"
        );
    }

    #[tokio::test]
    async fn tag_mode_is_exclusive_and_records_the_state_field() {
        let env = Env::new();
        let cfg = json!({"mode": "tag", "option_a": "201", "option_b": "202", "state_field": "_Variant", "sticky": false});
        let out = env
            .run(&SplitIt, cfg, &contact(&[], &["202"]))
            .await
            .unwrap();
        assert_eq!(out.output["variant"], "A");
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag {
                    tag_id: "202".into()
                },
                Change::ApplyTag {
                    tag_id: "201".into()
                },
                set("_Variant", "A"),
            ]
        );
    }

    #[tokio::test]
    async fn sticky_keeps_the_variant_without_advancing() {
        let mut env = Env::new();
        let cfg = json!({"mode": "tag", "option_a": "201", "option_b": "202", "option_c": "203", "split_count": 3, "state_field": "_Variant"});
        let held = contact(&[], &["203"]);
        assert_eq!(variants(&mut env, &cfg, &held, 5).await, ["C"; 5]);
        let out = env.run(&SplitIt, cfg.clone(), &held).await.unwrap();
        assert_eq!(out.output["sticky"], true);
        assert_eq!(out.changes, vec![set("_Variant", "C")]);
        let by_field = contact(&[("_Variant", "b")], &[]);
        let out = env.run(&SplitIt, cfg.clone(), &by_field).await.unwrap();
        assert_eq!(out.output["variant"], "B");
        env.execution_id = "fresh".into();
        let out = env.run(&SplitIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(
            out.output["variant"], "A",
            "sticky runs never took a counter value"
        );
    }

    #[tokio::test]
    async fn weighted_random_follows_the_weights() {
        let mut env = Env::new();
        let cfg = json!({"mode": "goal", "option_a": "ga", "option_b": "gb", "option_c": "gc", "split_count": 3,
                         "split_method": "weighted_random", "weights": [70, 20, 10]});
        let got = variants(&mut env, &cfg, &contact(&[], &[]), 2000).await;
        let n = |v: &str| got.iter().filter(|x| *x == v).count();
        assert!((1300..=1500).contains(&n("A")), "A = {}", n("A"));
        assert!((320..=480).contains(&n("B")), "B = {}", n("B"));
        assert!((140..=260).contains(&n("C")), "C = {}", n("C"));
        assert!(
            env.state.list("split_it/").await.unwrap().is_empty(),
            "no counter used"
        );
        let first = env
            .run(&SplitIt, cfg.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(
            env.run(&SplitIt, cfg, &contact(&[], &[])).await.unwrap(),
            first
        );
    }

    #[tokio::test]
    async fn state_field_rotates_one_contact() {
        let env = Env::new();
        let cfg = json!({"mode": "goal", "option_a": "ga", "option_b": "gb", "option_c": "gc", "split_count": 3,
                         "split_method": "state_field", "state_field": "_V"});
        let step = |v: &str| {
            let c = contact(&[("_V", v)], &[]);
            let cfg = cfg.clone();
            let env = &env;
            async move { env.run(&SplitIt, cfg, &c).await.unwrap() }
        };
        let out = step("").await;
        assert_eq!(out.output["variant"], "A");
        assert_eq!(
            out.changes,
            vec![
                Change::AchieveGoal {
                    call_name: "ga".into()
                },
                set("_V", "A")
            ]
        );
        assert_eq!(step("A").await.output["variant"], "B");
        assert_eq!(step("C").await.output["variant"], "A");
        assert_eq!(step("junk").await.output["variant"], "A");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &SplitIt,
            json!({"mode": "tag", "option_a": "1", "option_b": "2", "split_count": 3}),
        );
        assert_eq!(errs[0].field, "option_c", "{errs:?}");
        let errs = config_errors(
            &SplitIt,
            json!({"mode": "tag", "option_a": "1", "option_b": "1"}),
        );
        assert_eq!(errs[0].field, "option_b");
        let errs = config_errors(
            &SplitIt,
            json!({"mode": "tag", "option_a": "1", "option_b": "2", "option_c": "3"}),
        );
        assert_eq!(errs[0].field, "option_c");
        let errs = config_errors(
            &SplitIt,
            json!({"mode": "tag", "option_a": "1", "option_b": "2", "split_count": 6}),
        );
        assert_eq!(errs[0].field, "split_count");
        let weighted = json!({"mode": "goal", "option_a": "a", "option_b": "b", "split_method": "weighted_random"});
        assert_eq!(config_errors(&SplitIt, weighted)[0].field, "weights");
        let sums = json!({"mode": "goal", "option_a": "a", "option_b": "b", "split_method": "weighted_random", "weights": [60, 30]});
        assert_eq!(config_errors(&SplitIt, sums)[0].field, "weights");
        let stray = json!({"mode": "goal", "option_a": "a", "option_b": "b", "weights": [50, 50]});
        assert_eq!(config_errors(&SplitIt, stray)[0].field, "weights");
        let state = json!({"mode": "goal", "option_a": "a", "option_b": "b", "split_method": "state_field"});
        assert_eq!(config_errors(&SplitIt, state)[0].field, "state_field");
        assert!(
            !config_errors(
                &SplitIt,
                json!({"mode": "email", "option_a": "a", "option_b": "b"})
            )
            .is_empty()
        );
        assert!(!config_errors(&SplitIt, json!({"mode": "tag", "option_a": "a"})).is_empty());
    }
}
