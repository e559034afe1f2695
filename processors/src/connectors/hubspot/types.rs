//! HubSpot's contact properties as mfh's contact fields, and contact queries as CRM
//! search filter groups.

use crate::connectors::{ContactQuery, Tag};
use crate::helpers::Contact;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// mfh's standard field keys and the HubSpot properties that hold them.
pub(super) const STANDARD: &[(&str, &str)] = &[
    ("email", "email"),
    ("first_name", "firstname"),
    ("last_name", "lastname"),
    ("phone", "phone"),
    ("company", "company"),
    ("job_title", "jobtitle"),
    ("website", "website"),
    ("street", "address"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "zip"),
    ("country", "country"),
    ("birthday", "date_of_birth"),
    ("lead_source", "hs_analytics_source"),
    ("timezone", "hs_timezone"),
];

/// The owner property.
pub(super) const OWNER: &str = "hubspot_owner_id";
/// The primary company's id.
pub(super) const COMPANY: &str = "associatedcompanyid";
/// "Unsubscribed from all email".
pub(super) const OPTED_OUT: &str = "hs_email_optout";

/// Properties read besides the standard fields, custom fields and tags.
const META: &[&str] = &[OWNER, COMPANY, OPTED_OUT, "createdate", "lastmodifieddate"];

/// The HubSpot property of an mfh field key: a standard key maps to its property, any
/// other key is taken as a property's internal name.
pub(super) fn property_of(key: &str) -> &str {
    STANDARD
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, p)| p)
}

/// The mfh field key of a HubSpot property.
pub(super) fn key_of(property: &str) -> &str {
    STANDARD
        .iter()
        .find(|(_, p)| *p == property)
        .map_or(property, |(k, _)| k)
}

/// Every property a contact read asks for.
pub(super) fn requested(custom: &[String], tag_property: &str) -> Vec<String> {
    STANDARD
        .iter()
        .map(|(_, p)| (*p).to_owned())
        .chain(META.iter().map(|p| (*p).to_owned()))
        .chain(custom.iter().cloned())
        .chain([tag_property.to_owned()])
        .collect()
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The tag values of a multi-checkbox property value (`a;b;c`).
pub(super) fn tag_values(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A contact from a `SimplePublicObject`.
pub(super) fn contact_from(
    v: &Value,
    custom: &[String],
    tag_property: &str,
    catalog: &[Tag],
) -> Contact {
    let props = &v["properties"];
    let prop = |p: &str| {
        props
            .get(p)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let mut fields = BTreeMap::new();
    for (key, p) in STANDARD {
        if let Some(value) = prop(p) {
            fields.insert((*key).to_owned(), value);
        }
    }
    for p in custom.iter().filter(|p| p.as_str() != tag_property) {
        if let Some(value) = prop(p) {
            fields.insert(p.clone(), value);
        }
    }
    let tags = tag_values(prop(tag_property).as_deref())
        .into_iter()
        .map(|value| {
            let name = catalog
                .iter()
                .find(|t| t.id == value)
                .map_or_else(|| value.clone(), |t| t.name.clone());
            (value, name)
        })
        .collect();
    Contact {
        id: crate::connectors::vendor::text(&v["id"]).unwrap_or_default(),
        fields,
        tags,
        owner_id: prop(OWNER),
        company_id: prop(COMPANY),
        marketable: prop(OPTED_OUT).and_then(|o| match o.as_str() {
            "true" => Some(false),
            "false" => Some(true),
            _ => None,
        }),
        created_at: millis(&v["createdAt"]),
        updated_at: millis(&v["updatedAt"]),
    }
}

/// HubSpot's search caps (developers.hubspot.com/changelog/breaking-change-expanded-
/// filtering-capabilities-and-error-messaging-in-hubspots-search-api): "five" filter
/// groups, "up to ten filters… within each filter group", "up to twenty-five filters in
/// a single search query".
const MAX_GROUPS: usize = 5;
const MAX_FILTERS: usize = 10;
const MAX_TOTAL_FILTERS: usize = 25;

/// `query` as search filter groups (ORed groups of ANDed filters) that match at least
/// every contact the query matches; `None` when no narrowing is possible (or HubSpot's
/// caps are exceeded), so the caller lists every contact. Field equality becomes `EQ`
/// on the property (HubSpot compares strings case-insensitively); substrings and tags
/// become `HAS_PROPERTY`, a superset, because `CONTAINS_TOKEN` matches whole tokens
/// only. The caller filters each page with [`ContactQuery::matches`].
pub(super) fn filter_groups(query: &ContactQuery, tag_property: &str) -> Option<Vec<Vec<Value>>> {
    let groups = match query {
        ContactQuery::All => return None,
        ContactQuery::FieldEquals { field, value } => {
            let value = if field == "email" {
                value.trim().to_lowercase()
            } else {
                value.trim().to_owned()
            };
            vec![vec![json!({
                "propertyName": property_of(field),
                "operator": "EQ",
                "value": value,
            })]]
        }
        ContactQuery::FieldContains { field, .. } => vec![vec![json!({
            "propertyName": property_of(field),
            "operator": "HAS_PROPERTY",
        })]],
        ContactQuery::HasTag { .. } => vec![vec![json!({
            "propertyName": tag_property,
            "operator": "HAS_PROPERTY",
        })]],
        ContactQuery::Or(qs) => {
            let mut out = Vec::new();
            for q in qs {
                out.extend(filter_groups(q, tag_property)?);
            }
            out
        }
        ContactQuery::And(qs) => {
            let mut out: Vec<Vec<Value>> = vec![Vec::new()];
            for q in qs {
                let Some(groups) = filter_groups(q, tag_property) else {
                    continue; // `All` narrows nothing
                };
                out = out
                    .iter()
                    .flat_map(|a| {
                        groups
                            .iter()
                            .map(move |b| a.iter().chain(b).cloned().collect())
                    })
                    .collect();
                if out.len() > MAX_GROUPS {
                    return None;
                }
            }
            if out.iter().all(Vec::is_empty) {
                return None;
            }
            out
        }
    };
    (!groups.is_empty()
        && groups.len() <= MAX_GROUPS
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.len() <= MAX_FILTERS)
        && groups.iter().map(Vec::len).sum::<usize>() <= MAX_TOTAL_FILTERS)
        .then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_superset_filter_groups() {
        let eq = |f: &str, v: &str| ContactQuery::FieldEquals {
            field: f.into(),
            value: v.into(),
        };
        let g = filter_groups(&eq("email", " A@B.com "), "mfh_tags").unwrap();
        assert_eq!(g[0][0]["value"], "a@b.com");
        let q = ContactQuery::And(vec![
            ContactQuery::Or(vec![eq("first_name", "a"), eq("first_name", "b")]),
            ContactQuery::HasTag {
                tag_id: "vip".into(),
            },
        ]);
        let g = filter_groups(&q, "mfh_tags").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[1][0]["propertyName"], "firstname");
        assert_eq!(g[1][1]["propertyName"], "mfh_tags");
        assert!(filter_groups(&ContactQuery::Or(vec![ContactQuery::All]), "t").is_none());
        // Five groups of six filters are within each group's cap but over the 25-filter
        // total: listing (and filtering client-side) instead of a request HubSpot refuses.
        let group =
            |n: usize| ContactQuery::And((0..n).map(|i| eq(&format!("f{i}"), "x")).collect());
        let wide = |n: usize| ContactQuery::Or((0..5).map(|_| group(n)).collect());
        assert_eq!(
            filter_groups(&wide(5), "t").map(|g| g.iter().map(Vec::len).sum::<usize>()),
            Some(25)
        );
        assert!(filter_groups(&wide(6), "t").is_none());
        assert!(filter_groups(&ContactQuery::Or(vec![group(11)]), "t").is_none());
    }
}
