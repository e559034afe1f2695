//! name_parse_it: splits a full name in one field into prefix, first, middle, last and
//! suffix. The first word is the first name and the rest the last name (REB); a leading
//! salutation (Mr, Dr, ...) becomes the prefix, and a trailing suffix (Jr, III, PhD, ...)
//! is split off when three or more words remain, or always after a comma (`Smith, Jr.`).
//! "Last, First Middle" is understood, and particles (van, de, St., ...) stay with the
//! last name. Middle words go into the last name by default (`middle_policy`). A value
//! with `@` or digits looks like an email or phone and fails without writes. Configured
//! parts that are absent are cleared, except that a single word only clears the last name
//! when `clear_last_on_single` is on (default, as REB). Idempotent.

use crate::helpers::defaults::{default_first, default_last, default_true};
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Where middle names go.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MiddlePolicy {
    /// Prepend them to the last name (default).
    #[default]
    IntoLast,
    /// Write them to `middle_name_field`.
    Separate,
    /// Discard them.
    Drop,
}

/// Config of name_parse_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the full name.
    pub source_field: String,
    /// Receives the first name; default `first_name`.
    #[serde(default = "default_first")]
    pub first_name_field: String,
    /// Receives the last name; default `last_name`.
    #[serde(default = "default_last")]
    pub last_name_field: String,
    /// Receives the suffix, if set.
    pub suffix_field: Option<String>,
    /// Receives the salutation, if set.
    pub prefix_field: Option<String>,
    /// Receives middle names; required for `middle_policy: separate`.
    pub middle_name_field: Option<String>,
    /// Where middle names go; default `into_last`.
    #[serde(default)]
    pub middle_policy: MiddlePolicy,
    /// Re-case all-caps or all-lower input ("JOHN MCDONALD" → "John McDonald").
    #[serde(default)]
    pub fix_case: bool,
    /// Replace non-empty targets; default true.
    #[serde(default = "default_true")]
    pub overwrite: bool,
    /// Clear the last name when the name is a single word; default true.
    #[serde(default = "default_true")]
    pub clear_last_on_single: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut seen = Vec::new();
        let fields = [
            ("source_field", Some(&self.source_field)),
            ("first_name_field", Some(&self.first_name_field)),
            ("last_name_field", Some(&self.last_name_field)),
            ("suffix_field", self.suffix_field.as_ref()),
            ("prefix_field", self.prefix_field.as_ref()),
            ("middle_name_field", self.middle_name_field.as_ref()),
        ];
        for (name, value) in fields {
            let Some(v) = value else { continue };
            check(&mut errors, v.trim().is_empty(), name, "must not be empty");
            check(
                &mut errors,
                name != "source_field" && seen.contains(&v),
                name,
                "is already written by another part",
            );
            if name != "source_field" {
                seen.push(v);
            }
        }
        let separate = self.middle_policy == MiddlePolicy::Separate;
        check(
            &mut errors,
            separate && self.middle_name_field.is_none(),
            "middle_name_field",
            "is required for middle_policy separate",
        );
        finish(errors)
    }
}

/// The name_parse_it helper.
pub struct NameParseIt;

impl Helper for NameParseIt {
    const NAME: &'static str = "name_parse_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Splits a full name into prefix, first, middle, last and suffix fields.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"source_field": "_FullName", "suffix_field": "suffix", "fix_case": true}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] =
        &["first", "middle", "last", "prefix", "suffix", "skipped"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(NameParseItStep(config)))
    }
}

const PREFIXES: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir"];
const SUFFIXES: &[&str] = &[
    "jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "esq", "dds",
];
/// Last-name particles; `fix_case` writes all but `st` (St. John) in lower case.
const PARTICLES: &[&str] = &[
    "van", "von", "de", "da", "del", "della", "der", "den", "di", "du", "la", "le", "st",
];

fn is_in(list: &[&str], word: &str) -> bool {
    list.contains(
        &word
            .trim_end_matches('.')
            .replace('.', "")
            .to_lowercase()
            .as_str(),
    )
}

/// The parts of a name, each word kept as written.
#[derive(Debug, Default, PartialEq)]
struct Parts<'a> {
    prefix: Option<&'a str>,
    first: Vec<&'a str>,
    middle: Vec<&'a str>,
    last: Vec<&'a str>,
    suffix: Vec<&'a str>,
}

fn parse(raw: &str) -> Parts<'_> {
    let mut segs: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut p = Parts::default();
    while segs.len() > 1 && segs.last().is_some_and(|s| is_in(SUFFIXES, s)) {
        p.suffix.extend(segs.pop());
    }
    p.suffix.reverse();
    let comma_form = segs.len() > 1;
    let (mut given, last): (Vec<&str>, Vec<&str>) = if comma_form {
        (
            segs[1..]
                .iter()
                .flat_map(|s| s.split_whitespace())
                .collect(),
            segs[0].split_whitespace().collect(),
        )
    } else {
        (
            segs.iter().flat_map(|s| s.split_whitespace()).collect(),
            Vec::new(),
        )
    };
    if given.len() > 1 && is_in(PREFIXES, given[0]) {
        p.prefix = Some(given.remove(0));
    }
    let suffix_room = if comma_form { 1 } else { 2 };
    if p.suffix.is_empty()
        && given.len() > suffix_room
        && given.last().is_some_and(|w| is_in(SUFFIXES, w))
    {
        p.suffix.extend(given.pop());
    }
    if given.is_empty() {
        return p;
    }
    p.first = vec![given.remove(0)];
    if comma_form {
        (p.middle, p.last) = (given, last);
    } else if !given.is_empty() {
        let start = given
            .iter()
            .position(|w| is_in(PARTICLES, w))
            .unwrap_or(given.len() - 1);
        p.last = given.split_off(start);
        p.middle = given;
    }
    p
}

/// Capitalises each run of letters after a space, hyphen or apostrophe, and `Mc` names.
fn name_case(word: &str) -> String {
    let lower = word.to_lowercase();
    if is_in(SUFFIXES, &lower) && !matches!(lower.trim_end_matches('.'), "jr" | "sr" | "esq") {
        return if lower.starts_with("ph") {
            "PhD".into()
        } else {
            lower.to_uppercase()
        };
    }
    let mut out = String::with_capacity(word.len());
    let mut up = true;
    for (i, ch) in lower.chars().enumerate() {
        if up || (i == 2 && out.starts_with("Mc")) {
            out.extend(ch.to_uppercase())
        } else {
            out.push(ch)
        }
        up = matches!(ch, '-' | '\'' | '’');
    }
    out
}

struct NameParseItStep(Config);

impl Step for NameParseItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let Some(raw) = contact.field(&c.source_field) else {
            return Ok(
                Outcome::ok(format!("{} is empty; nothing to parse", c.source_field))
                    .with("skipped", true),
            );
        };
        if raw.contains('@') || raw.chars().any(|ch| ch.is_ascii_digit()) {
            return Ok(Outcome::failed(format!(
                "{} looks like an email or phone number, not a name",
                c.source_field
            )));
        }
        let p = parse(raw);
        if p.first.is_empty() {
            return Ok(Outcome::failed(format!("{} holds no name", c.source_field)));
        }
        let letters = raw.chars().filter(|ch| ch.is_alphabetic());
        let fix = c.fix_case
            && (letters.clone().all(char::is_uppercase) || letters.clone().all(char::is_lowercase));
        let join = |words: &[&str], particles_lower: bool| {
            let cased = words.iter().enumerate().map(|(i, w)| match fix {
                false => (*w).to_owned(),
                true if particles_lower
                    && i + 1 < words.len()
                    && is_in(PARTICLES, w)
                    && !is_in(&["st"], w) =>
                {
                    w.to_lowercase()
                }
                true => name_case(w),
            });
            cased.collect::<Vec<_>>().join(" ")
        };
        let separate = c.middle_policy == MiddlePolicy::Separate;
        let mut last = p.last.clone();
        if c.middle_policy == MiddlePolicy::IntoLast {
            last.splice(0..0, p.middle.iter().copied());
        }
        let parts = [
            ("first", Some(&c.first_name_field), join(&p.first, false)),
            ("last", Some(&c.last_name_field), join(&last, true)),
            (
                "middle",
                c.middle_name_field.as_ref().filter(|_| separate),
                if separate {
                    join(&p.middle, false)
                } else {
                    String::new()
                },
            ),
            (
                "prefix",
                c.prefix_field.as_ref(),
                join(p.prefix.as_slice(), false),
            ),
            ("suffix", c.suffix_field.as_ref(), join(&p.suffix, false)),
        ];
        let single = p.middle.is_empty() && p.last.is_empty();
        let mut out = Outcome::ok(format!("Parsed {raw:?}"));
        for (key, field, value) in parts {
            if !value.is_empty() || key == "first" || key == "last" {
                out = out.with(key, value.clone());
            }
            let keep = key == "last" && single && !c.clear_last_on_single;
            let Some(field) =
                field.filter(|f| !keep && (c.overwrite || contact.field(f).is_none()))
            else {
                continue;
            };
            if !value.is_empty() {
                out = out.set_field(contact, field, value);
            } else if contact.fields.get(field).is_some_and(|v| !v.is_empty()) {
                out = out.change(Change::SetField {
                    field: field.clone(),
                    value: None,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    /// Parses `name` with prefix, middle and suffix fields set; "prefix|first|middle|last|suffix".
    fn split(name: &str, extra: serde_json::Value) -> String {
        let mut cfg = json!({"source_field": "full", "suffix_field": "sfx", "prefix_field": "pre", "middle_name_field": "mid"});
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let out = run(&NameParseIt, cfg, &contact(&[("full", name)], &[]));
        let part = |k: &str| {
            out.output
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        ["prefix", "first", "middle", "last", "suffix"]
            .map(part)
            .join("|")
    }

    fn clear(field: &str) -> Change {
        Change::SetField {
            field: field.into(),
            value: None,
        }
    }

    #[test]
    fn splits_common_shapes() {
        let (into_last, separate, fix) = (
            json!({}),
            json!({"middle_policy": "separate"}),
            json!({"fix_case": true}),
        );
        let cases = [
            ("John Smith", &into_last, "|John||Smith|"),
            (
                "  Dr.\tJohn  Paul   Smith Jr. ",
                &separate,
                "Dr.|John|Paul|Smith|Jr.",
            ),
            ("John Paul Smith", &into_last, "|John||Paul Smith|"),
            (
                "John Paul Smith",
                &json!({"middle_policy": "drop"}),
                "|John||Smith|",
            ),
            ("Ludwig van Beethoven", &separate, "|Ludwig||van Beethoven|"),
            ("Smith, John Paul", &separate, "|John|Paul|Smith|"),
            ("John Smith, PhD", &into_last, "|John||Smith|PhD"),
            ("John Jr", &into_last, "|John||Jr|"),
            ("Mr Bean", &into_last, "Mr|Bean|||"),
            (
                "JOHN VAN DER BERG-MCDONALD III",
                &fix,
                "|John||van der Berg-Mcdonald|III",
            ),
            ("mary o'neil", &fix, "|Mary||O'Neil|"),
            ("mcdonald, ronald", &fix, "|Ronald||McDonald|"),
            ("DeShawn McKAY", &fix, "|DeShawn||McKAY|"),
        ];
        for (name, cfg, want) in cases {
            assert_eq!(split(name, cfg.clone()), want, "{name}");
        }
    }

    #[test]
    fn writes_parts_and_clears_absent_ones() {
        let c = contact(
            &[
                ("full", "Ada Lovelace"),
                ("sfx", "Jr"),
                ("last_name", "Old"),
            ],
            &[],
        );
        let out = run(
            &NameParseIt,
            json!({"source_field": "full", "suffix_field": "sfx"}),
            &c,
        );
        let set = |f: &str, v: &str| Change::SetField {
            field: f.into(),
            value: Some(v.into()),
        };
        assert_eq!(
            out.changes,
            [
                set("first_name", "Ada"),
                set("last_name", "Lovelace"),
                clear("sfx")
            ]
        );
    }

    #[test]
    fn single_word_and_overwrite_options() {
        let c = contact(
            &[
                ("full", "Cher"),
                ("last_name", "Sarkisian"),
                ("first_name", "X"),
            ],
            &[],
        );
        let out = run(&NameParseIt, json!({"source_field": "full"}), &c);
        assert!(out.changes.contains(&clear("last_name")));
        let cfg =
            json!({"source_field": "full", "clear_last_on_single": false, "overwrite": false});
        assert!(run(&NameParseIt, cfg, &c).changes.is_empty());
    }

    #[test]
    fn emails_phones_and_empty_values_write_nothing() {
        for name in ["ada@example.com", "555 1234", " , "] {
            let out = run(
                &NameParseIt,
                json!({"source_field": "n"}),
                &contact(&[("n", name)], &[]),
            );
            assert!(!out.success && out.changes.is_empty(), "{name}");
        }
        let empty = run(
            &NameParseIt,
            json!({"source_field": "n"}),
            &contact(&[("n", " ")], &[]),
        );
        assert!(empty.success && empty.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&NameParseIt, json!({})).is_empty());
        let separate = json!({"source_field": "n", "middle_policy": "separate"});
        assert!(!config_errors(&NameParseIt, separate).is_empty());
        let errs = config_errors(
            &NameParseIt,
            json!({"source_field": "", "suffix_field": "last_name"}),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
