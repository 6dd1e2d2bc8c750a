//! The transport contract. One driver, [`run`], serves any connection between a client and
//! its session: message size and rate limits, the idle timeout, close codes, the
//! final-events grace and event encoding live here once. A transport only implements
//! [`Incoming`] (what the client sent) and [`Outgoing`] (events, audio frames, the
//! close); the WebSocket (`socket.rs`) and WebRTC (`webrtc/`) are such adapters.
//!
//! Every end the transport detects (the client left, a flood, an oversized message, the
//! idle timeout) ends the *session* with its close code: the session, the single owner
//! of the conversation, cancels the response in progress, queues its final events and
//! then closes the outbox, so those events reach the client before the close.

use std::future::Future;
use std::time::Duration;

use adam_actors::events::{ClientEvent, Outbound, ServerEvent};
use adam_actors::outbox::{Delivery, FINAL_EVENTS_GRACE, Outbox, OutboxReceiver};
use adam_actors::session::SessionHandle;
use tokio::time::Instant;

/// Limits of one connection, the same for every transport.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest client message, bytes (larger: 1009).
    pub max_message_bytes: usize,
    /// Client messages per second (more: 1008).
    pub max_messages_per_sec: u32,
    /// Close (1000) after this long without audio or an event from the client.
    pub idle_timeout: Duration,
    /// Interval of [`Outgoing::keepalive`].
    pub ping_every: Duration,
}

/// Close codes (the WebSocket's; WebRTC sends them in `session.closed`).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server going away (drain).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Policy violation (flood, slow client).
    pub const POLICY: u16 = 1008;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error.
    pub const INTERNAL: u16 = 1011;
}

/// The session's end reason when the client goes away.
pub const CLIENT_GONE: &str = "client_disconnected";

/// Counts a client's messages in one-second windows against `session.max_messages_per_sec`.
#[derive(Debug)]
pub struct MessageRate {
    window_start: Instant,
    count: u32,
    limit: u32,
}

impl MessageRate {
    /// A counter allowing `limit` messages a second.
    pub fn new(limit: u32) -> Self {
        Self {
            window_start: Instant::now(),
            count: 0,
            limit,
        }
    }

    /// Counts one message; true when it is one too many (a flood).
    pub fn flooded(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count += 1;
        self.count > self.limit
    }
}

/// What one client message means for its session: decided without I/O by each
/// transport's parser (`socket::inbound`, `webrtc::channel_inbound`), so the parsers can
/// be fuzzed (`fuzz/`).
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// PCM16 samples for the session.
    Audio(Vec<i16>),
    /// A client event for the session.
    Event(ClientEvent),
    /// Refused with this `error` event; the session goes on.
    Refused(ServerEvent),
    /// Larger than the limit: the connection closes with 1009.
    TooBig,
    /// The client closed the connection.
    Closed,
    /// Nothing for the session (keepalive).
    Ignored,
    /// Handled by the transport itself (an adapter answered it, or holds it for later):
    /// activity, but nothing for the session yet.
    Handled,
}

/// What a transport received from its client.
#[derive(Debug)]
pub enum Received {
    /// One client message: counts against the message rate, and (unless
    /// [`Inbound::Ignored`]) as activity for the idle timeout.
    Message(Inbound),
    /// Audio on a media stream the transport paces itself (WebRTC's RTP track):
    /// activity, but not a message.
    Media(Vec<i16>),
    /// The client's stream broke (a protocol error): closes with 1002 `read error`.
    Broken,
    /// The client is gone.
    Gone,
}

/// Sending failed: the client is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// The client-to-server half of a transport.
pub trait Incoming: Send {
    /// The next thing the client sent. Must be cancel-safe: the driver polls it beside
    /// its timers.
    fn recv(&mut self) -> impl Future<Output = Received> + Send;
}

/// The server-to-client half of a transport.
pub trait Outgoing: Send {
    /// Sends one event, `json` being its encoding.
    fn send_event(
        &mut self,
        event: &ServerEvent,
        json: String,
    ) -> impl Future<Output = Result<(), Disconnected>> + Send;

    /// Sends one frame of the session's output audio.
    fn send_audio(
        &mut self,
        samples: Vec<i16>,
    ) -> impl Future<Output = Result<(), Disconnected>> + Send;

    /// Keeps the connection alive, every [`Limits::ping_every`]; nothing by default.
    fn keepalive(&mut self) -> impl Future<Output = Result<(), Disconnected>> + Send {
        async { Ok(()) }
    }

    /// Tells the client the connection closes with `code` and `reason` (after the final
    /// events), and closes its side.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
}

/// What the driver needs from a session: its input, and ending it. A seam so the
/// driver is tested without an actor system.
pub trait SessionPort: Send + Sync {
    /// Feeds client audio.
    fn audio(&self, samples: Vec<i16>);
    /// Feeds a client event.
    fn event(&self, event: ClientEvent);
    /// Ends the session; it closes the outbox with `code` after its final events.
    fn end(&self, reason: &str, code: u16);
}

impl SessionPort for SessionHandle {
    fn audio(&self, samples: Vec<i16>) {
        self.send_audio(samples);
    }

    fn event(&self, event: ClientEvent) {
        self.send_event(event);
    }

    fn end(&self, reason: &str, code: u16) {
        SessionHandle::end(self, reason, code);
    }
}

/// How long the session has to close the outbox after being ended by the transport
/// before the driver closes it itself (the session is already gone).
const SESSION_CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long the writer may take to deliver the final events and say goodbye.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// Runs one connection until either side ends it; always ends the session.
pub async fn run<S, I, O>(
    session: &S,
    outbox: &Outbox,
    receiver: OutboxReceiver,
    input: &mut I,
    output: &mut O,
    limits: Limits,
) where
    S: SessionPort,
    I: Incoming,
    O: Outgoing,
{
    // Reader and writer may both see the end (a close the outbox asked for): the session
    // is told once.
    let session = &EndOnce {
        session,
        ended: std::sync::atomic::AtomicBool::new(false),
    };
    let reader = read_loop(input, session, outbox, limits);
    let writer = write_loop(output, receiver, session, limits.ping_every);
    tokio::pin!(reader, writer);
    tokio::select! {
        (reason, code) = &mut reader => {
            // The client left or broke a rule: the session ends, queues its final
            // events and closes the outbox; the writer delivers them and says goodbye.
            // (After a close the outbox asked for, this does nothing more.)
            session.end(&reason, code);
            if tokio::time::timeout(SESSION_CLOSE_WAIT, &mut writer).await.is_ok() {
                return;
            }
            // A session already gone cannot close the outbox: close it for it.
            outbox.close(code, &reason);
            if tokio::time::timeout(GOODBYE_WAIT, &mut writer).await.is_err() {
                tracing::debug!("writer did not finish closing in time");
            }
        }
        () = &mut writer => {}
    }
}

/// A session port that passes on only the first `end`.
struct EndOnce<'a, S> {
    session: &'a S,
    ended: std::sync::atomic::AtomicBool,
}

impl<S: SessionPort> SessionPort for EndOnce<'_, S> {
    fn audio(&self, samples: Vec<i16>) {
        self.session.audio(samples);
    }

    fn event(&self, event: ClientEvent) {
        self.session.event(event);
    }

    fn end(&self, reason: &str, code: u16) {
        if !self.ended.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.session.end(reason, code);
        }
    }
}

/// Client input to the session under the limits; returns the session's end reason and
/// close code once the client leaves or breaks a rule, or the outbox asks to close.
async fn read_loop<S, I>(
    input: &mut I,
    session: &S,
    outbox: &Outbox,
    limits: Limits,
) -> (String, u16)
where
    S: SessionPort,
    I: Incoming,
{
    let ended = |reason: &str, code| (reason.to_owned(), code);
    let mut rate = MessageRate::new(limits.max_messages_per_sec);
    let closing = outbox.closed();
    tokio::pin!(closing);
    // Only audio and events count as activity; keepalive pongs do not.
    let mut last_activity = Instant::now();
    loop {
        let received = tokio::select! {
            received = input.recv() => received,
            () = tokio::time::sleep_until(last_activity + limits.idle_timeout) => {
                return ended("idle timeout", close::NORMAL);
            }
            // A close the outbox asked for by itself (a client too slow) ends the session
            // now, even while the writer is stuck behind that client.
            () = &mut closing => {
                let (code, reason) = outbox.close_frame().unwrap_or((close::NORMAL, "closed by server".to_owned()));
                return (reason, code);
            }
        };
        let message = match received {
            Received::Message(message) => message,
            Received::Media(samples) => {
                last_activity = Instant::now();
                session.audio(samples);
                continue;
            }
            Received::Broken => {
                // Nothing the session says can reach a broken stream: close at once.
                outbox.close(close::PROTOCOL, "read error");
                return ended(CLIENT_GONE, close::PROTOCOL);
            }
            Received::Gone => return ended(CLIENT_GONE, close::NORMAL),
        };
        if matches!(
            message,
            Inbound::Audio(_)
                | Inbound::Event(_)
                | Inbound::Refused(_)
                | Inbound::TooBig
                | Inbound::Handled
        ) {
            last_activity = Instant::now();
        }
        if rate.flooded() {
            return ended("message flood", close::POLICY);
        }
        match message {
            Inbound::Audio(samples) => session.audio(samples),
            Inbound::Event(event) => session.event(event),
            Inbound::Refused(error) => {
                outbox.event(error);
            }
            Inbound::TooBig => return ended("message too big", close::TOO_BIG),
            Inbound::Closed => return ended(CLIENT_GONE, close::NORMAL),
            Inbound::Ignored | Inbound::Handled => {}
        }
    }
}

/// The session's items to the client, then the final events and the close.
async fn write_loop<S, O>(
    output: &mut O,
    mut receiver: OutboxReceiver,
    session: &S,
    ping_every: Duration,
) where
    S: SessionPort,
    O: Outgoing,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let (code, reason) = loop {
        let sent = tokio::select! {
            biased;
            delivery = receiver.next() => match delivery {
                Delivery::Item(item) => deliver(output, item).await,
                Delivery::Close(frame) => break frame,
            },
            _ = ping.tick() => output.keepalive().await,
        };
        if sent.is_err() {
            session.end(CLIENT_GONE, close::NORMAL);
            return;
        }
    };
    // A close the outbox asked for by itself (a client too slow) has not ended the
    // session yet; after one the session asked for, this does nothing.
    session.end(&reason, code);
    // Deliver what the session queued before closing (its final events), briefly.
    let deadline = Instant::now() + FINAL_EVENTS_GRACE;
    while let Some(item) = receiver.queued_before(deadline) {
        if deliver(output, item).await.is_err() {
            return;
        }
    }
    output.close(code, &reason).await;
}

async fn deliver<O: Outgoing>(output: &mut O, item: Outbound) -> Result<(), Disconnected> {
    match item {
        Outbound::Event(event) => match encode(&event) {
            Some(json) => output.send_event(&event, json).await,
            None => Ok(()),
        },
        Outbound::Audio(samples) => output.send_audio(samples).await,
    }
}

/// The JSON text of a server event. `None`, logged, when it cannot be serialised: that
/// event is skipped rather than sent as an empty message.
pub fn encode(event: &ServerEvent) -> Option<String> {
    match serde_json::to_string(event) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::error!(event = event.kind(), error = %e, "server event not serialisable; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use adam_actors::metrics::ActorMetrics;
    use adam_actors::outbox::outbox;
    use tokio::sync::mpsc;

    use super::*;

    const LIMITS: Limits = Limits {
        max_message_bytes: 64,
        max_messages_per_sec: 10,
        // Not a multiple of `ping_every`: a keepalive never races the timeout.
        idle_timeout: Duration::from_secs(50),
        ping_every: Duration::from_secs(15),
    };

    /// What the fake client saw, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Event(String),
        Audio(usize),
        Ping,
        Close(u16, String),
    }

    struct FakeInput(mpsc::UnboundedReceiver<Received>);

    impl Incoming for FakeInput {
        async fn recv(&mut self) -> Received {
            self.0.recv().await.unwrap_or(Received::Gone)
        }
    }

    #[derive(Clone, Default)]
    struct FakeOutput {
        seen: Arc<Mutex<Vec<Seen>>>,
        /// Every send fails.
        gone: bool,
        /// Sending audio never finishes (a client that stopped reading).
        stuck: bool,
    }

    impl FakeOutput {
        fn record(&self, seen: Seen) -> Result<(), Disconnected> {
            if self.gone {
                return Err(Disconnected);
            }
            self.seen.lock().expect("lock").push(seen);
            Ok(())
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().expect("lock").clone()
        }
    }

    impl Outgoing for FakeOutput {
        async fn send_event(&mut self, _: &ServerEvent, json: String) -> Result<(), Disconnected> {
            self.record(Seen::Event(json))
        }

        async fn send_audio(&mut self, samples: Vec<i16>) -> Result<(), Disconnected> {
            if self.stuck {
                std::future::pending::<()>().await;
            }
            self.record(Seen::Audio(samples.len()))
        }

        async fn keepalive(&mut self) -> Result<(), Disconnected> {
            self.record(Seen::Ping)
        }

        async fn close(&mut self, code: u16, reason: &str) {
            let _ = self.record(Seen::Close(code, reason.to_owned()));
        }
    }

    /// A session that behaves like the real one when ended: its final event, then the
    /// close. With `dead`, it is already gone and does nothing.
    #[derive(Default)]
    struct FakeSession {
        outbox: Option<Outbox>,
        audio: Mutex<usize>,
        events: Mutex<Vec<ClientEvent>>,
        ends: Mutex<Vec<(String, u16)>>,
    }

    impl SessionPort for FakeSession {
        fn audio(&self, samples: Vec<i16>) {
            *self.audio.lock().expect("lock") += samples.len();
        }

        fn event(&self, event: ClientEvent) {
            self.events.lock().expect("lock").push(event);
        }

        fn end(&self, reason: &str, code: u16) {
            let mut ends = self.ends.lock().expect("lock");
            ends.push((reason.to_owned(), code));
            if let (1, Some(outbox)) = (ends.len(), &self.outbox) {
                outbox.event(ServerEvent::error("final", reason));
                outbox.close(code, reason);
            }
        }
    }

    struct Run {
        session: FakeSession,
        output: FakeOutput,
        started: Instant,
        ended: Instant,
    }

    impl Run {
        fn first_end(&self) -> (String, u16) {
            self.session.ends.lock().expect("lock")[0].clone()
        }
    }

    /// Drives a connection whose client sends `inputs` (and then stays, silent).
    async fn drive(inputs: Vec<Received>, dead_session: bool, output: FakeOutput) -> Run {
        let (outbox, receiver) = outbox(64, 1000, ActorMetrics::unregistered());
        let session = FakeSession {
            outbox: (!dead_session).then(|| outbox.clone()),
            ..FakeSession::default()
        };
        let (tx, rx) = mpsc::unbounded_channel();
        for input in inputs {
            tx.send(input).expect("queued");
        }
        let mut input = FakeInput(rx);
        let mut out = output.clone();
        let started = Instant::now();
        run(&session, &outbox, receiver, &mut input, &mut out, LIMITS).await;
        let ended = Instant::now();
        drop(tx);
        Run {
            session,
            output,
            started,
            ended,
        }
    }

    fn audio() -> Received {
        Received::Message(Inbound::Audio(vec![0; 160]))
    }

    fn final_then_close(code: u16, reason: &str) -> Vec<Seen> {
        vec![
            Seen::Event(
                encode(&ServerEvent::error("final", reason)).expect("error events serialise"),
            ),
            Seen::Close(code, reason.to_owned()),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_ends_the_session_with_1008_after_its_final_events() {
        let run = drive(
            (0..=LIMITS.max_messages_per_sec).map(|_| audio()).collect(),
            false,
            FakeOutput::default(),
        )
        .await;
        assert_eq!(run.first_end(), ("message flood".to_owned(), 1008));
        assert_eq!(run.output.seen(), final_then_close(1008, "message flood"));
        assert_eq!(
            *run.session.audio.lock().expect("lock"),
            160 * LIMITS.max_messages_per_sec as usize,
            "the messages under the limit reached the session"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn messages_within_the_limits_reach_the_session_and_media_is_not_a_message() {
        let mut inputs: Vec<Received> = (0..LIMITS.max_messages_per_sec - 2)
            .map(|_| audio())
            .collect();
        inputs.push(Received::Message(Inbound::Event(
            ClientEvent::ResponseCancel {},
        )));
        inputs.push(Received::Message(Inbound::Refused(ServerEvent::error(
            "invalid_audio",
            "odd",
        ))));
        // Paced media (WebRTC's RTP) is not counted against the message rate.
        inputs.extend((0..50).map(|_| Received::Media(vec![0; 960])));
        inputs.push(Received::Gone);
        let run = drive(inputs, false, FakeOutput::default()).await;
        assert_eq!(run.first_end(), (CLIENT_GONE.to_owned(), 1000));
        assert_eq!(
            *run.session.audio.lock().expect("lock"),
            160 * (LIMITS.max_messages_per_sec as usize - 2) + 50 * 960
        );
        assert_eq!(
            *run.session.events.lock().expect("lock"),
            vec![ClientEvent::ResponseCancel {}]
        );
        let seen = run.output.seen();
        let refused = encode(&ServerEvent::error("invalid_audio", "odd")).expect("json");
        assert_eq!(
            seen[0],
            Seen::Event(refused),
            "the refusal went back to the client"
        );
        assert_eq!(seen[1..], final_then_close(1000, CLIENT_GONE));
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_message_closes_with_1009() {
        let run = drive(
            vec![audio(), Received::Message(Inbound::TooBig)],
            false,
            FakeOutput::default(),
        )
        .await;
        assert_eq!(run.first_end(), ("message too big".to_owned(), 1009));
        assert_eq!(run.output.seen(), final_then_close(1009, "message too big"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_client_is_closed_with_1000_and_keepalives_do_not_count() {
        let ignored = || Received::Message(Inbound::Ignored);
        let run = drive(
            vec![audio(), ignored(), ignored()],
            false,
            FakeOutput::default(),
        )
        .await;
        assert_eq!(run.first_end(), ("idle timeout".to_owned(), 1000));
        let waited = run.ended - run.started;
        assert!(
            waited >= LIMITS.idle_timeout && waited < LIMITS.idle_timeout + Duration::from_secs(1),
            "{waited:?}"
        );
        let mut seen = run.output.seen();
        let pings = seen.iter().filter(|s| **s == Seen::Ping).count();
        assert_eq!(pings, 3, "a keepalive every 15 s: {seen:?}");
        seen.retain(|s| *s != Seen::Ping);
        assert_eq!(seen, final_then_close(1000, "idle timeout"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_stream_closes_with_1002_and_ends_the_session() {
        let run = drive(vec![Received::Broken], false, FakeOutput::default()).await;
        assert_eq!(run.first_end(), (CLIENT_GONE.to_owned(), 1002));
        let seen = run.output.seen();
        assert_eq!(
            seen.last(),
            Some(&Seen::Close(1002, "read error".to_owned()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_the_outbox_asks_for_ends_the_session_and_delivers_what_was_queued() {
        let (outbox, receiver) = outbox(64, 1000, ActorMetrics::unregistered());
        let session = FakeSession::default();
        let (_tx, rx) = mpsc::unbounded_channel();
        let output = FakeOutput::default();
        outbox.audio(vec![0; 480]);
        outbox.event(ServerEvent::error("late", "queued before the close"));
        outbox.close(1008, "client too slow");
        run(
            &session,
            &outbox,
            receiver,
            &mut FakeInput(rx),
            &mut output.clone(),
            LIMITS,
        )
        .await;
        assert_eq!(
            *session.ends.lock().expect("lock"),
            vec![("client too slow".to_owned(), 1008)]
        );
        let late = encode(&ServerEvent::error("late", "queued before the close")).expect("json");
        assert_eq!(
            output.seen(),
            vec![
                Seen::Audio(480),
                Seen::Event(late),
                Seen::Close(1008, "client too slow".into())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_already_gone_does_not_leave_the_connection_open() {
        let run = drive(
            vec![Received::Message(Inbound::TooBig)],
            true,
            FakeOutput::default(),
        )
        .await;
        assert_eq!(run.first_end(), ("message too big".to_owned(), 1009));
        assert_eq!(
            run.output.seen(),
            vec![Seen::Close(1009, "message too big".into())]
        );
        assert!(run.ended - run.started <= SESSION_CLOSE_WAIT + FINAL_EVENTS_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_cannot_be_written_to_ends_the_session() {
        let (outbox, receiver) = outbox(64, 1000, ActorMetrics::unregistered());
        let session = FakeSession {
            outbox: Some(outbox.clone()),
            ..FakeSession::default()
        };
        let (_tx, rx) = mpsc::unbounded_channel();
        outbox.event(ServerEvent::error("x", "y"));
        let mut output = FakeOutput {
            gone: true,
            ..FakeOutput::default()
        };
        run(
            &session,
            &outbox,
            receiver,
            &mut FakeInput(rx),
            &mut output,
            LIMITS,
        )
        .await;
        assert_eq!(
            *session.ends.lock().expect("lock"),
            vec![(CLIENT_GONE.to_owned(), 1000)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_too_slow_ends_its_session_even_while_a_send_is_stuck() {
        let (outbox, receiver) = outbox(64, 1000, ActorMetrics::unregistered());
        let session = FakeSession {
            outbox: Some(outbox.clone()),
            ..FakeSession::default()
        };
        let (_tx, rx) = mpsc::unbounded_channel();
        outbox.audio(vec![0; 480]);
        let mut output = FakeOutput {
            stuck: true,
            ..FakeOutput::default()
        };
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            outbox.close(1008, "client too slow");
        };
        let mut input = FakeInput(rx);
        let started = Instant::now();
        tokio::join!(
            run(&session, &outbox, receiver, &mut input, &mut output, LIMITS),
            slow
        );
        assert_eq!(
            session.ends.lock().expect("lock")[0],
            ("client too slow".to_owned(), 1008)
        );
        assert!(
            started.elapsed() <= Duration::from_secs(5) + SESSION_CLOSE_WAIT + GOODBYE_WAIT,
            "the stuck writer was given up on: {:?}",
            started.elapsed()
        );
    }
}
