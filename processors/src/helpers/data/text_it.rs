//! text_it: edits a text field and writes the result back or to `target_field`:
//! `prepend`/`append` `value` (with `skip_if_present`, text that already starts/ends with
//! it is left alone, which makes in-place runs idempotent), `replace` every `value` with
//! `replace_with`, `remove` every `value`, `regex_replace` (`value` is the pattern,
//! `replace_with` may use `$1`), `truncate`/`left` to the first `max_length` characters,
//! `right` to the last ones, `extract_email_domain`, `extract_numbers` (every number such
//! as `-3` or `1.25`, joined by a space: `v1.2 and 3` → `1.2 3`), `extract_digits` (every
//! digit: `(512) 555-0100` → `5125550100`), `slug` (lower-case words joined by hyphens)
//! and `reverse`. Lengths count characters, never bytes. An empty field is a success
//! without a write; an extraction that finds nothing fails without one; an unchanged
//! result is not rewritten.

use crate::connectors::Capability;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use regex::Regex;
use serde::Deserialize;
use std::sync::LazyLock;

/// The edit.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `value` + text.
    Prepend,
    /// text + `value`.
    Append,
    /// Every `value` becomes `replace_with`.
    Replace,
    /// Every `value` is removed.
    Remove,
    /// Every match of the pattern `value` becomes `replace_with`.
    RegexReplace,
    /// The first `max_length` characters.
    Truncate,
    /// The first `max_length` characters.
    Left,
    /// The last `max_length` characters.
    Right,
    /// The domain of an email address, lower-case.
    ExtractEmailDomain,
    /// Every number, joined by a space.
    ExtractNumbers,
    /// Every digit.
    ExtractDigits,
    /// lower-case-words-joined-by-hyphens.
    Slug,
    /// The characters in reverse order.
    Reverse,
}

impl Operation {
    fn needs_value(self) -> bool {
        matches!(
            self,
            Self::Prepend | Self::Append | Self::Replace | Self::Remove | Self::RegexReplace
        )
    }
    fn needs_length(self) -> bool {
        matches!(self, Self::Truncate | Self::Left | Self::Right)
    }
}

/// Config of text_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read.
    pub field: String,
    /// The edit.
    pub operation: Operation,
    /// Text to add, find or remove; the pattern of `regex_replace`.
    pub value: Option<String>,
    /// Replacement of `replace` and `regex_replace`; default empty.
    #[serde(default)]
    pub replace_with: String,
    /// Characters kept by `truncate`, `left` and `right`.
    pub max_length: Option<usize>,
    /// The field written; default `field`.
    pub target_field: Option<String>,
    /// `prepend`/`append` leave text that already starts/ends with `value`; default false.
    #[serde(default)]
    pub skip_if_present: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let op = self.operation;
        check(
            &mut errors,
            self.field.trim().is_empty(),
            "field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.target_field
                .as_deref()
                .is_some_and(|t| t.trim().is_empty()),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            op.needs_value() && self.value.as_deref().is_none_or(str::is_empty),
            "value",
            "is required for this operation",
        );
        if let (Operation::RegexReplace, Some(p)) = (op, self.value.as_deref()) {
            check(
                &mut errors,
                pattern(p).is_none(),
                "value",
                "is not a valid regular expression (or is too large)",
            );
        }
        check(
            &mut errors,
            op.needs_length() && self.max_length.is_none_or(|n| n == 0),
            "max_length",
            "is required for this operation and must be above 0",
        );
        finish(errors)
    }
}

fn pattern(p: &str) -> Option<Regex> {
    regex::RegexBuilder::new(p).size_limit(1 << 20).build().ok()
}

/// The text_it helper.
pub struct TextIt;

impl Helper for TextIt {
    const NAME: &'static str = "text_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Prepends, appends, replaces, truncates, extracts or slugifies a text field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"field": "first_name", "operation": "append", "value": "!", "target_field": "_Greeting"}"#;
    const OUTPUTS: &'static [&'static str] = &["result", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let regex = match (config.operation, config.value.as_deref()) {
            (Operation::RegexReplace, Some(p)) => pattern(p),
            _ => None,
        };
        Runnable::Sync(Box::new(TextItStep { config, regex }))
    }
}

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d+(?:\.\d+)?").expect("a valid constant pattern"));

fn slug(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

struct TextItStep {
    config: Config,
    regex: Option<Regex>,
}

impl TextItStep {
    /// The edited text, or why there is none.
    fn edit(&self, text: &str) -> Result<String, String> {
        let c = &self.config;
        let value = c.value.as_deref().unwrap_or_default();
        let n = c.max_length.unwrap_or(0);
        let found = |s: String, what: &str| {
            if s.is_empty() {
                Err(format!("no {what} found in {}", c.field))
            } else {
                Ok(s)
            }
        };
        Ok(match c.operation {
            Operation::Prepend if c.skip_if_present && text.starts_with(value) => text.to_owned(),
            Operation::Prepend => format!("{value}{text}"),
            Operation::Append if c.skip_if_present && text.ends_with(value) => text.to_owned(),
            Operation::Append => format!("{text}{value}"),
            Operation::Replace => text.replace(value, &c.replace_with),
            Operation::Remove => text.replace(value, ""),
            Operation::RegexReplace => match &self.regex {
                Some(re) => re.replace_all(text, c.replace_with.as_str()).into_owned(),
                None => text.to_owned(),
            },
            Operation::Truncate | Operation::Left => text.chars().take(n).collect(),
            Operation::Right => {
                let len = text.chars().count();
                text.chars().skip(len.saturating_sub(n)).collect()
            }
            Operation::ExtractEmailDomain => {
                let domain = text
                    .trim()
                    .rsplit_once('@')
                    .map(|(_, d)| d.trim().to_lowercase());
                found(domain.unwrap_or_default(), "email domain")?
            }
            Operation::ExtractNumbers => {
                let all: Vec<&str> = NUMBER.find_iter(text).map(|m| m.as_str()).collect();
                found(all.join(" "), "number")?
            }
            Operation::ExtractDigits => {
                found(text.chars().filter(char::is_ascii_digit).collect(), "digit")?
            }
            Operation::Slug => found(slug(text), "word")?,
            Operation::Reverse => text.chars().rev().collect(),
        })
    }
}

impl Step for TextItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let field = c.field.trim();
        let target = c.target_field.as_deref().map_or(field, str::trim);
        let Some(text) = contact.field(field) else {
            return Ok(Outcome::ok(format!("{field} is empty; nothing written")));
        };
        match self.edit(text) {
            Err(why) => Ok(Outcome::failed(why)),
            Ok(result) => Ok(Outcome::ok(format!("{target} = {result}"))
                .with("result", result.clone())
                .with(target, result.clone())
                .set_field(contact, target, result)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::{Value, json};

    fn edit(mut cfg: Value, text: &str) -> String {
        cfg["field"] = json!("f");
        let out = run(&TextIt, cfg, &contact(&[("f", text)], &[]));
        if out.success {
            out.output["result"].as_str().unwrap_or_default().to_owned()
        } else {
            format!("failed: {}", out.message)
        }
    }

    #[test]
    fn every_operation() {
        let cases = [
            (
                json!({"operation": "prepend", "value": "Dr. "}),
                "Ada",
                "Dr. Ada",
            ),
            (json!({"operation": "append", "value": "!"}), "Hi", "Hi!"),
            (
                json!({"operation": "replace", "value": "a", "replace_with": "4"}),
                "banana",
                "b4n4n4",
            ),
            (
                json!({"operation": "remove", "value": "-"}),
                "512-555-0100",
                "5125550100",
            ),
            (
                json!({"operation": "regex_replace", "value": r"(\w+)@(\w+)", "replace_with": "$2 at $1"}),
                "ada@example",
                "example at ada",
            ),
            (
                json!({"operation": "truncate", "max_length": 3}),
                "Zoë Smith",
                "Zoë",
            ),
            (
                json!({"operation": "left", "max_length": 20}),
                "short",
                "short",
            ),
            (
                json!({"operation": "right", "max_length": 4}),
                "café-crème",
                "rème",
            ),
            (
                json!({"operation": "extract_email_domain"}),
                " Ada@Example.COM ",
                "example.com",
            ),
            (
                json!({"operation": "extract_numbers"}),
                "v1.2 and 3, -4",
                "1.2 3 -4",
            ),
            (
                json!({"operation": "extract_digits"}),
                "(512) 555-0100",
                "5125550100",
            ),
            (
                json!({"operation": "slug"}),
                "  Hello, World! Café ",
                "hello-world-café",
            ),
            (json!({"operation": "reverse"}), "añb", "bña"),
        ];
        for (cfg, text, want) in cases {
            assert_eq!(edit(cfg.clone(), text), want, "{cfg}");
        }
    }

    #[test]
    fn skip_if_present_makes_in_place_runs_idempotent() {
        let cfg =
            json!({"field": "f", "operation": "prepend", "value": "Dr. ", "skip_if_present": true});
        let out = run(&TextIt, cfg, &contact(&[("f", "Dr. Ada")], &[]));
        assert!(out.success && out.changes.is_empty());
        let cfg =
            json!({"field": "f", "operation": "append", "value": "!", "skip_if_present": true});
        assert_eq!(
            run(&TextIt, cfg, &contact(&[("f", "Hi")], &[])).changes,
            vec![set("f", "Hi!")]
        );
        assert_eq!(
            edit(json!({"operation": "append", "value": "!"}), "Hi!"),
            "Hi!!"
        );
    }

    #[test]
    fn empty_and_nothing_found() {
        let out = run(
            &TextIt,
            json!({"field": "f", "operation": "reverse"}),
            &contact(&[], &[]),
        );
        assert!(out.success && out.changes.is_empty());
        assert!(
            edit(json!({"operation": "extract_email_domain"}), "no at sign").starts_with("failed")
        );
        assert!(edit(json!({"operation": "extract_numbers"}), "none here").starts_with("failed"));
        assert!(edit(json!({"operation": "slug"}), "!!!").starts_with("failed"));
        assert_eq!(edit(json!({"operation": "remove", "value": "x"}), "xx"), "");
    }

    #[test]
    fn writes_the_target_only_when_changed() {
        let cfg = json!({"field": "f", "operation": "slug", "target_field": "t"});
        let out = run(&TextIt, cfg.clone(), &contact(&[("f", "Big Sale")], &[]));
        assert_eq!(out.changes, vec![set("t", "big-sale")]);
        assert_eq!(out.output["t"], "big-sale");
        let out = run(
            &TextIt,
            cfg,
            &contact(&[("f", "Big Sale"), ("t", "big-sale")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &TextIt,
            json!({"field": "", "operation": "append", "target_field": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["field", "target_field", "value"]);
        let regex = json!({"field": "f", "operation": "regex_replace", "value": "(unclosed"});
        assert_eq!(config_errors(&TextIt, regex)[0].field, "value");
        let zero = json!({"field": "f", "operation": "truncate", "max_length": 0});
        assert_eq!(config_errors(&TextIt, zero)[0].field, "max_length");
        assert_eq!(
            config_errors(&TextIt, json!({"field": "f", "operation": "right"}))[0].field,
            "max_length"
        );
        assert!(!config_errors(&TextIt, json!({"field": "f", "operation": "shout"})).is_empty());
    }
}
