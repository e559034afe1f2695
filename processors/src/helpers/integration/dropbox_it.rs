//! dropbox_it: writes a templated file for the contact to Dropbox. `file_path` and
//! `content_template` are `{{field}}` templates; in the path, merged values are made safe
//! (`/ \ : * ? " < > |` and control characters become `_`), so a name cannot add folders.
//! The upload is `POST /2/files/upload` on the content host with the bearer token and a
//! `Dropbox-API-Arg` header (mode `add` with auto-rename, or `overwrite`). With
//! `create_shared_link_to`, a shared link is created (`/2/sharing/
//! create_shared_link_with_settings`, or the existing one listed when Dropbox answers
//! 409) and saved to that field. Both calls are journaled, so a redelivered execution
//! does not upload again; idempotent across executions only with `overwrite`.

use crate::connectors::Capability;
use crate::helpers::defaults::given;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once, template,
};
use crate::http::HttpError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of dropbox_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dropbox OAuth access token.
    pub access_token: String,
    /// Target path template, from the root: `/Clients/{{last_name}}_{{first_name}}/intake.txt`.
    pub file_path: String,
    /// File content template.
    pub content_template: String,
    /// Replace an existing file instead of adding `name (1).txt`; default false.
    #[serde(default)]
    pub overwrite: bool,
    /// Tag applied after the upload.
    pub apply_tag: Option<String>,
    /// Field that receives a shared link to the file.
    pub create_shared_link_to: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.access_token.trim().is_empty(),
            "access_token",
            "is required",
        );
        let path = self.file_path.trim();
        check(
            &mut errors,
            !path.starts_with('/') || path.ends_with('/') || path.contains("//"),
            "file_path",
            "must be an absolute file path such as /Folder/file.txt",
        );
        check(
            &mut errors,
            path.split('/').any(|s| s == ".." || s == "."),
            "file_path",
            "must not contain . or .. segments",
        );
        check(
            &mut errors,
            self.content_template.is_empty(),
            "content_template",
            "is required",
        );
        for (name, value) in [
            ("apply_tag", &self.apply_tag),
            ("create_shared_link_to", &self.create_shared_link_to),
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

/// The dropbox_it helper.
pub struct DropboxIt;

impl Helper for DropboxIt {
    const NAME: &'static str = "dropbox_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Uploads a file built from templates with the contact's data to Dropbox.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "sl.token", "file_path": "/Clients/{{last_name}}_{{first_name}}/intake.txt", "content_template": "Name: {{first_name}} {{last_name}}\nEmail: {{email}}\n", "apply_tag": "501"}"#;
    const OUTPUTS: &'static [&'static str] =
        &["file_path", "file_size", "dropbox_id", "shared_link"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields, Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(DropboxStep { config }))
    }
}

struct DropboxStep {
    config: Config,
}

/// Dropbox `FileMetadata`, the parts used.
#[derive(Debug, Deserialize)]
struct FileMetadata {
    #[serde(default)]
    id: String,
    #[serde(default)]
    path_display: String,
    #[serde(default)]
    size: u64,
}

/// Makes a merged value safe as (part of) one path segment.
fn path_safe(v: &str) -> String {
    let s: String = v
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s == "." || s == ".." { "_".into() } else { s }
}

/// JSON that is safe in an HTTP header: non-ASCII characters (and DEL) escaped as
/// `\uXXXX`, as Dropbox requires for `Dropbox-API-Arg`.
fn header_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn unexpected(e: serde_json::Error) -> StepError {
    StepError::External {
        message: format!("unexpected Dropbox response: {e}"),
        retryable: false,
    }
}

impl DropboxStep {
    /// The shared link of `path`: created, or the existing one when Dropbox says it has
    /// one already (409).
    async fn shared_link(&self, ctx: &Ctx<'_>, path: &str) -> Result<Value, StepError> {
        let token = self.config.access_token.trim();
        let create = ctx
            .vendors
            .url("dropbox", "/2/sharing/create_shared_link_with_settings");
        let body = json!({"path": path});
        match ctx
            .http
            .send(reqwest::Method::POST, &create, |r| {
                r.bearer_auth(token).json(&body)
            })
            .await
        {
            Ok(resp) => serde_json::from_slice(&resp.body).map_err(unexpected),
            Err(HttpError::Status { status: 409, .. }) => {
                let list = ctx.vendors.url("dropbox", "/2/sharing/list_shared_links");
                let body = json!({"path": path, "direct_only": true});
                let resp = ctx
                    .http
                    .send(reqwest::Method::POST, &list, |r| {
                        r.bearer_auth(token).json(&body)
                    })
                    .await?;
                let links: Value = serde_json::from_slice(&resp.body).map_err(unexpected)?;
                Ok(links["links"].get(0).cloned().unwrap_or(Value::Null))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl AsyncStep for DropboxStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let mut safe = contact.clone();
        safe.fields.values_mut().for_each(|v| *v = path_safe(v));
        let path = template::render(c.file_path.trim(), &safe);
        if path.contains("//") || path.ends_with('/') {
            return Ok(Outcome::failed(format!(
                "The file path {path} has an empty part; the contact lacks a field it uses"
            )));
        }
        let content = template::render(&c.content_template, contact);
        let size = content.len();
        let arg = json!({"path": path, "mode": if c.overwrite { "overwrite" } else { "add" },
            "autorename": !c.overwrite, "mute": false});
        let token = c.access_token.trim();
        let url = ctx.vendors.url("dropbox_content", "/2/files/upload");
        let uploaded = once(ctx, "dropbox upload", || async move {
            let resp = ctx
                .http
                .send(reqwest::Method::POST, &url, |r| {
                    r.bearer_auth(token)
                        .header("Dropbox-API-Arg", header_json(&arg))
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(content.clone())
                })
                .await?;
            serde_json::from_slice::<Value>(&resp.body).map_err(unexpected)
        })
        .await?;
        let Some(uploaded) = uploaded else {
            return Ok(Outcome::ok(format!("Would upload {size} bytes to {path}"))
                .with("file_path", path)
                .with("file_size", size));
        };
        let meta: FileMetadata = serde_json::from_value(uploaded).map_err(unexpected)?;
        let stored = if meta.path_display.is_empty() {
            path
        } else {
            meta.path_display
        };
        let mut out = Outcome::ok(format!("Uploaded {} bytes to {stored}", meta.size));
        let mut link = Value::Null;
        if let Some(field) = given(&c.create_shared_link_to) {
            let created = once(ctx, "dropbox shared link", || {
                self.shared_link(ctx, &stored)
            })
            .await?
            .unwrap_or(Value::Null);
            if let Some(u) = created["url"].as_str().filter(|u| !u.is_empty()) {
                out = out.set_field(contact, field, u);
                link = json!(u);
            } else {
                out = out.log("Dropbox returned no shared link");
            }
        }
        Ok(out
            .branch(contact, given(&c.apply_tag), None)
            .with("file_path", stored)
            .with("file_size", meta.size)
            .with("dropbox_id", meta.id)
            .with("shared_link", link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn cfg() -> Value {
        json!({"access_token": "tok", "file_path": "/Clients/{{last_name}}_{{first_name}}/intake.txt",
            "content_template": "Name: {{first_name}} {{last_name}}\n", "apply_tag": "501"})
    }

    fn meta(path: &str) -> Value {
        json!({"name": "intake.txt", "id": "id:a4ayc_80_OEAAAAAAAAAXw", "size": 21,
            "path_lower": path.to_lowercase(), "path_display": path, "rev": "a1c10ce0dd78"})
    }

    async fn setup(routes: &[(&str, &str, u16, Value)]) -> (MockVendor, Env) {
        let m = MockVendor::start(routes).await;
        let env = Env::new()
            .vendor("dropbox_content", &m.base)
            .vendor("dropbox", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    #[tokio::test]
    async fn uploads_the_rendered_file_with_the_documented_request() {
        let (m, env) = setup(&[(
            "POST",
            "/2/files/upload",
            200,
            meta("/Clients/Lovelace_Ada/intake.txt"),
        )])
        .await;
        let c = contact(&[("first_name", "Ada"), ("last_name", "Lovelace")], &[]);
        let out = env.run(&DropboxIt, cfg(), &c).await.unwrap();
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/2/files/upload")
        );
        assert_eq!(req.header("authorization"), Some("Bearer tok"));
        assert_eq!(req.header("content-type"), Some("application/octet-stream"));
        let arg: Value = serde_json::from_str(req.header("dropbox-api-arg").unwrap()).unwrap();
        assert_eq!(
            arg,
            json!({"path": "/Clients/Lovelace_Ada/intake.txt", "mode": "add",
                "autorename": true, "mute": false})
        );
        assert_eq!(req.body, "Name: Ada Lovelace\n");
        assert_eq!(
            out.changes,
            vec![Change::ApplyTag {
                tag_id: "501".into()
            }]
        );
        assert_eq!(out.output["dropbox_id"], json!("id:a4ayc_80_OEAAAAAAAAAXw"));
        assert_eq!(out.output["file_size"], json!(21));
    }

    #[tokio::test]
    async fn unsafe_names_are_sanitised_and_non_ascii_is_escaped() {
        let (m, env) = setup(&[("POST", "/2/files/upload", 200, meta("/x"))]).await;
        let c = contact(&[("first_name", "Zoë"), ("last_name", "a/b:c")], &[]);
        let mut cfg = cfg();
        cfg["overwrite"] = json!(true);
        env.run(&DropboxIt, cfg, &c).await.unwrap();
        let raw = m.single().header("dropbox-api-arg").unwrap().to_owned();
        assert!(raw.is_ascii() && raw.contains("\\u00eb"), "{raw}");
        let arg: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(arg["path"], json!("/Clients/a_b_c_Zoë/intake.txt"));
        assert_eq!(
            (arg["mode"].clone(), arg["autorename"].clone()),
            (json!("overwrite"), json!(false))
        );
    }

    #[tokio::test]
    async fn missing_path_fields_fail_without_uploading() {
        let (m, env) = setup(&[]).await;
        let cfg = json!({"access_token": "t", "file_path": "/Clients/{{company}}/x.txt",
            "content_template": "x"});
        let out = env.run(&DropboxIt, cfg, &contact(&[], &[])).await.unwrap();
        assert!(!out.success && m.received().is_empty());
    }

    #[tokio::test]
    async fn saves_a_shared_link_or_the_existing_one() {
        let (m, env) = setup(&[
            (
                "POST",
                "/2/files/upload",
                200,
                meta("/Clients/L_A/intake.txt"),
            ),
            (
                "POST",
                "/2/sharing/create_shared_link_with_settings",
                200,
                json!({".tag": "file", "url": "https://www.dropbox.com/s/abc/intake.txt?dl=0"}),
            ),
        ])
        .await;
        let mut cfg = cfg();
        cfg["create_shared_link_to"] = json!("_DropboxLink");
        let c = contact(&[("first_name", "A"), ("last_name", "L")], &[]);
        let out = env.run(&DropboxIt, cfg.clone(), &c).await.unwrap();
        let reqs = m.received();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].header("authorization"), Some("Bearer tok"));
        assert_eq!(reqs[1].json()["path"], json!("/Clients/L_A/intake.txt"));
        assert_eq!(
            out.changes[0],
            set(
                "_DropboxLink",
                "https://www.dropbox.com/s/abc/intake.txt?dl=0"
            )
        );
        m.route("POST", "/2/sharing/create_shared_link_with_settings", 409,
            json!({"error_summary": "shared_link_already_exists/..", "error": {".tag": "shared_link_already_exists"}}));
        m.route("POST", "/2/sharing/list_shared_links", 200,
            json!({"links": [{"url": "https://www.dropbox.com/s/old/intake.txt?dl=0"}], "has_more": false}));
        let mut env = env;
        env.execution_id = "exec-2".into();
        let out = env.run(&DropboxIt, cfg, &c).await.unwrap();
        assert_eq!(
            m.received().last().unwrap().json(),
            json!({"path": "/Clients/L_A/intake.txt", "direct_only": true})
        );
        assert_eq!(
            out.output["shared_link"],
            json!("https://www.dropbox.com/s/old/intake.txt?dl=0")
        );
    }

    #[tokio::test]
    async fn dry_run_rerun_and_errors() {
        let (m, mut env) = setup(&[("POST", "/2/files/upload", 200, meta("/x"))]).await;
        let c = contact(&[("first_name", "A"), ("last_name", "L")], &[]);
        env.dry_run = true;
        let out = env.run(&DropboxIt, cfg(), &c).await.unwrap();
        assert!(out.success && out.message.starts_with("Would upload") && m.received().is_empty());
        env.dry_run = false;
        let first = env.run(&DropboxIt, cfg(), &c).await.unwrap();
        let again = env.run(&DropboxIt, cfg(), &c).await.unwrap();
        assert_eq!((m.received().len(), first), (1, again));
        for (status, retryable) in [(401, false), (409, false), (503, true)] {
            m.route(
                "POST",
                "/2/files/upload",
                status,
                json!({"error_summary": "x"}),
            );
            env.execution_id = format!("exec-{status}");
            let err = env.run(&DropboxIt, cfg(), &c).await.unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}"
            );
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        for path in ["relative.txt", "/folder/", "/a//b.txt", "/a/../b.txt"] {
            let errs = config_errors(
                &DropboxIt,
                json!({"access_token": "t", "file_path": path, "content_template": "x"}),
            );
            assert_eq!(errs[0].field, "file_path", "{path}");
        }
        let errs = config_errors(
            &DropboxIt,
            json!({"access_token": "", "file_path": "/a.txt", "content_template": "", "apply_tag": ""}),
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            !config_errors(
                &DropboxIt,
                json!({"file_path": "/a.txt", "content_template": "x"})
            )
            .is_empty()
        );
    }
}
