//! How invoices, trial warnings, expiring cards and refunds move an account.

use super::{AccountStatus, Step};
use crate::billing::notify::NotificationKind;
use crate::billing::stripe_event::{Card, Charge, Invoice, Subscription, SubscriptionStatus};
use crate::billing::templates::{format_amount, format_date};
use serde_json::{Value, json};

impl Step<'_> {
    /// The invoice belongs to the account's subscription (or to none in particular).
    fn for_current(&self, i: &Invoice) -> bool {
        self.state.subscription_id.is_some()
            && (i.subscription.is_none() || i.subscription == self.state.subscription_id)
    }

    pub(super) fn invoice_paid(&mut self, i: &Invoice) -> Option<&'static str> {
        let ts = self.ev.object_ts;
        if self.state.stripe_customer.is_none() {
            self.state.stripe_customer.clone_from(&i.customer);
        }
        self.state.last_paid_ts = self.state.last_paid_ts.max(ts);
        if i.amount_paid > 0 {
            let key = format!("payment_receipt:{}", i.invoice_id);
            self.notify(
                NotificationKind::PaymentReceipt,
                key,
                invoice_data(i, i.amount_paid),
            );
        }
        let behind = matches!(
            self.state.status,
            AccountStatus::PastDue | AccountStatus::Canceled
        );
        if behind && self.for_current(i) && ts >= self.state.state_ts {
            self.state.status = AccountStatus::Active;
            self.state.state_ts = ts;
            self.state.state_progress = SubscriptionStatus::Active.progress();
            self.recovered(&i.invoice_id);
        }
        None
    }

    pub(super) fn payment_failed(&mut self, i: &Invoice) -> Option<&'static str> {
        let ts = self.ev.object_ts;
        if ts < self.state.last_paid_ts {
            return Some("stale");
        }
        if self.state.stripe_customer.is_none() {
            self.state.stripe_customer.clone_from(&i.customer);
        }
        let current = self.for_current(i);
        if current
            && ts >= self.state.state_ts
            && matches!(
                self.state.status,
                AccountStatus::Active | AccountStatus::Trialing
            )
        {
            self.state.status = AccountStatus::PastDue;
            self.state.state_ts = ts;
            self.state.state_progress = SubscriptionStatus::PastDue.progress();
        }
        if current && self.state.status == AccountStatus::PastDue {
            self.state.past_due_invoice = Some(i.invoice_id.clone());
        }
        let key = format!("payment_failed:{}:{}", i.invoice_id, i.attempt_count);
        self.notify(
            NotificationKind::PaymentFailed,
            key,
            invoice_data(i, i.amount_due),
        );
        None
    }

    pub(super) fn trial_will_end(&mut self, s: &Subscription, now: i64) -> Option<&'static str> {
        let Some(end) = s.trial_end else {
            return Some("no trial end");
        };
        if end <= now {
            return Some("trial already ended");
        }
        let sub = &s.subscription_id;
        let data =
            json!({ "subscription_id": sub, "trial_end": end, "trial_end_date": format_date(end) });
        self.notify(
            NotificationKind::TrialEnding,
            format!("trial_ending:{sub}:{end}"),
            data,
        );
        None
    }

    pub(super) fn card_expiring(&mut self, c: &Card) -> Option<&'static str> {
        let (Some(month), Some(year)) = (c.exp_month, c.exp_year) else {
            return Some("card without an expiry date");
        };
        let key = format!("card_expiring:{}:{year}-{month:02}", c.source_id);
        let data = json!({
            "card_id": c.source_id,
            "brand": c.brand,
            "last4": c.last4,
            "exp_month": month,
            "exp_year": year,
        });
        self.notify(NotificationKind::CardExpiring, key, data);
        None
    }

    pub(super) fn refunded(&mut self, c: &Charge) -> Option<&'static str> {
        if c.amount_refunded <= 0 {
            return Some("nothing refunded");
        }
        // amount_refunded is a running total, so each partial refund has its own key.
        let key = format!("refund:{}:{}", c.charge_id, c.amount_refunded);
        let data = json!({
            "charge_id": c.charge_id,
            "amount": c.amount,
            "amount_refunded": c.amount_refunded,
            "currency": c.currency,
            "fully_refunded": c.fully_refunded,
            "email": c.email,
            "amount_display": format_amount(c.amount, &c.currency),
            "refunded_display": format_amount(c.amount_refunded, &c.currency),
        });
        self.notify(NotificationKind::RefundProcessed, key, data);
        None
    }
}

fn invoice_data(i: &Invoice, amount: i64) -> Value {
    json!({
        "invoice_id": i.invoice_id,
        "subscription_id": i.subscription,
        "amount": amount,
        "currency": i.currency,
        "amount_display": format_amount(amount, &i.currency),
        "billing_reason": i.billing_reason,
        "attempt_count": i.attempt_count,
        "next_payment_attempt": i.next_payment_attempt,
        "next_payment_attempt_date": i.next_payment_attempt.map(format_date),
        "hosted_invoice_url": i.hosted_invoice_url,
        "email": i.customer_email,
    })
}
