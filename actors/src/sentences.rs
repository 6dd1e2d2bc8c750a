//! Cuts streamed answer text into sentences for text-to-speech, so the first sentence
//! is spoken while the rest is still being generated.

/// Accumulates text and yields whole sentences.
#[derive(Debug, Default, Clone)]
pub struct SentenceSplitter {
    buf: String,
}

/// Shortest piece worth sending alone (avoids "Dr." or "1." becoming a sentence).
const MIN_SENTENCE_CHARS: usize = 12;

impl SentenceSplitter {
    /// Adds text; returns the sentences it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        loop {
            let cut = self.buf.char_indices().find_map(|(i, c)| {
                let end = i + c.len_utf8();
                // A boundary needs what follows: whitespace, then the start of a new
                // sentence (so "8 a.m. on" is not cut after "a.m.").
                let rest = &self.buf[end..];
                let next = rest.trim_start().chars().next();
                let boundary = matches!(c, '.' | '!' | '?' | ';' | '\n')
                    && rest.starts_with(char::is_whitespace)
                    && next.is_some_and(|n| n.is_uppercase() || n.is_ascii_digit() || n == '"')
                    && self.buf[..end].trim().chars().count() >= MIN_SENTENCE_CHARS;
                boundary.then_some(end)
            });
            let Some(end) = cut else { break };
            let sentence = self.buf[..end].trim().to_owned();
            self.buf.drain(..end);
            if !sentence.is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// The remaining text at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf).trim().to_owned();
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_streamed_tokens_into_sentences() {
        let mut s = SentenceSplitter::default();
        let mut got = Vec::new();
        for token in [
            "We open at ",
            "8 a.m. on ",
            "weekdays. Call",
            " us! Or visit",
            " today",
        ] {
            got.extend(s.push(token));
        }
        // "Call us!" is too short to send alone: it rides with the next sentence.
        assert_eq!(got, ["We open at 8 a.m. on weekdays."]);
        assert_eq!(s.finish().as_deref(), Some("Call us! Or visit today"));
        assert_eq!(s.finish(), None);
    }
}
