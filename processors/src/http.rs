//! The one outbound HTTP client every helper and connector uses.
//!
//! It checks status codes, retries only retryable failures (connect errors, 429, 5xx)
//! with capped exponential backoff and jitter, honours `Retry-After`, caps requests in
//! flight, and guards against SSRF: customer-configured URLs may not reach loopback,
//! private, link-local or otherwise internal addresses unless the operator allowed it.

use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Settings of the outbound client.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Per-request timeout.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Attempts per request, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each time up to `max_backoff`.
    #[serde(with = "humantime_serde", default = "default_backoff")]
    pub initial_backoff: Duration,
    /// Largest delay between attempts, `Retry-After` included.
    #[serde(with = "humantime_serde", default = "default_max_backoff")]
    pub max_backoff: Duration,
    /// Requests in flight at once across the process.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Let customer URLs reach private and loopback addresses. Off in production.
    #[serde(default)]
    pub allow_private_networks: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
const fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(10)
}
const fn default_in_flight() -> usize {
    64
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            max_attempts: default_attempts(),
            initial_backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            max_in_flight: default_in_flight(),
            allow_private_networks: false,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is malformed or not http(s).
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The URL points at an address customers may not reach.
    #[error("blocked: {url} resolves to a private or internal address")]
    Blocked {
        /// The URL.
        url: String,
    },
    /// The server answered with a non-success status after all attempts.
    #[error("HTTP {status} from {url}")]
    Status {
        /// The URL.
        url: String,
        /// The final status.
        status: u16,
        /// The final body, cut to 1 KiB.
        body: String,
        /// The server's `Retry-After` on the final answer.
        retry_after: Option<Duration>,
    },
    /// The request never got a response after all attempts.
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
}

impl HttpError {
    /// Whether trying again later may succeed.
    #[must_use]
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Transport { .. } => true,
            Self::InvalidUrl { .. } | Self::Blocked { .. } => false,
        }
    }
}

/// A response that passed the status check.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// The shared client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    cfg: Arc<HttpConfig>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the TLS backend cannot initialise.
    pub fn new(cfg: HttpConfig) -> Result<Self, reqwest::Error> {
        let allow = cfg.allow_private_networks;
        let inner = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: allow,
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if !allow && literal_ip_blocked(attempt.url()) {
                    attempt.error("redirect to a private address")
                } else {
                    attempt.follow()
                }
            }))
            .user_agent("mfh/0.1")
            .build()?;
        let permits = Arc::new(Semaphore::new(cfg.max_in_flight.max(1)));
        Ok(Self {
            inner,
            cfg: Arc::new(cfg),
            permits,
        })
    }

    /// A client for tests: loopback allowed, short timeouts, one retry.
    ///
    /// # Panics
    /// If the TLS backend cannot initialise, which would fail every test anyway.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn for_tests() -> Self {
        Self::new(HttpConfig {
            allow_private_networks: true,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            ..HttpConfig::default()
        })
        .expect("test HTTP client builds")
    }

    /// Sends a request built by `build` (called once per attempt) and checks the status.
    ///
    /// # Errors
    /// [`HttpError`] after the last attempt, or at once for a non-retryable failure.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<HttpResponse, HttpError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| HttpError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HttpError::InvalidUrl {
                url: url.to_owned(),
                reason: "scheme must be http or https".into(),
            });
        }
        if !self.cfg.allow_private_networks && literal_ip_blocked(&parsed) {
            return Err(HttpError::Blocked {
                url: url.to_owned(),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = self.permits.acquire().await;
                build(self.inner.request(method.clone(), parsed.clone()))
                    .send()
                    .await
            };
            let (err, retry_after) = match result {
                Ok(resp) if resp.status().is_success() => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.map_err(|source| HttpError::Transport {
                        url: url.to_owned(),
                        source,
                    })?;
                    return Ok(HttpResponse {
                        status,
                        body: body.to_vec(),
                    });
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .map(|v| v.as_bytes().to_vec());
                    let body = resp.bytes().await.unwrap_or_default();
                    let err = refusal(url, status, retry_after.as_deref(), &body);
                    let wait = match &err {
                        HttpError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    (err, wait)
                }
                Err(source) if is_blocked_resolution(&source) => {
                    return Err(HttpError::Blocked {
                        url: url.to_owned(),
                    });
                }
                Err(source) => (
                    HttpError::Transport {
                        url: url.to_owned(),
                        source,
                    },
                    None,
                ),
            };
            if !err.retryable() || attempt >= self.cfg.max_attempts {
                return Err(err);
            }
            tokio::time::sleep(self.backoff(attempt, retry_after)).await;
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .cfg
            .initial_backoff
            .saturating_mul(1 << (attempt - 1).min(16));
        let jitter = rand::rng().random_range(0.5..1.0);
        let base = retry_after.unwrap_or_else(|| exp.mul_f64(jitter));
        base.min(self.cfg.max_backoff)
    }
}

/// The error of a response that was not a success: its `Retry-After` (delta-seconds;
/// anything else is ignored) and the start of its body, cut to 1 KiB at a char boundary
/// (a vendor's non-ASCII text across byte 1024 is ordinary input, not a reason to panic).
#[must_use]
pub fn refusal(url: &str, status: u16, retry_after: Option<&[u8]>, body: &[u8]) -> HttpError {
    let retry_after = retry_after
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    body.truncate(body.floor_char_boundary(1024));
    HttpError::Status {
        url: url.to_owned(),
        status,
        body,
        retry_after,
    }
}

fn is_blocked_resolution(err: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = src {
        if e.to_string().contains(BLOCKED_MSG) {
            return true;
        }
        src = e.source();
    }
    false
}

const BLOCKED_MSG: &str = "address is private or internal";

/// Resolves names and drops internal addresses, so a hostname cannot smuggle a request
/// to loopback or the private network (DNS rebinding included: the checked address is
/// the one connected to).
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow || !is_internal(a.ip()))
                .collect();
            if ok.is_empty() {
                return Err(BLOCKED_MSG.into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

fn literal_ip_blocked(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        None => true,
    }
}

/// Loopback, private, link-local, CGNAT, unspecified, multicast, documentation and
/// unique-local ranges, and IPv4 mapped into IPv6.
#[must_use]
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn blocks_loopback_literal_and_localhost_names() {
        let client = HttpClient::new(HttpConfig::default()).unwrap();
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/",
            "http://localhost/",
            "http://0x7f000001/",
        ] {
            let err = client
                .send(reqwest::Method::POST, url, |r| r)
                .await
                .unwrap_err();
            assert!(matches!(err, HttpError::Blocked { .. }), "{url}: {err:?}");
        }
        let err = client
            .send(reqwest::Method::GET, "file:///etc/passwd", |r| r)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::InvalidUrl { .. }));
    }

    /// A 400 whose body has a two-byte character across byte 1024 is an error with the
    /// body cut at a boundary, not a panic.
    #[tokio::test]
    async fn an_error_body_is_cut_at_a_char_boundary() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = format!("{}é tail", "a".repeat(1023));
            let resp = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\nretry-after: 99999999999999999999\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        });
        let client = HttpClient::new(HttpConfig {
            allow_private_networks: true,
            max_attempts: 1,
            ..HttpConfig::default()
        })
        .unwrap();
        let err = client
            .send(reqwest::Method::GET, &format!("http://{addr}/"), |r| r)
            .await
            .unwrap_err();
        match err {
            HttpError::Status { status, body, .. } => {
                assert_eq!(status, 400);
                assert_eq!(body.len(), 1023);
            }
            other => panic!("{other:?}"),
        }
    }
}
