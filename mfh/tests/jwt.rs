//! Dashboard sign-in with a JWT over real sockets: a local identity provider serves its
//! JWKS on 127.0.0.1, and the API accepts a token it signed for a member of the account,
//! with the member's role, and refuses every other token.
#![allow(clippy::unwrap_used)]

mod support;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use mfh_processors::store::team::{Member, Role};
use serde_json::{Value, json};
use support::TestStack;

/// A throwaway RSA key made for this test only (openssl genpkey, 2048 bits).
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQC0SuHRhwW4ol8M\nc1PVeZNaxeQ6SRF2fAJsXlXY1cO93J6siVfXIOG/hVLQwsEiCevUQLc9VpQ3wc5Q\nf8rOK3KfnJj/Om5iMn+HWcVFISI3Xwxhy1xc6Jyl7okXVa1WBNRpIs0BZMnA0Ti1\nSdZwZjJhpHaba/G2Q2rcS5Oem4bI84nHWkmZkoKR3Y5x+D5KHQ4sNBCeC2XLqgEM\nO8Kjghvtm2iTC2Zkdx9fW0QgVm0GHljrocRre/nqCLz594NBtmrpenMo49BRgiuV\ng3K8fkKU20G5AlypRqxeZZceUvm1VTK04a2JKVUXymu6YbjTLGcELcjAvfvF4rI2\nanOAutu/AgMBAAECggEAAXqPwRCqYUfnY86NjQJ9qtlEAVphASe3GV+DX4sOo+H0\nGEmFKg4VMDI44bxC7nesoZJxx+k2nZr+NAN9pmoNezoPyZeXkJWwyBYnJENHYDuw\nehwQ1BKFr3b+qg+ZXzpg6cMLgr8VFRSEXSfC4nAw8svxIis2Jw3R1qBS/5Jel+kS\nVOIEDptFBUOWAw/RcQcccafutUxvbWnLTodA9queIcM2ahHVdbfw6Vny8spYzDL2\nTcZ1PmmUZ2gyz1J2psYrK6SqWjFozS7baK5x18IbQghOlU4/BrwGyyuaVcYiEW6n\n8cim8qvgPQ8oXe0IGc7eSnXbGdXQyMrgUHloR/nYCQKBgQDarqbYHSLzOECSpRYE\nh2TVT75Q/x6O6e6c8lVtl5Ka/+IT1p3nGBV0AnUEVqPyNVFswzbvVO9QQARgCMjF\nuaZ4Aa17mF/+k5x2c8b3CPLUZ2c0RE4zXkUuOQBSzjCu1ZlWOZGAILCvEREJ3Wts\nvpOgPo9M+Xr3x3VcEWSg4XxLpQKBgQDTDyMzNrdNT1rYDxFrnjKt6EAbrlGuSD4M\nabTKTbr89BGTPoxDyjTK2LoqGYjkmbvCoIOOeXB+JCh0aVI/2ONd1W6btzyC8SVG\nWosNhw4rRxee9cDcqGOaRy3gYAo822Ny3MFmBeBSxuiVARghQzhugl3DhYwgX97j\nExbs60H8kwKBgQCnXbAYCwSqvUy+b1bQlIcZsvRnrTnIC0YyHE5BmBX+RwTSRhmH\nuqkAprjEX0MOprvwz9+FgK2/757pmQ+ANLwxcKdDxrUBdBv1lFqcyt5+rb0RBY4M\nRoQQAlQ7C8+6n4PBuEGhnGNdOWSe9jW3fowhwn+OXAo/BQrPMgigELM+eQKBgQDB\nNu5miASuhaMIgGLWPnDuu9tUe/TSs9f5zRtwyFASGe2s+mm19Xr26AklWVL007gL\nqJ5G4+2TzM4sI+7j/E3JLQahDtIanWAeU+1QaP8Tp3V8VEZGuvDT362j5sf4hm84\nS9fQ6jg+D1IEdof8i2kx4a6su6lYSevlvSgTpBs4eQKBgQDDRM9Vj98MBJ/vSMEo\nL9cl6gUb9dGPN6odbcXMPpHIETfDcgEVPmSHz7Ph0Exx2WXEMztXbRRqQ9P1BkWr\nPolVBiSU0/nKMRsreRRm64W7nPgRMdVAHcHLnYs9W2qQsxTDOm9vbtLIRTqimVl5\n+WtKyd6QWTISusWsPXus7paAsQ==\n-----END PRIVATE KEY-----";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";

fn signing_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(TEST_KEY.as_bytes()).unwrap()
}

/// Serves the key set at `/.well-known/jwks.json`; returns its URL.
async fn start_idp(cancel: &mfh_pipeline::CancellationToken) -> String {
    let mut jwk = Jwk::from_encoding_key(&signing_key(), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("test-1".into());
    let set = JwkSet { keys: vec![jwk] };
    let body = serde_json::to_value(&set).unwrap();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    url
}

fn token(claims: &Value, kid: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    encode(&h, claims, &signing_key()).unwrap()
}

async fn get(t: &TestStack, path: &str, bearer: &str) -> (u16, Value) {
    let r = t
        .http
        .get(format!("{}{path}", t.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_token_signs_in_with_the_members_role_and_nothing_else_does() {
    let cancel = mfh_pipeline::CancellationToken::new();
    let jwks = start_idp(&cancel).await;
    let t = TestStack::start_configured(None, |cfg| {
        cfg.api.jwks_url = jwks.clone();
        cfg.api.jwt_issuer = ISSUER.into();
        cfg.api.jwt_audiences = vec!["client-1".into()];
    })
    .await;
    let store = &t.stack.services.store;
    let now = chrono::Utc::now().timestamp();
    store
        .add_member(
            &t.account,
            &Member::active("ada@example.com", Role::Member, 1),
        )
        .await
        .unwrap();
    let claims = |email: &str, account: &str, aud: &str, exp: i64| {
        json!({"iss": ISSUER, "aud": aud, "exp": exp, "iat": now, "token_use": "id",
               "email": email, "custom:account_id": account})
    };
    let good = token(
        &claims("Ada@Example.com", &t.account, "client-1", now + 600),
        "test-1",
    );
    let (s, p) = get(&t, "/v1/account", &good).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["account_id"], t.account.as_str());
    // A member's role reads but does not manage keys.
    let (s, p) = get(&t, "/v1/api-keys", &good).await;
    assert_eq!(s, 403, "{p}");
    // A Cognito access token names its app in client_id instead of aud.
    let mut access = claims("ada@example.com", &t.account, "", now + 600);
    access.as_object_mut().unwrap().remove("aud");
    access["client_id"] = json!("client-1");
    let (s, _) = get(&t, "/v1/account", &token(&access, "test-1")).await;
    assert_eq!(s, 200);
    // Refused: expired, other audience, other issuer, unknown key, tampered, no claim.
    let expired = token(
        &claims("ada@example.com", &t.account, "client-1", now - 120),
        "test-1",
    );
    let other_aud = token(
        &claims("ada@example.com", &t.account, "client-2", now + 600),
        "test-1",
    );
    let mut other_iss = claims("ada@example.com", &t.account, "client-1", now + 600);
    other_iss["iss"] = json!("https://evil.example");
    let unknown_kid = token(
        &claims("ada@example.com", &t.account, "client-1", now + 600),
        "nope",
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged = claims("ada@example.com", "acct_other", "client-1", now + 600);
    parts[1] = base64_url(&forged.to_string());
    let tampered = parts.join(".");
    let mut no_account = claims("ada@example.com", &t.account, "client-1", now + 600);
    no_account
        .as_object_mut()
        .unwrap()
        .remove("custom:account_id");
    for (name, tok) in [
        ("expired", expired),
        ("audience", other_aud),
        ("issuer", token(&other_iss, "test-1")),
        ("kid", unknown_kid),
        ("tampered", tampered),
        ("account claim", token(&no_account, "test-1")),
    ] {
        let (s, p) = get(&t, "/v1/account", &tok).await;
        assert_eq!(s, 401, "{name}: {p}");
        assert_eq!(p["status"], 401, "{name}: {p}");
    }
    // A valid token for someone who is not a member of the account it names.
    let (other_account, _) = t.add_account().await;
    let stranger = token(
        &claims("ada@example.com", &other_account, "client-1", now + 600),
        "test-1",
    );
    let (s, p) = get(&t, "/v1/account", &stranger).await;
    assert_eq!(s, 403, "{p}");
    // API keys still work next to tokens.
    let (s, _) = t.get("/v1/account", &t.key).await;
    assert_eq!(s, 200);
    t.stop().await;
    cancel.cancel();
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
