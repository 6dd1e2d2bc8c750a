//! PCM16 as vendors send and take it: WAV files for uploads, little-endian byte streams
//! (split anywhere, even inside a sample) for downloads.

/// `samples` (mono PCM16 at `sample_rate`) as a WAV file.
pub fn wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 44) & !1;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &samples[..data_len as usize / 2] {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// `samples` as little-endian bytes (what a WebSocket audio frame carries).
pub fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Turns PCM16 LE bytes arriving in arbitrary pieces into samples, keeping an odd byte
/// for the next piece.
#[derive(Debug, Default)]
pub struct PcmDecoder {
    odd: Option<u8>,
}

impl PcmDecoder {
    /// The samples completed by `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut rest = bytes;
        if let Some(low) = self.odd.take() {
            match rest.split_first() {
                Some((&high, tail)) => {
                    out.push(i16::from_le_bytes([low, high]));
                    rest = tail;
                }
                None => {
                    self.odd = Some(low);
                    return out;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
        self.odd = pairs.remainder().first().copied();
        out
    }

    /// True when half a sample is pending (a stream that ends so is truncated).
    pub fn has_partial(&self) -> bool {
        self.odd.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_describes_the_samples() {
        let w = wav(&[1, -2, 3], 16_000);
        assert_eq!(w.len(), 44 + 6);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[4], w[5], w[6], w[7]]), 36 + 6);
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 16_000);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 6);
        assert_eq!(i16::from_le_bytes([w[46], w[47]]), -2);
    }

    #[test]
    fn samples_split_across_pieces_are_rebuilt() {
        let samples: Vec<i16> = vec![0, 1, -1, i16::MAX, i16::MIN, 1234];
        let bytes = pcm_bytes(&samples);
        for cut in 0..bytes.len() {
            let mut d = PcmDecoder::default();
            let mut got = d.push(&bytes[..cut]);
            got.extend(d.push(&[]));
            got.extend(d.push(&bytes[cut..]));
            assert_eq!(got, samples, "cut at {cut}");
            assert!(!d.has_partial());
        }
    }
}
