//! Unit tests of the account routes' rules and validation.
#![allow(clippy::unwrap_used)]
use super::team::*;
use super::*;
use mfh_processors::store::team::Permission::{
    ManageBilling, ManageKeys, ManageTeam, ReadData, RunHelpers,
};
use mfh_processors::store::team::check_owner_kept;

#[test]
fn role_permission_matrix() {
    let all = [ManageKeys, ManageTeam, ManageBilling, RunHelpers, ReadData];
    for p in all {
        assert!(Role::Owner.can(p), "owner {p:?}");
        assert_eq!(Role::Admin.can(p), p != ManageBilling, "admin {p:?}");
        assert_eq!(
            Role::Member.can(p),
            matches!(p, RunHelpers | ReadData),
            "member {p:?}"
        );
    }
}

#[test]
fn roles_rank_and_round_trip() {
    assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
    for r in Role::ALL {
        assert_eq!(Role::parse(r.as_str()), Some(r));
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
    assert_eq!(Role::parse("root"), None);
}

#[test]
fn emails() {
    for ok in ["ada@example.com", "a.b+c@mail.example.co.uk", "x@a-b.io"] {
        assert!(email_shape_ok(ok), "{ok}");
    }
    let long = format!("{}@example.com", "a".repeat(65));
    for bad in [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
    ] {
        assert!(!email_shape_ok(bad), "{bad}");
    }
    for bad in [
        "a@b@example.com",
        "ada@-x.com",
        "ada@example..com",
        long.as_str(),
    ] {
        assert!(!email_shape_ok(bad), "{bad}");
    }
}

#[test]
fn profile_validation_lists_every_error_and_trims() {
    let bad = PatchAccount {
        name: Some("  ".into()),
        billing_email: Some("nope".into()),
    };
    let errors = validate_profile(&bad).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "billing_email"]);
    let long = PatchAccount {
        name: Some("n".repeat(201)),
        billing_email: None,
    };
    assert!(validate_profile(&long).is_err());
    let good = PatchAccount {
        name: Some(format!(" {} ", "n".repeat(200))),
        billing_email: Some(" Bill@Example.com ".into()),
    };
    let (name, email) = validate_profile(&good).unwrap();
    assert_eq!(name.unwrap().len(), 200);
    assert_eq!(email.as_deref(), Some("Bill@Example.com"));
    let none = PatchAccount {
        name: None,
        billing_email: None,
    };
    assert_eq!(validate_profile(&none).unwrap(), (None, None));
}

#[test]
fn key_and_invite_validation() {
    let body: CreateKey = serde_json::from_str(r#"{"role":"root"}"#).unwrap();
    assert_eq!(validate_new_key(&body).unwrap_err().len(), 2);
    let body: CreateKey = serde_json::from_str(r#"{"name":"ci"}"#).unwrap();
    assert_eq!(validate_new_key(&body).unwrap(), ("ci".to_owned(), None));
    assert!(serde_json::from_str::<CreateKey>(r#"{"name":"ci","scope":"x"}"#).is_err());
    let body: Invite = serde_json::from_str("{}").unwrap();
    assert_eq!(validate_invite(&body).unwrap_err().len(), 2);
    let body: Invite =
        serde_json::from_str(r#"{"email":" Ada@Example.COM ","role":"admin"}"#).unwrap();
    assert_eq!(
        validate_invite(&body).unwrap(),
        ("ada@example.com".to_owned(), Role::Admin)
    );
}

#[test]
fn grants_and_member_changes() {
    let forbidden = |r: Result<(), ApiError>| matches!(r, Err(ApiError::Forbidden(_)));
    assert!(may_grant(Role::Admin, Role::Admin).is_ok());
    assert!(forbidden(may_grant(Role::Admin, Role::Owner)));
    assert!(forbidden(may_grant(Role::Member, Role::Admin)));
    let set = MemberChange::SetRole;
    assert!(authorize_change(Role::Admin, Role::Member, set(Role::Admin)).is_ok());
    assert!(authorize_change(Role::Admin, Role::Admin, MemberChange::Remove).is_ok());
    assert!(forbidden(authorize_change(
        Role::Admin,
        Role::Owner,
        set(Role::Admin)
    )));
    assert!(forbidden(authorize_change(
        Role::Admin,
        Role::Owner,
        MemberChange::Remove
    )));
    assert!(forbidden(authorize_change(
        Role::Admin,
        Role::Member,
        set(Role::Owner)
    )));
    assert!(forbidden(authorize_change(
        Role::Member,
        Role::Member,
        MemberChange::Remove
    )));
    assert!(authorize_change(Role::Owner, Role::Owner, set(Role::Admin)).is_ok());
    assert!(authorize_change(Role::Owner, Role::Member, set(Role::Owner)).is_ok());
}

#[test]
fn the_last_active_owner_is_kept() {
    let owner = Member::active("o@example.com", Role::Owner, 1);
    let last = |c| check_owner_kept(&owner, c, 0);
    assert!(matches!(
        last(MemberChange::Remove),
        Err(TeamError::LastOwner)
    ));
    let demote = MemberChange::SetRole(Role::Admin);
    assert!(matches!(last(demote), Err(TeamError::LastOwner)));
    assert!(last(MemberChange::SetRole(Role::Owner)).is_ok());
    assert!(check_owner_kept(&owner, demote, 1).is_ok());
    let invited = Member::invited("i@example.com", Role::Owner, "key_1", 1);
    assert!(check_owner_kept(&invited, MemberChange::Remove, 0).is_ok());
    let admin = Member::active("a@example.com", Role::Admin, 1);
    assert!(check_owner_kept(&admin, MemberChange::Remove, 0).is_ok());
}

#[test]
fn invite_notification_is_addressed_to_the_invitee() {
    let m = Member::invited("ada@example.com", Role::Admin, "key_1", 42);
    let n = team_invite_notification("acct", Some("Acme"), &m, None);
    assert_eq!(n.notification_id, "team_invite:ada@example.com:42");
    assert_eq!(n.kind, "team_invite");
    assert_eq!(n.recipient.as_deref(), Some("ada@example.com"));
    let data: Value = serde_json::from_str(&n.data_json).unwrap();
    assert_eq!(data["account_name"], "Acme");
    assert_eq!(data["role"], "admin");
}
