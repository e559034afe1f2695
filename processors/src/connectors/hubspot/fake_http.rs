//! A minimal HTTP/1.1 server for the vendor fakes (HubSpot's and GoHighLevel's), on tokio
//! alone: axum is only a dev-dependency, and the fakes must also build under the
//! `test-util` feature for the end-to-end tests and the sync benchmark.
//!
//! It also holds what both OAuth fakes share: the token endpoint, the set of accepted
//! access tokens, the refresh counter and the queue of injected failures.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The OAuth client the fakes accept.
pub(crate) const CLIENT_ID: &str = "fake-client";
/// The OAuth client secret the fakes accept.
pub(crate) const CLIENT_SECRET: &str = "fake-secret";
/// The access token a fake accepts from the start.
pub(crate) const FIRST_TOKEN: &str = "fake-access-0";
/// The refresh token the fakes accept.
pub(crate) const REFRESH_TOKEN: &str = "fake-refresh";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The raw query string, without `?`.
    pub(crate) query: String,
    /// Headers, names lower-cased.
    pub(crate) headers: HashMap<String, String>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// `METHOD /path?query`, as [`requests`](super::fake::FakeServer::requests) lists it.
    #[must_use]
    pub(crate) fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }

    /// A decoded query parameter.
    #[must_use]
    pub(crate) fn param(&self, key: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// The JSON body, `Null` when there is none or it does not parse.
    #[must_use]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The form-encoded body.
    #[must_use]
    pub(crate) fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The bearer token of the `Authorization` header.
    #[must_use]
    pub(crate) fn bearer(&self) -> Option<&str> {
        self.headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
    }

    /// The path's segments after `prefix` (empty when the path does not start with it).
    #[must_use]
    pub(crate) fn segments(&self, prefix: &str) -> Vec<String> {
        self.path
            .strip_prefix(prefix)
            .map(|rest| {
                rest.split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        url::form_urlencoded::parse(format!("x={s}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The fake's answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Extra headers.
    pub(crate) headers: Vec<(String, String)>,
    /// JSON body (empty for none).
    pub(crate) body: String,
}

impl Response {
    /// A JSON answer.
    #[must_use]
    pub(crate) fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Serves `handler` on a fresh port of 127.0.0.1 and returns `http://127.0.0.1:PORT`.
pub(crate) async fn serve<F>(handler: F) -> String
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the fake binds a local port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let h = handler.clone();
            tokio::spawn(async move {
                let _ = connection(sock, h.as_ref()).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn connection<F>(sock: tokio::net::TcpStream, handler: &F) -> std::io::Result<()>
where
    F: Fn(Request) -> Response,
{
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or("/").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target, String::new()),
        };
        let resp = handler(Request {
            method,
            path,
            query,
            headers,
            body,
        });
        let mut out = format!(
            "HTTP/1.1 {} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            resp.status,
            resp.body.len()
        );
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&resp.body);
        w.write_all(out.as_bytes()).await?;
        w.flush().await?;
    }
}

/// What both OAuth fakes share: accepted tokens, refreshes, injected failures and the
/// request log.
#[derive(Debug)]
pub(crate) struct Common {
    /// Every request, as `METHOD /path?query`.
    pub(crate) requests: Vec<String>,
    /// Failures to answer next, oldest first: status and `Retry-After` seconds.
    pub(crate) failures: VecDeque<(u16, Option<u64>)>,
    /// Access tokens the API accepts.
    pub(crate) valid: HashSet<String>,
    /// Static tokens the API accepts (private-app / private-integration tokens).
    pub(crate) static_tokens: HashSet<String>,
    /// Refresh-token grants served.
    pub(crate) refreshes: usize,
    /// Vendor fields the token response carries besides the tokens (GoHighLevel's
    /// `locationId`, `companyId`, `userType`).
    pub(crate) token_fields: serde_json::Map<String, Value>,
    issued: usize,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            requests: Vec::new(),
            failures: VecDeque::new(),
            valid: [FIRST_TOKEN.to_owned()].into(),
            static_tokens: HashSet::new(),
            refreshes: 0,
            token_fields: serde_json::Map::new(),
            issued: 0,
        }
    }
}

/// What [`Common::pre`] decided before the vendor's own routes run.
#[derive(Debug)]
pub(crate) enum Pre {
    /// Answer this.
    Answer(Response),
    /// An injected failure with this status and `Retry-After`.
    Fail(u16, Option<u64>),
    /// Authentication failed.
    Unauthorized,
    /// Go on with the vendor's routes.
    Route,
}

impl Common {
    /// Logs `req`, then serves injected failures, the token endpoint at `token_path`,
    /// and the bearer check.
    pub(crate) fn pre(&mut self, req: &Request, token_path: &str) -> Pre {
        self.requests.push(req.line());
        if let Some((status, retry)) = self.failures.pop_front() {
            return Pre::Fail(status, retry);
        }
        if req.method == "POST" && req.path == token_path {
            return Pre::Answer(self.token(req));
        }
        match req.bearer() {
            Some(t) if self.valid.contains(t) || self.static_tokens.contains(t) => Pre::Route,
            _ => Pre::Unauthorized,
        }
    }

    /// Forgets every issued access token; the API then answers 401 for them.
    pub(crate) fn expire(&mut self) {
        self.valid.clear();
    }

    fn token(&mut self, req: &Request) -> Response {
        let form = req.form();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
            return Response::json(401, &json!({"error": "invalid_client"}));
        }
        match get("grant_type") {
            "refresh_token" if get("refresh_token") == REFRESH_TOKEN => self.refreshes += 1,
            "authorization_code" if !get("code").is_empty() => {}
            _ => return Response::json(400, &json!({"error": "invalid_grant"})),
        }
        self.issued += 1;
        let access = format!("fake-access-{}", self.issued);
        self.valid.insert(access.clone());
        let mut body = json!({
            "access_token": access,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": 1800,
            "token_type": "bearer",
        });
        if let Some(o) = body.as_object_mut() {
            o.extend(self.token_fields.clone());
        }
        Response::json(200, &body)
    }
}
