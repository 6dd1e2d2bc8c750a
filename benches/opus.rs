//! Opus as the WebRTC path uses it: 48 kHz mono, 20 ms frames (960 samples), the
//! `Voip` application. One encoder per live WebRTC session encodes Adam's voice; one
//! decoder per session decodes the customer's microphone.
//!
//! - `opus_encode_20ms/{speech,tonal}/complexity/N`: one frame encoded at complexity N
//!   (libopus' default is 10; the server uses `webrtc.opus_complexity`): `speech` is
//!   espeak-ng reading two sentences, `tonal` a synthetic voiced signal.
//! - `opus_decode_20ms`: one packet (as encoded at the default complexity) decoded.
//! - `opus_conceal_20ms`: one lost packet concealed (`decode` of an empty packet).
//!
//! `cargo bench -p adam --bench opus`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};

const RATE: u32 = 48_000;
const FRAME: usize = 960;

/// One second of a voiced, moving signal: a 120–180 Hz gliding fundamental with
/// harmonics, a syllable-rate envelope and a little noise (a pure tone would be an
/// unrealistically easy case for the encoder).
fn speech_like() -> Vec<i16> {
    let mut noise = 0x2545_f491u32;
    (0..RATE as usize)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let f0 = 150.0 + 30.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
            let phase = 2.0 * std::f32::consts::PI * f0 * t;
            let voiced: f32 = (1..=8).map(|h| (phase * h as f32).sin() / h as f32).sum();
            let envelope = 0.55 + 0.45 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let hiss = (noise as f32 / u32::MAX as f32 - 0.5) * 400.0;
            (6000.0 * envelope * voiced + hiss) as i16
        })
        .collect()
}

/// Real speech when espeak-ng is installed (the embedded TTS's engine, installed by the
/// setup script): a few sentences at 22.05 kHz, resampled to 48 kHz the way the session
/// does. The encoder takes different paths for speech (SILK or hybrid) and for tonal
/// signals (CELT), so the figure that matters is this one.
fn espeak_speech() -> Option<Vec<i16>> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en"])
        .arg(
            "Thanks for calling. The service department opens at eight on Saturday, \
             and an oil change costs forty-nine dollars including the filter.",
        )
        .output()
        .ok()?;
    let wav = out.stdout;
    let data = wav.windows(4).position(|w| w == b"data")? + 8;
    let pcm: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let rate = u32::from_le_bytes(wav.get(24..28)?.try_into().ok()?);
    Some(adam_actors::audio::Resampler::new(rate, RATE).process(&pcm))
}

fn encoder(complexity: i32) -> opus::Encoder {
    let mut e =
        opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).expect("encoder");
    e.set_complexity(complexity).expect("complexity");
    e
}

fn encode(c: &mut Criterion) {
    let mut signals = vec![("tonal", speech_like())];
    match espeak_speech() {
        Some(speech) => signals.insert(0, ("speech", speech)),
        None => eprintln!("espeak-ng not found: encoding the synthetic signal only"),
    }
    for (name, signal) in signals {
        let mut group = c.benchmark_group(format!("opus_encode_20ms/{name}"));
        for complexity in [10, 5, 3, 1, 0] {
            let mut enc = encoder(complexity);
            let mut out = vec![0u8; 1500];
            let mut frames = signal.chunks_exact(FRAME).cycle();
            group.bench_with_input(
                BenchmarkId::new("complexity", complexity),
                &complexity,
                |b, _| {
                    b.iter(|| {
                        let frame = frames.next().unwrap_or(&signal[..FRAME]);
                        black_box(enc.encode(black_box(frame), &mut out).expect("encode"))
                    })
                },
            );
        }
        group.finish();
    }
}

fn decode(c: &mut Criterion) {
    let signal = speech_like();
    let mut enc = encoder(10);
    let packets: Vec<Vec<u8>> = signal
        .chunks_exact(FRAME)
        .map(|f| enc.encode_vec(f, 1500).expect("encode"))
        .collect();
    let mut dec = opus::Decoder::new(RATE, opus::Channels::Mono).expect("decoder");
    let mut pcm = vec![0i16; FRAME * 6];
    let mut next = packets.iter().cycle();
    c.bench_function("opus_decode_20ms", |b| {
        b.iter(|| {
            let packet = next.next().unwrap_or(&packets[0]);
            black_box(
                dec.decode(black_box(packet), &mut pcm, false)
                    .expect("decode"),
            )
        })
    });
    c.bench_function("opus_conceal_20ms", |b| {
        b.iter(|| black_box(dec.decode(&[], &mut pcm[..FRAME], false).expect("conceal")))
    });
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    encode(&mut criterion);
    decode(&mut criterion);
    criterion.final_summary();
}
