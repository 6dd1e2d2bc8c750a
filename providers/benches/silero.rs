//! What Silero costs per 32 ms window: one window scored alone by a session's detector (the
//! unbatched path), and per window when many sessions' windows run as one batch.
//!
//! Needs the installed models (`scripts/models/fetch.sh`):
//! `cargo bench -p adam-providers --bench silero`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll, Waker};

use adam_actors::ports::VadFactory;
use adam_providers::silero::batch::VadMetrics;
use adam_providers::silero::model::{self, SileroModel, WINDOW, Window};
use adam_providers::silero::{SileroConfig, SileroVadFactory};
use criterion::{Criterion, Throughput};

fn models() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")).to_owned()
}

fn config(batch: bool) -> SileroConfig {
    SileroConfig {
        onnxruntime: models().join("onnxruntime/libonnxruntime.so.1.22.1"),
        model: models().join("silero/silero_vad.onnx"),
        batch,
        // Every window is scored: this measures the model, not the gate.
        gate_rms: 0.0,
        ..SileroConfig::default()
    }
}

/// A voiced, speech-like signal (the model's cost does not depend on what it hears).
fn voiced(n: usize, phase: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = (i + phase) as f32 / 16_000.0;
            let w = 2.0 * std::f32::consts::PI * 150.0 * t;
            (3000.0 * w.sin() + 1500.0 * (2.0 * w).sin()) as i16
        })
        .collect()
}

fn window_alone(c: &mut Criterion) {
    let factory = SileroVadFactory::new(&config(false), VadMetrics::unregistered())
        .expect("Silero installed (scripts/models/fetch.sh)");
    let mut vad = factory.create(16_000);
    let samples = voiced(WINDOW, 0);
    let mut cx = Context::from_waker(Waker::noop());
    c.bench_function("silero_window_alone", |b| {
        b.iter(|| {
            // Unbatched, the window is scored inside the call: the future is ready.
            let mut decided = vad.is_speech(black_box(&samples));
            match decided.as_mut().poll(&mut cx) {
                Poll::Ready(speech) => black_box(speech),
                Poll::Pending => unreachable!("the unbatched detector answers at once"),
            }
        })
    });
}

fn per_window_in_batches(c: &mut Criterion) {
    // Loading the factory initialises ONNX Runtime once for the whole process.
    drop(SileroVadFactory::new(&config(false), VadMetrics::unregistered()).expect("Silero"));
    let mut model = SileroModel::load(&config(false).model).expect("Silero model");
    let mut group = c.benchmark_group("silero_batch");
    for size in [1usize, 16, 64, 256] {
        let mut windows: Vec<Box<Window>> = (0..size)
            .map(|i| {
                let mut w = Window::boxed();
                for (x, s) in w.input.iter_mut().zip(voiced(model::ROW, i * 97)) {
                    *x = f32::from(s) / 32_768.0;
                }
                w
            })
            .collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("{size}"), |b| {
            b.iter(|| model.run(black_box(&mut windows)).expect("scored"))
        });
    }
    group.finish();
}

/// What `criterion_group!`/`criterion_main!` would generate, written out because the
/// macro's public `benches` function trips the workspace `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    window_alone(&mut c);
    per_window_in_batches(&mut c);
    c.final_summary();
}
