//! Criterion benchmark of the per-frame hot path: everything a 20 ms input frame (and
//! the events that come back) goes through on its way through a session.
//!
//! - `vad_step`: energy VAD decision plus [`Endpointer::push`] for one 20 ms frame.
//! - `resample_20ms_*`: [`Resampler::process`] of one 20 ms chunk (streaming state kept).
//! - `pcm16_decode_20ms`: [`pcm16_from_le_bytes`] of one 20 ms, 16 kHz frame (640 bytes).
//! - `session_frame_routing/N`: N silent 20 ms frames cast into a live session with
//!   [`SessionHandle::send_audio`], then one [`SessionHandle::snapshot`] round trip. The
//!   session mailbox is FIFO, so when the snapshot answers the session has routed all N
//!   frames. The figure covers session routing plus the hop into `SttStream`'s mailbox;
//!   `SttStream` is a separate actor, so its VAD and endpointing work on those frames
//!   may still be pending (and runs concurrently on the same runtime). One iteration is
//!   N frames plus one snapshot; divide by N (or read the elements/s throughput) for the
//!   per-frame cost.
//! - `json_event_encode/*`: `serde_json::to_string` of two outgoing [`ServerEvent`]s.
//!
//! Run with `cargo bench -p adam-actors --bench frame_path`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adam_actors::audio::{Resampler, pcm16_from_le_bytes, pcm16_to_le_bytes};
use adam_actors::embedding_cache::EmbeddingCacheHandle;
use adam_actors::endpoint::{EndpointConfig, Endpointer};
use adam_actors::events::{ResponseSummary, ServerEvent};
use adam_actors::metrics::ActorMetrics;
use adam_actors::outbox::outbox;
use adam_actors::ports::{NullSink, Passage, ResponseMetrics, ResponseStatus, VadFactory};
use adam_actors::semantic_cache::{SemanticCacheConfig, SemanticCacheHandle};
use adam_actors::simulated::{EnergyVadFactory, SimulatedConfig};
use adam_actors::{SessionArgs, SessionRegistryHandle, SessionSettings, Shared};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Input rate of the frames.
const RATE: u32 = 16_000;
/// Frame length, ms.
const FRAME_MS: u32 = 20;

/// `ms` of a speech-like signal at `rate`: a 150 Hz fundamental with two harmonics,
/// RMS well above the 300 energy threshold.
fn tone(ms: u32, rate: u32) -> Vec<i16> {
    let n = (u64::from(ms) * u64::from(rate) / 1000) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let w = 2.0 * std::f32::consts::PI * 150.0 * t;
            (3000.0 * w.sin() + 1500.0 * (2.0 * w).sin() + 700.0 * (3.0 * w).sin()) as i16
        })
        .collect()
}

/// The value of a future that is ready at once (the energy VAD's).
fn ready<T>(mut future: adam_actors::ports::BoxFuture<'_, T>) -> T {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("the energy VAD answers at once"),
    }
}

fn vad_step(c: &mut Criterion) {
    let frame = tone(FRAME_MS, RATE);
    let mut vad = EnergyVadFactory { threshold: 300.0 }.create(RATE);
    assert!(
        ready(vad.is_speech(&frame)),
        "the test tone must count as speech"
    );
    let mut endpointer = Endpointer::new(EndpointConfig {
        silence_ms: 500,
        min_speech_ms: 200,
        max_turn_ms: 30_000,
    });
    c.bench_function("vad_step", |b| {
        b.iter(|| {
            let speech = ready(vad.is_speech(black_box(&frame)));
            black_box(endpointer.push(speech, FRAME_MS))
        })
    });
}

fn resample(c: &mut Criterion) {
    for (from, to) in [(22_050, 24_000), (48_000, 16_000)] {
        let input = tone(FRAME_MS, from);
        let mut resampler = Resampler::new(from, to);
        c.bench_function(&format!("resample_20ms_{from}_to_{to}"), |b| {
            b.iter(|| black_box(resampler.process(black_box(&input))))
        });
    }
}

fn pcm16_decode(c: &mut Criterion) {
    let bytes = pcm16_to_le_bytes(&tone(FRAME_MS, RATE));
    assert_eq!(bytes.len(), 640);
    c.bench_function("pcm16_decode_20ms", |b| {
        b.iter(|| black_box(pcm16_from_le_bytes(black_box(&bytes))))
    });
}

fn session_frame_routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (registry, handle, caches, _receiver) = rt.block_on(async {
        let metrics = ActorMetrics::unregistered();
        let embeddings = EmbeddingCacheHandle::start(1_000, metrics.clone())
            .await
            .expect("embedding cache starts");
        let semantic = SemanticCacheHandle::start(SemanticCacheConfig::default(), metrics.clone())
            .await
            .expect("semantic cache starts");
        let shared = Arc::new(Shared {
            providers: SimulatedConfig::default().providers(),
            embeddings: embeddings.clone(),
            semantic: semantic.clone(),
            sink: Arc::new(NullSink),
            metrics: metrics.clone(),
        });
        let registry = SessionRegistryHandle::start(8, metrics.clone())
            .await
            .expect("registry starts");
        let (out, receiver) = outbox(256, 1_000, metrics);
        let handle = registry
            .start_session(SessionArgs {
                id: "bench".into(),
                tenant: "bench-dealer".into(),
                user_id: None,
                transport: "websocket".into(),
                settings: SessionSettings::default(),
                outbox: out,
                shared,
            })
            .await
            .expect("session starts");
        // Keep the receiver alive so the session's outbox stays open.
        (registry, handle, (embeddings, semantic), receiver)
    });
    let silence = vec![0i16; (RATE * FRAME_MS / 1000) as usize];

    let mut group = c.benchmark_group("session_frame_routing");
    for frames in [1u64, 50] {
        group.throughput(Throughput::Elements(frames));
        group.bench_with_input(BenchmarkId::from_parameter(frames), &frames, |b, &n| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for _ in 0..n {
                            // A transport hands over a fresh buffer per frame.
                            assert!(handle.send_audio(silence.clone()), "session alive");
                        }
                        black_box(handle.snapshot().await.expect("session answers"));
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();

    handle.end("bench over", 1000);
    registry.stop();
    caches.0.stop();
    caches.1.stop();
    rt.shutdown_timeout(Duration::from_secs(2));
}

fn json_event_encode(c: &mut Criterion) {
    let delta = ServerEvent::OutputTextDelta {
        response_id: "resp_0193a1b2c3d4e5f6".into(),
        delta: "weekdays ".into(),
    };
    let done = ServerEvent::ResponseDone {
        response: ResponseSummary {
            id: "resp_0193a1b2c3d4e5f6".into(),
            status: ResponseStatus::Completed,
            output_text: SimulatedConfig::default().answer,
            citations: vec![Passage {
                document_id: "doc_42".into(),
                title: "Opening hours.pdf".into(),
                text: "The showroom is open 8:00–18:00 Monday to Friday and 9:00–13:00 \
                       on Saturdays."
                    .into(),
                score: 0.87,
                page: Some(1),
            }],
            metrics: ResponseMetrics {
                stt_ms: Some(152.3),
                answer_first_token_ms: Some(251.8),
                tts_first_audio_ms: Some(121.4),
                voice_to_voice_ms: Some(640.2),
                cache_hit: false,
            },
            usage: Default::default(),
        },
    };
    let mut group = c.benchmark_group("json_event_encode");
    for (name, event) in [("output_text_delta", &delta), ("response_done", &done)] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(serde_json::to_string(black_box(event)).expect("serialises")))
        });
    }
    group.finish();
}

/// Unit vectors from a deterministic generator (what a 384-dimension embedder returns).
fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Arc<[f32]>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 2000) as f32 / 1000.0 - 1.0
                })
                .collect();
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.iter().map(|a| a / norm).collect()
        })
        .collect()
}

fn semantic_cache_lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("semantic_cache_lookup");
    for entries in [100usize, 1000] {
        let cache = rt.block_on(async {
            SemanticCacheHandle::start(
                SemanticCacheConfig {
                    threshold: 0.92,
                    ttl: Duration::from_secs(3600),
                    per_tenant: entries,
                },
                ActorMetrics::unregistered(),
            )
            .await
            .expect("semantic cache starts")
        });
        for (i, v) in unit_vectors(entries, 384, 7).into_iter().enumerate() {
            cache.store(
                "bench-dealer",
                &format!("question {i}"),
                v,
                adam_actors::semantic_cache::CachedAnswer {
                    text: "An answer.".into(),
                    citations: Vec::new(),
                },
            );
        }
        // A miss scans every entry of the dealership: the worst case.
        let probe = unit_vectors(1, 384, 99).remove(0);
        group.bench_with_input(BenchmarkId::from_parameter(entries), &entries, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    black_box(
                        cache
                            .lookup("bench-dealer", "a new question", probe.clone())
                            .await,
                    )
                })
            })
        });
        cache.stop();
    }
    group.finish();
    rt.shutdown_timeout(Duration::from_secs(2));
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// What `criterion_group!`/`criterion_main!` would generate, written out because the
/// macro's public `benches` function trips the workspace `missing_docs` lint.
fn main() {
    let mut c = config().configure_from_args();
    vad_step(&mut c);
    resample(&mut c);
    pcm16_decode(&mut c);
    session_frame_routing(&mut c);
    json_event_encode(&mut c);
    semantic_cache_lookup(&mut c);
    c.final_summary();
}
