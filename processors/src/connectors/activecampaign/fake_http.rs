//! A minimal HTTP/1.1 server on tokio's TCP types alone: the fake vendor is built with
//! the `test-util` feature for other crates' tests, where axum (a dev-dependency) is
//! not available. One request per connection (`connection: close`).

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// A parsed request.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) method: String,
    /// The path without the query.
    pub(super) path: String,
    /// The raw query (without `?`), possibly empty.
    pub(super) query: String,
    /// Headers with lower-case names.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query parameters.
    pub(super) fn params(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// A decoded query parameter.
    pub(super) fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) body: String,
    pub(super) retry_after: Option<u64>,
}

impl Response {
    /// A JSON response.
    pub(super) fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            retry_after: None,
        }
    }
}

/// Serves `handler` on `listener` until the runtime stops.
pub(super) async fn serve<F>(listener: TcpListener, handler: Arc<F>)
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    while let Ok((stream, _)) = listener.accept().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Some(req) = read_request(&stream).await {
                let resp = handler(req);
                write_response(&stream, &resp).await;
            }
        });
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_owned();
            let target = first.next()?.to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_owned(), q.to_owned()),
                    None => (target, String::new()),
                };
                return Some(Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                });
            }
        }
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

async fn write_response(stream: &TcpStream, resp: &Response) {
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    if let Some(s) = resp.retry_after {
        out.push_str(&format!("retry-after: {s}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&resp.body);
    let bytes = out.into_bytes();
    let mut sent = 0;
    while sent < bytes.len() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(&bytes[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
