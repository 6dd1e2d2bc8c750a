//! Asking an actor with a deadline: the answer, or `None` when the actor is gone, did
//! not reply, or took longer than `timeout`.

use std::time::Duration;

use ractor::{ActorRef, Message, RpcReplyPort};

/// Sends the message built around a reply port and waits up to `timeout` for the reply.
pub async fn ask<M, T>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
    timeout: Duration,
) -> Option<T>
where
    M: Message,
    T: Send + 'static,
{
    actor
        .call(build, Some(timeout))
        .await
        .ok()
        .and_then(|r| r.success_or(()).ok())
}
