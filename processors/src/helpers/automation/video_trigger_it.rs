//! video_trigger_it: turns video-watching milestones into CRM actions. A player script or
//! webhook posts `{"video_id", "percent"}` (or `{"video_id", "event"}` with `play`,
//! `view_start`, `25_percent` … `100_percent`, `complete`) as the trigger payload. When
//! the event is for the configured video and reaches the configured milestone
//! (`view_start`, 25/50/75/100 %, or `custom_percent`), the helper applies `apply_tag`,
//! achieves `achieve_goal` and stamps the time in `save_to_field`. Reaching a higher
//! milestone counts for the lower ones (a 75 % event fires a 50 % trigger). With
//! `once_per_contact` (default) it fires once per contact, kept in platform state, so
//! repeated and rapid events are deduplicated; the old rebuild fired on every call
//! whatever event arrived. Events for another video, or below the milestone, do nothing.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The milestone that fires.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub enum EventType {
    /// Playback started.
    #[serde(rename = "view_start")]
    ViewStart,
    /// A quarter watched.
    #[serde(rename = "25_percent")]
    Percent25,
    /// Half watched.
    #[serde(rename = "50_percent")]
    Percent50,
    /// Three quarters watched.
    #[serde(rename = "75_percent")]
    Percent75,
    /// Watched to the end.
    #[serde(rename = "100_percent")]
    Percent100,
    /// `custom_percent` watched.
    #[serde(rename = "custom_percent")]
    CustomPercent,
}

/// Config of video_trigger_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The video's id in the player.
    pub video_id: String,
    /// The milestone.
    pub event_type: EventType,
    /// Percentage for `custom_percent`, 1–100.
    pub custom_percent: Option<f64>,
    /// Tag applied at the milestone.
    pub apply_tag: Option<String>,
    /// Goal achieved at the milestone.
    pub achieve_goal: Option<String>,
    /// Field that receives the time of the milestone (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub save_to_field: Option<String>,
    /// Title reported in the output.
    pub video_title: Option<String>,
    /// Fire once per contact; default true.
    #[serde(default = "default_true")]
    pub once_per_contact: bool,
}

impl Config {
    fn threshold(&self) -> f64 {
        match self.event_type {
            EventType::ViewStart => 0.0,
            EventType::Percent25 => 25.0,
            EventType::Percent50 => 50.0,
            EventType::Percent75 => 75.0,
            EventType::Percent100 => 100.0,
            EventType::CustomPercent => self.custom_percent.unwrap_or(100.0),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.video_id.trim().is_empty(),
            "video_id",
            "is required",
        );
        let custom = self.event_type == EventType::CustomPercent;
        check(
            &mut errors,
            custom && !self.custom_percent.is_some_and(|p| p > 0.0 && p <= 100.0),
            "custom_percent",
            "must be above 0 and at most 100 for custom_percent",
        );
        check(
            &mut errors,
            !custom && self.custom_percent.is_some(),
            "custom_percent",
            "is only used with event_type custom_percent",
        );
        check(
            &mut errors,
            self.apply_tag.is_none() && self.achieve_goal.is_none() && self.save_to_field.is_none(),
            "apply_tag",
            "set apply_tag, achieve_goal or save_to_field",
        );
        for (field, v) in [
            ("apply_tag", &self.apply_tag),
            ("achieve_goal", &self.achieve_goal),
            ("save_to_field", &self.save_to_field),
        ] {
            check(
                &mut errors,
                v.as_ref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The watched percentage an event reports: `percent` (number or numeric string, clamped
/// to 0–100) or a named `event`.
fn watched(input: &Value) -> Option<f64> {
    let p = input
        .get("percent")
        .or_else(|| input.get("percentage_watched"));
    if let Some(p) = p {
        let n = p.as_f64().or_else(|| {
            p.as_str()
                .and_then(|s| s.trim().trim_end_matches('%').parse().ok())
        })?;
        return n.is_finite().then(|| n.clamp(0.0, 100.0));
    }
    let e = input.get("event")?.as_str()?.trim().to_lowercase();
    match e.as_str() {
        "play" | "view_start" | "start" => Some(0.0),
        "complete" | "ended" | "finish" => Some(100.0),
        other => other
            .strip_suffix("_percent")?
            .parse::<f64>()
            .ok()
            .map(|n| n.clamp(0.0, 100.0)),
    }
}

fn engagement(p: f64) -> &'static str {
    match p {
        p if p >= 100.0 => "completed",
        p if p >= 75.0 => "high",
        p if p >= 50.0 => "medium",
        p if p >= 25.0 => "low",
        _ => "started",
    }
}

/// The video_trigger_it helper.
pub struct VideoTriggerIt;

impl Helper for VideoTriggerIt {
    const NAME: &'static str = "video_trigger_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Applies a tag, goal or date when the contact reaches a video-watching milestone.";
    const EXAMPLE_CONFIG: &'static str = r#"{"video_id": "wistia-abc123", "event_type": "75_percent", "apply_tag": "501", "achieve_goal": "watchedDemo", "video_title": "Product demo"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "video_id",
        "event_type",
        "percentage_watched",
        "engagement_level",
        "timestamp",
        "triggered",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(VideoTriggerItStep(config)))
    }
}

struct VideoTriggerItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for VideoTriggerItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let video = c.video_id.trim();
        let input = ctx.input.cloned().unwrap_or(Value::Null);
        let Some(percent) = watched(&input) else {
            return Ok(
                Outcome::failed("The event carries no watch percentage or known event")
                    .with("video_id", video)
                    .with("triggered", false),
            );
        };
        let base = |out: Outcome, triggered: bool| {
            out.with("video_id", video)
                .with("video_title", c.video_title.clone().unwrap_or_default())
                .with("event_type", threshold_name(c))
                .with("percentage_watched", percent)
                .with("engagement_level", engagement(percent))
                .with("timestamp", ctx.now.to_rfc3339())
                .with("triggered", triggered)
        };
        let other = input.get("video_id").and_then(Value::as_str).map(str::trim);
        if other.is_some_and(|v| v != video) {
            return Ok(base(Outcome::ok("Event for another video; ignored"), false));
        }
        if percent < c.threshold() {
            return Ok(base(
                Outcome::ok(format!("{percent}% watched: milestone not reached")),
                false,
            ));
        }
        if c.once_per_contact {
            let key = format!("video_trigger_it/{}/{}", ctx.instance, contact.id);
            let mark = json!({"execution_id": ctx.execution_id, "percent": percent});
            let (stored, _) = ctx.state.put_if_absent(&key, mark, None).await?;
            if stored["execution_id"] != ctx.execution_id {
                return Ok(base(
                    Outcome::ok("Milestone already triggered for this contact"),
                    false,
                ));
            }
        }
        let mut out = base(
            Outcome::ok(format!("{percent}% watched: milestone reached")),
            true,
        );
        if let Some(f) = c.save_to_field.as_deref() {
            out = out.set_field(
                contact,
                f.trim(),
                ctx.now.format("%Y-%m-%d %H:%M:%S").to_string(),
            );
        }
        Ok(out.branch(contact, c.apply_tag.as_deref(), c.achieve_goal.as_deref()))
    }
}

fn threshold_name(c: &Config) -> &'static str {
    match c.event_type {
        EventType::ViewStart => "view_start",
        EventType::Percent25 => "25_percent",
        EventType::Percent50 => "50_percent",
        EventType::Percent75 => "75_percent",
        EventType::Percent100 => "100_percent",
        EventType::CustomPercent => "custom_percent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, set};

    fn cfg() -> Value {
        json!({"video_id": "v1", "event_type": "50_percent", "apply_tag": "5", "achieve_goal": "watched", "save_to_field": "_Watched"})
    }

    async fn event(env: &mut Env, exec: &str, cfg: Value, input: Value) -> Outcome {
        env.execution_id = exec.into();
        env.input = Some(input);
        env.run(&VideoTriggerIt, cfg, &contact(&[], &[]))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_higher_milestone_fires_the_lower_trigger_once() {
        let mut env = Env::new();
        let out = event(
            &mut env,
            "e1",
            cfg(),
            json!({"video_id": "v1", "percent": 75}),
        )
        .await;
        assert_eq!(out.output["triggered"], true);
        assert_eq!(out.output["engagement_level"], "high");
        assert_eq!(
            out.changes,
            vec![
                set("_Watched", "2026-03-15 12:00:00"),
                Change::ApplyTag { tag_id: "5".into() },
                Change::AchieveGoal {
                    call_name: "watched".into()
                }
            ]
        );
        let redelivered = event(
            &mut env,
            "e1",
            cfg(),
            json!({"video_id": "v1", "percent": 75}),
        )
        .await;
        assert_eq!(redelivered.changes, out.changes);
        let later = event(
            &mut env,
            "e2",
            cfg(),
            json!({"video_id": "v1", "event": "100_percent"}),
        )
        .await;
        assert_eq!(later.output["triggered"], false);
        assert!(later.changes.is_empty());
    }

    #[tokio::test]
    async fn other_videos_and_lower_progress_do_nothing() {
        let mut env = Env::new();
        let other = event(
            &mut env,
            "e1",
            cfg(),
            json!({"video_id": "v2", "percent": 90}),
        )
        .await;
        assert!(other.success && other.changes.is_empty());
        let low = event(
            &mut env,
            "e2",
            cfg(),
            json!({"video_id": "v1", "percent": "49.5%"}),
        )
        .await;
        assert_eq!(low.output["triggered"], false);
        assert_eq!(low.output["percentage_watched"], 49.5);
        let fired = event(&mut env, "e3", cfg(), json!({"percent": 50})).await;
        assert_eq!(fired.output["triggered"], true);
    }

    #[tokio::test]
    async fn view_start_custom_and_repeat_firing() {
        let mut env = Env::new();
        let start = json!({"video_id": "v1", "event_type": "view_start", "apply_tag": "1"});
        let out = event(&mut env, "e1", start, json!({"event": "play"})).await;
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "1".into() }]);
        let custom = json!({"video_id": "v1", "event_type": "custom_percent", "custom_percent": 90, "achieve_goal": "g", "once_per_contact": false});
        assert_eq!(
            event(&mut env, "e2", custom.clone(), json!({"percent": 89}))
                .await
                .output["triggered"],
            false
        );
        assert_eq!(
            event(&mut env, "e3", custom.clone(), json!({"percent": 140}))
                .await
                .output["percentage_watched"],
            100.0
        );
        let again = event(&mut env, "e4", custom, json!({"event": "complete"})).await;
        assert_eq!(
            again.changes,
            vec![Change::AchieveGoal {
                call_name: "g".into()
            }]
        );
    }

    #[tokio::test]
    async fn events_without_progress_fail() {
        let mut env = Env::new();
        let out = event(
            &mut env,
            "e1",
            cfg(),
            json!({"video_id": "v1", "event": "pause"}),
        )
        .await;
        assert!(!out.success && out.changes.is_empty());
        env.input = None;
        assert!(
            !env.run(&VideoTriggerIt, cfg(), &contact(&[], &[]))
                .await
                .unwrap()
                .success
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &VideoTriggerIt,
            json!({"video_id": "", "event_type": "custom_percent", "custom_percent": 120}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["video_id", "custom_percent", "apply_tag"]);
        assert!(!config_errors(&VideoTriggerIt, json!({"video_id": "v", "event_type": "50_percent", "custom_percent": 50, "apply_tag": "1"})).is_empty());
        assert!(
            !config_errors(
                &VideoTriggerIt,
                json!({"video_id": "v", "event_type": "60_percent", "apply_tag": "1"})
            )
            .is_empty()
        );
    }
}
