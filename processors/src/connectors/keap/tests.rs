//! Contract tests of the Keap connector against the fake Keap.

use super::Keap;
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

fn connector(fake: &FakeServer, creds: Credentials) -> Keap {
    let mut vendor = CrmConfig::default().keap;
    vendor.api_base.clone_from(&fake.base);
    vendor.token_url = fake.oauth().token_url;
    vendor.client_id = fake::CLIENT_ID.into();
    vendor.client_secret = fake::CLIENT_SECRET.into();
    let auth = Arc::new(Auth::new(
        Arc::new(MemoryCredentials::new(creds)),
        vendor.oauth(),
    ));
    let limiter = Arc::new(Limiter::new(RateLimit::new(1000, Duration::from_secs(1))));
    let http = VendorHttp::new(HttpClient::for_tests(), &fake.base, auth, limiter);
    let connection = Connection {
        account_id: "acct".into(),
        connection_id: "conn_keap".into(),
        platform: Platform::Keap,
        name: "Keap".into(),
        settings: serde_json::Map::new(),
        status: "active".into(),
        created_at: 0,
    };
    Keap::new(VendorContext {
        http,
        connection,
        vendor,
    })
    .unwrap()
}

async fn setup(contacts: usize) -> (FakeServer, Keap) {
    let fake = fake::start(contacts).await;
    let keap = connector(&fake, FakeServer::credentials());
    (fake, keap)
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
async fn get_reads_standard_and_custom_fields_and_tags() {
    let (fake, keap) = setup(3).await;
    fake.set_field("2", "_LeadScore", "17");
    fake.set_field("2", "phone", "555-0101");
    keap.healthcheck().await.unwrap();
    keap.apply(
        "2",
        "e1",
        &[Change::ApplyTag {
            tag_id: "10".into(),
        }],
    )
    .await
    .unwrap();
    let c = keap.get_contact("2").await.unwrap();
    assert_eq!(c.id, "2");
    assert_eq!(c.field("email"), Some("contact1@example.com"));
    assert_eq!(c.field("first_name"), Some("First1"));
    assert_eq!(c.field("last_name"), Some("Last1"));
    assert_eq!(c.field("phone"), Some("555-0101"));
    assert_eq!(c.field("_LeadScore"), Some("17"));
    assert_eq!(c.tags.get("10").map(String::as_str), Some("VIP"));
    assert_eq!(c.marketable, Some(true));
    assert!(c.created_at.is_some() && c.updated_at.is_some());
    // Custom fields and tag ids are asked for explicitly.
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/v2/contacts/2?fields=")
                && r.contains("custom_fields")
                && r.contains("tag_ids"))
    );
}

#[tokio::test]
async fn search_by_email_is_server_side() {
    let (fake, keap) = setup(20).await;
    let q = ContactQuery::FieldEquals {
        field: "email".into(),
        value: "contact7@example.com".into(),
    };
    let page = keap.search_contacts(&q, None).await.unwrap();
    assert_eq!(page.contacts.len(), 1);
    assert_eq!(page.contacts[0].id, "8");
    assert!(page.next.is_none());
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("filter=email%3D%3Dcontact7%40example.com"))
    );
}

#[tokio::test]
async fn listing_all_visits_every_contact_exactly_once() {
    let (fake, keap) = setup(250).await;
    let all = search_all(&keap, &ContactQuery::All, 10_000).await.unwrap();
    assert_eq!(all.len(), 250);
    let ids: HashSet<String> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, fake.contact_ids().into_iter().collect());
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /crm/rest/v2/contacts?"))
        .count();
    assert_eq!(pages, 3);
    // A client-side query pages the same way and keeps only matches.
    let q = ContactQuery::FieldContains {
        field: "first_name".into(),
        value: "First24".into(),
    };
    let found = search_all(&keap, &q, 10_000).await.unwrap();
    assert_eq!(found.len(), 11); // First24, First240..=First249
}

#[tokio::test]
async fn sets_standard_and_custom_fields_and_skips_no_ops() {
    let (fake, keap) = setup(2).await;
    let r = keap
        .apply(
            "1",
            "e1",
            &[
                set("first_name", "Zed"),
                set("_LeadScore", "42"),
                set("email", "zed@example.com"),
                set("city", "Austin"),
                set("last_name", "Last0"),
            ],
        )
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.applied.len(), 4);
    assert_eq!(r.applied[0].kind, "field_updated");
    assert_eq!(r.applied[0].old_value.as_deref(), Some("First0"));
    assert_eq!(r.applied[0].new_value.as_deref(), Some("Zed"));
    assert_eq!(r.applied[1].old_value, None);
    let c = keap.get_contact("1").await.unwrap();
    assert_eq!(c.field("first_name"), Some("Zed"));
    assert_eq!(c.field("_LeadScore"), Some("42"));
    assert_eq!(c.field("email"), Some("zed@example.com"));
    assert_eq!(c.field("city"), Some("Austin"));
    let raw = fake.contact("1").unwrap();
    assert_eq!(raw["custom_fields"][0]["content"], "42");
    // Labels resolve too.
    let r = keap
        .apply("1", "e2", &[set("Lead Score", "43")])
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].old_value.as_deref(), Some("42"));
    // The PATCH listed every custom field: Keap removes the ones a write leaves out.
    fake.set_field("1", "_Source", "webinar");
    let r = keap
        .apply("1", "e3", &[set("_LeadScore", "50")])
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1, "{:?}", r.failed);
    let c = keap.get_contact("1").await.unwrap();
    assert_eq!(c.field("_LeadScore"), Some("50"));
    assert_eq!(
        c.field("_Source"),
        Some("webinar"),
        "writing one custom field wiped another"
    );
    // Clearing one keeps the other too.
    keap.apply("1", "e4", &[clear("_LeadScore")]).await.unwrap();
    let c = keap.get_contact("1").await.unwrap();
    assert_eq!(
        (c.field("_LeadScore"), c.field("_Source")),
        (None, Some("webinar"))
    );
}

#[tokio::test]
async fn applies_removes_and_creates_tags() {
    let (fake, keap) = setup(2).await;
    let r = keap
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
    assert_eq!(r.applied[0].new_value.as_deref(), Some("VIP"));
    let tags = keap.list_tags().await.unwrap();
    let created = tags.iter().find(|t| t.name == "Brand New").unwrap();
    assert_eq!(r.applied[3].new_value.as_deref(), Some(created.id.as_str()));
    let c = keap.get_contact("1").await.unwrap();
    let mut ids: Vec<&str> = c.tags.keys().map(String::as_str).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["10", created.id.as_str()]);
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.starts_with("POST /crm/rest/v2/tags ") || *r == "POST /crm/rest/v2/tags")
            .count(),
        1
    );
}

#[tokio::test]
async fn notes_goals_owner_and_opt_out() {
    let (fake, keap) = setup(2).await;
    let r = keap
        .apply(
            "1",
            "e1",
            &[
                Change::AddNote {
                    title: "Call".into(),
                    body: "Said hi".into(),
                },
                Change::AchieveGoal {
                    call_name: "welcome".into(),
                },
                Change::SetOwner {
                    user_id: "1".into(),
                },
                Change::SetOwner {
                    user_id: "2".into(),
                },
                Change::SetOwner {
                    user_id: "99".into(),
                },
                Change::SetOptIn {
                    email: "CONTACT0@example.com".into(),
                    opted_in: false,
                    reason: "asked".into(),
                },
                Change::SetOptIn {
                    email: "other@example.com".into(),
                    opted_in: false,
                    reason: "asked".into(),
                },
                Change::LinkCompany {
                    company_id: None,
                    company_name: "Acme".into(),
                },
            ],
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = r.applied.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "note_added",
            "goal_achieved",
            "owner_set",
            "opt_in_changed",
            Change::LinkCompany {
                company_id: None,
                company_name: String::new()
            }
            .kind()
        ]
    );
    assert_eq!(r.failed.len(), 3, "{:?}", r.failed);
    // The company was created once and linked; linking it again by name is a no-op.
    let linked = keap.get_contact("1").await.unwrap().company_id;
    assert!(linked.is_some());
    let again = keap
        .apply(
            "1",
            "e-company",
            &[Change::LinkCompany {
                company_id: None,
                company_name: "ACME".into(),
            }],
        )
        .await
        .unwrap();
    assert!(
        again.applied.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
    assert_eq!(fake.state.lock().unwrap().companies.len(), 1);
    assert_eq!(keap.find_companies("acm").await.unwrap()[0].name, "Acme");
    // A note without a title still gets one: Keap refuses a note with neither title
    // nor type.
    let r = keap
        .apply(
            "1",
            "e-untitled",
            &[Change::AddNote {
                title: " ".into(),
                body: "\nCalled back about the renewal\nand more".into(),
            }],
        )
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    {
        let s = fake.state.lock().unwrap();
        assert_eq!(s.notes.len(), 2);
        assert_eq!(s.notes[1]["title"], "Called back about the renewal");
        assert_eq!(s.notes[0]["user_id"], "1");
        assert_eq!(s.goals, [("mfh".into(), "welcome".into(), "1".into())]);
    }
    let c = keap.get_contact("1").await.unwrap();
    assert_eq!(c.owner_id.as_deref(), Some("1"));
    assert_eq!(c.marketable, Some(false));
    // An opt-out by hand can be lifted again.
    let r = keap
        .apply(
            "1",
            "e2",
            &[Change::SetOptIn {
                email: "contact0@example.com".into(),
                opted_in: true,
                reason: "form".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1, "{:?}", r.failed);
    assert_eq!(keap.get_contact("1").await.unwrap().marketable, Some(true));
}

#[tokio::test]
async fn refusals_fail_one_change_and_the_rest_go_on() {
    let (_fake, keap) = setup(1).await;
    let r = keap
        .apply(
            "1",
            "e1",
            &[
                set("_NoSuchField", "x"),
                set("email", "not-an-email"),
                set("first_name", "Ok"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 2);
    assert!(r.failed[0].1.contains("unknown field"));
    assert!(r.failed[1].1.contains("400"), "{}", r.failed[1].1);
    assert_eq!(r.applied.len(), 1);
    assert_eq!(
        keap.get_contact("1").await.unwrap().field("first_name"),
        Some("Ok")
    );
}

#[tokio::test]
async fn missing_contacts_are_not_found() {
    let (fake, keap) = setup(2).await;
    assert!(matches!(
        keap.get_contact("999").await,
        Err(CrmError::NotFound { .. })
    ));
    fake.delete_contact("2");
    assert!(matches!(
        keap.apply("2", "e1", &[set("first_name", "x")]).await,
        Err(CrmError::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let (fake, keap) = setup(1).await;
    keap.get_contact("1").await.unwrap();
    fake.expire_tokens();
    keap.get_contact("1").await.unwrap();
    assert_eq!(fake.refreshes(), 1);
    keap.get_contact("1").await.unwrap();
    assert_eq!(fake.refreshes(), 1);
}

#[tokio::test]
async fn a_refresh_authenticates_the_client_with_basic_as_keap_documents() {
    let fake = fake::start(1).await;
    let http = HttpClient::for_tests();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "keap-refresh-0"),
    ];
    // Client credentials in the body, as the connector used to send them: refused.
    let mut body_only = fake.oauth();
    body_only.refresh_basic_auth = false;
    assert!(matches!(
        body_only.token(&http, &refresh).await,
        Err(CrmError::Auth(_))
    ));
    // The configured default sends the Basic header.
    assert!(CrmConfig::default().keap.refresh_basic_auth);
    let t = fake.oauth().token(&http, &refresh).await.unwrap();
    assert!(!t.access_token.is_empty());
    // The code exchange keeps the client in the body.
    let code = [("grant_type", "authorization_code"), ("code", "abc")];
    fake.oauth().token(&http, &code).await.unwrap();
}

#[tokio::test]
async fn api_keys_pass_their_own_quotas_and_oauth_the_apps_shared_one() {
    use crate::connectors::vendor::Limiters;
    // The published numbers are the defaults.
    let keap = CrmConfig::default().keap;
    assert_eq!(keap.rate_limit, RateLimit::new(10, Duration::from_secs(1)));
    assert_eq!(
        keap.key_rate_limits,
        [
            RateLimit::new(240, Duration::from_secs(60)),
            RateLimit::new(30_000, Duration::from_secs(86_400))
        ]
    );
    assert_eq!(
        keap.app_rate_limits,
        [
            RateLimit::new(1_500, Duration::from_secs(60)),
            RateLimit::new(150_000, Duration::from_secs(86_400))
        ]
    );
    let fake = fake::start(1).await;
    let limiters = Limiters::default();
    let day = |n| RateLimit::new(n, Duration::from_secs(86_400));
    let http_for = |conn: &str, creds: Credentials| {
        let auth = Arc::new(Auth::new(
            Arc::new(MemoryCredentials::new(creds)),
            Some(fake.oauth()),
        ));
        VendorHttp::new(
            HttpClient::for_tests(),
            &fake.base,
            auth,
            limiters.get(conn, day(1000)),
        )
        .with_limits(
            vec![limiters.get(&format!("{conn}#key"), day(10))],
            vec![limiters.get("app:keap:fake-client", day(10))],
        )
    };
    let pat = http_for(
        "conn_pat",
        Credentials::KeapApiKey {
            // The fake accepts its tokens in either header.
            key: "keap-access-0".into(),
        },
    );
    let a = http_for("conn_a", FakeServer::credentials());
    let b = http_for("conn_b", FakeServer::credentials());
    for h in [&pat, &pat, &a, &b, &b] {
        h.get("/v2/contacts/1").await.unwrap();
    }
    // The key's own bucket paid for its two; the two OAuth tenants shared the app's.
    assert_eq!(limiters.get("conn_pat#key", day(10)).available(), 8);
    assert_eq!(limiters.get("app:keap:fake-client", day(10)).available(), 7);
    assert_eq!(limiters.get("conn_a#key", day(10)).available(), 10);
}

#[tokio::test]
async fn a_bad_static_token_is_an_auth_error() {
    let fake = fake::start(1).await;
    let keap = connector(
        &fake,
        Credentials::Bearer {
            token: "wrong".into(),
        },
    );
    assert!(matches!(
        keap.get_contact("1").await,
        Err(CrmError::Auth(_))
    ));
    assert_eq!(fake.refreshes(), 0);
}

#[tokio::test]
async fn rate_limits_and_outages_map_to_retryable_errors() {
    let (fake, keap) = setup(1).await;
    for _ in 0..3 {
        fake.fail_next(429, Some(1));
    }
    match keap.get_contact("1").await {
        Err(CrmError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    for _ in 0..3 {
        fake.fail_next(503, None);
    }
    assert!(matches!(
        keap.get_contact("1").await,
        Err(CrmError::Unavailable { .. })
    ));
    keap.get_contact("1").await.unwrap();
}

#[tokio::test]
async fn a_state_is_written_as_its_iso_3166_2_region_code() {
    let (fake, keap) = setup(2).await;
    // Without a country, only a full code can be written.
    let r = keap
        .apply("1", "e-s1", &[set("state", "TX"), set("state", "us-tx")])
        .await
        .unwrap();
    assert_eq!((r.applied.len(), r.failed.len()), (1, 1), "{r:?}");
    assert!(r.failed[0].1.contains("ISO 3166-2"), "{r:?}");
    assert_eq!(
        keap.get_contact("1").await.unwrap().field("state"),
        Some("US-TX")
    );
    // With the address's country, a bare code takes its prefix; a long name is refused.
    let r = keap
        .apply(
            "2",
            "e-s2",
            &[
                set("country", "USA"),
                set("state", "az"),
                set("state", "Arizona"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((r.applied.len(), r.failed.len()), (2, 1), "{r:?}");
    assert_eq!(
        keap.get_contact("2").await.unwrap().field("state"),
        Some("US-AZ")
    );
    let raw = fake.contact("2").unwrap();
    assert!(raw["addresses"][0].get("region").is_none(), "{raw}");
}

#[tokio::test]
async fn users_and_tag_categories_read_as_keap_v2_describes_them() {
    let (_fake, keap) = setup(1).await;
    let users = keap.list_users().await.unwrap();
    let by_id = |id: &str| users.iter().find(|u| u.id == id).unwrap();
    assert_eq!(by_id("1").email, "ann@example.com");
    // Only ACTIVE users can be assigned; INVITED and INACTIVE cannot.
    assert_eq!(
        (by_id("1").active, by_id("2").active, by_id("3").active),
        (true, false, false)
    );
    let tags = keap.list_tags().await.unwrap();
    assert!(
        tags.iter()
            .all(|t| t.category.as_deref() == Some("General")),
        "{tags:?}"
    );
}

#[tokio::test]
async fn an_automation_is_a_campaign_sequence_the_contact_is_added_to() {
    let (fake, keap) = setup(1).await;
    assert!(
        keap.capabilities()
            .contains(&crate::connectors::Capability::Automations)
    );
    let start = |id: &str| Change::TriggerAutomation {
        automation_id: id.into(),
    };
    let r = keap
        .apply(
            "1",
            "e-seq",
            &[start("5/51"), start("5/99"), start("51"), start("5/51")],
        )
        .await
        .unwrap();
    // Added once (the repeat is already in it); an unknown sequence and a bare id refused.
    assert_eq!(r.applied.len(), 1, "{r:?}");
    assert_eq!(r.failed.len(), 2, "{r:?}");
    assert!(r.failed[1].1.contains("campaign_id/sequence_id"), "{r:?}");
    assert_eq!(
        fake.in_sequences(),
        vec![("5".to_owned(), "51".to_owned(), "1".to_owned())]
    );
}

#[tokio::test]
async fn a_merge_is_keaps_own_and_a_repeat_finds_nothing_to_merge() {
    let (fake, keap) = setup(3).await;
    keap.apply(
        "2",
        "e-tag",
        &[Change::ApplyTag {
            tag_id: "11".into(),
        }],
    )
    .await
    .unwrap();
    let merge = |loser: &str| Change::MergeContact {
        loser_id: loser.into(),
        delete_loser: false,
    };
    let r = keap
        .apply("1", "e-merge", &[merge("2"), merge("1")])
        .await
        .unwrap();
    assert_eq!((r.applied.len(), r.failed.len()), (1, 1), "{r:?}");
    assert_eq!(r.applied[0].kind, "contact_merged");
    assert!(fake.contact("2").is_none(), "the duplicate is gone");
    assert!(keap.get_contact("1").await.unwrap().tags.contains_key("11"));
    // Redelivered under another execution id: the loser is gone, nothing to do.
    let again = keap.apply("1", "e-merge-2", &[merge("2")]).await.unwrap();
    assert!(
        again.applied.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}

#[tokio::test]
async fn opportunities_are_listed_per_contact_and_moved_by_stage_name() {
    let (fake, keap) = setup(2).await;
    let mine = keap.opportunities("1").await.unwrap();
    let ids: Vec<&str> = mine.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["701", "702"], "the contact's own, oldest first");
    assert_eq!(mine[0].stage, "New");
    let mv = |id: &str, stage: &str| Change::MoveOpportunity {
        opportunity_id: id.into(),
        stage: stage.into(),
    };
    let r = keap
        .apply(
            "1",
            "e-opp",
            &[
                mv("702", "qualified"),
                mv("702", "Qualified"),
                mv("701", "Lost"),
                mv("703", "Won"),
            ],
        )
        .await
        .unwrap();
    // Moved once (the repeat is a no-op); an unknown stage and another contact's refused.
    assert_eq!(r.applied.len(), 1, "{r:?}");
    assert_eq!(
        (
            r.applied[0].old_value.as_deref(),
            r.applied[0].new_value.as_deref()
        ),
        (Some("New"), Some("qualified"))
    );
    assert_eq!(r.failed.len(), 2, "{r:?}");
    assert!(r.failed[1].1.contains("another contact"), "{r:?}");
    assert_eq!(fake.opportunity(702).unwrap()["stage"]["name"], "Qualified");
    assert_eq!(fake.opportunity(703).unwrap()["stage"]["name"], "Qualified");
}
