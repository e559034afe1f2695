//! advance_math: advanced numeric operations on a field, written to `target_field`.
//! Unary: `sqrt`, `abs`, `round` (to `decimal_places`), `ceil`, `floor`, `log` (natural,
//! or base `operand`/`second_field` when given). Binary, with a literal `operand` or a
//! `second_field`: `power`, `min`, `max`, `mod` (remainder with the sign of the value) and
//! `random_between` (an integer between the two, inclusive, from the execution's seeded
//! RNG). `expression` evaluates a formula over several fields such as
//! `({{_Price}} * {{_Qty}}) * 1.07` with a small arithmetic-only parser: numbers,
//! `{{field}}`, `+ - * / % ^` (`**` too), parentheses and `abs sqrt round ceil floor min
//! max`; nothing else is accepted, and the formula is checked when the config is built.
//! Values may carry a currency sign and thousands separators. An empty or non-numeric
//! value, the square root or logarithm of a number out of range, a division or modulo by
//! zero and any non-finite result fail without a write (`error` says which). Results are
//! written without trailing zeros. Idempotent when the target differs from the source.

use super::math_it::{format_number, parse_number, round_decimal};
use crate::connectors::Capability;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The operation applied.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// value ^ operand.
    Power,
    /// √value.
    Sqrt,
    /// |value|.
    Abs,
    /// value rounded to `decimal_places`.
    Round,
    /// value rounded up to an integer.
    Ceil,
    /// value rounded down to an integer.
    Floor,
    /// The smaller of value and operand.
    Min,
    /// The larger of value and operand.
    Max,
    /// The remainder of value ÷ operand.
    Mod,
    /// Natural logarithm, or the logarithm in base operand when one is given.
    Log,
    /// A random integer between value and operand, inclusive.
    RandomBetween,
    /// Evaluate `expression`.
    Expression,
}

impl Operation {
    fn binary(self) -> bool {
        matches!(
            self,
            Self::Power | Self::Min | Self::Max | Self::Mod | Self::RandomBetween
        )
    }
}

/// Config of advance_math.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The operation.
    pub operation: Operation,
    /// The field read; required except for `expression`.
    pub source_field: Option<String>,
    /// A literal second operand.
    pub operand: Option<f64>,
    /// A field holding the second operand; exclusive with `operand`.
    pub second_field: Option<String>,
    /// The formula of `expression`, e.g. `({{_Price}} * {{_Qty}}) * 1.07`.
    pub expression: Option<String>,
    /// The field written.
    pub target_field: String,
    /// Decimal places kept, 0–10; default 2.
    #[serde(default = "default_places")]
    pub decimal_places: u32,
}

const fn default_places() -> u32 {
    2
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let op = self.operation;
        let expr = op == Operation::Expression;
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            !expr && self.source_field.is_none(),
            "source_field",
            "is required for this operation",
        );
        check(
            &mut errors,
            blank(&self.source_field),
            "source_field",
            "must not be empty",
        );
        check(
            &mut errors,
            blank(&self.second_field),
            "second_field",
            "must not be empty",
        );
        check(
            &mut errors,
            op.binary() && self.operand.is_none() && self.second_field.is_none(),
            "operand",
            "is required for this operation (or set second_field)",
        );
        check(
            &mut errors,
            self.operand.is_some() && self.second_field.is_some(),
            "second_field",
            "set operand or second_field, not both",
        );
        check(
            &mut errors,
            self.operand.is_some_and(|o| !o.is_finite()),
            "operand",
            "must be a finite number",
        );
        check(
            &mut errors,
            op == Operation::Mod && self.operand == Some(0.0),
            "operand",
            "cannot take a remainder by zero",
        );
        check(
            &mut errors,
            op == Operation::Log && self.operand.is_some_and(|b| b <= 0.0 || b == 1.0),
            "operand",
            "a logarithm base must be positive and not 1",
        );
        match (&self.expression, expr) {
            (None, true) => errors.push(FieldError::new("expression", "is required")),
            (Some(_), false) => errors.push(FieldError::new(
                "expression",
                "is only used with operation expression",
            )),
            (Some(e), true) => {
                if let Err(why) = parse(e) {
                    errors.push(FieldError::new("expression", why));
                }
            }
            (None, false) => {}
        }
        check(
            &mut errors,
            self.decimal_places > 10,
            "decimal_places",
            "must be between 0 and 10",
        );
        finish(errors)
    }
}

/// The advance_math helper.
pub struct AdvanceMath;

impl Helper for AdvanceMath {
    const NAME: &'static str = "advance_math";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Applies power, roots, rounding, min/max, modulo or a formula over fields.";
    const EXAMPLE_CONFIG: &'static str = r#"{"operation": "power", "source_field": "_Purchases", "operand": 2, "target_field": "_PurchasesSquared"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["result", "operation", "source", "error", "<target_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let formula = config.expression.as_deref().and_then(|e| parse(e).ok());
        Runnable::Sync(Box::new(AdvanceMathStep { config, formula }))
    }
}

/// A binary operator of the formula language.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Field(String),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(&'static str, Vec<Expr>),
}

const FUNCTIONS: &[(&str, usize)] = &[
    ("abs", 1),
    ("sqrt", 1),
    ("round", 1),
    ("ceil", 1),
    ("floor", 1),
    ("min", 2),
    ("max", 2),
];
const MAX_LEN: usize = 1000;
const MAX_DEPTH: usize = 40;

/// Parses a formula; the error says what is wrong and where.
fn parse(src: &str) -> Result<Expr, String> {
    if src.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    let e = p.expr()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected character"));
    }
    Ok(e)
}

/// A recursive-descent parser over the formula's bytes (the grammar is ASCII; field
/// names between `{{` and `}}` may be any UTF-8).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at position {}", self.i + 1)
    }
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(token.as_bytes()) {
            self.i += token.len();
            true
        } else {
            false
        }
    }
    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("formula nests too deeply"));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }
    /// expr := term (('+' | '-') term)*
    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat("+") {
                BinOp::Add
            } else if self.eat("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.term()?));
        }
    }
    /// term := unary (('*' | '/' | '%') unary)*
    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            self.ws();
            let op = if self.s[self.i..].starts_with(b"**") {
                return Ok(left);
            } else if self.eat("*") {
                BinOp::Mul
            } else if self.eat("/") {
                BinOp::Div
            } else if self.eat("%") {
                BinOp::Rem
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }
    /// unary := ('-' | '+') unary | power
    fn unary(&mut self) -> Result<Expr, String> {
        self.nest(|p| {
            if p.eat("-") {
                Ok(Expr::Neg(Box::new(p.unary()?)))
            } else if p.eat("+") {
                p.unary()
            } else {
                p.power()
            }
        })
    }
    /// power := atom (('^' | '**') unary)?   (right-associative)
    fn power(&mut self) -> Result<Expr, String> {
        let base = self.atom()?;
        if self.eat("^") || self.eat("**") {
            return Ok(Expr::Bin(
                BinOp::Pow,
                Box::new(base),
                Box::new(self.unary()?),
            ));
        }
        Ok(base)
    }
    /// atom := number | '{{' field '}}' | name '(' expr (',' expr)* ')' | '(' expr ')'
    fn atom(&mut self) -> Result<Expr, String> {
        self.ws();
        let start = self.i;
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.err("formula ends too early"));
        };
        if self.eat("{{") {
            let rest = &self.s[self.i..];
            let Some(end) = rest.windows(2).position(|w| w == b"}}") else {
                return Err(self.err("unclosed {{"));
            };
            let name = String::from_utf8_lossy(&rest[..end]).trim().to_owned();
            if name.is_empty() {
                return Err(self.err("empty field name"));
            }
            self.i += end + 2;
            return Ok(Expr::Field(name));
        }
        if c == b'(' {
            self.i += 1;
            let e = self.nest(Self::expr)?;
            if !self.eat(")") {
                return Err(self.err("missing )"));
            }
            return Ok(e);
        }
        if c.is_ascii_digit() || c == b'.' {
            while self
                .s
                .get(self.i)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
            {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            return text.parse().map(Expr::Num).map_err(|_| {
                self.i = start;
                self.err("bad number")
            });
        }
        if c.is_ascii_alphabetic() {
            while self.s.get(self.i).is_some_and(u8::is_ascii_alphabetic) {
                self.i += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.i])
                .unwrap_or("")
                .to_ascii_lowercase();
            let Some(&(f, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
                self.i = start;
                return Err(self.err(&format!("unknown name {name:?}")));
            };
            if !self.eat("(") {
                return Err(self.err(&format!("{f} needs (")));
            }
            let mut args = vec![self.nest(Self::expr)?];
            while self.eat(",") {
                args.push(self.nest(Self::expr)?);
            }
            if !self.eat(")") {
                return Err(self.err("missing )"));
            }
            let ok = if arity == 1 {
                args.len() == 1
            } else {
                args.len() >= 2
            };
            if !ok {
                return Err(self.err(&format!("wrong number of arguments to {f}")));
            }
            return Ok(Expr::Call(f, args));
        }
        Err(self.err("unexpected character"))
    }
}

/// Why a computation could not give a number; the first part is the `error` output.
type Fail = (&'static str, String);

fn read(contact: &Contact, field: &str) -> Result<f64, Fail> {
    let Some(raw) = contact.field(field) else {
        return Err(("empty", format!("{field} is empty")));
    };
    parse_number(raw).ok_or_else(|| {
        (
            "not_a_number",
            format!("{field} value {raw:?} is not a number"),
        )
    })
}

fn div_zero() -> Fail {
    ("division_by_zero", "division or remainder by zero".into())
}

fn eval(e: &Expr, contact: &Contact) -> Result<f64, Fail> {
    let v = match e {
        Expr::Num(n) => *n,
        Expr::Field(f) => read(contact, f)?,
        Expr::Neg(x) => -eval(x, contact)?,
        Expr::Bin(op, a, b) => {
            let (a, b) = (eval(a, contact)?, eval(b, contact)?);
            match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div | BinOp::Rem if b == 0.0 => return Err(div_zero()),
                BinOp::Div => a / b,
                BinOp::Rem => a % b,
                BinOp::Pow => a.powf(b),
            }
        }
        Expr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, contact))
                .collect::<Result<Vec<_>, _>>()?;
            let x = vals.first().copied().unwrap_or(0.0);
            match *f {
                "abs" => x.abs(),
                "sqrt" => sqrt(x)?,
                "round" => x.round(),
                "ceil" => x.ceil(),
                "floor" => x.floor(),
                "min" => vals.iter().copied().fold(f64::INFINITY, f64::min),
                _ => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            }
        }
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(("not_finite", "the result is not a finite number".into()))
    }
}

fn sqrt(x: f64) -> Result<f64, Fail> {
    if x < 0.0 {
        return Err((
            "negative_sqrt",
            format!("cannot take the square root of {x}"),
        ));
    }
    Ok(x.sqrt())
}

/// The formula with each `{{field}}` shown as its value, for the `source` output.
fn show(e: &Expr, contact: &Contact) -> String {
    match e {
        Expr::Num(n) => format!("{n}"),
        Expr::Field(f) => contact.field(f).unwrap_or("").trim().to_owned(),
        Expr::Neg(x) => format!("-{}", show(x, contact)),
        Expr::Bin(op, a, b) => {
            let sym = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Rem => "%",
                BinOp::Pow => "^",
            };
            format!("({} {sym} {})", show(a, contact), show(b, contact))
        }
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(|a| show(a, contact)).collect();
            format!("{f}({})", args.join(", "))
        }
    }
}

struct AdvanceMathStep {
    config: Config,
    formula: Option<Expr>,
}

impl AdvanceMathStep {
    fn compute(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<(f64, String), Fail> {
        let c = &self.config;
        if let Some(f) = &self.formula {
            return Ok((eval(f, contact)?, show(f, contact)));
        }
        let field = c.source_field.as_deref().unwrap_or_default();
        let x = read(contact, field)?;
        let y = match (&c.second_field, c.operand) {
            (Some(f), _) => Some(read(contact, f)?),
            (None, o) => o,
        };
        let y0 = y.unwrap_or(0.0);
        let v = match c.operation {
            Operation::Sqrt => sqrt(x)?,
            Operation::Abs => x.abs(),
            Operation::Round | Operation::Expression => x,
            Operation::Ceil => x.ceil(),
            Operation::Floor => x.floor(),
            Operation::Power => x.powf(y0),
            Operation::Min => x.min(y0),
            Operation::Max => x.max(y0),
            Operation::Mod if y0 == 0.0 => return Err(div_zero()),
            Operation::Mod => x % y0,
            Operation::Log => {
                if x <= 0.0 || y.is_some_and(|b| b <= 0.0 || b == 1.0) {
                    return Err((
                        "log_domain",
                        format!("cannot take the logarithm of {x} in base {y0}"),
                    ));
                }
                y.map_or(x.ln(), |b| x.log(b))
            }
            Operation::RandomBetween => {
                let (lo, hi) = (x.min(y0).ceil(), x.max(y0).floor());
                if lo > hi || lo.abs() > 9.0e15 || hi.abs() > 9.0e15 {
                    return Err(("empty_range", format!("no integer between {x} and {y0}")));
                }
                ctx.rng().random_range(lo as i64..=hi as i64) as f64
            }
        };
        if !v.is_finite() {
            return Err(("not_finite", "the result is not a finite number".into()));
        }
        Ok((v, contact.field(field).unwrap_or("").trim().to_owned()))
    }
}

impl Step for AdvanceMathStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let op = serde_json::to_value(c.operation).unwrap_or_default();
        let (value, source) = match self.compute(ctx, contact) {
            Ok(v) => v,
            Err((code, why)) => {
                return Ok(Outcome::failed(why)
                    .with("error", code)
                    .with("operation", op));
            }
        };
        let rounded = round_decimal(value, c.decimal_places);
        if !rounded.is_finite() {
            return Ok(Outcome::failed("the result is not a finite number")
                .with("error", "not_finite")
                .with("operation", op));
        }
        let text = format_number(rounded, c.decimal_places);
        let target = c.target_field.trim();
        Ok(Outcome::ok(format!("{target} = {text}"))
            .with("result", text.clone())
            .with("operation", op)
            .with("source", source)
            .with(target, text.clone())
            .set_field(contact, target, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, run, set};
    use crate::helpers::{DynHelper, seed_for};
    use serde_json::{Value, json};

    fn calc(cfg: Value, fields: &[(&str, &str)]) -> Outcome {
        run(&AdvanceMath, cfg, &contact(fields, &[]))
    }

    fn result(op: &str, value: &str, operand: Option<f64>) -> String {
        let mut cfg = json!({"operation": op, "source_field": "x", "target_field": "t"});
        if let Some(o) = operand {
            cfg["operand"] = json!(o);
        }
        let out = calc(cfg, &[("x", value)]);
        if out.success {
            out.output["result"].as_str().unwrap().to_owned()
        } else {
            format!("error: {}", out.output["error"].as_str().unwrap())
        }
    }

    #[test]
    fn unary_and_binary_operations() {
        let cases = [
            ("power", "3", Some(2.0), "9"),
            ("power", "2", Some(0.5), "1.41"),
            ("sqrt", "16", None, "4"),
            ("sqrt", "2", None, "1.41"),
            ("abs", "-$1,250.50", None, "1250.5"),
            ("round", "2.345", None, "2.35"),
            ("ceil", "2.1", None, "3"),
            ("floor", "-2.1", None, "-3"),
            ("min", "5", Some(3.0), "3"),
            ("max", "5", Some(30.0), "30"),
            ("mod", "17", Some(5.0), "2"),
            ("mod", "-17", Some(5.0), "-2"),
            ("log", "100", Some(10.0), "2"),
            ("log", "1", None, "0"),
        ];
        for (op, value, operand, want) in cases {
            assert_eq!(result(op, value, operand), want, "{op} {value} {operand:?}");
        }
    }

    #[test]
    fn bad_inputs_fail_without_a_write() {
        assert_eq!(result("sqrt", "-4", None), "error: negative_sqrt");
        assert_eq!(result("abs", "twelve", None), "error: not_a_number");
        assert_eq!(result("abs", "  ", None), "error: empty");
        assert_eq!(result("log", "0", None), "error: log_domain");
        assert_eq!(result("power", "-8", Some(0.5)), "error: not_finite");
        assert_eq!(result("power", "10", Some(400.0)), "error: not_finite");
        let out = calc(
            json!({"operation": "mod", "source_field": "x", "second_field": "y", "target_field": "t"}),
            &[("x", "7"), ("y", "0")],
        );
        assert!(!out.success && out.changes.is_empty());
        assert_eq!(out.output["error"], "division_by_zero");
    }

    #[test]
    fn second_field_and_outputs() {
        let out = calc(
            json!({"operation": "max", "source_field": "x", "second_field": "y", "target_field": "t", "decimal_places": 0}),
            &[("x", "4.4"), ("y", "$9.6")],
        );
        assert_eq!(out.changes, vec![set("t", "10")]);
        assert_eq!(out.output["operation"], "max");
        assert_eq!(out.output["source"], "4.4");
        assert_eq!(out.output["t"], "10");
    }

    #[test]
    fn expressions_over_fields() {
        let eval = |e: &str, fields: &[(&str, &str)]| {
            let out = calc(
                json!({"operation": "expression", "expression": e, "target_field": "t"}),
                fields,
            );
            if out.success {
                out.output["result"].as_str().unwrap().to_owned()
            } else {
                format!("error: {}", out.output["error"].as_str().unwrap())
            }
        };
        let f = [("_Price", "$19.99"), ("_Qty", "3"), ("zero", "0")];
        assert_eq!(eval("({{_Price}} * {{_Qty}}) * 1.07", &f), "64.17");
        assert_eq!(eval("2 + 3 * 4 - 6 / 3", &f), "12");
        assert_eq!(eval("2 ^ 3 ^ 2", &f), "512");
        assert_eq!(eval("-2 ** 2 + 10 % 4", &f), "-2");
        assert_eq!(eval("max({{_Qty}}, 7, 2) + min(1, -1)", &f), "6");
        assert_eq!(
            eval("sqrt(abs(-16)) + round(2.5) + ceil(.2) + floor(1.9)", &f),
            "9"
        );
        assert_eq!(eval("{{_Qty}} / {{zero}}", &f), "error: division_by_zero");
        assert_eq!(eval("{{ _Missing }} + 1", &f), "error: empty");
        assert_eq!(eval("sqrt(-1)", &f), "error: negative_sqrt");
        let out = calc(
            json!({"operation": "expression", "expression": "{{_Qty}}*2", "target_field": "t"}),
            &f,
        );
        assert_eq!(out.output["source"], "(3 * 2)");
    }

    #[test]
    fn bad_formulas_are_config_errors() {
        for e in [
            "1 +",
            "(1 + 2",
            "{{a}",
            "{{ }} + 1",
            "system(1)",
            "1 2",
            "1..2",
            "abs(1, 2)",
            "min(1)",
            "$x",
            "",
        ] {
            let errs = config_errors(
                &AdvanceMath,
                json!({"operation": "expression", "expression": e, "target_field": "t"}),
            );
            assert_eq!(errs.len(), 1, "{e}: {errs:?}");
            assert_eq!(errs[0].field, "expression");
        }
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).unwrap_err().contains("deeply"));
        assert!(parse(&"1+".repeat(600)).is_err());
        assert!(parse(&format!("{}1", "-".repeat(100))).is_err());
    }

    #[test]
    fn random_between_is_seeded_and_in_range() {
        let cfg = json!({"operation": "random_between", "source_field": "x", "operand": 10, "target_field": "t"});
        let c = contact(&[("x", "1")], &[]);
        let Ok(Runnable::Sync(step)) = AdvanceMath.build_json(&cfg) else {
            panic!("sync step")
        };
        let mut env = Env::new();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            env.execution_id = format!("exec-{i}");
            env.seed = seed_for(&env.execution_id);
            let out = step.run(&env.ctx(), &c).unwrap();
            let n: i64 = out.output["result"].as_str().unwrap().parse().unwrap();
            assert!((1..=10).contains(&n));
            seen.insert(n);
            assert_eq!(
                step.run(&env.ctx(), &c).unwrap(),
                out,
                "redelivery draws the same"
            );
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(
            result("random_between", "1.5", Some(1.9)),
            "error: empty_range"
        );
    }

    #[test]
    fn rerun_writes_nothing_new() {
        let cfg = json!({"operation": "sqrt", "source_field": "x", "target_field": "t"});
        let out = calc(cfg, &[("x", "81"), ("t", "9")]);
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["result"], "9");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &AdvanceMath,
            json!({"operation": "power", "target_field": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["target_field", "source_field", "operand"]);
        let both = json!({"operation": "min", "source_field": "x", "operand": 1, "second_field": "y", "target_field": "t"});
        assert_eq!(config_errors(&AdvanceMath, both)[0].field, "second_field");
        let zero =
            json!({"operation": "mod", "source_field": "x", "operand": 0, "target_field": "t"});
        assert_eq!(config_errors(&AdvanceMath, zero)[0].field, "operand");
        let base =
            json!({"operation": "log", "source_field": "x", "operand": 1, "target_field": "t"});
        assert_eq!(config_errors(&AdvanceMath, base)[0].field, "operand");
        let stray = json!({"operation": "abs", "source_field": "x", "expression": "1", "target_field": "t"});
        assert_eq!(config_errors(&AdvanceMath, stray)[0].field, "expression");
        let missing = json!({"operation": "expression", "target_field": "t"});
        assert_eq!(config_errors(&AdvanceMath, missing)[0].field, "expression");
        let places = json!({"operation": "abs", "source_field": "x", "target_field": "t", "decimal_places": 11});
        assert_eq!(
            config_errors(&AdvanceMath, places)[0].field,
            "decimal_places"
        );
        assert!(
            !config_errors(
                &AdvanceMath,
                json!({"operation": "cube", "source_field": "x", "target_field": "t"})
            )
            .is_empty()
        );
    }
}
