//! zoom_webinar_absentee: after a webinar, tags the registrants who did not attend. It
//! reads the approved registrants (`GET /webinars/{id}/registrants`, optionally for one
//! `occurrence_id`) and the attendees (`GET /report/webinars/{id}/participants`), both
//! through every `next_page_token` page, and takes registrants minus attendees by
//! case-insensitive email. Each absentee found in the CRM by email gets
//! `"<prefix> No Show"`, `"<prefix> Registered"`, `"<prefix> ID:<webinar id>"` and the
//! custom tags (by name: created when missing, or only existing ones with
//! `create_missing_tags: false`), plus `no_show_goal`; changes to other contacts are
//! addressed to them. Tags a contact already holds are not re-applied, so the helper is
//! idempotent apart from the goal. Absentees without a contact are listed in `not_found`
//! (the helper creates no contacts). Zoom only has participant data after the webinar
//! ends, and the report can lag; hosts and panelists can be left out with
//! `exclude_emails`. Nothing is sent anywhere, so a dry run reads and reports the same.

use crate::connectors::{Capability, ContactQuery, Tag};
use crate::helpers::defaults::{default_email, default_true};
use crate::helpers::integration::zoom_meeting::{vendor_url, zoom_call};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Most pages read from one Zoom list.
const MAX_PAGES: usize = 1000;

/// A webinar id or instance UUID as one path segment; a UUID starting with `/` or
/// holding `//` is encoded twice, as Zoom requires.
pub(crate) fn webinar_segment(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('/') || id.contains("//") {
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
    } else {
        id.to_owned()
    }
}

/// Every item under `key` of a paginated Zoom list.
pub(crate) async fn zoom_list(
    ctx: &Ctx<'_>,
    token: &str,
    segments: &[&str],
    query: &[(&str, &str)],
    key: &str,
) -> Result<Vec<Value>, StepError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut q: Vec<(&str, &str)> = vec![("page_size", "300")];
        q.extend_from_slice(query);
        if let Some(t) = &next {
            q.push(("next_page_token", t));
        }
        let url = vendor_url(ctx, "zoom", segments, &q)?;
        let page = zoom_call(ctx, token, reqwest::Method::GET, &url, None).await?;
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str().filter(|t| !t.is_empty()) {
            Some(t) if next.as_deref() != Some(t) => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// The lower-cased, trimmed email of a Zoom list item.
pub(crate) fn email_of(item: &Value, key: &str) -> Option<String> {
    item[key]
        .as_str()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
}

/// The first CRM contact whose `field` equals `email`.
pub(crate) async fn find_by_email(
    ctx: &Ctx<'_>,
    field: &str,
    email: &str,
) -> Result<Option<Contact>, StepError> {
    let query = ContactQuery::FieldEquals {
        field: field.to_owned(),
        value: email.to_owned(),
    };
    Ok(ctx
        .crm
        .search_contacts(&query, None)
        .await?
        .contacts
        .into_iter()
        .next())
}

/// `change` for `target`, addressed to it unless it is the triggering contact.
pub(crate) fn addressed(self_id: &str, target_id: &str, change: Change) -> Change {
    if target_id == self_id {
        change
    } else {
        Change::ForContact {
            contact_id: target_id.to_owned(),
            change: Box::new(change),
        }
    }
}

/// The id of the tag `target` holds under `name` (case-insensitive).
pub(crate) fn held_tag<'a>(target: &'a Contact, name: &str) -> Option<&'a String> {
    target
        .tags
        .iter()
        .find(|(_, n)| n.trim().eq_ignore_ascii_case(name.trim()))
        .map(|(id, _)| id)
}

/// Changes applying the tags `names` that `target` lacks: by name (created when
/// missing) without a `catalog`, else only tags the catalog has, by id; the names
/// that could not be applied go to `skipped`. Returns the changes and the names applied.
pub(crate) fn tag_changes(
    target: &Contact,
    names: &[String],
    catalog: Option<&[Tag]>,
    skipped: &mut BTreeSet<String>,
) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut applied = Vec::new();
    for name in names {
        if held_tag(target, name).is_some() || applied.contains(name) {
            continue;
        }
        match catalog {
            None => changes.push(Change::ApplyTagNamed {
                name: name.clone(),
                category: None,
            }),
            Some(tags) => match tags
                .iter()
                .find(|t| t.name.trim().eq_ignore_ascii_case(name))
            {
                Some(t) => changes.push(Change::ApplyTag {
                    tag_id: t.id.clone(),
                }),
                None => {
                    skipped.insert(name.clone());
                    continue;
                }
            },
        }
        applied.push(name.clone());
    }
    (changes, applied)
}

/// Config of zoom_webinar_absentee.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zoom OAuth access token (a secret; never logged).
    pub access_token: String,
    /// The webinar id (or a past instance's UUID).
    pub webinar_id: String,
    /// Occurrence of a recurring webinar, for the registrant list.
    pub occurrence_id: Option<String>,
    /// Tag name prefix; default `Webinar`.
    #[serde(default = "default_prefix")]
    pub tag_prefix: String,
    /// Apply `"<prefix> No Show"`; default true.
    #[serde(default = "default_true")]
    pub apply_no_show_tag: bool,
    /// Apply `"<prefix> Registered"`; default true.
    #[serde(default = "default_true")]
    pub apply_registered_tag: bool,
    /// Apply `"<prefix> ID:<webinar id>"`; default true.
    #[serde(default = "default_true")]
    pub apply_id_tag: bool,
    /// More tag names to apply.
    #[serde(default)]
    pub custom_tags: Vec<String>,
    /// Create tags the CRM lacks; default true. Off: only existing tags are applied.
    #[serde(default = "default_true")]
    pub create_missing_tags: bool,
    /// Goal achieved for each absentee.
    pub no_show_goal: Option<String>,
    /// The CRM field matched against Zoom emails; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Emails never treated as absentees (hosts, panelists, staff).
    #[serde(default)]
    pub exclude_emails: Vec<String>,
}

pub(crate) fn default_prefix() -> String {
    "Webinar".into()
}
/// Problems shared by the two Zoom report configs.
pub(crate) fn check_report_config(
    errors: &mut Vec<FieldError>,
    token: &str,
    webinar_id: &str,
    prefix: &str,
    custom: &[String],
    email_field: &str,
) {
    check(
        errors,
        token.trim().is_empty(),
        "access_token",
        "is required",
    );
    check(
        errors,
        webinar_id.trim().is_empty(),
        "webinar_id",
        "is required",
    );
    check(
        errors,
        prefix.trim().is_empty(),
        "tag_prefix",
        "must not be empty",
    );
    check(
        errors,
        custom.iter().any(|t| t.trim().is_empty()),
        "custom_tags",
        "tag names must not be empty",
    );
    check(
        errors,
        email_field.trim().is_empty(),
        "email_field",
        "must not be empty",
    );
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_report_config(
            &mut errors,
            &self.access_token,
            &self.webinar_id,
            &self.tag_prefix,
            &self.custom_tags,
            &self.email_field,
        );
        check(
            &mut errors,
            self.occurrence_id
                .as_deref()
                .is_some_and(|o| o.trim().is_empty()),
            "occurrence_id",
            "must not be empty when given",
        );
        check(
            &mut errors,
            self.no_show_goal
                .as_deref()
                .is_some_and(|g| g.trim().is_empty()),
            "no_show_goal",
            "must not be empty when given",
        );
        finish(errors)
    }
}

/// The zoom_webinar_absentee helper.
pub struct ZoomWebinarAbsentee;

impl Helper for ZoomWebinarAbsentee {
    const NAME: &'static str = "zoom_webinar_absentee";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Tags the registrants of a finished Zoom webinar who did not attend.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "token", "webinar_id": "81234567890", "tag_prefix": "March Demo", "no_show_goal": "webinarnoshow"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "absentees",
        "tagged",
        "not_found",
        "registrants",
        "attendees",
        "skipped_tags",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Search, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(AbsenteeStep(config)))
    }
}

struct AbsenteeStep(Config);

#[async_trait::async_trait]
impl AsyncStep for AbsenteeStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let id = webinar_segment(&c.webinar_id);
        let mut query = vec![("status", "approved")];
        if let Some(o) = &c.occurrence_id {
            query.push(("occurrence_id", o.trim()));
        }
        let registrants = zoom_list(
            ctx,
            &c.access_token,
            &["webinars", &id, "registrants"],
            &query,
            "registrants",
        )
        .await?;
        let participants = zoom_list(
            ctx,
            &c.access_token,
            &["report", "webinars", &id, "participants"],
            &[],
            "participants",
        )
        .await?;
        let attended: BTreeSet<String> = participants
            .iter()
            .filter_map(|p| email_of(p, "user_email"))
            .collect();
        let excluded: BTreeSet<String> = c
            .exclude_emails
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        let mut absentees: Vec<String> = Vec::new();
        for email in registrants.iter().filter_map(|r| email_of(r, "email")) {
            if !attended.contains(&email)
                && !excluded.contains(&email)
                && !absentees.contains(&email)
            {
                absentees.push(email);
            }
        }
        let prefix = c.tag_prefix.trim();
        let mut names = Vec::new();
        if c.apply_no_show_tag {
            names.push(format!("{prefix} No Show"));
        }
        if c.apply_registered_tag {
            names.push(format!("{prefix} Registered"));
        }
        if c.apply_id_tag {
            names.push(format!("{prefix} ID:{}", c.webinar_id.trim()));
        }
        names.extend(c.custom_tags.iter().map(|t| t.trim().to_owned()));
        let catalog = if c.create_missing_tags {
            None
        } else {
            Some(ctx.crm.list_tags().await?)
        };
        let (mut changes, mut not_found, mut skipped) = (Vec::new(), Vec::new(), BTreeSet::new());
        let mut tagged = 0;
        for email in &absentees {
            let Some(target) = find_by_email(ctx, c.email_field.trim(), email).await? else {
                not_found.push(email.clone());
                continue;
            };
            let (mut own, _) = tag_changes(&target, &names, catalog.as_deref(), &mut skipped);
            if let Some(g) = &c.no_show_goal {
                own.push(Change::AchieveGoal {
                    call_name: g.trim().to_owned(),
                });
            }
            if !own.is_empty() {
                tagged += 1;
            }
            changes.extend(
                own.into_iter()
                    .map(|ch| addressed(&contact.id, &target.id, ch)),
            );
        }
        let mut out = Outcome::ok(format!(
            "{} of {} registrants missed webinar {}; {tagged} contacts updated",
            absentees.len(),
            registrants.len(),
            c.webinar_id.trim()
        ))
        .with("absentees", absentees.len())
        .with("tagged", tagged)
        .with("not_found", json!(not_found))
        .with("registrants", registrants.len())
        .with("attendees", attended.len())
        .with("skipped_tags", json!(skipped));
        if !skipped.is_empty() {
            out = out.log(format!(
                "Tags missing from the CRM were not applied: {}",
                skipped.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        out.changes = changes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};
    use std::sync::{Arc, Mutex};

    fn person(id: &str, email: &str, tags: &[(&str, &str)]) -> Contact {
        let mut c = contact(&[("email", email)], &[]);
        c.id = id.into();
        c.tags = tags
            .iter()
            .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
            .collect();
        c
    }

    fn registrants() -> Value {
        json!({"page_size": 300, "total_records": 4, "next_page_token": "", "registrants": [
            {"id": "r1", "email": "ada@x.io", "first_name": "Ada"},
            {"id": "r2", "email": "Bob@X.io", "first_name": "Bob"},
            {"id": "r3", "email": "cy@x.io", "first_name": "Cy"},
            {"id": "r4", "email": "host@x.io", "first_name": "Host"}]})
    }

    fn participants() -> Value {
        json!({"page_size": 300, "total_records": 1, "next_page_token": "", "participants": [
            {"id": "p1", "name": "Ada", "user_email": "ADA@x.io", "duration": 3000,
                "join_time": "2026-03-10T17:00:00Z", "leave_time": "2026-03-10T17:50:00Z"}]})
    }

    async fn zoom() -> MockVendor {
        MockVendor::start(&[
            (
                "GET",
                "/webinars/81234567890/registrants",
                200,
                registrants(),
            ),
            (
                "GET",
                "/report/webinars/81234567890/participants",
                200,
                participants(),
            ),
        ])
        .await
    }

    fn cfg() -> Value {
        json!({"access_token": "zt", "webinar_id": "81234567890", "tag_prefix": "Demo",
            "custom_tags": ["Follow Up"], "no_show_goal": "noshow", "exclude_emails": ["HOST@x.io"]})
    }

    fn named(name: &str) -> Change {
        Change::ApplyTagNamed {
            name: name.into(),
            category: None,
        }
    }

    #[tokio::test]
    async fn tags_registrants_who_did_not_attend() {
        let mock = zoom().await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        env.crm
            .contacts
            .push(person("c-2", "bob@x.io", &[("t9", "demo registered")]));
        let me = person("c-1", "ada@x.io", &[]);
        let out = env.run(&ZoomWebinarAbsentee, cfg(), &me).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["absentees"], json!(2));
        assert_eq!(out.output["tagged"], json!(1));
        assert_eq!(out.output["not_found"], json!(["cy@x.io"]));
        assert_eq!(out.output["registrants"], json!(4));
        assert_eq!(out.output["attendees"], json!(1));
        let to_bob = |ch: Change| Change::ForContact {
            contact_id: "c-2".into(),
            change: Box::new(ch),
        };
        assert_eq!(
            out.changes,
            vec![
                to_bob(named("Demo No Show")),
                to_bob(named("Demo ID:81234567890")),
                to_bob(named("Follow Up")),
                to_bob(Change::AchieveGoal {
                    call_name: "noshow".into()
                }),
            ]
        );
        let all = mock.received();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].query, "page_size=300&status=approved");
        assert_eq!(all[0].header("authorization"), Some("Bearer zt"));
        assert_eq!(all[1].query, "page_size=300");
    }

    #[tokio::test]
    async fn only_existing_tags_without_create_missing_tags() {
        let mock = zoom().await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        env.crm.contacts.push(person("c-2", "bob@x.io", &[]));
        env.crm.tags.push(Tag {
            id: "55".into(),
            name: "Demo No Show".into(),
            category: None,
        });
        let mut c = cfg();
        c["create_missing_tags"] = json!(false);
        c["apply_registered_tag"] = json!(false);
        c.as_object_mut().unwrap().remove("no_show_goal");
        let out = env
            .run(&ZoomWebinarAbsentee, c, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(
            out.changes,
            vec![Change::ForContact {
                contact_id: "c-2".into(),
                change: Box::new(Change::ApplyTag {
                    tag_id: "55".into()
                })
            }]
        );
        assert_eq!(
            out.output["skipped_tags"],
            json!(["Demo ID:81234567890", "Follow Up"])
        );
    }

    /// A Zoom stand-in that pages its lists by `next_page_token`.
    async fn paging_zoom() -> (String, Arc<Mutex<Vec<String>>>) {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = log.clone();
        let app = axum::Router::new().fallback(move |u: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                let q = u.query().unwrap_or("").to_owned();
                seen.lock().unwrap().push(format!("{}?{q}", u.path()));
                let second = q.contains("next_page_token=tok2");
                let body = if u.path().ends_with("/registrants") {
                    if second {
                        json!({"next_page_token": "", "registrants": [{"email": "late@x.io"}]})
                    } else {
                        json!({"next_page_token": "tok2", "registrants": [{"email": "early@x.io"}]})
                    }
                } else if second {
                    json!({"next_page_token": "", "participants": [{"user_email": "early@x.io", "duration": 60}]})
                } else {
                    json!({"next_page_token": "tok2", "participants": []})
                };
                axum::Json(body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), log)
    }

    #[tokio::test]
    async fn reads_every_page_of_both_lists() {
        let (base, log) = paging_zoom().await;
        let mut env = Env::new().vendor("zoom", &base);
        env.crm.contacts.push(person("c-5", "late@x.io", &[]));
        env.crm.contacts.push(person("c-6", "early@x.io", &[]));
        let mut c = cfg();
        c["occurrence_id"] = json!("1648194360000");
        let out = env
            .run(&ZoomWebinarAbsentee, c, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["absentees"], json!(1));
        assert!(
            out.changes.iter().all(
                |ch| matches!(ch, Change::ForContact { contact_id, .. } if contact_id == "c-5")
            )
        );
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 4);
        assert_eq!(
            log[0],
            "/webinars/81234567890/registrants?page_size=300&status=approved&occurrence_id=1648194360000"
        );
        assert_eq!(
            log[1],
            "/webinars/81234567890/registrants?page_size=300&status=approved&occurrence_id=1648194360000&next_page_token=tok2"
        );
        assert!(log[3].ends_with("participants?page_size=300&next_page_token=tok2"));
    }

    #[tokio::test]
    async fn zoom_errors_surface() {
        let mock = MockVendor::start(&[(
            "GET",
            "/webinars/81234567890/registrants",
            404,
            json!({"code": 3001, "message": "Webinar does not exist"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let err = env
            .run(&ZoomWebinarAbsentee, cfg(), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("3001"))
        );
        mock.route("GET", "/webinars/81234567890/registrants", 503, json!({}));
        let err = env
            .run(&ZoomWebinarAbsentee, cfg(), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn uuids_are_encoded_twice_when_zoom_requires_it() {
        assert_eq!(webinar_segment(" 812 "), "812");
        assert_eq!(
            webinar_segment("/ajXp112QmuoKj4854875=="),
            "%2FajXp112QmuoKj4854875%3D%3D"
        );
        assert_eq!(webinar_segment("ab//c=="), "ab%2F%2Fc%3D%3D");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &ZoomWebinarAbsentee,
            json!({"access_token": "", "webinar_id": " ",
            "tag_prefix": "", "custom_tags": [""], "email_field": "", "occurrence_id": "", "no_show_goal": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "access_token",
                "webinar_id",
                "tag_prefix",
                "custom_tags",
                "email_field",
                "occurrence_id",
                "no_show_goal"
            ]
        );
        assert!(!config_errors(&ZoomWebinarAbsentee, json!({"access_token": "t"})).is_empty());
        assert!(config_errors(&ZoomWebinarAbsentee, cfg()).is_empty());
    }
}
