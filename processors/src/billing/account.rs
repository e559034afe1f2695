//! An account's billing state and how each Stripe event moves it.
//!
//! [`apply`] is a pure function of the stored state, one event, the price map and the
//! clock, so the billing processor can run it inside a conditional write and retry it.
//!
//! **Ordering.** Stripe delivers events late, twice and out of order. Each state-changing
//! event carries [`BillingEvent::object_ts`]; the state keeps the `state_ts` and status
//! progress of the last one applied. An older event is ignored as `"stale"`. At an equal
//! timestamp the more advanced status wins ([`SubscriptionStatus::progress`]; a deletion
//! beats everything), because within one second Stripe moves a subscription forward
//! (`incomplete` → `active`, `active` → `canceled`), not back.
//!
//! **One email per fact.** Each [`NotificationIntent`] has a deterministic dedup key. A
//! checkout and its `customer.subscription.created` report the same subscription start,
//! so both produce `subscription_created:{sub}`; the state also remembers welcomed
//! subscriptions, so the second of the two produces nothing at all.

use super::notify::{NotificationIntent, NotificationKind};
use super::plans::{Plan, PriceMap};
use super::stripe_event::{
    BillingEvent, BillingEventKind, CheckoutSession, SUBSCRIPTION_CREATED, Subscription,
    SubscriptionStatus,
};
use super::templates::format_date;
use serde_json::{Value, json};

mod payments;
mod state;

pub use state::{AccountStatus, BillingState};

/// How many welcomed subscriptions the state remembers; the oldest is forgotten first.
const WELCOMED_KEEP: usize = 8;
/// Progress of `customer.subscription.deleted`: nothing comes after it.
const ENDED_PROGRESS: u8 = u8::MAX;

/// The outcome of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The state after the event.
    pub state: BillingState,
    /// Notifications to produce, each with its dedup key; never two with one key.
    pub notifications: Vec<NotificationIntent>,
    /// `state` differs from the state passed in, so it must be written.
    pub changed: bool,
    /// Why the event changed nothing it could have, such as `"stale"`.
    pub ignored_reason: Option<&'static str>,
}

/// Applies one Stripe event to an account's billing state.
///
/// `prices` maps the subscription's prices to plans; `now` is the clock, used only to
/// drop a trial warning that arrives after the trial ended.
pub fn apply(state: &BillingState, ev: &BillingEvent, prices: &PriceMap, now: i64) -> Applied {
    let mut step = Step {
        ev,
        state: state.clone(),
        out: Vec::new(),
    };
    let ignored_reason = match &ev.kind {
        BillingEventKind::CheckoutCompleted(s) => step.checkout(s),
        BillingEventKind::SubscriptionChanged(s) => step.subscription(s, prices),
        BillingEventKind::TrialWillEnd(s) => step.trial_will_end(s, now),
        BillingEventKind::InvoicePaid(i) => step.invoice_paid(i),
        BillingEventKind::InvoicePaymentFailed(i) => step.payment_failed(i),
        BillingEventKind::SourceExpiring(c) => step.card_expiring(c),
        BillingEventKind::ChargeRefunded(c) => step.refunded(c),
        BillingEventKind::Other => Some("unhandled event type"),
    };
    let changed = step.state != *state;
    Applied {
        state: step.state,
        notifications: step.out,
        changed,
        ignored_reason,
    }
}

struct Step<'a> {
    ev: &'a BillingEvent,
    state: BillingState,
    out: Vec<NotificationIntent>,
}

impl Step<'_> {
    fn notify(&mut self, kind: NotificationKind, dedup_key: String, data: Value) {
        if !self.out.iter().any(|n| n.dedup_key == dedup_key) {
            self.out
                .push(NotificationIntent::new(kind, dedup_key, data));
        }
    }

    fn welcomed(&self, sub: &str) -> bool {
        self.state.welcomed_subscriptions.iter().any(|w| w == sub)
    }

    fn welcome(&mut self, sub: &str, data: Value) {
        if self.welcomed(sub) {
            return;
        }
        let welcomed = &mut self.state.welcomed_subscriptions;
        welcomed.push(sub.to_owned());
        if welcomed.len() > WELCOMED_KEEP {
            let _oldest = welcomed.remove(0);
        }
        self.notify(
            NotificationKind::SubscriptionCreated,
            format!("subscription_created:{sub}"),
            data,
        );
    }

    fn checkout(&mut self, s: &CheckoutSession) -> Option<&'static str> {
        if s.customer.is_some() {
            self.state.stripe_customer.clone_from(&s.customer);
        }
        let Some(sub) = s
            .subscription
            .as_deref()
            .filter(|_| s.mode == "subscription")
        else {
            return Some("not a subscription checkout");
        };
        if s.payment_status == "unpaid" {
            return Some("checkout payment pending");
        }
        if self.welcomed(sub) {
            return Some("subscription already announced");
        }
        // Only the subscription's own events set the plan and link it: the plan is unknown
        // here (line items are not in the event), and a plan change must not be reported
        // on top of the announcement. Announcing it lets its events take over the account.
        let data = json!({ "subscription_id": sub, "email": s.customer_email });
        self.welcome(sub, data);
        None
    }

    fn subscription(&mut self, s: &Subscription, prices: &PriceMap) -> Option<&'static str> {
        let ts = self.ev.object_ts;
        let progress = if s.deleted {
            ENDED_PROGRESS
        } else {
            s.status.progress()
        };
        if ts < self.state.state_ts
            || (ts == self.state.state_ts && progress < self.state.state_progress)
        {
            return Some("stale");
        }
        let current = self.state.subscription_id.as_deref();
        let is_current = current == Some(s.subscription_id.as_str());
        let ends = s.deleted
            || matches!(
                s.status,
                SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
            );
        if ends && is_current {
            return self.cancel(s, progress);
        }
        if ends && current.is_none() && self.state.status == AccountStatus::Expired {
            return Some("subscription already ended");
        }
        // Another subscription takes over only when it is created or announced by checkout.
        let takes_over = current.is_none()
            || self.ev.event_type == SUBSCRIPTION_CREATED
            || self.welcomed(&s.subscription_id);
        if ends || !(is_current || takes_over) {
            return Some("not the account's current subscription");
        }
        let status = match s.status {
            SubscriptionStatus::Trialing => AccountStatus::Trialing,
            SubscriptionStatus::Active => AccountStatus::Active,
            SubscriptionStatus::PastDue => AccountStatus::PastDue,
            SubscriptionStatus::Unpaid | SubscriptionStatus::Paused => AccountStatus::Canceled,
            SubscriptionStatus::Incomplete => return Some("subscription incomplete"),
            // Ended statuses returned above.
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => {
                return Some("subscription ended");
            }
            SubscriptionStatus::Unknown(_) => return Some("unknown subscription status"),
        };
        let (from_plan, from_status) = (self.state.plan, self.state.status);
        let plan = prices.plan_for_prices(&s.price_ids).unwrap_or_else(|| {
            tracing::warn!(subscription = %s.subscription_id, prices = ?s.price_ids, "No plan for the subscription's prices; plan unchanged.");
            from_plan
        });
        let st = &mut self.state;
        st.plan = plan;
        st.status = status;
        st.subscription_id = Some(s.subscription_id.clone());
        if s.customer.is_some() {
            st.stripe_customer.clone_from(&s.customer);
        }
        st.current_period_end = s.current_period_end;
        st.cancel_at_period_end = s.cancel_at_period_end;
        st.subscription_ended_at = None;
        if status == AccountStatus::Trialing && s.trial_end.is_some() {
            st.trial_ends_at = s.trial_end;
        }
        st.state_ts = ts;
        st.state_progress = progress;

        let sub = s.subscription_id.as_str();
        if matches!(status, AccountStatus::Active | AccountStatus::Trialing) && !self.welcomed(sub)
        {
            let data = json!({
                "subscription_id": sub,
                "plan": plan.as_str(),
                "plan_name": plan.label(),
                "current_period_end": s.current_period_end,
                "current_period_end_date": s.current_period_end.map(format_date),
            });
            self.welcome(sub, data);
        } else if is_current && plan.rank() != from_plan.rank() {
            self.plan_changed(sub, from_plan, plan);
        }
        let was_behind = matches!(
            from_status,
            AccountStatus::PastDue | AccountStatus::Canceled
        );
        if is_current && was_behind && status == AccountStatus::Active {
            let fallback = s.latest_invoice.as_deref().unwrap_or(sub);
            self.recovered(fallback);
        } else if status != AccountStatus::PastDue {
            self.state.past_due_invoice = None;
        }
        None
    }

    /// The current subscription ended: back to an expired trial.
    fn cancel(&mut self, s: &Subscription, progress: u8) -> Option<&'static str> {
        let ended = self.ev.created;
        let st = &mut self.state;
        let from_plan = st.plan;
        st.plan = Plan::Trial;
        st.status = AccountStatus::Expired;
        st.trial_ends_at = Some(st.trial_ends_at.map_or(ended, |t| t.min(ended)));
        st.subscription_id = None;
        st.current_period_end = None;
        st.cancel_at_period_end = false;
        st.subscription_ended_at = Some(ended);
        st.past_due_invoice = None;
        st.state_ts = self.ev.object_ts;
        st.state_progress = progress;
        let sub = &s.subscription_id;
        let data = json!({
            "subscription_id": sub,
            "plan": from_plan.as_str(),
            "plan_name": from_plan.label(),
            "ended_at": ended,
            "ended_on": format_date(ended),
        });
        self.notify(
            NotificationKind::SubscriptionCancelled,
            format!("subscription_cancelled:{sub}"),
            data,
        );
        None
    }

    fn plan_changed(&mut self, sub: &str, from: Plan, to: Plan) {
        let kind = if to.rank() > from.rank() {
            NotificationKind::PlanUpgraded
        } else {
            NotificationKind::PlanDowngraded
        };
        let key = format!("{}:{sub}:{from}:{to}:{}", kind.as_str(), self.ev.object_ts);
        let data = json!({
            "subscription_id": sub,
            "from": from.as_str(),
            "to": to.as_str(),
            "from_name": from.label(),
            "to_name": to.label(),
        });
        self.notify(kind, key, data);
    }

    /// Past due (or unpaid) → active. Keyed by the invoice that failed, so the invoice and the
    /// subscription event reporting the same recovery give one key.
    fn recovered(&mut self, fallback_invoice: &str) {
        let invoice = self
            .state
            .past_due_invoice
            .take()
            .unwrap_or_else(|| fallback_invoice.to_owned());
        let plan = self.state.plan;
        let key = format!("payment_recovered:{invoice}");
        let data =
            json!({ "invoice_id": invoice, "plan": plan.as_str(), "plan_name": plan.label() });
        self.notify(NotificationKind::PaymentRecovered, key, data);
    }
}

#[cfg(test)]
mod tests;
