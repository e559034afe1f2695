//! The fake Keap's routes, below its REST prefix.

use super::fake::{CLIENT_ID, CLIENT_SECRET, FakeState, project};
use crate::connectors::fake_http::{Request, Response};
use crate::connectors::vendor::text;
use serde_json::{Value, json};

fn error(status: u16, message: &str) -> Response {
    let kind = if status == 404 {
        "NOT_FOUND"
    } else {
        "INVALID_ARGUMENT"
    };
    Response::json(
        status,
        &json!({"code": status, "message": message, "status": kind, "details": []}),
    )
}

/// The client of a `Authorization: Basic` header.
fn basic_client(req: &Request) -> Option<(String, String)> {
    use base64::Engine;
    let b64 = req.header("authorization")?.strip_prefix("Basic ")?;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&plain).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `POST /oauth/token`: the authorization_code grant with the client in the body, the
/// refresh_token grant with it in an `Authorization: Basic` header (Keap-PHP
/// `requestAccessToken` / `refreshAccessToken`); a refresh without the header is refused.
pub(super) fn token(s: &mut FakeState, req: &Request) -> Response {
    let form = req.form();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let client = if get("grant_type") == "refresh_token" {
        basic_client(req)
    } else {
        Some((get("client_id").to_owned(), get("client_secret").to_owned()))
    };
    if client.is_none_or(|(id, secret)| id != CLIENT_ID || secret != CLIENT_SECRET) {
        return Response::json(401, &json!({"error": "invalid_client"}));
    }
    match get("grant_type") {
        "refresh_token" if s.take_refresh(get("refresh_token")) => {
            Response::json(200, &s.issue(true))
        }
        "authorization_code" if !get("code").is_empty() => Response::json(200, &s.issue(false)),
        _ => Response::json(400, &json!({"error": "invalid_grant"})),
    }
}

/// A list keyed by its numeric `id`, as [`page`] takes it.
fn by_id(list: &[Value]) -> Vec<(u64, Value)> {
    list.iter()
        .filter_map(|v| Some((text(&v["id"])?.parse().ok()?, v.clone())))
        .collect()
}

/// Pages `items` (sorted by id) after `page_token`, Keap v2 style; a `page_size` over the
/// endpoint's documented `maximum` is refused as Keap's validation does.
fn page(items: Vec<(u64, Value)>, req: &Request, key: &str, max: usize) -> Response {
    let size: usize = match req.param("page_size").map(|p| p.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            return error(400, &format!("page_size must be between 1 and {max}"));
        }
    };
    let after: u64 = req
        .param("page_token")
        .and_then(|t| t.strip_prefix('p').and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let rest: Vec<(u64, Value)> = items.into_iter().filter(|(i, _)| *i > after).collect();
    let more = rest.len() > size;
    let shown: Vec<(u64, Value)> = rest.into_iter().take(size).collect();
    let next = match shown.last() {
        Some((last, _)) if more => format!("p{last}"),
        _ => String::new(),
    };
    let list: Vec<Value> = shown.into_iter().map(|(_, v)| v).collect();
    Response::json(200, &json!({ key: list, "next_page_token": next }))
}

/// Whether a contact passes a v2 `filter` (`k==v;k==v`, `*` suffix wildcard).
fn passes(c: &Value, filter: &str) -> Result<bool, String> {
    for clause in filter.split(';').filter(|c| !c.is_empty()) {
        let Some((k, v)) = clause.split_once("==") else {
            return Err(format!("invalid filter {clause}"));
        };
        let have: Vec<String> = match k {
            "email" => c["email_addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["email"].as_str().map(str::to_lowercase))
                .collect(),
            "given_name" | "family_name" => {
                c[k].as_str().map(str::to_lowercase).into_iter().collect()
            }
            other => return Err(format!("filter field {other} is not supported")),
        };
        let v = v.to_lowercase();
        let ok = match v.strip_suffix('*') {
            Some(prefix) => have.iter().any(|h| h.starts_with(prefix)),
            None => have.contains(&v),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Everything below the prefix except the token endpoint; the caller checked auth.
pub(super) fn route(s: &mut FakeState, req: &Request) -> Response {
    let seg = req.segments();
    let seg: Vec<&str> = seg.iter().skip(2).map(String::as_str).collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["v2", "contacts"]) => {
            let filter = req.param("filter").unwrap_or_default();
            let fields = req.param("fields");
            let mut out = Vec::new();
            for (id, c) in &s.contacts {
                match passes(c, &filter) {
                    Ok(true) => out.push((*id, project(c, fields.as_deref()))),
                    Ok(false) => {}
                    Err(e) => return error(400, &e),
                }
            }
            page(out, req, "contacts", 1000)
        }
        ("GET", ["v2", "contacts", "model"]) => Response::json(
            200,
            &json!({"custom_fields": s.custom_fields, "optional_properties": []}),
        ),
        ("GET", ["v2", "contacts", id]) => match contact(s, id) {
            Some(c) => Response::json(200, &project(&c, req.param("fields").as_deref())),
            None => error(404, "Contact not found"),
        },
        ("PATCH", ["v2", "contacts", id]) => patch_contact(s, id, req),
        ("POST", ["v2", "contacts", id, "notes"]) => add_note(s, id, &req.json()),
        ("POST", ["v2", "contacts:merge"]) => merge(s, &req.json()),
        ("GET", ["v2", "opportunities", "stages"]) => {
            let items = by_id(&s.stages);
            page(items, req, "stages", 1000)
        }
        ("GET", ["v2", "opportunities"]) => {
            let want = req
                .param("filter")
                .and_then(|f| f.strip_prefix("contact_id==").map(str::to_owned));
            let items = s
                .opportunities
                .iter()
                .filter(|(_, o)| {
                    want.as_ref()
                        .is_none_or(|c| text(&o["contact"]["id"]).as_ref() == Some(c))
                })
                .map(|(i, o)| (*i, o.clone()))
                .collect();
            page(items, req, "opportunities", 1000)
        }
        ("GET", ["v2", "opportunities", id]) => {
            match id.parse().ok().and_then(|i: u64| s.opportunities.get(&i)) {
                Some(o) => Response::json(200, o),
                None => error(404, "Opportunity not found"),
            }
        }
        ("PATCH", ["v2", "opportunities", id]) => {
            let body = req.json();
            let stage = text(&body["stage_id"]).and_then(|sid| {
                s.stages
                    .iter()
                    .find(|st| text(&st["id"]).as_ref() == Some(&sid))
                    .cloned()
            });
            let Some(stage) = stage else {
                return error(400, "Invalid stage_id");
            };
            match id
                .parse()
                .ok()
                .and_then(|i: u64| s.opportunities.get_mut(&i))
            {
                Some(o) => {
                    o["stage"] = json!({"id": stage["id"], "name": stage["name"]});
                    Response::json(200, o)
                }
                None => error(404, "Opportunity not found"),
            }
        }
        ("POST", ["v2", "campaigns", campaign, "sequences", action]) => {
            match action.strip_suffix(":addContacts") {
                Some(sequence) => add_to_sequence(s, campaign, sequence, &req.json()),
                None => error(404, "no such operation"),
            }
        }
        ("GET", ["v2", "tags", "categories"]) => {
            let items = by_id(&s.tag_categories);
            page(items, req, "tag_categories", 1000)
        }
        ("GET", ["v2", "tags"]) => {
            let items = s.tags.iter().map(|(i, t)| (*i, t.clone())).collect();
            page(items, req, "tags", 1000)
        }
        ("POST", ["v2", "tags"]) => {
            let body = req.json();
            let Some(name) = body["name"].as_str().filter(|n| !n.trim().is_empty()) else {
                return error(400, "name is required");
            };
            let id = s.new_id();
            let tag = json!({"id": id.to_string(), "name": name, "description": "",
                "category": body["category"].clone()});
            s.tags.insert(id, tag.clone());
            Response::json(201, &tag)
        }
        ("POST", ["v2", "tags", tag, verb]) => tag_contacts(s, tag, verb, &req.json()),
        ("GET", ["v2", "companies"]) => {
            let items = s
                .companies
                .iter()
                .map(|c| {
                    (
                        text(&c["id"]).and_then(|i| i.parse().ok()).unwrap_or(0),
                        c.clone(),
                    )
                })
                .collect();
            page(items, req, "companies", 1000)
        }
        ("POST", ["v2", "companies"]) => {
            let body = req.json();
            let Some(name) = body["company_name"]
                .as_str()
                .filter(|n| !n.trim().is_empty())
            else {
                return error(400, "company_name is required");
            };
            let id = s.new_id();
            let company = json!({"id": id.to_string(), "company_name": name,
                "create_time": chrono::Utc::now().to_rfc3339()});
            s.companies.push(company.clone());
            Response::json(201, &company)
        }
        ("GET", ["v2", "users"]) => {
            let items = by_id(&s.users);
            // Keap-v2 listPaginatedUsers: page_size maximum 100.
            page(items, req, "users", 100)
        }
        (m @ ("GET" | "PATCH"), ["v2", "emailAddresses", email, "status"]) => {
            email_status(s, email, m == "PATCH", &req.json())
        }
        ("POST", ["v1", "campaigns", "goals", integration, call]) => {
            let cid = text(&req.json()["contact_id"]).unwrap_or_default();
            if contact(s, &cid).is_none() {
                return error(404, "Contact not found");
            }
            s.goals
                .push(((*integration).to_owned(), (*call).to_owned(), cid));
            Response::json(
                200,
                &json!([{"campaign_id": 1, "success": true, "message": ""}]),
            )
        }
        _ => error(404, "no such operation"),
    }
}

fn contact(s: &FakeState, id: &str) -> Option<Value> {
    s.contacts.get(&id.parse().ok()?).cloned()
}

const WRITABLE: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "job_title",
    "website",
    "time_zone",
    "birth_date",
    "email_addresses",
    "phone_numbers",
    "addresses",
    "owner_id",
    "custom_fields",
    "company",
    "leadsource_id",
];

fn patch_contact(s: &mut FakeState, id: &str, req: &Request) -> Response {
    let body = req.json();
    let Some(props) = body.as_object() else {
        return error(400, "a JSON object is required");
    };
    let mask = req.param("update_mask");
    let masked = |k: &str| mask.as_deref().is_none_or(|m| m.split(',').any(|x| x == k));
    for (k, v) in props {
        if !WRITABLE.contains(&k.as_str()) {
            return error(400, &format!("Invalid field: {k}"));
        }
        let bad_email = k == "email_addresses"
            && v.as_array()
                .into_iter()
                .flatten()
                .any(|e| !e["email"].as_str().is_some_and(|a| a.contains('@')));
        if bad_email {
            return error(400, "Invalid email address");
        }
        let unknown_cf = k == "custom_fields"
            && v.as_array().into_iter().flatten().any(|cf| {
                !s.custom_fields
                    .iter()
                    .any(|m| text(&m["id"]) == text(&cf["id"]))
            });
        if unknown_cf {
            return error(400, "Invalid custom field id");
        }
        let bad_company = k == "company"
            && !s
                .companies
                .iter()
                .any(|co| text(&co["id"]) == text(&v["id"]));
        if bad_company {
            return error(400, "Invalid company id");
        }
        let bad_owner = k == "owner_id" && !s.users.iter().any(|u| text(&u["id"]) == text(v));
        if bad_owner {
            return error(400, "Invalid owner_id");
        }
    }
    let Some(c) = id.parse().ok().and_then(|i| s.contacts.get_mut(&i)) else {
        return error(404, "Contact not found");
    };
    for (k, v) in props.iter().filter(|(k, _)| masked(k)) {
        if k == "addresses" {
            // Keap-v2 AddressRequest writes `region_code` (ISO 3166-2); the response's
            // `region` is "Deprecated… Please use 'region_code' for POST/PATCH", so a
            // written `region` is not taken.
            let mut list = v.as_array().cloned().unwrap_or_default();
            for a in &mut list {
                if let Some(o) = a.as_object_mut() {
                    o.remove("region");
                    let bad = o
                        .get("region_code")
                        .and_then(Value::as_str)
                        .is_some_and(|r| {
                            !r.is_empty() && r.split_once('-').is_none_or(|(c, _)| c.len() != 2)
                        });
                    if bad {
                        return error(400, "region_code must be an ISO 3166-2 code");
                    }
                }
            }
            c[k] = Value::Array(list);
        } else if k == "custom_fields" {
            // Keap v2 replaces the list: "Any item not listed here will be removed if it
            // already exists. If an empty array is specified, all existing values will be
            // removed." (CreateUpdateContactRequest.custom_fields). Unlisted fields read
            // back empty, as they do on Keap.
            let listed = v.as_array().cloned().unwrap_or_default();
            let ids: Vec<Option<String>> = s.custom_fields.iter().map(|m| text(&m["id"])).collect();
            c[k] = Value::Array(
                ids.iter()
                    .map(|id| {
                        listed
                            .iter()
                            .find(|cf| text(&cf["id"]) == *id)
                            .cloned()
                            .unwrap_or_else(|| json!({"id": id, "content": null}))
                    })
                    .collect(),
            );
        } else if k == "company" {
            // Keap answers with the linked company's id and name.
            let name = s
                .companies
                .iter()
                .find(|co| text(&co["id"]) == text(&v["id"]))
                .map(|co| co["company_name"].clone())
                .unwrap_or(Value::Null);
            c["company"] = json!({"id": v["id"].clone(), "company_name": name});
        } else {
            c[k.as_str()] = v.clone();
        }
    }
    c["update_time"] = json!(chrono::Utc::now().to_rfc3339());
    Response::json(200, &project(c, None))
}

fn add_note(s: &mut FakeState, id: &str, body: &Value) -> Response {
    if contact(s, id).is_none() {
        return error(404, "Contact not found");
    }
    let user = text(&body["user_id"]).unwrap_or_default();
    if !s
        .users
        .iter()
        .any(|u| text(&u["id"]).as_deref() == Some(&user))
    {
        return error(400, "user_id is required");
    }
    // Keap-v2 CreateNoteRequest: "A value for either `title` or `type` is required";
    // an empty string is no value.
    let given = |k: &str| body[k].as_str().is_some_and(|v| !v.trim().is_empty());
    if !given("title") && !given("type") {
        return error(400, "title or type is required");
    }
    let n = s.new_id();
    let note = json!({"id": n.to_string(), "contact_id": id, "user_id": user,
        "title": body["title"], "text": body["text"], "create_time": chrono::Utc::now().to_rfc3339()});
    s.notes.push(note.clone());
    Response::json(201, &note)
}

/// Keap-v2 mergeContacts: "The duplicate contact will be merged into the primary
/// contact" (its tags join the primary's; the duplicate is gone); answers the primary.
fn merge(s: &mut FakeState, body: &Value) -> Response {
    let id = |k: &str| text(&body[k]).and_then(|t| t.parse::<u64>().ok());
    let (Some(primary), Some(dup)) = (id("contact_id"), id("duplicate_contact_id")) else {
        return error(400, "contact_id and duplicate_contact_id are required");
    };
    if primary == dup {
        return error(400, "a contact cannot be merged into itself");
    }
    let Some(gone) = s.contacts.get(&dup).cloned() else {
        return error(404, "Duplicate contact not found");
    };
    let Some(c) = s.contacts.get_mut(&primary) else {
        return error(404, "Contact not found");
    };
    let mut tags: Vec<Value> = c["tag_ids"].as_array().cloned().unwrap_or_default();
    for t in gone["tag_ids"].as_array().into_iter().flatten() {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    c["tag_ids"] = Value::Array(tags);
    let merged = c.clone();
    s.contacts.remove(&dup);
    Response::json(200, &merged)
}

/// Keap-v2 addContactsToSequence: 404 for an unknown sequence, else a result per contact.
fn add_to_sequence(s: &mut FakeState, campaign: &str, sequence: &str, body: &Value) -> Response {
    if !s
        .sequences
        .iter()
        .any(|(c, q)| c == campaign && q == sequence)
    {
        return error(404, "Sequence not found");
    }
    let mut results = serde_json::Map::new();
    for cid in body["contact_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(text)
    {
        let known = cid
            .parse()
            .ok()
            .is_some_and(|i: u64| s.contacts.contains_key(&i));
        let entry = (campaign.to_owned(), sequence.to_owned(), cid.clone());
        let result = if !known {
            "CONTACT_DOES_NOT_EXIST"
        } else if s.in_sequences.contains(&entry) {
            "ALREADY_IN_SEQUENCE"
        } else {
            s.in_sequences.push(entry);
            "SUCCESS"
        };
        results.insert(cid, json!(result));
    }
    Response::json(200, &json!({ "add_to_sequence_results": results }))
}

fn tag_contacts(s: &mut FakeState, tag: &str, verb: &str, body: &Value) -> Response {
    let on = match verb {
        "contacts:applyTags" => true,
        "contacts:removeTags" => false,
        _ => return error(404, "no such operation"),
    };
    if !tag.parse().is_ok_and(|t| s.tags.contains_key(&t)) {
        return error(404, "Tag not found");
    }
    let mut results = serde_json::Map::new();
    for cid in body["contact_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(text)
    {
        let Some(c) = cid.parse().ok().and_then(|i| s.contacts.get_mut(&i)) else {
            results.insert(cid, json!("NOT_FOUND"));
            continue;
        };
        let mut ids: Vec<Value> = c["tag_ids"].as_array().cloned().unwrap_or_default();
        ids.retain(|v| text(v).as_deref() != Some(tag));
        if on {
            ids.push(json!(tag));
        }
        c["tag_ids"] = Value::Array(ids);
        results.insert(cid, json!("SUCCESS"));
    }
    Response::json(200, &json!({"results": results}))
}

/// Statuses that an API opt-in lifts to UNCONFIRMED; Keap keeps the others.
const REOPTABLE: &[&str] = &[
    "UNENGAGED_MARKETABLE",
    "UNENGAGED_NON_MARKETABLE",
    "NON_MARKETABLE",
    "MANUAL",
    "UNCONFIRMED",
];

fn email_status(s: &mut FakeState, email: &str, update: bool, body: &Value) -> Response {
    let lower = email.to_lowercase();
    let entry = s
        .contacts
        .values_mut()
        .flat_map(|c| c["email_addresses"].as_array_mut().into_iter().flatten())
        .find(|e| e["email"].as_str().map(str::to_lowercase) == Some(lower.clone()));
    let Some(e) = entry else {
        return error(404, "Email address not found");
    };
    if update {
        let (Some(opt), Some(_)) = (body["opted_in"].as_bool(), body["reason"].as_str()) else {
            return error(400, "opted_in and reason are required");
        };
        let status = e["email_opt_status"].as_str().unwrap_or("NON_MARKETABLE");
        let new = match (opt, REOPTABLE.contains(&status)) {
            (false, _) => "MANUAL",
            (true, true) => "UNCONFIRMED",
            (true, false) => status,
        }
        .to_owned();
        e["is_opt_in"] = json!(new == "UNCONFIRMED");
        e["email_opt_status"] = json!(new);
    }
    let status = e["email_opt_status"].clone();
    let opted = matches!(
        status.as_str(),
        Some(
            "UNCONFIRMED"
                | "UNENGAGED_MARKETABLE"
                | "SINGLE_OPT_IN"
                | "DOUBLE_OPT_IN"
                | "CONFIRMED"
        )
    );
    Response::json(
        200,
        &json!({"email": email, "opted_in": opted, "status": status}),
    )
}
