//! The served OpenAPI document against the real API: it is the document the code builds,
//! and every operation it describes is routed (answers something other than the
//! router's own "no such route" or "method not allowed"), with any error as a problem.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_described_operation_is_served_and_errors_are_problems() {
    let t = support::TestStack::start_with(None).await;
    let r = t
        .http
        .get(format!("{}/v1/openapi.json", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(
        served,
        serde_json::to_value(mfh_api::openapi_document()).unwrap()
    );
    let ops = mfh_api::openapi::described(&mfh_api::openapi_document());
    assert!(ops.len() >= 50);
    for (method, path) in ops {
        // Path parameters get a value no resource has, so nothing real is touched.
        let concrete: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "zz_unknown"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = t
            .http
            .request(m.clone(), format!("{}{concrete}", t.base))
            .header("x-api-key", &t.key);
        if matches!(method, "post" | "put" | "patch") {
            req = req.json(&json!({}));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: not routed");
        assert!(
            !(status == 404 && body.contains("\"route ")),
            "{method} {path}: not routed: {body}"
        );
        assert!(
            status < 500 || status == 503,
            "{method} {path}: {status} {body}"
        );
        if status >= 400 && !ct.starts_with("text/plain") {
            assert_eq!(
                ct, "application/problem+json",
                "{method} {path}: {status} {body}"
            );
            let p: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(p["status"], status, "{method} {path}: {body}");
        }
    }
    t.stop().await;
}
