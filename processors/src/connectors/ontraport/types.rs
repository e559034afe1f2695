//! Ontraport's flat contact object and mfh's [`Contact`].

use crate::connectors::vendor::text;
use crate::helpers::Contact;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// mfh's standard keys and the Ontraport contact fields behind them.
pub(super) const STANDARD: &[(&str, &str)] = &[
    ("email", "email"),
    ("first_name", "firstname"),
    ("last_name", "lastname"),
    ("phone", "office_phone"),
    ("company", "company"),
    ("job_title", "title"),
    ("website", "website"),
    ("street", "address"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "zip"),
    ("country", "country"),
    ("birthday", "birthday"),
    ("timezone", "timezone"),
];

/// The Ontraport field of a standard mfh key.
pub(super) fn standard(key: &str) -> Option<&'static str> {
    STANDARD.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// One custom field (`f1234`) from `GET /Contacts/meta`.
#[derive(Debug, Clone)]
pub(super) struct CustomField {
    /// The field's key on the contact, e.g. `f1234`.
    pub(super) name: String,
    /// The name users see, the key in [`Contact::fields`].
    pub(super) alias: String,
}

/// The contact custom fields of one account.
#[derive(Debug, Clone, Default)]
pub(super) struct FieldMeta(pub(super) Vec<CustomField>);

impl FieldMeta {
    /// Reads a meta answer: `data` maps object type ids to `{name, fields}`, and
    /// `fields` maps field keys to `{alias, type, ...}`.
    pub(super) fn from_meta(meta: &Value) -> Self {
        let data = &meta["data"];
        let fields = if data["0"].is_object() {
            &data["0"]["fields"]
        } else {
            &data["fields"]
        };
        let mut out: Vec<CustomField> = fields
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| is_custom(k))
            .map(|(k, f)| CustomField {
                name: k.clone(),
                alias: f["alias"].as_str().unwrap_or(k).trim().to_owned(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Self(out)
    }

    /// The custom field a helper means by `key`: its alias (case-insensitive) or `f1234`.
    pub(super) fn resolve(&self, key: &str) -> Option<&CustomField> {
        let lower = key.trim().to_lowercase();
        self.0
            .iter()
            .find(|f| f.name == key.trim())
            .or_else(|| self.0.iter().find(|f| f.alias.to_lowercase() == lower))
    }
}

/// Custom fields are `f` followed by digits.
fn is_custom(key: &str) -> bool {
    key.len() > 1 && key.starts_with('f') && key[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Tag ids from `contact_cat`, which Ontraport stores as `*/*1*/*5*/*`.
pub(super) fn tag_ids(raw: &Value) -> Vec<String> {
    raw["contact_cat"]
        .as_str()
        .unwrap_or_default()
        .split("*/*")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `contact_cat` holding `ids`.
pub(super) fn contact_cat(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!("*/*{}*/*", ids.join("*/*"))
    }
}

fn seconds_to_ms(v: &Value) -> Option<i64> {
    text(v)?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .map(|s| s * 1000)
}

/// A birthday (Unix seconds on Ontraport) as `YYYY-MM-DD`.
fn birthday(v: &Value) -> Option<String> {
    let secs = text(v)?.trim().parse::<i64>().ok().filter(|s| *s != 0)?;
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%d").to_string())
}

/// A `YYYY-MM-DD` birthday as Ontraport's Unix seconds; other text is sent unchanged.
pub(super) fn birthday_value(v: &str) -> String {
    chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or_else(|| v.to_owned(), |d| d.and_utc().timestamp().to_string())
}

/// Whether a `bulk_mail` value lets marketing through (1 single, 2 double opt-in).
pub(super) fn marketable(raw: &Value) -> Option<bool> {
    text(&raw["bulk_mail"])?
        .trim()
        .parse::<i64>()
        .ok()
        .map(|b| b > 0)
}

/// An Ontraport contact as an mfh contact; `tags` names the tag ids it knows.
pub(super) fn to_contact(raw: &Value, meta: &FieldMeta, tags: &HashMap<String, String>) -> Contact {
    let mut fields = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(s) = v.filter(|s| !s.trim().is_empty()) {
            fields.insert(k.to_owned(), s);
        }
    };
    for (key, field) in STANDARD {
        if *key == "birthday" {
            put(key, birthday(&raw[*field]));
        } else {
            put(key, text(&raw[*field]));
        }
    }
    for cf in &meta.0 {
        put(&cf.alias, text(&raw[cf.name.as_str()]));
    }
    let tags = tag_ids(raw)
        .into_iter()
        .map(|id| {
            let name = tags.get(&id).cloned().unwrap_or_else(|| id.clone());
            (id, name)
        })
        .collect();
    Contact {
        id: text(&raw["id"]).unwrap_or_default(),
        fields,
        tags,
        owner_id: text(&raw["owner"]).filter(|o| !o.is_empty() && o != "0"),
        company_id: None,
        marketable: marketable(raw),
        created_at: seconds_to_ms(&raw["date"]),
        updated_at: seconds_to_ms(&raw["dlm"]),
    }
}
