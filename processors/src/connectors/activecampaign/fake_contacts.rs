//! The fake account's contact endpoints: the list with its filters, keyset paging and
//! side-loaded arrays, updates, and tagging.

use super::fake::FakeState;
use super::fake_routes::{
    contact_json, contact_tags_json, field_values_json, invalid, lists_json, not_found, num,
};
use crate::connectors::fake_http::{Request, Response};
use serde_json::{Value, json};

pub(super) fn list_contacts(s: &FakeState, req: &Request) -> Response {
    let email = req.param("email").map(|e| e.to_lowercase());
    let like = req.param("email_like").map(|e| e.to_lowercase());
    let tag: Option<u64> = req.param("tagid").and_then(|t| t.parse().ok());
    let after: u64 = req
        .param("id_greater")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let desc = req
        .param("orders[id]")
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
    let mut ids: Vec<u64> = s
        .contacts
        .iter()
        .filter(|(id, c)| {
            **id > after
                && email.as_ref().is_none_or(|e| c.email.to_lowercase() == *e)
                && like
                    .as_ref()
                    .is_none_or(|e| c.email.to_lowercase().contains(e))
                && tag.is_none_or(|t| {
                    s.contact_tags
                        .values()
                        .any(|(ci, ti)| ci == *id && *ti == t)
                })
        })
        .map(|(id, _)| *id)
        .collect();
    if desc {
        ids.reverse();
    }
    let limit: usize = req
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .min(100);
    let offset: usize = req
        .param("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let total = ids.len();
    let page: Vec<u64> = ids.into_iter().skip(offset).take(limit).collect();
    let include = req.param("include").unwrap_or_default();
    let includes: Vec<&str> = include.split(',').map(str::trim).collect();
    let mut out = json!({
        "contacts": page.iter().filter_map(|id| s.contacts.get(id).map(|c| contact_json(*id, c))).collect::<Vec<_>>(),
        "meta": {"total": total.to_string()},
    });
    let with = |k: &str| includes.contains(&k);
    if with("fieldValues") {
        out["fieldValues"] = page
            .iter()
            .filter_map(|id| s.contacts.get(id).map(|c| field_values_json(*id, c)))
            .flatten()
            .collect();
    }
    if with("contactLists") {
        out["contactLists"] = page
            .iter()
            .filter_map(|id| s.contacts.get(id).map(|c| lists_json(*id, c)))
            .flatten()
            .collect();
    }
    if with("contactTags") {
        out["contactTags"] = page
            .iter()
            .flat_map(|id| contact_tags_json(s, *id))
            .collect();
    }
    Response::json(200, &out)
}

pub(super) fn update_contact(s: &mut FakeState, id: &str, b: &Value) -> Response {
    let Some(cid) = id
        .parse::<u64>()
        .ok()
        .filter(|c| s.contacts.contains_key(c))
    else {
        return not_found("Subscriber", id);
    };
    let Some(patch) = b.get("contact").and_then(Value::as_object) else {
        return Response::json(400, &json!({"errors": [{"title": "contact is required"}]}));
    };
    if let Some(e) = patch.get("email").and_then(Value::as_str)
        && !e.is_empty()
        && !e.contains('@')
    {
        return invalid(
            "Email address is invalid",
            "email_invalid",
            "/data/attributes/email",
        );
    }
    let fields = s.fields.clone();
    let Some(c) = s.contacts.get_mut(&cid) else {
        return not_found("Subscriber", id);
    };
    for (k, v) in patch {
        let v = v.as_str().unwrap_or("").to_owned();
        match k.as_str() {
            "email" => c.email = v,
            "firstName" => c.first_name = v,
            "lastName" => c.last_name = v,
            "phone" => c.phone = v,
            _ => {}
        }
    }
    for fv in patch
        .get("fieldValues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(f) = num(fv.get("field")).filter(|f| fields.contains_key(f)) {
            let v = fv
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            c.field_values.insert(f, v);
        }
    }
    c.udate = "2024-06-01T00:00:00-05:00".into();
    let c = c.clone();
    Response::json(
        200,
        &json!({"contact": contact_json(cid, &c), "fieldValues": field_values_json(cid, &c)}),
    )
}

pub(super) fn add_tag(s: &mut FakeState, b: &Value) -> Response {
    let cid = num(b.pointer("/contactTag/contact"));
    let tid = num(b.pointer("/contactTag/tag"));
    let Some(cid) = cid.filter(|c| s.contacts.contains_key(c)) else {
        return Response::json(
            404,
            &json!({"errors": [{"status": "404", "title": "Not Found", "detail": "Contact not found"}]}),
        );
    };
    let Some(tid) = tid.filter(|t| s.tags.contains_key(t)) else {
        return invalid(
            "Tag does not exist",
            "field_invalid",
            "/data/attributes/tag",
        );
    };
    let existing = s
        .contact_tags
        .iter()
        .find(|(_, (c, t))| *c == cid && *t == tid)
        .map(|(l, _)| *l);
    let (status, link) = match existing {
        Some(l) => (200, l),
        None => {
            let l = s.next_id();
            s.contact_tags.insert(l, (cid, tid));
            (201, l)
        }
    };
    Response::json(
        status,
        &json!({"contactTag": {"id": link.to_string(), "contact": cid.to_string(), "tag": tid.to_string(),
                               "cdate": "2024-01-02T03:04:05-05:00"}}),
    )
}
