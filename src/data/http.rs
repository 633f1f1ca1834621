//! A small, careful HTTP GET shared by the spider and the downloader.
//!
//! * redirects are followed by hand (at most 5), so each hop can be checked: with
//!   [`RedirectPolicy::SameHost`] a redirect to another host is refused;
//! * the body is read up to a byte limit, and a `Content-Length` over it is refused before reading;
//! * every failure is classified as transient (retry later: timeouts, connection errors, 5xx,
//!   429) or permanent (404, too large, not allowed).

use std::time::Duration;

use url::Url;

/// Which redirects a fetch follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPolicy {
    /// Only to the same scheme, host and port as the URL asked for.
    SameHost,
    /// Anywhere (still http or https only).
    Any,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP status {code}")]
    Status {
        code: u16,
        /// Seconds the server asked us to wait (`Retry-After` on 429/503), if it said.
        retry_after: Option<u64>,
    },
    #[error("body over the {0}-byte limit")]
    TooLarge(u64),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Network(String),
    #[error("redirect to another host refused: {0}")]
    RedirectOffSite(String),
    #[error("redirect without a valid Location")]
    BadRedirect,
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("not an http(s) URL: {0}")]
    UnsupportedUrl(String),
}

impl FetchError {
    /// Worth trying again later (the server or the network may recover).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout | FetchError::Network(_) => true,
            FetchError::Status { code, .. } => *code == 429 || *code >= 500,
            _ => false,
        }
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// An HTTP client with the project's timeouts and user agent.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    max_redirects: usize,
}

/// User agent sent by the spider and the downloader, so site owners can tell who we are.
pub const USER_AGENT: &str = concat!(
    "LogoGAN-course/",
    env!("CARGO_PKG_VERSION"),
    " (educational crawler; obeys robots.txt)"
);

impl HttpClient {
    /// A client whose requests give up after `timeout` in total.
    pub fn new(timeout: Duration, user_agent: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(user_agent)
            .build();
        Self {
            agent: config.into(),
            max_redirects: 5,
        }
    }

    /// GET `url`, reading at most `limit` bytes of body.
    pub fn get(
        &self,
        url: &Url,
        limit: u64,
        redirects: RedirectPolicy,
    ) -> Result<Fetched, FetchError> {
        let mut current = url.clone();
        for _ in 0..=self.max_redirects {
            if !matches!(current.scheme(), "http" | "https") {
                return Err(FetchError::UnsupportedUrl(current.to_string()));
            }
            let mut response = self.agent.get(current.as_str()).call().map_err(classify)?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if (300..400).contains(&status) {
                let next = header("location")
                    .and_then(|loc| current.join(&loc).ok())
                    .ok_or(FetchError::BadRedirect)?;
                if redirects == RedirectPolicy::SameHost && !same_origin(url, &next) {
                    return Err(FetchError::RedirectOffSite(next.to_string()));
                }
                current = next;
                continue;
            }
            if status >= 400 {
                let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
                return Err(FetchError::Status {
                    code: status,
                    retry_after,
                });
            }
            if let Some(length) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
                if length > limit {
                    return Err(FetchError::TooLarge(limit));
                }
            }
            let content_type = header("content-type");
            let body = response
                .body_mut()
                .with_config()
                .limit(limit)
                .read_to_vec()
                .map_err(|e| match e {
                    ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge(limit),
                    other => classify(other),
                })?;
            return Ok(Fetched {
                url: current,
                content_type,
                body,
            });
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }
}

fn classify(error: ureq::Error) -> FetchError {
    match error {
        ureq::Error::Timeout(_) => FetchError::Timeout,
        ureq::Error::StatusCode(code) => FetchError::Status {
            code,
            retry_after: None,
        },
        ureq::Error::BodyExceedsLimit(limit) => FetchError::TooLarge(limit),
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => FetchError::Timeout,
        other => FetchError::Network(other.to_string()),
    }
}

/// Same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_compares_scheme_host_and_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(&u("http://a.org/x"), &u("http://a.org:80/y?z")));
        assert!(!same_origin(&u("http://a.org/x"), &u("https://a.org/x")));
        assert!(!same_origin(&u("http://a.org/x"), &u("http://b.org/x")));
        assert!(!same_origin(
            &u("http://127.0.0.1:80/"),
            &u("http://127.0.0.1:81/")
        ));
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        assert!(FetchError::Timeout.is_transient());
        let status = |code| FetchError::Status {
            code,
            retry_after: None,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
        assert!(!FetchError::TooLarge(1).is_transient());
        assert!(!FetchError::RedirectOffSite("x".into()).is_transient());
    }
}
