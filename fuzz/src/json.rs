//! Arbitrary JSON, biased to what breaks parsers of config and vendor values: numbers at
//! the edges of every integer type, empty, long and multi-byte strings, deep nesting.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

const EDGE_NUMBERS: &[i128] = &[
    0,
    1,
    -1,
    2,
    59,
    60,
    3600,
    86_400,
    i32::MAX as i128,
    i32::MIN as i128,
    u32::MAX as i128,
    i64::MAX as i128,
    i64::MIN as i128,
    u64::MAX as i128,
    253_402_300_800_000,
];

const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999",
    "1e309",
    "NaN",
    "2026-02-30",
    "9999-12-31T23:59:59Z",
    "25:61",
    "ä",
    "日本語テキスト",
    "🙂🙂🙂",
    "~Contact.Id~",
    "{{contact.id}}",
    "a:b",
    "http://127.0.0.1:9/x",
    "http://[::1]/",
    "mailto:x@y",
    "x@y",
    "America/New_York",
    "Mars/Olympus",
];

/// A JSON value at most `depth` levels deep.
pub(crate) fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => {
            let n = *u.choose(EDGE_NUMBERS)? + i128::from(u.int_in_range(-2i8..=2)?);
            serde_json::Number::from_i128(n).map_or(Value::Null, Value::Number)
        }
        3 => json!(u.arbitrary::<f64>()?),
        4 => Value::String((*u.choose(EDGE_STRINGS)?).to_owned()),
        5 => Value::String(string(u)?),
        6 => Value::Array(
            (0..u.int_in_range(0..=4)?)
                .map(|_| value(u, depth - 1))
                .collect::<Result<_>>()?,
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..u.int_in_range(0..=4)? {
                m.insert(string(u)?, value(u, depth - 1)?);
            }
            Value::Object(m)
        }
    })
}

/// A short string, sometimes a long run of one multi-byte character.
pub(crate) fn string(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 8)? {
        let c = *u.choose(&['a', 'é', '日', '🙂'])?;
        return Ok(std::iter::repeat_n(c, u.int_in_range(0..=3000)?).collect());
    }
    u.arbitrary()
}

/// Changes `v` in up to `n` places: a key of an object (existing or new) or an element
/// of an array gets an arbitrary value, or is removed.
pub(crate) fn mutate(u: &mut Unstructured<'_>, v: &mut Value, n: u32) -> Result<()> {
    for _ in 0..n {
        if u.is_empty() {
            break;
        }
        // Walk down a few levels, noting the way as a JSON pointer.
        let mut pointer = String::new();
        let mut here = &*v;
        for _ in 0..u.int_in_range(0..=3)? {
            let next = match here {
                Value::Object(m) if !m.is_empty() => {
                    let k = m
                        .keys()
                        .nth(u.choose_index(m.len())?)
                        .cloned()
                        .unwrap_or_default();
                    let step = format!("/{}", k.replace('~', "~0").replace('/', "~1"));
                    m.get(&k).map(|n| (n, step))
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = u.choose_index(a.len())?;
                    a.get(i).map(|n| (n, format!("/{i}")))
                }
                _ => None,
            };
            match next {
                Some((n, step)) if n.is_object() || n.is_array() => {
                    here = n;
                    pointer.push_str(&step);
                }
                _ => break,
            }
        }
        let Some(at) = v.pointer_mut(&pointer) else {
            break;
        };
        match at {
            Value::Object(m) => {
                let key = if m.is_empty() || u.ratio(1, 5)? {
                    string(u)?
                } else {
                    m.keys()
                        .nth(u.choose_index(m.len())?)
                        .cloned()
                        .unwrap_or_default()
                };
                if u.ratio(1, 6)? {
                    m.remove(&key);
                } else {
                    m.insert(key, value(u, 2)?);
                }
            }
            Value::Array(a) => {
                if a.is_empty() || u.ratio(1, 4)? {
                    a.push(value(u, 2)?);
                } else {
                    let i = u.choose_index(a.len())?;
                    a[i] = value(u, 2)?;
                }
            }
            other => *other = value(u, 2)?,
        }
    }
    Ok(())
}
