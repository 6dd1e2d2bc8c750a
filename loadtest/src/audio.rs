//! The customer's utterance: a WAV file (resampled to 16 kHz mono) or a synthetic
//! speech-like tone, cut into 20 ms frames, with where the speech ends.

use anyhow::Context;

/// Input rate Adam expects by default.
pub const RATE: u32 = 16_000;
/// Samples in a 20 ms frame.
pub const FRAME: usize = 320;

/// Frames to send for one turn.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// 20 ms PCM16 frames: speech, then enough silence for end-of-turn detection.
    pub frames: Vec<Vec<i16>>,
    /// Index of the frame after the last one holding speech.
    pub speech_end_frame: usize,
    /// Frames spoken over an answer for barge-in (600 ms of the same kind of speech).
    pub barge: Vec<Vec<i16>>,
    /// What the microphone sends while the customer is quiet.
    pub silence: Vec<i16>,
}

fn tone(ms: usize, offset: usize) -> Vec<i16> {
    (0..ms * RATE as usize / 1000)
        .map(|i| {
            let t = (offset + i) as f32 / RATE as f32;
            // A voiced, speech-like mix with a syllable-rate envelope.
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            let v = (2.0 * std::f32::consts::PI * 180.0 * t).sin()
                + 0.5 * (2.0 * std::f32::consts::PI * 360.0 * t).sin();
            (2500.0 * env * v) as i16
        })
        .collect()
}

fn frames_of(samples: &[i16]) -> Vec<Vec<i16>> {
    samples
        .chunks(FRAME)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(FRAME, 0);
            f
        })
        .collect()
}

impl Utterance {
    /// `speech_ms` of synthetic speech followed by `silence_ms` of silence.
    pub fn synthetic(speech_ms: usize, silence_ms: usize) -> Self {
        let mut samples = tone(speech_ms, 0);
        let speech_end_frame = samples.len().div_ceil(FRAME);
        samples.resize(speech_end_frame * FRAME, 0);
        samples.extend(std::iter::repeat_n(0, silence_ms * RATE as usize / 1000));
        Self {
            frames: frames_of(&samples),
            speech_end_frame,
            barge: Self::speech_frames(600),
            silence: vec![0; FRAME],
        }
    }

    /// A WAV file (any rate, mono or the first channel), plus `silence_ms` of silence.
    pub fn from_wav(path: &std::path::Path, silence_ms: usize) -> anyhow::Result<Self> {
        let mut reader =
            hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
        let spec = reader.spec();
        anyhow::ensure!(
            spec.sample_format == hound::SampleFormat::Int && spec.bits_per_sample == 16,
            "WAV must be PCM16"
        );
        let channels = usize::from(spec.channels.max(1));
        let raw: Vec<i16> = reader
            .samples::<i16>()
            .step_by(channels)
            .collect::<Result<_, _>>()
            .context("reading samples")?;
        // Linear resampling to 16 kHz.
        let step = f64::from(spec.sample_rate) / f64::from(RATE);
        let n = (raw.len() as f64 / step) as usize;
        let mut samples: Vec<i16> = (0..n)
            .map(|i| {
                let pos = i as f64 * step;
                let j = pos as usize;
                let frac = pos - j as f64;
                let a = f64::from(raw[j]);
                let b = f64::from(*raw.get(j + 1).unwrap_or(&raw[j]));
                (a + (b - a) * frac) as i16
            })
            .collect();
        let frames = frames_of(&samples);
        let loud = |f: &Vec<i16>| {
            let e: f64 =
                f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / f.len() as f64;
            e.sqrt() > 300.0
        };
        let speech_end_frame = frames
            .iter()
            .rposition(loud)
            .map(|i| i + 1)
            .context("no speech in the WAV")?;
        samples.resize(frames.len() * FRAME, 0);
        samples.extend(std::iter::repeat_n(0, silence_ms * RATE as usize / 1000));
        let frames = frames_of(&samples);
        let first = frames.iter().position(loud).unwrap_or(0);
        let barge = frames[first..speech_end_frame.min(first + 30)].to_vec();
        Ok(Self {
            frames,
            speech_end_frame,
            barge,
            silence: vec![0; FRAME],
        })
    }

    /// Adds a microphone's noise floor (deterministic white noise of RMS `rms`, PCM16
    /// units) to every frame, the silence between turns included; 0 leaves digital silence.
    pub fn with_noise_floor(mut self, rms: f32) -> Self {
        if rms <= 0.0 {
            return self;
        }
        // Uniform noise in ±a has RMS a/√3.
        let amplitude = (rms * 3f32.sqrt()).round().max(1.0) as i32;
        let mut x: u32 = 0x2545_f491;
        let mut noise = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % (2 * amplitude as u32 + 1)) as i32 - amplitude
        };
        let frames = self.frames.iter_mut().chain(self.barge.iter_mut());
        for sample in frames.flatten().chain(self.silence.iter_mut()) {
            *sample = (i32::from(*sample) + noise()).clamp(-32_768, 32_767) as i16;
        }
        self
    }

    /// `ms` of speech frames for barge-in.
    pub fn speech_frames(ms: usize) -> Vec<Vec<i16>> {
        frames_of(&tone(ms, 0))
    }
}
