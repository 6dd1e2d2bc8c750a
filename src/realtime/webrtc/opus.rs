//! Opus both ways at 48 kHz: the codec Adam negotiates, the microphone's packets
//! decoded with loss concealment, Adam's voice encoded into RTP packets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::time::Instant;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::SAMPLE_RATE;

/// One RTP packet carries 20 ms.
const FRAME: usize = 960;
/// Lost packets concealed by the decoder before it gives up and waits for real ones.
const MAX_CONCEALED: u16 = 5;

/// Opus as Adam negotiates it (48 kHz, signalled stereo as browsers do, in-band FEC).
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: SAMPLE_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The client's microphone: Opus packets, in arrival order, decoded to 48 kHz PCM; lost
/// packets concealed by the decoder, late ones dropped. No I/O, so it is tested alone.
pub(super) struct MicDecoder {
    decoder: ::opus::Decoder,
    pcm: Vec<i16>,
    next_sequence: Option<u16>,
}

impl MicDecoder {
    pub(super) fn new() -> Result<Self, ::opus::Error> {
        Ok(Self {
            decoder: ::opus::Decoder::new(SAMPLE_RATE, ::opus::Channels::Mono)?,
            // 120 ms is the longest Opus packet.
            pcm: vec![0i16; SAMPLE_RATE as usize / 1000 * 120],
            next_sequence: None,
        })
    }

    /// The PCM chunks for the packet with RTP `sequence`: the concealment of up to
    /// `MAX_CONCEALED` packets lost before it, then its own audio.
    pub(super) fn packet(&mut self, sequence: u16, payload: &[u8]) -> Vec<Vec<i16>> {
        let mut chunks = Vec::new();
        if let Some(expected) = self.next_sequence {
            let lost = sequence.wrapping_sub(expected);
            if lost > 0 && lost <= MAX_CONCEALED {
                for _ in 0..lost {
                    if let Ok(n) = self.decoder.decode(&[], &mut self.pcm[..FRAME], false) {
                        chunks.push(self.pcm[..n].to_vec());
                    }
                }
            } else if lost > u16::MAX / 2 {
                // A late (reordered) packet: its moment has passed.
                return chunks;
            }
        }
        self.next_sequence = Some(sequence.wrapping_add(1));
        if payload.is_empty() {
            return chunks;
        }
        match self.decoder.decode(payload, &mut self.pcm, false) {
            Ok(n) => chunks.push(self.pcm[..n].to_vec()),
            Err(e) => tracing::debug!(error = %e, "undecodable Opus packet dropped"),
        }
        chunks
    }
}

/// Adam's voice: 48 kHz PCM from the session, Opus-encoded, one RTP packet per 20 ms.
/// Inside a talkspurt timestamps advance by exactly one frame; a new talkspurt starts at
/// the wall clock with the marker bit, so the browser's jitter buffer sees the pause.
pub(super) struct Writer {
    track: Arc<TrackLocalStaticRTP>,
    encoder: Option<::opus::Encoder>,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    base: Instant,
    base_timestamp: u32,
    next_timestamp: Option<u32>,
    last_write: Instant,
    pending: Vec<i16>,
    out: Vec<u8>,
}

impl Writer {
    pub(super) fn new(
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: u8,
        complexity: u8,
    ) -> Self {
        let encoder = ::opus::Encoder::new(
            SAMPLE_RATE,
            ::opus::Channels::Mono,
            ::opus::Application::Voip,
        )
        .and_then(|mut e| {
            e.set_complexity(i32::from(complexity))?;
            Ok(e)
        })
        .map_err(|e| tracing::error!(error = %e, "cannot create an Opus encoder"))
        .ok();
        Self {
            track,
            encoder,
            ssrc,
            payload_type,
            sequence: rand::random(),
            base: Instant::now(),
            base_timestamp: rand::random(),
            next_timestamp: None,
            last_write: Instant::now(),
            pending: Vec::with_capacity(FRAME),
            out: vec![0; 1500],
        }
    }

    pub(super) fn talkspurt_ended(&mut self) {
        self.next_timestamp = None;
        self.pending.clear();
    }

    pub(super) async fn write(&mut self, samples: &[i16]) {
        // A pause longer than a few frames ends the talkspurt.
        if self.last_write.elapsed() > Duration::from_millis(100) {
            self.next_timestamp = None;
        }
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= FRAME {
            let frame: Vec<i16> = self.pending.drain(..FRAME).collect();
            self.send(&frame).await;
        }
        // A short tail (the end of an answer) goes out padded with silence.
        if !self.pending.is_empty() && samples.len() < FRAME {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(FRAME, 0);
            self.send(&frame).await;
        }
    }

    async fn send(&mut self, frame: &[i16]) {
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let len = match encoder.encode(frame, &mut self.out) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(error = %e, "Opus encoding failed; frame dropped");
                return;
            }
        };
        let marker = self.next_timestamp.is_none();
        let timestamp = self.next_timestamp.unwrap_or_else(|| {
            let elapsed = self.base.elapsed().as_secs_f64() * f64::from(SAMPLE_RATE);
            self.base_timestamp.wrapping_add(elapsed as u32)
        });
        self.next_timestamp = Some(timestamp.wrapping_add(FRAME as u32));
        self.sequence = self.sequence.wrapping_add(1);
        self.last_write = Instant::now();
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: self.sequence,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&self.out[..len]),
        };
        if let Err(e) = self.track.write_rtp(packet).await {
            tracing::debug!(error = %e, "RTP write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms of a 440 Hz tone, Opus-encoded.
    fn packet(encoder: &mut ::opus::Encoder) -> Vec<u8> {
        let tone: Vec<i16> = (0..FRAME)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 8_000.0) as i16)
            .collect();
        encoder.encode_vec(&tone, 1500).expect("encode")
    }

    #[test]
    fn the_microphone_conceals_a_few_lost_packets_and_drops_late_ones() {
        let mut encoder = ::opus::Encoder::new(
            SAMPLE_RATE,
            ::opus::Channels::Mono,
            ::opus::Application::Voip,
        )
        .expect("encoder");
        let mut mic = MicDecoder::new().expect("decoder");
        let lens = |chunks: Vec<Vec<i16>>| chunks.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(lens(mic.packet(10, &packet(&mut encoder))), vec![FRAME]);
        assert_eq!(
            lens(mic.packet(13, &packet(&mut encoder))),
            vec![FRAME; 3],
            "two lost packets concealed, then the packet itself"
        );
        assert!(
            mic.packet(12, &packet(&mut encoder)).is_empty(),
            "a late packet's moment has passed"
        );
        assert_eq!(
            lens(mic.packet(14 + MAX_CONCEALED + 1, &packet(&mut encoder))),
            vec![FRAME],
            "past the concealment limit only the new packet plays"
        );
        assert_eq!(
            lens(mic.packet(14 + MAX_CONCEALED + 3, &[])),
            vec![FRAME],
            "an empty packet still conceals the one lost before it"
        );
        assert_eq!(
            lens(mic.packet(14 + MAX_CONCEALED + 4, &packet(&mut encoder))),
            vec![FRAME]
        );
    }
}
