//! zoom_webinar_participant: after a webinar, tags the attendees by engagement. It reads
//! the participants report (`GET /report/webinars/{id}/participants`, every
//! `next_page_token` page), sums each attendee's sessions by case-insensitive email
//! (people who drop and rejoin appear several times), and divides the minutes by the
//! webinar's actual length (`GET /report/webinars/{id}`'s `duration`, or the configured
//! `webinar_duration_minutes`, or else the longest attendance). Each attendee found in
//! the CRM gets `"<prefix> Attended"`, an engagement tier (`High` ≥ 75 %, `Medium` ≥ 50 %,
//! otherwise `Low` `Engagement`; the other tiers' tags it holds are removed so the tier is
//! exclusive), optionally a duration bucket (`Under 15`, `15-30`, `30-60`, `60+ Minutes`,
//! also exclusive), `"<prefix> ID:<id>"` and the custom tags, plus the minutes saved to
//! `save_minutes_to`. Changes to other contacts are addressed to them. The triggering
//! contact's own figures are reported (`engagement_level: none` when it did not attend).
//! Idempotent; a dry run reads and reports the same.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_true};
use crate::helpers::integration::zoom_meeting::{vendor_url, zoom_call};
use crate::helpers::integration::zoom_webinar_absentee::{
    addressed, check_report_config, default_prefix, email_of, find_by_email, held_tag, tag_changes,
    webinar_segment, zoom_list,
};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Config of zoom_webinar_participant.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zoom OAuth access token (a secret; never logged).
    pub access_token: String,
    /// The webinar id (or a past instance's UUID).
    pub webinar_id: String,
    /// Tag name prefix; default `Webinar`.
    #[serde(default = "default_prefix")]
    pub tag_prefix: String,
    /// Percent attended for High; default 75.
    #[serde(default = "default_high")]
    pub high_engagement_threshold: f64,
    /// Percent attended for Medium; default 50.
    #[serde(default = "default_medium")]
    pub medium_engagement_threshold: f64,
    /// Apply `"<prefix> Attended"`; default true.
    #[serde(default = "default_true")]
    pub apply_attendance_tag: bool,
    /// Apply the engagement tier; default true.
    #[serde(default = "default_true")]
    pub apply_engagement_tags: bool,
    /// Apply the duration bucket; default false.
    #[serde(default)]
    pub apply_duration_tag: bool,
    /// Apply `"<prefix> ID:<webinar id>"`; default true.
    #[serde(default = "default_true")]
    pub apply_id_tag: bool,
    /// More tag names to apply.
    #[serde(default)]
    pub custom_tags: Vec<String>,
    /// Create tags the CRM lacks; default true. Off: only existing tags are applied.
    #[serde(default = "default_true")]
    pub create_missing_tags: bool,
    /// Field that receives the minutes attended.
    pub save_minutes_to: Option<String>,
    /// The webinar's length, instead of Zoom's report.
    pub webinar_duration_minutes: Option<u32>,
    /// The CRM field matched against Zoom emails; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Emails never treated as attendees (hosts, panelists, staff).
    #[serde(default)]
    pub exclude_emails: Vec<String>,
}

const fn default_high() -> f64 {
    75.0
}
const fn default_medium() -> f64 {
    50.0
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
        let (h, m) = (
            self.high_engagement_threshold,
            self.medium_engagement_threshold,
        );
        check(
            &mut errors,
            !(h > 0.0 && h <= 100.0),
            "high_engagement_threshold",
            "must be above 0 and at most 100",
        );
        check(
            &mut errors,
            !(m > 0.0 && m < h),
            "medium_engagement_threshold",
            "must be above 0 and below high_engagement_threshold",
        );
        check(
            &mut errors,
            self.save_minutes_to
                .as_deref()
                .is_some_and(|f| f.trim().is_empty()),
            "save_minutes_to",
            "must not be empty when given",
        );
        check(
            &mut errors,
            self.webinar_duration_minutes == Some(0),
            "webinar_duration_minutes",
            "must be at least 1",
        );
        finish(errors)
    }
}

/// The zoom_webinar_participant helper.
pub struct ZoomWebinarParticipant;

impl Helper for ZoomWebinarParticipant {
    const NAME: &'static str = "zoom_webinar_participant";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Tags the attendees of a finished Zoom webinar by how much of it they watched.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "token", "webinar_id": "81234567890", "tag_prefix": "March Demo", "apply_duration_tag": true, "save_minutes_to": "_WebinarMinutes"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "participants",
        "tagged",
        "not_found",
        "levels",
        "webinar_minutes",
        "attended_percent",
        "duration_minutes",
        "engagement_level",
        "tags_applied",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::Search, Capability::Tags, Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ParticipantStep(config)))
    }
}

struct ParticipantStep(Config);

const TIERS: [&str; 3] = ["High", "Medium", "Low"];
const BUCKETS: [&str; 4] = ["Under 15", "15-30", "30-60", "60+"];

fn bucket(minutes: u64) -> &'static str {
    match minutes {
        0..15 => BUCKETS[0],
        15..30 => BUCKETS[1],
        30..60 => BUCKETS[2],
        _ => BUCKETS[3],
    }
}

impl ParticipantStep {
    /// The webinar's length in minutes from Zoom's report, if it says.
    async fn reported_minutes(&self, ctx: &Ctx<'_>, id: &str) -> Result<Option<u64>, StepError> {
        let url = vendor_url(ctx, "zoom", &["report", "webinars", id], &[])?;
        let r = zoom_call(ctx, &self.0.access_token, reqwest::Method::GET, &url, None).await?;
        let from_times = || {
            let t = |k: &str| {
                r[k].as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            };
            let (s, e) = (t("start_time")?, t("end_time")?);
            u64::try_from((e - s).num_minutes()).ok()
        };
        Ok(r["duration"]
            .as_u64()
            .filter(|d| *d > 0)
            .or_else(from_times)
            .filter(|d| *d > 0))
    }

    fn level(&self, percent: f64) -> &'static str {
        if percent >= self.0.high_engagement_threshold {
            TIERS[0]
        } else if percent >= self.0.medium_engagement_threshold {
            TIERS[1]
        } else {
            TIERS[2]
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for ParticipantStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let id = webinar_segment(&c.webinar_id);
        let participants = zoom_list(
            ctx,
            &c.access_token,
            &["report", "webinars", &id, "participants"],
            &[],
            "participants",
        )
        .await?;
        let excluded: BTreeSet<String> = c
            .exclude_emails
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        let mut seconds: BTreeMap<String, u64> = BTreeMap::new();
        for p in &participants {
            if let Some(email) = email_of(p, "user_email").filter(|e| !excluded.contains(e)) {
                *seconds.entry(email).or_default() += p["duration"].as_u64().unwrap_or(0);
            }
        }
        let minutes_of = |secs: u64| (secs + 30) / 60;
        let webinar_minutes = match c.webinar_duration_minutes {
            Some(m) => u64::from(m),
            None => match self.reported_minutes(ctx, &id).await? {
                Some(m) => m,
                None => seconds
                    .values()
                    .copied()
                    .map(minutes_of)
                    .max()
                    .unwrap_or(0)
                    .max(1),
            },
        };
        let prefix = c.tag_prefix.trim();
        let tier_name = |t: &str| format!("{prefix} {t} Engagement");
        let bucket_name = |b: &str| format!("{prefix} {b} Minutes");
        let catalog = if c.create_missing_tags {
            None
        } else {
            Some(ctx.crm.list_tags().await?)
        };
        let mut skipped = BTreeSet::new();
        let (mut changes, mut not_found, mut tagged) = (Vec::new(), Vec::new(), 0);
        let mut levels: BTreeMap<String, u64> =
            TIERS.iter().map(|t| (t.to_lowercase(), 0)).collect();
        let mut mine = json!({"attended_percent": null, "duration_minutes": 0,
            "engagement_level": "none", "tags_applied": []});
        for (email, secs) in &seconds {
            let minutes = minutes_of(*secs);
            #[allow(clippy::cast_precision_loss)]
            let percent =
                ((minutes as f64 * 1000.0 / webinar_minutes as f64).round() / 10.0).min(100.0);
            let level = self.level(percent);
            *levels.entry(level.to_lowercase()).or_default() += 1;
            let Some(target) = find_by_email(ctx, c.email_field.trim(), email).await? else {
                not_found.push(email.clone());
                continue;
            };
            let mut names = Vec::new();
            let mut own = Vec::new();
            if c.apply_attendance_tag {
                names.push(format!("{prefix} Attended"));
            }
            let mut exclusive = |set: &[&str], chosen: &str, name: &dyn Fn(&str) -> String| {
                names.push(name(chosen));
                for other in set.iter().filter(|o| **o != chosen) {
                    if let Some(tag_id) = held_tag(&target, &name(other)) {
                        own.push(Change::RemoveTag {
                            tag_id: tag_id.clone(),
                        });
                    }
                }
            };
            if c.apply_engagement_tags {
                exclusive(&TIERS, level, &tier_name);
            }
            if c.apply_duration_tag {
                exclusive(&BUCKETS, bucket(minutes), &bucket_name);
            }
            if c.apply_id_tag {
                names.push(format!("{prefix} ID:{}", c.webinar_id.trim()));
            }
            names.extend(c.custom_tags.iter().map(|t| t.trim().to_owned()));
            let (apply, applied) = tag_changes(&target, &names, catalog.as_deref(), &mut skipped);
            own.extend(apply);
            if let Some(f) = &c.save_minutes_to
                && target.fields.get(f.trim()) != Some(&minutes.to_string())
            {
                own.push(Change::SetField {
                    field: f.trim().to_owned(),
                    value: Some(minutes.to_string()),
                });
            }
            if target.id == contact.id {
                mine = json!({"attended_percent": percent, "duration_minutes": minutes,
                    "engagement_level": level.to_lowercase(), "tags_applied": applied});
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
            "{} attended webinar {} ({webinar_minutes} minutes); {tagged} contacts updated",
            seconds.len(),
            c.webinar_id.trim()
        ))
        .with("participants", seconds.len())
        .with("tagged", tagged)
        .with("not_found", json!(not_found))
        .with("levels", json!(levels))
        .with("webinar_minutes", webinar_minutes);
        for k in [
            "attended_percent",
            "duration_minutes",
            "engagement_level",
            "tags_applied",
        ] {
            out = out.with(k, mine[k].clone());
        }
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
    use crate::connectors::Tag;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use serde_json::Value;

    const ID: &str = "81234567890";

    fn person(id: &str, email: &str, tags: &[(&str, &str)]) -> Contact {
        let mut c = contact(&[("email", email)], &[]);
        c.id = id.into();
        c.tags = tags
            .iter()
            .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
            .collect();
        c
    }

    fn participants() -> Value {
        json!({"page_size": 300, "next_page_token": "", "participants": [
            {"user_email": "ada@x.io", "duration": 1800},
            {"user_email": "ADA@x.io", "duration": 1500},
            {"user_email": "bob@x.io", "duration": 1920},
            {"user_email": "cy@x.io", "duration": 600},
            {"user_email": "", "duration": 3600},
            {"user_email": "host@x.io", "duration": 3600}]})
    }

    async fn zoom(report: Value) -> MockVendor {
        MockVendor::start(&[
            (
                "GET",
                "/report/webinars/81234567890/participants",
                200,
                participants(),
            ),
            ("GET", "/report/webinars/81234567890", 200, report),
        ])
        .await
    }

    fn cfg() -> Value {
        json!({"access_token": "zt", "webinar_id": ID, "tag_prefix": "Demo", "apply_duration_tag": true,
            "save_minutes_to": "_Minutes", "exclude_emails": ["host@x.io"]})
    }

    fn named(name: &str) -> Change {
        Change::ApplyTagNamed {
            name: name.into(),
            category: None,
        }
    }

    #[tokio::test]
    async fn sums_sessions_and_tags_tiers() {
        let mock =
            zoom(json!({"id": 81234567890_u64, "duration": 60, "participants_count": 5})).await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        env.crm.contacts.push(person(
            "c-2",
            "bob@x.io",
            &[("t1", "Demo High Engagement"), ("t2", "Demo Attended")],
        ));
        let me = person("c-1", "ada@x.io", &[]);
        env.crm.contacts.push(me.clone());
        let out = env.run(&ZoomWebinarParticipant, cfg(), &me).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["participants"], json!(3));
        assert_eq!(out.output["webinar_minutes"], json!(60));
        assert_eq!(out.output["not_found"], json!(["cy@x.io"]));
        assert_eq!(
            out.output["levels"],
            json!({"high": 1, "medium": 1, "low": 1})
        );
        assert_eq!(out.output["attended_percent"], json!(91.7));
        assert_eq!(out.output["duration_minutes"], json!(55));
        assert_eq!(out.output["engagement_level"], json!("high"));
        assert_eq!(
            out.output["tags_applied"],
            json!([
                "Demo Attended",
                "Demo High Engagement",
                "Demo 30-60 Minutes",
                "Demo ID:81234567890"
            ])
        );
        let to_bob = |ch: Change| Change::ForContact {
            contact_id: "c-2".into(),
            change: Box::new(ch),
        };
        assert_eq!(
            out.changes,
            vec![
                named("Demo Attended"),
                named("Demo High Engagement"),
                named("Demo 30-60 Minutes"),
                named("Demo ID:81234567890"),
                set("_Minutes", "55"),
                to_bob(Change::RemoveTag {
                    tag_id: "t1".into()
                }),
                to_bob(named("Demo Medium Engagement")),
                to_bob(named("Demo 30-60 Minutes")),
                to_bob(named("Demo ID:81234567890")),
                to_bob(set("_Minutes", "32")),
            ]
        );
        let all = mock.received();
        assert_eq!(all[0].path, "/report/webinars/81234567890/participants");
        assert_eq!(all[1].path, "/report/webinars/81234567890");
        assert!(
            all.iter()
                .all(|r| r.header("authorization") == Some("Bearer zt"))
        );
    }

    #[tokio::test]
    async fn webinar_length_falls_back_to_times_then_longest_attendance() {
        let mock = zoom(json!({"duration": 0, "start_time": "2026-03-10T17:00:00Z", "end_time": "2026-03-10T18:50:00Z"})).await;
        let env = Env::new().vendor("zoom", &mock.base);
        let me = person("c-1", "ada@x.io", &[]);
        let out = env.run(&ZoomWebinarParticipant, cfg(), &me).await.unwrap();
        assert_eq!(out.output["webinar_minutes"], json!(110));
        assert_eq!(out.output["engagement_level"], json!("none"));
        mock.route("GET", "/report/webinars/81234567890", 200, json!({}));
        let out = env.run(&ZoomWebinarParticipant, cfg(), &me).await.unwrap();
        assert_eq!(out.output["webinar_minutes"], json!(55));
        let mut c = cfg();
        c["webinar_duration_minutes"] = json!(200);
        let before = mock.received().len();
        let out = env.run(&ZoomWebinarParticipant, c, &me).await.unwrap();
        assert_eq!(out.output["webinar_minutes"], json!(200));
        assert_eq!(
            out.output["levels"],
            json!({"high": 0, "medium": 0, "low": 3})
        );
        assert_eq!(mock.received().len(), before + 1);
    }

    #[tokio::test]
    async fn existing_tags_only_and_idempotent_rerun() {
        let mock = zoom(json!({"duration": 60})).await;
        let mut env = Env::new().vendor("zoom", &mock.base);
        env.crm.tags.push(Tag {
            id: "77".into(),
            name: "Demo Attended".into(),
            category: None,
        });
        let mut done = person("c-1", "ada@x.io", &[("77", "Demo Attended")]);
        done.fields.insert("_Minutes".into(), "55".into());
        env.crm.contacts.push(done.clone());
        let mut c = cfg();
        c["create_missing_tags"] = json!(false);
        c["exclude_emails"] = json!(["host@x.io", "bob@x.io", "cy@x.io"]);
        let out = env
            .run(&ZoomWebinarParticipant, c.clone(), &done)
            .await
            .unwrap();
        assert!(out.changes.is_empty(), "{:?}", out.changes);
        assert_eq!(out.output["tagged"], json!(0));
        assert!(out.logs[0].contains("Demo High Engagement"));
        let fresh = person("c-1", "ada@x.io", &[]);
        env.crm.contacts = vec![fresh.clone()];
        let out = env.run(&ZoomWebinarParticipant, c, &fresh).await.unwrap();
        assert_eq!(
            out.changes,
            vec![
                Change::ApplyTag {
                    tag_id: "77".into()
                },
                set("_Minutes", "55")
            ]
        );
    }

    #[tokio::test]
    async fn zoom_errors_surface() {
        let mock = MockVendor::start(&[(
            "GET",
            "/report/webinars/81234567890/participants",
            400,
            json!({"code": 12702, "message": "Can not access webinar info"}),
        )])
        .await;
        let env = Env::new().vendor("zoom", &mock.base);
        let err = env
            .run(&ZoomWebinarParticipant, cfg(), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("12702"))
        );
        mock.route(
            "GET",
            "/report/webinars/81234567890/participants",
            429,
            json!({}),
        );
        assert!(matches!(
            env.run(&ZoomWebinarParticipant, cfg(), &contact(&[], &[]))
                .await
                .unwrap_err(),
            StepError::External {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn buckets() {
        assert_eq!(
            [
                bucket(0),
                bucket(14),
                bucket(15),
                bucket(29),
                bucket(30),
                bucket(59),
                bucket(60)
            ],
            [
                "Under 15", "Under 15", "15-30", "15-30", "30-60", "30-60", "60+"
            ]
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &ZoomWebinarParticipant,
            json!({"access_token": "t", "webinar_id": "1",
            "high_engagement_threshold": 40, "medium_engagement_threshold": 50, "save_minutes_to": "",
            "webinar_duration_minutes": 0, "tag_prefix": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tag_prefix",
                "medium_engagement_threshold",
                "save_minutes_to",
                "webinar_duration_minutes"
            ]
        );
        assert_eq!(
            config_errors(
                &ZoomWebinarParticipant,
                json!({"access_token": "t", "webinar_id": "1",
            "high_engagement_threshold": 120})
            )[0]
            .field,
            "high_engagement_threshold"
        );
        assert!(config_errors(&ZoomWebinarParticipant, cfg()).is_empty());
    }
}
