//! PCM helpers: little-endian conversion, energy, framing and band-limited resampling.

/// Milliseconds of audio in `samples` at `rate`.
pub fn duration_ms(samples: usize, rate: u32) -> u64 {
    (samples as u64 * 1000) / u64::from(rate.max(1))
}

/// Samples in `ms` milliseconds at `rate`.
pub fn samples_for_ms(ms: u32, rate: u32) -> usize {
    (u64::from(ms) * u64::from(rate) / 1000) as usize
}

/// Decodes PCM16 little-endian bytes; `None` for an odd byte count.
pub fn pcm16_from_le_bytes(bytes: &[u8]) -> Option<Vec<i16>> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

/// Encodes PCM16 as little-endian bytes.
pub fn pcm16_to_le_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Root-mean-square amplitude of a frame.
pub fn rms(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len() as f64).sqrt() as f32
}

/// Cuts a stream of samples, arriving in chunks of any length, into frames of a fixed
/// length (the VAD's), keeping the remainder for the next chunk.
#[derive(Debug, Clone)]
pub struct Framer {
    frame_len: usize,
    pending: Vec<i16>,
}

impl Framer {
    /// Frames of `frame_len` samples (at least one).
    pub fn new(frame_len: usize) -> Self {
        Self {
            frame_len: frame_len.max(1),
            pending: Vec::new(),
        }
    }

    /// Changes the frame length from the next push on.
    pub fn set_frame_len(&mut self, frame_len: usize) {
        self.frame_len = frame_len.max(1);
    }

    /// Drops the incomplete frame (the stream's rate changed).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Adds `samples`; the frames completed, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<Vec<i16>> {
        self.pending.extend_from_slice(samples);
        let mut frames = Vec::with_capacity(self.pending.len() / self.frame_len);
        let mut start = 0;
        while self.pending.len() - start >= self.frame_len {
            frames.push(self.pending[start..start + self.frame_len].to_vec());
            start += self.frame_len;
        }
        self.pending.drain(..start);
        frames
    }
}

/// Band-limited (windowed-sinc, polyphase) resampler that keeps its state across calls,
/// so a stream resampled chunk by chunk has no clicks at chunk edges. Linear
/// interpolation aliases audibly (and measurably: Whisper misheard numbers in
/// linearly resampled speech that it heard correctly after this filter). The output lags
/// the input by half the filter (well under a millisecond).
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Taps on each side of the output position.
    half: usize,
    /// `PHASES + 1` rows of `2 * half` weights.
    table: std::sync::Arc<[f32]>,
    /// Input not yet fully used (starts with `half` copies of the first sample).
    history: Vec<f32>,
    /// Position of the next output sample in `history`.
    pos: f64,
    identity: bool,
}

const PHASES: usize = 128;
/// Zero crossings of the sinc on each side.
const ZERO_CROSSINGS: f64 = 8.0;

impl Resampler {
    /// Converts `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        let (from, to) = (from.max(1), to.max(1));
        let step = f64::from(from) / f64::from(to);
        // Low-pass just under the lower Nyquist frequency, in input-sample units.
        let cutoff = 0.5 * (1.0 / step).min(1.0) * 0.95;
        let half = (ZERO_CROSSINGS / (2.0 * cutoff)).ceil() as usize;
        let mut table = Vec::with_capacity((PHASES + 1) * 2 * half);
        for p in 0..=PHASES {
            let frac = p as f64 / PHASES as f64;
            let row: Vec<f64> = (0..2 * half)
                .map(|j| {
                    let d = frac + half as f64 - 1.0 - j as f64;
                    let u = d / half as f64;
                    if u.abs() >= 1.0 {
                        return 0.0;
                    }
                    let pi = std::f64::consts::PI;
                    let window = 0.42 + 0.5 * (pi * u).cos() + 0.08 * (2.0 * pi * u).cos();
                    let a = 2.0 * cutoff * d;
                    let sinc = if a.abs() < 1e-12 {
                        1.0
                    } else {
                        (pi * a).sin() / (pi * a)
                    };
                    sinc * window
                })
                .collect();
            let sum: f64 = row.iter().sum();
            table.extend(row.iter().map(|w| (w / sum) as f32));
        }
        Self {
            step,
            half,
            table: table.into(),
            history: Vec::new(),
            pos: 0.0,
            identity: from == to,
        }
    }

    /// Resamples the next chunk of the stream.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.identity {
            return input.to_vec();
        }
        let Some(&first) = input.first() else {
            return Vec::new();
        };
        let width = 2 * self.half;
        if self.history.is_empty() {
            // Extend the first sample backwards instead of fading in from silence.
            self.history.resize(self.half, f32::from(first));
            self.pos = (self.half - 1) as f64;
        }
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        let mut out = Vec::with_capacity((input.len() as f64 / self.step) as usize + 2);
        while (self.pos.floor() as usize) + self.half < self.history.len() {
            let c = self.pos.floor() as usize;
            let phase = ((self.pos - c as f64) * PHASES as f64).round() as usize;
            let weights = &self.table[phase * width..(phase + 1) * width];
            let taps = &self.history[c + 1 - self.half..=c + self.half];
            // Eight lanes, which the compiler vectorises (a plain `sum()` stays scalar).
            let v = crate::vector::dot(taps, weights);
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
            self.pos += self.step;
        }
        // Keep what the next outputs still need.
        let keep_from = (self.pos.floor() as usize + 1).saturating_sub(self.half);
        if keep_from > 0 {
            self.history.drain(..keep_from.min(self.history.len()));
            self.pos -= keep_from as f64;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_round_trip_and_odd_lengths() {
        let samples = vec![0, 1, -1, i16::MAX, i16::MIN];
        let bytes = pcm16_to_le_bytes(&samples);
        assert_eq!(pcm16_from_le_bytes(&bytes), Some(samples));
        assert_eq!(pcm16_from_le_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn framer_cuts_any_chunks_into_whole_frames_in_order() {
        let mut framer = Framer::new(3);
        assert!(framer.push(&[1, 2]).is_empty());
        assert_eq!(
            framer.push(&[3, 4, 5, 6, 7]),
            vec![vec![1, 2, 3], vec![4, 5, 6]]
        );
        framer.set_frame_len(2);
        assert_eq!(framer.push(&[8]), vec![vec![7, 8]]);
        framer.push(&[9]);
        framer.clear();
        assert_eq!(framer.push(&[10, 11]), vec![vec![10, 11]]);
        // A zero length (a rate too low for one sample per frame) still makes progress.
        assert_eq!(Framer::new(0).push(&[1, 2]), vec![vec![1], vec![2]]);
    }

    #[test]
    fn resampling_keeps_duration_across_chunks() {
        let mut r = Resampler::new(22_050, 24_000);
        let mut total = 0;
        for _ in 0..100 {
            total += r.process(&[1000; 441]).len();
        }
        // 44,100 input samples at 22,050 Hz = 2 s = 48,000 output samples at 24 kHz
        // (less the filter's half-width, still buffered).
        assert!((47_960..=48_000).contains(&total), "{total}");
        let mut down = Resampler::new(48_000, 16_000);
        let out = down.process(&[500; 960]);
        assert!((300..=320).contains(&out.len()), "{}", out.len());
        assert!(out.iter().all(|&s| (499..=501).contains(&s)), "{out:?}");
    }

    #[test]
    fn resampling_keeps_a_tone_and_removes_what_the_new_rate_cannot_hold() {
        let tone = |hz: f64, rate: u32, n: usize| -> Vec<i16> {
            (0..n)
                .map(|i| {
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                        as i16
                })
                .collect()
        };
        let level = |s: &[i16]| rms(&s[s.len() / 4..]);
        // 1 kHz passes 48 kHz → 16 kHz at full level, in 20 ms chunks.
        let mut r = Resampler::new(48_000, 16_000);
        let input = tone(1000.0, 48_000, 48_000);
        let out: Vec<i16> = input.chunks(960).flat_map(|c| r.process(c)).collect();
        let ratio = level(&out) / level(&input);
        assert!((0.95..1.05).contains(&ratio), "1 kHz kept at {ratio}");
        // 12 kHz cannot exist at 16 kHz: it must not fold back as a 4 kHz alias.
        let mut r = Resampler::new(48_000, 16_000);
        let out = r.process(&tone(12_000.0, 48_000, 48_000));
        let ratio = level(&out) / 8000.0 * std::f32::consts::SQRT_2;
        assert!(ratio < 0.02, "12 kHz leaked at {ratio}");
    }
}
