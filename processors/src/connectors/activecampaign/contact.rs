//! From ActiveCampaign's JSON to a [`Contact`]: the four native contact fields, custom
//! field values keyed by the field's title, tags from the `contactTags` join records and
//! consent from the list memberships. Pure, so it is tested without a server.

use crate::connectors::vendor::text;
use crate::helpers::Contact;
use serde_json::Value;
use std::collections::BTreeMap;

/// Our field keys of the native contact properties, with ActiveCampaign's JSON names.
pub(super) const NATIVE: [(&str, &str); 4] = [
    ("email", "email"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("phone", "phone"),
];

/// The standard keys ActiveCampaign has no native property for; a custom field whose
/// title normalises to one of these (or a common synonym) also answers to that key, so a
/// helper reading `city` finds the account's "City" field.
const STANDARD: [&str; 11] = [
    "company",
    "job_title",
    "website",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "birthday",
    "lead_source",
    "timezone",
];

/// One custom contact field from `GET /fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    /// The field id.
    pub(super) id: String,
    /// The title the user sees.
    pub(super) title: String,
    /// The personalisation tag (`%FAVORITE_COLOR%` without the percent signs).
    pub(super) perstag: String,
    /// The standard key this field stands for, if any.
    pub(super) alias: Option<&'static str>,
}

impl Field {
    /// A field from one element of the `fields` array.
    pub(super) fn parse(v: &Value) -> Option<Self> {
        let id = text(v.get("id")?)?;
        let title = v.get("title").and_then(text).unwrap_or_default();
        let perstag = v.get("perstag").and_then(text).unwrap_or_default();
        let alias = standard_alias(&title);
        Some(Self {
            id,
            title,
            perstag,
            alias,
        })
    }
}

fn normalise(s: &str) -> String {
    let mut out = String::new();
    for ch in s.trim().to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The standard key a custom field title stands for.
pub(super) fn standard_alias(title: &str) -> Option<&'static str> {
    let n = normalise(title);
    let synonym = match n.as_str() {
        "zip" | "zip_code" | "zipcode" | "postcode" | "postal" => Some("postal_code"),
        "address" | "street_address" | "address_1" => Some("street"),
        "company_name" | "organization" | "organisation" => Some("company"),
        "title" | "jobtitle" | "position" => Some("job_title"),
        "url" | "web_site" | "website_url" => Some("website"),
        "province" | "region" => Some("state"),
        "birth_date" | "date_of_birth" | "dob" => Some("birthday"),
        "source" => Some("lead_source"),
        "time_zone" => Some("timezone"),
        _ => None,
    };
    synonym.or_else(|| STANDARD.iter().copied().find(|k| *k == n))
}

/// The custom field a change's field key names: its title (exact, then any case), its
/// personalisation tag, then the standard key it stands for.
pub(super) fn find_field<'a>(fields: &'a [Field], key: &str) -> Option<&'a Field> {
    let lower = key.trim().to_lowercase();
    fields
        .iter()
        .find(|f| f.title == key)
        .or_else(|| fields.iter().find(|f| f.title.to_lowercase() == lower))
        .or_else(|| {
            fields
                .iter()
                .find(|f| !f.perstag.is_empty() && f.perstag.to_lowercase() == lower)
        })
        .or_else(|| fields.iter().find(|f| f.alias == Some(key)))
}

/// ActiveCampaign's timestamps (`2018-09-12T16:53:50-05:00`, sometimes without the
/// offset, or zeroed) in milliseconds.
pub(super) fn millis(v: Option<&Value>) -> Option<i64> {
    let s = v.and_then(Value::as_str)?.trim();
    if s.is_empty() || s.starts_with("0000") {
        return None;
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// A contact with everything ActiveCampaign keeps about it apart from the contact object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Loaded {
    /// The snapshot helpers see.
    pub(super) contact: Contact,
    /// Tag id → id of the `contactTag` join record, which removing a tag needs.
    pub(super) tag_links: BTreeMap<String, String>,
    /// List id → subscription status (1 active, 2 unsubscribed, 0 unconfirmed, 3 bounced).
    pub(super) lists: BTreeMap<String, String>,
}

/// The parts of a contact that live in side-loaded arrays.
#[derive(Debug, Default)]
pub(super) struct Related<'a> {
    /// `fieldValues` elements of this contact.
    pub(super) field_values: Vec<&'a Value>,
    /// `contactTags` elements of this contact.
    pub(super) contact_tags: Vec<&'a Value>,
    /// `contactLists` elements of this contact.
    pub(super) contact_lists: Vec<&'a Value>,
}

/// Groups a side-loaded array (`fieldValues`, `contactTags`, `contactLists`) of `body`
/// by each element's `contact`.
pub(super) fn by_contact<'a>(body: &'a Value, key: &str) -> BTreeMap<String, Vec<&'a Value>> {
    let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in body
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = v.get("contact").and_then(text) {
            out.entry(c).or_default().push(v);
        }
    }
    out
}

/// Builds the contact from its JSON object and related records; `tags` names tag ids.
pub(super) fn build(
    c: &Value,
    related: &Related<'_>,
    fields: &[Field],
    tags: &BTreeMap<String, String>,
) -> Loaded {
    let mut contact = Contact {
        id: c.get("id").and_then(text).unwrap_or_default(),
        created_at: millis(c.get("cdate")),
        updated_at: millis(c.get("udate")),
        company_id: c
            .get("orgid")
            .and_then(text)
            .filter(|o| !o.is_empty() && o != "0"),
        ..Contact::default()
    };
    for (key, json) in NATIVE {
        if let Some(v) = c.get(json).and_then(text).filter(|v| !v.is_empty()) {
            contact.fields.insert(key.to_owned(), v);
        }
    }
    let by_id: BTreeMap<&str, &Field> = fields.iter().map(|f| (f.id.as_str(), f)).collect();
    for fv in &related.field_values {
        let (Some(field), Some(value)) = (
            fv.get("field").and_then(text),
            fv.get("value").and_then(text),
        ) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let Some(f) = by_id.get(field.as_str()) else {
            continue;
        };
        if let Some(alias) = f.alias {
            contact
                .fields
                .entry(alias.to_owned())
                .or_insert_with(|| value.clone());
        }
        contact.fields.insert(f.title.clone(), value);
    }
    let mut tag_links = BTreeMap::new();
    for ct in &related.contact_tags {
        if let (Some(tag), Some(link)) = (ct.get("tag").and_then(text), ct.get("id").and_then(text))
        {
            let name = tags.get(&tag).cloned().unwrap_or_else(|| tag.clone());
            contact.tags.insert(tag.clone(), name);
            tag_links.insert(tag, link);
        }
    }
    let mut lists = BTreeMap::new();
    for cl in &related.contact_lists {
        if let Some(list) = cl.get("list").and_then(text) {
            let status = cl.get("status").and_then(text).unwrap_or_default();
            lists.insert(list, status);
        }
    }
    contact.marketable = marketable(&lists);
    Loaded {
        contact,
        tag_links,
        lists,
    }
}

/// Subscribed to at least one list: yes; on lists but subscribed to none: no; on no list:
/// ActiveCampaign does not say.
pub(super) fn marketable(lists: &BTreeMap<String, String>) -> Option<bool> {
    if lists.is_empty() {
        None
    } else {
        Some(lists.values().any(|s| s == "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_native_custom_and_aliased_fields_tags_and_consent() {
        let fields: Vec<Field> = [
            json!({"id": "1", "title": "Favorite Color", "perstag": "FAVORITE_COLOR"}),
            json!({"id": "2", "title": "Zip Code", "perstag": "ZIP"}),
        ]
        .iter()
        .filter_map(Field::parse)
        .collect();
        let body = json!({
            "contact": {"id": "7", "email": "a@b.com", "firstName": "A", "lastName": "",
                        "cdate": "2018-09-12T16:53:50-05:00", "udate": "0000-00-00 00:00:00",
                        "orgid": "0"},
            "fieldValues": [{"contact": "7", "field": "1", "value": "Blue"},
                            {"contact": "7", "field": "2", "value": "73301"},
                            {"contact": "7", "field": "9", "value": "orphan"}],
            "contactLists": [{"contact": "7", "list": "1", "status": "2"}],
        });
        let fv = by_contact(&body, "fieldValues");
        let cl = by_contact(&body, "contactLists");
        let ct = [json!({"contact": "7", "tag": "3", "id": "55"})];
        let related = Related {
            field_values: fv.get("7").cloned().unwrap_or_default(),
            contact_tags: ct.iter().collect(),
            contact_lists: cl.get("7").cloned().unwrap_or_default(),
        };
        let tags = [("3".to_owned(), "VIP".to_owned())].into();
        let l = build(&body["contact"], &related, &fields, &tags);
        assert_eq!(l.contact.field("email"), Some("a@b.com"));
        assert_eq!(l.contact.field("last_name"), None);
        assert_eq!(l.contact.field("Favorite Color"), Some("Blue"));
        assert_eq!(l.contact.field("postal_code"), Some("73301"));
        assert_eq!(l.contact.fields.len(), 5);
        assert_eq!(l.contact.tags["3"], "VIP");
        assert_eq!(l.tag_links["3"], "55");
        assert_eq!(l.contact.marketable, Some(false));
        assert_eq!(l.contact.created_at, Some(1_536_789_230_000));
        assert_eq!(l.contact.updated_at, None);
        assert_eq!(l.contact.company_id, None);
        assert_eq!(
            find_field(&fields, "favorite color").map(|f| &*f.id),
            Some("1")
        );
        assert_eq!(find_field(&fields, "ZIP").map(|f| &*f.id), Some("2"));
        assert!(find_field(&fields, "nope").is_none());
    }
}
