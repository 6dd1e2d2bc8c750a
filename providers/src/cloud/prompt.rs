//! The chat prompt of one answer, within a token budget, and the citation markers taken
//! back out of the answer before it is spoken.
//!
//! The system message holds the persona, the instructions, the dealership's date ("Today is
//! Saturday, December 6, 2026 (America/Chicago).") and the retrieved passages as
//! numbered sources (`[1] Title (p. 3): text`); earlier turns follow as user/assistant
//! messages, then the question. Tokens are counted with tiktoken (`o200k_base` for the
//! GPT-4o / 4.1 / 5 and o-series families, `cl100k_base` for the rest, an estimate for
//! non-OpenAI models). The persona, instructions and question always go in; passages are
//! added in retrieval order while they fit (the first one is shortened rather than
//! dropped), then history from the newest turn back.

use adam_actors::ports::{AnswerRequest, Passage};
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

/// Tokens a chat message costs beyond its content (role and separators).
const MESSAGE_OVERHEAD: usize = 4;
/// Tokens that prime the reply.
const REPLY_PRIMING: usize = 3;
/// A first passage is shortened to fit only when at least this many tokens are left.
const MIN_PASSAGE_TOKENS: usize = 32;

/// Which tiktoken encoding counts the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEncoding {
    /// From the model name.
    #[default]
    Auto,
    /// `cl100k_base` (GPT-4, GPT-3.5, embeddings; a fair estimate for Llama, Mistral…).
    Cl100k,
    /// `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o1/o3/o4).
    O200k,
}

impl TokenEncoding {
    /// The encoding for `model` (`openai/gpt-4o-mini` and `gpt-4o-mini` alike).
    pub fn resolve(self, model: &str) -> Self {
        if self != Self::Auto {
            return self;
        }
        let name = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let o200k = [
            "gpt-4o",
            "chatgpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
            "gpt-oss",
        ];
        if o200k.iter().any(|p| name.starts_with(p)) {
            Self::O200k
        } else {
            Self::Cl100k
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Self::O200k => tiktoken_rs::o200k_base_singleton(),
            Self::Auto | Self::Cl100k => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// Tokens in `text`.
    pub fn count(self, text: &str) -> usize {
        self.bpe().encode_ordinary(text).len()
    }

    /// The longest start of `text` within `max_tokens` tokens.
    pub fn truncate(self, text: &str, max_tokens: usize) -> String {
        let bpe = self.bpe();
        let tokens = bpe.encode_ordinary(text);
        if tokens.len() <= max_tokens {
            return text.to_owned();
        }
        // A cut inside a multi-byte character decodes to invalid UTF-8: step back.
        (0..=max_tokens)
            .rev()
            .find_map(|n| bpe.decode(&tokens[..n]).ok())
            .unwrap_or_default()
    }
}

/// How prompts are built.
#[derive(Debug, Clone)]
pub struct PromptOptions {
    /// Largest prompt, tokens (message overheads included).
    pub max_prompt_tokens: usize,
    /// Resolved encoding.
    pub encoding: TokenEncoding,
    /// Instructions after the persona.
    pub instructions: String,
    /// Ask for `[n]` markers after facts.
    pub citations: bool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// A built prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The messages, system first, question last.
    pub messages: Vec<ChatMessage>,
    /// Their tokens as counted.
    pub tokens: usize,
    /// Source number `n` (from 1) is request passage `sources[n - 1]`.
    pub sources: Vec<usize>,
    /// Earlier turns included.
    pub history_turns: usize,
}

/// Why no prompt fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the persona, instructions and question take {needed} tokens, more than max_prompt_tokens ({budget})"
)]
pub struct PromptTooLong {
    /// Tokens the fixed parts take.
    pub needed: usize,
    /// The budget.
    pub budget: usize,
}

fn source_line(number: usize, passage: &Passage, text: &str) -> String {
    let title = passage.title.trim();
    match (title.is_empty(), passage.page) {
        (true, _) => format!("[{number}] {text}"),
        (false, Some(page)) => format!("[{number}] {title} (p. {page}): {text}"),
        (false, None) => format!("[{number}] {title}: {text}"),
    }
}

/// Builds the prompt of `request` within `options.max_prompt_tokens`.
pub fn build(request: &AnswerRequest, options: &PromptOptions) -> Result<Prompt, PromptTooLong> {
    let enc = options.encoding;
    let mut head = String::new();
    if !request.persona.trim().is_empty() {
        head.push_str(request.persona.trim());
        head.push_str("\n\n");
    }
    head.push_str(options.instructions.trim());
    // "Are you open today?" needs the dealership's day, not the model's guess.
    let today = crate::grounded::question::local_today(&request.timezone);
    head.push_str(&format!(
        "\nToday is {} ({}).",
        today.strftime("%A, %B %-d, %Y"),
        if request.timezone.is_empty() {
            "UTC"
        } else {
            request.timezone.as_str()
        }
    ));
    if options.citations {
        head.push_str(
            "\nAfter each fact taken from a source, write the source's number in square \
             brackets, like [1].",
        );
    }
    head.push_str("\n\nSources:\n");
    let question = request.question.trim().to_owned();
    let fixed = enc.count(&head)
        + enc.count("(none)")
        + enc.count(&question)
        + 2 * MESSAGE_OVERHEAD
        + REPLY_PRIMING;
    let budget = options.max_prompt_tokens;
    if fixed > budget {
        return Err(PromptTooLong {
            needed: fixed,
            budget,
        });
    }
    let mut left = budget - fixed;

    let mut lines = Vec::new();
    let mut sources = Vec::new();
    for (i, passage) in request.passages.iter().enumerate() {
        let number = sources.len() + 1;
        let line = source_line(number, passage, passage.text.trim());
        let cost = enc.count(&line) + 1;
        if cost <= left {
            left -= cost;
        } else if sources.is_empty() && left >= MIN_PASSAGE_TOKENS {
            let frame = enc.count(&source_line(number, passage, "")) + 1;
            let Some(room) = left.checked_sub(frame).filter(|r| *r > 0) else {
                continue;
            };
            let line = source_line(number, passage, &enc.truncate(passage.text.trim(), room));
            left = left.saturating_sub(enc.count(&line) + 1);
            lines.push(line);
            sources.push(i);
            continue;
        } else {
            continue;
        }
        lines.push(line);
        sources.push(i);
    }

    let mut turns = Vec::new();
    for turn in request.history.iter().rev() {
        let cost = enc.count(&turn.user) + enc.count(&turn.assistant) + 2 * MESSAGE_OVERHEAD;
        if cost > left {
            break;
        }
        left -= cost;
        turns.push(turn);
    }
    turns.reverse();

    let mut system = head;
    if lines.is_empty() {
        system.push_str("(none)");
    } else {
        system.push_str(&lines.join("\n"));
    }
    let mut messages = vec![ChatMessage {
        role: "system",
        content: system,
    }];
    for turn in &turns {
        messages.push(ChatMessage {
            role: "user",
            content: turn.user.clone(),
        });
        messages.push(ChatMessage {
            role: "assistant",
            content: turn.assistant.clone(),
        });
    }
    messages.push(ChatMessage {
        role: "user",
        content: question,
    });
    let tokens = messages
        .iter()
        .map(|m| enc.count(&m.content) + MESSAGE_OVERHEAD)
        .sum::<usize>()
        + REPLY_PRIMING;
    Ok(Prompt {
        messages,
        tokens,
        sources,
        history_turns: turns.len(),
    })
}

/// Takes `[1]`, `[2, 3]` markers out of streamed answer text (they would be read aloud)
/// and collects the source numbers. Text is held back only while it may be a marker (or
/// the space before one).
#[derive(Debug, Default)]
pub struct CitationFilter {
    /// Held text: optional whitespace, then possibly `[` and digits, commas, spaces.
    held: String,
    /// Whitespace held before a marker that was then removed, waiting for what follows.
    space_after_marker: String,
    cited: Vec<usize>,
}

/// Longest text held while deciding whether it is a marker.
const MAX_HELD: usize = 24;

impl CitationFilter {
    /// The source numbers found, in order of first appearance.
    pub fn cited(&self) -> &[usize] {
        &self.cited
    }

    /// Feeds generated text; returns what can be spoken now.
    pub fn push(&mut self, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            self.step(c, &mut out);
        }
        out
    }

    /// The answer ended: what is still held (a space left by a final marker is dropped).
    pub fn finish(&mut self) -> String {
        self.space_after_marker.clear();
        std::mem::take(&mut self.held)
    }

    fn step(&mut self, c: char, out: &mut String) {
        match self.held.find('[') {
            None if c.is_whitespace() || c == '[' => self.held.push(c),
            None => {
                self.emit_held(c, out);
                out.push(c);
            }
            Some(at) => {
                if c.is_ascii_digit() || c == ',' || c == ' ' {
                    self.held.push(c);
                    if self.held.len() > MAX_HELD {
                        self.emit_held('[', out);
                    }
                } else if c == ']' && self.held[at..].chars().any(|d| d.is_ascii_digit()) {
                    let numbers = self.held[at + 1..]
                        .split([',', ' '])
                        .filter_map(|n| n.parse::<usize>().ok());
                    for n in numbers {
                        if !self.cited.contains(&n) {
                            self.cited.push(n);
                        }
                    }
                    // The space before the marker is kept in case a word follows.
                    let space = self.held[..at].to_owned();
                    self.held.clear();
                    self.space_after_marker.push_str(&space);
                } else {
                    // Not a marker after all.
                    self.emit_held('[', out);
                    self.step(c, out);
                }
            }
        }
    }

    /// Writes the held text before `next`. After a removed marker its leading space is
    /// dropped when the held text brings its own or punctuation follows ("at 8 [1]."
    /// becomes "at 8.", "at 6 [2] on" becomes "at 6 on").
    fn emit_held(&mut self, next: char, out: &mut String) {
        let space = std::mem::take(&mut self.space_after_marker);
        let held = std::mem::take(&mut self.held);
        let own_space = held.starts_with(char::is_whitespace);
        let punctuation = held.is_empty() && matches!(next, '.' | ',' | ';' | ':' | '!' | '?');
        if !own_space && !punctuation {
            out.push_str(&space);
        }
        out.push_str(&held);
    }
}

#[cfg(test)]
mod tests {
    use adam_actors::ports::ContextTurn;

    use super::*;

    fn passage(title: &str, text: &str) -> Passage {
        Passage {
            document_id: "d".into(),
            title: title.into(),
            text: text.into(),
            score: 0.9,
            page: None,
        }
    }

    fn request(passages: Vec<Passage>, history: Vec<ContextTurn>) -> AnswerRequest {
        AnswerRequest {
            tenant: "t".into(),
            question: "When are you open on Saturday?".into(),
            search_query: "When are you open on Saturday?".into(),
            history,
            persona: "You are Emma at Riverside Auto.".into(),
            timezone: String::new(),
            passages,
        }
    }

    fn options(max: usize) -> PromptOptions {
        PromptOptions {
            max_prompt_tokens: max,
            encoding: TokenEncoding::Cl100k,
            instructions: "Answer briefly.".into(),
            citations: true,
        }
    }

    #[test]
    fn encodings_follow_the_model_family() {
        assert_eq!(
            TokenEncoding::Auto.resolve("openai/gpt-4o-mini"),
            TokenEncoding::O200k
        );
        assert_eq!(
            TokenEncoding::Auto.resolve("gpt-5-nano"),
            TokenEncoding::O200k
        );
        assert_eq!(TokenEncoding::Auto.resolve("o3-mini"), TokenEncoding::O200k);
        assert_eq!(
            TokenEncoding::Auto.resolve("gpt-4-turbo"),
            TokenEncoding::Cl100k
        );
        assert_eq!(
            TokenEncoding::Auto.resolve("meta-llama/llama-3.1-8b-instruct"),
            TokenEncoding::Cl100k
        );
        assert_eq!(TokenEncoding::O200k.resolve("gpt-4"), TokenEncoding::O200k);
        // The two encodings really differ.
        let text = "Riverside Auto's service desk opens at 7:30 on weekdays.";
        assert_ne!(TokenEncoding::Cl100k.count(text), 0);
        assert!(TokenEncoding::O200k.count(text) > 0);
    }

    #[test]
    fn everything_fits_in_a_large_budget() {
        let history = vec![ContextTurn {
            user: "Hi".into(),
            assistant: "Hello! How can I help?".into(),
        }];
        let p = build(
            &request(
                vec![
                    passage("Hours", "Saturday 8 to 2."),
                    Passage {
                        page: Some(3),
                        ..passage("Handbook", "Closed Sundays.")
                    },
                ],
                history,
            ),
            &options(4000),
        )
        .expect("fits");
        let roles: Vec<_> = p.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        let today = crate::grounded::question::local_today("");
        assert!(
            p.messages[0].content.contains(&format!(
                "Today is {} (UTC).",
                today.strftime("%A, %B %-d, %Y")
            )),
            "the model is told the dealership's date"
        );
        let system = &p.messages[0].content;
        assert!(system.starts_with("You are Emma at Riverside Auto."));
        assert!(
            system.contains("[1] Hours: Saturday 8 to 2.\n[2] Handbook (p. 3): Closed Sundays.")
        );
        assert_eq!(p.sources, [0, 1]);
        assert_eq!(p.messages[3].content, "When are you open on Saturday?");
        assert!(p.tokens <= 4000);
    }

    #[test]
    fn passages_then_history_are_trimmed_to_the_budget() {
        let long = "word ".repeat(400);
        let history: Vec<ContextTurn> = (0..10)
            .map(|i| ContextTurn {
                user: format!("question {i} {}", "x ".repeat(20)),
                assistant: format!("answer {i} {}", "y ".repeat(20)),
            })
            .collect();
        let req = request(
            vec![
                passage("Big", &long),
                passage("Hours", "Saturday 8 to 2."),
                passage("Also big", &long),
            ],
            history,
        );
        for budget in [150, 300, 600, 1200] {
            let p = build(&req, &options(budget)).expect("fits");
            assert!(p.tokens <= budget, "{} > {budget}", p.tokens);
            // The first passage is always there, shortened if needed.
            assert_eq!(p.sources.first(), Some(&0), "budget {budget}");
            // History kept is the most recent.
            if p.history_turns > 0 {
                let last_user = &p.messages[p.messages.len() - 3].content;
                assert!(last_user.starts_with("question 9"), "{last_user}");
            }
        }
        let small = build(&req, &options(150)).expect("fits");
        let big = build(&req, &options(1200)).expect("fits");
        assert!(small.history_turns <= big.history_turns);
        assert!(big.sources.len() >= 2);
        // Numbering stays contiguous when a passage is skipped.
        let system = &big.messages[0].content;
        assert_eq!(system.matches("\n[").count(), big.sources.len());
        for n in 1..=big.sources.len() {
            assert!(system.contains(&format!("\n[{n}] ")), "source {n} missing");
        }
    }

    #[test]
    fn a_question_that_cannot_fit_is_refused() {
        let err = build(&request(vec![], vec![]), &options(10)).expect_err("too small");
        assert_eq!(err.budget, 10);
        assert!(err.needed > 10);
    }

    #[test]
    fn citation_markers_are_removed_wherever_the_stream_splits() {
        let answer = "We open at 8 [1]. Service closes at 6 [2, 3] on weekdays. Array[x] stays.";
        for cut in 0..answer.len() {
            if !answer.is_char_boundary(cut) {
                continue;
            }
            let mut f = CitationFilter::default();
            let mut out = f.push(&answer[..cut]);
            out.push_str(&f.push(&answer[cut..]));
            out.push_str(&f.finish());
            assert_eq!(
                out, "We open at 8. Service closes at 6 on weekdays. Array[x] stays.",
                "cut {cut}"
            );
            assert_eq!(f.cited(), [1, 2, 3]);
        }
    }

    #[test]
    fn text_is_not_held_longer_than_needed() {
        let mut f = CitationFilter::default();
        assert_eq!(f.push("Hello"), "Hello");
        assert_eq!(f.push(" there"), " there");
        // A space might precede a marker: held until the next character.
        assert_eq!(f.push(" "), "");
        assert_eq!(f.push("friend"), " friend");
        assert_eq!(f.push(" [12"), "");
        assert_eq!(f.push("a"), " [12a");
        assert_eq!(f.finish(), "");
    }
}
