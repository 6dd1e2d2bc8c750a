//! Whisper speech to text through whisper.cpp (`whisper-rs`), on a bounded worker pool
//! shared by every session.
//!
//! Whisper's encoder is built for 30 s windows; a spoken question lasts 1–5 s. Each call
//! sets the encoder's audio context to the clip's length (plus a margin), which cuts the
//! encoder's work several times over with the same transcript (see docs/PERFORMANCE.md).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use adam_actors::audio::Resampler;
use adam_actors::ports::{BoxFuture, CancellationToken, ProviderError, SpeechToText, SttRequest};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::pool::ModelPool;

const RATE: u32 = 16_000;
/// Encoder frames per second of audio (1500 frames = 30 s).
const CTX_PER_SEC: f32 = 50.0;
const FULL_CTX: i32 = 1500;
/// Default cap of the vocabulary prompt (about 60–80 tokens).
const DEFAULT_VOCABULARY_CHARS: usize = 300;
/// Hard cap of the prompt, tokens (whisper.cpp keeps at most half its 448-token text
/// context).
const MAX_PROMPT_TOKENS: usize = 200;

/// Whisper settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhisperConfig {
    /// whisper.cpp model file.
    pub model: PathBuf,
    /// Concurrent transcriptions (each holds its own decoder state).
    pub workers: usize,
    /// CPU threads per transcription.
    pub threads: u32,
    /// Shrink the encoder window to the clip (`false`: always 30 s).
    pub fit_audio_context: bool,
    /// Extra encoder frames beyond the clip when fitting (50 per second).
    pub audio_context_margin: u32,
    /// Language code.
    pub language: String,
    /// Longest initial prompt built from the dealership's vocabulary, characters (0: no
    /// prompt). Whisper reads at most 224 prompt tokens, and a long or off-topic prompt
    /// makes it hallucinate: a few dozen names is the useful size.
    pub vocabulary_chars: usize,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/whisper/ggml-tiny.en.bin"),
            workers: 1,
            threads: 2,
            fit_audio_context: true,
            audio_context_margin: 128,
            language: "en".into(),
            vocabulary_chars: DEFAULT_VOCABULARY_CHARS,
        }
    }
}

/// Whisper behind the [`SpeechToText`] port.
pub struct WhisperStt {
    context: Arc<WhisperContext>,
    states: Arc<Mutex<Vec<whisper_rs::WhisperState>>>,
    config: WhisperConfig,
    pool: Arc<ModelPool>,
}

impl WhisperStt {
    /// Loads the model and one decoder state per worker.
    pub fn load(config: &WhisperConfig, pool: Arc<ModelPool>) -> Result<Self, String> {
        if !config.model.is_file() {
            return Err(format!(
                "Whisper model {} is missing (run scripts/models/fetch.sh)",
                config.model.display()
            ));
        }
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let context = WhisperContext::new_with_params(&config.model, params)
            .map_err(|e| format!("Whisper model {}: {e}", config.model.display()))?;
        let states = (0..config.workers.max(1))
            .map(|_| context.create_state())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("Whisper state: {e}"))?;
        Ok(Self {
            context: Arc::new(context),
            states: Arc::new(Mutex::new(states)),
            config: config.clone(),
            pool,
        })
    }

    /// Transcribes 16 kHz mono samples on the calling thread; `prompt` (tokens) is the
    /// vocabulary Whisper is told to expect.
    fn run(
        state: &mut whisper_rs::WhisperState,
        config: &WhisperConfig,
        audio: &[f32],
        prompt: &[i32],
        cancel: &CancellationToken,
    ) -> Result<String, ProviderError> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        // Tokens rather than `set_initial_prompt`, which leaks its string on every call.
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        params.set_n_threads(config.threads.max(1) as i32);
        params.set_language(Some(&config.language));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if config.fit_audio_context {
            params.set_audio_ctx(audio_context(audio.len(), config.audio_context_margin));
        }
        // A runaway decode (repetition on odd audio) is capped: speech runs at most about
        // six tokens a second.
        let seconds = audio.len() as f32 / RATE as f32;
        params.set_max_tokens((seconds * 5.0).ceil() as i32 + 6);
        // No abort callback: whisper-rs 0.16's `set_abort_callback_safe` passes its boxed
        // closure to a trampoline typed for the unboxed one, so the callback reads the
        // wrong memory. A call takes ~0.15 s with the fitted context; a cancelled call
        // finishes and its text is dropped.
        let result = state.full(params, audio);
        if cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        result.map_err(|e| ProviderError::Unavailable(format!("whisper: {e}")))?;
        let mut text = String::new();
        for segment in state.as_iter() {
            if let Ok(s) = segment.to_str_lossy() {
                text.push_str(&s);
            }
        }
        Ok(collapse_repeats(&clean(&text)))
    }
}

/// Encoder frames for `samples` of 16 kHz audio plus `margin`, at most the full window.
fn audio_context(samples: usize, margin: u32) -> i32 {
    let seconds = samples as f32 / RATE as f32;
    let frames = (seconds * CTX_PER_SEC).ceil() as i32 + margin as i32;
    frames.clamp(64, FULL_CTX)
}

/// Drops Whisper's non-speech annotations (`[BLANK_AUDIO]`, `(music)`, `*cough*`) and
/// collapses whitespace.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut depth, mut starred) = (0usize, false);
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            '*' => starred = !starred,
            _ if depth == 0 && !starred => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whisper tiny sometimes loops on the end of a clip ("Is it open? Is it open? Is it"):
/// keeps the first of consecutive identical sentences and drops a trailing fragment that
/// only restarts the previous one.
fn collapse_repeats(text: &str) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            sentences.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    let tail = text[start..].trim();
    let mut out: Vec<&str> = Vec::new();
    for s in sentences {
        if out.last().is_none_or(|last| !last.eq_ignore_ascii_case(s)) && !s.is_empty() {
            out.push(s);
        }
    }
    if !tail.is_empty()
        && !out
            .last()
            .is_some_and(|last| last.to_lowercase().starts_with(&tail.to_lowercase()))
    {
        out.push(tail);
    }
    out.join(" ")
}

impl SpeechToText for WhisperStt {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        _partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let mut audio: Vec<i16> = if request.sample_rate == RATE {
                request.audio.to_vec()
            } else {
                Resampler::new(request.sample_rate, RATE).process(&request.audio)
            };
            // whisper.cpp refuses clips under 100 ms and is unreliable under 1 s: pad with
            // silence.
            if audio.len() < RATE as usize {
                audio.resize(RATE as usize, 0);
            }
            let samples: Vec<f32> = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
            let context = self.context.clone();
            let states = self.states.clone();
            let config = self.config.clone();
            let job_cancel = cancel.clone();
            let vocabulary = request.vocabulary;
            self.pool
                .run(&cancel, move || {
                    let mut state = states
                        .lock()
                        .map_err(|_| ProviderError::Unavailable("whisper state poisoned".into()))?
                        .pop()
                        .ok_or_else(|| ProviderError::Unavailable("no whisper state".into()))?;
                    let prompt_text = vocabulary.prompt(config.vocabulary_chars);
                    let prompt = if prompt_text.is_empty() {
                        Vec::new()
                    } else {
                        // A leading space, as the words appear mid-text.
                        context
                            .tokenize(&format!(" {prompt_text}"), MAX_PROMPT_TOKENS)
                            .unwrap_or_default()
                    };
                    let out = Self::run(&mut state, &config, &samples, &prompt, &job_cancel);
                    if let Ok(mut s) = states.lock() {
                        s.push(state);
                    }
                    out
                })
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_dropped() {
        assert_eq!(clean(" [BLANK_AUDIO] "), "");
        assert_eq!(clean(" Hello (coughs) there *sigh* ."), "Hello there .");
        assert_eq!(clean("Is it open?"), "Is it open?");
    }

    #[test]
    fn repeated_sentences_are_collapsed() {
        assert_eq!(
            collapse_repeats("Do you have cars? Do you have cars? Do you"),
            "Do you have cars?"
        );
        assert_eq!(
            collapse_repeats("Hi. Is it open? Yes"),
            "Hi. Is it open? Yes"
        );
        assert_eq!(collapse_repeats("no stop at all"), "no stop at all");
    }

    #[test]
    fn audio_context_fits_the_clip() {
        assert_eq!(audio_context(16_000 * 2, 64), 164);
        assert_eq!(audio_context(16_000 * 60, 64), 1500);
        assert_eq!(audio_context(100, 0), 64);
    }
}
