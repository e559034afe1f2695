//! upload_it: stores a file the contact supplied (a URL in a contact field, e.g. from a
//! form's file-upload question) in the platform's file storage under a per-contact key,
//! `uploads/<contact id>/<url hash>-<file name>`, then saves its location to a field,
//! applies `uploaded_tag`, achieves `uploaded_goal` and optionally posts the file's
//! details to `forward_to_url`. The download goes through the guarded HTTP client (no
//! internal addresses), is refused above `max_size_mb`, and must have an allowed
//! extension whose content matches it (PDF, PNG, JPEG and GIF signatures are checked).
//! The rebuild posted a server-local file path taken from config to an arbitrary URL (a
//! local file read plus exfiltration); this helper never reads a local path. The same URL
//! maps to the same key, so a rerun overwrites rather than duplicates; the upload runs
//! once per execution and a dry run stores nothing.

use crate::connectors::Capability;
use crate::helpers::integration::mail_it::vendor_error;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use object_store::ObjectStoreExt;
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of upload_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Field holding the file's URL.
    pub source_url_field: String,
    /// Allowed extensions; default `pdf`, `jpg`, `jpeg`, `png`.
    #[serde(default = "default_types")]
    pub allowed_types: Vec<String>,
    /// Largest file in MB; default 10.
    #[serde(default = "default_max")]
    pub max_size_mb: u32,
    /// Field that receives the stored file's URL (or key).
    pub save_url_to: Option<String>,
    /// Base URL the platform serves stored files from; without it the key is saved.
    pub public_base_url: Option<String>,
    /// Tag id applied after the upload.
    pub uploaded_tag: Option<String>,
    /// Goal achieved after the upload.
    pub uploaded_goal: Option<String>,
    /// URL that receives the file's details as JSON.
    pub forward_to_url: Option<String>,
}

fn default_types() -> Vec<String> {
    ["pdf", "jpg", "jpeg", "png"].map(str::to_owned).to_vec()
}
const fn default_max() -> u32 {
    10
}

fn http_url(s: &str) -> bool {
    url::Url::parse(s.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.source_url_field.trim().is_empty(),
            "source_url_field",
            "is required",
        );
        check(
            &mut errors,
            self.allowed_types.is_empty()
                || self
                    .allowed_types
                    .iter()
                    .any(|t| t.trim().trim_start_matches('.').is_empty() || t.contains('/')),
            "allowed_types",
            "must list extensions such as pdf",
        );
        check(
            &mut errors,
            !(1..=100).contains(&self.max_size_mb),
            "max_size_mb",
            "must be 1 to 100",
        );
        for (field, v) in [
            ("save_url_to", &self.save_url_to),
            ("uploaded_tag", &self.uploaded_tag),
            ("uploaded_goal", &self.uploaded_goal),
        ] {
            check(
                &mut errors,
                v.as_deref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when given",
            );
        }
        check(
            &mut errors,
            self.public_base_url
                .as_deref()
                .is_some_and(|u| !http_url(u)),
            "public_base_url",
            "must be an http(s) URL",
        );
        check(
            &mut errors,
            self.forward_to_url.as_deref().is_some_and(|u| !http_url(u)),
            "forward_to_url",
            "must be an http(s) URL",
        );
        finish(errors)
    }
}

/// Keeps letters, digits, `.`, `-` and `_`; anything else becomes `_`.
fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.trim_start_matches('.').chars().take(120).collect()
}

/// Whether the first bytes match what the extension promises (unknown kinds pass).
fn content_matches(ext: &str, bytes: &[u8]) -> bool {
    match ext {
        "pdf" => bytes.starts_with(b"%PDF"),
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "gif" => bytes.starts_with(b"GIF8"),
        _ => true,
    }
}

/// The upload_it helper.
pub struct UploadIt;

impl Helper for UploadIt {
    const NAME: &'static str = "upload_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Stores the file at a URL in a contact field in platform storage and records where it is.";
    const EXAMPLE_CONFIG: &'static str = r#"{"source_url_field": "_UploadUrl", "allowed_types": ["pdf", "png"], "max_size_mb": 5, "save_url_to": "_StoredFile", "uploaded_tag": "830"}"#;
    const OUTPUTS: &'static [&'static str] = &["file_name", "file_size", "file_url", "file_key"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(UploadItStep(config)))
    }
}

struct UploadItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for UploadItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let Some(raw) = contact.field(&c.source_url_field).map(str::trim) else {
            return Ok(Outcome::failed(format!(
                "The contact has no file URL in {}",
                c.source_url_field
            )));
        };
        let Some(source) = url::Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            return Ok(Outcome::failed(format!("{raw:?} is not an http(s) URL")));
        };
        let name = source
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(|n| {
                url::form_urlencoded::parse(format!("n={n}").as_bytes())
                    .next()
                    .map_or_else(|| n.to_owned(), |(_, v)| v.into_owned())
            })
            .map(|n| safe(&n))
            .unwrap_or_default();
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let allowed = c
            .allowed_types
            .iter()
            .any(|t| t.trim().trim_start_matches('.').eq_ignore_ascii_case(&ext));
        if name.is_empty() || ext.is_empty() || !allowed {
            return Ok(Outcome::failed(format!(
                "{name:?} is not an allowed file type ({})",
                c.allowed_types.join(", ")
            )));
        }
        let digest = <sha2::Sha256 as sha2::Digest>::digest(source.as_str().as_bytes());
        let key = format!(
            "uploads/{}/{}-{name}",
            safe(&contact.id),
            hex::encode(&digest[..6])
        );
        let file_url = c.public_base_url.as_deref().map_or_else(
            || key.clone(),
            |b| format!("{}/{key}", b.trim().trim_end_matches('/')),
        );
        let max = usize::try_from(c.max_size_mb).unwrap_or(100) * 1024 * 1024;
        let host = source.host_str().unwrap_or("").to_owned();
        let stored = crate::helpers::once(ctx, "upload_it upload", || async {
            let file = ctx
                .http
                .send(reqwest::Method::GET, source.as_str(), |r| r)
                .await
                .map_err(|e| vendor_error("file host", &e))?;
            let size = file.body.len();
            if size > max {
                return Ok(json!({"rejected": format!("The file is {size} bytes, over the {} MB limit", c.max_size_mb)}));
            }
            if !content_matches(&ext, &file.body) {
                return Ok(json!({"rejected": format!("The content of {name} is not a .{ext} file")}));
            }
            ctx.files
                .put(&object_store::path::Path::from(key.as_str()), file.body.into())
                .await
                .map_err(|e| StepError::External {
                    message: format!("file storage failed: {e}"),
                    retryable: true,
                })?;
            if let Some(target) = &c.forward_to_url {
                let body = json!({"contact_id": contact.id, "file_name": name, "file_size": size,
                    "file_key": key, "file_url": file_url});
                ctx.http
                    .send(reqwest::Method::POST, target.trim(), |r| {
                        r.header("Idempotency-Key", ctx.execution_id).json(&body)
                    })
                    .await
                    .map_err(|e| vendor_error("forward_to_url", &e))?;
            }
            Ok(json!({"file_size": size}))
        })
        .await?;
        let base = Outcome::ok("")
            .with("file_name", name.clone())
            .with("file_key", key.clone());
        let Some(result) = stored else {
            let mut out = base
                .with("file_url", file_url)
                .with("file_size", Value::Null);
            out.message = format!("Would upload {name} from {host}");
            return Ok(out);
        };
        if let Some(why) = result["rejected"].as_str() {
            let mut out = base;
            out.success = false;
            out.message = why.to_owned();
            return Ok(out);
        }
        let mut out = base
            .with("file_url", file_url.clone())
            .with("file_size", result["file_size"].clone());
        out.message = format!("Stored {name} ({} bytes)", result["file_size"]);
        if let Some(f) = &c.save_url_to {
            out = out.set_field(contact, f.trim(), file_url);
        }
        Ok(out.branch(
            contact,
            c.uploaded_tag.as_deref(),
            c.uploaded_goal.as_deref(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<(String, String)>>>;

    /// A file host answering `/f/<name>` with `body` and recording every request.
    async fn host(body: Vec<u8>) -> (String, Log) {
        let log = Log::default();
        let seen = log.clone();
        let app = axum::Router::new().fallback(
            move |m: axum::http::Method, u: axum::http::Uri, b: axum::body::Bytes| {
                let (seen, body) = (seen.clone(), body.clone());
                async move {
                    seen.lock().unwrap().push((
                        format!("{m} {}", u.path()),
                        String::from_utf8_lossy(&b).into_owned(),
                    ));
                    body
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), log)
    }

    fn cfg() -> Value {
        json!({"source_url_field": "doc", "save_url_to": "_Stored", "uploaded_tag": "5",
            "uploaded_goal": "uploaded", "public_base_url": "https://files.example.com/"})
    }

    async fn stored(env: &Env, key: &str) -> Vec<u8> {
        env.files
            .get(&object_store::path::Path::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn stores_the_file_under_a_per_contact_key() {
        let (base, log) = host(b"%PDF-1.7 contract".to_vec()).await;
        let env = Env::new();
        let who = contact(&[("doc", &format!("{base}/f/My%20Contract.pdf"))], &[]);
        let out = env.run(&UploadIt, cfg(), &who).await.unwrap();
        assert!(out.success, "{out:?}");
        let key = out.output["file_key"].as_str().unwrap().to_owned();
        assert!(
            key.starts_with("uploads/c-1/") && key.ends_with("-My_Contract.pdf"),
            "{key}"
        );
        assert_eq!(out.output["file_name"], json!("My_Contract.pdf"));
        assert_eq!(out.output["file_size"], json!(17));
        let url = format!("https://files.example.com/{key}");
        assert_eq!(out.output["file_url"], json!(url));
        assert_eq!(stored(&env, &key).await, b"%PDF-1.7 contract");
        assert_eq!(
            out.changes,
            vec![
                set("_Stored", &url),
                Change::ApplyTag { tag_id: "5".into() },
                Change::AchieveGoal {
                    call_name: "uploaded".into()
                }
            ]
        );
        assert_eq!(log.lock().unwrap()[0].0, "GET /f/My%20Contract.pdf");
    }

    #[tokio::test]
    async fn forwards_the_details() {
        let (base, log) = host(b"\x89PNG\r\n\x1a\nrest".to_vec()).await;
        let env = Env::new();
        let mut c = cfg();
        c["forward_to_url"] = json!(format!("{base}/hook"));
        c.as_object_mut().unwrap().remove("public_base_url");
        let out = env
            .run(
                &UploadIt,
                c,
                &contact(&[("doc", &format!("{base}/f/a.png"))], &[]),
            )
            .await
            .unwrap();
        assert!(out.success);
        let key = out.output["file_key"].as_str().unwrap();
        assert_eq!(out.output["file_url"], json!(key));
        let log = log.lock().unwrap();
        assert_eq!(log[1].0, "POST /hook");
        let sent: Value = serde_json::from_str(&log[1].1).unwrap();
        assert_eq!(
            sent,
            json!({"contact_id": "c-1", "file_name": "a.png", "file_size": 12, "file_key": key, "file_url": key})
        );
    }

    #[tokio::test]
    async fn refuses_bad_types_sizes_and_content() {
        let (base, log) = host(vec![b'x'; 1024 * 1024 + 1]).await;
        let env = Env::new();
        let out = env
            .run(
                &UploadIt,
                cfg(),
                &contact(&[("doc", &format!("{base}/f/run.exe"))], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("not an allowed file type"));
        let out = env
            .run(&UploadIt, cfg(), &contact(&[("doc", "/etc/passwd")], &[]))
            .await
            .unwrap();
        assert!(!out.success && out.message.contains("not an http"));
        let out = env.run(&UploadIt, cfg(), &contact(&[], &[])).await.unwrap();
        assert!(!out.success && out.message.contains("no file URL"));
        assert!(log.lock().unwrap().is_empty());
        let mut c = cfg();
        c["max_size_mb"] = json!(1);
        let who = contact(&[("doc", &format!("{base}/f/big.pdf"))], &[]);
        let out = env.run(&UploadIt, c, &who).await.unwrap();
        assert!(
            !out.success && out.message.contains("over the 1 MB limit"),
            "{out:?}"
        );
        let mut env = Env::new();
        env.execution_id = "e2".into();
        let out = env.run(&UploadIt, cfg(), &who).await.unwrap();
        assert!(!out.success && out.message.contains("is not a .pdf file"));
        assert!(out.changes.is_empty());
    }

    #[tokio::test]
    async fn internal_addresses_are_blocked() {
        let mut env = Env::new();
        env.http = crate::http::HttpClient::new(crate::http::HttpConfig::default()).unwrap();
        let who = contact(
            &[("doc", "http://169.254.169.254/latest/meta-data/x.pdf")],
            &[],
        );
        let err = env.run(&UploadIt, cfg(), &who).await.unwrap_err();
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
    }

    #[tokio::test]
    async fn dry_run_stores_nothing_and_rerun_uploads_once() {
        let (base, log) = host(b"%PDF-1.4".to_vec()).await;
        let mut env = Env::new();
        env.state.set_now(env.now);
        env.dry_run = true;
        let who = contact(&[("doc", &format!("{base}/f/a.pdf"))], &[]);
        let out = env.run(&UploadIt, cfg(), &who).await.unwrap();
        assert!(out.success && out.message.starts_with("Would upload") && out.changes.is_empty());
        assert!(log.lock().unwrap().is_empty());
        let key = out.output["file_key"].as_str().unwrap().to_owned();
        assert!(
            env.files
                .get(&object_store::path::Path::from(key.as_str()))
                .await
                .is_err()
        );
        env.dry_run = false;
        let first = env.run(&UploadIt, cfg(), &who).await.unwrap();
        assert_eq!(env.run(&UploadIt, cfg(), &who).await.unwrap(), first);
        assert_eq!(log.lock().unwrap().len(), 1);
        assert_eq!(first.output["file_key"], json!(key));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &UploadIt,
            json!({"source_url_field": "", "allowed_types": [],
            "max_size_mb": 0, "save_url_to": "", "public_base_url": "files", "forward_to_url": "ftp://x.io/"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source_url_field",
                "allowed_types",
                "max_size_mb",
                "save_url_to",
                "public_base_url",
                "forward_to_url"
            ]
        );
        assert!(!config_errors(&UploadIt, json!({"file_path": "/etc/passwd"})).is_empty());
        assert!(config_errors(&UploadIt, cfg()).is_empty());
    }
}
