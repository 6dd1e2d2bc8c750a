//! Answers from an OpenAI-compatible chat completions API, streamed: OpenRouter by
//! default, or OpenAI, a llama.cpp server, vLLM, Ollama's `/v1`.
//!
//! `POST {base_url}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`; the reply is server-sent events of
//! `chat.completion.chunk` objects, ended by `data: [DONE]`. Comments (OpenRouter's
//! keep-alives) are skipped; an error object sent as an event after the HTTP 200 (the
//! OpenAI / OpenRouter `{"error": {...}}` and vLLM `{"object": "error"}` shapes) fails
//! the call; the final chunk's `usage` gives the token counts (estimated with tiktoken
//! when a server sends none).

use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, BoxFuture, CancellationToken, ProviderError,
};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::http;
use super::metrics::ProviderMetrics;
use super::prompt::{self, CitationFilter, Prompt, PromptOptions, TokenEncoding};
use super::resilience::{Emitter, Failure, ProviderGuard, ResilienceConfig, Stage};
use super::sse::SseParser;

/// `[providers.openrouter]` (or any OpenAI-compatible endpoint). The API key comes from
/// [`keys::OPENROUTER`](super::keys::OPENROUTER) (or `OPENAI`; none for a local server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// The `provider` label of the metrics and logs; unique per client.
    pub name: String,
    /// API root: `https://openrouter.ai/api/v1`, `https://api.openai.com/v1`,
    /// `http://localhost:8080/v1` (llama.cpp), `http://localhost:11434/v1` (Ollama).
    pub base_url: String,
    /// Model id as the endpoint names it (`openai/gpt-4o-mini` on OpenRouter).
    pub model: String,
    /// Longest answer, tokens.
    pub max_tokens: u32,
    /// The request field carrying `max_tokens`: `max_tokens` (OpenRouter, local servers,
    /// older OpenAI models) or `max_completion_tokens` (OpenAI's reasoning and GPT-5
    /// models refuse the other).
    pub max_tokens_field: MaxTokensField,
    /// Sampling temperature; unset for models that accept only their default.
    pub temperature: Option<f64>,
    /// Largest prompt, tokens: passages and history are trimmed to fit.
    pub max_prompt_tokens: usize,
    /// Tokenizer counting the prompt: `auto` (from the model name), `cl100k`, `o200k`.
    pub tokenizer: TokenEncoding,
    /// Instructions after the persona.
    pub instructions: String,
    /// Ask the model to cite sources as `[n]`; the markers are removed from the spoken
    /// text and reported as the cited passages.
    pub citations: bool,
    /// OpenRouter's `HTTP-Referer` (the app's URL, for its rankings); optional.
    pub app_url: Option<String>,
    /// OpenRouter's `X-Title`; optional.
    pub app_title: Option<String>,
    /// Timeouts, retries, breaker.
    pub resilience: ResilienceConfig,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            name: "openrouter".into(),
            base_url: "https://openrouter.ai/api/v1".into(),
            model: "openai/gpt-4o-mini".into(),
            max_tokens: 300,
            max_tokens_field: MaxTokensField::MaxTokens,
            temperature: Some(0.3),
            max_prompt_tokens: 4_000,
            tokenizer: TokenEncoding::Auto,
            instructions: "You answer customers of a car dealership on the phone. Reply in one \
                           to three short spoken sentences: no lists, no markdown, no URLs. \
                           Take facts about the dealership only from the sources below; if \
                           they do not answer the question, say you don't have that \
                           information; never guess a fact."
                .into(),
            citations: true,
            app_url: None,
            app_title: None,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// Name of the answer-length field of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens`.
    MaxTokens,
    /// `max_completion_tokens`.
    MaxCompletionTokens,
}

/// The streaming chat completions client.
pub struct ChatCompletions {
    config: ChatConfig,
    url: Url,
    client: reqwest::Client,
    auth: Option<HeaderValue>,
    guard: ProviderGuard,
    encoding: TokenEncoding,
}

impl std::fmt::Debug for ChatCompletions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCompletions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChatCompletions {
    /// A client for `config`; `api_key` is sent as `Authorization: Bearer` (omit it for a
    /// local server that needs none). Counts into `metrics`.
    pub fn new(
        config: ChatConfig,
        api_key: Option<SecretString>,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        let url = http::endpoint(&config.base_url, "chat/completions")?;
        let auth = api_key
            .map(|k| http::secret_header("Bearer ", &k))
            .transpose()?;
        Ok(Self {
            client: http::client(&config.resilience)?,
            guard: ProviderGuard::new(
                &config.name,
                Stage::Answer,
                config.resilience.clone(),
                metrics,
            ),
            encoding: config.tokenizer.resolve(&config.model),
            url,
            auth,
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// The prompt `request` becomes (what is sent, and the passage numbering).
    pub fn prompt(&self, request: &AnswerRequest) -> Result<Prompt, ProviderError> {
        prompt::build(request, &self.prompt_options())
            .map_err(|e| ProviderError::Rejected(e.to_string()))
    }

    fn prompt_options(&self) -> PromptOptions {
        PromptOptions {
            max_prompt_tokens: self.config.max_prompt_tokens,
            encoding: self.encoding,
            instructions: self.config.instructions.clone(),
            citations: self.config.citations,
        }
    }

    fn body(&self, prompt: &Prompt) -> serde_json::Value {
        let mut body = json!({
            "model": self.config.model,
            "messages": prompt.messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        let field = match self.config.max_tokens_field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        body[field] = json!(self.config.max_tokens);
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    async fn run(
        &self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> Result<AnswerUsage, ProviderError> {
        // Counting tokens is CPU work: off the runtime's threads.
        let options = self.prompt_options();
        let built = tokio::task::spawn_blocking(move || prompt::build(&request, &options))
            .await
            .map_err(|e| ProviderError::Unavailable(format!("prompt task: {e}")))?
            .map_err(|e| ProviderError::Rejected(e.to_string()))?;
        let body = self.body(&built);
        self.guard
            .stream(&tokens, &cancel, |emit| self.attempt(&body, &built, emit))
            .await
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        prompt: &Prompt,
        emit: Emitter<String>,
    ) -> Result<AnswerUsage, Failure> {
        let provider = self.guard.provider();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(ACCEPT, "text/event-stream")
            .json(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(url) = &self.config.app_url {
            request = request.header("HTTP-Referer", url);
        }
        if let Some(title) = &self.config.app_title {
            request = request.header("X-Title", title);
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let response = http::check(provider, response).await?;
        if is_json(&response) {
            // Some servers answer a failed stream with a plain JSON error and a 200.
            let body = response
                .bytes()
                .await
                .map_err(|e| http::transport(provider, &e))?;
            let message = http::error_message(&body).unwrap_or_else(|| "no event stream".into());
            return Err(Failure::from(ProviderError::Unavailable(format!(
                "{provider}: {message}"
            ))));
        }
        let mut stream = ChatStream::new(self.config.citations);
        let mut body = response.bytes_stream();
        let idle = self.config.resilience.idle_timeout();
        let mut parser = SseParser::default();
        loop {
            let Some(bytes) = http::next_chunk(provider, &mut body, idle).await? else {
                parser.finish();
                break;
            };
            let events = parser.feed(&bytes).map_err(|e| {
                Failure::from(ProviderError::Unavailable(format!("{provider}: {e}")))
            })?;
            for event in events {
                match stream.event(provider, &event.data)? {
                    Step::Text(text) if !text.is_empty() => emit.send(text).await?,
                    Step::Text(_) => {}
                    Step::Done => return self.finish(stream, prompt, &emit).await,
                }
            }
        }
        if stream.finish_reason.is_some() {
            // Some servers end the body after the last chunk without `[DONE]`.
            return self.finish(stream, prompt, &emit).await;
        }
        Err(Failure::from(ProviderError::Unavailable(format!(
            "{provider}: the stream ended before [DONE]"
        ))))
    }

    async fn finish(
        &self,
        mut stream: ChatStream,
        prompt: &Prompt,
        emit: &Emitter<String>,
    ) -> Result<AnswerUsage, Failure> {
        let rest = stream.filter.finish();
        if !rest.is_empty() {
            emit.send(rest).await?;
        }
        let (prompt_tokens, completion_tokens) = match stream.usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens),
            None => (
                u32::try_from(prompt.tokens).unwrap_or(u32::MAX),
                u32::try_from(self.encoding.count(&stream.text)).unwrap_or(u32::MAX),
            ),
        };
        let cited = self.config.citations.then(|| {
            stream
                .filter
                .cited()
                .iter()
                .filter_map(|n| {
                    n.checked_sub(1)
                        .and_then(|i| prompt.sources.get(i))
                        .copied()
                })
                .collect()
        });
        // The instructions ask for these words when the sources do not answer.
        let unanswered = {
            let text = stream.text.to_lowercase().replace('’', "'");
            [
                "don't have that information",
                "do not have that information",
            ]
            .iter()
            .any(|p| text.contains(p))
        };
        Ok(AnswerUsage {
            prompt_tokens,
            completion_tokens,
            cited,
            unanswered,
        })
    }
}

impl AnswerEngine for ChatCompletions {
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        Box::pin(self.run(request, tokens, cancel))
    }
}

fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}

/// What one event meant.
#[derive(Debug, PartialEq)]
enum Step {
    /// Answer text to speak (possibly empty).
    Text(String),
    /// `[DONE]`.
    Done,
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
    object: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// The state of one streamed answer (sans-IO: fed event data).
struct ChatStream {
    filter: CitationFilter,
    citations: bool,
    text: String,
    usage: Option<Usage>,
    finish_reason: Option<String>,
}

impl ChatStream {
    fn new(citations: bool) -> Self {
        Self {
            filter: CitationFilter::default(),
            citations,
            text: String::new(),
            usage: None,
            finish_reason: None,
        }
    }

    fn event(&mut self, provider: &str, data: &str) -> Result<Step, Failure> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            Failure::from(ProviderError::Unavailable(format!(
                "{provider}: malformed stream event ({e})"
            )))
        })?;
        if let Some(error) = &chunk.error {
            return Err(stream_error(provider, error));
        }
        if chunk.object.as_deref() == Some("error") {
            let message = chunk.message.as_deref().unwrap_or("error");
            return Err(Failure::from(ProviderError::Unavailable(format!(
                "{provider}: {message}"
            ))));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        let mut text = String::new();
        for choice in chunk.choices {
            if let Some(content) = choice.delta.content {
                self.text.push_str(&content);
                if self.citations {
                    text.push_str(&self.filter.push(&content));
                } else {
                    text.push_str(&content);
                }
            }
            if let Some(reason) = choice.finish_reason {
                if reason == "error" {
                    return Err(Failure::from(ProviderError::Unavailable(format!(
                        "{provider}: generation failed (finish_reason error)"
                    ))));
                }
                self.finish_reason = Some(reason);
            }
        }
        Ok(Step::Text(text))
    }
}

/// A mid-stream `{"error": {"message", "code"}}`: rate limits and server errors may be
/// retried (when nothing was spoken yet); other codes are refusals.
fn stream_error(provider: &str, error: &serde_json::Value) -> Failure {
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .or_else(|| error.as_str())
        .unwrap_or("error");
    let code = error.get("code");
    let numeric = code.and_then(serde_json::Value::as_u64);
    let text = code.and_then(|c| c.as_str()).unwrap_or_default();
    let message = format!("{provider}: {message}");
    match numeric {
        Some(429) => Failure::rate_limited(message, None),
        Some(400..=499) => Failure::from(ProviderError::Rejected(message)),
        _ if text.contains("rate_limit") => Failure::rate_limited(message, None),
        _ if text.contains("invalid") => Failure::from(ProviderError::Rejected(message)),
        _ => Failure::from(ProviderError::Unavailable(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_text_usage_and_done() {
        let mut s = ChatStream::new(true);
        let step = s
            .event("p", r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Open at 8 [1"},"finish_reason":null}]}"#)
            .expect("chunk");
        assert_eq!(step, Step::Text("Open at 8".into()));
        let step = s
            .event(
                "p",
                r#"{"choices":[{"index":0,"delta":{"content":"]."},"finish_reason":"stop"}]}"#,
            )
            .expect("chunk");
        assert_eq!(step, Step::Text(".".into()));
        s.event("p", r#"{"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":7,"total_tokens":127}}"#)
            .expect("usage");
        assert_eq!(s.event("p", "[DONE]").expect("done"), Step::Done);
        assert_eq!(s.filter.cited(), [1]);
        assert_eq!(s.usage.map(|u| u.completion_tokens), Some(7));
        assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn error_events_fail_the_stream() {
        let mut s = ChatStream::new(false);
        let f = s
            .event("p", r#"{"id":"x","object":"chat.completion.chunk","error":{"code":"server_error","message":"Provider disconnected"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#)
            .expect_err("error");
        assert_eq!(
            f.error,
            ProviderError::Unavailable("p: Provider disconnected".into())
        );
        let f = s
            .event(
                "p",
                r#"{"error":{"message":"Rate limit exceeded","code":429}}"#,
            )
            .expect_err("error");
        assert!(f.rate_limited);
        let f = s
            .event("p", r#"{"object":"error","message":"The model is overloaded","type":"ServiceUnavailable","code":503}"#)
            .expect_err("vllm");
        assert_eq!(
            f.error,
            ProviderError::Unavailable("p: The model is overloaded".into())
        );
        let f = s.event("p", "{not json").expect_err("malformed");
        assert!(matches!(f.error, ProviderError::Unavailable(m) if m.contains("malformed")));
    }
}
