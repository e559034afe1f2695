//! Contract tests of the connector against the fake account.

use super::ActiveCampaign;
use super::fake::{self, FakeServer};
use crate::connectors::config::{Platform, VendorConfig};
use crate::connectors::registry::{Connection, VendorContext};
use crate::connectors::vendor::{
    Auth, Credentials, Limiter, MemoryCredentials, RateLimit, VendorHttp,
};
use crate::connectors::{ContactQuery, CrmConnector, CrmError, CrmRead, search_all};
use crate::helpers::Change;
use crate::http::HttpClient;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn connector_with(
    fake: &FakeServer,
    creds: Credentials,
    list_id: Option<&str>,
) -> ActiveCampaign {
    let http = VendorHttp::new(
        HttpClient::for_tests(),
        &fake.base,
        Arc::new(Auth::new(Arc::new(MemoryCredentials::new(creds)), None)),
        Arc::new(Limiter::new(RateLimit::new(1000, Duration::from_secs(1)))),
    );
    let mut settings = serde_json::Map::new();
    settings.insert(
        "api_url".into(),
        fake.base.trim_end_matches("/api/3").into(),
    );
    if let Some(l) = list_id {
        settings.insert("list_id".into(), l.into());
    }
    let connection = Connection {
        account_id: "acct".into(),
        connection_id: "conn_ac".into(),
        platform: Platform::Activecampaign,
        name: "AC".into(),
        settings,
        status: "active".into(),
        created_at: 0,
    };
    let vendor = VendorConfig {
        api_base: String::new(),
        authorize_url: String::new(),
        token_url: String::new(),
        client_id: String::new(),
        client_secret: String::new(),
        scopes: Vec::new(),
        rate_limit: RateLimit::new(5, Duration::from_secs(1)),
        webhook_public_key: String::new(),
        refresh_basic_auth: false,
        key_rate_limits: Vec::new(),
        app_rate_limits: Vec::new(),
    };
    ActiveCampaign::new(VendorContext {
        http,
        connection,
        vendor,
    })
    .unwrap()
}

pub(super) fn connector(fake: &FakeServer) -> ActiveCampaign {
    connector_with(fake, FakeServer::credentials(), None)
}

pub(super) fn set(field: &str, value: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: Some(value.into()),
    }
}

#[tokio::test]
async fn gets_a_contact_with_fields_tags_and_consent() {
    let fake = fake::start(3).await;
    fake.set_field("2", "Favorite Color", "Blue");
    fake.set_field("2", "phone", "555-0102");
    fake.state.lock().unwrap().contact_tags.insert(900, (2, 1));
    let ac = connector(&fake);
    ac.healthcheck().await.unwrap();
    let c = ac.get_contact("2").await.unwrap();
    assert_eq!(c.id, "2");
    assert_eq!(c.field("email"), Some("contact2@example.com"));
    assert_eq!(c.field("first_name"), Some("First2"));
    assert_eq!(c.field("last_name"), Some("Last2"));
    assert_eq!(c.field("phone"), Some("555-0102"));
    assert_eq!(c.field("Favorite Color"), Some("Blue"));
    assert_eq!(c.tags.get("1").map(String::as_str), Some("VIP"));
    assert_eq!(c.marketable, Some(true));
    assert!(c.created_at.is_some_and(|t| t > 0));
    let reqs = fake.requests();
    assert!(
        reqs.contains(&"GET /api/3/contacts/2".to_owned()),
        "{reqs:?}"
    );
    assert!(reqs.contains(&"GET /api/3/contacts/2/contactTags".to_owned()));
    let missing = ac.get_contact("99").await.unwrap_err();
    assert!(matches!(missing, CrmError::NotFound { .. }), "{missing:?}");
}

#[tokio::test]
async fn searches_by_email_server_side() {
    let fake = fake::start(5).await;
    let ac = connector(&fake);
    let q = ContactQuery::FieldEquals {
        field: "email".into(),
        value: "Contact4@example.com".into(),
    };
    let found = search_all(&ac, &q, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "4");
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("email=Contact4%40example.com")),
        "{reqs:?}"
    );
    let by_name = ContactQuery::FieldEquals {
        field: "first_name".into(),
        value: "first3".into(),
    };
    let found = search_all(&ac, &by_name, 10).await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["3"]
    );
}

#[tokio::test]
async fn lists_every_contact_exactly_once_by_id() {
    let fake = fake::start(250).await;
    fake.delete_contact("17");
    let ac = connector(&fake);
    let first = ac.search_contacts(&ContactQuery::All, None).await.unwrap();
    assert_eq!(first.contacts.len(), 100);
    assert_eq!(first.total, Some(249));
    assert_eq!(first.next.as_deref(), Some("101"));
    let all = search_all(&ac, &ContactQuery::All, 10_000).await.unwrap();
    let ids: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 249);
    assert_eq!(unique.len(), 249);
    let expected: BTreeSet<String> = fake.contact_ids().into_iter().collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let pages: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/3/contacts?"))
        .collect();
    assert!(pages[2].contains("id_greater=101"), "{pages:?}");
    assert!(
        pages
            .iter()
            .all(|p| p.contains("orders%5Bid%5D=ASC") && p.contains("limit=100"))
    );
    assert!(matches!(
        ac.search_contacts(&ContactQuery::All, Some("x")).await,
        Err(CrmError::Invalid { .. })
    ));
}

#[tokio::test]
async fn maps_vendor_errors() {
    let fake = fake::start(2).await;
    let ac = connector(&fake);
    let r = ac.apply("42", "e1", &[set("first_name", "X")]).await;
    assert!(matches!(r, Err(CrmError::NotFound { .. })), "{r:?}");

    let bad = connector_with(
        &fake,
        Credentials::ApiToken {
            token: "wrong".into(),
        },
        None,
    );
    let r = bad.get_contact("1").await;
    assert!(matches!(r, Err(CrmError::Auth(_))), "{r:?}");

    for _ in 0..3 {
        fake.fail_next(429, Some(1));
    }
    let before = fake.requests().len();
    let r = ac.get_contact("1").await;
    assert!(
        matches!(r, Err(CrmError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(1)),
        "{r:?}"
    );
    assert_eq!(fake.requests().len() - before, 3);

    for _ in 0..3 {
        fake.fail_next(503, None);
    }
    let r = ac.apply("1", "e2", &[set("first_name", "X")]).await;
    assert!(matches!(r, Err(CrmError::Unavailable { .. })), "{r:?}");
}
