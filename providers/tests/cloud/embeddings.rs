//! `OpenAiEmbedder` against the fake OpenAI server.

use std::time::Duration;

use adam_actors::ports::{CancellationToken, Embedder, ProviderError};
use adam_providers::cloud::embeddings::{EmbeddingsConfig, OpenAiEmbedder, check_dimension};
use adam_providers::cloud::resilience::ResilienceConfig;
use serde_json::json;

use crate::fakes::openai::{FakeOpenAi, Reply, embedding};
use crate::support::{key, metrics, resilience, within};

fn client(
    fake: &FakeOpenAi,
    dimension: usize,
    request_dimensions: bool,
    resilience: ResilienceConfig,
) -> OpenAiEmbedder {
    OpenAiEmbedder::new(
        EmbeddingsConfig {
            base_url: fake.base_url(),
            dimension,
            request_dimensions,
            batch_size: 2,
            resilience,
            ..EmbeddingsConfig::default()
        },
        Some(key("sk-test")),
        metrics().1,
    )
    .expect("client")
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test]
async fn vectors_come_back_in_order_over_batches() {
    let fake = FakeOpenAi::start().await;
    let embedder = client(&fake, 16, true, resilience());
    let input = texts(5);
    let vectors = within(
        Duration::from_secs(5),
        embedder.embed(input.clone(), CancellationToken::new()),
    )
    .await
    .expect("embed");
    let expected: Vec<Vec<f32>> = input.iter().map(|t| embedding(t, 16)).collect();
    assert_eq!(vectors, expected);
    assert_eq!(embedder.dimension(), 16);
    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "batches of 2");
    assert_eq!(requests[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(requests[0].json["model"], "text-embedding-3-small");
    assert_eq!(requests[0].json["input"], json!(["x", "xx"]));
    assert_eq!(requests[0].json["dimensions"], json!(16));
    assert_eq!(requests[2].json["input"], json!(["xxxxx"]));
    embedder
        .probe(CancellationToken::new())
        .await
        .expect("probe");
    // Nothing to embed: no request.
    let before = fake.request_count();
    assert_eq!(
        embedder.embed(Vec::new(), CancellationToken::new()).await,
        Ok(Vec::new())
    );
    assert_eq!(fake.request_count(), before);
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_wrong_dimension_is_not() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::error(
        500,
        "The server had an error while processing your request.",
    ));
    let embedder = client(&fake, 8, false, resilience());
    let vectors = embedder
        .embed(texts(1), CancellationToken::new())
        .await
        .expect("embed");
    assert_eq!(vectors.len(), 1);
    assert_eq!(fake.request_count(), 2);
    assert!(fake.requests()[0].json.get("dimensions").is_none());

    // The model makes 8 dimensions; 1536 are configured: a configuration error.
    let fake = FakeOpenAi::start().await;
    let embedder = client(&fake, 1536, false, resilience());
    let err = embedder
        .probe(CancellationToken::new())
        .await
        .expect_err("mismatch");
    assert!(
        matches!(err, ProviderError::Rejected(ref m) if m.contains("8-dimension") && m.contains("1536")),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 1);
    let mismatch = check_dimension(&embedder, Some(384)).expect_err("store mismatch");
    assert_eq!((mismatch.embedder, mismatch.store), (1536, 384));
}

#[tokio::test]
async fn a_hung_request_times_out_and_cancellation_is_prompt() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Hang);
    let embedder = client(
        &fake,
        8,
        false,
        ResilienceConfig {
            first_byte_timeout_ms: 200,
            max_retries: 0,
            ..resilience()
        },
    );
    let result = within(
        Duration::from_secs(3),
        embedder.embed(texts(1), CancellationToken::new()),
    )
    .await;
    assert_eq!(result, Err(ProviderError::Timeout));

    fake.push(Reply::Hang);
    let embedder = client(&fake, 8, false, resilience());
    let cancel = CancellationToken::new();
    let call = embedder.embed(texts(1), cancel.clone());
    let count = fake.request_count();
    let (result, ()) = within(Duration::from_secs(3), async {
        tokio::join!(call, async {
            crate::support::eventually("the request reached the fake", || {
                fake.request_count() > count
            })
            .await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(result, Err(ProviderError::Cancelled));
}
