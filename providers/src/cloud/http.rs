//! HTTP plumbing shared by the clients: the client itself, status codes and error bodies
//! mapped to [`Failure`]s, `Retry-After`, and a body read with an idle timeout.

use std::time::{Duration, SystemTime};

use adam_actors::ports::ProviderError;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use super::resilience::{Failure, ResilienceConfig};

/// Longest error body read (the rest is ignored).
const MAX_ERROR_BODY: usize = 16 * 1024;

/// An HTTP client with the connect timeout of `config` (the other timeouts are the
/// guard's and the clients').
pub fn client(config: &ResilienceConfig) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout())
        .user_agent(concat!("adam/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Unavailable(format!("HTTP client: {e}")))
}

/// `base` (an `http(s)://` URL, with or without a trailing slash) joined with `path`.
pub fn endpoint(base: &str, path: &str) -> Result<Url, ProviderError> {
    let joined = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let url = Url::parse(&joined)
        .map_err(|e| ProviderError::Rejected(format!("bad base URL `{base}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::Rejected(format!(
            "base URL `{base}` must be http:// or https://"
        )));
    }
    Ok(url)
}

/// An `Authorization`-style header value holding `prefix` + the key, marked sensitive
/// (kept out of debug output).
pub fn secret_header(prefix: &str, key: &SecretString) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret()))
        .map_err(|_| ProviderError::Rejected("the API key is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A transport error as a failure: timeouts as `Timeout`, the rest as `Unavailable`.
pub fn transport(provider: &str, error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::from(ProviderError::Timeout)
    } else if error.is_connect() {
        Failure::from(ProviderError::Unavailable(format!(
            "{provider}: cannot connect: {error}"
        )))
    } else {
        Failure::from(ProviderError::Unavailable(format!("{provider}: {error}")))
    }
}

/// The provider's `Retry-After` (`retry-after-ms` as OpenAI sends it, else `Retry-After`
/// in seconds or as an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The failure an HTTP error status means: 408 a timeout; 429 a rate limit (with its
/// `Retry-After`); 5xx unavailable (retried); other 4xx a rejected request (not
/// retried). `body` is the error response, whose vendor message is kept.
pub fn status_failure(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Failure {
    let message = format!(
        "{provider}: HTTP {}: {}",
        status.as_u16(),
        error_message(body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned())
    );
    let after = retry_after(headers);
    match status.as_u16() {
        408 => Failure::from(ProviderError::Timeout),
        429 => Failure::rate_limited(message, after),
        500..=599 => Failure {
            error: ProviderError::Unavailable(message),
            retry_after: after,
            rate_limited: false,
        },
        _ => Failure::from(ProviderError::Rejected(message)),
    }
}

/// Passes a successful response through; reads an error response's body (bounded) into
/// the matching failure.
pub async fn check(
    provider: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    Err(status_failure(provider, status, &headers, &body))
}

/// The message of a vendor error body: `{"error": {"message"}}` (OpenAI, OpenRouter),
/// `{"error": "…"}`, `{"message"}` / `{"err_msg"}` (Deepgram), `{"detail": {"message"}}`
/// (ElevenLabs) or `{"detail": "…"}`; else the text itself, shortened.
pub fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let candidates = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("err_msg"),
            json.pointer("/detail/message"),
            json.get("detail"),
            json.get("description"),
        ];
        if let Some(text) = candidates.into_iter().flatten().find_map(|v| v.as_str()) {
            return Some(shorten(text));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| shorten(text))
}

fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The next piece of a streamed body, waiting at most `idle`: `Ok(None)` at the end,
/// `Timeout` when the provider went quiet.
pub async fn next_chunk<S>(
    provider: &str,
    body: &mut S,
    idle: Duration,
) -> Result<Option<Bytes>, Failure>
where
    S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    match tokio::time::timeout(idle, body.next()).await {
        Err(_) => {
            tracing::warn!(
                provider,
                idle_ms = idle.as_millis() as u64,
                "provider stream went quiet"
            );
            Err(Failure::from(ProviderError::Timeout))
        }
        Ok(None) => Ok(None),
        Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
        Ok(Some(Err(e))) => Err(transport(provider, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_milliseconds_or_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        let soon = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(soon)).expect("header"),
        );
        let wait = retry_after(&h).expect("a date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
    }

    #[test]
    fn statuses_map_to_retryable_or_not() {
        let h = HeaderMap::new();
        let body = br#"{"error":{"message":"Rate limit reached","code":429}}"#;
        let f = status_failure("x", StatusCode::TOO_MANY_REQUESTS, &h, body);
        assert!(f.rate_limited);
        assert_eq!(
            f.error,
            ProviderError::Unavailable("x: HTTP 429: Rate limit reached".into())
        );
        let f = status_failure(
            "x",
            StatusCode::BAD_GATEWAY,
            &h,
            b"<html>bad gateway</html>",
        );
        assert!(matches!(f.error, ProviderError::Unavailable(_)));
        let f = status_failure(
            "x",
            StatusCode::UNAUTHORIZED,
            &h,
            br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#,
        );
        assert_eq!(
            f.error,
            ProviderError::Rejected("x: HTTP 401: Invalid API key".into())
        );
        let f = status_failure("x", StatusCode::REQUEST_TIMEOUT, &h, b"");
        assert_eq!(f.error, ProviderError::Timeout);
    }

    #[test]
    fn endpoints_join_cleanly() {
        assert_eq!(
            endpoint("https://openrouter.ai/api/v1/", "/chat/completions")
                .expect("url")
                .as_str(),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        assert!(endpoint("ftp://x", "a").is_err());
    }
}
