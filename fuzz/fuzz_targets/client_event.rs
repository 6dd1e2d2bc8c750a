//! One client message as the WebSocket and the WebRTC data channel receive it: the size
//! limit, PCM16 decoding of binary frames and the JSON event parser.
//!
//! Input: one selector byte (0: WebSocket text, 1: WebSocket binary, 2: data-channel
//! text, 3: data-channel binary; bit 2 set: a 64-byte limit instead of the default
//! 64 KiB, to reach the limit checks), then the message.

#![no_main]

use adam::realtime::socket::{Inbound, inbound};
use adam::realtime::webrtc::channel_inbound;
use adam_actors::events::{ClientEvent, parse_client_event};
use axum::extract::ws::Message;
use libfuzzer_sys::fuzz_target;

/// `session.max_message_bytes` by default.
const DEFAULT_LIMIT: usize = 64 * 1024;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let limit = if selector & 4 == 0 { DEFAULT_LIMIT } else { 64 };
    let outcome = match selector & 3 {
        0 => match std::str::from_utf8(data) {
            Ok(text) => inbound(Message::Text(text.to_owned().into()), limit),
            // A WebSocket text frame is UTF-8 by protocol (tungstenite refuses others).
            Err(_) => return,
        },
        1 => inbound(Message::Binary(data.to_vec().into()), limit),
        2 => channel_inbound(data, true, limit),
        _ => channel_inbound(data, false, limit),
    };
    if data.len() > limit {
        assert_eq!(outcome, Inbound::TooBig, "the size limit is checked first");
        return;
    }
    match outcome {
        Inbound::Audio(samples) => {
            assert_eq!(selector & 3, 1, "audio only from WebSocket binary frames");
            assert_eq!(samples.len() * 2, data.len());
        }
        Inbound::Event(event) => round_trips(&event),
        Inbound::Refused(error) => {
            // The error event must serialise: it goes straight back to the client.
            serde_json::to_string(&error).expect("error events serialise");
        }
        Inbound::TooBig | Inbound::Closed | Inbound::Ignored | Inbound::Handled => {
            panic!("unexpected {outcome:?} for a {} byte message", data.len())
        }
    }
});

/// An accepted event means the same after a trip through JSON (nothing is lost or
/// invented by the parser).
fn round_trips(event: &ClientEvent) {
    let json = serde_json::to_string(event).expect("client events serialise");
    assert_eq!(parse_client_event(&json).as_ref(), Ok(event));
}
