//! Full contact sync throughput: a local HubSpot-compatible server holding
//! `MFH_BENCH_CONTACTS` contacts (default 50,000) is synced through the pipeline
//! (API request → sync runner → compacted snapshots topic → contact sink → lake) until
//! the explorer's `contacts` table holds every one, and the rate is printed next to the
//! baseline measured in the same run: reading the same pages straight through the
//! connector, with nothing produced or written.
//!
//! It then changes and deletes contacts in the CRM, syncs again and checks that the lake
//! holds exactly the latest state of each (deleted ones gone).
//! Run with `scripts/bench`; the published rate limits are lifted, since the local server
//! is not the vendor.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

#[path = "../tests/support/mod.rs"]
mod support;

use mfh::stack::Processors;
use mfh_processors::connectors::ContactQuery;
use mfh_processors::connectors::hubspot::fake::{self, FakeServer};
use mfh_processors::connectors::vendor::{Credentials, RateLimit};
use serde_json::json;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn sync(t: &support::TestStack, id: &str) {
    let (s, b) = t
        .post(&format!("/v1/connections/{id}/sync"), &t.key, &json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    loop {
        let (_, s) = t.get(&format!("/v1/connections/{id}/sync"), &t.key).await;
        match s["sync"]["status"].as_str() {
            Some("done") => return,
            Some("failed") => panic!("sync failed: {s}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn count(t: &support::TestStack, sql: &str) -> u64 {
    let (_, body) = t.sql(&t.key, sql).await;
    body["rows"][0][0].as_u64().unwrap_or(0)
}

async fn wait_count(t: &support::TestStack, sql: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(t, sql).await != want {
        assert!(
            Instant::now() < deadline,
            "lake never reached {want} for {sql}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let n = arg("MFH_BENCH_CONTACTS", 50_000);
    let vendor = fake::start(n).await;
    let base = vendor.base.clone();
    let t = support::TestStack::start_configured(Some(Processors::All), move |cfg| {
        cfg.crm.hubspot.api_base = base;
        cfg.crm.hubspot.client_secret = "bench-secret".into();
        cfg.crm.hubspot.rate_limit = RateLimit::new(100_000, Duration::from_secs(1));
        cfg.crm.sync_interval = Duration::ZERO;
    })
    .await;
    let token = match FakeServer::credentials() {
        Credentials::Bearer { token } => token,
        Credentials::OAuth { access_token, .. } => access_token,
        other => panic!("unexpected HubSpot fake credentials {other:?}"),
    };
    let (s, conn) = t
        .post(
            "/v1/connections",
            &t.key,
            &json!({"platform": "hubspot", "credentials": {"token": token}}),
        )
        .await;
    assert_eq!(s, 201, "{conn}");
    let id = conn["connection_id"].as_str().unwrap().to_owned();

    // Baseline: the same pages read straight through the connector.
    let crm = t
        .stack
        .services
        .connectors
        .resolve(&t.account, &id)
        .await
        .unwrap();
    let start = Instant::now();
    let (mut seen, mut page) = (0usize, None::<String>);
    loop {
        let p = crm
            .search_contacts(&ContactQuery::All, page.as_deref())
            .await
            .unwrap();
        seen += p.contacts.len();
        match p.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    let read_rate = seen as f64 / start.elapsed().as_secs_f64();
    assert_eq!(seen, n);

    let start = Instant::now();
    sync(&t, &id).await;
    let synced_at = start.elapsed();
    wait_count(&t, "select count(*) from contacts", n as u64).await;
    let elapsed = start.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();

    println!("crm_sync/contacts                     {n}");
    println!("crm_sync/connector_read               {read_rate:.0} contacts/s");
    println!(
        "crm_sync/pipeline                     {rate:.0} contacts/s (sync done after {:.1} s, lake complete after {:.1} s)",
        synced_at.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "crm_sync/ratio                        {:.3} (pipeline ÷ connector read)",
        rate / read_rate
    );
    // The CRM changes 1% and deletes 0.5%; a second sync must leave exactly that.
    let ids = vendor.contact_ids();
    let (changed, deleted) = (n / 100, n / 200);
    for c in &ids[..changed] {
        vendor.set_field(c, "firstname", "Resynced");
    }
    for c in &ids[changed..changed + deleted] {
        vendor.delete_contact(c);
    }
    sync(&t, &id).await;
    // A full sync sees no deleted contacts; deletions reach the lake by webhook.
    let path = format!("/v1/webhooks/crm/hubspot/{id}");
    let events: Vec<_> = ids[changed..changed + deleted]
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"eventId": i, "subscriptionType": "contact.deletion", "objectId": c}))
        .collect();
    let body = serde_json::Value::Array(events).to_string();
    let now = mfh_pipeline::now_millis();
    let url = format!("{}{path}", t.cfg.api.public_url.trim_end_matches('/'));
    let sig = mfh_processors::crm_webhooks::hubspot_sign_v3(
        &t.cfg.crm.hubspot.client_secret,
        "POST",
        &url,
        body.as_bytes(),
        &now.to_string(),
    );
    let status = t
        .http
        .post(format!("{}{path}", t.base))
        .header("x-hubspot-signature-v3", sig)
        .header("x-hubspot-request-timestamp", now.to_string())
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let live = (n - deleted) as u64;
    wait_count(&t, "select count(*) from contacts", live).await;
    wait_count(
        &t,
        "select count(*) from contacts where first_name = 'Resynced'",
        changed as u64,
    )
    .await;

    println!(
        "crm_sync/resync_exact                 ok: {live} live, {changed} changed, {deleted} deleted"
    );
    t.stop().await;
}
