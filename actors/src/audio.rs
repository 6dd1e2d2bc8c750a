//! PCM helpers: little-endian conversion, energy, framing and linear resampling.

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

/// Linear-interpolation resampler that keeps its phase across calls, so a stream
/// resampled chunk by chunk has no clicks at chunk edges.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Position of the next output sample in input samples, relative to `last`.
    pos: f64,
    last: Option<i16>,
}

impl Resampler {
    /// Converts `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        Self {
            from: from.max(1),
            to: to.max(1),
            pos: 0.0,
            last: None,
        }
    }

    /// Resamples the next chunk of the stream.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.from == self.to {
            return input.to_vec();
        }
        let step = f64::from(self.from) / f64::from(self.to);
        let mut out = Vec::with_capacity((input.len() as f64 / step) as usize + 2);
        // Virtual buffer: [last] followed by input; index 0 is `last` when present.
        let offset = usize::from(self.last.is_some());
        let len = input.len() + offset;
        let at = |i: usize| -> f64 {
            if offset == 1 && i == 0 {
                f64::from(self.last.unwrap_or(0))
            } else {
                f64::from(input[i - offset])
            }
        };
        let mut pos = if self.last.is_some() { self.pos } else { 0.0 };
        while pos + 1.0 < len as f64 {
            let i = pos.floor() as usize;
            let frac = pos - i as f64;
            let v = at(i) * (1.0 - frac) + at(i + 1) * frac;
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
            pos += step;
        }
        if let Some(&last) = input.last() {
            self.pos = pos - (len - 1) as f64;
            self.last = Some(last);
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
    fn resampling_keeps_duration_across_chunks() {
        let mut r = Resampler::new(22_050, 24_000);
        let mut total = 0;
        for _ in 0..100 {
            total += r.process(&[1000; 441]).len();
        }
        // 44,100 input samples at 22,050 Hz = 2 s = 48,000 output samples at 24 kHz.
        assert!((47_990..=48_010).contains(&total), "{total}");
        let mut down = Resampler::new(48_000, 16_000);
        let out = down.process(&[500; 960]);
        assert!((318..=321).contains(&out.len()), "{}", out.len());
        assert!(out.iter().all(|&s| s == 500));
    }
}
