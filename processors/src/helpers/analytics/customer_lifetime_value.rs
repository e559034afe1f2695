//! customer_lifetime_value: aggregates the contact's invoices into total orders (the
//! invoice count), total spend (the sum of `TotalPaid`), average order (total paid ÷ the
//! number of invoices with a payment, so open invoices do not drag it down) and total due
//! (the sum of `InvoiceTotal` − `TotalPaid`), each rounded to 2 decimals and written to the
//! configured field (`no_save` or empty skips a value). Zero-value invoices are left out
//! unless `include_zero: Yes`, refunded ones (`Status: refunded`) unless
//! `exclude_refunded` is off, and with `currency` set, invoices in another `Currency`. An
//! invoice whose amounts are not numbers is skipped with a log line. No invoices is a
//! success without a write. The aggregation ([`summarize`]) is shared with
//! rfm_calculation. Idempotent (it recomputes).

use crate::connectors::{Capability, RecordKind, RelatedRecord};
use crate::helpers::data::math_it::{parse_number, round_decimal};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Whether zero-value invoices count as orders.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum YesNo {
    /// Count them.
    #[serde(alias = "Yes")]
    Yes,
    /// Leave them out (default).
    #[default]
    #[serde(alias = "No")]
    No,
}

/// Config of customer_lifetime_value.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Field for the order count (`no_save` or empty: not written).
    pub lcv_total_orders: Option<String>,
    /// Field for the total paid.
    pub lcv_total_spend: Option<String>,
    /// Field for the average paid order.
    pub lcv_average_order: Option<String>,
    /// Field for the amount still due.
    pub lcv_total_due: Option<String>,
    /// Count zero-value invoices: `Yes` or `No` (default).
    #[serde(default)]
    pub include_zero: YesNo,
    /// Only invoices in this currency (their `Currency` field); invoices without one count.
    pub currency: Option<String>,
    /// Leave refunded invoices out; default true.
    #[serde(default = "default_true")]
    pub exclude_refunded: bool,
}

/// Which invoices count.
#[derive(Debug, Clone, Default)]
pub(crate) struct InvoiceFilter {
    /// Count invoices whose total is 0.
    pub(crate) include_zero: bool,
    /// Leave out invoices with `Status: refunded`.
    pub(crate) exclude_refunded: bool,
    /// Only invoices in this currency (or without a `Currency` field).
    pub(crate) currency: Option<String>,
}

/// An invoice's date and total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Order {
    /// When the invoice was created.
    pub(crate) date: DateTime<Utc>,
    /// Its `InvoiceTotal`.
    pub(crate) value: f64,
}

/// The invoice aggregates customer_lifetime_value and rfm_calculation use.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InvoiceSummary {
    /// Invoices counted.
    pub(crate) count: usize,
    /// Invoices with a payment above 0.
    pub(crate) paid_count: usize,
    /// Sum of `TotalPaid`.
    pub(crate) total_paid: f64,
    /// Sum of `InvoiceTotal`.
    pub(crate) total_invoiced: f64,
    /// The oldest counted invoice.
    pub(crate) first: Option<Order>,
    /// The newest counted invoice.
    pub(crate) last: Option<Order>,
    /// Why invoices were skipped.
    pub(crate) skipped: Vec<String>,
}

impl InvoiceSummary {
    /// Total paid ÷ paid invoices (0 without any).
    pub(crate) fn average_paid(&self) -> f64 {
        if self.paid_count == 0 {
            0.0
        } else {
            self.total_paid / self.paid_count as f64
        }
    }
    /// Invoiced − paid.
    pub(crate) fn due(&self) -> f64 {
        self.total_invoiced - self.total_paid
    }
}

/// Aggregates `invoices` (oldest first, as the CRM lists them) under `filter`.
pub(crate) fn summarize(invoices: &[RelatedRecord], filter: &InvoiceFilter) -> InvoiceSummary {
    let mut s = InvoiceSummary::default();
    for r in invoices {
        let field = |k: &str| r.fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let amount = |k: &str| field(k).map_or(Some(0.0), parse_number);
        let (Some(total), Some(paid)) = (amount("InvoiceTotal"), amount("TotalPaid")) else {
            s.skipped.push(format!(
                "Invoice {} has an amount that is not a number.",
                r.id
            ));
            continue;
        };
        if filter.exclude_refunded
            && field("Status").is_some_and(|v| v.eq_ignore_ascii_case("refunded"))
        {
            s.skipped.push(format!("Invoice {} is refunded.", r.id));
            continue;
        }
        if let (Some(want), Some(cur)) = (filter.currency.as_deref(), field("Currency"))
            && !cur.eq_ignore_ascii_case(want.trim())
        {
            s.skipped.push(format!("Invoice {} is in {cur}.", r.id));
            continue;
        }
        if total == 0.0 && paid == 0.0 && !filter.include_zero {
            continue;
        }
        s.count += 1;
        s.paid_count += usize::from(paid > 0.0);
        s.total_paid += paid;
        s.total_invoiced += total;
        let order = Order {
            date: r.created_at,
            value: total,
        };
        s.first.get_or_insert(order);
        s.last = Some(order);
    }
    s
}

/// `n` rounded to cents, as `12.50`.
pub(crate) fn money(n: f64) -> String {
    format!("{:.2}", round_decimal(n, 2))
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.currency
                .as_deref()
                .is_some_and(|c| c.trim().is_empty()),
            "currency",
            "must not be empty",
        );
        finish(errors)
    }
}

impl Config {
    /// (output, field) per value; `None` when it is not saved.
    fn targets<'a>(&'a self) -> [(&'static str, Option<&'a str>); 4] {
        let f = |o: &'a Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("no_save"))
        };
        [
            ("total_orders", f(&self.lcv_total_orders)),
            ("total_spend", f(&self.lcv_total_spend)),
            ("average_order", f(&self.lcv_average_order)),
            ("total_owe", f(&self.lcv_total_due)),
        ]
    }
}

/// The customer_lifetime_value helper.
pub struct CustomerLifetimeValue;

impl Helper for CustomerLifetimeValue {
    const NAME: &'static str = "customer_lifetime_value";
    const CATEGORY: Category = Category::Analytics;
    const SUMMARY: &'static str =
        "Writes the contact's order count, total spend, average order and amount due.";
    const EXAMPLE_CONFIG: &'static str = r#"{"lcv_total_orders": "_TotalOrders", "lcv_total_spend": "_TotalSpend", "lcv_average_order": "_AverageOrder", "lcv_total_due": "_TotalDue"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["total_orders", "total_spend", "average_order", "total_owe"];
    const REQUIRES: &'static [Capability] = &[Capability::RelatedRecords, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ClvStep(config)))
    }
}

struct ClvStep(Config);

#[async_trait::async_trait]
impl AsyncStep for ClvStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let invoices = ctx
            .crm
            .related_records(&contact.id, RecordKind::Invoice)
            .await?;
        let filter = InvoiceFilter {
            include_zero: c.include_zero == YesNo::Yes,
            exclude_refunded: c.exclude_refunded,
            currency: c.currency.clone(),
        };
        let s = summarize(&invoices, &filter);
        if s.count == 0 {
            let mut out =
                Outcome::ok("No invoices to aggregate; nothing written").with("total_orders", 0);
            out.logs = s.skipped;
            return Ok(out);
        }
        let values = [
            s.count.to_string(),
            money(s.total_paid),
            money(s.average_paid()),
            money(s.due()),
        ];
        let mut out = Outcome::ok(format!(
            "{} orders, {} spent, {} average, {} due",
            values[0], values[1], values[2], values[3]
        ));
        for ((key, field), value) in c.targets().into_iter().zip(values) {
            out = out.with(key, value.clone());
            if let Some(f) = field {
                out = out.set_field(contact, f, value);
            }
        }
        if let Some(cur) = &c.currency {
            out = out.with("currency", cur.trim().to_uppercase());
        }
        out.logs = s.skipped;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    /// An invoice created on `day` with total, paid and status.
    pub(crate) fn invoice(
        id: &str,
        day: &str,
        total: &str,
        paid: &str,
        status: &str,
    ) -> RelatedRecord {
        RelatedRecord {
            id: id.into(),
            kind: RecordKind::Invoice,
            created_at: DateTime::parse_from_rfc3339(&format!("{day}T00:00:00Z"))
                .unwrap()
                .to_utc(),
            fields: [
                ("InvoiceTotal", total),
                ("TotalPaid", paid),
                ("Status", status),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        }
    }

    /// An env whose contact `c-1` has `invoices`.
    pub(crate) fn env_with(invoices: Vec<RelatedRecord>) -> Env {
        let mut env = Env::new();
        env.crm.records.insert("c-1".into(), invoices);
        env
    }

    fn all() -> serde_json::Value {
        json!({"lcv_total_orders": "o", "lcv_total_spend": "s", "lcv_average_order": "a", "lcv_total_due": "d"})
    }

    fn sandbox_like() -> Vec<RelatedRecord> {
        vec![
            invoice("i1", "2025-01-10", "120.00", "120.00", "paid"),
            invoice("i2", "2025-09-02", "$1,300.50", "1,300.50", "paid"),
            invoice("i3", "2026-02-20", "80.00", "0.00", "unpaid"),
        ]
    }

    #[tokio::test]
    async fn aggregates_invoices_into_the_fields() {
        let env = env_with(sandbox_like());
        let out = env
            .run(&CustomerLifetimeValue, all(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![
                set("o", "3"),
                set("s", "1420.50"),
                set("a", "710.25"),
                set("d", "80.00")
            ]
        );
        assert_eq!(out.output["total_owe"], "80.00");
        assert_eq!(out.output["average_order"], "710.25");
    }

    #[tokio::test]
    async fn no_save_and_empty_targets_are_skipped_and_reruns_write_nothing() {
        let env = env_with(sandbox_like());
        let cfg =
            json!({"lcv_total_orders": "no_save", "lcv_total_spend": "", "lcv_total_due": "d"});
        let out = env
            .run(&CustomerLifetimeValue, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("d", "80.00")]);
        assert_eq!(out.output["total_spend"], "1420.50");
        let c = contact(
            &[
                ("o", "3"),
                ("s", "1420.50"),
                ("a", "710.25"),
                ("d", "80.00"),
            ],
            &[],
        );
        let out = env.run(&CustomerLifetimeValue, all(), &c).await.unwrap();
        assert!(out.success && out.changes.is_empty());
    }

    #[tokio::test]
    async fn zero_refunded_foreign_and_unreadable_invoices() {
        let mut euro = invoice("i5", "2025-03-01", "50", "50", "paid");
        euro.fields.insert("Currency".into(), "EUR".into());
        let env = env_with(vec![
            invoice("i1", "2025-01-01", "100", "100", "paid"),
            invoice("i2", "2025-02-01", "0.00", "0.00", "paid"),
            invoice("i3", "2025-02-02", "40", "40", "Refunded"),
            invoice("i4", "2025-02-03", "lots", "0", "unpaid"),
            euro,
        ]);
        let c = contact(&[], &[]);
        let out = env.run(&CustomerLifetimeValue, all(), &c).await.unwrap();
        assert_eq!(out.output["total_orders"], "2");
        assert_eq!(out.output["total_spend"], "150.00");
        assert_eq!(out.logs.len(), 2, "{:?}", out.logs);
        let mut cfg = all();
        cfg["include_zero"] = json!("Yes");
        cfg["exclude_refunded"] = json!(false);
        cfg["currency"] = json!("usd");
        let out = env.run(&CustomerLifetimeValue, cfg, &c).await.unwrap();
        assert_eq!(out.output["total_orders"], "3");
        assert_eq!(out.output["total_spend"], "140.00");
        assert_eq!(out.output["average_order"], "70.00");
        assert_eq!(out.output["currency"], "USD");
    }

    #[tokio::test]
    async fn no_invoices_is_a_success_without_a_write() {
        let env = env_with(vec![]);
        let out = env
            .run(&CustomerLifetimeValue, all(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
        let env = env_with(vec![invoice("i1", "2025-01-01", "0", "0", "paid")]);
        let out = env
            .run(&CustomerLifetimeValue, all(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn summary_tracks_first_and_last_orders() {
        let s = summarize(&sandbox_like(), &InvoiceFilter::default());
        assert_eq!((s.count, s.paid_count), (3, 2));
        assert_eq!(s.first.unwrap().value, 120.0);
        assert_eq!(s.last.unwrap().value, 80.0);
        assert_eq!(
            s.last.unwrap().date.to_rfc3339(),
            "2026-02-20T00:00:00+00:00"
        );
        assert_eq!(money(s.due()), "80.00");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &CustomerLifetimeValue,
            json!({"lcv_total_orders": "no_save", "currency": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["currency"]);
        assert!(
            !config_errors(
                &CustomerLifetimeValue,
                json!({"lcv_total_orders": "o", "include_zero": "maybe"})
            )
            .is_empty()
        );
        assert!(
            config_errors(
                &CustomerLifetimeValue,
                json!({"lcv_total_orders": "o", "include_zero": "yes"})
            )
            .is_empty()
        );
    }
}
