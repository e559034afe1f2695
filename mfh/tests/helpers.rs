//! Every helper of the registry through the whole pipeline on real sockets: REST → broker
//! → router → its category's worker → sandbox CRM (DynamoDB-compatible server) → sink →
//! DynamoDB and the lake. Third-party calls go to one local vendor stub.
#![allow(clippy::unwrap_used)]

mod support;

use mfh::stack::Processors;
use mfh_pipeline::CancellationToken;
use mfh_processors::helpers::{HELPERS, Vendors};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::TestStack;

/// A trigger payload for the helpers that act on an inbound event.
fn input_for(helper: &str) -> Option<Value> {
    match helper {
        "ip_notifications" | "ip_redirects" | "route_it_geo" => Some(json!({"ip": "8.8.8.8"})),
        "video_trigger_it" => Some(json!({"percent_watched": 80, "video_id": "v1"})),
        _ => None,
    }
}

/// Error kinds that mean the pipeline, not the helper, failed.
const INFRASTRUCTURE: &[&str] = &[
    "crm_unsupported",
    "store",
    "encode",
    "produce",
    "crm_unavailable",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_helper_runs_through_the_pipeline() {
    let cancel = CancellationToken::new();
    let (vendor, seen) = support::start_vendor_stub(&cancel).await;
    let t = TestStack::start_configured(Some(Processors::All), |cfg| {
        cfg.processors.vendors = Vendors::all_at(&vendor);
    })
    .await;
    let mut ids = BTreeMap::new();
    for h in HELPERS.iter() {
        let config: Value = serde_json::from_str(h.example_config()).unwrap();
        let mut body = json!({"helper": h.name(), "config": config, "connection_id": "sandbox", "contact_id": "1"});
        if let Some(input) = input_for(h.name()) {
            body["input"] = input;
        }
        let (status, answer) = t.post("/v1/executions", &t.key, &body).await;
        assert_eq!(status, 202, "{}: {answer}", h.name());
        ids.insert(
            h.name(),
            answer["execution_id"].as_str().unwrap().to_owned(),
        );
    }
    let mut report = Vec::new();
    let mut succeeded = 0;
    for (name, id) in &ids {
        let done = t.wait_done(id, &t.key).await;
        let status = done["status"].as_str().unwrap().to_owned();
        let kind = done["error_kind"].as_str().unwrap_or("").to_owned();
        assert!(
            status == "succeeded" || status == "failed",
            "{name}: {done}"
        );
        assert!(
            !INFRASTRUCTURE.contains(&kind.as_str()),
            "{name} failed in the pipeline: {done}"
        );
        succeeded += usize::from(status == "succeeded");
        report.push(format!(
            "{name:<26} {status:<9} {kind:<10} {}",
            done["message"]
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert_eq!(ids.len(), HELPERS.len());
    assert!(
        succeeded * 10 >= ids.len() * 9,
        "only {succeeded} of {} succeeded on the demo data:\n{}",
        ids.len(),
        report.join("\n")
    );
    assert!(
        !seen.lock().unwrap().is_empty(),
        "no integration helper called its vendor"
    );
    let q = "select count(distinct execution_id) from executions where source = 'api'";
    t.wait_sql(&t.key, q, json!(ids.len())).await;
    t.stop().await;
    cancel.cancel();
}
