//! get_the_first: copies one field of the contact's oldest related record (invoice, order,
//! subscription, lead, card or payment) into a contact field: "first purchase date",
//! "first product bought". Records come from the CRM's related-records query (oldest
//! first); `filter` keeps only records whose fields equal the given values
//! (case-insensitive), and `order_by` picks the sort key: `DateCreated` (default) is the
//! record's creation time, any other field sorts by its value (numbers as numbers, dates as
//! dates) and records without it are skipped. `from_field` may name a record field or
//! `Id`/`DateCreated` (written as RFC 3339 when the record has no such field); a list value
//! (a JSON array) is joined with `, `. No matching record, or a record without the field,
//! is a success without a write; nothing falls back to contact fields. get_the_last runs
//! the same step with the newest record. Idempotent.

use super::date_calc::{DateOrder, parse_date};
use super::math_it::parse_number;
use crate::connectors::{Capability, RecordKind, RelatedRecord};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use chrono::NaiveDateTime;
use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Config of get_the_first (and get_the_last).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The record kind: `invoice`, `job`, `subscription`, `lead`, `creditcard`, `payment`.
    #[serde(rename = "type")]
    pub record_type: RecordKind,
    /// The record field copied, e.g. `InvoiceTotal`, `ProductSold`, `DateCreated`, `Id`.
    pub from_field: String,
    /// The contact field written.
    pub to_field: String,
    /// The record field that orders the records; default `DateCreated`.
    #[serde(default = "default_order_by")]
    pub order_by: String,
    /// Only records whose fields equal these values (case-insensitive), e.g.
    /// `{"Status": "paid"}`.
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

fn default_order_by() -> String {
    "DateCreated".into()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, v) in [
            ("from_field", &self.from_field),
            ("to_field", &self.to_field),
            ("order_by", &self.order_by),
        ] {
            check(&mut errors, v.trim().is_empty(), name, "must not be empty");
        }
        check(
            &mut errors,
            self.filter.keys().any(|k| k.trim().is_empty()),
            "filter",
            "field keys must not be empty",
        );
        finish(errors)
    }
}

/// The get_the_first helper.
pub struct GetTheFirst;

impl Helper for GetTheFirst {
    const NAME: &'static str = "get_the_first";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Copies a field of the contact's oldest invoice, order or other related record.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"type": "invoice", "from_field": "ProductSold", "to_field": "_FirstProduct"}"#;
    const OUTPUTS: &'static [&'static str] = &["record_id", "records", "<to_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::RelatedRecords, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        record_step(config, false)
    }
}

/// The step shared with get_the_last: copies `from_field` of the oldest record, or of the
/// newest with `newest`.
pub(crate) fn record_step(config: Config, newest: bool) -> Runnable {
    Runnable::Async(Box::new(RecordFieldStep { config, newest }))
}

fn is_created(key: &str) -> bool {
    key.eq_ignore_ascii_case("DateCreated") || key.eq_ignore_ascii_case("created_at")
}

/// A record's value for `key`: its field, else the id or creation time.
fn value(r: &RelatedRecord, key: &str) -> Option<String> {
    let key = key.trim();
    if let Some(v) = r.fields.get(key).filter(|v| !v.trim().is_empty()) {
        return Some(v.trim().to_owned());
    }
    if key.eq_ignore_ascii_case("id") {
        return Some(r.id.clone());
    }
    is_created(key).then(|| {
        r.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

/// A JSON array (a product list) joined with `, `; any other value as it is.
fn flatten(v: String) -> String {
    match serde_json::from_str::<Vec<serde_json::Value>>(&v) {
        Ok(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => v,
    }
}

/// A sort key: numbers before dates before text, each compared naturally.
#[derive(PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Date(NaiveDateTime),
    Text(String),
}

fn key(raw: &str) -> Key {
    if let Some(n) = parse_number(raw) {
        return Key::Num(n);
    }
    parse_date(raw, DateOrder::Us).map_or_else(|| Key::Text(raw.to_lowercase()), Key::Date)
}

struct RecordFieldStep {
    config: Config,
    newest: bool,
}

#[async_trait::async_trait]
impl AsyncStep for RecordFieldStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let kind = c.record_type.as_str();
        let all = ctx.crm.related_records(&contact.id, c.record_type).await?;
        let total = all.len();
        let mut records: Vec<&RelatedRecord> = all
            .iter()
            .filter(|r| {
                c.filter.iter().all(|(k, want)| {
                    value(r, k).is_some_and(|v| v.to_lowercase() == want.trim().to_lowercase())
                })
            })
            .collect();
        let mut logs = vec![format!(
            "{} of {total} {kind} records match the filter.",
            records.len()
        )];
        if !is_created(&c.order_by) {
            let before = records.len();
            let mut keyed: Vec<(Key, &RelatedRecord)> = records
                .iter()
                .filter_map(|r| value(r, &c.order_by).map(|v| (key(&v), *r)))
                .collect();
            if keyed.len() < before {
                logs.push(format!(
                    "{} records without {} were skipped.",
                    before - keyed.len(),
                    c.order_by
                ));
            }
            keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
            records = keyed.into_iter().map(|(_, r)| r).collect();
        }
        let which = if self.newest { "newest" } else { "oldest" };
        let picked = if self.newest {
            records.last()
        } else {
            records.first()
        };
        let Some(record) = picked else {
            let mut out = Outcome::ok(format!("No matching {kind} record; nothing written"))
                .with("record_id", serde_json::Value::Null)
                .with("records", 0);
            out.logs = logs;
            return Ok(out);
        };
        let to = c.to_field.trim();
        let mut out = match value(record, &c.from_field).map(flatten) {
            None => Outcome::ok(format!(
                "The {which} {kind} ({}) has no {}; nothing written",
                record.id, c.from_field
            )),
            Some(v) => Outcome::ok(format!("{to} = {v} from the {which} {kind} {}", record.id))
                .with(to, v.clone())
                .set_field(contact, to, v),
        }
        .with("record_id", record.id.clone())
        .with("records", records.len());
        out.logs = logs;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    /// A record of `kind` created on `day` (`YYYY-MM-DD`) with `fields`.
    pub(crate) fn record(
        id: &str,
        kind: RecordKind,
        day: &str,
        fields: &[(&str, &str)],
    ) -> RelatedRecord {
        RelatedRecord {
            id: id.into(),
            kind,
            created_at: chrono::DateTime::parse_from_rfc3339(&format!("{day}T10:00:00Z"))
                .unwrap()
                .to_utc(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// An env whose contact `c-1` has three invoices (stored newest first) and an order.
    pub(crate) fn env_with_records() -> Env {
        let mut env = Env::new();
        let inv = RecordKind::Invoice;
        env.crm.records.insert(
            "c-1".into(),
            vec![
                record(
                    "i3",
                    inv,
                    "2025-09-01",
                    &[
                        ("InvoiceTotal", "80.00"),
                        ("Status", "unpaid"),
                        ("ProductSold", "Add-on"),
                    ],
                ),
                record(
                    "i1",
                    inv,
                    "2025-01-10",
                    &[
                        ("InvoiceTotal", "120.00"),
                        ("Status", "paid"),
                        ("ProductSold", r#"["Starter", "Guide"]"#),
                    ],
                ),
                record(
                    "i2",
                    inv,
                    "2025-05-02",
                    &[
                        ("InvoiceTotal", "300.00"),
                        ("Status", "Paid"),
                        ("ProductSold", "Pro"),
                    ],
                ),
                record("j1", RecordKind::Job, "2024-01-01", &[("OrderTotal", "10")]),
            ],
        );
        env
    }

    #[tokio::test]
    async fn copies_from_the_oldest_record_of_the_kind() {
        let env = env_with_records();
        let cfg = json!({"type": "invoice", "from_field": "InvoiceTotal", "to_field": "_First"});
        let out = env
            .run(&GetTheFirst, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_First", "120.00")]);
        assert_eq!(out.output["record_id"], "i1");
        assert_eq!(out.output["records"], 3);
        let cfg = json!({"type": "job", "from_field": "OrderTotal", "to_field": "_First"});
        let out = env
            .run(&GetTheFirst, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_First", "10")]);
    }

    #[tokio::test]
    async fn lists_are_joined_and_dates_and_ids_are_available() {
        let env = env_with_records();
        let c = contact(&[], &[]);
        let run = |from: &str| {
            env.run(
                &GetTheFirst,
                json!({"type": "invoice", "from_field": from, "to_field": "t"}),
                &c,
            )
        };
        assert_eq!(
            run("ProductSold").await.unwrap().output["t"],
            "Starter, Guide"
        );
        assert_eq!(
            run("DateCreated").await.unwrap().output["t"],
            "2025-01-10T10:00:00Z"
        );
        assert_eq!(run("Id").await.unwrap().output["t"], "i1");
    }

    #[tokio::test]
    async fn filter_and_order_by_pick_the_record() {
        let env = env_with_records();
        let c = contact(&[], &[]);
        let cfg = json!({"type": "invoice", "from_field": "ProductSold", "to_field": "t", "filter": {"Status": "PAID"}, "order_by": "InvoiceTotal"});
        let out = env.run(&GetTheFirst, cfg, &c).await.unwrap();
        assert_eq!(out.output["t"], "Starter, Guide");
        let cfg = json!({"type": "invoice", "from_field": "Id", "to_field": "t", "order_by": "InvoiceTotal"});
        assert_eq!(
            env.run(&GetTheFirst, cfg, &c).await.unwrap().output["t"],
            "i3"
        );
        let cfg =
            json!({"type": "invoice", "from_field": "Id", "to_field": "t", "order_by": "Nope"});
        let out = env.run(&GetTheFirst, cfg, &c).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert!(
            out.logs
                .iter()
                .any(|l| l.contains("3 records without Nope"))
        );
    }

    #[tokio::test]
    async fn no_records_or_no_value_is_a_success_without_a_write() {
        let env = env_with_records();
        let cfg = json!({"type": "subscription", "from_field": "Status", "to_field": "t"});
        let out = env
            .run(&GetTheFirst, cfg, &contact(&[("Status", "x")], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["record_id"], serde_json::Value::Null);
        let cfg = json!({"type": "invoice", "from_field": "Last4", "to_field": "t"});
        let out = env
            .run(&GetTheFirst, cfg, &contact(&[("Last4", "1234")], &[]))
            .await
            .unwrap();
        assert!(
            out.success && out.changes.is_empty(),
            "never falls back to the contact"
        );
        assert_eq!(out.output["record_id"], "i1");
        let cfg = json!({"type": "invoice", "from_field": "InvoiceTotal", "to_field": "t"});
        let out = env
            .run(&GetTheFirst, cfg, &contact(&[("t", "120.00")], &[]))
            .await
            .unwrap();
        assert!(
            out.success && out.changes.is_empty(),
            "rerun writes nothing"
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &GetTheFirst,
            json!({"type": "invoice", "from_field": " ", "to_field": "", "filter": {"": "x"}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["from_field", "to_field", "filter"]);
        assert!(
            !config_errors(
                &GetTheFirst,
                json!({"type": "order", "from_field": "a", "to_field": "b"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(&GetTheFirst, json!({"from_field": "a", "to_field": "b"})).is_empty()
        );
    }
}
