//! Every CRM's webhook parser and signature check, on arbitrary bodies and headers.

use crate::json;
use arbitrary::{Result, Unstructured};
use mfh_processors::connectors::config::Platform;
use mfh_processors::crm_webhooks::{self, Delivery, Secrets};
use std::collections::BTreeMap;
use std::time::Duration;

/// The headers the verifiers read, and others.
const HEADERS: &[&str] = &[
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-ghl-signature",
    "x-wh-signature",
    "content-type",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
];

/// The target.
pub fn crm_webhook(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let platform = *u.choose(&Platform::ALL)?;
    let mut headers = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let name = (*u.choose(HEADERS)?).to_owned();
        let value = if u.ratio(1, 2)? {
            json::value(u, 0)?.to_string().trim_matches('"').to_owned()
        } else {
            json::string(u)?
        };
        headers.insert(name, value);
    }
    let content_type = *u.choose(CONTENT_TYPES)?;
    let body = if u.ratio(1, 2)? {
        // Often JSON, which is what the parsers mostly see.
        json::value(u, 4)?.to_string().into_bytes()
    } else {
        u.arbitrary::<Vec<u8>>()?
    };
    let delivery = Delivery {
        method: "POST",
        url: "https://mfh.example/v1/webhooks/crm/hubspot/conn_1?token=t",
        body: &body,
        content_type,
    };
    let secrets = Secrets {
        hubspot_client_secret: "hubspot-secret".into(),
        ghl_ed25519_public_key: "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg="
            .into(),
    };
    let now: i64 = if u.ratio(1, 4)? {
        u.arbitrary()?
    } else {
        1_773_576_000_000
    };
    let _ = crm_webhooks::verify(
        platform,
        &delivery,
        &headers,
        &secrets,
        now,
        Duration::from_secs(300),
    );
    let _ = crm_webhooks::signature_of(platform, &headers);
    let _ = crm_webhooks::parse(platform, &delivery);
    Ok(())
}
