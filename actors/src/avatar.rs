//! `AvatarController`: turns the TTS word timings into `avatar.viseme` events for the
//! built-in avatar, and runs the session's remote avatar (HeyGen) when the dealership has
//! one: starts it with the session, hands it each response's audio, interrupts it on
//! barge-in and stops it when the session ends. A remote avatar that fails is dropped and
//! the session goes on with the built-in one.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};

use crate::events::ServerEvent;
use crate::metrics::AliveGuard;
use crate::outbox::Outbox;
use crate::ports::{
    AvatarSettings, AvatarStream, CancellationToken, ProviderError, RemoteAvatar, WordTiming,
};
use crate::shared::Shared;
use crate::tasks::AbortOnDrop;
use crate::visemes;

/// What `AvatarController` reports to its parent.
pub enum AvatarEvent {
    /// The remote avatar is ready; later responses are its to speak.
    Ready(AvatarStream),
    /// The remote avatar did not start, or failed with `error`; the built-in avatar
    /// takes over.
    #[allow(missing_docs, reason = "described on the variant")]
    Failed { error: ProviderError },
}

/// Configuration of one `AvatarController`.
pub struct AvatarArgs {
    /// Session id (for the remote backend).
    pub session_id: String,
    /// Where it reports (a remote avatar ready or lost).
    pub report: DerivedActorRef<AvatarEvent>,
    /// The dealership's avatar.
    pub settings: AvatarSettings,
    /// Towards the client.
    pub outbox: Outbox,
    /// Providers and metrics.
    pub shared: Arc<Shared>,
}

/// Input of `AvatarController`.
pub enum AvatarMsg {
    /// Words scheduled at these offsets of a response's audio.
    Words {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
        /// Words.
        words: Vec<WordTiming>,
    },
    /// A piece of a response's audio, as synthesized, for the remote avatar.
    Audio {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
        /// PCM16 mono.
        samples: Vec<i16>,
        /// Its rate.
        sample_rate: u32,
    },
    /// All of a response's audio was synthesized.
    EndOfResponse {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
    },
    /// Barge-in, cancel or failure: stop talking now.
    Cancel,
    /// The remote avatar's start finished.
    Started(Result<Option<Box<dyn RemoteAvatar>>, ProviderError>),
    /// The remote avatar failed on its own.
    RemoteFailed(ProviderError),
    /// Fault injection.
    InjectPanic,
}

/// The avatar actor, one per session.
pub struct AvatarController;

/// The remote avatar, if one runs, and its start and failure watchers.
pub struct AvatarState {
    report: DerivedActorRef<AvatarEvent>,
    session_id: String,
    shared: Arc<Shared>,
    outbox: Outbox,
    remote: Option<Box<dyn RemoteAvatar>>,
    /// Ends a start still in progress when the controller stops.
    starting: CancellationToken,
    /// Waits for the remote avatar to fail on its own.
    watcher: Option<AbortOnDrop>,
    _alive: AliveGuard,
}

/// The session's children are killed when it ends (their `post_stop` does not run): the
/// state going away ends a start in progress, and dropping the remote avatar stops it.
impl Drop for AvatarState {
    fn drop(&mut self) {
        self.starting.cancel();
    }
}

impl AvatarState {
    /// Drops the remote avatar after `error` and tells the parent, which goes on with
    /// the built-in avatar.
    fn lose_remote(&mut self, error: ProviderError) {
        let Some(remote) = self.remote.take() else {
            return;
        };
        self.watcher = None;
        tracing::warn!(session_id = %self.session_id, error = %error, "remote avatar lost; going on with the built-in avatar");
        self.count("lost");
        stop_in_background(remote);
        let _ = self.report.send_message(AvatarEvent::Failed { error });
    }

    fn count(&self, outcome: &str) {
        self.shared
            .metrics
            .remote_avatars
            .with_label_values(&[outcome])
            .inc();
    }

    /// Applies `call` to the remote avatar, if any; an error loses it.
    fn with_remote(
        &mut self,
        call: impl FnOnce(&mut dyn RemoteAvatar) -> Result<(), ProviderError>,
    ) {
        let Some(remote) = self.remote.as_deref_mut() else {
            return;
        };
        if let Err(error) = call(remote) {
            self.lose_remote(error);
        }
    }
}

/// Stops a remote avatar off the mailbox (one bounded vendor call).
fn stop_in_background(remote: Box<dyn RemoteAvatar>) {
    tokio::spawn(async move {
        if let Err(e) = remote.stop().await {
            tracing::warn!(error = %e, "stopping the remote avatar failed");
        }
    });
}

impl Actor for AvatarController {
    type Msg = AvatarMsg;
    type State = AvatarState;
    type Arguments = AvatarArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: AvatarArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let starting = CancellationToken::new();
        // Starting a remote avatar takes vendor round trips: off the mailbox. The task is
        // not aborted but cancelled, so a half-started avatar is stopped by its backend.
        let backend = args.shared.providers.avatar.clone();
        let (session_id, settings, cancel) = (
            args.session_id.clone(),
            args.settings,
            starting.child_token(),
        );
        tokio::spawn(async move {
            let result = backend.start(&session_id, &settings, cancel).await;
            // Gone already: the message, and any avatar in it, is dropped (and stopped).
            let _ = myself.cast(AvatarMsg::Started(result));
        });
        Ok(AvatarState {
            _alive: AliveGuard::new(&args.shared.metrics.live_actors),
            report: args.report,
            session_id: args.session_id,
            shared: args.shared,
            outbox: args.outbox,
            remote: None,
            starting,
            watcher: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
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
            }
            AvatarMsg::Audio {
                response_id,
                samples,
                sample_rate,
            } => state.with_remote(|r| r.audio(&response_id, &samples, sample_rate)),
            AvatarMsg::EndOfResponse { response_id } => {
                state.with_remote(|r| r.end_of_response(&response_id));
            }
            AvatarMsg::Cancel => state.with_remote(|r| r.interrupt()),
            AvatarMsg::Started(Ok(Some(remote))) => {
                let failed = remote.failed();
                let me = myself.clone();
                state.watcher = Some(AbortOnDrop(tokio::spawn(async move {
                    let error = failed.await;
                    let _ = me.cast(AvatarMsg::RemoteFailed(error));
                })));
                let stream = remote.stream();
                state.remote = Some(remote);
                state.count("started");
                let _ = state.report.send_message(AvatarEvent::Ready(stream));
            }
            AvatarMsg::Started(Ok(None)) => {}
            AvatarMsg::Started(Err(ProviderError::Cancelled)) => {}
            AvatarMsg::Started(Err(error)) => {
                tracing::warn!(session_id = %state.session_id, error = %error, "remote avatar did not start; using the built-in avatar");
                state.count("start_failed");
                let _ = state.report.send_message(AvatarEvent::Failed { error });
            }
            AvatarMsg::RemoteFailed(error) => state.lose_remote(error),
            AvatarMsg::InjectPanic => panic!("injected fault in AvatarController"),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.starting.cancel();
        state.watcher = None;
        if let Some(remote) = state.remote.take() {
            stop_in_background(remote);
        }
        Ok(())
    }
}
