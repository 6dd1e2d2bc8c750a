//! The Pinecone store against a local fake of Pinecone's data plane: tenant namespaces,
//! replace and delete by id prefix (across list pages and delete batches), Pinecone's
//! errors, retries and the dimension check; eventual consistency (ids not listed yet right
//! after an upsert) and a 404 for a namespace that does not exist.

use adam::knowledge::pinecone::{PineconeConfig, PineconeStore};
use adam::knowledge::store::{ChunkRecord, StoreError, VectorStore};
use secrecy::SecretString;

use crate::fake_pinecone::{self, FakePinecone};

const KEY: &str = "pcsk_test_key";
const DIM: usize = 4;

fn config(fake: &FakePinecone, key: &str, max_retries: u32) -> PineconeConfig {
    PineconeConfig {
        index_host: fake.url(),
        api_key: Some(SecretString::from(key)),
        max_retries,
        ..PineconeConfig::default()
    }
}

fn store(fake: &FakePinecone) -> PineconeStore {
    PineconeStore::new(&config(fake, KEY, 3)).expect("store")
}

fn chunk(document_id: &str, seq: u32, text: &str, vector: [f32; DIM]) -> ChunkRecord {
    ChunkRecord {
        id: format!("chunk-{document_id}-{seq}"),
        document_id: document_id.into(),
        seq,
        title: format!("{document_id}.pdf"),
        heading: None,
        page: None,
        text: text.into(),
        vector: vector.to_vec(),
    }
}

/// `n` chunks of one document, vectors spread around the first axis.
fn many_chunks(document_id: &str, n: u32, label: &str) -> Vec<ChunkRecord> {
    (0..n)
        .map(|i| {
            let t = i as f32 / n as f32;
            chunk(
                document_id,
                i,
                &format!("{label} {i}"),
                [1.0, t, 0.5 * t, 0.1],
            )
        })
        .collect()
}

fn count(requests: &[String], prefix: &str) -> usize {
    requests.iter().filter(|r| r.starts_with(prefix)).count()
}

#[tokio::test]
async fn each_dealership_searches_only_its_own_namespace() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    assert_eq!(store.kind(), "pinecone");
    assert_eq!(store.dimension().await.expect("stats"), Some(DIM));

    let mut hours = chunk(
        "a-manual",
        0,
        "Service is open 8 to 5.",
        [2.0, 0.0, 0.0, 0.0],
    );
    hours.title = "Owner manual".into();
    hours.heading = Some("Service > Hours".into());
    hours.page = Some(3);
    let oil = chunk(
        "a-manual",
        1,
        "An oil change costs $49.",
        [0.0, 1.0, 0.0, 0.0],
    );
    let finance = chunk(
        "a-finance",
        0,
        "Financing from 1.9% APR.",
        [0.6, 0.0, 0.8, 0.0],
    );
    store
        .upsert("A", "a-manual", &[hours, oil])
        .await
        .expect("upsert A manual");
    store
        .upsert("A", "a-finance", &[finance])
        .await
        .expect("upsert A finance");
    let secret = chunk(
        "b-secret",
        0,
        "B's service hours: 24/7.",
        [1.0, 0.0, 0.0, 0.0],
    );
    store
        .upsert("B", "b-secret", &[secret])
        .await
        .expect("upsert B");
    assert_eq!(fake.vector_count("dealership-A"), 3);
    assert_eq!(fake.vector_count("dealership-B"), 1);

    // Unnormalised query; A's best match is the hours chunk, then finance, then oil.
    let found = store
        .search("A", &[5.0, 0.0, 0.0, 0.0], 10)
        .await
        .expect("search A");
    let docs: Vec<&str> = found.iter().map(|p| p.document_id.as_str()).collect();
    assert_eq!(docs, ["a-manual", "a-finance", "a-manual"], "{found:?}");
    let best = &found[0];
    assert_eq!(best.text, "Service is open 8 to 5.");
    assert_eq!(best.title, "Owner manual — Service > Hours");
    assert_eq!(best.page, Some(3));
    assert!((best.score - 1.0).abs() < 1e-4, "{}", best.score);
    assert!((found[1].score - 0.6).abs() < 1e-4, "{}", found[1].score);
    assert_eq!(found[1].title, "a-finance.pdf");
    assert_eq!(found[1].page, None);
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(found.iter().all(|p| !p.text.contains("24/7")));

    let top1 = store
        .search("A", &[0.0, 1.0, 0.0, 0.0], 1)
        .await
        .expect("top 1");
    assert_eq!(top1.len(), 1);
    assert_eq!(top1[0].text, "An oil change costs $49.");

    // B's only vector is identical to the query, and A's are never returned to B.
    let for_b = store
        .search("B", &[1.0, 0.0, 0.0, 0.0], 10)
        .await
        .expect("search B");
    assert_eq!(for_b.len(), 1, "{for_b:?}");
    assert_eq!(for_b[0].document_id, "b-secret");

    // A dealership with nothing indexed finds nothing.
    let none = store
        .search("C", &[1.0, 0.0, 0.0, 0.0], 10)
        .await
        .expect("search C");
    assert!(none.is_empty());
    assert!(
        store
            .search("A", &[1.0, 0.0, 0.0, 0.0], 0)
            .await
            .expect("k=0")
            .is_empty()
    );
}

#[tokio::test]
async fn reupserting_a_document_replaces_its_vectors() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    let ns = store.namespace("A");
    assert_eq!(ns, "dealership-A");
    store
        .upsert(
            "A",
            "other",
            &[chunk("other", 0, "Other doc.", [0.0, 0.0, 0.0, 1.0])],
        )
        .await
        .expect("other doc");
    store
        .upsert("A", "doc", &many_chunks("doc", 3, "old"))
        .await
        .expect("first version");
    assert_eq!(fake.vector_count(&ns), 4);

    store
        .upsert("A", "doc", &many_chunks("doc", 3, "new"))
        .await
        .expect("second version");
    assert_eq!(fake.vector_count(&ns), 4, "same ids overwritten");
    let texts = fake.texts(&ns);
    assert!(texts.iter().all(|t| !t.starts_with("old")), "{texts:?}");
    let found = store
        .search("A", &[1.0, 0.5, 0.25, 0.1], 10)
        .await
        .expect("search");
    assert!(
        found.iter().all(|p| !p.text.starts_with("old")),
        "{found:?}"
    );
    assert_eq!(
        found.iter().filter(|p| p.text.starts_with("new")).count(),
        3
    );

    // A shorter version leaves no stale tail behind.
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "short"))
        .await
        .expect("shorter version");
    assert_eq!(fake.vector_count(&ns), 3);
    let mut texts = fake.texts(&ns);
    texts.sort();
    assert_eq!(texts, ["Other doc.", "short 0", "short 1"]);
}

#[tokio::test]
async fn deleting_a_document_removes_exactly_its_vectors_across_list_pages() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    // 1,050 chunks: eleven upsert batches, eleven list pages of 100, two delete batches.
    let before = fake.requests().len();
    store
        .upsert("A", "manual", &many_chunks("manual", 1_050, "manual"))
        .await
        .expect("big document");
    let upserts = fake.requests()[before..].to_vec();
    assert_eq!(count(&upserts, "POST /vectors/upsert"), 11, "{upserts:?}");
    // `manual-2` and `manual#x`-like ids must survive `manual`'s deletion.
    store
        .upsert("A", "manual-2", &many_chunks("manual-2", 2, "second"))
        .await
        .expect("second document");
    store
        .upsert("A", "manual#7", &many_chunks("manual#7", 1, "tricky"))
        .await
        .expect("document whose id extends the prefix");
    store
        .upsert("B", "manual", &many_chunks("manual", 2, "B's manual"))
        .await
        .expect("B's document of the same id");
    assert_eq!(fake.vector_count("dealership-A"), 1_053);

    let before = fake.requests().len();
    store
        .delete_document("A", "manual")
        .await
        .expect("delete big document");
    let requests = fake.requests()[before..].to_vec();
    assert_eq!(fake.vector_count("dealership-A"), 3);
    assert_eq!(fake.vector_count("dealership-B"), 2);
    let mut left = fake.texts("dealership-A");
    left.sort();
    assert_eq!(left, ["second 0", "second 1", "tricky 0"]);

    let lists: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET /vectors/list"))
        .collect();
    assert_eq!(lists.len(), 11, "{requests:?}");
    assert!(lists[0].contains("prefix=manual%23"), "{}", lists[0]);
    assert!(lists[0].contains("namespace=dealership-A"), "{}", lists[0]);
    assert!(lists[0].contains("limit=100"), "{}", lists[0]);
    assert!(lists[1].contains("paginationToken="), "{}", lists[1]);
    assert_eq!(count(&requests, "POST /vectors/delete"), 2, "{requests:?}");

    // Deleting what is not there is fine.
    store
        .delete_document("A", "manual")
        .await
        .expect("delete again");
    store
        .delete_document("Z", "never-indexed")
        .await
        .expect("delete unknown");
    assert_eq!(fake.vector_count("dealership-A"), 3);
}

#[tokio::test]
async fn a_wrong_api_key_is_rejected_with_pinecones_message_and_not_retried() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = PineconeStore::new(&config(&fake, "wrong-key", 3)).expect("store");
    let err = store
        .search("A", &[1.0, 0.0, 0.0, 0.0], 3)
        .await
        .expect_err("wrong key");
    match &err {
        StoreError::Rejected(message) => {
            assert!(message.contains("Invalid API Key"), "{message}");
            assert!(message.contains("401"), "{message}");
            assert!(
                !message.contains("wrong-key"),
                "the key never shows: {message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(fake.requests(), ["POST /query"]);
    let err = store
        .upsert("A", "doc", &many_chunks("doc", 1, "x"))
        .await
        .expect_err("wrong key");
    assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "text"))
        .await
        .expect("upsert");

    let before = fake.requests().len();
    fake.fail_next(2, 503);
    let found = store
        .search("A", &[1.0, 0.0, 0.0, 0.0], 5)
        .await
        .expect("third attempt succeeds");
    assert_eq!(found.len(), 2);
    assert_eq!(fake.requests()[before..], ["POST /query"; 3]);

    // A 429 is retried too (the fake says `Retry-After: 0`).
    let before = fake.requests().len();
    fake.fail_next(1, 429);
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "again"))
        .await
        .expect("upsert after a 429");
    let requests = fake.requests()[before..].to_vec();
    assert_eq!(count(&requests, "POST /vectors/upsert"), 2, "{requests:?}");
    assert_eq!(fake.texts("dealership-A"), ["again 0", "again 1"]);
}

#[tokio::test]
async fn more_failures_than_retries_make_the_store_unavailable() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = PineconeStore::new(&config(&fake, KEY, 2)).expect("store");
    fake.fail_next(10, 503);
    let err = store
        .search("A", &[1.0, 0.0, 0.0, 0.0], 5)
        .await
        .expect_err("gives up");
    match &err {
        StoreError::Unavailable(message) => {
            assert!(message.contains("503"), "{message}");
            assert!(message.contains("currently unavailable"), "{message}");
            assert!(message.contains("3 attempt"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(fake.requests(), ["POST /query"; 3], "1 attempt + 2 retries");
}

#[tokio::test]
async fn an_unreachable_index_is_unavailable() {
    // A port that was just free: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let store = PineconeStore::new(&PineconeConfig {
        index_host: format!("http://{addr}"),
        api_key: Some(SecretString::from(KEY)),
        max_retries: 1,
        ..PineconeConfig::default()
    })
    .expect("store");
    let err = store
        .search("A", &[1.0, 0.0, 0.0, 0.0], 5)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn vectors_of_another_dimension_are_rejected() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "kept"))
        .await
        .expect("upsert");

    let mut wrong = chunk("doc", 0, "three dims", [1.0, 0.0, 0.0, 0.0]);
    wrong.vector = vec![1.0, 0.0, 0.0];
    let err = store
        .upsert("A", "doc", &[wrong])
        .await
        .expect_err("dimension 3 into a 4-dimension index");
    match &err {
        StoreError::Rejected(message) => {
            assert!(
                message.contains("does not match the dimension of the index 4"),
                "{message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    // The refused replacement left the previous version whole.
    assert_eq!(fake.texts("dealership-A"), ["kept 0", "kept 1"]);

    let err = store
        .search("A", &[1.0, 0.0, 0.0], 3)
        .await
        .expect_err("query of dimension 3");
    assert!(
        matches!(&err, StoreError::Rejected(m) if m.contains("does not match the dimension")),
        "{err:?}"
    );
}

#[test]
fn a_store_needs_a_host_and_a_key() {
    let err = PineconeStore::new(&PineconeConfig::default()).expect_err("nothing set");
    assert!(err.contains("index_host"), "{err}");
    let err = PineconeStore::new(&PineconeConfig {
        index_host: "https://idx-abc1234.svc.us-east-1.pinecone.io".into(),
        ..PineconeConfig::default()
    })
    .expect_err("no key");
    assert!(err.contains(PineconeConfig::API_KEY_ENV), "{err}");
}

#[tokio::test]
async fn a_document_replaced_or_deleted_right_after_its_upsert_leaves_no_orphans() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    // Pinecone's list and query lag behind upserts; a minute is "right after" here.
    fake.set_freshness_lag(std::time::Duration::from_secs(60));
    let store = store(&fake);
    let ns = store.namespace("A");

    store
        .upsert("A", "doc", &many_chunks("doc", 3, "first"))
        .await
        .expect("first version");
    assert_eq!(fake.visible_count(&ns), 0, "not listed yet");
    // A shorter version at once: the third chunk, invisible to list, is still removed.
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "second"))
        .await
        .expect("second version");
    assert_eq!(fake.vector_count(&ns), 2, "{:?}", fake.texts(&ns));

    // Deleted at once: nothing is left to surface in search once Pinecone catches up.
    store.delete_document("A", "doc").await.expect("deleted");
    assert_eq!(fake.vector_count(&ns), 0, "{:?}", fake.texts(&ns));
}

#[tokio::test]
async fn a_delete_in_a_namespace_that_is_gone_succeeds() {
    let fake = fake_pinecone::start(KEY, DIM).await;
    let store = store(&fake);
    let ns = store.namespace("A");
    store
        .upsert("A", "doc", &many_chunks("doc", 2, "text"))
        .await
        .expect("upserted");
    // Another node deletes it first: the namespace, now empty, no longer exists.
    store_on_another_node(&fake)
        .delete_document("A", "doc")
        .await
        .expect("deleted elsewhere");
    assert_eq!(fake.vector_count(&ns), 0);
    let before = fake.requests().len();
    store
        .delete_document("A", "doc")
        .await
        .expect("a 404 for the namespace means nothing to delete");
    assert_eq!(
        count(&fake.requests()[before..], "POST /vectors/delete"),
        1,
        "the ids this node wrote were still deleted (answered 404)"
    );
}

fn store_on_another_node(fake: &FakePinecone) -> PineconeStore {
    PineconeStore::new(&config(fake, KEY, 3)).expect("store")
}
