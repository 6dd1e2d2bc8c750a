//! G.711 μ-law and A-law (ITU-T G.711), the telephone codecs the OpenAI Realtime API
//! accepts as `audio/pcmu` and `audio/pcma`: 8 kHz, one byte a sample.

/// Bias added before μ-law encoding.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law encodes.
const ULAW_CLIP: i32 = 32_635;

/// Encodes one PCM16 sample as μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    let pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit of `pcm >> 7` (at most 255).
    let top = (pcm >> 7) as u32;
    let exponent = if top == 0 {
        0
    } else {
        (31 - top.leading_zeros()) as i32
    };
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one PCM16 sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let pcm = i32::from(sample);
    let (sign, magnitude) = if pcm >= 0 {
        (0x80u8, pcm)
    } else {
        (0x00u8, (-pcm - 1).max(0))
    };
    let magnitude = magnitude.min(0x7fff) >> 3;
    let byte = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        // Segments 1–7 cover 32–63, 64–127, … 2048–4095 of the 13-bit magnitude.
        let exponent = (31 - (magnitude as u32).leading_zeros()) as i32 - 4;
        let mantissa = (magnitude >> exponent) & 0x0f;
        ((exponent << 4) | mantissa) as u8
    };
    (sign | byte) ^ 0x55
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if byte & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points_match_the_standard() {
        // Silence and full scale, as every G.711 table has them.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0xaa), 32_256);
        assert_eq!(alaw_decode(0x2a), -32_256);
    }

    #[test]
    fn round_trips_stay_within_the_codecs_quantisation_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_decode(ulaw_encode(sample));
            let a = alaw_decode(alaw_encode(sample));
            // Both are logarithmic: the step grows with the magnitude (≤ 1/16 of it + a bit).
            let allowed = (i32::from(sample).abs() / 16).max(16) + 8;
            assert!(
                (i32::from(u) - i32::from(sample)).abs() <= allowed,
                "μ-law {sample} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(sample)).abs() <= allowed,
                "A-law {sample} -> {a}"
            );
        }
        // Every byte decodes to a value that encodes back to the same byte (but μ-law's
        // "negative zero", 0x7f, which decodes to 0 = 0xff).
        for byte in 0..=255u8 {
            if byte != 0x7f {
                assert_eq!(ulaw_encode(ulaw_decode(byte)), byte, "μ-law {byte:#x}");
            }
            assert_eq!(alaw_encode(alaw_decode(byte)), byte, "A-law {byte:#x}");
        }
    }
}
