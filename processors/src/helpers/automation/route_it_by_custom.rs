//! route_it_by_custom: redirects to the URL mapped to the contact's value of one field,
//! e.g. `_Interest = "golf"` → the golf page; otherwise `fallback_url`. Values are trimmed
//! and, by default, compared case-insensitively (the old rebuild missed on trailing
//! spaces). A multi-select value (`golf,tennis`) matches on its first selected value that
//! has a route. The URL goes to output `redirect_url`, optionally to a field, with an
//! optional tag; the redirect itself is served elsewhere. Idempotent.

use super::route_it::{check_opt_name, check_url, deliver};
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Config of route_it_by_custom.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field whose value selects the route.
    pub field_name: String,
    /// Field value → URL.
    pub value_routes: BTreeMap<String, String>,
    /// URL when no value matches.
    pub fallback_url: Option<String>,
    /// Compare values ignoring case; default true.
    #[serde(default = "default_true")]
    pub case_insensitive: bool,
    /// Field that receives the chosen URL.
    pub save_to_field: Option<String>,
    /// Tag applied when a URL is chosen.
    pub apply_tag: Option<String>,
}

impl Config {
    fn norm(&self, v: &str) -> String {
        if self.case_insensitive {
            v.trim().to_lowercase()
        } else {
            v.trim().to_owned()
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.field_name.trim().is_empty(),
            "field_name",
            "is required",
        );
        check(
            &mut errors,
            self.value_routes.is_empty(),
            "value_routes",
            "must map at least one value",
        );
        let mut seen = std::collections::BTreeSet::new();
        for (value, url) in &self.value_routes {
            let at = format!("value_routes.{value}");
            check(
                &mut errors,
                value.trim().is_empty(),
                &at,
                "values must not be empty",
            );
            check(
                &mut errors,
                !seen.insert(self.norm(value)),
                &at,
                "duplicates another value once trimmed and case-folded",
            );
            check_url(&mut errors, &at, url);
        }
        if let Some(u) = &self.fallback_url {
            check_url(&mut errors, "fallback_url", u);
        }
        check_opt_name(&mut errors, "save_to_field", self.save_to_field.as_ref());
        check_opt_name(&mut errors, "apply_tag", self.apply_tag.as_ref());
        finish(errors)
    }
}

/// The route_it_by_custom helper.
pub struct RouteItByCustom;

impl Helper for RouteItByCustom {
    const NAME: &'static str = "route_it_by_custom";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Picks a redirect URL from the contact's value of one field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"field_name": "_Interest", "value_routes": {"golf": "https://example.com/golf", "tennis": "https://example.com/tennis"}, "fallback_url": "https://example.com/"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "redirect_url",
        "routing_reason",
        "field_name",
        "field_value",
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(RouteItByCustomStep(config)))
    }
}

struct RouteItByCustomStep(Config);

impl Step for RouteItByCustomStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let field = c.field_name.trim();
        let value = contact.field(field).unwrap_or("").trim();
        let routes: Vec<(String, &str)> = c
            .value_routes
            .iter()
            .map(|(k, u)| (c.norm(k), u.trim()))
            .collect();
        let lookup = |v: &str| {
            let v = c.norm(v);
            routes.iter().find(|(k, _)| *k == v).map(|(_, u)| *u)
        };
        let hit = lookup(value).map(|u| (u, value.to_owned())).or_else(|| {
            value
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .find_map(|p| lookup(p).map(|u| (u, p.trim().to_owned())))
        });
        let (url, reason) = match &hit {
            Some((u, v)) => (Some(*u), format!("{field} is {v:?}")),
            None if value.is_empty() => (c.fallback_url.as_deref(), format!("{field} is empty")),
            None => (c.fallback_url.as_deref(), format!("no route for {value:?}")),
        };
        Ok(deliver(
            contact,
            url.map(str::trim),
            &reason,
            c.save_to_field.as_deref(),
            c.apply_tag.as_deref(),
        )
        .with("field_name", field)
        .with("field_value", value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    fn cfg() -> serde_json::Value {
        json!({"field_name": "_Interest", "value_routes": {"Golf": "https://x.com/golf", "tennis": "https://x.com/tennis"}, "fallback_url": "https://x.com/", "save_to_field": "_Url", "apply_tag": "5"})
    }

    #[test]
    fn routes_on_the_trimmed_case_folded_value() {
        let out = run(
            &RouteItByCustom,
            cfg(),
            &contact(&[("_Interest", " golf ")], &[]),
        );
        assert_eq!(out.output["redirect_url"], "https://x.com/golf");
        assert_eq!(out.output["field_value"], "golf");
        assert_eq!(
            out.changes,
            vec![
                set("_Url", "https://x.com/golf"),
                Change::ApplyTag { tag_id: "5".into() }
            ]
        );
    }

    #[test]
    fn multi_select_values_match_the_first_routed_one() {
        let out = run(
            &RouteItByCustom,
            cfg(),
            &contact(&[("_Interest", "chess,Tennis,golf")], &[]),
        );
        assert_eq!(out.output["redirect_url"], "https://x.com/tennis");
    }

    #[test]
    fn empty_or_unknown_values_fall_back() {
        let out = run(
            &RouteItByCustom,
            cfg(),
            &contact(&[("_Interest", "  ")], &[]),
        );
        assert_eq!(out.output["redirect_url"], "https://x.com/");
        assert_eq!(out.output["routing_reason"], "_Interest is empty");
        let out = run(
            &RouteItByCustom,
            cfg(),
            &contact(&[("_Interest", "chess")], &[]),
        );
        assert_eq!(out.output["redirect_url"], "https://x.com/");
    }

    #[test]
    fn case_sensitive_matching_and_no_fallback_fails() {
        let cfg = json!({"field_name": "f", "value_routes": {"Golf": "https://x.com/golf"}, "case_insensitive": false});
        let out = run(
            &RouteItByCustom,
            cfg.clone(),
            &contact(&[("f", "golf")], &[]),
        );
        assert!(!out.success && out.changes.is_empty());
        assert!(!out.output.contains_key("redirect_url"));
        let out = run(&RouteItByCustom, cfg, &contact(&[("f", "Golf")], &[]));
        assert!(out.success);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &RouteItByCustom,
            json!({"field_name": "", "value_routes": {"a": "https://x.com", "A ": "notaurl"}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["field_name", "value_routes.A ", "value_routes.a"]);
        assert!(errs[2].message.contains("duplicates"));
        assert!(
            !config_errors(
                &RouteItByCustom,
                json!({"field_name": "f", "value_routes": {}})
            )
            .is_empty()
        );
        assert!(!config_errors(&RouteItByCustom, json!({"field_name": "f", "value_routes": {"a": "https://x.com"}, "fallback_url": "x"})).is_empty());
    }
}
