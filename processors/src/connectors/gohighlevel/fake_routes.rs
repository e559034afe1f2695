//! The fake GoHighLevel's routes: what each endpoint does to the in-memory location.

use super::fake::{
    CUSTOM_FIELD, FakeState, LOCATION_ID, TYPED_FIELDS, USERS, WORKFLOW_ID, error, iso,
};
use super::types::STANDARD;
use crate::connectors::hubspot::fake_http::{Request, Response};
use serde_json::{Map, Value, json};

fn millis(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |t| t.timestamp_millis())
}

fn now_iso() -> String {
    iso(chrono::Utc::now().timestamp_millis())
}

impl FakeState {
    pub(super) fn route(&mut self, req: &Request) -> Response {
        let seg = req.segments("/");
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        match (req.method.as_str(), seg.as_slice()) {
            ("POST", ["contacts", "search"]) => self.search(req),
            ("GET", ["contacts", id]) => match self.contacts.get(*id) {
                Some(c) => Response::json(200, &json!({"contact": c})),
                None => error(404, "Contact not found"),
            },
            ("PUT", ["contacts", id]) => self.put(id, &req.json()),
            (m @ ("POST" | "DELETE"), ["contacts", id, "tags"]) => {
                self.contact_tags(id, m == "POST", &req.json())
            }
            ("POST", ["contacts", id, "notes"]) => {
                let body = req.json()["body"].as_str().unwrap_or_default().to_owned();
                if body.trim().is_empty() {
                    return error(422, "body should not be empty");
                }
                if !self.contacts.contains_key(*id) {
                    return error(404, "Contact not found");
                }
                self.next_id += 1;
                self.notes.push(((*id).to_owned(), body.clone()));
                Response::json(
                    201,
                    &json!({"note": {"id": format!("note{:016}", self.next_id), "body": body,
                        "contactId": id, "dateAdded": now_iso()}}),
                )
            }
            ("POST", ["contacts", id, "workflow", wf]) => {
                if !self.contacts.contains_key(*id) {
                    return error(404, "Contact not found");
                }
                if *wf != WORKFLOW_ID {
                    return error(400, "Workflow not found");
                }
                self.enrolments.push(((*id).to_owned(), (*wf).to_owned()));
                Response::json(201, &json!({"succeded": true}))
            }
            (_, ["locations", loc, ..]) if *loc != LOCATION_ID => {
                error(403, "The token does not have access to this location")
            }
            ("GET", ["locations", _, "tags"]) => {
                let tags: Vec<Value> = self
                    .tags
                    .iter()
                    .map(|(id, name)| json!({"id": id, "name": name, "locationId": LOCATION_ID}))
                    .collect();
                Response::json(200, &json!({"tags": tags}))
            }
            ("POST", ["locations", _, "tags"]) => {
                let name = req.json()["name"]
                    .as_str()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                if name.is_empty() {
                    return error(422, "name should not be empty");
                }
                if self
                    .tags
                    .iter()
                    .any(|(_, n)| n.to_lowercase() == name.to_lowercase())
                {
                    return error(400, "The tag name is already exist");
                }
                self.next_id += 1;
                let id = format!("tag{:016}", 100 + self.next_id);
                self.tags.push((id.clone(), name.clone()));
                Response::json(
                    201,
                    &json!({"tag": {"id": id, "name": name, "locationId": LOCATION_ID}}),
                )
            }
            ("GET", ["locations", _, "customFields"]) => {
                let mut fields = vec![json!({"id": CUSTOM_FIELD.0, "name": CUSTOM_FIELD.1,
                    "fieldKey": CUSTOM_FIELD.2, "dataType": "TEXT", "model": "contact",
                    "position": 0, "placeholder": ""})];
                for (i, (id, name, key, ty)) in TYPED_FIELDS.iter().enumerate() {
                    fields.push(json!({"id": id, "name": name, "fieldKey": key,
                        "dataType": ty, "model": "contact", "position": i + 1,
                        "placeholder": "", "picklistOptions": ["golf", "tennis", "chess"]}));
                }
                Response::json(200, &json!({ "customFields": fields }))
            }
            ("GET", ["users"]) if req.param("locationId").as_deref() == Some(LOCATION_ID) => {
                let users: Vec<Value> = USERS
                    .iter()
                    .map(|(id, name)| {
                        json!({"id": id, "name": name, "deleted": false,
                        "email": format!("{id}@example.com")})
                    })
                    .collect();
                Response::json(200, &json!({"users": users}))
            }
            ("GET", ["users"]) => error(403, "The token does not have access to this location"),
            _ => error(404, "Cannot find this route"),
        }
    }

    fn search(&self, req: &Request) -> Response {
        let body = req.json();
        if body["locationId"].as_str() != Some(LOCATION_ID) {
            return error(403, "The token does not have access to this location");
        }
        let limit = body["pageLimit"].as_u64().unwrap_or(20);
        if limit > 500 {
            return error(422, "pageLimit must not be greater than 500");
        }
        let email = body["filters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["field"] == "email" && f["operator"] == "eq")
            .and_then(|f| f["value"].as_str())
            .map(str::to_lowercase);
        let mut hits: Vec<(i64, &String, &Value)> = self
            .contacts
            .iter()
            .filter(|(_, c)| {
                email
                    .as_ref()
                    .is_none_or(|e| c["email"].as_str().map(str::to_lowercase).as_ref() == Some(e))
            })
            .map(|(id, c)| (millis(&c["dateAdded"]), id, c))
            .collect();
        hits.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let total = hits.len();
        let start = match (&body["searchAfter"], body["page"].as_u64()) {
            (Value::Array(after), _) => {
                let ms = after.first().and_then(Value::as_i64).unwrap_or(0);
                let id = after.get(1).and_then(Value::as_str).unwrap_or_default();
                hits.iter()
                    .position(|h| (h.0, h.1.as_str()) > (ms, id))
                    .unwrap_or(total)
            }
            (_, Some(page)) => (page.max(1) as usize - 1) * limit as usize,
            _ => 0,
        };
        let contacts: Vec<Value> = hits
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|(ms, id, c)| {
                let mut c = search_shape((*c).clone());
                c["searchAfter"] = json!([ms, id]);
                c
            })
            .collect();
        Response::json(200, &json!({"contacts": contacts, "total": total}))
    }

    fn put(&mut self, id: &str, body: &Value) -> Response {
        let Some(changes) = body.as_object() else {
            return error(422, "body must be an object");
        };
        let allowed = |k: &str| {
            STANDARD.iter().any(|(_, a)| *a == k)
                || [
                    "name",
                    "dnd",
                    "dndSettings",
                    "tags",
                    "assignedTo",
                    "customFields",
                ]
                .contains(&k)
        };
        for (k, v) in changes {
            if !allowed(k) {
                return error(422, &format!("property {k} should not exist"));
            }
            let valid = match k.as_str() {
                "dateOfBirth" => {
                    v.is_null()
                        || v.as_str().is_some_and(|d| {
                            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
                        })
                }
                "assignedTo" => v.is_null() || USERS.iter().any(|(u, _)| v == u),
                "customFields" => v.as_array().into_iter().flatten().all(field_value_fits),
                _ => true,
            };
            if !valid {
                let msg = match k.as_str() {
                    "customFields" => {
                        "Custom field not found, or field_value not of its type".to_owned()
                    }
                    _ => format!("{k} is not valid"),
                };
                return error(if k == "dateOfBirth" { 422 } else { 400 }, &msg);
            }
        }
        let Some(c) = self.contacts.get_mut(id) else {
            return error(404, "Contact not found");
        };
        let Some(obj) = c.as_object_mut() else {
            return error(400, "corrupt contact");
        };
        for (k, v) in changes {
            match k.as_str() {
                // Fields not named keep their values; an empty value clears one.
                "customFields" => {
                    let mut kept: Vec<Value> = obj
                        .get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for f in v.as_array().into_iter().flatten() {
                        kept.retain(|old| old["id"] != f["id"]);
                        let value = f["field_value"].clone();
                        let empty = value.is_null()
                            || value.as_str() == Some("")
                            || value.as_array().is_some_and(Vec::is_empty);
                        if !empty {
                            kept.push(json!({"id": f["id"], "value": value}));
                        }
                    }
                    obj.insert(k.clone(), json!(kept));
                }
                "dndSettings" => {
                    let mut merged: Map<String, Value> = obj
                        .get(k)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for (channel, s) in v.as_object().into_iter().flatten() {
                        merged.insert(channel.clone(), s.clone());
                    }
                    obj.insert(k.clone(), Value::Object(merged));
                }
                _ if v.is_null() || v.as_str() == Some("") => {
                    obj.remove(k);
                }
                _ => {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        obj.insert("dateUpdated".into(), json!(now_iso()));
        Response::json(200, &json!({"succeded": true, "contact": c}))
    }

    fn contact_tags(&mut self, id: &str, add: bool, body: &Value) -> Response {
        let names: Vec<String> = body["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        if names.is_empty() {
            return error(422, "tags should not be empty");
        }
        let Some(c) = self.contacts.get_mut(id) else {
            return error(404, "Contact not found");
        };
        let mut tags: Vec<String> = c["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        for n in &names {
            if add && !tags.contains(n) {
                tags.push(n.clone());
            }
            if !add {
                tags.retain(|t| t != n);
            }
        }
        c["tags"] = json!(tags);
        c["dateUpdated"] = json!(now_iso());
        if add {
            for n in names {
                if !self.tags.iter().any(|(_, t)| *t == n) {
                    self.next_id += 1;
                    self.tags
                        .push((format!("tag{:016}", 100 + self.next_id), n));
                }
            }
        }
        Response::json(if add { 201 } else { 200 }, &json!({"tags": tags}))
    }
}

/// A contact as search returns it, which differs from every other contact schema
/// (github.com/GoHighLevel/highlevel-api-docs/issues/314, "verified live"): the street is
/// `address`, not `address1`, and `dateOfBirth` is epoch milliseconds.
fn search_shape(mut c: Value) -> Value {
    if let Some(o) = c.as_object_mut() {
        if let Some(street) = o.remove("address1") {
            o.insert("address".into(), street);
        }
        let epoch = o
            .get("dateOfBirth")
            .and_then(Value::as_str)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis());
        if let Some(ms) = epoch {
            o.insert("dateOfBirth".into(), json!(ms));
        }
    }
    c
}

/// Whether a custom-field write names a field of the location with a `field_value` of
/// the type its dataType takes (null clears any field).
fn field_value_fits(f: &Value) -> bool {
    let v = &f["field_value"];
    if f["id"] == CUSTOM_FIELD.0 {
        return v.is_null() || v.is_string();
    }
    match TYPED_FIELDS.iter().find(|t| f["id"] == t.0).map(|t| t.3) {
        Some("NUMERICAL" | "MONETORY") => v.is_null() || v.is_number(),
        Some(_) => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        None => false,
    }
}
