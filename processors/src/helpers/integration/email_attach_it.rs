//! email_attach_it: fetches a file from a (templated) URL and keeps it on file for the
//! contact in the account's platform storage, so a campaign email or a person can send
//! it. The download goes through the shared HTTP client (SSRF guard, timeouts, retries),
//! is refused above `max_size_mb`, and must have an allowed extension and not look like
//! an executable (checked from its first bytes, as the client reports no content type).
//! The file is stored at `email_attach_it/<contact id>/<URL hash>/<file name>`; with
//! `dedupe` (default) a URL already stored for the contact is not fetched again, which
//! makes re-runs idempotent. The stored key can be saved to a field, and a tag and/or
//! goal mark success. Messages name only the host: a URL may carry a token.

use crate::connectors::Capability;
use crate::helpers::defaults::{default_true, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once, template,
};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

/// Config of email_attach_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file's URL; a `{{field}}` template.
    pub file_url: String,
    /// File name template; default the URL's last path segment.
    pub filename: Option<String>,
    /// Largest file accepted, in MB (1–100); default 10.
    #[serde(default = "default_max")]
    pub max_size_mb: u32,
    /// Accepted file extensions, lower case without the dot.
    #[serde(default = "default_extensions")]
    pub allowed_extensions: Vec<String>,
    /// Skip the download when this URL is already stored for the contact; default true.
    #[serde(default = "default_true")]
    pub dedupe: bool,
    /// Field that receives the stored file's key.
    pub save_key_to: Option<String>,
    /// Tag applied on success.
    pub success_tag: Option<String>,
    /// API goal achieved on success.
    pub success_goal: Option<String>,
}

const fn default_max() -> u32 {
    10
}
fn default_extensions() -> Vec<String> {
    [
        "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "csv", "txt", "rtf", "png", "jpg",
        "jpeg", "gif", "zip", "ics",
    ]
    .map(String::from)
    .to_vec()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let url = self.file_url.trim();
        check(&mut errors, url.is_empty(), "file_url", "is required");
        let literal_ok = url.contains("{{")
            || url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        check(
            &mut errors,
            !url.is_empty() && !literal_ok,
            "file_url",
            "must be an http(s) URL or a template",
        );
        check(
            &mut errors,
            !(1..=100).contains(&self.max_size_mb),
            "max_size_mb",
            "must be between 1 and 100",
        );
        check(
            &mut errors,
            self.allowed_extensions.is_empty(),
            "allowed_extensions",
            "must list at least one extension",
        );
        check(
            &mut errors,
            self.allowed_extensions
                .iter()
                .any(|e| e.trim().trim_start_matches('.').is_empty()),
            "allowed_extensions",
            "extensions must not be empty",
        );
        for (name, value) in [
            ("filename", &self.filename),
            ("save_key_to", &self.save_key_to),
            ("success_tag", &self.success_tag),
            ("success_goal", &self.success_goal),
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

/// The email_attach_it helper.
pub struct EmailAttachIt;

impl Helper for EmailAttachIt {
    const NAME: &'static str = "email_attach_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Downloads a file from a URL, within a size limit, and keeps it on file for the contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"file_url": "https://files.example.com/invoices/{{_InvoiceId}}.pdf", "max_size_mb": 5, "save_key_to": "_AttachmentKey", "success_goal": "attachmentReady"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["filename", "size_bytes", "file_key", "sha256", "deduped"];
    const REQUIRES: &'static [Capability] =
        &[Capability::Fields, Capability::Tags, Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(AttachStep { config }))
    }
}

struct AttachStep {
    config: Config,
}

/// Decodes `%XX` escapes of a URL path segment.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A file name safe for storage: no separators or control characters, at most 120
/// characters, never empty.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').trim();
    if cleaned.is_empty() {
        "attachment".into()
    } else {
        cleaned
            .chars()
            .rev()
            .take(120)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }
}

/// Whether the bytes start like a native executable or a script.
fn looks_executable(body: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"MZ",
        b"\x7fELF",
        b"#!",
        b"\xcf\xfa\xed\xfe",
        b"\xce\xfa\xed\xfe",
    ];
    MAGIC.iter().any(|m| body.starts_with(m))
}

#[async_trait::async_trait]
impl AsyncStep for AttachStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let rendered = template::render(c.file_url.trim(), contact);
        let url = match url::Url::parse(rendered.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => return Ok(Outcome::failed("The file URL is not a valid http(s) URL")),
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let from_url = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(percent_decode)
            .unwrap_or_default();
        let filename = safe_name(&match given(&c.filename) {
            Some(t) => template::render(t, contact),
            None => from_url,
        });
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_lowercase())
            .unwrap_or_default();
        let allowed = c
            .allowed_extensions
            .iter()
            .any(|a| a.trim().trim_start_matches('.').eq_ignore_ascii_case(&ext));
        if ext.is_empty() || !allowed {
            return Ok(Outcome::failed(format!(
                "File type .{ext} of {filename} is not allowed"
            )));
        }
        let url_hash = hex::encode(&sha2::Sha256::digest(url.as_str().as_bytes())[..8]);
        let path = Path::from_iter([
            "email_attach_it",
            contact.id.as_str(),
            url_hash.as_str(),
            filename.as_str(),
        ]);
        let key = path.to_string();
        let finish_ok = |out: Outcome, size: u64, sha: &str, deduped: bool| {
            let out = match given(&c.save_key_to) {
                Some(f) => out.set_field(contact, f, key.clone()),
                None => out,
            };
            out.branch(contact, given(&c.success_tag), given(&c.success_goal))
                .with("filename", filename.clone())
                .with("size_bytes", size)
                .with("file_key", key.clone())
                .with("sha256", sha)
                .with("deduped", deduped)
        };
        let cap = u64::from(c.max_size_mb) * 1024 * 1024;
        let fetch_url = url.to_string();
        let dedupe = c.dedupe;
        let stored = once(ctx, "email attachment", || async move {
            if dedupe {
                match ctx.files.head(&path).await {
                    Ok(meta) => return Ok(json!({"size": meta.size, "deduped": true})),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(storage_error(&e)),
                }
            }
            let resp = ctx
                .http
                .send(reqwest::Method::GET, &fetch_url, |r| r)
                .await?;
            let size = resp.body.len() as u64;
            if size > cap {
                return Ok(
                    json!({"rejected": format!("is {size} bytes, over the {cap}-byte limit")}),
                );
            }
            if size == 0 {
                return Ok(json!({"rejected": "is empty"}));
            }
            if looks_executable(&resp.body) {
                return Ok(json!({"rejected": "looks like an executable"}));
            }
            let sha = hex::encode(sha2::Sha256::digest(&resp.body));
            ctx.files
                .put(&path, resp.body.into())
                .await
                .map_err(|e| storage_error(&e))?;
            Ok(json!({"size": size, "sha256": sha}))
        })
        .await?;
        let Some(stored) = stored else {
            return Ok(Outcome::ok(format!(
                "Would download {filename} from {host} (up to {} MB)",
                c.max_size_mb
            ))
            .with("filename", filename.clone()));
        };
        if let Some(why) = stored["rejected"].as_str() {
            return Ok(Outcome::failed(format!("The file from {host} {why}"))
                .with("filename", filename.clone()));
        }
        let size = stored["size"].as_u64().unwrap_or_default();
        let sha = stored["sha256"].as_str().unwrap_or_default();
        let deduped = stored["deduped"].as_bool().unwrap_or(false);
        let out = Outcome::ok(if deduped {
            format!("{filename} from {host} is already on file")
        } else {
            format!("Stored {filename} ({size} bytes) from {host}")
        });
        Ok(finish_ok(out, size, sha, deduped))
    }
}

fn storage_error(e: &object_store::Error) -> StepError {
    StepError::External {
        message: format!("file storage: {e}"),
        retryable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};
    use crate::http::{HttpClient, HttpConfig};
    use serde_json::Value;

    async fn setup(status: u16, body: Value) -> (MockVendor, Env) {
        let m = MockVendor::start(&[("GET", "/files/inv-7.pdf", status, body)]).await;
        let env = Env::new();
        env.state.set_now(env.now);
        (m, env)
    }

    /// A server answering every request with `body` as raw bytes (the mock vendor only
    /// answers JSON).
    async fn raw_server(body: &'static [u8]) -> String {
        let app = axum::Router::new().fallback(move || async move { body });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn cfg(m: &MockVendor) -> Value {
        json!({"file_url": format!("{}/files/{{{{_Inv}}}}.pdf?token=s3cret", m.base),
            "save_key_to": "_Key", "success_tag": "7", "success_goal": "fileReady"})
    }

    fn stored_path(c: &Contact, url: &str, name: &str) -> Path {
        let hash = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
        Path::from_iter(["email_attach_it", c.id.as_str(), hash.as_str(), name])
    }

    #[tokio::test]
    async fn downloads_and_stores_the_file_for_the_contact() {
        let (m, env) = setup(200, json!({"pdf": "body"})).await;
        let c = contact(&[("_Inv", "inv-7")], &[]);
        let out = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap();
        assert!(out.success, "{}", out.message);
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.query.as_str()),
            ("GET", "token=s3cret")
        );
        let url = format!("{}/files/inv-7.pdf?token=s3cret", m.base);
        let path = stored_path(&c, &url, "inv-7.pdf");
        let bytes = env.files.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), br#"{"pdf":"body"}"#);
        assert_eq!(
            out.changes,
            vec![
                set("_Key", path.as_ref()),
                Change::ApplyTag { tag_id: "7".into() },
                Change::AchieveGoal {
                    call_name: "fileReady".into()
                }
            ]
        );
        assert_eq!(out.output["size_bytes"], json!(14));
        assert_eq!(
            out.output["sha256"],
            json!(hex::encode(sha2::Sha256::digest(&bytes)))
        );
        assert!(!out.message.contains("s3cret"));
    }

    #[tokio::test]
    async fn a_stored_url_is_not_fetched_again_and_reruns_use_the_journal() {
        let (m, mut env) = setup(200, json!("x")).await;
        let c = contact(&[("_Inv", "inv-7")], &[]);
        let first = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap();
        let again = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap();
        assert_eq!((m.received().len(), first), (1, again));
        env.execution_id = "exec-2".into();
        let later = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap();
        assert_eq!(m.received().len(), 1);
        assert_eq!(later.output["deduped"], json!(true));
        let mut no_dedupe = cfg(&m);
        no_dedupe["dedupe"] = json!(false);
        env.execution_id = "exec-3".into();
        env.run(&EmailAttachIt, no_dedupe, &c).await.unwrap();
        assert_eq!(m.received().len(), 2);
    }

    #[tokio::test]
    async fn oversized_executable_and_disallowed_files_are_refused() {
        let big = "a".repeat(1024 * 1024 + 1);
        let (m, mut env) = setup(200, json!(big)).await;
        let mut cfg = cfg(&m);
        cfg["max_size_mb"] = json!(1);
        let c = contact(&[("_Inv", "inv-7")], &[]);
        let out = env.run(&EmailAttachIt, cfg, &c).await.unwrap();
        assert!(!out.success && out.changes.is_empty(), "{}", out.message);
        let url = format!("{}/files/inv-7.pdf?token=s3cret", m.base);
        assert!(
            env.files
                .head(&stored_path(&c, &url, "inv-7.pdf"))
                .await
                .is_err(),
            "nothing stored"
        );
        let base = raw_server(b"MZ\x90\x00\x03 not really a pdf").await;
        env.execution_id = "exec-2".into();
        let mut cfg2 = json!({"file_url": format!("{base}/files/inv-7.pdf")});
        let out = env.run(&EmailAttachIt, cfg2.clone(), &c).await.unwrap();
        assert!(
            !out.success && out.message.contains("executable"),
            "{}",
            out.message
        );
        cfg2["filename"] = json!("{{_Inv}}.exe");
        let out = env.run(&EmailAttachIt, cfg2, &c).await.unwrap();
        assert!(!out.success && out.message.contains(".exe"));
        let bad = json!({"file_url": "{{_Url}}"});
        let out = env
            .run(&EmailAttachIt, bad, &contact(&[("_Url", "not a url")], &[]))
            .await
            .unwrap();
        assert!(!out.success);
    }

    #[tokio::test]
    async fn dry_run_downloads_nothing_and_errors_are_external() {
        let (m, mut env) = setup(404, json!({})).await;
        let c = contact(&[("_Inv", "inv-7")], &[]);
        env.dry_run = true;
        let out = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap();
        assert!(
            out.success && out.message.starts_with("Would download") && m.received().is_empty()
        );
        env.dry_run = false;
        let err = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap_err();
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
        m.route("GET", "/files/inv-7.pdf", 502, json!({}));
        let err = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap_err();
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
    }

    #[tokio::test]
    async fn private_addresses_are_blocked_by_the_shared_client() {
        let (m, mut env) = setup(200, json!("x")).await;
        env.http = HttpClient::new(HttpConfig::default()).unwrap();
        let c = contact(&[("_Inv", "inv-7")], &[]);
        let err = env.run(&EmailAttachIt, cfg(&m), &c).await.unwrap_err();
        assert!(
            matches!(&err, StepError::External { retryable: false, message } if message.contains("blocked")),
            "{err:?}"
        );
        assert!(m.received().is_empty());
    }

    #[test]
    fn names_are_decoded_and_made_safe() {
        assert_eq!(percent_decode("My%20File%2Fx.pdf"), "My File/x.pdf");
        assert_eq!(safe_name("My File/x.pdf"), "My File_x.pdf");
        assert_eq!(safe_name(" .. "), "attachment");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&EmailAttachIt, json!({"file_url": "ftp://x/y"}))[0].field,
            "file_url"
        );
        assert!(!config_errors(&EmailAttachIt, json!({})).is_empty());
        let errs = config_errors(
            &EmailAttachIt,
            json!({"file_url": "https://x.example/a.pdf",
            "max_size_mb": 0, "allowed_extensions": [], "success_tag": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["max_size_mb", "allowed_extensions", "success_tag"]);
        assert!(
            !config_errors(
                &EmailAttachIt,
                json!({"file_url": "https://x.example/a.pdf", "allowed_extensions": [" "]})
            )
            .is_empty()
        );
    }
}
