//! The fake Ontraport's routes, below `/1`.

use super::fake::{FakeState, id, now_secs, ok};
use crate::connectors::fake_http::{Request, Response};
use crate::connectors::vendor::text;
use serde_json::{Map, Value, json};

fn bad(message: &str) -> Response {
    Response::text(400, message)
}

/// `start`/`range` paging; Ontraport refuses a `range` over 50.
fn window(req: &Request, items: Vec<Value>) -> Result<Vec<Value>, Response> {
    let start: usize = req.param("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let range: usize = req
        .param("range")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    if range > 50 {
        return Err(bad("range may not exceed 50"));
    }
    Ok(items.into_iter().skip(start).take(range).collect())
}

/// Whether a contact passes an `AND`-joined JSON `condition` list.
fn passes(c: &Map<String, Value>, conds: &[Value]) -> Result<bool, String> {
    for cond in conds {
        match cond {
            Value::String(s) if s.eq_ignore_ascii_case("AND") => continue,
            Value::String(s) => return Err(format!("condition joiner {s} is not supported")),
            _ => {}
        }
        let field = cond["field"]["field"]
            .as_str()
            .ok_or("condition without field")?;
        let want = text(&cond["value"]["value"]).unwrap_or_default();
        let have = c.get(field).and_then(text).unwrap_or_default();
        let ok = match (
            cond["op"].as_str(),
            have.parse::<f64>(),
            want.parse::<f64>(),
        ) {
            (Some(">"), Ok(h), Ok(w)) => h > w,
            (Some("<"), Ok(h), Ok(w)) => h < w,
            (Some("="), _, _) => have.eq_ignore_ascii_case(&want),
            (op, _, _) => return Err(format!("operator {op:?} is not supported here")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn list_contacts(s: &FakeState, req: &Request) -> Response {
    let conds: Vec<Value> = match req.param("condition") {
        Some(c) => match serde_json::from_str(&c) {
            Ok(Value::Array(a)) => a,
            _ => return bad("condition must be a JSON array"),
        },
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for c in s.contacts.values() {
        match passes(c, &conds) {
            Ok(true) => out.push(Value::Object(c.clone())),
            Ok(false) => {}
            Err(e) => return bad(&e),
        }
    }
    if req.param("sortDir").as_deref() == Some("desc") {
        out.reverse();
    }
    match window(req, out) {
        Ok(page) => ok(Value::Array(page)),
        Err(r) => r,
    }
}

fn update_contact(s: &mut FakeState, body: &Value) -> Response {
    let Some(obj) = body.as_object() else {
        return bad("a JSON object is required");
    };
    let Some(cid) = text(&body["id"]).as_deref().and_then(id) else {
        return bad("id is required");
    };
    if let Some(e) = obj.get("email").and_then(Value::as_str)
        && !e.is_empty()
        && !e.contains('@')
    {
        return bad("Invalid email address");
    }
    let known: Vec<String> = s.fields.keys().cloned().collect();
    let Some(c) = s.contacts.get_mut(&cid) else {
        return bad("Object not found");
    };
    let mut attrs = Map::new();
    for (k, v) in obj.iter().filter(|(k, _)| known.contains(k)) {
        let mut v = json!(text(v).unwrap_or_default());
        // A hard-bounced address stays bounced whatever the API asks.
        if k == "bulk_mail" && c.get(k).and_then(Value::as_str) == Some("-2") {
            v = json!("-2");
        }
        c.insert(k.clone(), v.clone());
        attrs.insert(k.clone(), v);
    }
    c.insert("dlm".into(), json!(now_secs()));
    ok(json!({"attrs": attrs, "id": cid.to_string()}))
}

fn tag_contacts(s: &mut FakeState, pairs: &[(String, String)], on: bool) -> Response {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let list = get(if on { "add_list" } else { "remove_list" });
    let ids = get("ids");
    if get("objectID") != "0" || list.is_empty() || ids.is_empty() {
        return bad("objectID, a tag list and ids are required");
    }
    let tags: Vec<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
    for cid in ids.split(',').filter_map(id) {
        let Some(c) = s.contacts.get_mut(&cid) else {
            continue;
        };
        let mut have: Vec<String> = super::types::tag_ids(&Value::Object(c.clone()));
        have.retain(|t| !tags.contains(t));
        if on {
            have.extend(tags.iter().cloned());
        }
        c.insert(
            "contact_cat".into(),
            json!(super::types::contact_cat(&have)),
        );
    }
    ok(json!(if on {
        "The tag(s) are now being processed."
    } else {
        "The tag(s) are now being removed."
    }))
}

/// Everything below the prefix; the caller checked auth.
pub(super) fn route(s: &mut FakeState, req: &Request, path: &str) -> Response {
    match (req.method.as_str(), path) {
        ("GET", "/Contact") => {
            match req
                .param("id")
                .as_deref()
                .and_then(id)
                .and_then(|i| s.contacts.get(&i))
            {
                Some(c) => ok(Value::Object(c.clone())),
                None => bad("Object not found"),
            }
        }
        ("GET", "/Contacts") => list_contacts(s, req),
        ("GET", "/Contacts/meta") => ok(json!({"0": {"name": "Contact", "fields": s.fields}})),
        ("GET", "/Contacts/getInfo") => ok(json!({"count": s.contacts.len().to_string()})),
        ("PUT", "/Contacts") => update_contact(s, &req.json()),
        ("PUT", "/objects/tag") => tag_contacts(s, &req.form(), true),
        ("DELETE", "/objects/tag") => {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            tag_contacts(s, &pairs, false)
        }
        ("GET", "/Tags") => match window(req, s.tags.values().cloned().collect()) {
            Ok(page) => ok(Value::Array(page)),
            Err(r) => r,
        },
        ("POST", "/Tags") => {
            let Some(name) = req.json()["tag_name"].as_str().map(str::to_owned) else {
                return bad("tag_name is required");
            };
            s.next_id += 1;
            let tid = s.next_id;
            let tag = json!({"tag_id": tid.to_string(), "tag_name": name, "group_id": "0",
                "object_type_id": "0"});
            s.tags.insert(tid, tag.clone());
            ok(tag)
        }
        ("GET", "/Users") => match window(req, s.users.clone()) {
            Ok(page) => ok(Value::Array(page)),
            Err(r) => r,
        },
        ("POST", "/Notes") => {
            let body = req.json();
            let cid = text(&body["contact_id"]).unwrap_or_default();
            if id(&cid).is_none_or(|i| !s.contacts.contains_key(&i)) {
                return bad("Object not found");
            }
            s.next_id += 1;
            let note = json!({"id": s.next_id.to_string(), "contact_id": cid,
                "data": body["data"], "date": now_secs()});
            s.notes.push(note.clone());
            ok(note)
        }
        _ => Response::text(404, "Not Found"),
    }
}
