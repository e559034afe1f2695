//! Contract tests of the GoHighLevel connector against the fake location.

use super::fake::{self, FakeServer, LOCATION_ID, PRIVATE_TOKEN, WORKFLOW_ID};
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

fn context(fake: &FakeServer, creds: Credentials, location: Option<&str>) -> VendorContext {
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
    let mut vendor = CrmConfig::default().gohighlevel;
    vendor.api_base = fake.base.clone();
    let mut settings = serde_json::Map::new();
    if let Some(l) = location {
        settings.insert("location_id".into(), l.into());
    }
    VendorContext {
        http,
        connection: Connection {
            account_id: "acct".into(),
            connection_id: "conn_ghl".into(),
            platform: Platform::Gohighlevel,
            name: "GHL".into(),
            settings,
            status: "active".into(),
            created_at: 0,
        },
        vendor,
    }
}

fn connector(fake: &FakeServer, creds: Credentials) -> GoHighLevel {
    GoHighLevel::new(context(fake, creds, Some(LOCATION_ID))).unwrap()
}

fn set(field: &str, value: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: Some(value.into()),
    }
}

fn clear(field: &str) -> Change {
    Change::SetField {
        field: field.into(),
        value: None,
    }
}

#[tokio::test]
async fn get_reads_fields_custom_fields_tags_and_consent() {
    let fake = fake::start(3).await;
    assert!(matches!(
        GoHighLevel::new(context(&fake, FakeServer::credentials(), None)),
        Err(CrmError::Invalid { .. })
    ));
    let ghl = connector(&fake, FakeServer::credentials());
    ghl.healthcheck().await.unwrap();
    assert_eq!(
        ghl.vendor_account().await.unwrap().as_deref(),
        Some(LOCATION_ID)
    );
    let id = &fake.contact_ids()[0];
    let c = ghl.get_contact(id).await.unwrap();
    assert_eq!(c.id, *id);
    assert_eq!(c.field("email"), Some("contact1@example.com"));
    assert_eq!(c.field("first_name"), Some("First1"));
    assert_eq!(c.field("last_name"), Some("Last1"));
    assert_eq!(c.field("Favorite Color"), Some("blue"));
    assert_eq!(c.tags.get("vip").map(String::as_str), Some("vip"));
    assert_eq!(c.marketable, Some(true));
    assert!(c.created_at.is_some());
    assert_eq!(ghl.list_tags().await.unwrap().len(), 3);
    assert!(matches!(
        ghl.get_contact("nope").await,
        Err(CrmError::NotFound { .. })
    ));
}

#[tokio::test]
async fn listing_visits_every_contact_once_and_search_finds_by_email() {
    let fake = fake::start(250).await;
    let ghl = connector(&fake, FakeServer::credentials());
    let all = search_all(&ghl, &ContactQuery::All, 10_000).await.unwrap();
    let unique: BTreeSet<String> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(all.len(), 250);
    assert_eq!(unique.into_iter().collect::<Vec<_>>(), fake.contact_ids());
    let pages = fake
        .requests()
        .iter()
        .filter(|r| *r == "POST /contacts/search")
        .count();
    assert_eq!(pages, 3);
    let q = ContactQuery::FieldEquals {
        field: "email".into(),
        value: "CONTACT7@example.com".into(),
    };
    let found = search_all(&ghl, &q, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field("first_name"), Some("First7"));
    let q = ContactQuery::HasTag {
        tag_id: "vip".into(),
    };
    assert_eq!(search_all(&ghl, &q, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn apply_makes_each_change_and_reports_refusals_separately() {
    let fake = fake::start(3).await;
    let ghl = connector(&fake, FakeServer::credentials());
    let id = fake.contact_ids()[1].clone();
    let changes = vec![
        set("first_name", "Ann"),
        set("first_name", "Ann"),
        set("Favorite Color", "red"),
        set("no_such_field", "x"),
        set("birthday", "not a date"),
        Change::ApplyTag {
            tag_id: "customer".into(),
        },
        Change::ApplyTag {
            tag_id: "Customer".into(),
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
            user_id: "user-1".into(),
        },
        Change::SetOwner {
            user_id: "user-9".into(),
        },
        Change::SetOptIn {
            email: "Contact2@example.com".into(),
            opted_in: false,
            reason: "asked".into(),
        },
        Change::TriggerAutomation {
            automation_id: WORKFLOW_ID.into(),
        },
        Change::TriggerAutomation {
            automation_id: "wf-unknown".into(),
        },
        Change::AchieveGoal {
            call_name: "goal".into(),
        },
    ];
    let r = ghl.apply(&id, "e1", &changes).await.unwrap();
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
            "opt_in_changed",
            "automation_triggered"
        ]
    );
    assert_eq!(r.applied[0].old_value.as_deref(), Some("First2"));
    assert_eq!(r.applied[1].old_value.as_deref(), Some("blue"));
    let failed: Vec<&str> = r.failed.iter().map(|(c, _)| c.target()).collect();
    assert_eq!(
        failed,
        [
            "no_such_field",
            "birthday",
            "missing",
            "user-9",
            "wf-unknown",
            "goal"
        ]
    );
    assert!(r.failed[1].1.contains("422"), "{}", r.failed[1].1);

    let c = ghl.get_contact(&id).await.unwrap();
    assert_eq!(c.field("first_name"), Some("Ann"));
    assert_eq!(c.field("Favorite Color"), Some("red"));
    assert_eq!(
        c.tags.keys().map(String::as_str).collect::<Vec<_>>(),
        ["State: Texas", "customer"]
    );
    assert_eq!(c.owner_id.as_deref(), Some("user-1"));
    assert_eq!(c.marketable, Some(false));
    {
        let s = fake.state.lock().unwrap();
        assert_eq!(s.notes[0].1, "Hello\n\nWorld");
        assert_eq!(s.enrolments.len(), 1);
    }
    assert!(
        ghl.list_tags()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == "State: Texas")
    );

    let again = vec![
        Change::RemoveTag {
            tag_id: "customer".into(),
        },
        Change::SetOptIn {
            email: "contact2@example.com".into(),
            opted_in: true,
            reason: "form".into(),
        },
        Change::SetField {
            field: "contact.favorite_color".into(),
            value: None,
        },
    ];
    let r = ghl.apply(&id, "e2", &again).await.unwrap();
    assert_eq!(r.applied.len(), 3, "{:?}", r.failed);
    let c = ghl.get_contact(&id).await.unwrap();
    assert_eq!(c.tags.keys().collect::<Vec<_>>(), ["State: Texas"]);
    assert_eq!(c.marketable, Some(true));
    assert_eq!(c.field("Favorite Color"), None);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /contacts/"))
    );
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_a_bad_static_token_is_auth() {
    let fake = fake::start(2).await;
    let ghl = connector(&fake, FakeServer::credentials());
    let id = fake.contact_ids()[0].clone();
    ghl.get_contact(&id).await.unwrap();
    fake.expire_tokens();
    let r = ghl
        .apply(&id, "e1", &[set("city", "Austin")])
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(fake.refreshes(), 1);
    let private = connector(
        &fake,
        Credentials::Bearer {
            token: PRIVATE_TOKEN.into(),
        },
    );
    let c = private.get_contact(&id).await.unwrap();
    assert_eq!(c.field("city"), Some("Austin"));
    let bad = connector(
        &fake,
        Credentials::Bearer {
            token: "pit-wrong".into(),
        },
    );
    assert!(matches!(bad.get_contact(&id).await, Err(CrmError::Auth(_))));
}

#[tokio::test]
async fn rate_limits_outages_and_missing_contacts_fail_the_whole_apply() {
    let fake = fake::start(2).await;
    let ids = fake.contact_ids();
    let ghl = connector(&fake, FakeServer::credentials());
    let before = fake.requests().len();
    for _ in 0..3 {
        fake.fail_next(429, Some(1));
    }
    let err = ghl
        .apply(&ids[0], "e1", &[set("city", "X")])
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

    let ghl = connector(&fake, FakeServer::credentials());
    for _ in 0..3 {
        fake.fail_next(502, None);
    }
    assert!(matches!(
        ghl.get_contact(&ids[0]).await,
        Err(CrmError::Unavailable { .. })
    ));
    fake.delete_contact(&ids[1]);
    assert!(matches!(
        ghl.apply(&ids[1], "e2", &[set("city", "X")]).await,
        Err(CrmError::NotFound { .. })
    ));
    fake.set_field(&ids[0], "city", "Paris");
    assert_eq!(
        ghl.get_contact(&ids[0]).await.unwrap().field("city"),
        Some("Paris")
    );
}

#[tokio::test]
async fn search_hits_in_search_shape_read_like_get_contact() {
    let fake = fake::start(1).await;
    let id = fake.contact_ids()[0].clone();
    fake.set_field(&id, "street", "1 Main St");
    fake.set_field(&id, "birthday", "1990-04-01");
    let ghl = connector(&fake, FakeServer::credentials());
    let got = ghl.get_contact(&id).await.unwrap();
    let listed = search_all(&ghl, &ContactQuery::All, 10).await.unwrap();
    // The fake answers search with `address` and an epoch `dateOfBirth`, as GHL does.
    for c in [&got, &listed[0]] {
        assert_eq!(c.field("street"), Some("1 Main St"));
        assert_eq!(c.field("birthday"), Some("1990-04-01"));
    }
}

#[tokio::test]
async fn custom_field_writes_send_the_type_each_field_takes() {
    let fake = fake::start(1).await;
    let id = fake.contact_ids()[0].clone();
    let ghl = connector(&fake, FakeServer::credentials());
    let report = ghl
        .apply(
            &id,
            "e-typed",
            &[
                set("Visits", "12"),
                set("Interests", "golf, chess"),
                set("Visits", "many"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 2, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("number"), "{report:?}");
    let c = ghl.get_contact(&id).await.unwrap();
    assert_eq!(c.field("Visits"), Some("12"));
    assert_eq!(c.field("Interests"), Some("golf, chess"));
    // Writing one custom field keeps the others.
    assert_eq!(c.field("Favorite Color"), Some("blue"));
    // A clear sends the type's empty value, which the fake (as GHL) accepts.
    ghl.apply(&id, "e-clear", &[clear("Interests"), clear("Visits")])
        .await
        .unwrap();
    let c = ghl.get_contact(&id).await.unwrap();
    assert_eq!((c.field("Interests"), c.field("Visits")), (None, None));
}

#[tokio::test]
async fn the_company_is_refused_because_the_update_dto_has_none() {
    let fake = fake::start(1).await;
    let id = fake.contact_ids()[0].clone();
    let ghl = connector(&fake, FakeServer::credentials());
    let before = fake.requests().len();
    let r = ghl
        .apply(&id, "e-co", &[set("company", "Acme"), set("city", "Oslo")])
        .await
        .unwrap();
    assert_eq!((r.applied.len(), r.failed.len()), (1, 1), "{r:?}");
    assert!(r.failed[0].1.contains("UpdateContactDto"), "{r:?}");
    // Nothing was sent for it: only the read and the city's PUT.
    let sent: Vec<String> = fake.requests()[before..]
        .iter()
        .filter(|l| l.starts_with("PUT"))
        .cloned()
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
}
