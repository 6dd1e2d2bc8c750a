//! The body of `POST /v1/sessions/{id}/webrtc` (`{"type": "offer", "sdp": "…"}`) as axum's
//! `Json` extractor reads it, then the offer checks and SDP parsing done before any peer
//! connection exists.
//!
//! Input: the request body; or, when it is not JSON, an SDP text wrapped in a valid
//! offer (so the SDP parser gets the mutations, not only the JSON one).

#![no_main]

use adam::realtime::webrtc::{NegotiationError, SessionDescription, parse_offer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let offer = match serde_json::from_slice::<SessionDescription>(input) {
        Ok(offer) => offer,
        Err(_) => match std::str::from_utf8(input) {
            Ok(sdp) => SessionDescription {
                kind: "offer".into(),
                sdp: sdp.to_owned(),
            },
            Err(_) => return,
        },
    };
    match parse_offer(offer) {
        Ok(description) => {
            // Negotiation reads the parsed offer and writes SDP back out.
            let parsed = description
                .unmarshal()
                .expect("an accepted offer parses again");
            let _ = parsed.marshal();
        }
        Err(NegotiationError::InvalidOffer(message)) => assert!(!message.is_empty()),
        Err(other) => panic!("offer parsing can only refuse the offer, not {other:?}"),
    }
});
