//! A small checker of requests against a vendor's published OpenAPI document, used by
//! the fake vendors so that a connector sending what the vendor's spec does not allow
//! fails its tests: the operation must exist (path and method), every query parameter
//! must be declared and fit its schema (integer bounds, enums, arrays as comma lists),
//! required parameters must be present, and a JSON body must fit the operation's request
//! schema. Undeclared body properties are refused, as the vendors do (GoHighLevel answers
//! 422 "property … should not exist", highlevel-api-docs issue #313; Keap's gateway
//! refuses unknown fields).

use serde_json::Value;

/// One vendor's operations, from one or more OpenAPI documents.
#[derive(Debug)]
pub(crate) struct Spec {
    /// The documents, kept for resolving `$ref`s.
    docs: Vec<Value>,
    ops: Vec<Op>,
    /// Paths under these prefixes must be described; others (an OAuth token endpoint, a
    /// v1 API with no published document) are not checked.
    covered: Vec<String>,
}

#[derive(Debug)]
struct Op {
    method: String,
    segments: Vec<Segment>,
    /// The operation object, with its document (for `$ref`s).
    doc: usize,
    operation: Value,
    path_parameters: Value,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// `prefix{param}suffix`.
    Param(String, String),
}

impl Segment {
    fn parse(s: &str) -> Self {
        match (s.find('{'), s.find('}')) {
            (Some(a), Some(b)) if a < b => Self::Param(s[..a].to_owned(), s[b + 1..].to_owned()),
            _ => Self::Literal(s.to_owned()),
        }
    }
    fn matches(&self, s: &str) -> bool {
        match self {
            Self::Literal(l) => l == s,
            Self::Param(pre, suf) => {
                s.len() > pre.len() + suf.len()
                    && s.starts_with(pre.as_str())
                    && s.ends_with(suf.as_str())
            }
        }
    }
}

impl Spec {
    /// Loads `files` (below `processors/src/connectors/`, the copies kept beside each
    /// connector), YAML when they end in `.yml`, else JSON.
    ///
    /// # Panics
    /// When a file is missing or unreadable: the fakes cannot check without it.
    #[allow(clippy::expect_used)]
    pub(crate) fn load(files: &[&str], strip: &str, covered: &[&str]) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/connectors");
        let docs = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(dir.join(f))
                    .expect("a vendor spec beside its connector");
                if f.ends_with(".yml") {
                    serde_norway::from_str(&text).expect("a vendor spec is YAML")
                } else {
                    serde_json::from_str(&text).expect("a vendor spec is JSON")
                }
            })
            .collect();
        Self::new(docs, strip, covered)
    }

    /// The operations of `docs`, whose paths start with `strip` (removed) and are
    /// checked for requests under the `covered` prefixes.
    pub(crate) fn new(docs: Vec<Value>, strip: &str, covered: &[&str]) -> Self {
        let mut ops = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            for (path, item) in d["paths"].as_object().into_iter().flatten() {
                let Some(path) = path.strip_prefix(strip) else {
                    continue;
                };
                let segments: Vec<Segment> = path
                    .trim_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(Segment::parse)
                    .collect();
                for (method, operation) in item.as_object().into_iter().flatten() {
                    if !matches!(method.as_str(), "get" | "put" | "post" | "patch" | "delete") {
                        continue;
                    }
                    ops.push(Op {
                        method: method.to_uppercase(),
                        segments: segments.clone(),
                        doc: i,
                        operation: operation.clone(),
                        path_parameters: item["parameters"].clone(),
                    });
                }
            }
        }
        Self {
            docs,
            ops,
            covered: covered.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    /// Whether `method path?query` with `body` is a request the spec allows; the
    /// reason when it is not.
    pub(crate) fn check(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<(), String> {
        if !self.covered.iter().any(|c| path.starts_with(c.as_str())) {
            return Ok(());
        }
        let parts: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(crate::connectors::fake_http::decode)
            .collect();
        // The most literal match wins (`/tags/categories` over `/tags/{id}`).
        let op = self
            .ops
            .iter()
            .filter(|o| {
                o.method == method
                    && o.segments.len() == parts.len()
                    && o.segments.iter().zip(&parts).all(|(s, p)| s.matches(p))
            })
            .max_by_key(|o| {
                o.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
            .ok_or_else(|| format!("the spec has no operation {method} {path}"))?;
        let doc = &self.docs[op.doc];
        let params: Vec<Value> = op.operation["parameters"]
            .as_array()
            .into_iter()
            .chain(op.path_parameters.as_array())
            .flatten()
            .map(|p| resolve(doc, p).clone())
            .collect();
        let given: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (k, v) in &given {
            let p = params
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == k.as_str())
                .ok_or_else(|| format!("{method} {path}: undeclared query parameter {k}"))?;
            check_query_value(doc, resolve(doc, &p["schema"]), v)
                .map_err(|e| format!("{method} {path}: query parameter {k}: {e}"))?;
        }
        for p in params
            .iter()
            .filter(|p| p["in"] == "query" && p["required"] == true)
        {
            if !given.iter().any(|(k, _)| p["name"] == k.as_str()) {
                return Err(format!(
                    "{method} {path}: missing required query parameter {}",
                    p["name"]
                ));
            }
        }
        let schema =
            &resolve(doc, &op.operation["requestBody"])["content"]["application/json"]["schema"];
        if body.iter().all(u8::is_ascii_whitespace) {
            if resolve(doc, &op.operation["requestBody"])["required"] == true && !schema.is_null() {
                return Err(format!("{method} {path}: the spec requires a body"));
            }
            return Ok(());
        }
        if schema.is_null() {
            // A form or other body the spec describes otherwise (not checked here).
            return Ok(());
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{method} {path}: the body is not JSON: {e}"))?;
        check_value(doc, schema, &value, "body", 0).map_err(|e| format!("{method} {path}: {e}"))
    }
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..16 {
        let Some(r) = v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) else {
            return v;
        };
        v = doc.pointer(r).unwrap_or(&Value::Null);
    }
    v
}

fn types_of(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check_query_value(doc: &Value, schema: &Value, v: &str) -> Result<(), String> {
    let types = types_of(schema);
    if types.contains(&"array") {
        let items = resolve(doc, &schema["items"]);
        return v
            .split(',')
            .try_for_each(|item| check_query_value(doc, items, item.trim()));
    }
    if types.contains(&"integer") || types.contains(&"number") {
        let n: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            return Err(format!("{v} is over the maximum {max}"));
        }
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            return Err(format!("{v} is under the minimum {min}"));
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.iter().any(|e| e.as_str() == Some(v))
    {
        return Err(format!(
            "{v:?} is not one of {}",
            Value::Array(values.clone())
        ));
    }
    Ok(())
}

/// Checks `v` against `schema` (types, enums, required and declared properties, array
/// items; `allOf` merged, `anyOf`/`oneOf` any branch).
fn check_value(
    doc: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    depth: usize,
) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if depth > 12 || schema.is_null() || schema.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(());
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check_value(doc, s, v, at, depth + 1)?;
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(any) = schema[key].as_array() {
            let mut last = String::new();
            if !any
                .iter()
                .any(|s| match check_value(doc, s, v, at, depth + 1) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e;
                        false
                    }
                })
            {
                return Err(last);
            }
        }
    }
    let mut types = types_of(schema);
    // HighLevel's documents, generated from NestJS DTOs, type an `any` as a bare
    // `object` whose example is a number (NumericField.field_value: example 100).
    if types == ["object"]
        && schema.get("properties").is_none()
        && schema.get("example").is_some_and(|e| !e.is_object())
    {
        types.clear();
    }
    if v.is_null() {
        // Clearing a value: allowed where the schema says nullable or lists null.
        if schema["nullable"] == true || types.contains(&"null") || types.is_empty() {
            return Ok(());
        }
        return Err(format!("{at} may not be null"));
    }
    let fits = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return Err(format!("{at} must be {}, not {v}", types.join(" or ")));
    }
    if let (Some(values), Some(s)) = (schema["enum"].as_array(), v.as_str())
        && !values.iter().any(|e| e.as_str() == Some(s))
    {
        return Err(format!(
            "{at}: {s:?} is not one of {}",
            Value::Array(values.clone())
        ));
    }
    if let Some(items) = v.as_array() {
        for (i, item) in items.iter().enumerate() {
            check_value(
                doc,
                &schema["items"],
                item,
                &format!("{at}[{i}]"),
                depth + 1,
            )?;
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for r in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                return Err(format!("{at}.{r} is required"));
            }
        }
        // An empty `properties` is an undescribed body (GHL's SearchBodyV2DTO), not one
        // that allows nothing.
        if let Some(props) = props.filter(|p| !p.is_empty()) {
            let open = schema["additionalProperties"] == true
                || schema["additionalProperties"].is_object();
            for (k, item) in obj {
                match props.get(k) {
                    Some(s) => check_value(doc, s, item, &format!("{at}.{k}"), depth + 1)?,
                    None if open => {}
                    None => return Err(format!("{at}.{k} is not a property the spec declares")),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let doc = serde_json::from_str(r##"{"paths": {
            "/rest/v2/tags/{tag_id}/contacts:applyTags": {"post": {"parameters": [{"name": "tag_id", "in": "path"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Apply"}}}}}},
            "/rest/v2/tags/categories": {"get": {}},
            "/rest/v2/tags/{tag_id}": {"get": {}},
            "/rest/v2/users": {"get": {"parameters": [{"name": "page_size", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "fields", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["id", "email"]}}}]}}},
            "components": {"schemas": {"Apply": {"type": "object", "required": ["contact_ids"],
                "properties": {"contact_ids": {"type": "array", "items": {"type": "string"}}}}}}}"##)
        .unwrap();
        Spec::new(vec![doc], "/rest", &["/v2/"])
    }

    #[test]
    fn requests_are_held_to_the_document() {
        let s = spec();
        let ok = |m: &str, p: &str, q: &str, b: &str| s.check(m, p, q, b.as_bytes());
        assert_eq!(
            ok(
                "POST",
                "/v2/tags/7/contacts:applyTags",
                "",
                r#"{"contact_ids":["1"]}"#
            ),
            Ok(())
        );
        assert!(
            ok(
                "POST",
                "/v2/tags/7/contacts:applyTags",
                "",
                r#"{"contact_ids":[1]}"#
            )
            .is_err()
        );
        assert!(
            ok(
                "POST",
                "/v2/tags/7/contacts:applyTags",
                "",
                r#"{"ids":["1"]}"#
            )
            .is_err()
        );
        assert!(ok("POST", "/v2/tags/7/contacts:applyTags", "", "").is_err());
        assert_eq!(ok("GET", "/v2/tags/categories", "", ""), Ok(()));
        assert_eq!(
            ok("GET", "/v2/users", "page_size=100&fields=id,email", ""),
            Ok(())
        );
        assert!(
            ok("GET", "/v2/users", "page_size=1000", "")
                .unwrap_err()
                .contains("maximum")
        );
        assert!(ok("GET", "/v2/users", "fields=id,phone", "").is_err());
        assert!(
            ok("GET", "/v2/users", "limit=5", "")
                .unwrap_err()
                .contains("undeclared")
        );
        assert!(
            ok("DELETE", "/v2/users", "", "")
                .unwrap_err()
                .contains("no operation")
        );
        // Outside what the document covers: not checked.
        assert_eq!(ok("POST", "/v1/campaigns/goals/x/y", "", "{}"), Ok(()));
    }
}
