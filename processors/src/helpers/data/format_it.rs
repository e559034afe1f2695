//! format_it: normalises a text field and writes it back, or to `target_field`. Case
//! mapping is Unicode-aware but locale-free (ß upper-cases to SS; Turkish dotted i is not
//! special-cased). `title_case` capitalises after a space, hyphen or apostrophe and
//! lower-cases the rest; `name_case` does the same but keeps particles (van, de, ...)
//! lower-case and capitalises `Mc` names. `phone_e164` and `phone_national` understand
//! NANP numbers (10 digits, or 11 starting with 1) and already-international `+` numbers;
//! other values fail without a write. An empty field is a no-op, and a value that is
//! already formatted is not rewritten. Idempotent.

use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// The normalisation applied.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// ALL CAPS.
    Uppercase,
    /// all lower.
    Lowercase,
    /// Each Word Capitalised.
    TitleCase,
    /// First letter of each sentence capitalised, the rest lower-case.
    SentenceCase,
    /// Title case for names: McDonald, O'Neil, van der Berg.
    NameCase,
    /// Strip surrounding whitespace.
    Trim,
    /// Strip leading whitespace.
    TrimStart,
    /// Strip trailing whitespace.
    TrimEnd,
    /// Trim and turn every run of whitespace into one space.
    CollapseSpaces,
    /// Trim and lower-case an email address.
    EmailLower,
    /// A phone number as `+15125550100`.
    PhoneE164,
    /// A NANP phone number as `(512) 555-0100`.
    PhoneNational,
    /// A US ZIP code cut to five digits, restoring a lost leading zero.
    Zip5,
}

/// Config of format_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read.
    pub field: String,
    /// The normalisation.
    pub format: Format,
    /// The field written; default `field`.
    pub target_field: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.field.trim().is_empty(),
            "field",
            "must not be empty",
        );
        let blank_target = self
            .target_field
            .as_deref()
            .is_some_and(|t| t.trim().is_empty());
        check(
            &mut errors,
            blank_target,
            "target_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The format_it helper.
pub struct FormatIt;

impl Helper for FormatIt {
    const NAME: &'static str = "format_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str = "Normalises a text field: case, whitespace, email, phone or ZIP.";
    const EXAMPLE_CONFIG: &'static str = r#"{"field": "first_name", "format": "name_case"}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] = &["changed", "<target>"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(FormatItStep(config)))
    }
}

const PARTICLES: &[&str] = &[
    "van", "von", "de", "da", "del", "der", "den", "di", "du", "la", "le",
];

/// Upper-cases the first letter of each word and of each part after a hyphen or after a
/// one-letter apostrophe prefix (O'Neil, but Don't); lower-cases the rest.
fn title(s: &str, names: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let mut up = true;
    for ch in s.to_lowercase().chars() {
        if up || (names && run == "mc") {
            out.extend(ch.to_uppercase())
        } else {
            out.push(ch)
        }
        if ch.is_whitespace() || ch == '-' {
            run.clear();
            up = true;
            continue;
        }
        up = matches!(ch, '\'' | '’') && run.chars().count() == 1;
        run.push(ch);
    }
    if !names {
        return out;
    }
    let words: Vec<&str> = out.split(' ').collect();
    let last = words.len().saturating_sub(1);
    let fix = |(i, w): (usize, &&str)| {
        let lower = w.to_lowercase();
        if i > 0 && i < last && PARTICLES.contains(&lower.as_str()) {
            lower
        } else {
            (*w).to_owned()
        }
    };
    words
        .iter()
        .enumerate()
        .map(fix)
        .collect::<Vec<_>>()
        .join(" ")
}

fn sentence(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = true;
    for ch in s.to_lowercase().chars() {
        if up && ch.is_alphabetic() {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
        up = up || matches!(ch, '.' | '!' | '?');
    }
    out
}

fn phone(s: &str, e164: bool) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let intl = s.trim_start().starts_with('+');
    let nanp = match digits.len() {
        10 if !intl => Some(digits.as_str()),
        11 if digits.starts_with('1') => Some(&digits[1..]),
        _ => None,
    };
    match (nanp, e164) {
        (Some(n), true) => Some(format!("+1{n}")),
        (Some(n), false) => Some(format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])),
        (None, true) if intl && (8..=15).contains(&digits.len()) => Some(format!("+{digits}")),
        (None, _) => None,
    }
}

fn zip5(s: &str) -> Option<String> {
    let t = s.trim();
    let head = t.split(['-', ' ']).next().unwrap_or("");
    let ok = head.chars().all(|c| c.is_ascii_digit())
        && (t.len() == head.len() || t.len() == head.len() + 5);
    match head.len() {
        5 if ok => Some(head.to_owned()),
        3 | 4 if ok => Some(format!("{head:0>5}")),
        9 if ok => Some(head[..5].to_owned()),
        _ => None,
    }
}

struct FormatItStep(Config);

impl Step for FormatItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let target = c.target_field.as_ref().unwrap_or(&c.field);
        let Some(value) = contact
            .fields
            .get(&c.field)
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(
                Outcome::ok(format!("{} is empty; nothing to format", c.field))
                    .with("changed", false),
            );
        };
        let formatted = match c.format {
            Format::Uppercase => Some(value.to_uppercase()),
            Format::Lowercase => Some(value.to_lowercase()),
            Format::TitleCase => Some(title(value, false)),
            Format::NameCase => Some(title(
                &value.split_whitespace().collect::<Vec<_>>().join(" "),
                true,
            )),
            Format::SentenceCase => Some(sentence(value)),
            Format::Trim => Some(value.trim().to_owned()),
            Format::TrimStart => Some(value.trim_start().to_owned()),
            Format::TrimEnd => Some(value.trim_end().to_owned()),
            Format::CollapseSpaces => Some(value.split_whitespace().collect::<Vec<_>>().join(" ")),
            Format::EmailLower => Some(value.trim().to_lowercase()),
            Format::PhoneE164 => phone(value, true),
            Format::PhoneNational => phone(value, false),
            Format::Zip5 => zip5(value),
        };
        let Some(formatted) = formatted else {
            return Ok(Outcome::failed(format!(
                "{} value {value:?} cannot be formatted as {:?}",
                c.field, c.format
            )));
        };
        let changed = contact.fields.get(target) != Some(&formatted);
        Ok(Outcome::ok(if changed {
            format!("Formatted {target}")
        } else {
            format!("{target} already formatted")
        })
        .with(target, formatted.clone())
        .with("changed", changed)
        .set_field(contact, target, formatted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    fn fmt(format: &str, value: &str) -> Option<String> {
        let out = run(
            &FormatIt,
            json!({"field": "f", "format": format}),
            &contact(&[("f", value)], &[]),
        );
        out.success
            .then(|| out.output["f"].as_str().unwrap_or_default().to_owned())
    }

    #[test]
    fn case_formats() {
        assert_eq!(fmt("uppercase", "straße").as_deref(), Some("STRASSE"));
        assert_eq!(fmt("lowercase", "ÉCOLE").as_deref(), Some("école"));
        assert_eq!(
            fmt("title_case", "mary-ann o'NEIL smith").as_deref(),
            Some("Mary-Ann O'Neil Smith")
        );
        assert_eq!(
            fmt("title_case", "DON'T stop").as_deref(),
            Some("Don't Stop")
        );
        assert_eq!(
            fmt("sentence_case", "HELLO there. how ARE you? fine").as_deref(),
            Some("Hello there. How are you? Fine")
        );
        assert_eq!(
            fmt("name_case", "  LUDWIG  VAN   BEETHOVEN ").as_deref(),
            Some("Ludwig van Beethoven")
        );
        assert_eq!(
            fmt("name_case", "ronald mcdonald").as_deref(),
            Some("Ronald McDonald")
        );
        assert_eq!(fmt("name_case", "van halen").as_deref(), Some("Van Halen"));
    }

    #[test]
    fn whitespace_and_email_formats() {
        assert_eq!(fmt("trim", "  a b  ").as_deref(), Some("a b"));
        assert_eq!(fmt("trim_start", "  a b  ").as_deref(), Some("a b  "));
        assert_eq!(fmt("trim_end", "  a b  ").as_deref(), Some("  a b"));
        assert_eq!(
            fmt("collapse_spaces", " a \t b\n c ").as_deref(),
            Some("a b c")
        );
        assert_eq!(
            fmt("email_lower", " Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
    }

    #[test]
    fn phone_and_zip_formats() {
        assert_eq!(
            fmt("phone_e164", "(512) 555-0100").as_deref(),
            Some("+15125550100")
        );
        assert_eq!(
            fmt("phone_e164", "1-512-555-0100").as_deref(),
            Some("+15125550100")
        );
        assert_eq!(
            fmt("phone_e164", "+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            fmt("phone_national", "+1 512.555.0100").as_deref(),
            Some("(512) 555-0100")
        );
        assert_eq!(fmt("phone_e164", "555-0100"), None);
        assert_eq!(fmt("phone_national", "+44 20 7946 0958"), None);
        assert_eq!(fmt("zip5", "78701-1234").as_deref(), Some("78701"));
        assert_eq!(fmt("zip5", "2134").as_deref(), Some("02134"));
        assert_eq!(fmt("zip5", "787011234").as_deref(), Some("78701"));
        assert_eq!(fmt("zip5", "SW1A 1AA"), None);
    }

    #[test]
    fn writes_only_when_changed_and_empty_is_a_no_op() {
        let cfg = json!({"field": "f", "format": "uppercase", "target_field": "g"});
        let out = run(&FormatIt, cfg.clone(), &contact(&[("f", "ab")], &[]));
        assert_eq!(
            out.changes,
            vec![Change::SetField {
                field: "g".into(),
                value: Some("AB".into())
            }]
        );
        let again = run(
            &FormatIt,
            cfg.clone(),
            &contact(&[("f", "ab"), ("g", "AB")], &[]),
        );
        assert!(
            again.success && again.changes.is_empty() && again.output["changed"] == json!(false)
        );
        let empty = run(&FormatIt, cfg, &contact(&[("f", "  ")], &[]));
        assert!(empty.success && empty.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&FormatIt, json!({"field": "f"})).is_empty());
        assert!(!config_errors(&FormatIt, json!({"field": "f", "format": "shout"})).is_empty());
        assert_eq!(
            config_errors(
                &FormatIt,
                json!({"field": " ", "format": "trim", "target_field": ""})
            )
            .len(),
            2
        );
    }
}
