//! The embedded models themselves (installed by `scripts/models/fetch.sh`): MiniLM against
//! known similarities, the grounded engine's three kinds of reply, and the local model's
//! tokenizer and generation.

use std::path::Path;
use std::sync::Arc;

use adam_actors::ports::{AnswerRequest, CancellationToken, Embedder, Passage, Vocabulary};
use adam_providers::grounded::{GroundedConfig, GroundedEngine, Plan, SmallTalk};
use adam_providers::llm::{Generator, LlmConfig, LocalLlm};
use adam_providers::minilm::{MiniLm, MiniLmEmbedder};
use adam_providers::pool::{ModelPool, PoolMetrics};

fn models() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"))
}

fn embedder() -> Arc<dyn Embedder> {
    let model = MiniLm::load(&models().join("minilm")).expect("MiniLM installed");
    let pool = ModelPool::new("minilm", 1, 8, PoolMetrics::unregistered());
    Arc::new(MiniLmEmbedder::new(model, pool))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn minilm_vectors_are_unit_length_and_rank_meaning() {
    let e = embedder();
    let v = e
        .embed(
            vec![
                "When does the service department open?".into(),
                "Service hours start at 7 am on weekdays.".into(),
                "The RAV4 comes in blue and silver.".into(),
            ],
            CancellationToken::new(),
        )
        .await
        .expect("embed");
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), 384);
        assert!((dot(x, x) - 1.0).abs() < 1e-4);
    }
    assert!(
        dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2,
        "related {} vs unrelated {}",
        dot(&v[0], &v[1]),
        dot(&v[0], &v[2])
    );
    // Padding must not change a vector: alone or next to a longer text, the same.
    let alone = e
        .embed(
            vec!["Service hours start at 7 am on weekdays.".into()],
            CancellationToken::new(),
        )
        .await
        .expect("embed");
    assert!(dot(&alone[0], &v[1]) > 0.9999);
}

fn passage(text: &str, score: f32) -> Passage {
    Passage {
        document_id: "doc".into(),
        title: "Handbook".into(),
        text: text.into(),
        score,
        page: None,
    }
}

fn request(question: &str, passages: Vec<Passage>) -> AnswerRequest {
    AnswerRequest {
        search_query: question.into(),
        tenant: "t".into(),
        question: question.into(),
        history: Vec::new(),
        persona: "You are the friendly assistant of Riverside Auto.".into(),
        timezone: String::new(),
        passages,
    }
}

#[tokio::test]
async fn the_grounded_engine_answers_from_passages_or_says_it_does_not_know() {
    let engine = GroundedEngine::new(embedder(), None, GroundedConfig::default());
    let cancel = CancellationToken::new();
    let passages = vec![
        passage(
            "The 2024 Honda Civic LX starts at 24,950 dollars. The 2024 Toyota RAV4 LE starts at 29,800 dollars.",
            0.55,
        ),
        passage(
            "A standard oil change costs 49 dollars and takes about 45 minutes. Tire rotation is free with any oil change.",
            0.5,
        ),
    ];
    let plan = engine
        .plan(
            &request("How much is the Civic?", passages.clone()),
            &cancel,
        )
        .await
        .expect("plan");
    match plan {
        Plan::Facts {
            sentences,
            passages,
        } => {
            assert_eq!(
                sentences[0],
                "The 2024 Honda Civic LX starts at 24,950 dollars."
            );
            assert_eq!(passages, [0]);
        }
        other => panic!("expected facts, got {other:?}"),
    }
    let plan = engine
        .plan(
            &request("How much is an oil change?", passages.clone()),
            &cancel,
        )
        .await
        .expect("plan");
    assert!(
        matches!(&plan, Plan::Facts { sentences, .. } if sentences[0].contains("49 dollars")),
        "{plan:?}"
    );
    for question in [
        "How much is the Tesla Model 3?",
        "What does the 2019 Civic cost?",
        "Can I bring my dog to the showroom?",
    ] {
        let plan = engine
            .plan(&request(question, passages.clone()), &cancel)
            .await
            .expect("plan");
        assert_eq!(plan, Plan::Unknown, "{question}");
    }
    let plan = engine
        .plan(&request("Hello!", passages.clone()), &cancel)
        .await
        .expect("plan");
    assert_eq!(plan, Plan::SmallTalk(SmallTalk::Greeting));
}

#[tokio::test]
async fn the_local_model_writes_a_short_reply() {
    let pool = ModelPool::new("llm", 1, 8, PoolMetrics::unregistered());
    let config = LlmConfig {
        model: models().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ..LlmConfig::default()
    };
    let llm = tokio::task::spawn_blocking(move || LocalLlm::load(&config, pool))
        .await
        .expect("join")
        .expect("SmolLM2 installed");
    let started = std::time::Instant::now();
    let reply = llm
        .generate(
            "You are the friendly assistant of Riverside Auto. Reply in one short sentence.",
            "Hello, how are you today?",
            40,
            CancellationToken::new(),
        )
        .await
        .expect("generate");
    eprintln!(
        "SmolLM2: {:?} ({} prompt, {} generated tokens, {:?})",
        reply.text,
        reply.prompt_tokens,
        reply.completion_tokens,
        started.elapsed()
    );
    assert!(reply.prompt_tokens > 10 && reply.prompt_tokens < 80);
    assert!(reply.completion_tokens > 0 && reply.completion_tokens <= 40);
    let words = reply.text.split_whitespace().count();
    assert!(words >= 2, "{:?}", reply.text);
    assert!(
        reply
            .text
            .chars()
            .all(|c| c.is_ascii() || c.is_alphabetic() || c == '’'),
        "the tokenizer decodes to plain text: {:?}",
        reply.text
    );
    assert!(!reply.text.contains("<|"), "{:?}", reply.text);
}

fn titled(title: &str, text: &str) -> Passage {
    Passage {
        document_id: title.into(),
        title: title.into(),
        text: text.into(),
        score: 0.5,
        page: None,
    }
}

/// What the engine says to `question` from `passages` (empty: "don't know").
async fn says(engine: &GroundedEngine, question: &str, passages: &[Passage]) -> String {
    match engine
        .plan(
            &request(question, passages.to_vec()),
            &CancellationToken::new(),
        )
        .await
        .expect("plan")
    {
        Plan::Facts { sentences, .. } => sentences.join(" "),
        _ => String::new(),
    }
}

/// The composition rules, on a dealership that is not the demo's.
#[tokio::test]
async fn the_grounded_engine_speaks_the_span_that_answers_and_no_neighbours_fact() {
    let engine = GroundedEngine::new(embedder(), None, GroundedConfig::default());
    let kb = [
        titled(
            "visit.md — Getting here",
            "Our courtesy shuttle drives customers within 12 miles of the store. \
             Millbrook Autohaus is at 77 Tanner Street, Millbrook.",
        ),
        titled(
            "visit.md — Collision centre",
            "The collision centre repairs dents Monday to Friday from 8 am to 4 pm. \
             It is closed on weekends.",
        ),
        titled(
            "faq.md — Questions",
            "Q: Do you have Wi-Fi in the lounge?\nA: Yes. The password is printed on your repair order.",
        ),
        titled(
            "prices.md — Service prices",
            "Coolant flush — Price: $129; Time: 1 hour.\nWheel alignment — Price: $95; Time: 45 minutes.",
        ),
        titled(
            "stock.csv",
            "S-11 — Year: 2021; Model: Corvo; Price: $17,900.\nS-12 — Year: 2024; Model: Corvo; Price: $26,400.",
        ),
        titled(
            "hours.md — Holidays",
            "We are closed on December 25 and January 1.",
        ),
        titled(
            "team.md — Staff",
            "Marta Olsen — Parts Manager\nDev Patel — Service Manager",
        ),
    ];
    // Entity preference: "where" is answered by the address, not the shuttle sentence.
    let s = says(&engine, "Where is the dealership?", &kb).await;
    assert!(s.contains("77 Tanner Street"), "{s}");
    // A fact spanning two sentences: the continuation comes along.
    let s = says(&engine, "Is the collision centre open on weekends?", &kb).await;
    assert!(s.contains("closed on weekends"), "{s}");
    // An FAQ answer is spoken without its question, and "Yes." brings its sentence.
    let s = says(&engine, "Is there wifi in the lounge?", &kb).await;
    assert!(s.contains("password is printed") && !s.contains('?'), "{s}");
    // Named days meet their dates.
    let s = says(&engine, "Are you open on Christmas Day?", &kb).await;
    assert!(s.contains("December 25"), "{s}");
    // People: a name with the job asked about.
    let s = says(&engine, "Who runs the service department?", &kb).await;
    assert!(s.contains("Dev Patel"), "{s}");
    // The row of the year asked, spoken or typed; no row for a year not in stock.
    let s = says(&engine, "how much is the twenty twenty one corvo", &kb).await;
    assert!(s.contains("$17,900") && !s.contains("$26,400"), "{s}");
    assert_eq!(says(&engine, "How much is the 2019 Corvo?", &kb).await, "");
    // A price the documents do not list is not answered with a neighbour's.
    assert_eq!(
        says(&engine, "How much is a transmission flush?", &kb).await,
        ""
    );
    assert_eq!(
        says(&engine, "Who is your marketing director?", &kb).await,
        ""
    );
}

/// The rules added for questions phrased unlike the documents, on another dealership.
#[tokio::test]
async fn two_questions_days_rows_and_spelled_names_are_answered_from_the_right_line() {
    let engine = GroundedEngine::new(embedder(), None, GroundedConfig::default());
    let kb = [
        titled(
            "team.md — Paint shop",
            "Oskar Lind manages the paint shop, which he set up in 2016. \
             The paint shop phone line is 208-555-0177.",
        ),
        titled(
            "courtesy.txt — Courtesy cars",
            "To borrow a courtesy car you must be at least 23 years old. \
             Courtesy cars may be driven up to 80 miles per day.",
        ),
        titled(
            "hours.pdf — Desk Phone Mon - Fri Saturday",
            "Workshop — Phone: 208-555-0150; Mon - Fri: 7:00 am - 6:00 pm; Saturday: 8:00 am - noon.\n\
             The workshop is also closed on Friday, July 3, while sales stays open.",
        ),
        titled(
            "pets.md — Visiting",
            "Pets must stay out of the workshop. Dogs on a lead are welcome in the showroom.",
        ),
        titled(
            "specs.md — Models",
            "Corvo Sport — Range: 420 miles; Seats: 5.\nCorvo Long Range — Range: 510 miles; Seats: 5.",
        ),
        titled(
            "faq.md — Buying",
            "Q: Do you sell below sticker? A: Every new Corvo is sold at or below MSRP.",
        ),
    ];
    // Two questions in one: the person and, for "their", the paint shop's number.
    let s = says(
        &engine,
        "Who runs the paint shop and what's their number?",
        &kb,
    )
    .await;
    assert!(
        s.contains("Oskar Lind") && s.contains("208-555-0177"),
        "{s}"
    );
    // The second question is not answered with the first one's sentence.
    let s = says(
        &engine,
        "how old do i have to be for a courtesy car and how far can i drive it",
        &kb,
    )
    .await;
    assert!(s.contains("23 years") && s.contains("80 miles"), "{s}");
    // A day asked about picks the line naming it over a line about a date.
    let s = says(
        &engine,
        "What time does the workshop open on Saturday?",
        &kb,
    )
    .await;
    assert!(s.contains("8:00 am - noon"), "{s}");
    // The customer's own word over a synonym.
    let s = says(&engine, "Can I bring my dog?", &kb).await;
    assert!(s.contains("Dogs on a lead"), "{s}");
    // The row the question names in full.
    let s = says(&engine, "what's the range of the long range corvo", &kb).await;
    assert!(s.contains("510 miles") && !s.contains("420"), "{s}");
    // A yes/no question mentioning a price is answered without one.
    let s = says(&engine, "Do you mark cars up over the sticker price?", &kb).await;
    assert!(s.contains("MSRP"), "{s}");
    // A spelled trim nobody lists is not answered with another row.
    assert_eq!(
        says(&engine, "whats the range of the corvo g t", &kb).await,
        ""
    );
}

/// Counts the texts it embeds.
struct Counting(Arc<dyn Embedder>, std::sync::atomic::AtomicUsize);

impl Embedder for Counting {
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> adam_actors::ports::BoxFuture<'a, Result<Vec<Vec<f32>>, adam_actors::ports::ProviderError>>
    {
        self.1
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        self.0.embed(texts, cancel)
    }
    fn dimension(&self) -> usize {
        self.0.dimension()
    }
}

#[tokio::test]
async fn a_prepared_document_needs_only_the_question_embedded() {
    use adam_actors::ports::AnswerEngine;
    let counting = Arc::new(Counting(embedder(), 0.into()));
    let engine = GroundedEngine::new(counting.clone(), None, GroundedConfig::default());
    let kb = vec![titled(
        "hours.md — Service",
        "The service lane opens at 7 am on weekdays. It is closed on Sundays.\nOil change — Price: $49.",
    )];
    engine.prepare(kb.clone()).await;
    let before = counting.1.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        before >= 2,
        "the document's sentences were embedded: {before}"
    );
    let s = says(&engine, "When does the service lane open?", &kb).await;
    assert!(s.contains("7 am"), "{s}");
    assert_eq!(
        counting.1.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "only the question is embedded when it is asked"
    );
}

/// espeak-ng speech of `text` (the embedded voice), as 16 kHz PCM16 with silence after.
fn speech(text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en", text])
        .output()
        .expect("espeak-ng is installed (scripts/setup.sh)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut audio = adam_actors::audio::Resampler::new(rate, 16_000).process(&samples);
    audio.extend(std::iter::repeat_n(0, 4_800));
    audio
}

async fn hear(
    stt: &adam_providers::whisper::WhisperStt,
    audio: Vec<i16>,
    vocabulary: &Vocabulary,
) -> String {
    use adam_actors::ports::{SpeechToText, SttRequest};
    stt.transcribe(
        SttRequest {
            audio: Arc::from(audio),
            sample_rate: 16_000,
            vocabulary: vocabulary.clone(),
        },
        tokio::sync::mpsc::channel(1).0,
        CancellationToken::new(),
    )
    .await
    .expect("transcribe")
}

fn whisper() -> adam_providers::whisper::WhisperStt {
    use adam_providers::whisper::{WhisperConfig, WhisperStt};
    let config = WhisperConfig {
        model: models().join("whisper/ggml-tiny.en.bin"),
        ..WhisperConfig::default()
    };
    let pool = ModelPool::new("whisper", 1, 8, PoolMetrics::unregistered());
    WhisperStt::load(&config, pool).expect("Whisper installed")
}

/// A dealership's names as its vocabulary (as `adam eval` finds them in `eval/`).
fn dealership_vocabulary() -> Vocabulary {
    Vocabulary::new(
        [
            "Kestrel",
            "Strider Summit",
            "Solenne Lumen",
            "Vantor",
            "Ridgeback",
            "Callum Whitcombe",
            "Naledi Mokoena",
            "Port Ellery",
            "Seabright Harbor",
            "Orlan",
            "Veyra",
        ]
        .map(String::from)
        .to_vec(),
    )
}

#[tokio::test]
async fn whisper_hears_a_dealerships_names_with_its_vocabulary() {
    let stt = whisper();
    let heard = hear(
        &stt,
        speech("Who is Callum Whitcombe?"),
        &dealership_vocabulary(),
    )
    .await;
    // Without the vocabulary tiny.en writes "Who is Kalam Whitcomb?".
    assert!(heard.contains("Callum Whitcombe"), "heard {heard:?}");
}

#[tokio::test]
async fn the_vocabulary_is_not_heard_in_an_unrelated_question_or_in_silence() {
    let stt = whisper();
    let vocabulary = dealership_vocabulary();
    let names: Vec<String> = vocabulary
        .terms()
        .iter()
        .flat_map(|t| t.split(' '))
        .map(str::to_lowercase)
        .collect();
    let heard = hear(
        &stt,
        speech("Can you recommend a good pizza place?"),
        &vocabulary,
    )
    .await;
    let lower = heard.to_lowercase();
    assert!(lower.contains("recommend"), "heard {heard:?}");
    assert!(
        !names.iter().any(|n| lower.contains(n.as_str())),
        "an unrelated question became the dealership's words: {heard:?}"
    );
    // A long silence: no prompt read back.
    let silence = hear(&stt, vec![0; 16_000 * 2], &vocabulary).await;
    assert!(
        !names
            .iter()
            .any(|n| silence.to_lowercase().contains(n.as_str())),
        "silence became {silence:?}"
    );
}
