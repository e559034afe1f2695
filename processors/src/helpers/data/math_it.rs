//! math_it: `field <operation> operand → target_field` (default: the field itself). The
//! operand is a literal `operand` or another field (`operand_field`). Values may carry a
//! currency sign and thousands separators (`$1,250.50`). An empty value counts as 0 unless
//! `empty_as_zero` is off; a non-numeric value counts as 0 (logged) unless `strict` is on,
//! in which case the helper fails without a write. Results are rounded to `decimal_places`
//! and written without trailing zeros (`3`, `2.5`); NaN and infinity are never written.
//! `random` draws an integer between the field and the operand from the execution's seeded
//! RNG, so a redelivery draws the same number. In place, `add` is not idempotent: that is
//! what counters want.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use rand::Rng;
use serde::Deserialize;

/// The arithmetic applied.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// value + operand.
    Add,
    /// value − operand.
    Subtract,
    /// value × operand.
    Multiply,
    /// value ÷ operand.
    Divide,
    /// value × operand ÷ 100.
    Percent,
    /// The smaller of value and operand.
    Min,
    /// The larger of value and operand.
    Max,
    /// A random integer between value and operand, inclusive.
    Random,
    /// value rounded to `decimal_places`.
    Round,
    /// value rounded up to an integer.
    Ceil,
    /// value rounded down to an integer.
    Floor,
    /// The absolute value.
    Abs,
}

impl Operation {
    fn binary(self) -> bool {
        !matches!(self, Self::Round | Self::Ceil | Self::Floor | Self::Abs)
    }
}

/// Config of math_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read.
    pub field: String,
    /// The arithmetic.
    pub operation: Operation,
    /// A literal operand.
    pub operand: Option<f64>,
    /// A field holding the operand; exclusive with `operand`.
    pub operand_field: Option<String>,
    /// The field written; default `field`.
    pub target_field: Option<String>,
    /// Decimal places kept, 0–10; default 2.
    #[serde(default = "default_places")]
    pub decimal_places: u32,
    /// Treat an empty value as 0; default true.
    #[serde(default = "default_true")]
    pub empty_as_zero: bool,
    /// Fail on a non-numeric value instead of counting it as 0; default false.
    #[serde(default)]
    pub strict: bool,
}

const fn default_places() -> u32 {
    2
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let binary = self.operation.binary();
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        check(
            &mut errors,
            self.field.trim().is_empty(),
            "field",
            "must not be empty",
        );
        check(
            &mut errors,
            blank(&self.target_field),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            blank(&self.operand_field),
            "operand_field",
            "must not be empty",
        );
        check(
            &mut errors,
            binary && self.operand.is_none() && self.operand_field.is_none(),
            "operand",
            "is required for this operation (or set operand_field)",
        );
        check(
            &mut errors,
            self.operand.is_some() && self.operand_field.is_some(),
            "operand_field",
            "set operand or operand_field, not both",
        );
        check(
            &mut errors,
            self.operand.is_some_and(|o| !o.is_finite()),
            "operand",
            "must be a finite number",
        );
        let zero_div = matches!(self.operation, Operation::Divide) && self.operand == Some(0.0);
        check(&mut errors, zero_div, "operand", "cannot divide by zero");
        check(
            &mut errors,
            self.decimal_places > 10,
            "decimal_places",
            "must be between 0 and 10",
        );
        finish(errors)
    }
}

/// The math_it helper.
pub struct MathIt;

impl Helper for MathIt {
    const NAME: &'static str = "math_it";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Applies basic arithmetic to a numeric field and writes the result.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"field": "_Visits", "operation": "add", "operand": 1}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] = &["result", "<target_field>"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(MathItStep(config)))
    }
}

/// Parses `$1,250.50`-style numbers; `None` for text that is not a number.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '$' | '€' | '£' | ' '))
        .collect();
    cleaned.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Rounds half away from zero on the shortest decimal form, so 2.345 → 2.35 as a person
/// expects (plain `(x * 100).round()` gives 2.34 because 2.345 is stored as 2.34499…).
pub(crate) fn round_decimal(n: f64, places: u32) -> f64 {
    let text = format!("{}", n.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let places = places as usize;
    if frac.len() <= places {
        return n;
    }
    let mut digits: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().take(places))
        .map(|b| b - b'0')
        .collect();
    if frac.as_bytes()[places] >= b'5' {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - places;
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let rounded: f64 = format!("{}.{}0", &s[..split], &s[split..])
        .parse()
        .unwrap_or(n.abs());
    rounded.copysign(n)
}

/// Formats a rounded number without trailing zeros.
pub(crate) fn format_number(n: f64, places: u32) -> String {
    let s = format!("{n:.*}", places as usize);
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

struct MathItStep(Config);

impl MathItStep {
    fn read(&self, contact: &Contact, field: &str, logs: &mut Vec<String>) -> Result<f64, String> {
        let Some(raw) = contact.field(field) else {
            return if self.0.empty_as_zero {
                Ok(0.0)
            } else {
                Err(format!("{field} is empty"))
            };
        };
        match parse_number(raw) {
            Some(n) => Ok(n),
            None if self.0.strict => Err(format!("{field} value {raw:?} is not a number")),
            None => {
                logs.push(format!(
                    "{field} value {raw:?} is not a number; counted as 0."
                ));
                Ok(0.0)
            }
        }
    }
}

impl Step for MathItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let target = c.target_field.as_ref().unwrap_or(&c.field);
        let mut logs = Vec::new();
        let operand = match (&c.operand_field, c.operand) {
            (Some(f), _) => self.read(contact, f, &mut logs),
            (None, o) => Ok(o.unwrap_or(0.0)),
        };
        let (x, y) = match (self.read(contact, &c.field, &mut logs), operand) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => return Ok(Outcome::failed(e)),
        };
        let result = match c.operation {
            Operation::Divide if y == 0.0 => return Ok(Outcome::failed("cannot divide by zero")),
            Operation::Add => x + y,
            Operation::Subtract => x - y,
            Operation::Multiply => x * y,
            Operation::Divide => x / y,
            Operation::Percent => x * y / 100.0,
            Operation::Min => x.min(y),
            Operation::Max => x.max(y),
            Operation::Random => {
                let (lo, hi) = (x.min(y).ceil(), x.max(y).floor());
                if lo > hi || lo.abs() > 9.0e15 || hi.abs() > 9.0e15 {
                    return Ok(Outcome::failed(format!("no integer between {x} and {y}")));
                }
                ctx.rng().random_range(lo as i64..=hi as i64) as f64
            }
            Operation::Round => x,
            Operation::Ceil => x.ceil(),
            Operation::Floor => x.floor(),
            Operation::Abs => x.abs(),
        };
        let rounded = round_decimal(result, c.decimal_places);
        if !rounded.is_finite() {
            return Ok(Outcome::failed(format!(
                "result of {:?} is not a finite number",
                c.operation
            )));
        }
        let text = format_number(rounded, c.decimal_places);
        let mut out = Outcome::ok(format!("{target} = {text}"))
            .with(target, text.clone())
            .with("result", text.clone())
            .set_field(contact, target, text);
        out.logs = logs;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    fn calc(op: &str, value: &str, operand: f64) -> String {
        let out = run(
            &MathIt,
            json!({"field": "f", "operation": op, "operand": operand}),
            &contact(&[("f", value)], &[]),
        );
        assert!(out.success, "{}", out.message);
        out.output["result"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn arithmetic_and_formatting() {
        assert_eq!(calc("add", "41", 1.0), "42");
        assert_eq!(calc("add", "0.1", 0.2), "0.3");
        assert_eq!(calc("subtract", "$1,250.50", 0.5), "1250");
        assert_eq!(calc("multiply", "2.5", 3.0), "7.5");
        assert_eq!(calc("divide", "10", 3.0), "3.33");
        assert_eq!(calc("percent", "200", 7.5), "15");
        assert_eq!(calc("min", "5", 3.0), "3");
        assert_eq!(calc("max", "-5", -3.0), "-3");
        assert_eq!(calc("round", "2.345", 0.0), "2.35");
        assert_eq!(calc("ceil", "2.1", 0.0), "3");
        assert_eq!(calc("floor", "-2.1", 0.0), "-3");
        assert_eq!(calc("abs", "-0.001", 0.0), "0");
    }

    #[test]
    fn rounding_is_decimal_half_away_from_zero() {
        assert_eq!(round_decimal(9.995, 2), 10.0);
        assert_eq!(round_decimal(2.5, 0), 3.0);
        assert_eq!(round_decimal(-2.5, 0), -3.0);
        assert_eq!(round_decimal(1.004, 2), 1.0);
        assert_eq!(format_number(round_decimal(1234.5678, 3), 3), "1234.568");
    }

    #[test]
    fn operand_field_and_target_field() {
        let cfg = json!({"field": "price", "operation": "multiply", "operand_field": "qty", "target_field": "total"});
        let out = run(
            &MathIt,
            cfg,
            &contact(&[("price", "19.99"), ("qty", "3")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetField {
                field: "total".into(),
                value: Some("59.97".into())
            }]
        );
    }

    #[test]
    fn empty_and_garbage_values() {
        assert_eq!(calc("add", "", 1.0), "1");
        let out = run(
            &MathIt,
            json!({"field": "f", "operation": "add", "operand": 1}),
            &contact(&[("f", "lots")], &[]),
        );
        assert_eq!(
            (out.output["result"].clone(), out.logs.len()),
            (json!("1"), 1)
        );
        let strict = json!({"field": "f", "operation": "add", "operand": 1, "strict": true, "empty_as_zero": false});
        assert!(!run(&MathIt, strict.clone(), &contact(&[("f", "lots")], &[])).success);
        assert!(!run(&MathIt, strict, &contact(&[], &[])).success);
    }

    #[test]
    fn divide_by_a_zero_field_fails_without_a_write() {
        let cfg = json!({"field": "a", "operation": "divide", "operand_field": "b"});
        let out = run(&MathIt, cfg, &contact(&[("a", "1"), ("b", "0")], &[]));
        assert!(!out.success && out.changes.is_empty());
    }

    #[test]
    fn random_is_in_range_and_pinned_to_the_execution() {
        let cfg = json!({"field": "f", "operation": "random", "operand": 10});
        let c = contact(&[("f", "1")], &[]);
        let first = run(&MathIt, cfg.clone(), &c).output["result"].clone();
        let n: i64 = first.as_str().unwrap().parse().unwrap();
        assert!((1..=10).contains(&n));
        assert_eq!(run(&MathIt, cfg, &c).output["result"], first);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&MathIt, json!({"field": "f", "operation": "add"})).is_empty());
        assert!(
            !config_errors(
                &MathIt,
                json!({"field": "f", "operation": "divide", "operand": 0})
            )
            .is_empty()
        );
        assert!(!config_errors(&MathIt, json!({"field": "f", "operation": "sqrt"})).is_empty());
        let errs = config_errors(
            &MathIt,
            json!({"field": "", "operation": "add", "operand": 1, "operand_field": "g", "decimal_places": 11}),
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(config_errors(&MathIt, json!({"field": "f", "operation": "abs"})).is_empty());
    }
}
