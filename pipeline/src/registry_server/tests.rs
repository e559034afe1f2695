//! Real-socket tests: the registry on 127.0.0.1:0, driven with reqwest and with
//! `schema_registry_converter`.

#![allow(clippy::unwrap_used)]

use apache_avro::types::Value as AvroValue;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{CONTENT_TYPE, RegistryError, RegistryState, RegistryStore, STORE_FILE, serve};

const V1: &str = r#"{"type":"record","name":"Order","namespace":"mfh","fields":[
    {"name":"id","type":"string"}]}"#;
/// V1 plus a field with a default: backward compatible.
const V2: &str = r#"{"type":"record","name":"Order","namespace":"mfh","fields":[
    {"name":"id","type":"string"},
    {"name":"qty","type":"int","default":1}]}"#;
/// V1 plus a field without a default: not backward compatible.
const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"Order","namespace":"mfh","fields":[
    {"name":"id","type":"string"},
    {"name":"qty","type":"int"}]}"#;

/// A running registry and a client for it.
struct Server {
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(state: RegistryState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            base,
            http,
            stop: Some(stop),
            task,
        }
    }

    async fn memory() -> Self {
        Self::start(RegistryState::open(None).unwrap()).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }

    /// Sends a request and returns the status and JSON body, checking the content type.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        decode(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(body)).await
    }

    async fn raw_post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        decode(request.send().await.unwrap()).await
    }

    async fn register(&self, subject: &str, schema: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema }),
        )
        .await
    }

    async fn register_ok(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_u64().unwrap()
    }
}

async fn decode(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        content_type.as_deref(),
        Some(CONTENT_TYPE),
        "status {status}"
    );
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

fn assert_error(actual: &(StatusCode, Value), status: u16, code: u64) {
    assert_eq!(actual.0.as_u16(), status, "{}", actual.1);
    assert_eq!(actual.1["error_code"], code, "{}", actual.1);
    assert!(actual.1["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn register_fetch_and_lookup() {
    let server = Server::memory().await;

    assert_eq!(server.register_ok("orders-value", V1).await, 1);
    // Same schema, different whitespace and spelling: same id, no new version.
    let v1_respelled = r#"{"namespace":"mfh","name":"Order","type":"record",
        "fields":[{"type":{"type":"string"},"name":"id"}]}"#;
    assert_eq!(server.register_ok("orders-value", v1_respelled).await, 1);
    assert_eq!(server.register_ok("orders-value", V2).await, 2);
    // The same schema under another subject reuses the global id.
    assert_eq!(server.register_ok("orders-key", V2).await, 2);

    assert_eq!(
        server.get("/subjects").await.1,
        json!(["orders-key", "orders-value"])
    );
    assert_eq!(
        server.get("/subjects/orders-value/versions").await.1,
        json!([1, 2])
    );
    assert_eq!(
        server.get("/subjects/orders-key/versions").await.1,
        json!([1])
    );

    let (status, latest) = server.get("/subjects/orders-value/versions/latest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["subject"], "orders-value");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], 2);
    assert_eq!(latest["schema"], V2);
    let first = server.get("/subjects/orders-value/versions/1").await.1;
    assert_eq!(
        (first["version"].clone(), first["id"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        server.get("/subjects/orders-value/versions/-1").await.1["version"],
        2
    );
    let raw = server
        .get("/subjects/orders-value/versions/2/schema")
        .await
        .1;
    assert_eq!(raw["name"], "Order");

    let (status, by_id) = server.get("/schemas/ids/1?deleted=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, json!({ "schema": V1 }));
    assert_eq!(
        server.get("/schemas/ids/2/versions").await.1,
        json!([{"subject":"orders-key","version":1},{"subject":"orders-value","version":2}])
    );
    assert_eq!(
        server.get("/schemas/ids/2/subjects").await.1,
        json!(["orders-key", "orders-value"])
    );
    assert_eq!(server.get("/schemas/types").await.1, json!(["AVRO"]));

    // Lookup: is this schema registered under the subject?
    let (status, found) = server
        .post(
            "/subjects/orders-value?deleted=false",
            json!({ "schema": v1_respelled }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["version"], 1);
    assert_eq!(found["id"], 1);
    assert_eq!(found["subject"], "orders-value");
    assert_eq!(found["schema"], V1);

    let other = r#"{"type":"record","name":"Other","fields":[]}"#;
    assert_error(
        &server
            .post("/subjects/orders-value", json!({ "schema": other }))
            .await,
        404,
        40403,
    );
    assert_error(
        &server.post("/subjects/nope", json!({ "schema": V1 })).await,
        404,
        40401,
    );
    assert_error(&server.get("/schemas/ids/99").await, 404, 40403);
    assert_error(&server.get("/subjects/nope/versions").await, 404, 40401);
    assert_error(
        &server.get("/subjects/nope/versions/latest").await,
        404,
        40401,
    );
    assert_error(
        &server.get("/subjects/orders-value/versions/7").await,
        404,
        40402,
    );
    assert_error(
        &server.get("/subjects/orders-value/versions/abc").await,
        422,
        42202,
    );
    assert_error(
        &server.get("/subjects/orders-value/versions/0").await,
        422,
        42202,
    );
    assert_error(&server.get("/schemas/ids/abc").await, 422, 422);

    server.stop().await;
}

#[tokio::test]
async fn subject_names_with_slashes_are_percent_decoded() {
    let server = Server::memory().await;
    assert_eq!(server.register_ok("a%2Fb-value", V1).await, 1);
    assert_eq!(server.get("/subjects").await.1, json!(["a/b-value"]));
    assert_eq!(
        server.get("/subjects/a%2Fb-value/versions/latest").await.1["id"],
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn incompatible_versions_are_rejected() {
    let server = Server::memory().await;
    server.register_ok("s", V1).await;

    let rejected = server.register("s", V2_NO_DEFAULT).await;
    assert_error(&rejected, 409, 409);
    assert!(
        rejected.1["message"]
            .as_str()
            .unwrap()
            .contains("version 1")
    );
    assert_eq!(server.get("/subjects/s/versions").await.1, json!([1]));

    // The compatibility endpoint agrees, against `latest`, a number, and all versions.
    for path in [
        "/compatibility/subjects/s/versions/latest",
        "/compatibility/subjects/s/versions/1",
        "/compatibility/subjects/s/versions",
    ] {
        let (status, body) = server.post(path, json!({ "schema": V2_NO_DEFAULT })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "is_compatible": false }), "{path}");
        assert_eq!(
            server.post(path, json!({ "schema": V2 })).await.1["is_compatible"],
            true
        );
    }
    let verbose = server
        .post(
            "/compatibility/subjects/s/versions/latest?verbose=true",
            json!({ "schema": V2_NO_DEFAULT }),
        )
        .await
        .1;
    assert_eq!(verbose["messages"].as_array().unwrap().len(), 1);
    assert_error(
        &server
            .post(
                "/compatibility/subjects/s/versions/9",
                json!({ "schema": V2 }),
            )
            .await,
        404,
        40402,
    );
    assert_error(
        &server
            .post(
                "/compatibility/subjects/none/versions/latest",
                json!({ "schema": V2 }),
            )
            .await,
        404,
        40401,
    );
    // No versions yet: anything is compatible.
    assert_eq!(
        server
            .post(
                "/compatibility/subjects/none/versions",
                json!({ "schema": V2 })
            )
            .await
            .1,
        json!({ "is_compatible": true })
    );

    // With NONE, the same schema is accepted.
    server
        .call("PUT", "/config/s", Some(json!({ "compatibility": "NONE" })))
        .await;
    assert_eq!(server.register_ok("s", V2_NO_DEFAULT).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn levels_check_the_right_direction_and_depth() {
    let server = Server::memory().await;
    let with_qty = V2_NO_DEFAULT;
    // Removing a field: backward compatible (new reader ignores it), not forward.
    server.register_ok("back", with_qty).await;
    server.register_ok("back", V1).await;

    for level in ["FORWARD", "FULL", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"] {
        let subject = format!("s-{level}");
        server
            .call(
                "PUT",
                &format!("/config/{subject}"),
                Some(json!({ "compatibility": level })),
            )
            .await;
        server.register_ok(&subject, with_qty).await;
        assert_error(&server.register(&subject, V1).await, 409, 409);
    }
    // Adding a field without a default: forward compatible, not backward.
    server
        .call(
            "PUT",
            "/config/fwd",
            Some(json!({ "compatibility": "FORWARD" })),
        )
        .await;
    server.register_ok("fwd", V1).await;
    server.register_ok("fwd", with_qty).await;

    // Transitive levels check every live version, not only the latest.
    let int_id = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}"#;
    let str_id = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}"#;
    let str_id_more = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"string"},
        {"name":"b","type":"int","default":0}]}"#;
    for (level, expected) in [
        ("BACKWARD", StatusCode::OK),
        ("BACKWARD_TRANSITIVE", StatusCode::CONFLICT),
    ] {
        let subject = format!("t-{level}");
        let config = format!("/config/{subject}");
        server
            .call("PUT", &config, Some(json!({ "compatibility": "NONE" })))
            .await;
        server.register_ok(&subject, int_id).await;
        server.register_ok(&subject, str_id).await;
        server
            .call("PUT", &config, Some(json!({ "compatibility": level })))
            .await;
        assert_eq!(
            server.register(&subject, str_id_more).await.0,
            expected,
            "{level}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn config_endpoints() {
    let server = Server::memory().await;
    assert_eq!(
        server.get("/config").await.1,
        json!({ "compatibilityLevel": "BACKWARD" })
    );
    let (status, body) = server
        .call("PUT", "/config", Some(json!({ "compatibility": "full" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "compatibility": "FULL" }));
    assert_eq!(
        server.get("/config").await.1,
        json!({ "compatibilityLevel": "FULL" })
    );
    assert_error(
        &server
            .call(
                "PUT",
                "/config",
                Some(json!({ "compatibility": "SIDEWAYS" })),
            )
            .await,
        422,
        42203,
    );

    assert_error(&server.get("/config/s").await, 404, 40408);
    assert_eq!(
        server.get("/config/s?defaultToGlobal=true").await.1,
        json!({ "compatibilityLevel": "FULL" })
    );
    let (status, body) = server
        .call("PUT", "/config/s", Some(json!({ "compatibility": "NONE" })))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "compatibility": "NONE" }))
    );
    assert_eq!(
        server.get("/config/s").await.1,
        json!({ "compatibilityLevel": "NONE" })
    );
    assert_eq!(
        server.call("DELETE", "/config/s", None).await.1,
        json!({ "compatibilityLevel": "NONE" })
    );
    assert_error(&server.get("/config/s").await, 404, 40408);
    assert_error(&server.call("DELETE", "/config/s", None).await, 404, 40408);
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = Server::memory().await;
    let path = "/subjects/s/versions";
    let vnd = Some(CONTENT_TYPE);

    assert_error(&server.raw_post(path, vnd, "not json").await, 422, 422);
    assert_error(&server.raw_post(path, vnd, "").await, 422, 422);
    assert_error(
        &server.raw_post(path, vnd, r#"{"schema": 5}"#).await,
        422,
        422,
    );
    assert_error(
        &server.raw_post(path, vnd, r#"{"nothing": 1}"#).await,
        422,
        422,
    );
    assert_error(&server.raw_post(path, vnd, "[1,2]").await, 422, 422);
    assert_error(&server.register("s", "{not avro").await, 422, 42201);
    assert_error(
        &server
            .register("s", r#"{"type":"record","name":"X"}"#)
            .await,
        422,
        42201,
    );
    assert_error(
        &server
            .post(path, json!({ "schema": V1, "schemaType": "PROTOBUF" }))
            .await,
        422,
        42201,
    );
    assert_error(
        &server
            .post(
                path,
                json!({ "schema": V1, "references": [{"name":"a","subject":"b","version":1}] }),
            )
            .await,
        422,
        42201,
    );
    assert_error(&server.raw_post("/subjects/s", vnd, "{").await, 422, 422);
    assert_error(
        &server
            .raw_post("/compatibility/subjects/s/versions/latest", vnd, "{")
            .await,
        422,
        422,
    );
    assert_error(
        &server.call("PUT", "/config", Some(json!({}))).await,
        422,
        422,
    );
    assert_error(&server.get("/no/such/route").await, 404, 404);
    assert_error(&server.call("PATCH", "/subjects", None).await, 405, 405);
    assert_eq!(server.get("/subjects").await.1, json!([]));

    // Any content type, or none, is accepted; extra fields and explicit AVRO are fine.
    let body =
        json!({ "schema": V1, "schemaType": "AVRO", "references": [], "metadata": {} }).to_string();
    for content_type in [vnd, Some("application/json"), Some("text/plain"), None] {
        let (status, reply) = server.raw_post(path, content_type, &body).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?}: {reply}");
        assert_eq!(reply, json!({ "id": 1 }));
    }
    server.stop().await;
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let server = Server::memory().await;
    server.register_ok("s", V1).await;
    server.register_ok("s", V2).await;

    assert_error(
        &server
            .call("DELETE", "/subjects/s?permanent=true", None)
            .await,
        404,
        40405,
    );
    assert_eq!(
        server.call("DELETE", "/subjects/s", None).await.1,
        json!([1, 2])
    );
    assert_error(
        &server.call("DELETE", "/subjects/s", None).await,
        404,
        40404,
    );
    assert_eq!(server.get("/subjects").await.1, json!([]));
    assert_eq!(server.get("/subjects?deleted=true").await.1, json!(["s"]));
    assert_error(&server.get("/subjects/s/versions").await, 404, 40401);
    assert_eq!(
        server.get("/subjects/s/versions?deleted=true").await.1,
        json!([1, 2])
    );
    // Ids stay resolvable so old records still decode.
    assert_eq!(server.get("/schemas/ids/1").await.1["schema"], V1);

    // Re-registering continues the version numbers and reuses the id.
    assert_eq!(server.register_ok("s", V1).await, 1);
    assert_eq!(server.get("/subjects/s/versions").await.1, json!([3]));

    assert_eq!(
        server
            .call("DELETE", "/subjects/s/versions/3", None)
            .await
            .1,
        json!(3)
    );
    assert_error(
        &server.call("DELETE", "/subjects/s/versions/3", None).await,
        404,
        40406,
    );
    assert_error(
        &server
            .call("DELETE", "/subjects/other/versions/1?permanent=true", None)
            .await,
        404,
        40401,
    );
    assert_eq!(
        server
            .call("DELETE", "/subjects/s?permanent=true", None)
            .await
            .1,
        json!([1, 2, 3])
    );
    assert_error(
        &server.get("/subjects/s/versions?deleted=true").await,
        404,
        40401,
    );
    server.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(RegistryState::open(Some(dir.path())).unwrap()).await;
    assert_eq!(server.register_ok("a-value", V1).await, 1);
    assert_eq!(server.register_ok("a-value", V2).await, 2);
    assert_eq!(server.register_ok("b-value", V2).await, 2);
    server
        .call(
            "PUT",
            "/config/b-value",
            Some(json!({ "compatibility": "NONE" })),
        )
        .await;
    server
        .call("DELETE", "/subjects/a-value/versions/1", None)
        .await;
    server.stop().await;
    assert!(dir.path().join(STORE_FILE).is_file());
    assert!(!dir.path().join(format!("{STORE_FILE}.tmp")).exists());

    let server = Server::start(RegistryState::open(Some(dir.path())).unwrap()).await;
    assert_eq!(
        server.get("/subjects").await.1,
        json!(["a-value", "b-value"])
    );
    assert_eq!(server.get("/subjects/a-value/versions").await.1, json!([2]));
    assert_eq!(server.get("/schemas/ids/1").await.1["schema"], V1);
    assert_eq!(
        server.get("/subjects/b-value/versions/latest").await.1["id"],
        2
    );
    assert_eq!(
        server.get("/config/b-value").await.1["compatibilityLevel"],
        "NONE"
    );
    // Identity survives too, and new ids continue after the old ones.
    assert_eq!(server.register_ok("b-value", V2).await, 2);
    assert_eq!(server.register_ok("b-value", V2_NO_DEFAULT).await, 3);
    server.stop().await;

    let store = RegistryStore::open(Some(dir.path())).unwrap();
    assert_eq!(store.schema_by_id(3).unwrap(), V2_NO_DEFAULT);
    assert_eq!(store.file(), Some(dir.path().join(STORE_FILE).as_path()));
}

#[test]
fn corrupt_store_file_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STORE_FILE), b"{ not json").unwrap();
    let err = RegistryStore::open(Some(dir.path())).unwrap_err();
    assert!(matches!(err, RegistryError::Corrupt { .. }), "{err:?}");
    // The broken file is left alone for an operator to inspect.
    assert_eq!(
        std::fs::read(dir.path().join(STORE_FILE)).unwrap(),
        b"{ not json"
    );
}

#[test]
fn memory_store_has_no_file() {
    let mut store = RegistryStore::open(None).unwrap();
    assert_eq!(store.file(), None);
    assert_eq!(store.register("s", V1).unwrap(), 1);
    assert_eq!(store.register("s", V1).unwrap(), 1);
    assert!(matches!(
        store.register("s", V2_NO_DEFAULT),
        Err(RegistryError::IncompatibleSchema { .. })
    ));
}

#[test]
fn identity_keeps_logical_types_and_defaults_apart() {
    let mut store = RegistryStore::open(None).unwrap();
    store
        .set_compatibility(None, super::CompatibilityLevel::None)
        .unwrap();
    let plain = r#"{"type":"record","name":"E","fields":[{"name":"at","type":"long"}]}"#;
    let timestamp = r#"{"type":"record","name":"E","fields":[
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
    let defaulted =
        r#"{"type":"record","name":"E","fields":[{"name":"at","type":"long","default":0}]}"#;
    let a = store.register("s", plain).unwrap();
    let b = store.register("s", timestamp).unwrap();
    let c = store.register("s", defaulted).unwrap();
    assert_eq!((a, b, c), (1, 2, 3));
}

#[test]
fn store_file_is_rejected_when_it_points_at_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let bad = json!({
        "format": 1, "compatibility": "BACKWARD", "next_id": 2,
        "schemas": [{"id": 1, "schema": V1}],
        "subjects": {"s": {"versions": [{"version": 1, "id": 7}]}}
    });
    std::fs::write(dir.path().join(STORE_FILE), bad.to_string()).unwrap();
    assert!(matches!(
        RegistryStore::open(Some(dir.path())),
        Err(RegistryError::Corrupt { .. })
    ));
}

/// The client the pipeline actually uses: it registers through `TopicNameStrategyWithSchema`,
/// then encodes and decodes a record via `GET /schemas/ids/{id}`.
#[tokio::test]
async fn schema_registry_converter_round_trip() {
    use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
    use schema_registry_converter::async_impl::schema_registry::SrSettings;
    use schema_registry_converter::schema_registry_common::{
        SchemaType, SubjectNameStrategy, SuppliedSchema,
    };

    let server = Server::memory().await;
    let settings = || {
        SrSettings::new_builder(server.base.clone())
            .no_proxy()
            .build()
            .unwrap()
    };
    let encoder = AvroEncoder::new(settings());
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "orders".to_owned(),
        false,
        SuppliedSchema::new(
            Some("mfh.Order".to_owned()),
            SchemaType::Avro,
            V2.to_owned(),
        ),
    );
    let bytes = encoder
        .encode(
            vec![
                ("id", AvroValue::String("o-1".to_owned())),
                ("qty", AvroValue::Int(3)),
            ],
            strategy,
        )
        .await
        .unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
    assert_eq!(server.get("/subjects").await.1, json!(["orders-value"]));

    let decoded = AvroDecoder::new(settings())
        .decode(Some(&bytes))
        .await
        .unwrap();
    assert_eq!(
        decoded.value,
        AvroValue::Record(vec![
            ("id".to_owned(), AvroValue::String("o-1".to_owned())),
            ("qty".to_owned(), AvroValue::Int(3)),
        ])
    );
    server.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(RegistryState::open(Some(dir.path())).unwrap()).await;
    let requests = (0..16).map(|i| {
        let schema = format!(r#"{{"type":"record","name":"R{i}","fields":[]}}"#);
        let server = &server;
        async move { server.register_ok(&format!("s{i}"), &schema).await }
    });
    let mut ids = futures::future::join_all(requests).await;
    ids.sort_unstable();
    assert_eq!(ids, (1..=16).collect::<Vec<u64>>());
    server.stop().await;

    let store = RegistryStore::open(Some(dir.path())).unwrap();
    assert_eq!(store.subjects(false).len(), 16);
}
