//! Helper evaluations per second, per family of pure helpers: every registered helper
//! whose example config builds a pure (synchronous) step, grouped by category, run
//! against a realistic contact. Trade-off: this measures the helper logic alone (no
//! CRM, no broker); the pipeline bench measures the whole path.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mfh_processors::connectors::CrmData;
use mfh_processors::helpers::{Category, Contact, Ctx, HELPERS, Runnable, Vendors};
use mfh_processors::http::HttpClient;
use mfh_processors::state::MemoryState;
use std::hint::black_box;

fn contact() -> Contact {
    let mut c = Contact {
        id: "42".into(),
        ..Contact::default()
    };
    for (k, v) in [
        ("first_name", "ada"),
        ("last_name", "LOVELACE"),
        ("full_name", "Dr. Ada B. Lovelace Jr."),
        ("email", "Ada@Example.com"),
        ("phone", "(555) 123-4567"),
        ("_Birthday", "1815-12-10"),
        ("_Score", "17"),
        ("_Purchases", "3"),
        ("city", "london"),
        ("State", "texas"),
        ("lead_source", "google / cpc"),
        ("_PromoCode", "SPRING"),
        ("_Notes", "a quick brown fox jumps over the lazy dog"),
        ("timezone", "America/Chicago"),
    ] {
        c.fields.insert(k.into(), v.into());
    }
    for (id, name) in [
        ("101", "Customer"),
        ("103", "Webinar: March"),
        ("205", "VIP"),
    ] {
        c.tags.insert(id.into(), name.into());
    }
    c
}

fn bench(c: &mut Criterion) {
    let http = HttpClient::new(mfh_processors::http::HttpConfig::default()).unwrap();
    let contact = contact();
    let (crm, state, vendors) = (CrmData::default(), MemoryState::new(), Vendors::default());
    let files = object_store::memory::InMemory::new();
    let ctx = Ctx {
        execution_id: "bench",
        account_id: "bench",
        instance: "bench",
        now: chrono::Utc::now(),
        seed: 7,
        input: None,
        http: &http,
        crm: &crm,
        state: &state,
        vendors: &vendors,
        files: &files,
        dry_run: false,
    };
    for family in Category::ALL {
        let steps: Vec<_> = HELPERS
            .iter()
            .filter(|h| h.category() == family)
            .map(|h| {
                h.build_json(&serde_json::from_str(h.example_config()).unwrap())
                    .unwrap()
            })
            .filter(|s| matches!(s, Runnable::Sync(_)))
            .collect();
        if steps.is_empty() {
            continue;
        }
        let mut g = c.benchmark_group(format!("helpers/{family}"));
        g.throughput(Throughput::Elements(steps.len() as u64));
        g.bench_function("evaluate_all", |b| {
            b.iter(|| {
                for s in &steps {
                    if let Runnable::Sync(step) = s {
                        black_box(step.run(&ctx, black_box(&contact)).ok());
                    }
                }
            });
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
