//! `SessionHandle`: what transports and the registry hold to talk to a live session.

use std::time::Duration;

use ractor::ActorRef;

use super::{ChildKind, ClientInput, Control, SessionMsg, SessionSnapshot};
use crate::events::ClientEvent;

/// Typed handle to a live session (all sends are non-blocking).
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Session id.
    pub id: String,
    actor: ActorRef<SessionMsg>,
}

impl SessionHandle {
    pub(crate) fn new(id: String, actor: ActorRef<SessionMsg>) -> Self {
        Self { id, actor }
    }

    /// Feeds input audio (PCM16 at the input rate).
    pub fn send_audio(&self, samples: Vec<i16>) -> bool {
        self.actor
            .cast(SessionMsg::Client(ClientInput::Audio(samples)))
            .is_ok()
    }

    /// Feeds a client event.
    pub fn send_event(&self, event: ClientEvent) -> bool {
        self.actor
            .cast(SessionMsg::Client(ClientInput::Event(event)))
            .is_ok()
    }

    /// Ends the session with a reason and close code.
    pub fn end(&self, reason: &str, code: u16) {
        let _ = self.actor.cast(SessionMsg::Control(Control::End {
            reason: reason.to_owned(),
            code,
        }));
    }

    /// Fault injection for tests: makes a child actor panic.
    pub fn inject_panic(&self, kind: ChildKind) {
        let _ = self
            .actor
            .cast(SessionMsg::Control(Control::InjectPanic(kind)));
    }

    /// Fault injection for tests: makes the session actor itself panic.
    pub fn inject_session_panic(&self) {
        let _ = self.actor.cast(SessionMsg::Control(Control::PanicSelf));
    }

    /// Current state, or `None` if the session is gone or busy past the timeout.
    pub async fn snapshot(&self) -> Option<SessionSnapshot> {
        crate::rpc::ask(
            &self.actor,
            |reply| SessionMsg::Control(Control::Snapshot(reply)),
            Duration::from_secs(2),
        )
        .await
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        !matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Stopped | ractor::ActorStatus::Stopping
        )
    }
}
