//! GoHighLevel's contact JSON as mfh's contact fields.

use crate::connectors::ContactQuery;
use crate::connectors::vendor::text;
use crate::helpers::Contact;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// mfh's standard field keys and the GoHighLevel contact attributes that hold them.
/// GoHighLevel has no job title attribute.
pub(super) const STANDARD: &[(&str, &str)] = &[
    ("email", "email"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("phone", "phone"),
    ("company", "companyName"),
    ("website", "website"),
    ("street", "address1"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "postalCode"),
    ("country", "country"),
    ("birthday", "dateOfBirth"),
    ("lead_source", "source"),
    ("timezone", "timezone"),
];

/// The attribute of a standard key.
pub(super) fn attribute_of(key: &str) -> Option<&'static str> {
    STANDARD.iter().find(|(k, _)| *k == key).map(|(_, a)| *a)
}

/// A contact custom field of the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CustomField {
    /// Its id, used on writes.
    pub(super) id: String,
    /// The name the user sees, used as the field key.
    pub(super) name: String,
    /// `contact.<key>`.
    pub(super) field_key: String,
    /// `TEXT`, `NUMERICAL`, `MULTIPLE_OPTIONS`, …: what a write's `field_value` is.
    pub(super) data_type: String,
}

impl CustomField {
    /// Whether `key` names this field: its name (any case) or its field key, with or
    /// without the `contact.` prefix.
    pub(super) fn is(&self, key: &str) -> bool {
        self.name == key
            || self.name.to_lowercase() == key.to_lowercase()
            || self.field_key == key
            || self.field_key.strip_prefix("contact.") == Some(key)
    }

    /// The `field_value` that writes `value` (`None` clears) into this field, typed as
    /// GHL-docs `apps/contacts.json` types it: NumericField/MonetoryField a number,
    /// CheckboxField/MultiSelectField `string[]` (mfh's text joins them with ", "),
    /// the text and single-choice kinds a string.
    ///
    /// # Errors
    /// The reason, when `value` is not a number for a number field.
    pub(super) fn field_value(&self, value: Option<&str>) -> Result<Value, String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        match self.data_type.as_str() {
            "NUMERICAL" | "MONETORY" | "FLOAT" => match value {
                None => Ok(Value::Null),
                Some(v) => v
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| {
                        v.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                            .ok_or(())
                    })
                    .map_err(|()| {
                        format!("{} is a number field; {v:?} is not a number", self.name)
                    }),
            },
            "CHECKBOX" | "MULTIPLE_OPTIONS" => Ok(Value::Array(
                value
                    .into_iter()
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )),
            _ => Ok(Value::String(value.unwrap_or_default().to_owned())),
        }
    }
}

/// Custom fields from `GET /locations/{id}/customFields`.
pub(super) fn custom_fields(v: &Value) -> Vec<CustomField> {
    v["customFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(CustomField {
                id: f["id"].as_str()?.to_owned(),
                name: f["name"].as_str().unwrap_or_default().to_owned(),
                field_key: f["fieldKey"].as_str().unwrap_or_default().to_owned(),
                data_type: f["dataType"].as_str().unwrap_or("TEXT").to_owned(),
            })
        })
        .collect()
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        other => text(other),
    }
    .filter(|s| !s.trim().is_empty())
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The email DND status (`active`, `inactive`, `permanent`), if set.
pub(super) fn email_dnd(v: &Value) -> Option<&str> {
    v["dndSettings"]["Email"]["status"].as_str()
}

/// A contact from GoHighLevel's contact object. An `active` (or `permanent`) email DND,
/// or DND on every channel, makes it not marketable.
pub(super) fn contact_from(v: &Value, fields: &[CustomField]) -> Contact {
    let mut out = BTreeMap::new();
    for (key, attr) in STANDARD {
        if let Some(value) = value_text(&v[*attr]) {
            out.insert((*key).to_owned(), value);
        }
    }
    for cf in v["customFields"].as_array().into_iter().flatten() {
        let id = cf["id"].as_str().unwrap_or_default();
        let value = value_text(&cf["value"]).or_else(|| value_text(&cf["field_value"]));
        if let (Some(f), Some(value)) = (fields.iter().find(|f| f.id == id), value) {
            out.insert(f.name.clone(), value);
        }
    }
    let tags = v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|t| (t.to_owned(), t.to_owned()))
        .collect();
    let marketable = if v["dnd"].as_bool() == Some(true) {
        Some(false)
    } else {
        match email_dnd(v) {
            Some("active" | "permanent") => Some(false),
            Some("inactive") => Some(true),
            _ => v["dnd"].as_bool().map(|d| !d),
        }
    };
    let opt = |k: &str| value_text(&v[k]);
    Contact {
        id: opt("id").unwrap_or_default(),
        fields: out,
        tags,
        owner_id: opt("assignedTo"),
        company_id: opt("businessId"),
        marketable,
        created_at: millis(&v["dateAdded"]),
        updated_at: millis(&v["dateUpdated"]),
    }
}

/// A contact from a `POST /contacts/search` hit, whose shape differs from GET contact's
/// (GHL-docs issue #314, verified live): the street comes as `address` and the birthday
/// as epoch milliseconds, read here as GET's `address1` and `YYYY-MM-DD`.
pub(super) fn contact_from_search_hit(v: &Value, fields: &[CustomField]) -> Contact {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        if !o.contains_key("address1")
            && let Some(street) = o.get("address").cloned()
        {
            o.insert("address1".into(), street);
        }
        let day = o
            .get("dateOfBirth")
            .and_then(Value::as_i64)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d").to_string());
        if let Some(day) = day {
            o.insert("dateOfBirth".into(), Value::String(day));
        }
    }
    contact_from(&v, fields)
}

/// The search filters that narrow `query` server-side: only email equality, at the top
/// level or inside a top-level `And`. Everything else is filtered client-side.
pub(super) fn filters(query: &ContactQuery) -> Vec<Value> {
    let email = |q: &ContactQuery| match q {
        ContactQuery::FieldEquals { field, value }
            if field == "email" && !value.trim().is_empty() =>
        {
            Some(json!({"field": "email", "operator": "eq", "value": value.trim().to_lowercase()}))
        }
        _ => None,
    };
    match query {
        ContactQuery::And(qs) => qs.iter().find_map(email).into_iter().collect(),
        q => email(q).into_iter().collect(),
    }
}
