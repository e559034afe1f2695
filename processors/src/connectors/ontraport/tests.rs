//! Contract tests of the Ontraport connector against the fake Ontraport.

use super::Ontraport;
use super::fake::{self, FakeServer};
use crate::connectors::config::{CrmConfig, Platform};
use crate::connectors::registry::{Connection, VendorContext};
use crate::connectors::vendor::{
    Auth, Credentials, Limiter, MemoryCredentials, RateLimit, VendorHttp,
};
use crate::connectors::{ContactQuery, CrmConnector, CrmError, CrmRead, search_all};
use crate::helpers::Change;
use crate::http::HttpClient;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn connector(fake: &FakeServer, creds: Credentials) -> Ontraport {
    let mut vendor = CrmConfig::default().ontraport;
    vendor.api_base.clone_from(&fake.base);
    let auth = Arc::new(Auth::new(Arc::new(MemoryCredentials::new(creds)), None));
    let limiter = Arc::new(Limiter::new(RateLimit::new(1000, Duration::from_secs(1))));
    let http = VendorHttp::new(HttpClient::for_tests(), &fake.base, auth, limiter);
    let connection = Connection {
        account_id: "acct".into(),
        connection_id: "conn_op".into(),
        platform: Platform::Ontraport,
        name: "Ontraport".into(),
        settings: serde_json::Map::new(),
        status: "active".into(),
        created_at: 0,
    };
    Ontraport::new(VendorContext {
        http,
        connection,
        vendor,
    })
    .unwrap()
}

async fn setup(contacts: usize) -> (FakeServer, Ontraport) {
    let fake = fake::start(contacts).await;
    let op = connector(&fake, FakeServer::credentials());
    (fake, op)
}

fn set(field: &str, value: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: Some(value.into()),
    }
}

#[tokio::test]
async fn get_reads_standard_and_custom_fields_and_tags() {
    let (fake, op) = setup(3).await;
    fake.set_field("2", fake::CUSTOM_FIELD, "17");
    fake.set_field("2", "contact_cat", "*/*10*/*");
    fake.set_field("2", "birthday", "631152000");
    op.healthcheck().await.unwrap();
    let c = op.get_contact("2").await.unwrap();
    assert_eq!(c.id, "2");
    assert_eq!(c.field("email"), Some("contact1@example.com"));
    assert_eq!(c.field("first_name"), Some("First1"));
    assert_eq!(c.field("last_name"), Some("Last1"));
    assert_eq!(c.field("Lead Score"), Some("17"));
    assert_eq!(c.field("birthday"), Some("1990-01-01"));
    assert_eq!(c.tags.get("10").map(String::as_str), Some("VIP"));
    assert_eq!(c.owner_id.as_deref(), Some("1"));
    assert_eq!(c.marketable, Some(true));
    assert_eq!(c.created_at, Some(1_704_067_200_000));
}

#[tokio::test]
async fn search_by_email_is_server_side() {
    let (fake, op) = setup(20).await;
    let q = ContactQuery::FieldEquals {
        field: "email".into(),
        value: "contact7@example.com".into(),
    };
    let page = op.search_contacts(&q, None).await.unwrap();
    assert_eq!(page.contacts.len(), 1);
    assert_eq!(page.contacts[0].id, "8");
    assert!(page.next.is_none());
    let line = fake
        .requests()
        .into_iter()
        .find(|r| r.starts_with("GET /1/Contacts?"))
        .unwrap();
    assert!(line.contains("contact7%40example.com"), "{line}");
}

#[tokio::test]
async fn listing_all_visits_every_contact_exactly_once() {
    let (fake, op) = setup(250).await;
    let all = search_all(&op, &ContactQuery::All, 10_000).await.unwrap();
    assert_eq!(all.len(), 250);
    let ids: HashSet<String> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, fake.contact_ids().into_iter().collect());
    let pages: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /1/Contacts?"))
        .collect();
    // Five full pages of 50, then one empty page ends the scan.
    assert_eq!(pages.len(), 6);
    assert!(pages.iter().all(|p| p.contains("range=50")));
}

#[tokio::test]
async fn sets_standard_and_custom_fields_and_skips_no_ops() {
    let (fake, op) = setup(2).await;
    let r = op
        .apply(
            "1",
            "e1",
            &[
                set("first_name", "Zed"),
                set("Lead Score", "42"),
                set("city", "Austin"),
                set("birthday", "1990-01-01"),
                set("last_name", "Last0"),
            ],
        )
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.applied.len(), 4);
    assert_eq!(r.applied[0].old_value.as_deref(), Some("First0"));
    assert_eq!(r.applied[0].new_value.as_deref(), Some("Zed"));
    let c = op.get_contact("1").await.unwrap();
    assert_eq!(c.field("first_name"), Some("Zed"));
    assert_eq!(c.field("Lead Score"), Some("42"));
    assert_eq!(c.field("city"), Some("Austin"));
    assert_eq!(c.field("birthday"), Some("1990-01-01"));
    let raw = fake.contact("1").unwrap();
    assert_eq!(raw[fake::CUSTOM_FIELD], "42");
    assert_eq!(raw["birthday"], "631152000");
    // The raw f-key resolves too.
    let r = op.apply("1", "e2", &[set("f1234", "43")]).await.unwrap();
    assert_eq!(r.applied[0].old_value.as_deref(), Some("42"));
}

#[tokio::test]
async fn applies_removes_and_creates_tags() {
    let (fake, op) = setup(2).await;
    let r = op
        .apply(
            "1",
            "e1",
            &[
                Change::ApplyTag {
                    tag_id: "10".into(),
                },
                Change::ApplyTag {
                    tag_id: "10".into(),
                },
                Change::ApplyTag {
                    tag_id: "11".into(),
                },
                Change::RemoveTag {
                    tag_id: "11".into(),
                },
                Change::RemoveTag {
                    tag_id: "12".into(),
                },
                Change::ApplyTag {
                    tag_id: "404".into(),
                },
                Change::ApplyTagNamed {
                    name: "Brand New".into(),
                    category: None,
                },
                Change::ApplyTagNamed {
                    name: "vip".into(),
                    category: None,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(r.failed[0].1.contains("unknown tag 404"));
    let kinds: Vec<&str> = r.applied.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["tag_applied", "tag_applied", "tag_removed", "tag_applied"]
    );
    let tags = op.list_tags().await.unwrap();
    let created = tags.iter().find(|t| t.name == "Brand New").unwrap();
    let c = op.get_contact("1").await.unwrap();
    let mut ids: Vec<&str> = c.tags.keys().map(String::as_str).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["10", created.id.as_str()]);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /1/objects/tag?objectID=0&remove_list=11&ids=1"))
    );
}

#[tokio::test]
async fn notes_owner_and_opt_out() {
    let (fake, op) = setup(2).await;
    fake.set_field("2", "bulk_mail", "-2");
    let r = op
        .apply(
            "1",
            "e1",
            &[
                Change::AddNote {
                    title: "Call".into(),
                    body: "Said hi".into(),
                },
                Change::SetOwner {
                    user_id: "1".into(),
                },
                Change::SetOwner {
                    user_id: "99".into(),
                },
                Change::SetOptIn {
                    email: "CONTACT0@example.com".into(),
                    opted_in: false,
                    reason: "asked".into(),
                },
                Change::AchieveGoal {
                    call_name: "welcome".into(),
                },
            ],
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = r.applied.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["note_added", "opt_in_changed"]);
    assert_eq!(r.failed.len(), 2, "{:?}", r.failed);
    assert_eq!(fake.state.lock().unwrap().notes.len(), 1);
    assert_eq!(op.get_contact("1").await.unwrap().marketable, Some(false));
    // A hard-bounced address cannot be opted back in.
    let r = op
        .apply(
            "2",
            "e2",
            &[Change::SetOptIn {
                email: "contact1@example.com".into(),
                opted_in: true,
                reason: "form".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 1);
    assert!(r.failed[0].1.contains("bulk_mail -2"), "{}", r.failed[0].1);
}

#[tokio::test]
async fn refusals_fail_one_change_and_the_rest_go_on() {
    let (_fake, op) = setup(1).await;
    let r = op
        .apply(
            "1",
            "e1",
            &[
                set("No Such Field", "x"),
                set("email", "not-an-email"),
                set("first_name", "Ok"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 2, "{:?}", r.failed);
    assert!(r.failed[0].1.contains("unknown field"));
    assert!(r.failed[1].1.contains("400"), "{}", r.failed[1].1);
    assert_eq!(r.applied.len(), 1);
    assert_eq!(
        op.get_contact("1").await.unwrap().field("first_name"),
        Some("Ok")
    );
}

#[tokio::test]
async fn missing_contacts_are_not_found() {
    let (fake, op) = setup(2).await;
    assert!(matches!(
        op.get_contact("999").await,
        Err(CrmError::NotFound { .. })
    ));
    fake.delete_contact("2");
    assert!(matches!(
        op.apply("2", "e1", &[set("first_name", "x")]).await,
        Err(CrmError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bad_keys_are_an_auth_error() {
    let fake = fake::start(1).await;
    let op = connector(
        &fake,
        Credentials::ApiKeyAndAppId {
            api_key: "wrong".into(),
            app_id: fake::APP_ID.into(),
        },
    );
    assert!(matches!(op.get_contact("1").await, Err(CrmError::Auth(_))));
}

#[tokio::test]
async fn rate_limits_and_outages_map_to_retryable_errors() {
    let (fake, op) = setup(1).await;
    for _ in 0..3 {
        fake.fail_next(429, Some(1));
    }
    match op.get_contact("1").await {
        Err(CrmError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    for _ in 0..3 {
        fake.fail_next(500, None);
    }
    assert!(matches!(
        op.get_contact("1").await,
        Err(CrmError::Unavailable { .. })
    ));
    op.get_contact("1").await.unwrap();
}
