//! Mailgun's HTTP API: `POST {base}/v3/{domain}/messages` with HTTP basic auth
//! `api:KEY` and multipart form fields `from`, `to`, `subject`, `text`, `html` (and
//! `h:Reply-To`). The base is `https://api.mailgun.net`, or `https://api.eu.mailgun.net`
//! for the EU region. 429 and 5xx are retried (honouring `Retry-After`); any other 4xx
//! is final. The key is only ever a header value; it is never logged.

use std::time::Duration;

use lettre::message::Mailbox;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use reqwest::multipart::Form;
use secrecy::{ExposeSecret, SecretString};

use super::SendError;
use crate::db::outbox::OutboxEmail;
use crate::email::EmailSettings;

/// Longest error text kept from a response body.
const ERROR_TEXT_LIMIT: usize = 300;

/// Sends through Mailgun.
pub struct MailgunTransport {
    client: reqwest::Client,
    url: String,
    api_key: SecretString,
    from: String,
}

impl std::fmt::Debug for MailgunTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailgunTransport")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Refuses a base URL that is not a URL, or would send the key in clear to another
/// machine.
pub fn check_base_url(base: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(base).map_err(|e| format!("`{base}` is not a URL: {e}"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "`{base}` must be https:// (plain http:// only for a loopback host)"
        )),
    }
}

#[derive(serde::Deserialize)]
struct Accepted {
    id: Option<String>,
}

impl MailgunTransport {
    /// A transport for `[email.mailgun]`.
    pub fn new(settings: &EmailSettings, from: Mailbox) -> anyhow::Result<Self> {
        let mailgun = &settings.mailgun;
        let api_key = mailgun
            .api_key
            .clone()
            .ok_or_else(|| anyhow::anyhow!("email.mailgun needs ADAM__EMAIL__MAILGUN__API_KEY"))?;
        check_base_url(mailgun.api_base()).map_err(anyhow::Error::msg)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.send_timeout_secs))
            .build()?;
        Ok(Self {
            client,
            url: format!("{}/v3/{}/messages", mailgun.api_base(), mailgun.domain),
            api_key,
            from: from.to_string(),
        })
    }

    /// Posts one email; answers with Mailgun's message id.
    pub async fn send(&self, email: &OutboxEmail) -> Result<Option<String>, SendError> {
        let mut form = Form::new()
            .text("from", self.from.clone())
            .text("to", email.to_addr.clone())
            .text("subject", email.subject.clone())
            .text("text", email.body_text.clone())
            .text("html", email.body_html.clone());
        if let Some(reply_to) = &email.reply_to {
            form = form.text("h:Reply-To", reply_to.clone());
        }
        let response = self
            .client
            .post(&self.url)
            .basic_auth("api", Some(self.api_key.expose_secret()))
            .multipart(form)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("mailgun: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            let accepted: Accepted = response.json().await.map_err(|e| {
                SendError::transient(format!(
                    "mailgun: unreadable answer to {status}: {}",
                    e.without_url()
                ))
            })?;
            return Ok(accepted.id);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(ERROR_TEXT_LIMIT).collect();
        let error = format!("mailgun answered {status}: {}", excerpt.trim());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(SendError::Transient { error, retry_after })
        } else {
            Err(SendError::Permanent(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_https_unless_loopback() {
        assert!(check_base_url("https://api.eu.mailgun.net").is_ok());
        assert!(check_base_url("http://127.0.0.1:4321").is_ok());
        assert!(check_base_url("http://localhost:4321").is_ok());
        assert!(check_base_url("http://[::1]:4321").is_ok());
        assert!(check_base_url("http://api.mailgun.net").is_err());
        assert!(check_base_url("http://127.0.0.1.evil.test").is_err());
        assert!(check_base_url("api.mailgun.net").is_err());
    }
}
