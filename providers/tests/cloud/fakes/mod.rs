//! Fake vendor servers on loopback, speaking each vendor's documented wire protocol
//! (status codes, headers, streaming framing, error shapes), scripted per test.

pub mod deepgram;
pub mod elevenlabs;
pub mod heygen;
pub mod openai;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use tokio::task::JoinHandle;

/// A server on a random loopback port; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake server");
    });
    Server { addr, task }
}

/// Counts when it is dropped while armed: a response body or a socket handler that the
/// client abandoned before it finished.
pub struct Abandoned {
    counter: Arc<AtomicUsize>,
    armed: bool,
}

impl Abandoned {
    pub fn new(counter: Arc<AtomicUsize>) -> Self {
        Self {
            counter,
            armed: true,
        }
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.armed {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}
