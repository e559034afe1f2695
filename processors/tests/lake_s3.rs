//! The lake on S3: the same effectively-once and compaction checks as on local disk,
//! against a real S3-compatible server on 127.0.0.1 (moto, started by `scripts/test`;
//! its endpoint is in MFH_TEST_S3).
#![allow(clippy::unwrap_used)]

use mfh_processors::lake::compact::testing::exercise;
use mfh_processors::lake::{Lake, LakeConfig};

#[tokio::test]
async fn s3_lake_is_effectively_once_and_compacts() {
    let endpoint = std::env::var("MFH_TEST_S3").expect(
        "MFH_TEST_S3 is not set: run the tests with scripts/test, which starts an S3 server",
    );
    let bucket = format!("mfh-test-{}", uuid::Uuid::new_v4().simple());
    // The bucket is infrastructure, created the way an operator would (object_store
    // cannot create buckets); moto accepts an unsigned CreateBucket.
    let status = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "create bucket: {status}");
    let cfg = LakeConfig {
        root: format!("s3://{bucket}/lake"),
        s3_endpoint: endpoint,
        s3_access_key_id: "test".into(),
        s3_secret_access_key: "test".into(),
        s3_allow_http: true,
        ..LakeConfig::local("unused")
    };
    let lake = Lake::open(&cfg).unwrap();
    assert!(lake.local_root().is_none());
    exercise(lake.clone()).await;
    // A reader gets local copies of exactly the account's visible files.
    let scratch = tempfile::tempdir().unwrap();
    let files = lake.materialize_account("b", scratch.path()).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with(scratch.path()));
}
