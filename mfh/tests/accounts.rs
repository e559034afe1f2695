//! Self-service accounts against the real stack (API, broker, store, notifier writing the
//! outbox): sign-up, verification, sessions with CSRF, sign-in limits, password reset,
//! invites, notification preferences, CORS, and one account's session never reaching
//! another's resources. Links are read from the emails the notifier wrote.

#![allow(clippy::unwrap_used)]

mod support;

use mfh::stack::Processors;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::TestStack;

const PASSWORD: &str = "correct horse battery";

async fn start(tweak: impl FnOnce(&mut mfh::config::Config)) -> TestStack {
    TestStack::start_configured(Some(Processors::Billing), |c| {
        c.embedded.seed_file = support::repo_root().join("seed/sandbox.json");
        tweak(c);
    })
    .await
}

fn outbox(ts: &TestStack) -> PathBuf {
    ts.cfg.billing.email.outbox_dir.clone()
}

/// The text of an email: quoted-printable soft breaks and `=3D` undone.
fn eml_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The token of the newest `kind` email to `to` holding a `/{page}?token=` link that is
/// not in `seen`; waits for the notifier.
async fn link_token(ts: &TestStack, kind: &str, to: &str, page: &str, seen: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut found = Vec::new();
        for e in std::fs::read_dir(outbox(ts))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.contains(kind) || !name.ends_with(".eml") {
                continue;
            }
            let text = eml_text(&e.path());
            if !text.contains(&format!("To: {to}")) {
                continue;
            }
            let marker = format!("/{page}?token=");
            for part in text.split(&marker).skip(1) {
                let token: String = part.chars().take(64).collect();
                if token.len() == 64 && !seen.contains(&token) {
                    found.push(token);
                }
            }
        }
        if let Some(t) = found.into_iter().next() {
            return t;
        }
        assert!(Instant::now() < deadline, "no {kind} email to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(ts: &TestStack, path: &str, body: &Value) -> (u16, Value, HeaderMap) {
    let r = ts
        .http
        .post(format!("{}{path}", ts.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// A signed-in browser: the session and CSRF cookies.
#[derive(Clone)]
struct Browser {
    session: String,
    csrf: String,
}

impl Browser {
    fn from(headers: &HeaderMap) -> Self {
        let cookie = |name: &str| {
            headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix(&format!("{name}=")))
                .map(|v| v.split(';').next().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        };
        Self {
            session: cookie("mfh_session"),
            csrf: cookie("mfh_csrf"),
        }
    }

    async fn send(
        &self,
        ts: &TestStack,
        method: &str,
        path: &str,
        body: Option<&Value>,
        csrf: bool,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = ts
            .http
            .request(method, format!("{}{path}", ts.base))
            .header(
                "cookie",
                format!("mfh_session={}; mfh_csrf={}", self.session, self.csrf),
            );
        if csrf {
            r = r.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, ts: &TestStack, path: &str) -> (u16, Value) {
        self.send(ts, "GET", path, None, false).await
    }

    async fn post(&self, ts: &TestStack, path: &str, body: &Value) -> (u16, Value) {
        self.send(ts, "POST", path, Some(body), true).await
    }
}

fn new_email(who: &str) -> String {
    format!(
        "{who}.{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Signs up `email`, opens the verification link and signs in.
async fn signed_up(ts: &TestStack, email: &str) -> (String, Browser) {
    let body =
        json!({"email": email, "password": PASSWORD, "name": "Ada", "account_name": "Ada's shop"});
    let (status, reg, _) = post(ts, "/v1/auth/register", &body).await;
    assert_eq!(status, 201, "{reg}");
    let token = link_token(ts, "email_verification", email, "verify", &[]).await;
    let (status, v, _) = post(ts, "/v1/auth/verify", &json!({ "token": token })).await;
    assert_eq!((status, v["verified"].clone()), (200, json!(true)), "{v}");
    (
        reg["account_id"].as_str().unwrap().to_owned(),
        login(ts, email, PASSWORD).await,
    )
}

async fn login(ts: &TestStack, email: &str, password: &str) -> Browser {
    let (status, me, headers) = post(
        ts,
        "/v1/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    Browser::from(&headers)
}

#[tokio::test]
async fn a_marketer_signs_up_verifies_signs_in_and_out() {
    let ts = start(|_| {}).await;
    let email = new_email("ada");
    // Refused sign-ups say what is wrong with each field.
    let (status, bad, _) = post(
        &ts,
        "/v1/auth/register",
        &json!({"email": "not-an-email", "password": "Password1234", "name": "", "account_name": "Shop"}),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "name", "password"], "{bad}");
    assert!(bad.to_string().contains("common breached"), "{bad}");

    let body = json!({"email": email.to_uppercase(), "password": PASSWORD, "name": "Ada", "account_name": "Ada's shop"});
    let (status, reg, _) = post(&ts, "/v1/auth/register", &body).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["email"], email.as_str());
    assert_eq!(reg["verification_required"], true);
    let (status, again, _) = post(&ts, "/v1/auth/register", &body).await;
    assert_eq!(status, 409, "{again}");

    // Unverified: the right password is refused with what to do.
    let creds = json!({"email": email, "password": PASSWORD});
    let (status, p, _) = post(&ts, "/v1/auth/login", &creds).await;
    assert_eq!(status, 403, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("confirm your email"),
        "{p}"
    );

    let token = link_token(&ts, "email_verification", &email, "verify", &[]).await;
    let (status, _, _) = post(&ts, "/v1/auth/verify", &json!({"token": token})).await;
    assert_eq!(status, 200);
    let (status, p, _) = post(&ts, "/v1/auth/verify", &json!({"token": token})).await;
    assert_eq!(status, 410, "a verification link works once: {p}");
    let (status, _, _) = post(&ts, "/v1/auth/verify", &json!({"token": "x"})).await;
    assert_eq!(status, 400);
    // The welcome email leads into the dashboard.
    let welcome = std::fs::read_dir(outbox(&ts))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy()
                .contains(&format!("{}-welcome", reg["account_id"].as_str().unwrap()))
        })
        .expect("a welcome email");
    assert!(eml_text(&welcome).contains(&format!("Open the dashboard: {}/", ts.base)));

    let (status, me, headers) = post(&ts, "/v1/auth/login", &creds).await;
    assert_eq!(status, 200, "{me}");
    let set: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session_cookie = set.iter().find(|c| c.starts_with("mfh_session=")).unwrap();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("Secure"),
        "http public URL: no Secure"
    );
    assert_eq!(me["role"], "owner");
    assert_eq!(me["plan"], "trial");
    assert_eq!(me["account"]["account_id"], reg["account_id"]);
    let b = Browser::from(&headers);
    assert_eq!(me["csrf_token"], b.csrf.as_str());

    let (status, me2) = b.get(&ts, "/v1/auth/me").await;
    assert_eq!((status, &me2["user"]["email"]), (200, &json!(email)));
    // The sandbox CRM of the new account has the demo contacts.
    let (status, dry) = b
        .post(
            &ts,
            "/v1/executions?dry_run=true",
            &json!({"helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox", "contact_id": "1"}),
        )
        .await;
    assert_eq!(status, 200, "{dry}");

    // A state change without the CSRF header is refused; with it, it goes through.
    let (status, p) = b
        .send(
            &ts,
            "POST",
            "/v1/api-keys",
            Some(&json!({"name": "ci"})),
            false,
        )
        .await;
    assert_eq!(status, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("CSRF"), "{p}");
    let wrong = Browser {
        csrf: "0".repeat(64),
        ..b.clone()
    };
    let (status, _) = wrong
        .post(&ts, "/v1/api-keys", &json!({"name": "ci"}))
        .await;
    assert_eq!(status, 403);
    let (status, key) = b.post(&ts, "/v1/api-keys", &json!({"name": "ci"})).await;
    assert_eq!(status, 201, "{key}");
    // An API key keeps working beside the session.
    let (status, _) = ts.get("/v1/account", key["key"].as_str().unwrap()).await;
    assert_eq!(status, 200);

    let (status, _) = b.send(&ts, "POST", "/v1/auth/logout", None, true).await;
    assert_eq!(status, 204);
    for path in ["/v1/auth/me", "/v1/account", "/v1/helpers"] {
        let (status, p) = b.get(&ts, path).await;
        assert_eq!(status, 401, "{path} after logout: {p}");
    }
    ts.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_refused_alike_and_limited() {
    let ts = start(|c| {
        c.api.auth.attempts_per_email_per_minute = 3;
        c.api.auth.attempts_per_ip_per_minute = 8;
    })
    .await;
    let email = new_email("bob");
    let (_, _b) = signed_up(&ts, &email).await; // one attempt used
    let wrong = post(
        &ts,
        "/v1/auth/login",
        &json!({"email": email, "password": "wrong password!"}),
    )
    .await;
    let unknown = post(
        &ts,
        "/v1/auth/login",
        &json!({"email": new_email("nobody"), "password": "wrong password!"}),
    )
    .await;
    assert_eq!((wrong.0, unknown.0), (401, 401));
    assert_eq!(
        wrong.1["detail"], unknown.1["detail"],
        "an unknown address and a wrong password answer alike"
    );
    let (status, p, _) = post(&ts, "/v1/auth/login", &json!({"email": "", "password": ""})).await;
    assert_eq!(status, 422, "{p}");
    // Third attempt for this address is the last of its quota; the fourth is limited,
    // even with the right password.
    let (status, _, _) = post(
        &ts,
        "/v1/auth/login",
        &json!({"email": email, "password": "nope nope nope"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, p, headers) = post(
        &ts,
        "/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 429, "{p}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    assert!(p["detail"].as_str().unwrap().contains("try again"), "{p}");
    // Spraying other addresses from one IP runs into the per-IP limit.
    let mut limited = false;
    for _ in 0..6 {
        let (status, _, _) = post(
            &ts,
            "/v1/auth/login",
            &json!({"email": new_email("spray"), "password": "wrong password!"}),
        )
        .await;
        limited |= status == 429;
    }
    assert!(limited, "the per-IP limit never answered 429");
    ts.stop().await;
}

#[tokio::test]
async fn a_reset_link_works_once_expires_and_signs_the_user_out_everywhere() {
    let ts = start(|c| c.api.auth.reset_link_ttl = Duration::from_secs(3)).await;
    let email = new_email("cy");
    let (_, old) = signed_up(&ts, &email).await;
    // Unknown addresses get the same 202 and no email.
    let (status, _, _) = post(
        &ts,
        "/v1/auth/password-reset",
        &json!({"email": new_email("ghost")}),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _, _) = post(&ts, "/v1/auth/password-reset", &json!({"email": email})).await;
    assert_eq!(status, 202);
    let first = link_token(&ts, "password_reset", &email, "reset", &[]).await;
    let confirm = |token: &str, password: &str| json!({"token": token, "password": password});
    let (status, p, _) = post(
        &ts,
        "/v1/auth/password-reset/confirm",
        &confirm(&first, "short"),
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let (status, p, _) = post(
        &ts,
        "/v1/auth/password-reset/confirm",
        &confirm(&first, "a brand new passphrase"),
    )
    .await;
    assert_eq!(
        status, 204,
        "a refused password leaves the link usable: {p}"
    );
    let (status, p, _) = post(
        &ts,
        "/v1/auth/password-reset/confirm",
        &confirm(&first, "another new passphrase"),
    )
    .await;
    assert_eq!(status, 410, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("used"), "{p}");
    let (status, _) = old.get(&ts, "/v1/auth/me").await;
    assert_eq!(status, 401, "the reset ended the old session");
    let (status, _, _) = post(
        &ts,
        "/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 401, "the old password no longer works");
    login(&ts, &email, "a brand new passphrase").await;

    let (status, _, _) = post(&ts, "/v1/auth/password-reset", &json!({"email": email})).await;
    assert_eq!(status, 202);
    let second = link_token(&ts, "password_reset", &email, "reset", &[first]).await;
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let (status, p, _) = post(
        &ts,
        "/v1/auth/password-reset/confirm",
        &confirm(&second, "too late passphrase"),
    )
    .await;
    assert_eq!(status, 410, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");
    ts.stop().await;
}

#[tokio::test]
async fn an_invite_link_makes_the_member_once_and_expires() {
    let ts = start(|c| c.api.auth.invite_link_ttl = Duration::from_secs(4)).await;
    let owner_email = new_email("owner");
    let (account, owner) = signed_up(&ts, &owner_email).await;
    let invitee = new_email("dee");
    let (status, m) = owner
        .post(
            &ts,
            "/v1/team/invites",
            &json!({"email": invitee, "role": "member"}),
        )
        .await;
    assert_eq!((status, &m["status"]), (201, &json!("invited")), "{m}");
    let token = link_token(&ts, "team_invite", &invitee, "invite", &[]).await;

    let r = ts
        .http
        .get(format!("{}/v1/auth/invites/{token}", ts.base))
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["email"], invitee.as_str());
    assert_eq!(info["account_name"], "Ada's shop");
    assert_eq!(
        (&info["role"], &info["user_exists"]),
        (&json!("member"), &json!(false))
    );

    let (status, p, _) = post(&ts, "/v1/auth/invites/accept", &json!({"token": token})).await;
    assert_eq!(status, 422, "a new user needs a name and password: {p}");
    let accept = json!({"token": token, "name": "Dee", "password": "dee's long passphrase"});
    let (status, joined, _) = post(&ts, "/v1/auth/invites/accept", &accept).await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(
        (&joined["account_id"], &joined["role"]),
        (&json!(account), &json!("member"))
    );
    let (status, p, _) = post(&ts, "/v1/auth/invites/accept", &accept).await;
    assert_eq!(status, 410, "{p}");

    // The new member signs in (the link proved the address) with the invited role.
    let dee = login(&ts, &invitee, "dee's long passphrase").await;
    let (_, me) = dee.get(&ts, "/v1/auth/me").await;
    assert_eq!(
        (&me["role"], &me["account"]["account_id"]),
        (&json!("member"), &json!(account))
    );
    let (status, _) = dee.post(&ts, "/v1/api-keys", &json!({"name": "x"})).await;
    assert_eq!(status, 403, "a member may not manage keys");
    let (_, team) = owner.get(&ts, "/v1/team").await;
    let dee_row = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == invitee.as_str())
        .unwrap()
        .clone();
    assert_eq!(dee_row["status"], "active");

    let late = new_email("late");
    let (status, _) = owner
        .post(
            &ts,
            "/v1/team/invites",
            &json!({"email": late, "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201);
    let late_token = link_token(&ts, "team_invite", &late, "invite", &[]).await;
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    let (status, p, _) = post(
        &ts,
        "/v1/auth/invites/accept",
        &json!({"token": late_token, "name": "Late", "password": "late long passphrase"}),
    )
    .await;
    assert_eq!(status, 410, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");
    ts.stop().await;
}

#[tokio::test]
async fn a_session_never_reaches_another_accounts_resources() {
    let ts = start(|_| {}).await;
    let (_, a) = signed_up(&ts, &new_email("alice")).await;
    let (_, b) = signed_up(&ts, &new_email("bert")).await;
    let (status, helper) = a
        .post(
            &ts,
            "/v1/helpers",
            &json!({"name": "VIP", "helper": "tag_it", "config": {"action": "apply", "tag_ids": ["101"]}, "connection_id": "sandbox"}),
        )
        .await;
    assert_eq!(status, 201, "{helper}");
    let id = helper["helper_id"].as_str().unwrap();
    // Run it as Keap's campaign would, by its URL.
    let r = ts
        .http
        .post(helper["run_url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("contactId=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let exec: Value = r.json().await.unwrap();
    let exec_id = exec["execution_id"].as_str().unwrap();
    for path in [
        format!("/v1/helpers/{id}"),
        format!("/v1/executions/{exec_id}"),
    ] {
        let (status, p) = b.get(&ts, &path).await;
        assert_eq!(status, 404, "{path}: {p}");
    }
    let (status, _) = b
        .send(&ts, "DELETE", &format!("/v1/helpers/{id}"), None, true)
        .await;
    assert_eq!(status, 404);
    let (status, _) = a.get(&ts, &format!("/v1/helpers/{id}")).await;
    assert_eq!(status, 200, "untouched by the other account");
    let (_, list) = b.get(&ts, "/v1/helpers").await;
    assert!(!list.to_string().contains(id), "{list}");
    ts.stop().await;
}

#[tokio::test]
async fn notification_preferences_turn_off_what_may_be_turned_off() {
    let ts = start(|_| {}).await;
    let email = new_email("eve");
    let (account, b) = signed_up(&ts, &email).await;
    let (status, p) = b.get(&ts, "/v1/account/notification-preferences").await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (&p["execution_failures"], &p["usage_alerts"], &p["billing"]),
        (&json!(true), &json!(true), &json!(true))
    );
    assert!(
        p["always_sent"]
            .as_array()
            .unwrap()
            .contains(&json!("payment_failed"))
    );
    let (status, p) = b
        .send(
            &ts,
            "PUT",
            "/v1/account/notification-preferences",
            Some(&json!({"usage_alerts": "no"})),
            true,
        )
        .await;
    assert_eq!(status, 422, "{p}");
    let off = json!({"execution_failures": true, "connection_problems": true, "usage_alerts": false, "billing": false});
    let (status, p) = b
        .send(
            &ts,
            "PUT",
            "/v1/account/notification-preferences",
            Some(&off),
            true,
        )
        .await;
    assert_eq!((status, &p["usage_alerts"]), (200, &json!(false)), "{p}");

    // The notifier drops a usage alert and a receipt, and still sends a failed payment.
    use mfh_processors::billing::{NotificationIntent, NotificationKind};
    let intents = [
        NotificationIntent::new(
            NotificationKind::UsageAlert,
            "usage_alert:t",
            json!({"percent": 80}),
        ),
        NotificationIntent::new(
            NotificationKind::PaymentReceipt,
            "payment_receipt:t",
            json!({}),
        ),
        NotificationIntent::new(
            NotificationKind::PaymentFailed,
            "payment_failed:t",
            json!({}),
        ),
    ];
    mfh_processors::billing_processor::request_notifications(
        &ts.stack.services,
        &account,
        &intents,
    )
    .await
    .unwrap();
    let failed = outbox(&ts).join(format!("{account}-payment_failed_t.eml"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !failed.exists() {
        assert!(
            Instant::now() < deadline,
            "the failed-payment email never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One partition per account: the two before it were handled first.
    for dropped in ["usage_alert_t", "payment_receipt_t"] {
        let f = outbox(&ts).join(format!("{account}-{dropped}.eml"));
        assert!(!f.exists(), "{dropped} was sent although turned off");
    }
    assert!(eml_text(&failed).contains(&format!("{}/settings/billing", ts.base)));
    ts.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_the_configured_origins() {
    let preflight = |ts: &TestStack, origin: &'static str| {
        ts.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/auth/me", ts.base))
            .header("origin", HeaderValue::from_static(origin))
            .header("access-control-request-method", "GET")
            .send()
    };
    let ts = start(|_| {}).await;
    let r = preflight(&ts, "https://dash.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    ts.stop().await;

    let ts = start(|c| c.api.cors_allowed_origins = vec!["https://dash.example.com".into()]).await;
    let r = preflight(&ts, "https://dash.example.com").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://dash.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = preflight(&ts, "https://evil.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    ts.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_served_for_browsers_and_api_paths_stay_problems() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><div id=root>",
    )
    .unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("assets/app-1.js"), "console.log(1)").unwrap();
    let dir = web.path().to_owned();
    let ts = start(move |c| c.api.web_dir = dir).await;
    let get = |path: &str, accept: &'static str| {
        ts.http
            .get(format!("{}{path}", ts.base))
            .header("accept", accept)
            .send()
    };
    for path in ["/", "/helpers", "/verify?token=abc"] {
        let r = get(path, "text/html,*/*").await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert!(r.text().await.unwrap().contains("id=root"), "{path}");
    }
    let r = get("/assets/app-1.js", "*/*").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    for (path, accept) in [("/nope", "application/json"), ("/v1/nope", "text/html")] {
        let r = get(path, accept).await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["detail"], format!("route {path} not found"));
    }
    ts.stop().await;
}
