//! Token-bounded chunks with overlap: each extracted [`Section`] is cut by text-splitter
//! (largest semantic units first: paragraphs, sentences, words) into chunks of at most
//! `max_tokens` tokens as the embedding model's tokenizer counts them, consecutive chunks
//! sharing up to `overlap_tokens`. Text is never merged across sections, so every chunk
//! keeps its section's heading and page.

use std::path::Path;
use std::sync::Arc;

use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

use super::extract::Section;

/// Counts tokens the way the embedding model will see them.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one counter per process, held behind an Arc by the chunker"
)]
pub enum TokenCounter {
    /// The model's own tokenizer (truncation and padding switched off; special tokens
    /// not counted).
    Tokenizer(tokenizers::Tokenizer),
    /// An estimate when no tokenizer file is available: ⌈words × 4/3⌉.
    Words,
}

impl TokenCounter {
    /// Loads a Hugging Face `tokenizer.json`. Its truncation and padding settings are
    /// switched off, so counts are never capped or padded.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| format!("could not load the tokenizer {}: {e}", path.display()))?;
        Self::from_tokenizer(tokenizer)
    }

    /// Wraps a tokenizer, switching off its truncation and padding.
    pub fn from_tokenizer(mut tokenizer: tokenizers::Tokenizer) -> Result<Self, String> {
        tokenizer
            .with_truncation(None)
            .map_err(|e| format!("could not switch off the tokenizer's truncation: {e}"))?;
        tokenizer.with_padding(None);
        Ok(Self::Tokenizer(tokenizer))
    }

    /// The number of tokens in `text` (without special tokens). Should the tokenizer fail
    /// on some text, the word estimate is used for it.
    pub fn count(&self, text: &str) -> usize {
        match self {
            Self::Tokenizer(tokenizer) => tokenizer
                .encode_fast(text, false)
                .map(|encoding| encoding.len())
                .unwrap_or_else(|_| estimate_from_words(text)),
            Self::Words => estimate_from_words(text),
        }
    }
}

fn estimate_from_words(text: &str) -> usize {
    (text.split_whitespace().count() * 4).div_ceil(3)
}

/// Chunk size settings, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Most tokens in one chunk (default 200).
    pub max_tokens: usize,
    /// Tokens consecutive chunks of one section may share (default 40); less than
    /// `max_tokens`.
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 40,
        }
    }
}

/// A piece of a section, ready to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The section's heading path, if any.
    pub heading: Option<String>,
    /// The section's 1-based page (PDFs).
    pub page: Option<u32>,
    /// The chunk text (never empty).
    pub text: String,
}

/// The [`ChunkSizer`] text-splitter sees: a shared [`TokenCounter`].
#[derive(Debug)]
struct Sizer(Arc<TokenCounter>);

impl ChunkSizer for Sizer {
    fn size(&self, chunk: &str) -> usize {
        self.0.count(chunk)
    }
}

/// Cuts sections into token-bounded, overlapping chunks.
///
/// text-splitter cuts each section into pieces of at most `max_tokens - overlap_tokens`
/// (largest semantic units first), and each piece after the first is then extended
/// backwards with the end of the previous piece: as many whole words as fit in
/// `overlap_tokens` (starting at a sentence when one fits), so consecutive chunks always
/// share some text and no chunk exceeds `max_tokens`. (text-splitter's own overlap only
/// repeats whole units of the level it split at, which at paragraph or sentence level
/// rarely fit in the overlap, leaving most chunks with none.)
#[derive(Debug)]
pub struct Chunker {
    counter: Arc<TokenCounter>,
    splitter: TextSplitter<Sizer>,
    config: ChunkerConfig,
}

impl Chunker {
    /// A chunker counting with `counter`. Fails if `max_tokens` is 0 or the overlap is not
    /// smaller than `max_tokens`.
    pub fn new(counter: TokenCounter, config: ChunkerConfig) -> Result<Self, String> {
        if config.max_tokens == 0 {
            return Err("the chunk size must be at least one token".to_owned());
        }
        if config.overlap_tokens >= config.max_tokens {
            return Err(format!(
                "the chunk overlap ({} tokens) must be smaller than the chunk size ({} tokens)",
                config.overlap_tokens, config.max_tokens
            ));
        }
        let counter = Arc::new(match counter {
            // A tokenizer built by hand may still truncate or pad: counts must not be capped.
            TokenCounter::Tokenizer(tokenizer) => TokenCounter::from_tokenizer(tokenizer)?,
            TokenCounter::Words => TokenCounter::Words,
        });
        let pieces = ChunkConfig::new(config.max_tokens - config.overlap_tokens)
            .with_sizer(Sizer(Arc::clone(&counter)));
        Ok(Self {
            counter,
            splitter: TextSplitter::new(pieces),
            config,
        })
    }

    /// The settings this chunker was built with.
    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// Tokens in `text`, as this chunker counts them.
    pub fn count(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    /// Chunks of each section in order; one section gives one or more chunks (none if
    /// it has no text), each with the section's heading and page.
    pub fn chunk(&self, sections: &[Section]) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for section in sections {
            let text = section.text.as_str();
            let pieces: Vec<(usize, usize)> = self
                .splitter
                .chunk_indices(text)
                .filter(|(_, piece)| !piece.trim().is_empty())
                .map(|(start, piece)| (start, start + piece.len()))
                .collect();
            let mut previous: Option<(usize, usize)> = None;
            for (start, end) in pieces {
                let from =
                    previous.map_or(start, |prev| self.overlap_start(text, prev, start, end));
                let chunk = text[from..end].trim();
                if !chunk.is_empty() {
                    chunks.push(Chunk {
                        heading: section.heading.clone(),
                        page: section.page,
                        text: chunk.to_owned(),
                    });
                }
                previous = Some((start, end));
            }
        }
        chunks
    }

    /// Where the chunk for the piece `start..end` begins: the earliest word start in the
    /// previous piece such that the repeated text fits in the overlap and the whole chunk
    /// in the chunk size, moved forward to a sentence start if there is one; `start` if
    /// not even one word fits.
    fn overlap_start(
        &self,
        text: &str,
        previous: (usize, usize),
        start: usize,
        end: usize,
    ) -> usize {
        if self.config.overlap_tokens == 0 {
            return start;
        }
        let words = word_starts(text, previous.0, previous.1.min(start));
        let fits = |from: usize| {
            self.count(&text[from..start]) <= self.config.overlap_tokens
                && self.count(&text[from..end]) <= self.config.max_tokens
        };
        // Counts grow as the repeated text starts earlier: the fitting starts are a suffix.
        let first_fitting = words.partition_point(|&from| !fits(from));
        let fitting = &words[first_fitting..];
        // A piece that starts a line inside a paragraph (a table record, a labelled fact,
        // a list item) repeats only whole lines of the one before: half a record says
        // something else.
        if starts_line(text, start) {
            return fitting
                .iter()
                .copied()
                .find(|&from| starts_line(text, from))
                .unwrap_or(start);
        }
        fitting
            .iter()
            .copied()
            .find(|&from| starts_sentence(text, from))
            .or_else(|| fitting.first().copied())
            .unwrap_or(start)
    }
}

/// Byte offsets of the words starting in `text[from..to]`.
fn word_starts(text: &str, from: usize, to: usize) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut after_space = text[..from]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    for (i, c) in text[from..to].char_indices() {
        if !c.is_whitespace() && after_space {
            starts.push(from + i);
        }
        after_space = c.is_whitespace();
    }
    starts
}

/// Whether the word at `at` begins a line inside a paragraph (after one line break, not
/// a blank line).
fn starts_line(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end_matches([' ', '\t']);
    before.ends_with('\n') && !before.ends_with("\n\n")
}

/// Whether the word at `at` begins a sentence, line or paragraph.
fn starts_sentence(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end();
    before.is_empty()
        || before.ends_with(['.', '!', '?', ':', ';'])
        || text[before.len()..at].contains('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(heading: Option<&str>, page: Option<u32>, text: &str) -> Section {
        Section {
            heading: heading.map(str::to_owned),
            page,
            text: text.to_owned(),
        }
    }

    #[test]
    fn records_are_repeated_whole_or_not_at_all() {
        let records: Vec<String> = (0..12)
            .map(|i| format!("R{i} — Year: 20{i:02}; Model: Corvo; Trim: T{i}; Price: ${i},990."))
            .collect();
        let chunker = Chunker::new(
            TokenCounter::Words,
            ChunkerConfig {
                max_tokens: 40,
                overlap_tokens: 12,
            },
        )
        .expect("chunker");
        let chunks = chunker.chunk(&[section(None, None, &records.join("\n"))]);
        assert!(chunks.len() > 2, "{chunks:?}");
        for chunk in &chunks {
            for line in chunk.text.lines() {
                assert!(records.contains(&line.to_owned()), "a cut record: {line:?}");
            }
        }
    }

    /// Sentences of distinct words, in paragraphs, so every word can be located.
    fn long_text(sentences: usize) -> String {
        (0..sentences)
            .map(|i| format!("Sentence s{i} covers topic t{i} with detail d{i} and note n{i}."))
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|p| p.join(" "))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    fn minilm() -> TokenCounter {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/minilm/tokenizer.json");
        TokenCounter::from_file(&path).unwrap_or_else(|e| {
            panic!("{e}: the MiniLM tokenizer is needed, run scripts/models/fetch.sh")
        })
    }

    /// The longest k ≥ 1 such that the last k words of `a` start `b`.
    fn overlap_words(a: &str, b: &str) -> usize {
        let (a, b): (Vec<_>, Vec<_>) = (
            a.split_whitespace().collect(),
            b.split_whitespace().collect(),
        );
        (1..=a.len().min(b.len()))
            .rev()
            .find(|&k| a[a.len() - k..] == b[..k])
            .unwrap_or(0)
    }

    fn assert_well_formed(chunker: &Chunker, chunks: &[Chunk], max: usize) {
        assert!(
            chunks.len() >= 3,
            "expected several chunks, got {}",
            chunks.len()
        );
        for (i, chunk) in chunks.iter().enumerate() {
            assert!(!chunk.text.trim().is_empty(), "chunk {i} is empty");
            let tokens = chunker.count(&chunk.text);
            assert!(
                tokens <= max,
                "chunk {i} has {tokens} tokens > {max}: {:?}",
                chunk.text
            );
        }
        for pair in chunks.windows(2) {
            assert!(
                overlap_words(&pair[0].text, &pair[1].text) > 0,
                "no overlap between\n{:?}\nand\n{:?}",
                pair[0].text,
                pair[1].text
            );
        }
    }

    #[test]
    fn words_estimate_rounds_up() {
        assert_eq!(TokenCounter::Words.count(""), 0);
        assert_eq!(TokenCounter::Words.count("one"), 2);
        assert_eq!(TokenCounter::Words.count("one two three"), 4);
        assert_eq!(TokenCounter::Words.count("a b c d e f"), 8);
    }

    #[test]
    fn a_long_section_becomes_overlapping_bounded_chunks() {
        let config = ChunkerConfig {
            max_tokens: 40,
            overlap_tokens: 10,
        };
        let chunker = Chunker::new(TokenCounter::Words, config).expect("chunker");
        let text = long_text(30);
        let chunks = chunker.chunk(&[section(Some("Service > Hours"), Some(3), &text)]);
        assert_well_formed(&chunker, &chunks, 40);
        assert!(
            chunks
                .iter()
                .all(|c| c.heading.as_deref() == Some("Service > Hours"))
        );
        assert!(chunks.iter().all(|c| c.page == Some(3)));
        // Nothing is lost: every sentence's words are in some chunk, in order.
        let first = chunks.first().map(|c| c.text.as_str()).unwrap_or_default();
        let last = chunks.last().map(|c| c.text.as_str()).unwrap_or_default();
        assert!(first.starts_with("Sentence s0 "), "{first}");
        assert!(last.ends_with("note n29."), "{last}");
        for i in 0..30 {
            let word = format!("d{i}");
            assert!(
                chunks
                    .iter()
                    .any(|c| c.text.split_whitespace().any(|w| w == word)),
                "{word} lost"
            );
        }
    }

    #[test]
    fn sections_are_never_merged_and_keep_their_place() {
        let chunker = Chunker::new(TokenCounter::Words, ChunkerConfig::default()).expect("chunker");
        let chunks = chunker.chunk(&[
            section(None, Some(1), "Page one text."),
            section(None, Some(2), "   \n\n  "),
            section(Some("Sales"), Some(2), "Page two text."),
        ]);
        assert_eq!(
            chunks,
            vec![
                Chunk {
                    heading: None,
                    page: Some(1),
                    text: "Page one text.".to_owned()
                },
                Chunk {
                    heading: Some("Sales".to_owned()),
                    page: Some(2),
                    text: "Page two text.".to_owned()
                },
            ]
        );
    }

    #[test]
    fn invalid_configs_are_refused() {
        let overlap_too_big = ChunkerConfig {
            max_tokens: 50,
            overlap_tokens: 50,
        };
        assert!(Chunker::new(TokenCounter::Words, overlap_too_big).is_err());
        let empty = ChunkerConfig {
            max_tokens: 0,
            overlap_tokens: 0,
        };
        assert!(Chunker::new(TokenCounter::Words, empty).is_err());
        assert!(TokenCounter::from_file(Path::new("/nonexistent/tokenizer.json")).is_err());
    }

    #[test]
    fn the_model_tokenizer_counts_without_specials_truncation_or_padding() {
        let counter = minilm();
        // "[CLS] hello world [SEP]" padded to 128 is what the file's settings would give.
        assert_eq!(counter.count("Hello world"), 2);
        let words = "maintenance ".repeat(300);
        assert!(
            counter.count(&words) >= 300,
            "count capped: {}",
            counter.count(&words)
        );
    }

    #[test]
    fn chunks_fit_the_model_tokenizer() {
        let chunker = Chunker::new(minilm(), ChunkerConfig::default()).expect("chunker");
        let chunks = chunker.chunk(&[section(Some("Manual"), None, &long_text(120))]);
        assert_well_formed(&chunker, &chunks, 200);
        // Chunks are filled, not cut tiny.
        assert!(
            chunks
                .iter()
                .take(chunks.len() - 1)
                .all(|c| chunker.count(&c.text) > 100)
        );
    }

    #[test]
    fn a_chunker_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Chunker>();
    }
}
