//! hook_it: sends the contact to a customer's URL as a JSON POST (the catalog's outbound
//! webhook capability, §10 (c); the inbound CRM-event side of the Hook It family is a
//! separate concern). The body is `{contact_id, account_id, execution_id, fields, tags}`:
//! every field, or only the listed `fields` (a missing one is sent as `null`), and the tags
//! as id → name unless `include_tags` is off. Each request carries `Idempotency-Key:
//! <execution id>` so a receiver can drop a redelivered execution. The shared HTTP client
//! does the status check, bounded retries with backoff and the SSRF guard; a failure that
//! survives them becomes a retryable or final external error. Non-idempotent for
//! receivers that ignore the key.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Config of hook_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The receiving URL; http or https.
    pub url: String,
    /// Field keys to send; empty (default) sends every field.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Send the contact's tags; default true.
    #[serde(default = "default_true")]
    pub include_tags: bool,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Headers the helper sets itself.
const RESERVED: &[&str] = &["content-type", "content-length", "host", "idempotency-key"];

fn parse_header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_bytes(name.as_bytes()).ok()?,
        HeaderValue::from_str(value).ok()?,
    ))
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match url::Url::parse(self.url.trim()) {
            Err(e) => errors.push(FieldError::new("url", format!("is not a valid URL: {e}"))),
            Ok(u) => {
                check(
                    &mut errors,
                    !matches!(u.scheme(), "http" | "https"),
                    "url",
                    "must use http or https",
                );
                check(&mut errors, u.host().is_none(), "url", "must name a host");
                check(
                    &mut errors,
                    !u.username().is_empty() || u.password().is_some(),
                    "url",
                    "must not embed credentials; use headers",
                );
            }
        }
        check(
            &mut errors,
            self.fields.iter().any(|f| f.trim().is_empty()),
            "fields",
            "field keys must not be empty",
        );
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            check(
                &mut errors,
                parse_header(name, value).is_none(),
                &field,
                "is not a valid header name and value",
            );
            check(
                &mut errors,
                RESERVED.contains(&name.to_ascii_lowercase().as_str()),
                &field,
                "is set by the helper",
            );
        }
        finish(errors)
    }
}

/// The hook_it helper.
pub struct HookIt;

impl Helper for HookIt {
    const NAME: &'static str = "hook_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Posts the contact, or selected fields, as JSON to a webhook URL.";
    const EXAMPLE_CONFIG: &'static str = r#"{"url": "https://hooks.example.invalid/mfh/contact", "fields": ["email", "first_name"], "headers": {"Authorization": "Bearer token"}}"#;
    const OUTPUTS: &'static [&'static str] = &["status", "host", "fields_sent"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let headers = config
            .headers
            .iter()
            .filter_map(|(k, v)| parse_header(k, v))
            .collect();
        let host = url::Url::parse(config.url.trim())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Runnable::Async(Box::new(HookItStep {
            url: config.url.trim().to_owned(),
            host,
            fields: config.fields,
            include_tags: config.include_tags,
            headers,
        }))
    }
}

struct HookItStep {
    url: String,
    /// Reported instead of the URL, whose path or query may hold a secret.
    host: String,
    fields: Vec<String>,
    include_tags: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HookItStep {
    fn payload(&self, ctx: &Ctx<'_>, contact: &Contact) -> Value {
        let fields: Map<String, Value> = if self.fields.is_empty() {
            contact
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect()
        } else {
            self.fields
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        contact.fields.get(k).map_or(Value::Null, |v| json!(v)),
                    )
                })
                .collect()
        };
        let mut body = json!({"contact_id": contact.id, "account_id": ctx.account_id, "execution_id": ctx.execution_id, "fields": fields});
        if self.include_tags {
            body["tags"] = json!(contact.tags);
        }
        body
    }
}

/// An error with its whole source chain.
fn report(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[async_trait::async_trait]
impl AsyncStep for HookItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let body = self.payload(ctx, contact);
        let sent = body["fields"].as_object().map_or(0, Map::len);
        let response = ctx
            .http
            .send(reqwest::Method::POST, &self.url, |req| {
                let req = req.header("Idempotency-Key", ctx.execution_id).json(&body);
                self.headers
                    .iter()
                    .fold(req, |r, (k, v)| r.header(k.clone(), v.clone()))
            })
            .await
            .map_err(|e| StepError::External {
                message: report(&e),
                retryable: e.retryable(),
            })?;
        Ok(Outcome::ok(format!(
            "Sent contact to {} (HTTP {})",
            self.host, response.status
        ))
        .with("status", response.status)
        .with("host", self.host.clone())
        .with("fields_sent", sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact};
    use crate::http::{HttpClient, HttpConfig};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(Method, Uri, HeaderMap, Value)>>>;

    /// A receiver on 127.0.0.1:0 that records each request and answers `status`.
    async fn receiver(status: StatusCode) -> (String, Seen) {
        let seen = Seen::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |m: Method, u: Uri, h: HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push((
                        m,
                        u,
                        h,
                        serde_json::from_slice(&body).unwrap_or(Value::Null),
                    ));
                    status
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    async fn send(http: &HttpClient, cfg: Value, c: &Contact) -> Result<Outcome, StepError> {
        let mut env = crate::helpers::testing::Env::new();
        env.execution_id = "exec-77".into();
        env.account_id = "acct-1".into();
        env.http = http.clone();
        env.run(&HookIt, cfg, c).await
    }

    #[tokio::test]
    async fn posts_the_whole_contact_with_an_idempotency_key() {
        let (base, seen) = receiver(StatusCode::OK).await;
        let cfg =
            json!({"url": format!("{base}/hooks/in?src=mfh"), "headers": {"X-Token": "s3cret"}});
        let out = send(
            &HttpClient::for_tests(),
            cfg,
            &contact(&[("email", "a@b.co"), ("city", "Austin")], &["7"]),
        )
        .await
        .unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(
            (out.output["status"].clone(), out.output["host"].clone()),
            (json!(200), json!("127.0.0.1"))
        );
        let seen = seen.lock().unwrap();
        let (method, uri, headers, body) = &seen[0];
        assert_eq!(
            (method, uri.to_string().as_str()),
            (&Method::POST, "/hooks/in?src=mfh")
        );
        assert_eq!(headers["idempotency-key"], "exec-77");
        assert_eq!(headers["x-token"], "s3cret");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            *body,
            json!({"contact_id": "c-1", "account_id": "acct-1", "execution_id": "exec-77",
            "fields": {"email": "a@b.co", "city": "Austin"}, "tags": {"7": "7"}})
        );
    }

    #[tokio::test]
    async fn sends_only_selected_fields_and_can_omit_tags() {
        let (base, seen) = receiver(StatusCode::NO_CONTENT).await;
        let cfg = json!({"url": base, "fields": ["email", "phone"], "include_tags": false});
        let out = send(
            &HttpClient::for_tests(),
            cfg,
            &contact(&[("email", "a@b.co"), ("city", "Austin")], &["7"]),
        )
        .await
        .unwrap();
        assert_eq!(out.output["fields_sent"], json!(2));
        let body = seen.lock().unwrap()[0].3.clone();
        assert_eq!(body["fields"], json!({"email": "a@b.co", "phone": null}));
        assert!(body.get("tags").is_none());
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_retryable() {
        let (base, seen) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
        let err = send(
            &HttpClient::for_tests(),
            json!({"url": base}),
            &contact(&[], &[]),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let seen = seen.lock().unwrap();
        assert!(seen.len() > 1 && seen.iter().all(|r| r.2["idempotency-key"] == "exec-77"));
    }

    #[tokio::test]
    async fn client_errors_and_blocked_addresses_are_final() {
        let (base, seen) = receiver(StatusCode::BAD_REQUEST).await;
        let err = send(
            &HttpClient::for_tests(),
            json!({"url": base.clone()}),
            &contact(&[], &[]),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                StepError::External {
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
        let guarded = HttpClient::new(HttpConfig::default()).unwrap();
        let err = send(&guarded, json!({"url": base}), &contact(&[], &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("blocked")),
            "{err:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        for url in [
            "not a url",
            "ftp://example.com/x",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
        ] {
            assert!(
                !config_errors(&HookIt, json!({"url": url})).is_empty(),
                "{url}"
            );
        }
        let errs = config_errors(
            &HookIt,
            json!({"url": "https://example.com", "fields": [""],
            "headers": {"Idempotency-Key": "x", "Bad Name": "v", "X-Ok": "line\nbreak"}}),
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(config_errors(&HookIt, json!({"url": "http://example.com:8080/in"})).is_empty());
        assert!(!config_errors(&HookIt, json!({})).is_empty());
    }
}
