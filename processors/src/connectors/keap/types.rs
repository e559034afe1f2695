//! Keap's REST v2 contact JSON and mfh's [`Contact`]: reading a contact, and the PATCH
//! body that sets one standard field.

use crate::connectors::vendor::text;
use crate::helpers::Contact;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The contact properties asked for on every read. Keap leaves `custom_fields` and
/// `tag_ids` out unless asked.
pub(super) const CONTACT_FIELDS: &str = "addresses,birth_date,company,create_time,\
custom_fields,email_addresses,family_name,given_name,id,job_title,leadsource_id,\
middle_name,owner_id,phone_numbers,tag_ids,time_zone,update_time,website";

/// One contact custom field from `GET /v2/contacts/model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CustomField {
    /// Keap's id, used in `custom_fields[{id, content}]`.
    pub(super) id: String,
    /// The key in [`Contact::fields`]: the legacy `_FieldName` form, else the label.
    pub(super) key: String,
    /// The label users see.
    pub(super) label: String,
}

/// The contact custom fields of one account.
#[derive(Debug, Clone, Default)]
pub(super) struct FieldMeta(pub(super) Vec<CustomField>);

impl FieldMeta {
    /// Reads the `custom_fields` of a contact model answer.
    pub(super) fn from_model(model: &Value) -> Self {
        let fields = model["custom_fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let id = text(&f["id"])?;
                let label = f["label"].as_str().unwrap_or_default().to_owned();
                let key = match f["field_name"].as_str().map(str::trim) {
                    Some(n) if n.starts_with('_') => n.to_owned(),
                    Some(n) if !n.is_empty() => format!("_{n}"),
                    _ if !label.is_empty() => label.clone(),
                    _ => return None,
                };
                Some(CustomField { id, key, label })
            })
            .collect();
        Self(fields)
    }

    fn key_of(&self, id: &str) -> Option<&str> {
        self.0.iter().find(|f| f.id == id).map(|f| f.key.as_str())
    }

    /// The custom field a helper means by `key`: its `_Name`, with or without the
    /// underscore, or its label (case-insensitive).
    pub(super) fn resolve(&self, key: &str) -> Option<&CustomField> {
        let k = key.trim();
        let lower = k.to_lowercase();
        self.0
            .iter()
            .find(|f| f.key == k || f.key.trim_start_matches('_') == k)
            .or_else(|| self.0.iter().find(|f| f.label.to_lowercase() == lower))
    }
}

/// The entry of `list` whose `field` is `slot` (EMAIL1, PHONE1, BILLING), else the first.
pub(super) fn primary<'a>(list: &'a Value, slot: &str) -> Option<&'a Value> {
    let items = list.as_array()?;
    items
        .iter()
        .find(|e| e["field"].as_str() == Some(slot))
        .or_else(|| items.first())
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Email statuses under which Keap sends marketing.
const MARKETABLE: &[&str] = &[
    "UNENGAGED_MARKETABLE",
    "SINGLE_OPT_IN",
    "DOUBLE_OPT_IN",
    "CONFIRMED",
    "UNCONFIRMED",
];

/// Whether an email status (from a contact or from the status endpoint) is marketable.
pub(super) fn marketable(entry: &Value) -> Option<bool> {
    let status = entry["email_opt_status"]
        .as_str()
        .or_else(|| entry["status"].as_str());
    match status {
        Some(s) => Some(MARKETABLE.contains(&s.to_uppercase().as_str())),
        None => entry["is_opt_in"]
            .as_bool()
            .or_else(|| entry["opted_in"].as_bool()),
    }
}

/// A Keap contact as an mfh contact; `tags` names the tag ids it knows.
pub(super) fn to_contact(raw: &Value, meta: &FieldMeta, tags: &HashMap<String, String>) -> Contact {
    let mut fields = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: &Value| {
        if let Some(s) = text(v).filter(|s| !s.trim().is_empty()) {
            fields.insert(k.to_owned(), s);
        }
    };
    put("first_name", &raw["given_name"]);
    put("last_name", &raw["family_name"]);
    put("middle_name", &raw["middle_name"]);
    put("job_title", &raw["job_title"]);
    put("website", &raw["website"]);
    put("timezone", &raw["time_zone"]);
    put("birthday", &raw["birth_date"]);
    put("lead_source_id", &raw["leadsource_id"]);
    put("company", &raw["company"]["company_name"]);
    let email = primary(&raw["email_addresses"], "EMAIL1");
    if let Some(e) = email {
        put("email", &e["email"]);
    }
    if let Some(p) = primary(&raw["phone_numbers"], "PHONE1") {
        put("phone", &p["number"]);
    }
    if let Some(a) = primary(&raw["addresses"], "BILLING") {
        put("street", &a["line1"]);
        put("city", &a["locality"]);
        // The code is what a write takes (region_code), so a read gives it back.
        put("state", &a["region_code"]);
        if a["region_code"].as_str().is_none_or(str::is_empty) {
            put("state", &a["region"]);
        }
        put("postal_code", &a["postal_code"]);
        if a["postal_code"].is_null() {
            put("postal_code", &a["zip_code"]);
        }
        put("country", &a["country_code"]);
    }
    for cf in raw["custom_fields"].as_array().into_iter().flatten() {
        if let Some(key) = text(&cf["id"]).and_then(|id| meta.key_of(&id).map(str::to_owned)) {
            put(&key, &cf["content"]);
        }
    }
    let tags = raw["tag_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(text)
        .map(|id| {
            let name = tags.get(&id).cloned().unwrap_or_else(|| id.clone());
            (id, name)
        })
        .collect();
    Contact {
        id: text(&raw["id"]).unwrap_or_default(),
        fields,
        tags,
        owner_id: text(&raw["owner_id"]).filter(|o| !o.is_empty() && o != "0"),
        company_id: text(&raw["company"]["id"]).filter(|c| !c.is_empty() && c != "0"),
        marketable: email.and_then(marketable),
        created_at: millis(&raw["create_time"]),
        updated_at: millis(&raw["update_time"]),
    }
}

/// Where a standard mfh field lives on a Keap contact.
#[derive(Debug, Clone, Copy)]
pub(super) enum Standard {
    /// A top-level property.
    Scalar(&'static str),
    /// `email_addresses[EMAIL1].email`.
    Email,
    /// `phone_numbers[PHONE1].number`.
    Phone,
    /// A property of `addresses[BILLING]`.
    Address(&'static str),
}

/// The standard field behind an mfh key, if it is one Keap lets us write.
pub(super) fn standard(key: &str) -> Option<Standard> {
    Some(match key {
        "first_name" => Standard::Scalar("given_name"),
        "last_name" => Standard::Scalar("family_name"),
        "middle_name" => Standard::Scalar("middle_name"),
        "job_title" => Standard::Scalar("job_title"),
        "website" => Standard::Scalar("website"),
        "timezone" => Standard::Scalar("time_zone"),
        "birthday" => Standard::Scalar("birth_date"),
        "email" => Standard::Email,
        "phone" => Standard::Phone,
        "street" => Standard::Address("line1"),
        "city" => Standard::Address("locality"),
        "state" => Standard::Address("region_code"),
        "postal_code" => Standard::Address("postal_code"),
        "country" => Standard::Address("country_code"),
        _ => return None,
    })
}

/// What a write may carry in each entry of a contact's lists (Keap-v2
/// CreateUpdateContactRequest: EmailAddressRequest, PhoneNumber, AddressRequest); the
/// read shape adds read-only or deprecated ones (`email_opt_status`, `is_opt_in`,
/// `region`, `country`) that a write must not echo.
const WRITABLE_IN_LIST: &[(&str, &[&str])] = &[
    ("email_addresses", &["email", "field", "opt_in_reason"]),
    (
        "phone_numbers",
        &["extension", "number", "type", "field", "number_e164"],
    ),
    (
        "addresses",
        &[
            "line1",
            "line2",
            "locality",
            "field",
            "country_code",
            "postal_code",
            "region_code",
        ],
    ),
];

/// Replaces (or removes, for `None`) `prop` of the `slot` entry of the list `list_key`,
/// keeping the contact's other entries, since Keap replaces the whole list.
fn set_in_list(raw: &Value, list_key: &str, slot: &str, prop: &str, value: Option<&str>) -> Value {
    let mut items: Vec<Value> = raw[list_key].as_array().cloned().unwrap_or_default();
    let at = items
        .iter()
        .position(|e| e["field"].as_str() == Some(slot))
        .or(if items.is_empty() { None } else { Some(0) });
    let whole_entry = list_key != "addresses";
    match (at, value) {
        (Some(i), Some(v)) => {
            if let Some(o) = items[i].as_object_mut() {
                o.insert(prop.to_owned(), json!(v));
            }
        }
        (Some(i), None) if whole_entry => {
            items.remove(i);
        }
        (Some(i), None) => {
            if let Some(o) = items[i].as_object_mut() {
                o.remove(prop);
            }
        }
        (None, Some(v)) => items.push(json!({ prop: v, "field": slot })),
        (None, None) => {}
    }
    let writable = WRITABLE_IN_LIST
        .iter()
        .find(|(k, _)| *k == list_key)
        .map_or(&[][..], |(_, w)| *w);
    for e in &mut items {
        if let Some(o) = e.as_object_mut() {
            o.retain(|k, _| writable.contains(&k.as_str()));
        }
    }
    Value::Array(items)
}

/// ISO 3166-1 alpha-3 (Keap's `country_code`) to alpha-2, for the countries whose
/// subdivision codes a marketer is likely to type without the prefix.
const ALPHA2: &[(&str, &str)] = &[
    ("USA", "US"),
    ("CAN", "CA"),
    ("AUS", "AU"),
    ("GBR", "GB"),
    ("NZL", "NZ"),
    ("IRL", "IE"),
    ("IND", "IN"),
    ("MEX", "MX"),
    ("BRA", "BR"),
    ("DEU", "DE"),
    ("FRA", "FR"),
    ("ESP", "ES"),
    ("ITA", "IT"),
];

/// A state as Keap-v2 writes it: `region_code`, "An ISO 3166-2 Province Code, such as
/// one of the US States" (`US-AZ`); `region` is "Deprecated… Please use 'region_code'
/// for POST/PATCH operations". A bare code (`AZ`) takes the address's country.
///
/// # Errors
/// The reason, for a value that is no ISO 3166-2 code.
fn region_code(raw: &Value, value: &str) -> Result<String, String> {
    let v = value.trim().to_uppercase();
    let code_part =
        |s: &str| (1..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric());
    if let Some((country, sub)) = v.split_once('-')
        && country.len() == 2
        && country.chars().all(|c| c.is_ascii_uppercase())
        && code_part(sub)
    {
        return Ok(v);
    }
    let country = primary(&raw["addresses"], "BILLING")
        .and_then(|a| a["country_code"].as_str())
        .map(str::to_uppercase);
    let alpha2 = country.as_deref().and_then(|c| {
        ALPHA2
            .iter()
            .find(|(a3, a2)| *a3 == c || *a2 == c)
            .map(|(_, a2)| *a2)
    });
    match alpha2 {
        Some(a2) if code_part(&v) => Ok(format!("{a2}-{v}")),
        _ => Err(format!(
            "Keap takes a state as an ISO 3166-2 code such as US-AZ; {value:?} is not one{}",
            if country.is_none() {
                " (a bare code needs the address's country)"
            } else {
                ""
            }
        )),
    }
}

/// The `update_mask` and body of a PATCH that sets one standard field.
///
/// # Errors
/// The reason, for a value Keap cannot take in that field.
pub(super) fn patch(
    raw: &Value,
    field: Standard,
    value: Option<&str>,
) -> Result<(&'static str, Value), String> {
    let region;
    let value = match (field, value) {
        (Standard::Address("region_code"), Some(v)) if !v.trim().is_empty() => {
            region = region_code(raw, v)?;
            Some(region.as_str())
        }
        _ => value,
    };
    let (mask, v) = match field {
        Standard::Scalar(k) => (k, value.map_or(Value::Null, |v| json!(v))),
        Standard::Email => (
            "email_addresses",
            set_in_list(raw, "email_addresses", "EMAIL1", "email", value),
        ),
        Standard::Phone => (
            "phone_numbers",
            set_in_list(raw, "phone_numbers", "PHONE1", "number", value),
        ),
        Standard::Address(p) => (
            "addresses",
            set_in_list(raw, "addresses", "BILLING", p, value),
        ),
    };
    let mut body = Map::new();
    body.insert(mask.to_owned(), v);
    Ok((mask, Value::Object(body)))
}

/// Applies a PATCH body that Keap accepted to our copy of the contact, so later changes
/// of the same apply see it.
pub(super) fn merge(raw: &mut Value, body: &Value) {
    let (Some(dst), Some(src)) = (raw.as_object_mut(), body.as_object()) else {
        return;
    };
    for (k, v) in src {
        if k != "custom_fields" {
            dst.insert(k.clone(), v.clone());
            continue;
        }
        let list = dst.entry(k.clone()).or_insert_with(|| json!([]));
        let Some(items) = list.as_array_mut() else {
            continue;
        };
        for cf in v.as_array().into_iter().flatten() {
            match items.iter_mut().find(|e| text(&e["id"]) == text(&cf["id"])) {
                Some(e) => *e = cf.clone(),
                None => items.push(cf.clone()),
            }
        }
    }
}
