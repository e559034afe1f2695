//! route_it: a smart link. An ordered list of routes, each with conditions on the contact
//! (has tag, lacks tag, field test) joined by `all` or `any`, is evaluated top-down; the
//! first matching route gives the redirect URL, else `fallback_url` (the old rebuild always
//! took route 0). A route may list several `urls`: each match then takes the next one in
//! turn, from a rotation counter in platform state shared by every execution of the
//! instance (a redelivered execution takes the same URL). The URL goes to output
//! `redirect_url`, optionally to a field, with an optional tag; the HTTP redirect itself is
//! served elsewhere. `append_contact_params` adds `contactId` and `email` for
//! personalised landing pages.
//!
//! This file also holds what every redirect helper shares: URL validation, field tests,
//! visitor geolocation and [`deliver`] ("save the URL, apply the tag, output it").

use crate::helpers::geo::{self, Location, Lookup};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// How a field test compares the contact's value with `value` (case-insensitive).
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldOp {
    /// Equal after trimming.
    Equals,
    /// Not equal (an empty field is not equal).
    NotEquals,
    /// Contains `value`.
    Contains,
    /// Does not contain `value` (an empty field does not).
    NotContains,
    /// Starts with `value`.
    StartsWith,
    /// Ends with `value`.
    EndsWith,
    /// The field is not empty.
    Exists,
    /// The field is empty.
    NotExists,
    /// Numerically greater than `value`.
    Gt,
    /// Numerically less than `value`.
    Lt,
}

/// A test of one contact field.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldTest {
    /// Field key.
    pub field: String,
    /// Comparison.
    pub op: FieldOp,
    /// Value compared with; unused by `exists`/`not_exists`.
    #[serde(default)]
    pub value: String,
}

impl FieldTest {
    /// Adds this test's problems to `errors`, naming fields under `at`.
    pub(crate) fn check(&self, errors: &mut Vec<FieldError>, at: &str) {
        check(
            errors,
            self.field.trim().is_empty(),
            &format!("{at}.field"),
            "is required",
        );
        let needs_value = !matches!(self.op, FieldOp::Exists | FieldOp::NotExists);
        check(
            errors,
            needs_value && self.value.trim().is_empty(),
            &format!("{at}.value"),
            "is required for this op",
        );
        check(
            errors,
            matches!(self.op, FieldOp::Gt | FieldOp::Lt)
                && self.value.trim().parse::<f64>().is_err(),
            &format!("{at}.value"),
            "must be a number for gt/lt",
        );
    }

    /// Whether the contact passes the test.
    pub(crate) fn matches(&self, contact: &Contact) -> bool {
        let have = contact.field(&self.field).map(|v| v.trim().to_lowercase());
        let want = self.value.trim().to_lowercase();
        let num = |s: &str| s.trim().parse::<f64>().ok();
        match (self.op, have.as_deref()) {
            (FieldOp::Exists, v) => v.is_some(),
            (FieldOp::NotExists, v) => v.is_none(),
            (FieldOp::NotEquals, v) => v != Some(want.as_str()),
            (FieldOp::NotContains, v) => !v.is_some_and(|v| v.contains(&want)),
            (_, None) => false,
            (FieldOp::Equals, Some(v)) => v == want,
            (FieldOp::Contains, Some(v)) => v.contains(&want),
            (FieldOp::StartsWith, Some(v)) => v.starts_with(&want),
            (FieldOp::EndsWith, Some(v)) => v.ends_with(&want),
            (FieldOp::Gt, Some(v)) => matches!((num(v), num(&want)), (Some(a), Some(b)) if a > b),
            (FieldOp::Lt, Some(v)) => matches!((num(v), num(&want)), (Some(a), Some(b)) if a < b),
        }
    }
}

/// Adds an error unless `url` is an absolute http(s) URL with a host.
pub(crate) fn check_url(errors: &mut Vec<FieldError>, field: &str, url: &str) {
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => errors.push(FieldError::new(field, "must be an absolute http(s) URL")),
    }
}

/// Adds an error when an optional field key or tag id is set but blank.
pub(crate) fn check_opt_name(errors: &mut Vec<FieldError>, field: &str, value: Option<&String>) {
    check(
        errors,
        value.is_some_and(|v| v.trim().is_empty()),
        field,
        "must not be empty when set",
    );
}

/// The routing result every redirect helper returns: the URL in `redirect_url` with the
/// reason, saved to `save_to_field` and marked with `apply_tag` when set. Without a URL
/// (no route matched and no fallback) the outcome fails and nothing is written.
pub(crate) fn deliver(
    contact: &Contact,
    url: Option<&str>,
    reason: &str,
    save_to_field: Option<&str>,
    apply_tag: Option<&str>,
) -> Outcome {
    let Some(url) = url else {
        return Outcome::failed(format!(
            "No route matched ({reason}) and no fallback URL is configured"
        ))
        .with("routing_reason", reason);
    };
    let mut out = Outcome::ok(format!("Redirect to {url} ({reason})"))
        .with("redirect_url", url)
        .with("routing_reason", reason);
    if let Some(f) = save_to_field.filter(|f| !f.trim().is_empty()) {
        out = out.set_field(contact, f, url);
    }
    out.branch(contact, apply_tag, None)
}

/// Where a visitor is, or why that is unknown (`no_ip`, `invalid_ip`, `reserved_ip`,
/// `unknown_location`, `geo_unavailable`).
pub(crate) enum Visitor {
    /// Located.
    Found(Box<Location>),
    /// Not located, with the reason and a detail for the log.
    Unlocated(&'static str, String),
}

/// Locates the visitor: the IP comes from the trigger payload (`{"ip": "…"}`, the live
/// click) or else from `ip_field` on the contact. With `tolerate_outage` a failing
/// geolocation service yields `geo_unavailable` (a redirect must still go somewhere);
/// otherwise its error is returned so the execution is retried.
pub(crate) async fn locate_visitor(
    ctx: &Ctx<'_>,
    contact: &Contact,
    ip_field: Option<&str>,
    tolerate_outage: bool,
) -> Result<Visitor, StepError> {
    let from_input = ctx
        .input
        .and_then(|i| i.get("ip"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let Some(raw) = from_input.or_else(|| ip_field.and_then(|f| contact.field(f))) else {
        return Ok(Visitor::Unlocated("no_ip", "no visitor IP".into()));
    };
    let Ok(ip) = geo::parse_ip(raw) else {
        return Ok(Visitor::Unlocated(
            "invalid_ip",
            format!("{raw:?} is not an IP address"),
        ));
    };
    match geo::locate(ctx, ip).await {
        Ok(Lookup::Found(l)) => Ok(Visitor::Found(l)),
        Ok(Lookup::Reserved) => Ok(Visitor::Unlocated(
            "reserved_ip",
            format!("{ip} is a private or reserved address"),
        )),
        Ok(Lookup::Unknown(m)) => Ok(Visitor::Unlocated("unknown_location", m)),
        Err(StepError::External { message, .. }) if tolerate_outage => {
            Ok(Visitor::Unlocated("geo_unavailable", message))
        }
        Err(e) => Err(e),
    }
}

/// Whether `wanted` names the location's region: its code (`TX`), name (`Texas`) or
/// ISO 3166-2 code (`US-TX`), case-insensitively.
pub(crate) fn region_matches(loc: &Location, wanted: &str) -> bool {
    let w = wanted.trim();
    !w.is_empty()
        && (w.eq_ignore_ascii_case(&loc.region)
            || w.eq_ignore_ascii_case(&loc.region_name)
            || w.eq_ignore_ascii_case(&format!("{}-{}", loc.country_code, loc.region)))
}

/// Adds an error for each key of `keys` that is not a two-letter country code.
pub(crate) fn check_country_codes<'a>(
    errors: &mut Vec<FieldError>,
    field: &str,
    keys: impl Iterator<Item = &'a String>,
) {
    for k in keys {
        check(
            errors,
            k.trim().len() != 2 || !k.trim().chars().all(|c| c.is_ascii_alphabetic()),
            field,
            &format!("{k:?} is not an ISO 3166-1 alpha-2 country code"),
        );
    }
}

/// "City, Region, Country" from the parts that are known.
pub(crate) fn location_string(loc: &Location) -> String {
    [&loc.city, &loc.region_name, &loc.country]
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a route's conditions combine.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Every condition must hold (default).
    #[default]
    All,
    /// One condition suffices.
    Any,
}

/// A route condition.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The contact has the tag.
    HasTag {
        /// Tag id.
        tag_id: String,
    },
    /// The contact lacks the tag.
    LacksTag {
        /// Tag id.
        tag_id: String,
    },
    /// A field test.
    Field {
        /// Field key.
        field: String,
        /// Comparison.
        op: FieldOp,
        /// Value compared with.
        #[serde(default)]
        value: String,
    },
}

impl Condition {
    fn test(&self) -> Option<FieldTest> {
        match self {
            Self::Field { field, op, value } => Some(FieldTest {
                field: field.clone(),
                op: *op,
                value: value.clone(),
            }),
            _ => None,
        }
    }

    fn holds(&self, contact: &Contact) -> bool {
        match self {
            Self::HasTag { tag_id } => contact.has_tag(tag_id.trim()),
            Self::LacksTag { tag_id } => !contact.has_tag(tag_id.trim()),
            Self::Field { .. } => self.test().is_some_and(|t| t.matches(contact)),
        }
    }
}

/// One route.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Name reported as `matched_label`.
    #[serde(default)]
    pub label: String,
    /// The URL; or use `urls`.
    #[serde(alias = "redirectUrl")]
    pub redirect_url: Option<String>,
    /// Several URLs taken in turn on each match.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Conditions; none means the route always matches.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `all` (default) or `any`.
    #[serde(default, rename = "match")]
    pub match_mode: Match,
}

impl Route {
    fn urls(&self) -> Vec<&str> {
        self.redirect_url
            .iter()
            .chain(&self.urls)
            .map(|u| u.trim())
            .collect()
    }

    fn matches(&self, contact: &Contact) -> bool {
        match self.match_mode {
            Match::All => self.conditions.iter().all(|c| c.holds(contact)),
            Match::Any => {
                self.conditions.is_empty() || self.conditions.iter().any(|c| c.holds(contact))
            }
        }
    }
}

/// Config of route_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Routes, evaluated top-down; the first match wins.
    pub routes: Vec<Route>,
    /// URL when no route matches.
    pub fallback_url: String,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
    /// Add `contactId` and `email` query parameters; default false.
    #[serde(default)]
    pub append_contact_params: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.routes.is_empty(),
            "routes",
            "must list at least one route",
        );
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            check(
                &mut errors,
                r.redirect_url.is_some() != r.urls.is_empty(),
                &format!("{at}.redirect_url"),
                "set exactly one of redirect_url and urls",
            );
            for u in r.urls() {
                check_url(&mut errors, &format!("{at}.redirect_url"), u);
            }
            for (j, c) in r.conditions.iter().enumerate() {
                let cat = format!("{at}.conditions[{j}]");
                match c {
                    Condition::HasTag { tag_id } | Condition::LacksTag { tag_id } => check(
                        &mut errors,
                        tag_id.trim().is_empty(),
                        &format!("{cat}.tag_id"),
                        "is required",
                    ),
                    Condition::Field { .. } => {
                        if let Some(t) = c.test() {
                            t.check(&mut errors, &cat);
                        }
                    }
                }
            }
        }
        check_url(&mut errors, "fallback_url", &self.fallback_url);
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it helper.
pub struct RouteIt;

impl Helper for RouteIt {
    const NAME: &'static str = "route_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL from the first route whose tag and field conditions the contact meets.";
    const EXAMPLE_CONFIG: &'static str = r#"{"routes": [{"label": "customers", "redirect_url": "https://example.com/vip", "conditions": [{"type": "has_tag", "tag_id": "101"}]}, {"label": "texas", "urls": ["https://example.com/tx-a", "https://example.com/tx-b"], "conditions": [{"type": "field", "field": "state", "op": "equals", "value": "TX"}]}], "fallback_url": "https://example.com/", "save_to_field": "_LastRoute"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "routing_reason",
        "matched_label",
        "matched_index",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(RouteItStep(config)))
    }
}

struct RouteItStep(Config);

fn with_contact_params(url: &str, contact: &Contact) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_owned();
    };
    u.query_pairs_mut()
        .append_pair("contactId", &contact.id)
        .append_pair("email", contact.field("email").unwrap_or(""));
    u.to_string()
}

#[async_trait::async_trait]
impl AsyncStep for RouteItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let hit = c
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(contact));
        let (url, reason, label, index) = match hit {
            Some((i, r)) => {
                let urls = r.urls();
                let pick = if urls.len() > 1 {
                    let key = format!("route_it/{}/{i}", ctx.instance);
                    let n = ctx.state.incr(&key, 1, ctx.execution_id, None).await?;
                    usize::try_from(n - 1).unwrap_or(0) % urls.len()
                } else {
                    0
                };
                let url = urls.get(pick).copied().unwrap_or(c.fallback_url.trim());
                (
                    url,
                    format!("route {i} matched"),
                    r.label.clone(),
                    Value::from(i),
                )
            }
            None => (
                c.fallback_url.trim(),
                "no route matched; fallback".to_owned(),
                String::new(),
                Value::Null,
            ),
        };
        let url = if c.append_contact_params {
            with_contact_params(url, contact)
        } else {
            url.to_owned()
        };
        Ok(deliver(
            contact,
            Some(&url),
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        )
        .with("matched_label", label)
        .with("matched_index", index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn cfg() -> Value {
        json!({"routes": [
            {"label": "vip", "redirect_url": "https://x.com/vip", "conditions": [{"type": "has_tag", "tag_id": "1"}, {"type": "lacks_tag", "tag_id": "2"}]},
            {"label": "tx", "redirect_url": "https://x.com/tx", "match": "any", "conditions": [{"type": "field", "field": "state", "op": "equals", "value": "tx"}, {"type": "field", "field": "score", "op": "gt", "value": "50"}]}
        ], "fallback_url": "https://x.com/", "save_to_field": "_Route", "apply_tag": "9"})
    }

    #[tokio::test]
    async fn the_first_matching_route_wins_not_route_zero() {
        let env = Env::new();
        let out = env
            .run(&RouteIt, cfg(), &contact(&[("state", " TX ")], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["redirect_url"], "https://x.com/tx");
        assert_eq!(out.output["matched_label"], "tx");
        assert_eq!(out.output["matched_index"], 1);
        assert_eq!(
            out.changes,
            vec![
                set("_Route", "https://x.com/tx"),
                Change::ApplyTag { tag_id: "9".into() }
            ]
        );
        let any = env
            .run(&RouteIt, cfg(), &contact(&[("score", "51")], &[]))
            .await
            .unwrap();
        assert_eq!(any.output["redirect_url"], "https://x.com/tx");
        let vip = env
            .run(&RouteIt, cfg(), &contact(&[("state", "TX")], &["1"]))
            .await
            .unwrap();
        assert_eq!(vip.output["redirect_url"], "https://x.com/vip");
    }

    #[tokio::test]
    async fn all_conditions_must_hold_else_fallback() {
        let env = Env::new();
        let out = env
            .run(&RouteIt, cfg(), &contact(&[("score", "50")], &["1", "2"]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(out.output["redirect_url"], "https://x.com/");
        assert_eq!(out.output["matched_index"], Value::Null);
        assert_eq!(out.output["routing_reason"], "no route matched; fallback");
    }

    #[tokio::test]
    async fn several_urls_rotate_once_per_execution() {
        let cfg = json!({"routes": [{"urls": ["https://x.com/a", "https://x.com/b", "https://x.com/c"]}], "fallback_url": "https://x.com/"});
        let mut env = Env::new();
        let mut seen = Vec::new();
        for i in 0..4 {
            env.execution_id = format!("e{i}");
            let out = env
                .run(&RouteIt, cfg.clone(), &contact(&[], &[]))
                .await
                .unwrap();
            seen.push(out.output["redirect_url"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            seen,
            [
                "https://x.com/a",
                "https://x.com/b",
                "https://x.com/c",
                "https://x.com/a"
            ]
        );
        let again = env.run(&RouteIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(again.output["redirect_url"], "https://x.com/a");
    }

    #[tokio::test]
    async fn contact_params_are_appended_and_saved_url_is_not_rewritten() {
        let cfg = json!({"routes": [{"redirect_url": "https://x.com/p?src=mail"}], "fallback_url": "https://x.com/", "append_contact_params": true, "save_to_field": "u"});
        let url = "https://x.com/p?src=mail&contactId=c-1&email=a%2Bb%40x.com";
        let c = contact(&[("email", "a+b@x.com"), ("u", url)], &[]);
        let out = Env::new().run(&RouteIt, cfg, &c).await.unwrap();
        assert_eq!(out.output["redirect_url"], url);
        assert!(out.changes.is_empty());
    }

    #[test]
    fn field_tests_treat_empty_values_as_missing() {
        let t = |op, value: &str| FieldTest {
            field: "f".into(),
            op,
            value: value.into(),
        };
        let empty = contact(&[("f", "  ")], &[]);
        assert!(t(FieldOp::NotExists, "").matches(&empty));
        assert!(!t(FieldOp::Exists, "").matches(&empty));
        assert!(t(FieldOp::NotEquals, "x").matches(&empty));
        assert!(t(FieldOp::NotContains, "x").matches(&empty));
        assert!(!t(FieldOp::Lt, "5").matches(&empty));
        let c = contact(&[("f", "Google Ads")], &[]);
        assert!(t(FieldOp::StartsWith, "google").matches(&c));
        assert!(t(FieldOp::EndsWith, "ADS").matches(&c));
        assert!(!t(FieldOp::Gt, "1").matches(&c));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let errs = config_errors(
            &RouteIt,
            json!({"routes": [{"redirect_url": "ftp://x", "conditions": [{"type": "field", "field": "", "op": "gt", "value": "x"}, {"type": "has_tag", "tag_id": " "}]}], "fallback_url": "nope"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "routes[0].redirect_url",
                "routes[0].conditions[0].field",
                "routes[0].conditions[0].value",
                "routes[0].conditions[1].tag_id",
                "fallback_url"
            ]
        );
        assert!(
            !config_errors(
                &RouteIt,
                json!({"routes": [], "fallback_url": "https://x.com"})
            )
            .is_empty()
        );
        assert!(!config_errors(&RouteIt, json!({"routes": [{"redirect_url": "https://x.com/a", "urls": ["https://x.com/b"]}], "fallback_url": "https://x.com"})).is_empty());
        assert!(!config_errors(&RouteIt, json!({"routes": [{"redirect_url": "https://x.com/a", "conditions": [{"type": "is_vip"}]}], "fallback_url": "https://x.com"})).is_empty());
        assert!(!config_errors(&RouteIt, json!({"routes": [{"redirect_url": "https://x.com/a", "conditions": [{"type": "has_tag", "tag_id": "1", "tag": "2"}]}], "fallback_url": "https://x.com"})).is_empty());
    }
}
