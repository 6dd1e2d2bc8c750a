//! `AvatarController`: turns the TTS word timings into `avatar.viseme` events for the
//! built-in avatar, and drives a remote avatar backend when one is configured.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::events::ServerEvent;
use crate::metrics::AliveGuard;
use crate::outbox::Outbox;
use crate::ports::WordTiming;
use crate::session::Shared;
use crate::visemes;

/// Arguments.
pub struct AvatarArgs {
    /// Session id (for the remote backend).
    pub session_id: String,
    /// Towards the client.
    pub outbox: Outbox,
    /// Providers and metrics.
    pub shared: Arc<Shared>,
}

/// Messages.
pub enum AvatarMsg {
    /// Words scheduled at these offsets of a response's audio.
    Words {
        /// Response.
        response_id: String,
        /// Words.
        words: Vec<WordTiming>,
    },
    /// Barge-in: stop.
    Cancel,
    /// Fault injection.
    InjectPanic,
}

/// The actor.
pub struct AvatarController;

/// Its state.
pub struct AvatarState {
    session_id: String,
    outbox: Outbox,
    shared: Arc<Shared>,
    _alive: AliveGuard,
}

impl Actor for AvatarController {
    type Msg = AvatarMsg;
    type State = AvatarState;
    type Arguments = AvatarArgs;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        args: AvatarArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(AvatarState {
            _alive: AliveGuard::new(&args.shared.metrics.live_actors),
            session_id: args.session_id,
            outbox: args.outbox,
            shared: args.shared,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AvatarMsg::Words { response_id, words } => {
                for w in &words {
                    if w.visemes.is_empty() {
                        for v in visemes::for_word(&w.word, w.start_ms, w.end_ms) {
                            state.outbox.event(ServerEvent::AvatarViseme {
                                response_id: response_id.clone(),
                                viseme: v.name.into(),
                                audio_offset_ms: v.offset_ms,
                                duration_ms: v.duration_ms,
                            });
                        }
                    }
                    for v in &w.visemes {
                        state.outbox.event(ServerEvent::AvatarViseme {
                            response_id: response_id.clone(),
                            viseme: v.viseme.clone(),
                            audio_offset_ms: v.start_ms,
                            duration_ms: v.end_ms.saturating_sub(v.start_ms),
                        });
                    }
                }
                let text = words
                    .iter()
                    .map(|w| w.word.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let backend = state.shared.providers.avatar.clone();
                let session_id = state.session_id.clone();
                tokio::spawn(async move {
                    if let Err(e) = backend.speak(&session_id, &response_id, &text).await {
                        tracing::warn!(error = %e, "avatar backend failed");
                    }
                });
            }
            AvatarMsg::Cancel => {
                let backend = state.shared.providers.avatar.clone();
                let session_id = state.session_id.clone();
                tokio::spawn(async move {
                    let _ = backend.interrupt(&session_id).await;
                });
            }
            AvatarMsg::InjectPanic => panic!("injected fault in AvatarController"),
        }
        Ok(())
    }
}
