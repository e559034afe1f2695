//! quote_it: wraps a field's text in delimiters — double or single quotes, backticks,
//! parentheses, brackets, braces or a custom left/right pair — and writes it to
//! `target_field`, e.g. to build CSV cells or strings for other systems. With
//! `escape_quotes` every closing delimiter inside the text is doubled, the CSV and SQL
//! convention (`say "hi"` → `"say ""hi"""`). With `skip_if_quoted` (default) text that is
//! already wrapped is copied as it is, so running in place does not nest quotes. An empty
//! source is a success without a write. Idempotent with `skip_if_quoted`.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// The delimiters.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStyle {
    /// `"text"` (default).
    #[default]
    Double,
    /// `'text'`.
    Single,
    /// `` `text` ``.
    Backtick,
    /// `(text)`.
    Parentheses,
    /// `[text]`.
    Brackets,
    /// `{text}`.
    Braces,
    /// `custom_left` text `custom_right`.
    Custom,
}

/// Config of quote_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read.
    pub source_field: String,
    /// The field written.
    pub target_field: String,
    /// The delimiters; default `double`.
    #[serde(default)]
    pub quote_style: QuoteStyle,
    /// Left delimiter of `custom`.
    pub custom_left: Option<String>,
    /// Right delimiter of `custom`.
    pub custom_right: Option<String>,
    /// Double each closing delimiter inside the text; default false.
    #[serde(default)]
    pub escape_quotes: bool,
    /// Copy text that is already wrapped unchanged; default true.
    #[serde(default = "default_true")]
    pub skip_if_quoted: bool,
}

impl Config {
    fn delimiters(&self) -> (&str, &str) {
        match self.quote_style {
            QuoteStyle::Double => ("\"", "\""),
            QuoteStyle::Single => ("'", "'"),
            QuoteStyle::Backtick => ("`", "`"),
            QuoteStyle::Parentheses => ("(", ")"),
            QuoteStyle::Brackets => ("[", "]"),
            QuoteStyle::Braces => ("{", "}"),
            QuoteStyle::Custom => (
                self.custom_left.as_deref().unwrap_or_default(),
                self.custom_right.as_deref().unwrap_or_default(),
            ),
        }
    }
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
        let custom = self.quote_style == QuoteStyle::Custom;
        for (name, v) in [
            ("custom_left", &self.custom_left),
            ("custom_right", &self.custom_right),
        ] {
            check(
                &mut errors,
                custom && v.as_deref().is_none_or(str::is_empty),
                name,
                "is required for quote_style custom",
            );
            check(
                &mut errors,
                !custom && v.is_some(),
                name,
                "is only used with quote_style custom",
            );
        }
        finish(errors)
    }
}

/// The quote_it helper.
pub struct QuoteIt;

impl Helper for QuoteIt {
    const NAME: &'static str = "quote_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str = "Wraps a field's text in quotes, brackets or custom delimiters.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"source_field": "first_name", "target_field": "_QuotedName"}"#;
    const OUTPUTS: &'static [&'static str] = &["source_text", "quoted_text", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(QuoteItStep(config)))
    }
}

struct QuoteItStep(Config);

impl Step for QuoteItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let (source, target) = (c.source_field.trim(), c.target_field.trim());
        let Some(text) = contact.field(source) else {
            return Ok(Outcome::ok(format!("{source} is empty; nothing written")));
        };
        let (left, right) = c.delimiters();
        let wrapped = text.len() >= left.len() + right.len()
            && text.starts_with(left)
            && text.ends_with(right);
        let quoted = if c.skip_if_quoted && wrapped {
            text.to_owned()
        } else if c.escape_quotes {
            format!("{left}{}{right}", text.replace(right, &right.repeat(2)))
        } else {
            format!("{left}{text}{right}")
        };
        Ok(Outcome::ok(format!("{target} = {quoted}"))
            .with("source_text", text)
            .with("quoted_text", quoted.clone())
            .with(target, quoted.clone())
            .set_field(contact, target, quoted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::{Value, json};

    fn quote(mut cfg: Value, text: &str) -> Option<String> {
        cfg["source_field"] = json!("s");
        cfg["target_field"] = json!("t");
        let out = run(&QuoteIt, cfg, &contact(&[("s", text)], &[]));
        assert!(out.success);
        out.output
            .get("quoted_text")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    #[test]
    fn wraps_in_every_style() {
        let cases = [
            ("double", "Ada", "\"Ada\""),
            ("single", "Ada", "'Ada'"),
            ("backtick", "Ada", "`Ada`"),
            ("parentheses", "Ada", "(Ada)"),
            ("brackets", "Ada", "[Ada]"),
            ("braces", "Ada", "{Ada}"),
        ];
        for (style, text, want) in cases {
            assert_eq!(
                quote(json!({"quote_style": style}), text).as_deref(),
                Some(want),
                "{style}"
            );
        }
        let custom = json!({"quote_style": "custom", "custom_left": "<<", "custom_right": ">>"});
        assert_eq!(quote(custom, "Ada").as_deref(), Some("<<Ada>>"));
        assert_eq!(
            quote(json!({}), "  Ada Lovelace ").as_deref(),
            Some("\"  Ada Lovelace \"")
        );
    }

    #[test]
    fn escaping_doubles_the_closing_delimiter() {
        assert_eq!(
            quote(json!({"escape_quotes": true}), "say \"hi\"").as_deref(),
            Some("\"say \"\"hi\"\"\"")
        );
        assert_eq!(
            quote(
                json!({"escape_quotes": true, "quote_style": "single"}),
                "O'Neil"
            )
            .as_deref(),
            Some("'O''Neil'")
        );
        assert_eq!(
            quote(
                json!({"escape_quotes": true, "quote_style": "brackets"}),
                "a]b["
            )
            .as_deref(),
            Some("[a]]b[]")
        );
        assert_eq!(quote(json!({}), "O\"Neil").as_deref(), Some("\"O\"Neil\""));
    }

    #[test]
    fn already_quoted_text_is_not_nested() {
        assert_eq!(quote(json!({}), "\"Ada\"").as_deref(), Some("\"Ada\""));
        assert_eq!(
            quote(json!({"skip_if_quoted": false}), "\"Ada\"").as_deref(),
            Some("\"\"Ada\"\"")
        );
        assert_eq!(
            quote(json!({}), "\"").as_deref(),
            Some("\"\"\""),
            "a lone quote is not wrapped text"
        );
        let c = contact(&[("s", "\"Ada\"")], &[]);
        let out = run(
            &QuoteIt,
            json!({"source_field": "s", "target_field": "s"}),
            &c,
        );
        assert!(
            out.success && out.changes.is_empty(),
            "in place, a rerun changes nothing"
        );
    }

    #[test]
    fn writes_the_target_and_empty_is_a_no_op() {
        let out = run(
            &QuoteIt,
            json!({"source_field": "s", "target_field": "t"}),
            &contact(&[("s", "x")], &[]),
        );
        assert_eq!(out.changes, vec![set("t", "\"x\"")]);
        assert_eq!(out.output["source_text"], "x");
        assert_eq!(out.output["t"], "\"x\"");
        let out = run(
            &QuoteIt,
            json!({"source_field": "s", "target_field": "t"}),
            &contact(&[("s", " ")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &QuoteIt,
            json!({"source_field": "", "target_field": " ", "quote_style": "custom", "custom_left": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source_field",
                "target_field",
                "custom_left",
                "custom_right"
            ]
        );
        let stray = json!({"source_field": "s", "target_field": "t", "custom_right": ">"});
        assert_eq!(config_errors(&QuoteIt, stray)[0].field, "custom_right");
        assert!(
            !config_errors(
                &QuoteIt,
                json!({"source_field": "s", "target_field": "t", "quote_style": "angle"})
            )
            .is_empty()
        );
    }
}
