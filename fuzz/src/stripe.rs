//! The Stripe event reader and the `Stripe-Signature` check.

use crate::json;
use arbitrary::{Result, Unstructured};

/// Event types the reader knows, to reach past its first question.
const TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
];

/// The target.
pub fn stripe_event(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let body = if u.ratio(1, 3)? {
        u.arbitrary::<Vec<u8>>()?
    } else {
        let mut object = json::value(u, 3)?;
        if !object.is_object() {
            object = serde_json::json!({});
        }
        json::mutate(u, &mut object, 3)?;
        serde_json::json!({
            "id": "evt_fuzz",
            "object": "event",
            "type": *u.choose(TYPES)?,
            "created": u.arbitrary::<i64>()?,
            "data": {"object": object},
        })
        .to_string()
        .into_bytes()
    };
    let _ = mfh_processors::billing::parse_event_bytes(&body);
    let header = json::string(u)?;
    let now: i64 = u.arbitrary()?;
    if let Ok(payload) = std::str::from_utf8(&body) {
        let _ = mfh_api::routes::stripe::verify(payload, &header, &["whsec_fuzz".to_owned()], now);
    }
    Ok(())
}
