//! The fake account's API v3 endpoints, in ActiveCampaign's shapes: ids as strings,
//! `meta.total` as a string, side-loaded arrays, `{message}` bodies on 404 and
//! `{errors:[{title, detail, code, source}]}` on 422.

use super::fake::{FakeContact, FakeState};
use super::fake_contacts as contacts;
use crate::connectors::fake_http::{Request, Response};
use serde_json::{Value, json};

pub(super) fn not_found(what: &str, id: &str) -> Response {
    Response::json(
        404,
        &json!({"message": format!("No Result found for {what} with id {id}")}),
    )
}

pub(super) fn invalid(title: &str, code: &str, pointer: &str) -> Response {
    Response::json(
        422,
        &json!({"errors": [{"title": title, "detail": "", "code": code,
                            "source": {"pointer": pointer}}]}),
    )
}

pub(super) fn num(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

pub(super) fn contact_json(id: u64, c: &FakeContact) -> Value {
    json!({
        "id": id.to_string(), "email": c.email, "firstName": c.first_name,
        "lastName": c.last_name, "phone": c.phone, "orgid": "0",
        "cdate": c.cdate, "udate": c.udate, "deleted": "0",
        "fieldValues": c.field_values.keys().map(|f| format!("{id}-{f}")).collect::<Vec<_>>(),
        "links": {"contactTags": format!("/api/3/contacts/{id}/contactTags")},
    })
}

pub(super) fn field_values_json(id: u64, c: &FakeContact) -> Vec<Value> {
    c.field_values
        .iter()
        .map(|(f, v)| {
            json!({"id": format!("{id}{f:04}"), "contact": id.to_string(),
                   "field": f.to_string(), "value": v, "owner": id.to_string()})
        })
        .collect()
}

pub(super) fn lists_json(id: u64, c: &FakeContact) -> Vec<Value> {
    c.lists
        .iter()
        .map(|(l, st)| {
            json!({"id": format!("{id}{l:04}"), "contact": id.to_string(),
                   "list": l.to_string(), "status": st.to_string()})
        })
        .collect()
}

pub(super) fn contact_tags_json(s: &FakeState, id: u64) -> Vec<Value> {
    s.contact_tags
        .iter()
        .filter(|(_, (c, _))| *c == id)
        .map(|(link, (c, t))| {
            json!({"id": link.to_string(), "contact": c.to_string(), "tag": t.to_string(),
                   "cdate": "2024-01-02T03:04:05-05:00"})
        })
        .collect()
}

fn body(req: &Request) -> Value {
    serde_json::from_slice(&req.body).unwrap_or(Value::Null)
}

/// Answers one authenticated request for `path` (below `/api/3`).
pub(super) fn route(s: &mut FakeState, req: &Request, path: &str) -> Response {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["users", "me"]) => Response::json(
            200,
            &json!({"user": {"id": "1", "username": "admin", "email": "admin@example.com"}}),
        ),
        ("GET", ["contacts"]) => contacts::list_contacts(s, req),
        ("GET", ["contacts", id]) => {
            let Some((cid, c)) = id
                .parse()
                .ok()
                .and_then(|i| s.contacts.get(&i).map(|c| (i, c)))
            else {
                return not_found("Subscriber", id);
            };
            Response::json(
                200,
                &json!({"contact": contact_json(cid, c), "fieldValues": field_values_json(cid, c),
                        "contactLists": lists_json(cid, c), "contactAutomations": [],
                        "deals": [], "geoIps": [], "geoAddresses": []}),
            )
        }
        ("GET", ["contacts", id, "contactTags"]) => match id.parse() {
            Ok(cid) if s.contacts.contains_key(&cid) => {
                Response::json(200, &json!({"contactTags": contact_tags_json(s, cid)}))
            }
            _ => not_found("Subscriber", id),
        },
        ("PUT", ["contacts", id]) => contacts::update_contact(s, id, &body(req)),
        ("POST", ["contactTags"]) => contacts::add_tag(s, &body(req)),
        ("DELETE", ["contactTags", id]) => match id.parse::<u64>() {
            Ok(link) if s.contact_tags.remove(&link).is_some() => Response::json(200, &json!({})),
            _ => not_found("ContactTag", id),
        },
        ("GET", ["tags"]) => {
            let search = req.param("search").map(|q| q.to_lowercase());
            let all: Vec<Value> = s
                .tags
                .iter()
                .filter(|(_, n)| search.as_ref().is_none_or(|q| n.to_lowercase().contains(q)))
                .map(|(id, n)| json!({"id": id.to_string(), "tag": n, "tagType": "contact", "description": ""}))
                .collect();
            page(req, all, "tags")
        }
        ("POST", ["tags"]) => {
            let b = body(req);
            let name = b
                .pointer("/tag/tag")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned();
            if name.is_empty() {
                return invalid(
                    "Tag name is required",
                    "field_missing",
                    "/data/attributes/tag",
                );
            }
            if s.tags.values().any(|n| n.eq_ignore_ascii_case(&name)) {
                return invalid("Duplicate tag", "duplicate", "/data/attributes/tag");
            }
            let id = s.next_id();
            s.tags.insert(id, name.clone());
            Response::json(
                201,
                &json!({"tag": {"id": id.to_string(), "tag": name, "tagType": "contact", "description": ""}}),
            )
        }
        ("GET", ["fields"]) => {
            let all: Vec<Value> = s
                .fields
                .iter()
                .map(|(id, f)| {
                    json!({"id": id.to_string(), "title": f.title, "type": "text",
                                      "perstag": f.perstag, "isrequired": "0", "options": []})
                })
                .collect();
            let mut r = page(req, all, "fields");
            if let Ok(mut v) = serde_json::from_slice::<Value>(&r.body) {
                v["fieldOptions"] = json!([]);
                v["fieldRels"] = json!([]);
                r.body = v.to_string().into_bytes();
            }
            r
        }
        ("POST", ["fieldValues"]) => {
            let b = body(req);
            let (Some(cid), Some(fid)) = (
                num(b.pointer("/fieldValue/contact")),
                num(b.pointer("/fieldValue/field")),
            ) else {
                return invalid(
                    "contact and field are required",
                    "field_missing",
                    "/data/attributes/field",
                );
            };
            if !s.fields.contains_key(&fid) {
                return invalid(
                    "Field does not exist",
                    "field_invalid",
                    "/data/attributes/field",
                );
            }
            let value = b
                .pointer("/fieldValue/value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(c) = s.contacts.get_mut(&cid) else {
                return not_found("Subscriber", &cid.to_string());
            };
            c.field_values.insert(fid, value.clone());
            Response::json(
                200,
                &json!({"fieldValue": {"contact": cid.to_string(), "field": fid.to_string(), "value": value}}),
            )
        }
        ("POST", ["notes"]) => {
            let b = body(req);
            let rel = num(b.pointer("/note/relid"));
            if b.pointer("/note/reltype").and_then(Value::as_str) != Some("Subscriber") {
                return invalid(
                    "reltype is invalid",
                    "field_invalid",
                    "/data/attributes/reltype",
                );
            }
            let Some(cid) = rel.filter(|c| s.contacts.contains_key(c)) else {
                return not_found("Subscriber", &rel.unwrap_or(0).to_string());
            };
            let text = b
                .pointer("/note/note")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            s.notes.push((cid, text.clone()));
            let id = s.next_id();
            Response::json(
                201,
                &json!({"note": {"id": id.to_string(), "note": text, "relid": cid.to_string(), "reltype": "Subscriber"}}),
            )
        }
        ("POST", ["contactLists"]) => {
            let b = body(req);
            let (Some(cid), Some(list), Some(status)) = (
                num(b.pointer("/contactList/contact")),
                num(b.pointer("/contactList/list")),
                num(b.pointer("/contactList/status")),
            ) else {
                return invalid(
                    "contact, list and status are required",
                    "field_missing",
                    "/data/attributes/list",
                );
            };
            if !s.lists.contains_key(&list) {
                return invalid(
                    "List does not exist",
                    "field_invalid",
                    "/data/attributes/list",
                );
            }
            let Some(c) = s.contacts.get_mut(&cid) else {
                return not_found("Subscriber", &cid.to_string());
            };
            c.lists.insert(list, u8::try_from(status).unwrap_or(0));
            Response::json(
                200,
                &json!({"contactList": {"contact": cid.to_string(), "list": list.to_string(), "status": status.to_string()}}),
            )
        }
        ("POST", ["contactAutomations"]) => {
            let b = body(req);
            let (cid, aid) = (
                num(b.pointer("/contactAutomation/contact")),
                num(b.pointer("/contactAutomation/automation")),
            );
            let Some(aid) = aid.filter(|a| s.automations.contains_key(a)) else {
                return invalid(
                    "Automation does not exist",
                    "field_invalid",
                    "/data/attributes/automation",
                );
            };
            let Some(cid) = cid.filter(|c| s.contacts.contains_key(c)) else {
                return not_found("Subscriber", &cid.unwrap_or(0).to_string());
            };
            s.contact_automations.push((cid, aid));
            let id = s.next_id();
            Response::json(
                201,
                &json!({"contactAutomation": {"id": id.to_string(), "contact": cid.to_string(), "automation": aid.to_string()}}),
            )
        }
        _ => Response::json(404, &json!({"message": "Not Found"})),
    }
}

/// `limit` (default 20, at most 100) and `offset` paging with `meta.total`.
fn page(req: &Request, all: Vec<Value>, key: &str) -> Response {
    let limit: usize = req
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .min(100);
    let offset: usize = req
        .param("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Response::json(
        200,
        &json!({key: items, "meta": {"total": total.to_string()}}),
    )
}
