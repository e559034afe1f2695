//! email_validate_it: checks whether the contact's email is deliverable and writes the
//! status to `result_field`, firing the matching goal. The `basic` provider checks the
//! syntax (internationalised domains become punycode); `zerobounce` also asks ZeroBounce
//! (`GET /v2/validate?api_key=…&email=…&ip_address=`), whose verdict is cached for three
//! days per address (`cache_results`, default true). Statuses: `valid`, `invalid`,
//! `risky` (catch-all, spam trap, abuse), `disposable`, `role`, `unknown` (the mail
//! server could not be checked: no goal, nothing cached, so a later run checks again)
//! and `empty`. `invalid` and `empty` fire `invalid_goal`; `risky`, `disposable` and
//! `role` fire `risky_goal`. A malformed address never costs a lookup. Read-only, so it
//! also runs in a dry run; the API key never reaches messages or errors.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_email, default_true, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, error_chain, finish,
};
use crate::http::HttpError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who validates.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Syntax only (default).
    #[default]
    Basic,
    /// The ZeroBounce validation API.
    Zerobounce,
}

/// Config of email_validate_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `basic` (default) or `zerobounce`.
    #[serde(default)]
    pub validation_provider: Provider,
    /// ZeroBounce API key; required for `zerobounce`.
    pub api_key: Option<String>,
    /// The email field; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
    /// Field that receives the status.
    pub result_field: String,
    /// Goal for `valid`.
    pub valid_goal: Option<String>,
    /// Goal for `invalid` and `empty`.
    pub invalid_goal: Option<String>,
    /// Goal for `risky`, `disposable` and `role`.
    pub risky_goal: Option<String>,
    /// Reuse a provider verdict for three days; default true.
    #[serde(default = "default_true")]
    pub cache_results: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.validation_provider == Provider::Zerobounce && given(&self.api_key).is_none(),
            "api_key",
            "is required for zerobounce",
        );
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.result_field.trim().is_empty(),
            "result_field",
            "is required",
        );
        for (name, value) in [
            ("valid_goal", &self.valid_goal),
            ("invalid_goal", &self.invalid_goal),
            ("risky_goal", &self.risky_goal),
        ] {
            check(
                &mut errors,
                value.is_some() && given(value).is_none(),
                name,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The email_validate_it helper.
pub struct EmailValidateIt;

impl Helper for EmailValidateIt {
    const NAME: &'static str = "email_validate_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Checks the contact's email (syntax or ZeroBounce), writes the status to a field and fires a goal.";
    const EXAMPLE_CONFIG: &'static str = r#"{"validation_provider": "zerobounce", "api_key": "zb_key", "result_field": "_EmailStatus", "valid_goal": "emailValid", "invalid_goal": "emailInvalid"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "status",
        "reason",
        "email",
        "cache_hit",
        "catch_all",
        "did_you_mean",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ValidateStep { config }))
    }
}

struct ValidateStep {
    config: Config,
}

/// The address with its domain in punycode, if the syntax is acceptable.
fn syntax(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let Ok(url::Host::Domain(ascii)) = url::Host::parse(domain) else {
        return None;
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    let full = format!("{local}@{ascii}");
    (local_ok && domain_ok && full.len() <= 254).then_some(full)
}

/// The ZeroBounce answer, the parts used.
#[derive(Debug, Deserialize)]
struct ZeroBounce {
    #[serde(default)]
    status: String,
    #[serde(default)]
    sub_status: String,
    #[serde(default)]
    did_you_mean: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Our status and reason for a ZeroBounce status and sub-status.
fn classify(status: &str, sub: &str) -> (&'static str, String) {
    let reason = |r: &str| {
        if sub.is_empty() {
            r.to_owned()
        } else {
            sub.to_owned()
        }
    };
    match status {
        "valid" => ("valid", reason("valid")),
        "invalid" => ("invalid", reason("invalid")),
        "catch-all" => ("risky", "catch_all".into()),
        "spamtrap" | "abuse" => ("risky", status.into()),
        "do_not_mail" => match sub {
            "disposable" => ("disposable", sub.into()),
            "role_based" | "role_based_catch_all" => ("role", sub.into()),
            _ => ("risky", reason("do_not_mail")),
        },
        _ => ("unknown", reason("unknown")),
    }
}

impl ValidateStep {
    /// The provider verdict: `{status, reason, catch_all, did_you_mean}` and whether it
    /// came from the cache.
    async fn zerobounce(&self, ctx: &Ctx<'_>, email: &str) -> Result<(Value, bool), StepError> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(email.to_lowercase().as_bytes()));
        let cache_key = format!("{}/zerobounce/{digest}", EmailValidateIt::NAME);
        if self.config.cache_results
            && let Some(hit) = ctx.state.get(&cache_key).await?
        {
            return Ok((hit, true));
        }
        let key = given(&self.config.api_key).unwrap_or_default();
        let mut url = url::Url::parse(&ctx.vendors.url("email_validation", "/v2/validate"))
            .map_err(|e| StepError::Input(format!("email_validation base URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("api_key", key)
            .append_pair("email", email)
            .append_pair("ip_address", "");
        let resp = ctx
            .http
            .send(reqwest::Method::GET, url.as_str(), |r| r)
            .await
            .map_err(|e| masked(&e, key))?;
        let zb: ZeroBounce =
            serde_json::from_slice(&resp.body).map_err(|e| StepError::External {
                message: format!("unexpected ZeroBounce response: {e}"),
                retryable: false,
            })?;
        if let Some(err) = zb.error.filter(|e| !e.trim().is_empty()) {
            return Err(StepError::External {
                message: format!(
                    "ZeroBounce refused the request: {}",
                    err.replace(key, "***")
                ),
                retryable: false,
            });
        }
        let (status, reason) = classify(&zb.status, &zb.sub_status);
        let verdict = json!({"status": status, "reason": reason,
            "catch_all": zb.status == "catch-all",
            "did_you_mean": zb.did_you_mean.filter(|d| !d.trim().is_empty())});
        if self.config.cache_results && status != "unknown" {
            let expires = Some(ctx.now + chrono::Duration::days(3));
            ctx.state.put(&cache_key, verdict.clone(), expires).await?;
        }
        Ok((verdict, false))
    }
}

/// An HTTP error as a step error, with the API key (sent in the query) masked.
fn masked(e: &HttpError, secret: &str) -> StepError {
    let mut message = error_chain(e);
    if !secret.is_empty() {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        message = message.replace(&encoded, "***").replace(secret, "***");
    }
    StepError::External {
        message,
        retryable: e.retryable(),
    }
}

#[async_trait::async_trait]
impl AsyncStep for ValidateStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let raw = contact.field(c.email_field.trim()).map(str::trim);
        let (verdict, cache_hit) = match raw {
            None => (json!({"status": "empty", "reason": "empty"}), false),
            Some(e) => match syntax(e) {
                None => (json!({"status": "invalid", "reason": "format"}), false),
                Some(_) if c.validation_provider == Provider::Basic => {
                    (json!({"status": "valid", "reason": "syntax_only"}), false)
                }
                Some(normal) => self.zerobounce(ctx, &normal).await?,
            },
        };
        let status = verdict["status"].as_str().unwrap_or("unknown").to_owned();
        let goal = match status.as_str() {
            "valid" => given(&c.valid_goal),
            "invalid" | "empty" => given(&c.invalid_goal),
            "risky" | "disposable" | "role" => given(&c.risky_goal),
            _ => None,
        };
        let reason = verdict["reason"].as_str().unwrap_or_default().to_owned();
        Ok(Outcome::ok(format!("Email status: {status} ({reason})"))
            .set_field(contact, c.result_field.trim(), status.clone())
            .branch(contact, None, goal)
            .with("status", status)
            .with("reason", reason)
            .with("email", raw.unwrap_or_default())
            .with("cache_hit", cache_hit)
            .with("catch_all", verdict["catch_all"].as_bool().unwrap_or(false))
            .with("did_you_mean", verdict["did_you_mean"].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn zb_cfg() -> Value {
        json!({"validation_provider": "zerobounce", "api_key": "zb+key", "result_field": "_Status",
            "valid_goal": "ok", "invalid_goal": "bad", "risky_goal": "risky"})
    }

    fn goal(n: &str) -> Change {
        Change::AchieveGoal {
            call_name: n.into(),
        }
    }

    async fn setup(status: u16, body: Value) -> (MockVendor, Env) {
        let m = MockVendor::start(&[("GET", "/v2/validate", status, body)]).await;
        let env = Env::new().vendor("email_validation", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    fn answer(status: &str, sub: &str) -> Value {
        json!({"address": "ada@example.com", "status": status, "sub_status": sub,
            "free_email": false, "did_you_mean": null, "domain": "example.com",
            "mx_found": "true", "processed_at": "2026-03-15 12:00:00.000"})
    }

    #[tokio::test]
    async fn asks_zerobounce_and_fires_the_valid_goal() {
        let (m, env) = setup(200, answer("valid", "")).await;
        let c = contact(&[("email", " Ada@Example.com ")], &[]);
        let out = env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap();
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/v2/validate")
        );
        let q: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(req.query.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(q["api_key"], "zb+key");
        assert_eq!(q["email"], "Ada@example.com");
        assert_eq!(q["ip_address"], "");
        assert_eq!(out.changes, vec![set("_Status", "valid"), goal("ok")]);
        assert_eq!(out.output["cache_hit"], json!(false));
    }

    #[tokio::test]
    async fn statuses_map_to_the_richer_set() {
        for (zb, sub, status, g) in [
            ("invalid", "mailbox_not_found", "invalid", Some("bad")),
            ("catch-all", "", "risky", Some("risky")),
            ("do_not_mail", "disposable", "disposable", Some("risky")),
            ("do_not_mail", "role_based", "role", Some("risky")),
            ("spamtrap", "", "risky", Some("risky")),
            ("unknown", "timeout_exceeded", "unknown", None),
        ] {
            let (_m, env) = setup(200, answer(zb, sub)).await;
            let c = contact(&[("email", "ada@example.com")], &[]);
            let out = env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap();
            let mut expected = vec![set("_Status", status)];
            expected.extend(g.map(goal));
            assert_eq!(out.changes, expected, "{zb}/{sub}");
        }
    }

    #[tokio::test]
    async fn verdicts_are_cached_but_unknown_is_not() {
        let (m, mut env) = setup(200, answer("invalid", "")).await;
        let c = contact(&[("email", "ada@example.com")], &[]);
        env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap();
        env.execution_id = "e2".into();
        let out = env
            .run(
                &EmailValidateIt,
                zb_cfg(),
                &contact(&[("email", "ADA@example.com")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["cache_hit"], json!(true));
        assert_eq!(out.output["status"], json!("invalid"));
        assert_eq!(m.received().len(), 1);
        env.now += chrono::Duration::days(4);
        env.state.set_now(env.now);
        env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap();
        assert_eq!(m.received().len(), 2, "the cache expires after three days");
        m.route("GET", "/v2/validate", 200, answer("unknown", ""));
        let other = contact(&[("email", "bob@example.com")], &[]);
        env.run(&EmailValidateIt, zb_cfg(), &other).await.unwrap();
        env.run(&EmailValidateIt, zb_cfg(), &other).await.unwrap();
        assert_eq!(m.received().len(), 4);
    }

    #[tokio::test]
    async fn empty_and_malformed_addresses_never_call_the_api() {
        let (m, env) = setup(200, answer("valid", "")).await;
        let out = env
            .run(
                &EmailValidateIt,
                zb_cfg(),
                &contact(&[("email", "  ")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_Status", "empty"), goal("bad")]);
        for bad in [
            "ada",
            "ada@",
            "@x.com",
            "a..b@x.com",
            "ada@x",
            "ada@-x.com",
            "a b@x.com",
            "ada@1.2.3.4",
        ] {
            let out = env
                .run(&EmailValidateIt, zb_cfg(), &contact(&[("email", bad)], &[]))
                .await
                .unwrap();
            assert_eq!(out.output["reason"], json!("format"), "{bad}");
        }
        assert!(m.received().is_empty());
    }

    #[tokio::test]
    async fn basic_checks_syntax_and_handles_idn() {
        let cfg = json!({"result_field": "_Status", "valid_goal": "ok"});
        let env = Env::new();
        let out = env
            .run(
                &EmailValidateIt,
                cfg.clone(),
                &contact(&[("email", "jo@bücher.de")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.changes, vec![set("_Status", "valid"), goal("ok")]);
        assert_eq!(
            syntax("jo@bücher.de").as_deref(),
            Some("jo@xn--bcher-kva.de")
        );
        let out = env
            .run(
                &EmailValidateIt,
                cfg,
                &contact(&[("email", "jo@x"), ("_Status", "invalid")], &[]),
            )
            .await
            .unwrap();
        assert!(
            out.changes.is_empty(),
            "unchanged status, no goal configured"
        );
    }

    #[tokio::test]
    async fn vendor_errors_are_external_without_the_key() {
        let (_m, env) = setup(200, json!({"error": "Invalid API key zb+key"})).await;
        let c = contact(&[("email", "ada@example.com")], &[]);
        let err = env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if !message.contains("zb+key")),
            "{err:?}"
        );
        for (status, retryable) in [(400, false), (429, true), (500, true)] {
            let (_m, env) = setup(status, json!({})).await;
            let err = env.run(&EmailValidateIt, zb_cfg(), &c).await.unwrap_err();
            match err {
                StepError::External {
                    message,
                    retryable: r,
                } => {
                    assert_eq!(r, retryable, "{status}");
                    assert!(
                        !message.contains("zb%2Bkey") && !message.contains("zb+key"),
                        "{message}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn dry_runs_still_validate() {
        let (m, mut env) = setup(200, answer("valid", "")).await;
        env.dry_run = true;
        let out = env
            .run(
                &EmailValidateIt,
                zb_cfg(),
                &contact(&[("email", "ada@example.com")], &[]),
            )
            .await
            .unwrap();
        assert_eq!(out.output["status"], json!("valid"));
        assert_eq!(m.received().len(), 1, "a read-only lookup");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &EmailValidateIt,
            json!({"validation_provider": "zerobounce", "result_field": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["api_key", "result_field"]);
        assert!(!config_errors(&EmailValidateIt, json!({})).is_empty());
        assert!(
            !config_errors(
                &EmailValidateIt,
                json!({"result_field": "x", "validation_provider": "klean13"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &EmailValidateIt,
                json!({"result_field": "x", "risky_goal": " "})
            )
            .is_empty()
        );
    }
}
