//! `SessionRegistry`: the root of every conversation tree on this node. Enforces the
//! per-node session limit ("busy"), finds sessions by id, ends one user's sessions when
//! their account ends, and drains on shutdown. A session that fails is removed; it never
//! affects another.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use std::sync::Arc;

use crate::metrics::ActorMetrics;
use crate::outbox::Outbox;
use crate::session::{Control, Session, SessionArgs, SessionHandle, SessionMsg};
use crate::shared::Shared;

/// Why a session could not start.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The node runs its maximum number of sessions.
    #[error("server busy: {0} live sessions")]
    Busy(usize),
    /// The node is draining for shutdown.
    #[error("server is shutting down")]
    Draining,
    /// The session failed to start.
    #[error("session failed to start: {0}")]
    Failed(String),
    /// The registry did not answer.
    #[error("session registry unavailable")]
    Unavailable,
}

/// What the actor is asked to do.
pub enum RegistryMsg {
    /// Start a session.
    Start(
        Box<SessionArgs>,
        RpcReplyPort<Result<SessionHandle, RegistryError>>,
    ),
    /// Find a live session.
    Get(String, RpcReplyPort<Option<SessionHandle>>),
    /// Live session count.
    Count(RpcReplyPort<usize>),
    /// Ids of the live sessions.
    Ids(RpcReplyPort<Vec<String>>),
    /// Refuse new sessions; live ones finish their answer, then close.
    Drain(String, RpcReplyPort<usize>),
    /// End every live session now (drain deadline passed).
    EndAll(String),
    /// End the live sessions of one signed-in user (user id, reason); replies how many.
    EndUser(String, String, RpcReplyPort<usize>),
}

/// The actor.
pub struct SessionRegistry;

/// Its state.
pub struct RegistryState {
    max_sessions: usize,
    sessions: HashMap<String, ActorRef<SessionMsg>>,
    by_actor: HashMap<ActorId, (String, Arc<Shared>, Outbox)>,
    /// Session id → its signed-in user (anonymous sessions are not listed).
    users: HashMap<String, String>,
    draining: bool,
    metrics: ActorMetrics,
}

impl Actor for SessionRegistry {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = (usize, ActorMetrics);

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        (max_sessions, metrics): (usize, ActorMetrics),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RegistryState {
            max_sessions,
            sessions: HashMap::new(),
            by_actor: HashMap::new(),
            users: HashMap::new(),
            draining: false,
            metrics,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegistryMsg::Start(args, reply) => {
                let result = if state.draining {
                    Err(RegistryError::Draining)
                } else if state.sessions.len() >= state.max_sessions {
                    state.metrics.busy_refusals.inc();
                    Err(RegistryError::Busy(state.sessions.len()))
                } else {
                    let id = args.id.clone();
                    let user = args.user_id.clone();
                    let shared = args.shared.clone();
                    let outbox = args.outbox.clone();
                    match Actor::spawn_linked(None, Session, *args, myself.get_cell()).await {
                        Ok((actor, _)) => {
                            state
                                .by_actor
                                .insert(actor.get_id(), (id.clone(), shared, outbox));
                            state.sessions.insert(id.clone(), actor.clone());
                            if let Some(user) = user {
                                state.users.insert(id.clone(), user);
                            }
                            state.metrics.live_sessions.set(state.sessions.len() as i64);
                            Ok(SessionHandle::new(id, actor))
                        }
                        Err(e) => Err(RegistryError::Failed(e.to_string())),
                    }
                };
                let _ = reply.send(result);
            }
            RegistryMsg::Get(id, reply) => {
                let found = state
                    .sessions
                    .get(&id)
                    .map(|a| SessionHandle::new(id, a.clone()));
                let _ = reply.send(found);
            }
            RegistryMsg::Count(reply) => {
                let _ = reply.send(state.sessions.len());
            }
            RegistryMsg::Ids(reply) => {
                let _ = reply.send(state.sessions.keys().cloned().collect());
            }
            RegistryMsg::Drain(reason, reply) => {
                state.draining = true;
                for actor in state.sessions.values() {
                    let _ = actor.cast(SessionMsg::Control(Control::Drain {
                        reason: reason.clone(),
                    }));
                }
                let _ = reply.send(state.sessions.len());
            }
            RegistryMsg::EndAll(reason) => {
                for actor in state.sessions.values() {
                    let _ = actor.cast(SessionMsg::Control(Control::End {
                        reason: reason.clone(),
                        code: 1001,
                    }));
                }
            }
            RegistryMsg::EndUser(user_id, reason, reply) => {
                let mut ended = 0;
                for (id, _) in state.users.iter().filter(|(_, u)| **u == user_id) {
                    if let Some(actor) = state.sessions.get(id) {
                        let _ = actor.cast(SessionMsg::Control(Control::End {
                            reason: reason.clone(),
                            code: 1000,
                        }));
                        ended += 1;
                    }
                }
                let _ = reply.send(ended);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Sessions are never restarted: a conversation that died is over. Only forget it.
        let (cell, failed) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, false),
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(error = %err, "session actor failed");
                (cell, true)
            }
            _ => return Ok(()),
        };
        if let Some((id, shared, outbox)) = state.by_actor.remove(&cell.get_id()) {
            if failed {
                // A crashed session runs no cleanup of its own: close its connection
                // and record its end here.
                outbox.close(1011, "session failed");
                let sink = shared.sink.clone();
                let session_id = id.clone();
                tokio::spawn(async move {
                    let _ = sink
                        .session_ended(&session_id, "session_failed", Default::default())
                        .await;
                });
            }
            state.sessions.remove(&id);
            state.users.remove(&id);
            state.metrics.live_sessions.set(state.sessions.len() as i64);
        }
        Ok(())
    }
}

/// Typed handle with timeouts.
#[derive(Clone)]
pub struct SessionRegistryHandle {
    actor: ActorRef<RegistryMsg>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl SessionRegistryHandle {
    /// Starts the registry with a per-node session limit.
    pub async fn start(
        max_sessions: usize,
        metrics: ActorMetrics,
    ) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, SessionRegistry, (max_sessions, metrics)).await?;
        Ok(Self { actor })
    }

    /// Starts a session, or says why not.
    pub async fn start_session(&self, args: SessionArgs) -> Result<SessionHandle, RegistryError> {
        crate::rpc::ask(
            &self.actor,
            |reply| RegistryMsg::Start(Box::new(args), reply),
            CALL_TIMEOUT,
        )
        .await
        .unwrap_or(Err(RegistryError::Unavailable))
    }

    /// A live session by id.
    pub async fn get(&self, id: &str) -> Option<SessionHandle> {
        crate::rpc::ask(
            &self.actor,
            |reply| RegistryMsg::Get(id.to_owned(), reply),
            CALL_TIMEOUT,
        )
        .await
        .flatten()
    }

    /// Live sessions.
    pub async fn count(&self) -> usize {
        crate::rpc::ask(&self.actor, RegistryMsg::Count, CALL_TIMEOUT)
            .await
            .unwrap_or(0)
    }

    /// Ids of the live sessions (`None` if the registry did not answer).
    pub async fn ids(&self) -> Option<Vec<String>> {
        crate::rpc::ask(&self.actor, RegistryMsg::Ids, CALL_TIMEOUT).await
    }

    /// Refuses new sessions and lets live ones finish their answer and close; returns how
    /// many were live.
    pub async fn drain(&self, reason: &str) -> usize {
        crate::rpc::ask(
            &self.actor,
            |reply| RegistryMsg::Drain(reason.to_owned(), reply),
            CALL_TIMEOUT,
        )
        .await
        .unwrap_or(0)
    }

    /// Ends every live session now, cancelling answers in progress (they are saved).
    pub fn end_all(&self, reason: &str) {
        let _ = self.actor.cast(RegistryMsg::EndAll(reason.to_owned()));
    }

    /// Ends the live sessions of `user_id` now (their account was disabled or deleted, or
    /// their password changed): each client gets close code 1000 with `reason`, answers in
    /// progress are cancelled and saved. Returns how many sessions were told to end.
    pub async fn end_user(&self, user_id: &str, reason: &str) -> usize {
        crate::rpc::ask(
            &self.actor,
            |reply| RegistryMsg::EndUser(user_id.to_owned(), reason.to_owned(), reply),
            CALL_TIMEOUT,
        )
        .await
        .unwrap_or(0)
    }

    /// Stops the registry and, with it, every session.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}
