//! Contract tests of the HubSpot connector against the fake portal.

use super::fake::{self, FakeServer, PRIVATE_APP_TOKEN};
use super::*;
use crate::connectors::config::{CrmConfig, Platform};
use crate::connectors::registry::{Connection, VendorContext};
use crate::connectors::vendor::{
    Auth, Credentials, Limiter, MemoryCredentials, OAuthClient, RateLimit, VendorHttp,
};
use crate::connectors::{ContactQuery, CrmConnector, CrmError, CrmRead, search_all};
use crate::helpers::Change;
use crate::http::HttpClient;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn connector(fake: &FakeServer, creds: Credentials) -> HubSpot {
    let oauth = OAuthClient {
        token_url: format!("{}/oauth/token", fake.base),
        client_id: "fake-client".into(),
        client_secret: "fake-secret".into(),
        refresh_basic_auth: false,
    };
    let http = VendorHttp::new(
        HttpClient::for_tests(),
        &fake.base,
        Arc::new(Auth::new(
            Arc::new(MemoryCredentials::new(creds)),
            Some(oauth),
        )),
        Arc::new(Limiter::new(RateLimit::new(1000, Duration::from_secs(1)))),
    );
    let mut vendor = CrmConfig::default().hubspot;
    vendor.api_base = fake.base.clone();
    let connection = Connection {
        account_id: "acct".into(),
        connection_id: "conn_hs".into(),
        platform: Platform::Hubspot,
        name: "HubSpot".into(),
        settings: serde_json::Map::new(),
        status: "active".into(),
        created_at: 0,
    };
    HubSpot::new(VendorContext {
        http,
        connection,
        vendor,
    })
    .unwrap()
}

fn set(field: &str, value: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: Some(value.into()),
    }
}

#[tokio::test]
async fn get_reads_fields_custom_fields_tags_and_consent() {
    let fake = fake::start(3).await;
    let hs = connector(&fake, FakeServer::credentials());
    hs.healthcheck().await.unwrap();
    // The portal its app-level webhooks name.
    assert_eq!(
        hs.vendor_account().await.unwrap(),
        Some(fake.portal_id().to_string())
    );
    let c = hs.get_contact("101").await.unwrap();
    assert_eq!(c.id, "101");
    assert_eq!(c.field("email"), Some("contact1@example.com"));
    assert_eq!(c.field("first_name"), Some("First1"));
    assert_eq!(c.field("last_name"), Some("Last1"));
    assert_eq!(c.field("favorite_color"), Some("blue"));
    assert_eq!(c.tags.get("vip").map(String::as_str), Some("VIP"));
    assert_eq!(c.marketable, Some(true));
    assert!(c.created_at.is_some() && c.updated_at.is_some());
    let tags = hs.list_tags().await.unwrap();
    assert_eq!(tags.len(), 3);
    assert!(matches!(
        hs.get_contact("999").await,
        Err(CrmError::NotFound { .. })
    ));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /crm/v3/objects/contacts/101?properties="))
    );
}

#[tokio::test]
async fn listing_visits_every_contact_once_and_search_finds_by_email() {
    let fake = fake::start(250).await;
    let hs = connector(&fake, FakeServer::credentials());
    let all = search_all(&hs, &ContactQuery::All, 10_000).await.unwrap();
    let ids: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 250);
    assert_eq!(unique.len(), 250);
    assert_eq!(
        unique.into_iter().cloned().collect::<Vec<_>>(),
        fake.contact_ids()
    );
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /crm/v3/objects/contacts?"))
        .count();
    assert_eq!(pages, 3);
    let q = ContactQuery::FieldEquals {
        field: "email".into(),
        value: "CONTACT7@example.com".into(),
    };
    let found = search_all(&hs, &q, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "107");
    let q = ContactQuery::HasTag {
        tag_id: "vip".into(),
    };
    assert_eq!(search_all(&hs, &q, 10).await.unwrap()[0].id, "101");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r == "POST /crm/v3/objects/contacts/search")
    );
}

#[tokio::test]
async fn apply_makes_each_change_and_reports_refusals_separately() {
    let fake = fake::start(3).await;
    let hs = connector(&fake, FakeServer::credentials());
    let changes = vec![
        set("first_name", "Ann"),
        set("first_name", "Ann"),
        set("favorite_color", "red"),
        set("no_such_field", "x"),
        set("lead_source", "ads"),
        Change::ApplyTag {
            tag_id: "customer".into(),
        },
        Change::ApplyTag {
            tag_id: "customer".into(),
        },
        Change::ApplyTag {
            tag_id: "missing".into(),
        },
        Change::RemoveTag {
            tag_id: "vip".into(),
        },
        Change::ApplyTagNamed {
            name: "State: Texas".into(),
            category: None,
        },
        Change::AddNote {
            title: "Hello".into(),
            body: "World".into(),
        },
        Change::SetOwner {
            user_id: "501".into(),
        },
        Change::SetOwner {
            user_id: "999".into(),
        },
        Change::SetOptIn {
            email: "Contact2@example.com".into(),
            opted_in: false,
            reason: "asked".into(),
        },
        Change::TriggerAutomation {
            automation_id: "wf".into(),
        },
    ];
    let r = hs.apply("102", "e1", &changes).await.unwrap();
    let kinds: Vec<&str> = r.applied.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "field_updated",
            "field_updated",
            "tag_applied",
            "tag_applied",
            "note_added",
            "owner_set",
            "opt_in_changed"
        ]
    );
    assert_eq!(r.applied[0].old_value.as_deref(), Some("First2"));
    assert_eq!(r.applied[1].old_value.as_deref(), Some("blue"));
    assert_eq!(r.applied[3].new_value.as_deref(), Some("state_texas"));
    let failed: Vec<&str> = r.failed.iter().map(|(c, _)| c.target()).collect();
    assert_eq!(
        failed,
        ["no_such_field", "lead_source", "missing", "999", "wf"]
    );
    assert!(r.failed[1].1.contains("400"), "{}", r.failed[1].1);

    let c = hs.get_contact("102").await.unwrap();
    assert_eq!(c.field("first_name"), Some("Ann"));
    assert_eq!(c.field("favorite_color"), Some("red"));
    assert_eq!(
        c.tags.keys().map(String::as_str).collect::<Vec<_>>(),
        ["customer", "state_texas"]
    );
    assert_eq!(c.tags["state_texas"], "State: Texas");
    assert_eq!(c.owner_id.as_deref(), Some("501"));
    assert_eq!(c.marketable, Some(false));
    assert_eq!(fake.state.lock().unwrap().notes[0].1, "Hello\n\nWorld");
    assert!(
        hs.list_tags()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == "state_texas")
    );

    let again = vec![
        Change::RemoveTag {
            tag_id: "customer".into(),
        },
        Change::ApplyTagNamed {
            name: "state: texas".into(),
            category: None,
        },
        Change::SetOptIn {
            email: "contact2@example.com".into(),
            opted_in: true,
            reason: "form".into(),
        },
    ];
    let r = hs.apply("102", "e2", &again).await.unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].old_value.as_deref(), Some("Customer"));
    assert_eq!(r.failed.len(), 1, "a self-unsubscribed address stays out");
    let c = hs.get_contact("102").await.unwrap();
    assert_eq!(c.tags.keys().collect::<Vec<_>>(), ["state_texas"]);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_a_bad_static_token_is_auth() {
    let fake = fake::start(2).await;
    let hs = connector(&fake, FakeServer::credentials());
    hs.get_contact("101").await.unwrap();
    fake.expire_tokens();
    let r = hs
        .apply("101", "e1", &[set("city", "Austin")])
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(fake.refreshes(), 1);

    let private = connector(
        &fake,
        Credentials::Bearer {
            token: PRIVATE_APP_TOKEN.into(),
        },
    );
    assert_eq!(
        private.get_contact("101").await.unwrap().field("city"),
        Some("Austin")
    );
    let bad = connector(
        &fake,
        Credentials::Bearer {
            token: "pat-wrong".into(),
        },
    );
    assert!(matches!(
        bad.get_contact("101").await,
        Err(CrmError::Auth(_))
    ));
}

#[tokio::test]
async fn rate_limits_outages_and_missing_contacts_fail_the_whole_apply() {
    let fake = fake::start(2).await;
    let hs = connector(&fake, FakeServer::credentials());
    hs.get_contact("101").await.unwrap();
    let before = fake.requests().len();
    for _ in 0..3 {
        fake.fail_next(429, Some(1));
    }
    let err = hs
        .apply("101", "e1", &[set("city", "X")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CrmError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(
        fake.requests().len() - before,
        3,
        "the shared client retried"
    );

    let hs = connector(&fake, FakeServer::credentials());
    for _ in 0..3 {
        fake.fail_next(503, None);
    }
    assert!(matches!(
        hs.get_contact("101").await,
        Err(CrmError::Unavailable { .. })
    ));

    fake.delete_contact("102");
    assert!(matches!(
        hs.apply("102", "e2", &[set("city", "X")]).await,
        Err(CrmError::NotFound { .. })
    ));
    fake.set_field("101", "city", "Paris");
    assert_eq!(
        hs.get_contact("101").await.unwrap().field("city"),
        Some("Paris")
    );
}
