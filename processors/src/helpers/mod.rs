//! Helpers: small automation steps run against one CRM contact.
//!
//! A helper is a unit struct implementing [`Helper`] in one file under its category's
//! folder, plus one line in [`registry`]. The typed trait gives each helper a checked
//! `Config`; [`DynHelper`] erases it so the registry can hold all of them.
//!
//! A helper never sees Kafka or the CRM: it gets a [`Contact`] snapshot, its config and a
//! [`Ctx`], and returns an [`Outcome`] listing the [`Change`]s to make. The worker applies
//! them through the connector, which is what makes dry runs and redelivery safe.

pub mod analytics;
pub mod automation;
pub mod contact;
pub mod data;
pub(crate) mod defaults;
pub mod geo;
pub mod goals;
pub mod integration;
pub mod model;
pub mod notification;
pub mod platform;
pub mod registry;
pub mod tagging;
pub mod template;
pub mod vendors;

pub use model::{Change, Contact, FollowUp, Outcome};
pub use registry::{HELPERS, find};
pub use vendors::Vendors;

use crate::connectors::{Capability, CrmError, CrmRead};
use crate::http::{HttpClient, HttpError};
use crate::state::{StateError, StateStore};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// The eight helper categories; each has its own topic and consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Tags and scores.
    Tagging,
    /// Contact records: copy, parse, notes, owners.
    Contact,
    /// Pure data transforms: math, dates, formatting.
    Data,
    /// Branching, routing and timers.
    Automation,
    /// Third-party services and outbound webhooks.
    Integration,
    /// Alerts to people.
    Notification,
    /// Account-wide analysis.
    Analytics,
    /// Platform maintenance such as backups.
    Platform,
}

impl Category {
    /// All categories in their fixed order.
    pub const ALL: [Category; 8] = [
        Self::Tagging,
        Self::Contact,
        Self::Data,
        Self::Automation,
        Self::Integration,
        Self::Notification,
        Self::Analytics,
        Self::Platform,
    ];

    /// The lower-case name used in topic and group names.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tagging => "tagging",
            Self::Contact => "contact",
            Self::Data => "data",
            Self::Automation => "automation",
            Self::Integration => "integration",
            Self::Notification => "notification",
            Self::Analytics => "analytics",
            Self::Platform => "platform",
        }
    }

    /// Parses a lower-case category name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with a config, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The config field, e.g. `tag_ids` or `rules[2].points`; empty for the whole config.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A config that failed to parse or validate, with every problem found.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid config for {helper}: {}", render(.errors))]
pub struct ConfigError {
    /// The helper whose config it is.
    pub helper: String,
    /// All problems found.
    pub errors: Vec<FieldError>,
}

fn render(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.field.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.field, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a parsed config for problems serde cannot express; lists them all.
pub trait Validate {
    /// # Errors
    /// Every problem found, each naming its field.
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// Pushes an error when `cond` holds; keeps validation code flat.
pub(crate) fn check(errors: &mut Vec<FieldError>, cond: bool, field: &str, message: &str) {
    if cond {
        errors.push(FieldError::new(field, message));
    }
}

/// Turns a list of problems into a validation result.
pub(crate) fn finish(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What a running helper may use besides the contact: ids, time, randomness, HTTP, CRM
/// queries, platform state and files.
pub struct Ctx<'a> {
    /// The execution being run; effects are keyed by it.
    pub execution_id: &'a str,
    /// The owning account.
    pub account_id: &'a str,
    /// The helper instance rotation, limit and drip state is kept under: a saved
    /// helper's id (so editing its config keeps the state), or for an inline config a
    /// hash of helper and config ([`instance_id`]).
    pub instance: &'a str,
    /// "Now" for this execution, from the worker's injectable clock.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Seed for any random choice: fresh per run in production (a redelivery reuses
    /// the recorded outcome instead of drawing again), pinned by tests.
    pub seed: u64,
    /// Optional trigger payload (POST body, webhook).
    pub input: Option<&'a serde_json::Value>,
    /// The shared outbound HTTP client (timeouts, retries, SSRF guard).
    pub http: &'a HttpClient,
    /// Read-only CRM queries (search, tags, users, records, stats).
    pub crm: &'a dyn CrmRead,
    /// This account's helper state (counters, rotations, snapshots).
    pub state: &'a dyn StateStore,
    /// Third-party base URLs.
    pub vendors: &'a Vendors,
    /// Platform file storage (backups, uploads), scoped to the account by key prefix.
    pub files: &'a dyn object_store::ObjectStore,
    /// True in a dry run: report what would happen; send nothing, keep state writes in
    /// an overlay.
    pub dry_run: bool,
}

impl Ctx<'_> {
    /// A random source pinned to this execution.
    #[must_use]
    pub fn rng(&self) -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(self.seed)
    }
}

/// The instance id of `helper` run with `config`: a stable hash, so every execution of
/// the same configured helper shares rotation and limit state.
#[must_use]
pub fn instance_id(helper: &str, config: &Value) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{helper}\n{config}").as_bytes());
    hex::encode(&digest[..8])
}

/// Runs a side effect (a message, an SMS, a created meeting) at most once per execution
/// and name, and returns its recorded result: `Ok(None)` in a dry run, where nothing is
/// sent.
///
/// A journal entry is claimed before the call and completed with its result after it,
/// so a redelivered execution returns the first result instead of calling again. A call
/// that fails releases its claim so a retry may try again; if the process died during
/// the call, the claim stays and the execution fails rather than risk a duplicate.
///
/// # Errors
/// The call's error, a state error, or [`StepError::External`] for an interrupted call.
pub async fn once<F, Fut>(ctx: &Ctx<'_>, name: &str, call: F) -> Result<Option<Value>, StepError>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = Result<Value, StepError>> + Send,
{
    if ctx.dry_run {
        return Ok(None);
    }
    let key = format!("effect/{}/{name}", ctx.execution_id);
    let expires = Some(ctx.now + chrono::Duration::days(30));
    let (stored, created) = ctx
        .state
        .put_if_absent(&key, serde_json::json!({"state": "pending"}), expires)
        .await?;
    if !created {
        return match stored.get("result") {
            Some(r) if stored["state"] == "done" => Ok(Some(r.clone())),
            _ => Err(StepError::External {
                message: format!(
                    "{name} was interrupted in an earlier attempt and is not repeated, to avoid sending it twice"
                ),
                retryable: false,
            }),
        };
    }
    match call().await {
        Ok(result) => {
            ctx.state
                .put(
                    &key,
                    serde_json::json!({"state": "done", "result": result}),
                    expires,
                )
                .await?;
            Ok(Some(result))
        }
        Err(e) => {
            ctx.state.delete(&key).await?;
            Err(e)
        }
    }
}

/// A seed derived from an execution id, for tests that want distinct but reproducible
/// draws per execution (production seeds are fresh OS randomness; see `context`).
#[must_use]
pub fn seed_for(execution_id: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(execution_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// Why a helper could not produce an outcome. A helper that ran and decided "no" returns
/// an [`Outcome`] with `success = false` instead.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A third-party call failed; `retryable` says whether trying later may help.
    #[error("external service failed: {message}")]
    External {
        /// What failed.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// The contact lacks something the helper needs and the config has no fallback.
    #[error("{0}")]
    Input(String),
}

/// The error and its sources, one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

impl From<HttpError> for StepError {
    fn from(e: HttpError) -> Self {
        Self::External {
            message: error_chain(&e),
            retryable: e.retryable(),
        }
    }
}

impl From<CrmError> for StepError {
    fn from(e: CrmError) -> Self {
        Self::External {
            message: e.to_string(),
            retryable: e.retryable(),
        }
    }
}

impl From<StateError> for StepError {
    fn from(e: StateError) -> Self {
        Self::External {
            message: e.to_string(),
            retryable: true,
        }
    }
}

/// The runtime part of a pure helper: a function of the contact, config and context.
pub trait Step: Send + Sync {
    /// # Errors
    /// [`StepError`] when no outcome can be produced.
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError>;
}

/// The runtime part of a helper that does I/O.
#[async_trait]
pub trait AsyncStep: Send + Sync {
    /// # Errors
    /// [`StepError`] when no outcome can be produced.
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError>;
}

/// A built helper, ready to run.
pub enum Runnable {
    /// Pure transform; runs inline.
    Sync(Box<dyn Step>),
    /// Does I/O.
    Async(Box<dyn AsyncStep>),
}

impl Runnable {
    /// Whether running it does no I/O: running it again changes nothing outside it, so
    /// its first recorded outcome can be settled after the run instead of before.
    #[must_use]
    pub fn is_pure(&self) -> bool {
        matches!(self, Self::Sync(_))
    }

    /// Runs the helper.
    ///
    /// # Errors
    /// The step's [`StepError`].
    pub async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        match self {
            Self::Sync(s) => s.run(ctx, contact),
            Self::Async(s) => s.run(ctx, contact).await,
        }
    }
}

/// A named, documented automation step. Implemented by a unit struct.
pub trait Helper: Send + Sync + 'static {
    /// The product's established name, unique: `tag_it`.
    const NAME: &'static str;
    /// One of the eight categories.
    const CATEGORY: Category;
    /// One sentence ending with a period; served by `GET /v1/helpers`.
    const SUMMARY: &'static str;
    /// A valid config as JSON; a registry test parses and validates it.
    const EXAMPLE_CONFIG: &'static str;
    /// The output keys the helper may set, for the docs and `GET /v1/helpers`.
    const OUTPUTS: &'static [&'static str];
    /// CRM capabilities the helper needs; a connection lacking one is refused before
    /// the helper runs.
    const REQUIRES: &'static [Capability] = &[];
    /// The typed config; unknown fields are rejected. Its JSON Schema is served by
    /// `GET /v1/helpers`.
    type Config: DeserializeOwned + schemars::JsonSchema + Validate + Send + Sync + 'static;
    /// Builds the runtime step from a validated config.
    fn build(&self, config: Self::Config) -> Runnable;
}

/// The object-safe face of [`Helper`], held by the registry.
pub trait DynHelper: Send + Sync {
    /// See [`Helper::NAME`].
    fn name(&self) -> &'static str;
    /// See [`Helper::CATEGORY`].
    fn category(&self) -> Category;
    /// See [`Helper::SUMMARY`].
    fn summary(&self) -> &'static str;
    /// See [`Helper::EXAMPLE_CONFIG`].
    fn example_config(&self) -> &'static str;
    /// See [`Helper::OUTPUTS`].
    fn outputs(&self) -> &'static [&'static str];
    /// See [`Helper::REQUIRES`].
    fn requires(&self) -> &'static [Capability];
    /// The JSON Schema of the config.
    fn config_schema(&self) -> Value;
    /// Parses, validates and builds a config given as JSON.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem.
    fn build_json(&self, config: &serde_json::Value) -> Result<Runnable, ConfigError>;
}

impl<H: Helper> DynHelper for H {
    fn name(&self) -> &'static str {
        H::NAME
    }
    fn category(&self) -> Category {
        H::CATEGORY
    }
    fn summary(&self) -> &'static str {
        H::SUMMARY
    }
    fn example_config(&self) -> &'static str {
        H::EXAMPLE_CONFIG
    }
    fn outputs(&self) -> &'static [&'static str] {
        H::OUTPUTS
    }
    fn requires(&self) -> &'static [Capability] {
        H::REQUIRES
    }
    fn config_schema(&self) -> Value {
        schemars::schema_for!(H::Config).to_value()
    }
    fn build_json(&self, config: &serde_json::Value) -> Result<Runnable, ConfigError> {
        let err = |errors| ConfigError {
            helper: H::NAME.to_owned(),
            errors,
        };
        let parsed: H::Config = serde_json::from_value(config.clone())
            .map_err(|e| err(vec![FieldError::new("", e.to_string())]))?;
        parsed.validate().map_err(err)?;
        Ok(self.build(parsed))
    }
}

/// Test support shared by the helper files.
#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod registry_invariants {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_snake_case() {
        let re = regex::Regex::new("^[a-z][a-z0-9_]*$").unwrap();
        let mut seen = BTreeSet::new();
        for h in HELPERS.iter() {
            assert!(re.is_match(h.name()), "{} is not snake_case", h.name());
            assert!(seen.insert(h.name()), "{} is registered twice", h.name());
        }
    }

    /// The product's inventory: every helper, by category.
    const INVENTORY: &[(Category, &[&str])] = &[
        (
            Category::Tagging,
            &[
                "tag_it",
                "clear_tags",
                "count_it_tags",
                "count_tags",
                "group_it",
                "score_it",
            ],
        ),
        (
            Category::Contact,
            &[
                "assign_it",
                "clear_it",
                "combine_it",
                "company_link",
                "contact_updater",
                "copy_it",
                "default_to_field",
                "field_to_field",
                "found_it",
                "merge_it",
                "move_it",
                "name_parse_it",
                "note_it",
                "opt_in",
                "opt_out",
                "own_it",
                "snapshot_it",
            ],
        ),
        (
            Category::Data,
            &[
                "advance_math",
                "date_calc",
                "format_it",
                "get_the_first",
                "get_the_last",
                "ip_location",
                "last_click_it",
                "last_open_it",
                "last_send_it",
                "math_it",
                "password_it",
                "phone_lookup",
                "quote_it",
                "split_it",
                "split_it_basic",
                "text_it",
                "when_is_it",
                "word_count_it",
            ],
        ),
        (
            Category::Automation,
            &[
                "action_it",
                "chain_it",
                "countdown_timer",
                "drip_it",
                "goal_it",
                "ip_notifications",
                "ip_redirects",
                "limit_it",
                "match_it",
                "route_it",
                "route_it_by_custom",
                "route_it_by_day",
                "route_it_by_time",
                "route_it_geo",
                "route_it_score",
                "route_it_source",
                "simple_opt_in",
                "simple_opt_out",
                "stage_it",
                "timezone_triggers",
                "trigger_it",
                "video_trigger_it",
            ],
        ),
        (
            Category::Integration,
            &[
                "calendly_it",
                "donor_search",
                "dropbox_it",
                "email_attach_it",
                "email_validate_it",
                "everwebinar",
                "excel_it",
                "facebook_lead_ads",
                "google_sheet_it",
                "gotowebinar",
                "hook_it",
                "hook_it_by_tag",
                "hook_it_v2",
                "hook_it_v3",
                "hook_it_v4",
                "mail_it",
                "order_it",
                "query_it_basic",
                "search_it",
                "slack_it",
                "stripe_hooks",
                "trello_it",
                "twilio_sms",
                "upload_it",
                "webinar_jam",
                "zoom_meeting",
                "zoom_webinar",
                "zoom_webinar_absentee",
                "zoom_webinar_participant",
            ],
        ),
        (Category::Notification, &["email_engagement", "notify_me"]),
        (
            Category::Analytics,
            &["customer_lifetime_value", "rfm_calculation"],
        ),
        (Category::Platform, &["keap_backup"]),
    ];

    #[test]
    fn all_97_helpers_are_registered_in_their_category() {
        let expected: BTreeSet<(&str, Category)> = INVENTORY
            .iter()
            .flat_map(|(c, names)| names.iter().map(move |n| (*n, *c)))
            .collect();
        assert_eq!(expected.len(), 97);
        let actual: BTreeSet<(&str, Category)> =
            HELPERS.iter().map(|h| (h.name(), h.category())).collect();
        let missing: Vec<_> = expected.difference(&actual).collect();
        let extra: Vec<_> = actual.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing or miscategorised: {missing:?}; not in the inventory: {extra:?}"
        );
        assert_eq!(HELPERS.len(), 97);
    }

    #[test]
    fn config_schemas_are_closed_objects() {
        for h in HELPERS.iter() {
            let s = h.config_schema();
            assert_eq!(s["type"], "object", "{}: {s}", h.name());
            assert_eq!(
                s["additionalProperties"],
                serde_json::json!(false),
                "{} does not reject unknown fields in its schema",
                h.name()
            );
        }
    }

    #[test]
    fn outputs_are_declared() {
        for h in HELPERS.iter() {
            assert!(!h.outputs().is_empty(), "{} declares no outputs", h.name());
        }
    }

    #[test]
    fn summaries_are_sentences() {
        for h in HELPERS.iter() {
            assert!(
                !h.summary().is_empty() && h.summary().ends_with('.'),
                "{}",
                h.name()
            );
        }
    }

    #[test]
    fn every_example_config_builds() {
        for h in HELPERS.iter() {
            let v: serde_json::Value = serde_json::from_str(h.example_config())
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", h.name()));
            if let Err(e) = h.build_json(&v) {
                panic!("{}: example config invalid: {e}", h.name());
            }
        }
    }

    #[test]
    fn no_helper_panics_on_an_empty_contact() {
        let empty = Contact {
            id: "c".into(),
            ..Contact::default()
        };
        // Vendors point at a closed local port: no test reaches the internet.
        let mut env = testing::Env::new();
        env.vendors = Vendors::all_at("http://127.0.0.1:9");
        for h in HELPERS.iter() {
            let v: serde_json::Value = serde_json::from_str(h.example_config()).unwrap();
            // Any outcome or error is fine; a panic fails the test.
            let _ = env.block_on_run(*h, v, &empty);
        }
    }

    #[test]
    fn unknown_config_fields_are_rejected() {
        for h in HELPERS.iter() {
            let mut v: serde_json::Value = serde_json::from_str(h.example_config()).unwrap();
            v.as_object_mut()
                .unwrap()
                .insert("no_such_field".into(), serde_json::json!(1));
            assert!(
                h.build_json(&v).is_err(),
                "{} accepted an unknown field",
                h.name()
            );
        }
    }
}
