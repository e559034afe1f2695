//! word_count_it: counts the words (whitespace-separated tokens) or characters (Unicode
//! scalar values, optionally without whitespace) of a field and writes the number to
//! `target_field`, e.g. to qualify free-text survey answers. HTML tags are stripped first
//! (each counts as a space) and the common entities decoded, unless `strip_html` is off.
//! An empty field counts as 0. Idempotent.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use regex::Regex;
use serde::Deserialize;
use std::sync::LazyLock;

/// What is counted.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CountType {
    /// Whitespace-separated words.
    Words,
    /// Characters.
    Characters,
}

/// Config of word_count_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read.
    pub source_field: String,
    /// The field written.
    pub target_field: String,
    /// `words` or `characters`.
    pub count_type: CountType,
    /// Leave whitespace out of a character count; default false.
    #[serde(default)]
    pub exclude_whitespace: bool,
    /// Strip HTML tags and decode entities first; default true.
    #[serde(default = "default_true")]
    pub strip_html: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.source_field.trim().is_empty(),
            "source_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.exclude_whitespace && self.count_type == CountType::Words,
            "exclude_whitespace",
            "only applies to count_type characters",
        );
        finish(errors)
    }
}

/// The word_count_it helper.
pub struct WordCountIt;

impl Helper for WordCountIt {
    const NAME: &'static str = "word_count_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str = "Counts the words or characters of a field into another field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"source_field": "first_name", "target_field": "_NameLength", "count_type": "characters"}"#;
    const OUTPUTS: &'static [&'static str] = &["count", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(WordCountItStep(config)))
    }
}

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[^>]*>").expect("a valid constant pattern"));

/// The text with tags replaced by spaces and common entities decoded.
fn strip_html(s: &str) -> String {
    let text = TAG.replace_all(s, " ");
    [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(text.into_owned(), |t, (from, to)| t.replace(from, to))
}

struct WordCountItStep(Config);

impl Step for WordCountItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let (source, target) = (c.source_field.trim(), c.target_field.trim());
        let raw = contact.field(source).unwrap_or_default();
        let text = if c.strip_html {
            strip_html(raw)
        } else {
            raw.to_owned()
        };
        let count = match c.count_type {
            CountType::Words => text.split_whitespace().count(),
            CountType::Characters if c.exclude_whitespace => {
                text.chars().filter(|ch| !ch.is_whitespace()).count()
            }
            CountType::Characters => text.chars().count(),
        };
        let n = count.to_string();
        Ok(Outcome::ok(format!("{target} = {n}"))
            .with("count", count)
            .with(target, n.clone())
            .set_field(contact, target, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::{Value, json};

    fn count(extra: Value, text: &str) -> u64 {
        let mut cfg = json!({"source_field": "s", "target_field": "t"});
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let out = run(&WordCountIt, cfg, &contact(&[("s", text)], &[]));
        assert!(out.success);
        assert_eq!(out.output["t"], out.output["count"].to_string());
        out.output["count"].as_u64().unwrap()
    }

    #[test]
    fn counts_words_and_characters() {
        let words = json!({"count_type": "words"});
        let chars = json!({"count_type": "characters"});
        assert_eq!(count(words.clone(), "  The quick\tbrown\n fox  "), 4);
        assert_eq!(count(chars.clone(), "Zoë 🎉"), 5);
        assert_eq!(
            count(
                json!({"count_type": "characters", "exclude_whitespace": true}),
                "a b\u{a0}c\n"
            ),
            3
        );
        assert_eq!(count(words, ""), 0);
        assert_eq!(count(chars, "   "), 0);
    }

    #[test]
    fn html_is_stripped_unless_disabled() {
        let html = "<p>Hello&nbsp;<b>big</b><br>world &amp; more</p>";
        assert_eq!(count(json!({"count_type": "words"}), html), 5);
        assert_eq!(
            count(
                json!({"count_type": "characters", "exclude_whitespace": true}),
                "<i>R&amp;D</i>"
            ),
            3
        );
        assert_eq!(
            count(
                json!({"count_type": "words", "strip_html": false}),
                "<p>two words</p>"
            ),
            2
        );
        assert_eq!(
            count(
                json!({"count_type": "characters", "strip_html": false}),
                "<b>x</b>"
            ),
            8
        );
    }

    #[test]
    fn writes_zero_for_empty_and_nothing_on_rerun() {
        let cfg = json!({"source_field": "s", "target_field": "t", "count_type": "words"});
        let out = run(&WordCountIt, cfg.clone(), &contact(&[], &[]));
        assert_eq!(out.changes, vec![set("t", "0")]);
        let out = run(
            &WordCountIt,
            cfg,
            &contact(&[("s", "one two"), ("t", "2")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &WordCountIt,
            json!({"source_field": "", "target_field": " ", "count_type": "words", "exclude_whitespace": true}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["source_field", "target_field", "exclude_whitespace"]
        );
        assert!(
            !config_errors(
                &WordCountIt,
                json!({"source_field": "s", "target_field": "t", "count_type": "lines"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &WordCountIt,
                json!({"source_field": "s", "target_field": "t"})
            )
            .is_empty()
        );
    }
}
