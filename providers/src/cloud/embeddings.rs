//! Embeddings from an OpenAI-compatible `POST {base_url}/embeddings`
//! (`text-embedding-3-small` by default), in batches, and the startup check that the
//! vector store holds vectors of the same dimension.

use adam_actors::ports::{BoxFuture, CancellationToken, Embedder, ProviderError};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Failure, ProviderGuard, ResilienceConfig, Stage};

/// `[providers.openai.embeddings]`. The API key comes from
/// [`keys::OPENAI`](super::keys::OPENAI) (none for a local server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root (`https://api.openai.com/v1`, or a local server's `/v1`).
    pub base_url: String,
    /// Model.
    pub model: String,
    /// Dimension of the vectors the model returns (1536 for `text-embedding-3-small`,
    /// 3072 for `-large`); every response is checked against it.
    pub dimension: usize,
    /// Send `dimensions: <dimension>` so a `text-embedding-3` model shortens its
    /// vectors (other models refuse the field).
    pub request_dimensions: bool,
    /// Texts per request (OpenAI accepts up to 2048).
    pub batch_size: usize,
    /// Timeouts, retries, breaker (the first-byte timeout bounds each batch).
    pub resilience: ResilienceConfig,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            name: "openai-embeddings".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: "text-embedding-3-small".into(),
            dimension: 1536,
            request_dimensions: false,
            batch_size: 128,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The embeddings client.
pub struct OpenAiEmbedder {
    config: EmbeddingsConfig,
    url: Url,
    client: reqwest::Client,
    auth: Option<HeaderValue>,
    guard: ProviderGuard,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    /// A client for `config`; `api_key` goes out as `Authorization: Bearer`.
    pub fn new(
        config: EmbeddingsConfig,
        api_key: Option<SecretString>,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        if config.dimension == 0 || config.batch_size == 0 {
            return Err(ProviderError::Rejected(
                "embeddings: dimension and batch_size must be at least 1".into(),
            ));
        }
        Ok(Self {
            url: http::endpoint(&config.base_url, "embeddings")?,
            client: http::client(&config.resilience)?,
            auth: api_key
                .map(|k| http::secret_header("Bearer ", &k))
                .transpose()?,
            guard: ProviderGuard::new(
                &config.name,
                Stage::Embed,
                config.resilience.clone(),
                metrics,
            ),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// Embeds one short text: proves at startup that the key works and that the model
    /// returns vectors of the configured dimension.
    pub async fn probe(&self, cancel: CancellationToken) -> Result<(), ProviderError> {
        self.embed_all(vec!["dimension check".into()], cancel)
            .await
            .map(|_| ())
    }

    async fn embed_all(
        &self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            let mut body = json!({
                "model": self.config.model,
                "input": batch,
                "encoding_format": "float",
            });
            if self.config.request_dimensions {
                body["dimensions"] = json!(self.config.dimension);
            }
            let vectors = self
                .guard
                .unary(&cancel, || self.attempt(&body, batch.len()))
                .await?;
            out.extend(vectors);
        }
        Ok(out)
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let provider = self.guard.provider();
        let mut request = self.client.post(self.url.clone()).json(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let response = http::check(provider, response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let parsed: Response = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::from(ProviderError::Unavailable(format!(
                "{provider}: malformed embeddings response ({e})"
            )))
        })?;
        order(provider, parsed.data, expected, self.config.dimension).map_err(Failure::from)
    }
}

/// The vectors in input order (`data[].index`), checked for count and dimension.
fn order(
    provider: &str,
    mut data: Vec<Item>,
    expected: usize,
    dimension: usize,
) -> Result<Vec<Vec<f32>>, ProviderError> {
    data.sort_by_key(|item| item.index);
    let indexes_ok =
        data.len() == expected && data.iter().enumerate().all(|(i, item)| item.index == i);
    if !indexes_ok {
        return Err(ProviderError::Unavailable(format!(
            "{provider}: {} embeddings returned for {expected} texts",
            data.len()
        )));
    }
    if let Some(bad) = data.iter().find(|item| item.embedding.len() != dimension) {
        // The configuration is wrong, not the service: retrying will not help.
        return Err(ProviderError::Rejected(format!(
            "{provider}: the model returned {}-dimension vectors, the configured dimension is {dimension}",
            bad.embedding.len()
        )));
    }
    Ok(data.into_iter().map(|item| item.embedding).collect())
}

impl Embedder for OpenAiEmbedder {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(self.embed_all(texts, cancel))
    }

    fn dimension(&self) -> usize {
        self.config.dimension
    }
}

/// The embedder and the vector store disagree on the dimension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the embedder makes {embedder}-dimension vectors but the vector store holds \
     {store}-dimension vectors: configure an embedder of dimension {store}, or re-embed \
     the documents"
)]
pub struct DimensionMismatch {
    /// The embedder's dimension.
    pub embedder: usize,
    /// The store's.
    pub store: usize,
}

/// Startup check: `embedder` must make vectors of the store's dimension (`None` for an
/// empty store, which takes any).
pub fn check_dimension(
    embedder: &dyn Embedder,
    store: Option<usize>,
) -> Result<(), DimensionMismatch> {
    match store {
        Some(store) if store != embedder.dimension() => Err(DimensionMismatch {
            embedder: embedder.dimension(),
            store,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: usize, v: f32) -> Item {
        Item {
            index,
            embedding: vec![v; 3],
        }
    }

    #[test]
    fn vectors_come_back_in_input_order_and_are_checked() {
        let v = order("p", vec![item(2, 2.0), item(0, 0.0), item(1, 1.0)], 3, 3).expect("ordered");
        assert_eq!(v.iter().map(|x| x[0]).collect::<Vec<_>>(), [0.0, 1.0, 2.0]);
        assert!(matches!(
            order("p", vec![item(0, 0.0), item(0, 1.0)], 2, 3),
            Err(ProviderError::Unavailable(_))
        ));
        assert!(matches!(
            order("p", vec![item(0, 0.0)], 1, 4),
            Err(ProviderError::Rejected(_))
        ));
    }

    #[test]
    fn the_store_dimension_must_match() {
        struct Fixed;
        impl Embedder for Fixed {
            fn embed<'a>(
                &'a self,
                _: Vec<String>,
                _: CancellationToken,
            ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
                Box::pin(async { Ok(Vec::new()) })
            }
            fn dimension(&self) -> usize {
                1536
            }
        }
        assert_eq!(check_dimension(&Fixed, None), Ok(()));
        assert_eq!(check_dimension(&Fixed, Some(1536)), Ok(()));
        let e = check_dimension(&Fixed, Some(384)).expect_err("mismatch");
        let text = e.to_string();
        assert!(text.contains("1536") && text.contains("384"), "{text}");
    }
}
