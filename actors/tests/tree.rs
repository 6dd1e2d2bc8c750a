//! Acceptance tests of the conversation actor tree (issue 3) at the actor level: sessions
//! are driven through `SessionRegistryHandle` / `SessionHandle` with the simulated
//! providers, and what a client would receive is read from the session's outbox.
//!
//! Speech is a 200 Hz tone well above the energy VAD's threshold followed by silence. It
//! is pushed faster than real time (end of turn runs on audio time); answer audio is
//! paced in real time, so the canned answers are short.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adam_actors::Shared;
use adam_actors::embedding_cache::EmbeddingCacheHandle;
use adam_actors::events::{
    ClientEvent, ClientItem, ContentPart, Outbound, ResponseSummary, ServerEvent, SessionUpdate,
};
use adam_actors::metrics::ActorMetrics;
use adam_actors::outbox::{OutboxReceiver, outbox};
use adam_actors::ports::{
    AnswerEngine, AnswerRequest, AnswerUsage, AvatarBackend, AvatarSettings, AvatarStream,
    BoxFuture, CancellationToken, Embedder, Passage, ProviderError, Providers, RemoteAvatar,
    ResponseStatus, Retriever, SessionRecord, SpeechToText, SttRequest, TextToSpeech,
    TranscriptSink, TtsChunk, TtsRequest, TurnRecord, TurnUsage,
};
use adam_actors::semantic_cache::{SemanticCacheConfig, SemanticCacheHandle};
use adam_actors::session::ChildKind;
use adam_actors::simulated::SimulatedConfig;
use adam_actors::{
    RegistryError, SessionArgs, SessionHandle, SessionRegistryHandle, SessionSettings,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// Longest wait for anything a session should do; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(15);
/// What the simulated STT hears in every utterance.
const TRANSCRIPT: &str = "What are your opening hours?";
/// About a quarter of a second of answer audio.
const SHORT_ANSWER: &str = "Yes, we are open today.";
/// About two and a half seconds of answer audio, in three sentences.
const LONG_ANSWER: &str = "We are open from eight to six on weekdays and from nine to one on \
     Saturdays. The service desk opens half an hour earlier, and you can drop your car off \
     the night before. Would you like me to book a visit for you this week?";

// ---------------------------------------------------------------------------------------
// A transcript sink that remembers everything.

#[derive(Default)]
struct RecordingSink {
    started: Mutex<Vec<SessionRecord>>,
    turns: Mutex<Vec<TurnRecord>>,
    ended: Mutex<Vec<(String, String)>>,
}

impl RecordingSink {
    fn turns_of(&self, session_id: &str) -> Vec<TurnRecord> {
        self.turns
            .lock()
            .expect("sink lock")
            .iter()
            .filter(|t| t.session_id == session_id)
            .cloned()
            .collect()
    }

    fn end_reason(&self, session_id: &str) -> Option<String> {
        self.ended
            .lock()
            .expect("sink lock")
            .iter()
            .find(|(id, _)| id == session_id)
            .map(|(_, reason)| reason.clone())
    }
}

impl TranscriptSink for RecordingSink {
    fn session_started(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), String>> {
        self.started.lock().expect("sink lock").push(record);
        Box::pin(async { Ok(()) })
    }

    fn turn_finished(&self, record: TurnRecord) -> BoxFuture<'_, Result<(), String>> {
        self.turns.lock().expect("sink lock").push(record);
        Box::pin(async { Ok(()) })
    }

    fn session_ended<'a>(
        &'a self,
        session_id: &'a str,
        reason: &'a str,
        _: TurnUsage,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.ended
            .lock()
            .expect("sink lock")
            .push((session_id.to_owned(), reason.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

// ---------------------------------------------------------------------------------------
// An answer engine that waits for the test's go-ahead, so a Turn is provably alive.

struct GatedAnswer {
    inner: Arc<dyn AnswerEngine>,
    gate: Arc<Semaphore>,
}

impl AnswerEngine for GatedAnswer {
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        Box::pin(async move {
            tokio::select! {
                permit = self.gate.acquire() => {
                    permit.map_err(|_| ProviderError::Cancelled)?.forget();
                }
                () = cancel.cancelled() => return Err(ProviderError::Cancelled),
            }
            self.inner.answer(request, tokens, cancel).await
        })
    }
}

// ---------------------------------------------------------------------------------------
// A node: registry, shared caches, simulated providers.

fn simulated(answer: &str) -> SimulatedConfig {
    SimulatedConfig {
        stt_delay_ms: 20,
        transcripts: vec![TRANSCRIPT.into()],
        answer_first_token_ms: 30,
        answer_tokens_per_sec: 400.0,
        answer: answer.into(),
        tts_first_byte_ms: 20,
        tts_ms_per_char: 10,
        ..SimulatedConfig::default()
    }
}

struct Node {
    registry: SessionRegistryHandle,
    shared: Arc<Shared>,
    sink: Arc<RecordingSink>,
    embeddings: EmbeddingCacheHandle,
    semantic: SemanticCacheHandle,
    next_id: AtomicU64,
}

impl Node {
    async fn start(config: SimulatedConfig, max_sessions: usize) -> Self {
        Self::with_providers(config.providers(), max_sessions).await
    }

    async fn with_providers(providers: Providers, max_sessions: usize) -> Self {
        let metrics = ActorMetrics::unregistered();
        let sink = Arc::new(RecordingSink::default());
        let embeddings = EmbeddingCacheHandle::start(1024, metrics.clone())
            .await
            .expect("embedding cache starts");
        // A threshold above 1 turns semantic hits off: every turn runs the answer engine
        // with its configured latency, so repeated questions behave alike.
        let semantic = SemanticCacheHandle::start(
            SemanticCacheConfig {
                threshold: 2.0,
                ..SemanticCacheConfig::default()
            },
            metrics.clone(),
        )
        .await
        .expect("semantic cache starts");
        let shared = Arc::new(Shared {
            providers,
            embeddings: embeddings.clone(),
            semantic: semantic.clone(),
            sink: sink.clone(),
            metrics: metrics.clone(),
        });
        let registry = SessionRegistryHandle::start(max_sessions, metrics)
            .await
            .expect("registry starts");
        Self {
            registry,
            shared,
            sink,
            embeddings,
            semantic,
            next_id: AtomicU64::new(0),
        }
    }

    fn metrics(&self) -> &ActorMetrics {
        &self.shared.metrics
    }

    fn restarts(&self, kind: &str) -> u64 {
        self.metrics().restarts.with_label_values(&[kind]).get()
    }

    async fn try_open(&self) -> Result<(SessionHandle, Client), RegistryError> {
        self.try_open_with(SessionSettings::default()).await
    }

    async fn try_open_with(
        &self,
        settings: SessionSettings,
    ) -> Result<(SessionHandle, Client), RegistryError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = outbox(4096, 512, self.metrics().clone());
        let args = SessionArgs {
            id: format!("sess_{n}"),
            tenant: "dealer-1".into(),
            user_id: None,
            transport: "test".into(),
            settings,
            outbox: tx,
            shared: self.shared.clone(),
        };
        let handle = self.registry.start_session(args).await?;
        let mut client = Client { rx };
        client.until_event("session.created").await;
        Ok((handle, client))
    }

    async fn open(&self) -> (SessionHandle, Client) {
        self.try_open().await.expect("session starts")
    }

    /// The sink's records of a session once there are `n` of them.
    async fn turns(&self, session_id: &str, n: usize) -> Vec<TurnRecord> {
        eventually(
            &format!("{n} saved turns of {session_id}"),
            WAIT,
            async || self.sink.turns_of(session_id).len() >= n,
        )
        .await;
        self.sink.turns_of(session_id)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.registry.stop();
        self.embeddings.stop();
        self.semantic.stop();
    }
}

// ---------------------------------------------------------------------------------------
// The client side of a session: its outbox.

struct Client {
    rx: OutboxReceiver,
}

fn kind(item: &Outbound) -> &'static str {
    match item {
        Outbound::Event(e) => e.kind(),
        Outbound::Audio(_) => "audio",
    }
}

/// Kinds seen, with runs of audio frames collapsed, for failure messages.
fn summary(items: &[Outbound]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut frames = 0;
    for item in items {
        if let Outbound::Audio(_) = item {
            frames += 1;
            continue;
        }
        if frames > 0 {
            out.push(format!("audio×{frames}"));
            frames = 0;
        }
        out.push(kind(item).to_owned());
    }
    if frames > 0 {
        out.push(format!("audio×{frames}"));
    }
    out.join(", ")
}

fn frames(items: &[Outbound]) -> Vec<&Vec<i16>> {
    items
        .iter()
        .filter_map(|i| match i {
            Outbound::Audio(f) => Some(f),
            Outbound::Event(_) => None,
        })
        .collect()
}

fn first(items: &[Outbound], wanted: &str) -> usize {
    items
        .iter()
        .position(|i| kind(i) == wanted)
        .unwrap_or_else(|| panic!("no {wanted} in [{}]", summary(items)))
}

fn errors(items: &[Outbound]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Outbound::Event(ServerEvent::Error { error }) => Some(error.code.clone()),
            _ => None,
        })
        .collect()
}

impl Client {
    /// Reads until `hit` matches; returns everything read, the match last.
    async fn until(&mut self, what: &str, hit: impl Fn(&Outbound) -> bool) -> Vec<Outbound> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let item = tokio::time::timeout_at(deadline, self.rx.items.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; saw [{}]", summary(&seen))
                })
                .unwrap_or_else(|| {
                    panic!("outbox closed waiting for {what}; saw [{}]", summary(&seen))
                });
            let found = hit(&item);
            seen.push(item);
            if found {
                return seen;
            }
        }
    }

    async fn until_event(&mut self, wanted: &str) -> Vec<Outbound> {
        self.until(wanted, |i| kind(i) == wanted).await
    }

    async fn until_audio(&mut self) -> Vec<Outbound> {
        self.until("an audio frame", |i| matches!(i, Outbound::Audio(_)))
            .await
    }

    /// Reads up to the next `response.done`.
    async fn until_done(&mut self) -> (Vec<Outbound>, ResponseSummary) {
        let items = self.until_event("response.done").await;
        match items.last() {
            Some(Outbound::Event(ServerEvent::ResponseDone { response })) => {
                let response = response.clone();
                (items, response)
            }
            _ => unreachable!("until_event returns the match last"),
        }
    }

    /// The close frame the session asked for.
    async fn closed(&mut self) -> (u16, String) {
        let frame = tokio::time::timeout(WAIT, self.rx.close.wait_for(Option::is_some))
            .await
            .expect("timed out waiting for a close request")
            .expect("close channel dropped")
            .clone();
        frame.expect("waited for Some")
    }
}

// ---------------------------------------------------------------------------------------
// Input.

const RATE: u32 = 16_000;

fn tone(ms: u32) -> Vec<i16> {
    let n = (RATE * ms / 1000) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            (3000.0 * (2.0 * std::f32::consts::PI * 200.0 * t).sin()) as i16
        })
        .collect()
}

fn silence(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

/// One utterance: a second of "speech", then enough silence to end the turn.
fn utterance() -> Vec<i16> {
    let mut s = tone(1000);
    s.extend(silence(700));
    s
}

/// Pushes audio in 100 ms chunks, as fast as the mailbox takes it.
fn say(session: &SessionHandle, samples: &[i16]) {
    for chunk in samples.chunks(1600) {
        assert!(session.send_audio(chunk.to_vec()), "session accepts audio");
    }
}

fn type_text(session: &SessionHandle, text: &str) {
    assert!(session.send_event(ClientEvent::ConversationItemCreate {
        item: ClientItem {
            kind: "message".into(),
            role: "user".into(),
            content: vec![ContentPart {
                kind: "input_text".into(),
                text: text.into(),
            }],
        },
    }));
    assert!(session.send_event(ClientEvent::ResponseCreate {}));
}

/// Polls `check` every 10 ms until it holds; fails the test after `within`.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not true within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Words of `text` whose audio starts by `ms`, in the simulated TTS's timing: each
/// character lasts `per_char` ms and each word is followed by a gap of the same length.
fn words_started_by(text: &str, per_char: u32, ms: u32) -> usize {
    let mut start = 0;
    let mut count = 0;
    for word in text.split_whitespace() {
        if start > ms {
            break;
        }
        count += 1;
        start += per_char * (word.chars().count() as u32 + 1);
    }
    count
}

fn is_prefix_of_words(text: &str, of: &str) -> bool {
    let said: Vec<&str> = text.split_whitespace().collect();
    let all: Vec<&str> = of.split_whitespace().collect();
    said.len() <= all.len() && said[..] == all[..said.len()]
}

// ---------------------------------------------------------------------------------------
// 1. A spoken turn.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_turn_streams_every_stage_in_order_and_is_saved() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let (session, mut client) = node.open().await;

    say(&session, &utterance());
    let (items, done) = client.until_done().await;

    let order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_text.delta",
        "response.output_audio.started",
        "audio",
    ];
    let positions: Vec<usize> = order.iter().map(|k| first(&items, k)).collect();
    assert!(
        positions.is_sorted(),
        "stages out of order: [{}]",
        summary(&items)
    );
    let created = first(&items, "response.created");
    let visemes = items[created..]
        .iter()
        .filter(|i| kind(i) == "avatar.viseme")
        .count();
    assert!(visemes > 0, "no visemes: [{}]", summary(&items));

    let transcript = items.iter().find_map(|i| match i {
        Outbound::Event(ServerEvent::TranscriptionCompleted { transcript, .. }) => {
            Some(transcript.as_str())
        }
        _ => None,
    });
    assert_eq!(transcript, Some(TRANSCRIPT));
    let started_rate = items.iter().find_map(|i| match i {
        Outbound::Event(ServerEvent::OutputAudioStarted { sample_rate, .. }) => Some(*sample_rate),
        _ => None,
    });
    assert_eq!(started_rate, Some(24_000));
    let audio = frames(&items);
    assert!(
        audio.iter().all(|f| f.len() == 480),
        "20 ms frames at 24 kHz"
    );
    // "Yes, we are open today." is 19 characters and 5 gaps of 10 ms: 240 ms, 12 frames.
    assert!(audio.len() >= 12, "only {} frames", audio.len());
    assert!(errors(&items).is_empty(), "errors: {:?}", errors(&items));

    assert_eq!(done.status, ResponseStatus::Completed);
    assert_eq!(done.output_text, SHORT_ANSWER);
    assert!(
        done.metrics.voice_to_voice_ms.is_some(),
        "{:?}",
        done.metrics
    );
    assert!(done.metrics.stt_ms.is_some(), "{:?}", done.metrics);
    assert!(done.metrics.answer_first_token_ms.is_some());
    assert!(done.metrics.tts_first_audio_ms.is_some());

    let turns = node.turns(&session.id, 1).await;
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].status, ResponseStatus::Completed);
    assert_eq!(turns[0].seq, 0);
    assert_eq!(turns[0].user_text, TRANSCRIPT);
    assert_eq!(turns[0].assistant_text, SHORT_ANSWER);
    assert!(turns[0].latency_ms.is_some());
    assert_eq!(node.metrics().voice_to_voice.get_sample_count(), 1);
    eventually("session start recorded", WAIT, async || {
        node.sink
            .started
            .lock()
            .expect("sink lock")
            .iter()
            .any(|r| r.session_id == session.id && r.tenant == "dealer-1" && r.transport == "test")
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 2. Barge-in.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_over_the_answer_clears_audio_and_saves_what_was_spoken() {
    let config = SimulatedConfig {
        // Slow speech, so words heard and words generated differ by a wide margin.
        tts_ms_per_char: 30,
        ..simulated(LONG_ANSWER)
    };
    let node = Node::start(config, 10).await;
    let (session, mut client) = node.open().await;

    say(&session, &utterance());
    let before = client.until_audio().await;
    let response_id = before
        .iter()
        .find_map(|i| match i {
            Outbound::Event(ServerEvent::ResponseCreated { response }) => Some(response.id.clone()),
            _ => None,
        })
        .expect("response.created before audio");

    // The customer talks over the answer.
    say(&session, &tone(1000));
    let barge = client.until_event("response.output_audio.cleared").await;
    assert!(
        barge
            .iter()
            .any(|i| kind(i) == "input_audio_buffer.speech_started"),
        "cleared without speech: [{}]",
        summary(&barge)
    );
    let heard_ms = 20 * (frames(&before).len() + frames(&barge).len()) as u32;
    let (after_clear, done) = client.until_done().await;
    assert_eq!(done.id, response_id);
    assert_eq!(done.status, ResponseStatus::Cancelled);

    // The barge-in utterance ends and is answered; audio of the cut response must not
    // have kept flowing in the meantime.
    say(&session, &silence(700));
    let until_next_audio = client.until_event("response.output_audio.started").await;
    let late = frames(&after_clear).len() + frames(&until_next_audio).len();
    assert!(
        late <= 1,
        "{late} frames after cleared: [{}] [{}]",
        summary(&after_clear),
        summary(&until_next_audio)
    );

    let turns = node.turns(&session.id, 1).await;
    let cut = turns.iter().find(|t| t.seq == 0).expect("first turn saved");
    assert_eq!(cut.status, ResponseStatus::Cancelled);
    assert_eq!(cut.assistant_text, done.output_text);
    assert!(
        is_prefix_of_words(&cut.assistant_text, LONG_ANSWER),
        "not what was said: {:?}",
        cut.assistant_text
    );
    assert!(
        cut.assistant_text.split_whitespace().count() < LONG_ANSWER.split_whitespace().count(),
        "the whole answer was recorded as spoken"
    );
    // Audio was playing, so at least its first word was heard; words that had not
    // started playing were not (a second of slack covers a late TTS worker).
    let said = cut.assistant_text.split_whitespace().count();
    assert!(said > 0);
    let audible = words_started_by(LONG_ANSWER, 30, heard_ms + 1000);
    assert!(
        said <= audible,
        "{said} words recorded, {audible} could have been heard: {:?}",
        cut.assistant_text
    );
    assert_eq!(node.metrics().barge_in_stop.get_sample_count(), 1);
    session.end("client_disconnected", 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cough_during_the_answer_does_not_interrupt_it() {
    let node = Node::start(simulated(LONG_ANSWER), 10).await;
    let (session, mut client) = node.open().await;

    say(&session, &utterance());
    client.until_audio().await;
    // 100 ms of sound is below the 200 ms of speech a barge-in needs.
    let mut cough = tone(100);
    cough.extend(silence(700));
    say(&session, &cough);
    let (items, done) = client.until_done().await;
    let started: Vec<_> = items
        .iter()
        .filter(|i| kind(i) == "input_audio_buffer.speech_started")
        .collect();
    assert_eq!(
        done.status,
        ResponseStatus::Completed,
        "{started:?} [{}]",
        summary(&items)
    );
    assert_eq!(done.output_text, LONG_ANSWER);
    assert!(
        items
            .iter()
            .all(|i| kind(i) != "input_audio_buffer.speech_started"
                && kind(i) != "response.output_audio.cleared"),
        "[{}]",
        summary(&items)
    );
    session.end("client_disconnected", 1000);
}

// ---------------------------------------------------------------------------------------
// 3. A panic in each child mid-turn.

/// Crashes `kind` while a typed question is being answered, then checks the next spoken
/// turn completes with audio and visemes.
async fn survives_a_panic_mid_turn(
    kind_: ChildKind,
    label: &str,
) -> (Vec<Outbound>, ResponseSummary) {
    let mut providers = simulated(LONG_ANSWER).providers();
    // Answers wait at this gate: a Turn panicked before it opens is certainly mid-answer.
    let gate = Arc::new(Semaphore::new(0));
    providers.answer = Arc::new(GatedAnswer {
        inner: providers.answer.clone(),
        gate: gate.clone(),
    });
    let node = Node::with_providers(providers, 10).await;
    let (session, mut client) = node.open().await;

    type_text(&session, "Are you open on Saturdays?");
    let mut crashed = client.until_event("response.created").await;
    match kind_ {
        ChildKind::Stt | ChildKind::Turn => {}
        ChildKind::Tts => {
            gate.add_permits(1);
            crashed.extend(client.until_audio().await);
        }
        ChildKind::Avatar => {
            gate.add_permits(1);
            crashed.extend(client.until_event("avatar.viseme").await);
        }
    }
    session.inject_panic(kind_);
    eventually(&format!("{label} restarted"), WAIT, async || {
        node.restarts(label) == 1
    })
    .await;
    // From here on every answer may go ahead (the crashed one too, if it survived).
    gate.add_permits(Semaphore::MAX_PERMITS / 2);
    let (rest, crashed_done) = client.until_done().await;
    crashed.extend(rest);

    // The next turn, spoken, goes through every child again.
    say(&session, &utterance());
    let (next, done) = client.until_done().await;
    assert_eq!(
        done.status,
        ResponseStatus::Completed,
        "after a {label} panic: [{}]",
        summary(&next)
    );
    assert_eq!(done.output_text, LONG_ANSWER);
    let started = first(&next, "response.output_audio.started");
    assert!(
        frames(&next[..started]).len() <= 1,
        "audio of the crashed response kept flowing: [{}]",
        summary(&next)
    );
    assert!(!frames(&next).is_empty());
    assert!(next.iter().any(|i| kind(i) == "avatar.viseme"));
    assert!(session.is_alive());
    assert_eq!(node.registry.count().await, 1);
    let turns = node.turns(&session.id, 2).await;
    assert_eq!(turns[1].status, ResponseStatus::Completed);
    session.end("client_disconnected", 1000);
    (crashed, crashed_done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_panic_fails_that_turn_with_an_error_and_the_session_goes_on() {
    let (crashed, done) = survives_a_panic_mid_turn(ChildKind::Turn, "turn").await;
    assert_eq!(done.status, ResponseStatus::Failed);
    assert!(
        errors(&crashed).iter().any(|c| c == "turn_failed"),
        "no error event: [{}]",
        summary(&crashed)
    );
    assert!(
        first(&crashed, "error") < crashed.len() - 1,
        "error after response.done"
    );
    assert!(!done.output_text.is_empty(), "no apology");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_stt_panic_mid_turn_leaves_the_session_working() {
    survives_a_panic_mid_turn(ChildKind::Stt, "stt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tts_panic_mid_turn_leaves_the_session_working() {
    survives_a_panic_mid_turn(ChildKind::Tts, "tts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_panic_mid_turn_leaves_the_session_working() {
    survives_a_panic_mid_turn(ChildKind::Avatar, "avatar").await;
}

// ---------------------------------------------------------------------------------------
// 4. One session crashing repeatedly among a hundred.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_restart_limit_closes_and_99_others_complete_every_turn() {
    let node = Node::start(simulated(SHORT_ANSWER), 200).await;
    let (victim, mut victim_client) = node.open().await;
    let mut others = Vec::new();
    for _ in 0..99 {
        others.push(node.open().await);
    }
    assert_eq!(node.registry.count().await, 100);

    let talkers: Vec<_> = others
        .into_iter()
        .map(|(session, mut client)| {
            tokio::spawn(async move {
                let mut dones = Vec::new();
                for _ in 0..2 {
                    say(&session, &utterance());
                    let (items, done) = client.until_done().await;
                    assert!(!frames(&items).is_empty(), "[{}]", summary(&items));
                    dones.push(done.status);
                }
                session.end("client_disconnected", 1000);
                dones
            })
        })
        .collect();

    // One at a time: a panic sent before the last restart finished would hit a dead actor.
    for n in 1..=3 {
        victim.inject_panic(ChildKind::Tts);
        eventually(&format!("tts restart {n}"), WAIT, async || {
            node.restarts("tts") == n
        })
        .await;
        assert!(victim.is_alive(), "closed before the limit");
    }
    victim.inject_panic(ChildKind::Tts);
    assert_eq!(
        victim_client.closed().await,
        (1011, "child_restart_limit".to_owned())
    );
    eventually("the victim stops", WAIT, async || !victim.is_alive()).await;

    for talker in talkers {
        let statuses = talker.await.expect("a talker finished");
        assert_eq!(
            statuses,
            [ResponseStatus::Completed, ResponseStatus::Completed]
        );
    }
    assert_eq!(node.restarts("tts"), 3);
    eventually("every session gone", WAIT, async || {
        node.registry.count().await == 0
    })
    .await;
    assert_eq!(
        node.sink.end_reason(&victim.id).as_deref(),
        Some("child_restart_limit")
    );
}

// ---------------------------------------------------------------------------------------
// 5. Disconnect mid-turn.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_mid_turn_stops_every_actor_and_saves_the_turn() {
    let config = SimulatedConfig {
        // Tokens still streaming when the client leaves: the Turn is alive too.
        answer_tokens_per_sec: 20.0,
        ..simulated(LONG_ANSWER)
    };
    let node = Node::start(config, 10).await;
    let baseline = node.registry.count().await;
    let (session, mut client) = node.open().await;
    assert_eq!(node.registry.count().await, baseline + 1);

    say(&session, &utterance());
    client.until_audio().await;
    assert!(
        node.metrics().live_actors.get() >= 4,
        "session and children counted: {}",
        node.metrics().live_actors.get()
    );
    session.end("client_disconnected", 1000);

    let within = Duration::from_secs(1);
    eventually("registry back to baseline", within, async || {
        node.registry.count().await == baseline
    })
    .await;
    eventually("no live actors", within, async || {
        node.metrics().live_actors.get() == 0
    })
    .await;
    assert!(!session.is_alive());
    assert_eq!(node.metrics().live_sessions.get(), 0);
    assert_eq!(
        client.closed().await,
        (1000, "client_disconnected".to_owned())
    );

    let turns = node.turns(&session.id, 1).await;
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].status, ResponseStatus::Cancelled);
    assert_eq!(turns[0].user_text, TRANSCRIPT);
    assert!(is_prefix_of_words(&turns[0].assistant_text, LONG_ANSWER));
    eventually("session end recorded", WAIT, async || {
        node.sink.end_reason(&session.id).is_some()
    })
    .await;
    assert_eq!(
        node.sink.end_reason(&session.id).as_deref(),
        Some("client_disconnected")
    );
}

// ---------------------------------------------------------------------------------------
// 6. Registry limit and drain.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_refuses_past_its_limit_and_while_draining() {
    let node = Node::start(simulated(SHORT_ANSWER), 2).await;
    let (first_session, _c1) = node.open().await;
    let (_second, mut c2) = node.open().await;
    assert_eq!(
        node.try_open().await.err(),
        Some(RegistryError::Busy(2)),
        "third session"
    );
    assert_eq!(node.metrics().busy_refusals.get(), 1);
    assert!(
        node.registry.get(&first_session.id).await.is_some(),
        "found by id"
    );

    first_session.end("client_disconnected", 1000);
    eventually("a slot frees up", WAIT, async || {
        node.registry.count().await == 1
    })
    .await;
    assert!(node.registry.get(&first_session.id).await.is_none());
    let (_third, mut c3) = node.open().await;

    assert_eq!(node.registry.drain("shutdown").await, 2);
    assert_eq!(node.try_open().await.err(), Some(RegistryError::Draining));
    assert_eq!(c2.closed().await, (1001, "shutdown".to_owned()));
    assert_eq!(c3.closed().await, (1001, "shutdown".to_owned()));
    eventually("drained", WAIT, async || node.registry.count().await == 0).await;
}

// ---------------------------------------------------------------------------------------
// 7. session.update.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_update_changes_the_output_rate_and_refuses_bad_values() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let (session, mut client) = node.open().await;

    assert!(session.send_event(ClientEvent::SessionUpdate {
        session: SessionUpdate {
            output_sample_rate: Some(16_000),
            ..SessionUpdate::default()
        },
    }));
    let updated = client.until_event("session.updated").await;
    match updated.last() {
        Some(Outbound::Event(ServerEvent::SessionUpdated { session })) => {
            assert_eq!(session.output_sample_rate, 16_000);
        }
        other => panic!("{other:?}"),
    }
    type_text(&session, "When are you open?");
    let (items, done) = client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
    let audio = frames(&items);
    assert!(!audio.is_empty());
    assert!(
        audio.iter().all(|f| f.len() == 320),
        "20 ms frames at 16 kHz"
    );

    assert!(session.send_event(ClientEvent::SessionUpdate {
        session: SessionUpdate {
            output_sample_rate: Some(1_000_000),
            ..SessionUpdate::default()
        },
    }));
    let refused = client.until_event("error").await;
    assert_eq!(errors(&refused), ["invalid_session_update"]);
    assert!(
        refused.iter().all(|i| kind(i) != "session.updated"),
        "[{}]",
        summary(&refused)
    );

    // The session goes on, at the rate it had.
    say(&session, &utterance());
    let (items, done) = client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
    let audio = frames(&items);
    assert!(!audio.is_empty());
    assert!(audio.iter().all(|f| f.len() == 320));
}

// ---------------------------------------------------------------------------------------
// 8. The session actor itself crashes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_session_is_closed_and_recorded_and_its_neighbour_goes_on() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let (victim, mut victim_client) = node.open().await;
    let (neighbour, mut neighbour_client) = node.open().await;
    victim.inject_session_panic();
    assert_eq!(
        victim_client.closed().await,
        (1011, "session failed".to_owned())
    );
    eventually("crash recorded", WAIT, async || {
        node.sink.end_reason(&victim.id).as_deref() == Some("session_failed")
    })
    .await;
    eventually("registry forgot it", WAIT, async || {
        node.registry.count().await == 1
    })
    .await;
    say(&neighbour, &utterance());
    let (_, done) = neighbour_client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
}

// ---------------------------------------------------------------------------------------
// 9. Provider faults: a timeout or an unavailable (5xx) provider at each stage. The user
// sees an `error` event (or an answer without documents), and the next turn works.

/// Fails the first `failures` calls with `error`, then behaves like `inner`.
struct Flaky<T: ?Sized> {
    inner: Arc<T>,
    failures: AtomicU64,
    error: ProviderError,
}

impl<T: ?Sized> Flaky<T> {
    fn new(inner: Arc<T>, failures: u64, error: ProviderError) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failures: AtomicU64::new(failures),
            error,
        })
    }

    /// The error to return now, if this call should fail.
    fn fault(&self) -> Option<ProviderError> {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.error.clone())
    }
}

impl SpeechToText for Flaky<dyn SpeechToText> {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        match self.fault() {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.transcribe(request, partial, cancel),
        }
    }
}

impl AnswerEngine for Flaky<dyn AnswerEngine> {
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>> {
        match self.fault() {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.answer(request, tokens, cancel),
        }
    }
}

impl TextToSpeech for Flaky<dyn TextToSpeech> {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        match self.fault() {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.synthesize(request, out, cancel),
        }
    }
}

impl Embedder for Flaky<dyn Embedder> {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        match self.fault() {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.embed(texts, cancel),
        }
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
}

impl Retriever for Flaky<dyn Retriever> {
    fn retrieve<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        embedding: &'a [f32],
        k: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>> {
        match self.fault() {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.retrieve(tenant, query, embedding, k, cancel),
        }
    }
}

const TIMEOUT: ProviderError = ProviderError::Timeout;

fn unavailable() -> ProviderError {
    ProviderError::Unavailable("503 Service Unavailable".into())
}

/// Speaks twice; returns what the client saw for each turn. The first turn ends at its
/// `response.done`, or at the `error` event when no response starts.
async fn two_turns(providers: Providers, first_ends_at: &str) -> (Vec<Outbound>, ResponseSummary) {
    let node = Node::with_providers(providers, 10).await;
    let (session, mut client) = node.open().await;
    say(&session, &utterance());
    let first = client.until_event(first_ends_at).await;
    say(&session, &utterance());
    let (next, done) = client.until_done().await;
    assert_eq!(
        done.status,
        ResponseStatus::Completed,
        "the turn after the fault: [{}]",
        summary(&next)
    );
    assert_eq!(done.output_text, SHORT_ANSWER);
    assert!(!frames(&next).is_empty(), "the next answer is spoken");
    assert!(session.is_alive());
    session.end("client_disconnected", 1000);
    (first, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_to_text_timeout_or_outage_is_an_error_event_and_the_next_turn_works() {
    for error in [TIMEOUT, unavailable()] {
        let mut providers = simulated(SHORT_ANSWER).providers();
        providers.stt = Flaky::<dyn SpeechToText>::new(providers.stt.clone(), 1, error.clone());
        let (first, _) = two_turns(providers, "error").await;
        assert_eq!(errors(&first), ["transcription_failed"], "{error}");
        assert!(
            !first.iter().any(|i| kind(i) == "response.created"),
            "no answer to an utterance nobody heard: [{}]",
            summary(&first)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_engine_timeout_or_outage_fails_that_response_and_the_next_turn_works() {
    for error in [TIMEOUT, unavailable()] {
        let mut providers = simulated(SHORT_ANSWER).providers();
        providers.answer =
            Flaky::<dyn AnswerEngine>::new(providers.answer.clone(), 1, error.clone());
        let (first, _) = two_turns(providers, "response.done").await;
        assert_eq!(errors(&first), ["answer_failed"], "{error}");
        match first.last() {
            Some(Outbound::Event(ServerEvent::ResponseDone { response })) => {
                assert_eq!(response.status, ResponseStatus::Failed);
                assert!(response.output_text.starts_with("Sorry"), "{response:?}");
            }
            other => panic!("expected response.done, got {other:?}"),
        }
        // The customer hears the apology: audio follows the error, before the end.
        let error_at = first
            .iter()
            .position(|i| kind(i) == "error")
            .expect("error event");
        assert!(
            !frames(&first[error_at..]).is_empty(),
            "the apology is spoken: [{}]",
            summary(&first)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_synthesis_timeout_or_outage_fails_that_response_and_the_next_turn_works() {
    for error in [TIMEOUT, unavailable()] {
        let mut providers = simulated(SHORT_ANSWER).providers();
        providers.tts = Flaky::<dyn TextToSpeech>::new(providers.tts.clone(), 1, error.clone());
        let (first, _) = two_turns(providers, "response.done").await;
        assert_eq!(errors(&first), ["tts_failed"], "{error}");
        assert!(
            frames(&first).is_empty(),
            "no audio from a failed synthesis"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_or_retrieval_outage_still_answers_without_documents() {
    let mut providers = simulated(SHORT_ANSWER).providers();
    providers.embedder = Flaky::<dyn Embedder>::new(providers.embedder.clone(), 1, TIMEOUT);
    let (first, _) = two_turns(providers, "response.done").await;
    assert!(errors(&first).is_empty(), "[{}]", summary(&first));
    assert!(!frames(&first).is_empty(), "answered and spoken");

    let mut providers = simulated(SHORT_ANSWER).providers();
    providers.retriever =
        Flaky::<dyn Retriever>::new(providers.retriever.clone(), 1, unavailable());
    let (first, _) = two_turns(providers, "response.done").await;
    assert!(errors(&first).is_empty(), "[{}]", summary(&first));
    assert!(!frames(&first).is_empty(), "answered and spoken");
}

// ---------------------------------------------------------------------------------------
// 10. Early transcription during the end-of-turn silence.

/// Hears "N ms" for N ms of audio, and remembers every call.
struct Measuring {
    calls: Mutex<Vec<u64>>,
}

impl SpeechToText for Measuring {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        _: mpsc::Sender<String>,
        _: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        let ms = request.audio.len() as u64 * 1000 / u64::from(request.sample_rate);
        self.calls.lock().expect("calls").push(ms);
        Box::pin(async move { Ok(format!("{ms} ms")) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_transcription_is_dropped_when_the_customer_goes_on_and_used_when_not() {
    let stt = Arc::new(Measuring {
        calls: Mutex::new(Vec::new()),
    });
    let mut providers = simulated(SHORT_ANSWER).providers();
    providers.stt = stt.clone();
    let node = Node::with_providers(providers, 10).await;
    let (session, mut client) = node
        .try_open_with(SessionSettings {
            early_transcription_ms: 200,
            ..SessionSettings::default()
        })
        .await
        .expect("session starts");
    // 1 s of speech, a 300 ms pause (past the 200 ms early point, short of the 500 ms end
    // of turn), 0.8 s more speech, then silence.
    let mut audio = tone(1000);
    audio.extend(silence(300));
    audio.extend(tone(800));
    audio.extend(silence(700));
    say(&session, &audio);
    let items = client.until_event("response.done").await;
    let heard = items
        .iter()
        .find_map(|i| match i {
            Outbound::Event(ServerEvent::TranscriptionCompleted { transcript, .. }) => {
                Some(transcript.clone())
            }
            _ => None,
        })
        .expect("a transcript");
    let calls = stt.calls.lock().expect("calls").clone();
    let (used, dropped) = calls.split_last().expect("at least one call");
    // The transcript used came from the early call of the second silence: the utterance
    // up to 200 ms into it (1000 + 300 + 800 + 200 ms), not to the 500 ms end of turn.
    assert!(
        (2260..=2340).contains(used),
        "the used call is the early one: {calls:?}"
    );
    assert_eq!(heard, format!("{used} ms"));
    // The early call of the first pause, if it got to run before the speech went on, saw
    // only the first part, and its text was dropped.
    assert!(dropped.iter().all(|&ms| ms < 1500), "{calls:?}");
    session.end("client_disconnected", 1000);
}

// ---------------------------------------------------------------------------------------
// 10. A remote avatar (HeyGen's place): what it is given, and the hand-over when it fails.

#[derive(Default)]
struct AvatarLog {
    started: usize,
    samples: usize,
    ends: Vec<String>,
    interrupts: usize,
    stopped: bool,
}

/// Starts recording avatars for sessions whose avatar provider is `remote`; fails the
/// start with `refuse`.
struct RecordingAvatars {
    log: Arc<Mutex<AvatarLog>>,
    refuse: Option<ProviderError>,
    /// Makes the running avatar fail on its own.
    break_it: tokio::sync::watch::Sender<Option<ProviderError>>,
}

impl RecordingAvatars {
    fn new(refuse: Option<ProviderError>) -> Arc<Self> {
        Arc::new(Self {
            log: Arc::default(),
            refuse,
            break_it: tokio::sync::watch::channel(None).0,
        })
    }

    fn log<T>(&self, read: impl FnOnce(&AvatarLog) -> T) -> T {
        read(&self.log.lock().expect("avatar log"))
    }
}

struct RecordedAvatar {
    log: Arc<Mutex<AvatarLog>>,
    broken: tokio::sync::watch::Receiver<Option<ProviderError>>,
}

impl AvatarBackend for RecordingAvatars {
    fn start<'a>(
        &'a self,
        _: &'a str,
        settings: &'a AvatarSettings,
        _: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>> {
        Box::pin(async move {
            if settings.provider != "remote" {
                return Ok(None);
            }
            if let Some(error) = &self.refuse {
                return Err(error.clone());
            }
            self.log.lock().expect("avatar log").started += 1;
            Ok(Some(Box::new(RecordedAvatar {
                log: self.log.clone(),
                broken: self.break_it.subscribe(),
            }) as Box<dyn RemoteAvatar>))
        })
    }
}

impl RemoteAvatar for RecordedAvatar {
    fn stream(&self) -> AvatarStream {
        AvatarStream {
            provider: "remote".into(),
            livekit_url: "wss://livekit.test".into(),
            access_token: "browser-token".into(),
        }
    }

    fn audio(&mut self, _: &str, samples: &[i16], rate: u32) -> Result<(), ProviderError> {
        assert_eq!(rate, 24_000, "the simulated voice's rate");
        self.log.lock().expect("avatar log").samples += samples.len();
        Ok(())
    }

    fn end_of_response(&mut self, response_id: &str) -> Result<(), ProviderError> {
        let mut log = self.log.lock().expect("avatar log");
        log.ends.push(response_id.to_owned());
        Ok(())
    }

    fn interrupt(&mut self) -> Result<(), ProviderError> {
        self.log.lock().expect("avatar log").interrupts += 1;
        Ok(())
    }

    fn failed(&self) -> BoxFuture<'static, ProviderError> {
        let mut broken = self.broken.clone();
        Box::pin(async move {
            let error = broken
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|e| e.clone());
            match error {
                Some(error) => error,
                None => std::future::pending().await,
            }
        })
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Like HeyGen's session, dropping it stops it (a session's children are killed, not
/// stopped, when it ends).
impl Drop for RecordedAvatar {
    fn drop(&mut self) {
        self.log.lock().expect("avatar log").stopped = true;
    }
}

async fn remote_avatar_node(answer: &str, avatars: Arc<RecordingAvatars>) -> Node {
    let mut providers = simulated(answer).providers();
    providers.avatar = avatars;
    Node::with_providers(providers, 10).await
}

fn with_remote_avatar() -> SessionSettings {
    SessionSettings {
        avatar: AvatarSettings {
            provider: "remote".into(),
            avatar_id: None,
        },
        ..SessionSettings::default()
    }
}

fn response_id(items: &[Outbound]) -> String {
    items
        .iter()
        .find_map(|i| match i {
            Outbound::Event(ServerEvent::ResponseCreated { response }) => Some(response.id.clone()),
            _ => None,
        })
        .expect("response.created")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_avatar_gets_each_answers_audio_is_interrupted_by_barge_in_and_stopped() {
    let avatars = RecordingAvatars::new(None);
    let node = remote_avatar_node(LONG_ANSWER, avatars.clone()).await;
    let (session, mut client) = node
        .try_open_with(with_remote_avatar())
        .await
        .expect("session starts");
    let ready = client.until_event("avatar.stream").await;
    assert!(matches!(
        ready.last(),
        Some(Outbound::Event(ServerEvent::AvatarStream { provider, livekit_url, access_token }))
            if provider == "remote" && livekit_url == "wss://livekit.test" && access_token == "browser-token"
    ));

    // The whole answer: the avatar gets the same audio as the client (which pads its last
    // 20 ms frame), then the end of the response.
    type_text(&session, "When do you open?");
    let (items, done) = client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
    let sent: usize = frames(&items).iter().map(|f| f.len()).sum();
    let given = avatars.log(|l| l.samples);
    assert!(
        given <= sent && sent - given < 480,
        "avatar {given}, client {sent}"
    );
    assert_eq!(avatars.log(|l| l.ends.clone()), [response_id(&items)]);
    assert_eq!(avatars.log(|l| l.interrupts), 0);

    // The customer talks over the next answer: the avatar is interrupted.
    type_text(&session, "And on Sundays?");
    client.until_audio().await;
    say(&session, &tone(1000));
    let (_, cut) = client.until_done().await;
    assert_eq!(cut.status, ResponseStatus::Cancelled);
    eventually("the avatar was interrupted", WAIT, async || {
        avatars.log(|l| l.interrupts) == 1
    })
    .await;
    assert_eq!(avatars.log(|l| l.ends.len()), 1, "no end for a cut answer");

    session.end("client_disconnected", 1000);
    eventually("the avatar was stopped", WAIT, async || {
        avatars.log(|l| l.stopped)
    })
    .await;
    assert_eq!(avatars.log(|l| l.started), 1);
    assert_eq!(remote_avatars(&node, "started"), 1);
    assert_eq!(remote_avatars(&node, "lost"), 0);
}

fn remote_avatars(node: &Node, outcome: &str) -> u64 {
    node.metrics()
        .remote_avatars
        .with_label_values(&[outcome])
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_avatar_that_fails_hands_over_to_the_builtin_one() {
    // Refused at the start: an error, and the built-in avatar speaks.
    let avatars = RecordingAvatars::new(Some(ProviderError::Rejected("bad key".into())));
    let node = remote_avatar_node(SHORT_ANSWER, avatars.clone()).await;
    let (session, mut client) = node
        .try_open_with(with_remote_avatar())
        .await
        .expect("session starts");
    let items = client.until_event("error").await;
    assert_eq!(errors(&items), ["avatar_failed"]);
    type_text(&session, "When do you open?");
    let (items, done) = client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
    assert!(items.iter().any(|i| kind(i) == "avatar.viseme"));
    assert!(!frames(&items).is_empty());
    assert_eq!(remote_avatars(&node, "start_failed"), 1);
    session.end("client_disconnected", 1000);

    // Failing on its own mid-session: an error, then answers are no longer its own.
    let avatars = RecordingAvatars::new(None);
    let node = remote_avatar_node(SHORT_ANSWER, avatars.clone()).await;
    let (session, mut client) = node
        .try_open_with(with_remote_avatar())
        .await
        .expect("session starts");
    client.until_event("avatar.stream").await;
    avatars.break_it.send_replace(Some(ProviderError::Timeout));
    let items = client.until_event("error").await;
    assert_eq!(errors(&items), ["avatar_failed"]);
    eventually("the failed avatar was stopped", WAIT, async || {
        avatars.log(|l| l.stopped)
    })
    .await;
    type_text(&session, "When do you open?");
    let (items, done) = client.until_done().await;
    assert_eq!(done.status, ResponseStatus::Completed);
    assert!(!frames(&items).is_empty());
    assert_eq!(avatars.log(|l| l.samples), 0, "the client plays it now");
    assert_eq!(remote_avatars(&node, "lost"), 1);
    session.end("client_disconnected", 1000);
}

/// A synthesizer with one worker, like an espeak-ng pool of one: a job holds the worker
/// until it has handed over its last chunk. Every sentence is 3 s of audio, produced at
/// once (far faster than real time, as espeak-ng is).
struct OneWorkerTts {
    worker: Semaphore,
}

impl TextToSpeech for OneWorkerTts {
    fn synthesize<'a>(
        &'a self,
        _: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        _: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let _worker = self
                .worker
                .acquire()
                .await
                .map_err(|_| ProviderError::Unavailable("pool closed".into()))?;
            for _ in 0..30 {
                let chunk = TtsChunk {
                    samples: vec![3000; 1600],
                    sample_rate: 16_000,
                    words: Vec::new(),
                };
                out.send(chunk)
                    .await
                    .map_err(|_| ProviderError::Cancelled)?;
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthesizer_worker_is_free_for_the_next_conversation_while_an_answer_plays() {
    let mut providers = simulated(SHORT_ANSWER).providers();
    providers.tts = Arc::new(OneWorkerTts {
        worker: Semaphore::new(1),
    });
    let node = Node::with_providers(providers, 10).await;
    let (a, mut first) = node.open().await;
    let (b, mut second) = node.open().await;
    type_text(&a, "Hours?");
    first.until_audio().await;
    // The first answer is playing (3 s at real-time pace); count its frames as they come.
    let played = Arc::new(AtomicU64::new(1));
    let counting = {
        let played = played.clone();
        tokio::spawn(async move {
            loop {
                let item = tokio::time::timeout(WAIT, first.rx.items.recv())
                    .await
                    .expect("the first answer goes on")
                    .expect("outbox open");
                if matches!(item, Outbound::Audio(_)) {
                    played.fetch_add(1, Ordering::SeqCst);
                } else if kind(&item) == "response.done" {
                    return played.load(Ordering::SeqCst);
                }
            }
        })
    };
    type_text(&b, "Hours?");
    second.until_audio().await;
    let when_second_spoke = played.load(Ordering::SeqCst);
    let total = counting.await.expect("first answer read");
    // 3 s is 150 frames. Holding the one worker for the playback would keep the second
    // customer waiting until the first answer was nearly over.
    assert!(
        total >= 140,
        "the first answer played whole: {total} frames"
    );
    assert!(
        when_second_spoke < total / 2,
        "the second answer started after {when_second_spoke} of the first answer's {total} frames"
    );
    a.end("client_disconnected", 1000);
    b.end("client_disconnected", 1000);
}

// ---------------------------------------------------------------------------------------
// Usage limits and metering.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_create_storm_is_refused_past_the_turn_rate_then_closed() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let settings = SessionSettings {
        turns_per_minute: 3,
        ..SessionSettings::default()
    };
    let (session, mut client) = node.try_open_with(settings).await.expect("opens");
    for i in 0..3 {
        type_text(&session, &format!("question {i}"));
        client.until_done().await;
    }
    // Three more are refused with an error event each, and start no answer.
    for i in 3..6 {
        type_text(&session, &format!("question {i}"));
        let items = client
            .until("a rate_limited error", |i| {
                matches!(i, Outbound::Event(ServerEvent::Error { error }) if error.code == "rate_limited")
            })
            .await;
        assert!(
            !items.iter().any(|i| kind(i) == "response.created"),
            "a refused question started no answer: [{}]",
            summary(&items)
        );
    }
    assert_eq!(node.metrics().turns_refused.get(), 3);
    // One more than twice the limit: the session is closed as a policy violation.
    type_text(&session, "question 6");
    assert_eq!(client.closed().await, (1008, "turn rate".to_owned()));
    // Only the allowed turns were stored.
    eventually("session end recorded", WAIT, async || {
        node.sink.end_reason(&session.id).is_some()
    })
    .await;
    assert_eq!(node.sink.turns_of(&session.id).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_longest_duration_closes_with_session_limit() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let settings = SessionSettings {
        max_duration: Some(Duration::from_millis(300)),
        ..SessionSettings::default()
    };
    let (session, mut client) = node.try_open_with(settings).await.expect("opens");
    let items = client.until_event("session.closing").await;
    assert!(matches!(
        items.last(),
        Some(Outbound::Event(ServerEvent::SessionClosing { reason })) if reason == "session_limit"
    ));
    assert_eq!(client.closed().await, (1008, "session_limit".to_owned()));
    eventually("session gone", WAIT, async || !session.is_alive()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_text_is_clipped_to_the_limit_and_each_turn_reports_its_usage() {
    let node = Node::start(simulated(LONG_ANSWER), 10).await;
    let settings = SessionSettings {
        max_stored_chars: 12,
        ..SessionSettings::default()
    };
    let (session, mut client) = node.try_open_with(settings).await.expect("opens");
    say(&session, &utterance());
    let (_, done) = client.until_done().await;
    // The client hears and reads the whole answer; the transcript keeps 12 characters.
    assert_eq!(done.output_text, LONG_ANSWER);
    let usage = &done.usage;
    // Every sentence was synthesised (the spaces between them are not sent).
    let chars = LONG_ANSWER.chars().count() as u64;
    assert!(
        (chars - 10..=chars).contains(&usage.tts_characters),
        "{} of {chars}",
        usage.tts_characters
    );
    // A second of speech in 1.7 s of audio (the VAD places the edges within a window).
    assert!(
        (0.8..=1.3).contains(&usage.stt_seconds),
        "stt {}",
        usage.stt_seconds
    );
    assert!(
        (1.6..=1.8).contains(&usage.audio_in_seconds),
        "audio in {}",
        usage.audio_in_seconds
    );
    assert!(usage.audio_out_seconds > 0.5, "{usage:?}");
    let turns = node.turns(&session.id, 1).await;
    assert_eq!(
        turns[0].assistant_text,
        LONG_ANSWER.chars().take(12).collect::<String>()
    );
    assert_eq!(
        turns[0].user_text,
        TRANSCRIPT.chars().take(12).collect::<String>()
    );
    assert_eq!(turns[0].usage, *usage);
    session.end("client_disconnected", 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_notice_is_spoken_then_the_session_closes() {
    let node = Node::start(simulated(SHORT_ANSWER), 10).await;
    let notice = "We are very busy right now. Please try again later.";
    let settings = SessionSettings {
        closing_notice: Some(notice.into()),
        ..SessionSettings::default()
    };
    let (_session, mut client) = node.try_open_with(settings).await.expect("opens");
    let (items, done) = client.until_done().await;
    assert!(
        items.iter().any(|i| matches!(i, Outbound::Audio(_))),
        "spoken"
    );
    assert_eq!(done.output_text, notice);
    assert_eq!(
        client.closed().await,
        (1013, "usage_cap_reached".to_owned())
    );
}
