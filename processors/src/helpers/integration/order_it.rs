//! order_it: records an order (a Keap "job") for the contact. The helper returns a
//! `Change::AddRecord` of kind `job` whose fields carry the product, quantity, promo
//! codes, title, date, status `unpaid`, the invoice total when a unit price is given
//! (`InvoiceTotal`, `TotalPaid`) and an `IdempotencyKey` derived from the execution id.
//! The connector applies each change at most once per execution; on top of that the
//! helper looks for an existing order with the same key and adds nothing when it finds
//! one, so a retried execution never creates a second order. Afterwards `apply_tag` is
//! applied. Charging a payment method is not done here: the order is created unpaid, and
//! Keap's tax and shipping defaults apply.

use crate::connectors::{Capability, RecordKind};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish, template,
};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

use crate::helpers::integration::webinar_jam::Id;

/// Config of order_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The product sold.
    pub product_id: Id,
    /// Units; default 1.
    #[serde(default = "default_quantity")]
    pub quantity: u32,
    /// Promo codes to apply.
    #[serde(default)]
    pub promo_codes: Vec<String>,
    /// Tag id applied after the order is recorded.
    pub apply_tag: Option<String>,
    /// Order title template; default `Order of product <product_id>`.
    pub order_title: Option<String>,
    /// Order date `YYYY-MM-DD`; default today.
    pub order_date: Option<String>,
    /// Price per unit, to record the invoice total.
    pub unit_price: Option<f64>,
}

const fn default_quantity() -> u32 {
    1
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let product = match &self.product_id {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s.trim().to_owned(),
        };
        check(&mut errors, product.is_empty(), "product_id", "is required");
        check(
            &mut errors,
            !(1..=10_000).contains(&self.quantity),
            "quantity",
            "must be 1 to 10000",
        );
        check(
            &mut errors,
            self.promo_codes
                .iter()
                .any(|p| p.trim().is_empty() || p.contains(',')),
            "promo_codes",
            "codes must be non-empty and hold no commas",
        );
        for (field, v) in [
            ("apply_tag", &self.apply_tag),
            ("order_title", &self.order_title),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut errors,
            self.order_date
                .as_deref()
                .is_some_and(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").is_err()),
            "order_date",
            "must be a date YYYY-MM-DD",
        );
        check(
            &mut errors,
            self.unit_price.is_some_and(|p| !p.is_finite() || p < 0.0),
            "unit_price",
            "must be zero or more",
        );
        finish(errors)
    }
}

/// The order_it helper.
pub struct OrderIt;

impl Helper for OrderIt {
    const NAME: &'static str = "order_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Records an unpaid order for a product on the contact, once per execution.";
    const EXAMPLE_CONFIG: &'static str = r#"{"product_id": 42, "quantity": 2, "promo_codes": ["SPRING"], "unit_price": 19.5, "apply_tag": "501"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "order_id",
        "product_id",
        "quantity",
        "promo_codes",
        "already_recorded",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::RelatedRecords, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(OrderItStep(config)))
    }
}

struct OrderItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for OrderItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let product = match &c.product_id {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s.trim().to_owned(),
        };
        let key = format!("mfh-{}", ctx.execution_id);
        let existing = ctx
            .crm
            .related_records(&contact.id, RecordKind::Job)
            .await?
            .into_iter()
            .find(|r| r.fields.get("IdempotencyKey") == Some(&key));
        let out = Outcome::ok("")
            .with("order_id", key.clone())
            .with("product_id", product.clone())
            .with("quantity", c.quantity)
            .with("promo_codes", json!(c.promo_codes));
        if let Some(r) = existing {
            let mut out = out
                .with("already_recorded", true)
                .log(format!("Order {} with key {key} already exists", r.id));
            out.message = format!("Order for product {product} was already recorded");
            return Ok(out.branch(contact, c.apply_tag.as_deref(), None));
        }
        let title = c.order_title.as_deref().map_or_else(
            || format!("Order of product {product}"),
            |t| template::render(t, contact).trim().to_owned(),
        );
        let date = c.order_date.as_deref().map_or_else(
            || ctx.now.format("%Y-%m-%d").to_string(),
            |d| d.trim().to_owned(),
        );
        let mut fields = BTreeMap::from([
            ("JobTitle".to_owned(), title),
            ("ProductId".to_owned(), product.clone()),
            ("Quantity".to_owned(), c.quantity.to_string()),
            ("OrderDate".to_owned(), date),
            ("Status".to_owned(), "unpaid".to_owned()),
            ("IdempotencyKey".to_owned(), key),
        ]);
        if !c.promo_codes.is_empty() {
            let codes: Vec<&str> = c.promo_codes.iter().map(|p| p.trim()).collect();
            fields.insert("PromoCodes".into(), codes.join(","));
        }
        if let Some(price) = c.unit_price {
            fields.insert(
                "InvoiceTotal".into(),
                format!("{:.2}", price * f64::from(c.quantity)),
            );
            fields.insert("TotalPaid".into(), "0.00".into());
        }
        let mut out = out
            .with("already_recorded", false)
            .change(Change::AddRecord {
                record_kind: RecordKind::Job,
                fields,
            });
        out.message = format!("Recorded an order of {} × product {product}", c.quantity);
        Ok(out.branch(contact, c.apply_tag.as_deref(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::RelatedRecord;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::Value;

    fn cfg() -> Value {
        json!({"product_id": 42, "quantity": 2, "promo_codes": ["SPRING", "VIP"],
            "unit_price": 19.5, "apply_tag": "501", "order_title": "Webinar pack for {{first_name}}"})
    }

    fn record(out: &Outcome) -> BTreeMap<String, String> {
        match &out.changes[0] {
            Change::AddRecord {
                record_kind: RecordKind::Job,
                fields,
            } => fields.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn records_an_unpaid_order_with_invoice_fields() {
        let env = Env::new();
        let out = env
            .run(&OrderIt, cfg(), &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(out.output["order_id"], json!("mfh-exec-test"));
        assert_eq!(out.output["product_id"], json!("42"));
        assert_eq!(out.output["quantity"], json!(2));
        assert_eq!(out.output["promo_codes"], json!(["SPRING", "VIP"]));
        let f = record(&out);
        let expect = [
            ("JobTitle", "Webinar pack for Ada"),
            ("ProductId", "42"),
            ("Quantity", "2"),
            ("OrderDate", "2026-03-15"),
            ("Status", "unpaid"),
            ("IdempotencyKey", "mfh-exec-test"),
            ("PromoCodes", "SPRING,VIP"),
            ("InvoiceTotal", "39.00"),
            ("TotalPaid", "0.00"),
        ];
        assert_eq!(f.len(), expect.len());
        for (k, v) in expect {
            assert_eq!(f[k], v, "{k}");
        }
        assert_eq!(
            out.changes[1],
            Change::ApplyTag {
                tag_id: "501".into()
            }
        );
    }

    #[tokio::test]
    async fn defaults_and_fixed_date() {
        let env = Env::new();
        let out = env
            .run(
                &OrderIt,
                json!({"product_id": "SKU-1", "order_date": "2026-01-02"}),
                &contact(&[], &["501"]),
            )
            .await
            .unwrap();
        let f = record(&out);
        assert_eq!(f["JobTitle"], "Order of product SKU-1");
        assert_eq!(f["Quantity"], "1");
        assert_eq!(f["OrderDate"], "2026-01-02");
        assert!(!f.contains_key("PromoCodes") && !f.contains_key("InvoiceTotal"));
        assert_eq!(out.changes.len(), 1);
    }

    #[tokio::test]
    async fn a_retried_execution_adds_no_second_order() {
        let mut env = Env::new();
        env.crm.records.insert(
            "c-1".into(),
            vec![RelatedRecord {
                id: "r-9".into(),
                kind: RecordKind::Job,
                created_at: env.now,
                fields: BTreeMap::from([("IdempotencyKey".to_owned(), "mfh-exec-test".to_owned())]),
            }],
        );
        let out = env.run(&OrderIt, cfg(), &contact(&[], &[])).await.unwrap();
        assert!(out.success);
        assert_eq!(out.output["already_recorded"], json!(true));
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "501".into()
            }]
        );
        env.execution_id = "exec-2".into();
        let out = env.run(&OrderIt, cfg(), &contact(&[], &[])).await.unwrap();
        assert_eq!(out.output["already_recorded"], json!(false));
        assert_eq!(record(&out)["IdempotencyKey"], "mfh-exec-2");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &OrderIt,
            json!({"product_id": " ", "quantity": 0,
            "promo_codes": ["a,b"], "apply_tag": "", "order_title": " ", "order_date": "03/15/2026",
            "unit_price": -1.0}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "product_id",
                "quantity",
                "promo_codes",
                "apply_tag",
                "order_title",
                "order_date",
                "unit_price"
            ]
        );
        assert!(!config_errors(&OrderIt, json!({})).is_empty());
        assert!(config_errors(&OrderIt, cfg()).is_empty());
    }
}
