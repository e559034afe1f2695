//! Contract tests of applying changes against the fake account.

use super::fake::{self, FakeServer};
use super::tests::{connector, connector_with, set};
use crate::connectors::{CrmConnector, CrmRead};
use crate::helpers::Change;

#[tokio::test]
async fn sets_standard_and_custom_fields_and_skips_no_ops() {
    let fake = fake::start(3).await;
    let ac = connector(&fake);
    let r = ac
        .apply(
            "1",
            "e1",
            &[
                set("first_name", "Ada"),
                set("Favorite Color", "Green"),
                set("last_name", "Last1"),
                set("first_name", "Ada"),
            ],
        )
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.applied.len(), 2);
    assert_eq!(r.applied[0].kind, "field_updated");
    assert_eq!(r.applied[0].old_value.as_deref(), Some("First1"));
    assert_eq!(r.applied[0].new_value.as_deref(), Some("Ada"));
    assert_eq!(r.applied[1].old_value, None);
    let c = ac.get_contact("1").await.unwrap();
    assert_eq!(c.field("first_name"), Some("Ada"));
    assert_eq!(c.field("Favorite Color"), Some("Green"));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r == "POST /api/3/fieldValues")
    );
}

#[tokio::test]
async fn a_custom_field_titled_like_a_standard_key_answers_to_it() {
    let fake = fake::start(1).await;
    fake.set_field("1", "City", "Austin");
    let ac = connector(&fake);
    assert_eq!(
        ac.get_contact("1").await.unwrap().field("city"),
        Some("Austin")
    );
    let r = ac.apply("1", "e1", &[set("city", "Dallas")]).await.unwrap();
    assert_eq!(r.applied[0].old_value.as_deref(), Some("Austin"));
    let c = ac.get_contact("1").await.unwrap();
    assert_eq!(c.field("City"), Some("Dallas"));
    assert_eq!(c.field("city"), Some("Dallas"));
}

#[tokio::test]
async fn an_unknown_field_or_a_rejected_value_fails_only_that_change() {
    let fake = fake::start(2).await;
    let ac = connector(&fake);
    let r = ac
        .apply(
            "1",
            "e1",
            &[
                set("Shoe Size", "42"),
                set("email", "not-an-email"),
                set("phone", "555"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 2, "{:?}", r.failed);
    assert!(r.failed[0].1.contains("unknown field"));
    assert!(r.failed[1].1.contains("422"), "{}", r.failed[1].1);
    assert_eq!(r.applied.len(), 1);
    assert_eq!(
        ac.get_contact("1").await.unwrap().field("phone"),
        Some("555")
    );
}

#[tokio::test]
async fn applies_and_removes_tags_and_creates_named_ones() {
    let fake = fake::start(2).await;
    let ac = connector(&fake);
    let r = ac
        .apply(
            "1",
            "e1",
            &[
                Change::ApplyTag { tag_id: "2".into() },
                Change::ApplyTag { tag_id: "2".into() },
                Change::ApplyTag {
                    tag_id: "404".into(),
                },
                Change::ApplyTagNamed {
                    name: "State: Texas".into(),
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
    assert!(r.failed[0].1.contains("unknown tag"));
    assert_eq!(r.applied.len(), 3);
    assert_eq!(r.applied[0].new_value.as_deref(), Some("Customer"));
    let texas = r.applied[1].new_value.clone().unwrap();
    assert_eq!(r.applied[2].new_value.as_deref(), Some("1"));
    let c = ac.get_contact("1").await.unwrap();
    assert_eq!(c.tags.get(&texas).map(String::as_str), Some("State: Texas"));
    assert!(c.has_tag("1") && c.has_tag("2"));
    let catalog = ac.list_tags().await.unwrap();
    assert_eq!(catalog.len(), 4);
    let creates = fake
        .requests()
        .iter()
        .filter(|r| *r == "POST /api/3/tags")
        .count();
    assert_eq!(creates, 1);

    let r = ac
        .apply(
            "1",
            "e2",
            &[
                Change::RemoveTag { tag_id: "2".into() },
                Change::RemoveTag { tag_id: "3".into() },
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].kind, "tag_removed");
    assert_eq!(r.applied[0].old_value.as_deref(), Some("Customer"));
    assert!(!ac.get_contact("1").await.unwrap().has_tag("2"));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /api/3/contactTags/"))
    );
}

#[tokio::test]
async fn adds_notes_opts_out_and_starts_automations_but_sets_no_owner() {
    let fake = fake::start(2).await;
    let ac = connector(&fake);
    let opt = |opted_in| Change::SetOptIn {
        email: "CONTACT1@example.com".into(),
        opted_in,
        reason: "asked".into(),
    };
    let r = ac
        .apply(
            "1",
            "e1",
            &[
                Change::AddNote {
                    title: "Call".into(),
                    body: "Left a message".into(),
                },
                opt(false),
                opt(false),
                opt(true),
                Change::TriggerAutomation {
                    automation_id: "1".into(),
                },
                Change::TriggerAutomation {
                    automation_id: "77".into(),
                },
                Change::SetOwner {
                    user_id: "1".into(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 3, "{:?}", r.applied);
    assert_eq!(r.applied[1].kind, "opt_in_changed");
    assert_eq!(r.applied[1].old_value.as_deref(), Some("true"));
    assert_eq!(r.applied[1].new_value.as_deref(), Some("false: asked"));
    assert_eq!(r.failed.len(), 3, "{:?}", r.failed);
    assert!(r.failed[0].1.contains("cannot be re-opted in"));
    assert!(r.failed[2].1.contains("owner"));
    assert_eq!(ac.get_contact("1").await.unwrap().marketable, Some(false));
    let s = fake.state.lock().unwrap();
    assert_eq!(s.notes, vec![(1, "Call\n\nLeft a message".to_owned())]);
    assert_eq!(s.contact_automations, vec![(1, 1)]);
}

#[tokio::test]
async fn opts_a_new_contact_in_to_the_configured_list() {
    let fake = fake::start(1).await;
    {
        let mut s = fake.state.lock().unwrap();
        s.lists.insert(5, "Newsletter".into());
        s.contacts.get_mut(&1).unwrap().lists.clear();
    }
    let ac = connector_with(&fake, FakeServer::credentials(), Some("5"));
    assert_eq!(ac.get_contact("1").await.unwrap().marketable, None);
    let r = ac
        .apply(
            "1",
            "e1",
            &[Change::SetOptIn {
                email: "contact1@example.com".into(),
                opted_in: true,
                reason: "form".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1, "{:?}", r.failed);
    assert_eq!(ac.get_contact("1").await.unwrap().marketable, Some(true));
}

#[tokio::test]
async fn a_rejected_change_mid_apply_is_reported_and_the_rest_still_made() {
    let fake = fake::start(1).await;
    let ac = connector(&fake);
    // Warm the caches, so an apply is: GET contact, GET its tags, then one call per change.
    ac.get_contact("1").await.unwrap();
    let pass = (0, None);
    fake.state
        .lock()
        .unwrap()
        .failures
        .extend([pass, pass, (400, None), pass, (422, None)]);
    let r = ac
        .apply(
            "1",
            "e1",
            &[
                set("first_name", "A"),
                set("last_name", "B"),
                set("phone", "1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1, "{r:?}");
    assert_eq!(r.applied[0].target, "last_name");
    assert_eq!(r.failed.len(), 2);
    assert!(
        r.failed[0].1.contains("400") && r.failed[1].1.contains("422"),
        "{r:?}"
    );

    // Rate limited after a change was made: the report is kept, the rest is failed.
    fake.state.lock().unwrap().failures.extend([
        pass,
        pass,
        pass,
        (429, None),
        (429, None),
        (429, None),
    ]);
    let r = ac
        .apply(
            "1",
            "e2",
            &[
                set("first_name", "C"),
                set("last_name", "D"),
                set("phone", "2"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1, "{r:?}");
    assert_eq!(r.failed.len(), 2);
    assert!(r.failed[1].1.contains("not applied"), "{r:?}");
}
