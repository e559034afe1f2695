//! get_the_last: copies one field of the contact's newest related record (invoice, order,
//! subscription, lead, card or payment) into a contact field: "last order total", "last
//! card expiry", "current subscription status". The config and every rule are those of
//! get_the_first (filter, `order_by`, `Id`/`DateCreated`, lists joined with `, `, no
//! record = no write); only the end of the ordering taken differs. Idempotent.

use super::get_the_first::{Config, record_step};
use crate::connectors::Capability;
use crate::helpers::{Category, Helper, Runnable};

/// The get_the_last helper.
pub struct GetTheLast;

impl Helper for GetTheLast {
    const NAME: &'static str = "get_the_last";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Copies a field of the contact's newest invoice, order or other related record.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"type": "invoice", "from_field": "InvoiceTotal", "to_field": "_LastInvoiceTotal"}"#;
    const OUTPUTS: &'static [&'static str] = &["record_id", "records", "<to_field>"];
    const REQUIRES: &'static [Capability] = &[Capability::RelatedRecords, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        record_step(config, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::data::get_the_first::tests::env_with_records;
    use crate::helpers::testing::{config_errors, contact, set};
    use serde_json::json;

    #[tokio::test]
    async fn copies_from_the_newest_record() {
        let env = env_with_records();
        let c = contact(&[], &[]);
        let cfg = json!({"type": "invoice", "from_field": "ProductSold", "to_field": "_Last"});
        let out = env.run(&GetTheLast, cfg, &c).await.unwrap();
        assert_eq!(out.changes, vec![set("_Last", "Add-on")]);
        assert_eq!(out.output["record_id"], "i3");
        let cfg = json!({"type": "invoice", "from_field": "DateCreated", "to_field": "_Last"});
        let out = env.run(&GetTheLast, cfg, &c).await.unwrap();
        assert_eq!(out.output["_Last"], "2025-09-01T10:00:00Z");
    }

    #[tokio::test]
    async fn filter_and_order_by_apply_descending() {
        let env = env_with_records();
        let c = contact(&[], &[]);
        let cfg = json!({"type": "invoice", "from_field": "InvoiceTotal", "to_field": "t", "filter": {"Status": "paid"}});
        assert_eq!(
            env.run(&GetTheLast, cfg, &c).await.unwrap().output["t"],
            "300.00"
        );
        let cfg = json!({"type": "invoice", "from_field": "Id", "to_field": "t", "order_by": "ProductSold"});
        // Text order, case-insensitive: `["Starter", ...]` < "Add-on" < "Pro".
        assert_eq!(
            env.run(&GetTheLast, cfg, &c).await.unwrap().output["t"],
            "i2"
        );
    }

    #[tokio::test]
    async fn no_records_and_reruns_write_nothing() {
        let env = env_with_records();
        let cfg = json!({"type": "payment", "from_field": "Amount", "to_field": "t"});
        let out = env.run(&GetTheLast, cfg, &contact(&[], &[])).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        let cfg = json!({"type": "invoice", "from_field": "ProductSold", "to_field": "t"});
        let out = env
            .run(&GetTheLast, cfg, &contact(&[("t", "Add-on")], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &GetTheLast,
            json!({"type": "lead", "from_field": "a", "to_field": " "}),
        );
        assert_eq!(errs[0].field, "to_field");
        assert!(
            !config_errors(&GetTheLast, json!({"type": "invoice", "from_field": "a"})).is_empty()
        );
    }
}
