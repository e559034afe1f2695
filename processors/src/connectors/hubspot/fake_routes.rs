//! The fake HubSpot's routes: what each endpoint does to the in-memory portal.

#![allow(clippy::expect_used)]

use super::fake::{FakeContact, FakeState, READ_ONLY, SUBSCRIPTION_ID, TAG_PROPERTY, error, now};
use super::fake_http::{Request, Response};
use super::types::{self, COMPANY, OPTED_OUT, OWNER, STANDARD};
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl FakeState {
    fn known(&self, property: &str) -> bool {
        STANDARD.iter().any(|(_, p)| *p == property)
            || [OWNER, COMPANY, TAG_PROPERTY].contains(&property)
            || READ_ONLY.contains(&property)
            || self.custom.iter().any(|c| c == property)
    }

    fn contact_json(id: u64, c: &FakeContact, wanted: Option<&[String]>) -> Value {
        let mut props: BTreeMap<String, Value> = c
            .properties
            .iter()
            .filter(|(k, _)| wanted.is_none_or(|w| w.contains(k)))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        props.insert("hs_object_id".into(), json!(id.to_string()));
        props.insert("createdate".into(), json!(c.created_at));
        props.insert("lastmodifieddate".into(), json!(c.updated_at));
        json!({"id": id.to_string(), "properties": props, "createdAt": c.created_at,
            "updatedAt": c.updated_at, "archived": false})
    }

    fn property_json(&self, name: &str) -> Value {
        if name == TAG_PROPERTY {
            let options: Vec<Value> = self
                .tag_options
                .iter()
                .enumerate()
                .map(|(i, (v, l))| json!({"label": l, "value": v, "displayOrder": i, "hidden": false}))
                .collect();
            return json!({"name": name, "label": "mfh tags", "type": "enumeration",
                "fieldType": "checkbox", "groupName": "contactinformation", "options": options,
                "hubspotDefined": false});
        }
        let custom = self.custom.iter().any(|c| c == name);
        let mut p = json!({"name": name, "label": name, "type": "string", "fieldType": "text",
            "groupName": "contactinformation", "options": []});
        if !custom {
            p["hubspotDefined"] = json!(true);
        }
        p
    }

    pub(super) fn route(&mut self, req: &Request) -> Response {
        let seg = req.segments("/");
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        match (req.method.as_str(), seg.as_slice()) {
            ("GET", ["crm", "v3", "objects", "contacts"]) => self.list(req),
            ("POST", ["crm", "v3", "objects", "contacts", "search"]) => self.search(req),
            ("GET", ["crm", "v3", "objects", "contacts", id]) => {
                let wanted: Option<Vec<String>> = req
                    .param("properties")
                    .map(|p| p.split(',').map(str::to_owned).collect());
                match id
                    .parse()
                    .ok()
                    .and_then(|n| self.contacts.get(&n).map(|c| (n, c)))
                {
                    Some((n, c)) => {
                        Response::json(200, &Self::contact_json(n, c, wanted.as_deref()))
                    }
                    None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
                }
            }
            ("PATCH", ["crm", "v3", "objects", "contacts", id]) => self.patch_contact(id, req),
            ("GET", ["crm", "v3", "properties", "contacts"]) => {
                let mut names: Vec<String> =
                    STANDARD.iter().map(|(_, p)| (*p).to_owned()).collect();
                names.extend(
                    [OWNER, COMPANY]
                        .iter()
                        .chain(READ_ONLY)
                        .map(|p| (*p).to_owned()),
                );
                names.extend(self.custom.iter().cloned());
                names.push(TAG_PROPERTY.into());
                let results: Vec<Value> = names.iter().map(|n| self.property_json(n)).collect();
                Response::json(200, &json!({"results": results}))
            }
            ("GET", ["crm", "v3", "properties", "contacts", name]) if self.known(name) => {
                Response::json(200, &self.property_json(name))
            }
            ("PATCH", ["crm", "v3", "properties", "contacts", name]) if *name == TAG_PROPERTY => {
                let Some(opts) = req.json()["options"].as_array().cloned() else {
                    return error(400, "VALIDATION_ERROR", "options must be a list");
                };
                let mut parsed = Vec::new();
                for o in opts {
                    match (o["value"].as_str(), o["label"].as_str()) {
                        (Some(v), Some(l)) if !v.is_empty() => {
                            parsed.push((v.to_owned(), l.to_owned()))
                        }
                        _ => {
                            return error(
                                400,
                                "VALIDATION_ERROR",
                                "an option needs a label and a value",
                            );
                        }
                    }
                }
                self.tag_options = parsed;
                Response::json(200, &self.property_json(name))
            }
            (_, ["crm", "v3", "properties", "contacts", _]) => {
                error(404, "OBJECT_NOT_FOUND", "property not found")
            }
            ("POST", ["crm", "v3", "objects", "notes"]) => self.note(req),
            ("GET", ["account-info", "v3", "details"]) => Response::json(
                200,
                &json!({"portalId": self.portal_id, "accountType": "STANDARD",
                    "timeZone": "US/Eastern", "companyCurrency": "USD",
                    "utcOffset": "-05:00", "utcOffsetMilliseconds": -18_000_000,
                    "dataHostingLocation": "na1"}),
            ),
            ("GET", ["crm", "v3", "owners"]) => {
                let results: Vec<Value> = self
                    .owners
                    .iter()
                    .map(|(id, email)| {
                        json!({"id": id, "email": email, "firstName": "Owner",
                        "lastName": id, "userId": 1, "archived": false})
                    })
                    .collect();
                Response::json(200, &json!({"results": results}))
            }
            ("GET", ["communication-preferences", "v3", "definitions"]) => Response::json(
                200,
                &json!({"subscriptionDefinitions": [{"id": SUBSCRIPTION_ID,
                    "name": "Marketing Information", "description": "", "isActive": true,
                    "isDefault": true, "isInternal": false, "communicationMethod": "Email"}]}),
            ),
            ("GET", ["communication-preferences", "v3", "status", "email", email]) => {
                let out = self
                    .unsubscribed
                    .get(&email.to_lowercase())
                    .is_some_and(|s| s.contains(SUBSCRIPTION_ID));
                let status = if out { "NOT_SUBSCRIBED" } else { "SUBSCRIBED" };
                Response::json(
                    200,
                    &json!({"recipient": email, "subscriptionStatuses": [{
                    "id": SUBSCRIPTION_ID, "name": "Marketing Information", "status": status,
                    "sourceOfStatus": "SUBSCRIPTION_STATUS"}]}),
                )
            }
            (
                "POST",
                [
                    "communication-preferences",
                    "v3",
                    action @ ("subscribe" | "unsubscribe"),
                ],
            ) => self.consent(req, *action == "subscribe"),
            _ => error(404, "OBJECT_NOT_FOUND", "no such route in the fake"),
        }
    }

    fn list(&self, req: &Request) -> Response {
        let limit = req
            .param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(10usize)
            .min(100);
        let after: u64 = req.param("after").and_then(|a| a.parse().ok()).unwrap_or(0);
        let wanted: Option<Vec<String>> = req
            .param("properties")
            .map(|p| p.split(',').map(str::to_owned).collect());
        let page: Vec<(&u64, &FakeContact)> =
            self.contacts.range(after..).take(limit + 1).collect();
        let results: Vec<Value> = page
            .iter()
            .take(limit)
            .map(|(id, c)| Self::contact_json(**id, c, wanted.as_deref()))
            .collect();
        let mut body = json!({"results": results});
        if let Some((next, _)) = page.get(limit) {
            body["paging"] = json!({"next": {"after": next.to_string(),
                "link": format!("?after={next}")}});
        }
        Response::json(200, &body)
    }

    fn search(&self, req: &Request) -> Response {
        let body = req.json();
        let limit = body["limit"].as_u64().unwrap_or(10).min(200) as usize;
        let offset: usize = body["after"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let wanted: Vec<String> = body["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
        let matches = |c: &FakeContact| {
            groups.is_empty()
                || groups.iter().any(|g| {
                    g["filters"].as_array().into_iter().flatten().all(|f| {
                        let value = f["propertyName"].as_str().and_then(|p| c.properties.get(p));
                        match f["operator"].as_str() {
                            Some("EQ") => value.is_some_and(|v| {
                                Some(v.to_lowercase()) == f["value"].as_str().map(str::to_lowercase)
                            }),
                            Some("HAS_PROPERTY") => value.is_some_and(|v| !v.is_empty()),
                            _ => false,
                        }
                    })
                })
        };
        let hits: Vec<Value> = self
            .contacts
            .iter()
            .filter(|(_, c)| matches(c))
            .map(|(id, c)| Self::contact_json(*id, c, Some(&wanted)))
            .collect();
        let total = hits.len();
        let page: Vec<Value> = hits.into_iter().skip(offset).take(limit).collect();
        let mut out = json!({"total": total, "results": page});
        if offset + limit < total {
            out["paging"] = json!({"next": {"after": (offset + limit).to_string()}});
        }
        Response::json(200, &out)
    }

    fn patch_contact(&mut self, id: &str, req: &Request) -> Response {
        let Some(n) = id
            .parse::<u64>()
            .ok()
            .filter(|n| self.contacts.contains_key(n))
        else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        let props = req.json()["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in &props {
            let v = v.as_str().unwrap_or_default();
            if !self.known(k) {
                return error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("Property \"{k}\" does not exist"),
                );
            }
            if READ_ONLY.contains(&k.as_str()) {
                return error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("\"{k}\" is a read only property; its value cannot be set."),
                );
            }
            if k == TAG_PROPERTY
                && let Some(bad) = types::tag_values(Some(v))
                    .iter()
                    .find(|t| !self.tag_options.iter().any(|(o, _)| o == *t))
            {
                return error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("{bad} was not one of the allowed options"),
                );
            }
            if k == OWNER && !v.is_empty() && !self.owners.iter().any(|(o, _)| o == v) {
                return error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("{v} is not a valid owner id"),
                );
            }
        }
        let Some(c) = self.contacts.get_mut(&n) else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        for (k, v) in props {
            match v.as_str().unwrap_or_default() {
                "" => c.properties.remove(&k),
                v => c.properties.insert(k, v.to_owned()),
            };
        }
        c.updated_at = now();
        let c = c.clone();
        Response::json(200, &Self::contact_json(n, &c, None))
    }

    fn note(&mut self, req: &Request) -> Response {
        let body = req.json();
        if body["properties"]["hs_timestamp"].as_str().is_none() {
            return error(400, "VALIDATION_ERROR", "hs_timestamp is required");
        }
        let to = body["associations"][0]["to"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let typed = body["associations"][0]["types"][0]["associationTypeId"] == json!(202);
        if !typed || !to.parse().is_ok_and(|n| self.contacts.contains_key(&n)) {
            return error(400, "VALIDATION_ERROR", "invalid association to a contact");
        }
        let text = body["properties"]["hs_note_body"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.notes.push((to, text));
        self.next_note += 1;
        Response::json(
            201,
            &json!({"id": self.next_note.to_string(), "properties": body["properties"],
            "createdAt": now(), "updatedAt": now(), "archived": false}),
        )
    }

    fn consent(&mut self, req: &Request, subscribe: bool) -> Response {
        let body = req.json();
        let email = body["emailAddress"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if body["subscriptionId"].as_str() != Some(SUBSCRIPTION_ID) || email.is_empty() {
            return error(
                400,
                "VALIDATION_ERROR",
                "unknown subscription or missing email",
            );
        }
        let set = self.unsubscribed.entry(email.clone()).or_default();
        if subscribe && set.contains(SUBSCRIPTION_ID) {
            return error(
                400,
                "VALIDATION_ERROR",
                &format!("{email} has opted out and cannot be resubscribed"),
            );
        }
        if !subscribe && !set.insert(SUBSCRIPTION_ID.to_owned()) {
            return error(
                400,
                "VALIDATION_ERROR",
                &format!("{email} is already unsubscribed"),
            );
        }
        let opted_out = (!subscribe).to_string();
        for c in self.contacts.values_mut() {
            if c.properties
                .get("email")
                .is_some_and(|e| e.to_lowercase() == email)
            {
                c.properties.insert(OPTED_OUT.into(), opted_out.clone());
            }
        }
        let status = if subscribe {
            "SUBSCRIBED"
        } else {
            "NOT_SUBSCRIBED"
        };
        Response::json(
            200,
            &json!({"id": SUBSCRIPTION_ID, "name": "Marketing Information",
            "status": status, "sourceOfStatus": "SUBSCRIPTION_STATUS"}),
        )
    }
}
