//! The API described: an OpenAPI 3.1 document built from the same registrations that
//! route requests (`utoipa_axum::routes!` needs each handler's `#[utoipa::path]`), so a
//! route cannot be served without being described. Served at `/v1/openapi.json`; the
//! dashboard's TypeScript types are generated from `docs/openapi.json`, which a test
//! keeps equal to this document.

use crate::routes::auth::SESSION_COOKIE;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Response, SecurityRequirement};

/// The problem body every error answer has, documented where it is built.
pub use crate::error::Problem;

/// The document's fixed parts; the paths come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mfh",
        description = "MyFusionHelper's API: saved helpers and their run URLs, executions, CRM connections, the data explorer, accounts and billing. Errors are RFC 9457 problem details.",
        license(name = "Proprietary"),
    ),
    components(schemas(Problem)),
    tags(
        (name = "executions", description = "Running helpers and reading what they did"),
        (name = "helpers", description = "Saved helpers and the URLs CRMs call"),
        (name = "helper-types", description = "The 97 helper types and their config schemas"),
        (name = "platforms", description = "The CRMs mfh connects to and the helper types each runs"),
        (name = "connections", description = "CRM connections, OAuth, health and contact sync"),
        (name = "explorer", description = "SQL over the lake"),
        (name = "account", description = "The account, its team, keys and notification preferences"),
        (name = "billing", description = "Stripe Checkout and the billing portal"),
        (name = "auth", description = "Sign-up, sign-in, sessions, email links and invites"),
        (name = "webhooks", description = "Deliveries from CRMs and Stripe"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct Fixed;

/// Security schemes the authenticated routes accept, any one of them.
pub const SCHEMES: [&str; 3] = ["api_key", "bearer", "session"];

/// Adds the security schemes and marks each operation of `authed` as needing one.
pub fn secure(mut authed: OpenApi) -> OpenApi {
    for item in authed.paths.paths.values_mut() {
        for op in operations(item) {
            op.security = Some(
                SCHEMES
                    .iter()
                    .map(|s| SecurityRequirement::new(*s, Vec::<String>::new()))
                    .collect(),
            );
        }
    }
    authed
}

/// The finished document: security schemes, and every problem response typed as
/// `application/problem+json` with a `default` problem for statuses not listed.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Api-Key",
            "An API key (Settings → API keys).",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key, or a token from the configured identity provider (JWKS).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The dashboard's session (POST /v1/auth/login). Requests that change state also send the mfh_csrf cookie's value as X-CSRF-Token.",
        ))),
    );
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for item in doc.paths.paths.values() {
        for (_, op) in methods(item) {
            if let Some(id) = &op.operation_id {
                *seen.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for (method, op) in methods_mut(item) {
            // One handler serving two methods (a run URL takes GET and POST) gets one
            // operation id per method: ids are unique in a valid document.
            if let Some(id) = &mut op.operation_id
                && seen.get(id.as_str()).is_some_and(|n| *n > 1)
            {
                *id = format!("{id}_{method}");
            }
        }
        for op in operations(item) {
            for resp in op.responses.responses.values_mut() {
                if let RefOr::T(r) = resp {
                    problem_content(r);
                }
            }
            op.responses
                .responses
                .entry("default".into())
                .or_insert_with(|| RefOr::T(problem("Any other error")));
        }
    }
    doc
}

type Operation = utoipa::openapi::path::Operation;

fn methods(item: &utoipa::openapi::PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("options", &item.options),
        ("head", &item.head),
        ("patch", &item.patch),
        ("trace", &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
}

fn methods_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    methods_mut(item).map(|(_, op)| op)
}

/// Every (method, path) the document describes.
#[must_use]
pub fn described(doc: &OpenApi) -> Vec<(&'static str, String)> {
    doc.paths
        .paths
        .iter()
        .flat_map(|(path, item)| methods(item).map(move |(m, _)| (m, path.clone())))
        .collect()
}

/// A response whose JSON body is a [`Problem`] is sent as `application/problem+json`.
fn problem_content(r: &mut Response) {
    let is_problem = r.content.get("application/json").is_some_and(|c| {
        matches!(c, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(x)) if x.ref_location.ends_with("/Problem")))
    });
    if is_problem && let Some(c) = r.content.shift_remove("application/json") {
        r.content.insert("application/problem+json".into(), c);
    }
}

fn problem(description: &str) -> Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                ))))
                .build(),
        )
        .build()
}

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(crate::openapi_document)
}

/// `GET /v1/openapi.json`: this API described, OpenAPI 3.1.
#[utoipa::path(
    get,
    operation_id = "openapi_serve",
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn serve() -> axum::Json<&'static OpenApi> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }

    /// A route registered with axum directly would be served without being described;
    /// `routes!` refuses a handler without `#[utoipa::path]`, so only this can miss one.
    #[test]
    fn every_route_is_registered_with_its_description() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10);
        for (path, text) in files {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                // Spelled in two halves so this list does not match itself.
                for (a, b) in [
                    (".", "route("),
                    (".route", "_service("),
                    (".nest", "_service("),
                    ("routing::", "get"),
                    ("routing::", "post"),
                    ("routing::", "put"),
                    ("routing::", "patch"),
                    ("routing::", "delete"),
                    ("routing::", "on("),
                ] {
                    let bypass = format!("{a}{b}");
                    assert!(
                        !code.contains(&bypass),
                        "{path}:{}: `{bypass}` serves a route the OpenAPI document does not describe; register it with routes!",
                        n + 1
                    );
                }
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_unique_ids_and_problem_bodies() {
        let doc = crate::openapi_document();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let ops = described(&doc);
        assert!(ops.len() >= 50, "{} operations", ops.len());
        let mut ids = std::collections::HashSet::new();
        for (method, path) in &ops {
            let op = &json["paths"][path][method];
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{id} twice");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            let default = &op["responses"]["default"]["content"]["application/problem+json"];
            assert_eq!(
                default["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path}"
            );
            for (status, r) in op["responses"].as_object().unwrap() {
                assert!(
                    r["content"]
                        .get("application/json")
                        .is_none_or(|c| c["schema"]["$ref"] != "#/components/schemas/Problem"),
                    "{method} {path} {status}: a problem sent as application/json"
                );
            }
            let authed = op["security"].is_array();
            assert_eq!(
                authed,
                !path.starts_with("/v1/auth/register")
                    && !matches!(path.as_str(), "/v1/auth/login" | "/v1/auth/verify")
                    && op["tags"][0] != "webhooks"
                    && op["tags"][0] != "operations"
                    && op["tags"][0] != "helper-types"
                    && op["tags"][0] != "platforms"
                    && !path.starts_with("/v1/auth/verify/")
                    && !path.starts_with("/v1/auth/password-reset")
                    && !path.starts_with("/v1/auth/invites/")
                    && !path.starts_with("/v1/run/")
                    && path != "/v1/oauth/callback",
                "{method} {path}: security {}",
                op["security"]
            );
        }
        // Every schema a response or body names is in the document.
        let text = json.to_string();
        for r in text.split("\"#/components/schemas/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(
                json["components"]["schemas"][name].is_object(),
                "{name} is referenced but not defined"
            );
        }
    }

    /// The dashboard's types are generated from `docs/openapi.json`; it must be this
    /// document. `MFH_UPDATE_OPENAPI=1 cargo test -p mfh-api openapi` rewrites it.
    #[test]
    fn docs_openapi_json_is_this_document() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let want = format!(
            "{}\n",
            serde_json::to_string_pretty(&crate::openapi_document()).unwrap()
        );
        if std::env::var_os("MFH_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/openapi.json is not the API's document; run MFH_UPDATE_OPENAPI=1 cargo test -p mfh-api openapi and rebuild the dashboard"
        );
    }
}
