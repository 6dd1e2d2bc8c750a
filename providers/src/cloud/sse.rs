//! Server-sent events framing (the WHATWG `text/event-stream` rules), sans-IO: feed it
//! the body as it arrives, in pieces of any size, and take whole events out.
//!
//! Lines end with LF, CRLF or CR (a CR at the end of a piece waits for the next one to
//! see whether an LF follows); a blank line ends an event; `data:` lines are joined with
//! newlines; lines starting with `:` are comments (OpenRouter's `: OPENROUTER
//! PROCESSING` keep-alives); `event`, `id` and `retry` are read or ignored as the spec
//! says; one space after the colon is dropped.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field, when given.
    pub event: Option<String>,
    /// The `data:` lines joined with newlines.
    pub data: String,
}

/// Framing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the limit (a broken or hostile stream).
    #[error("server-sent event line longer than {0} bytes")]
    LineTooLong(usize),
}

/// The parser.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous piece ended with CR: an LF at the start of the next belongs to it.
    after_cr: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    started: bool,
    max_line: usize,
    comments: u64,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(1 << 20)
    }
}

impl SseParser {
    /// A parser refusing lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            data: String::new(),
            has_data: false,
            event: None,
            started: false,
            max_line,
            comments: 0,
        }
    }

    /// Comment lines seen so far.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Feeds the next piece of the body; returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= self.max_line {
                        return Err(SseError::LineTooLong(self.max_line));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    /// The body ended: an event not closed by a blank line is discarded, as the spec
    /// says (a stream cut mid-event must not deliver half of it).
    pub fn finish(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event = None;
    }

    fn line_done(&mut self, raw: &[u8]) -> Option<SseEvent> {
        let mut line = String::from_utf8_lossy(raw);
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned().into();
            }
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` only matter to reconnecting clients; a chat completion is
            // never resumed.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body = ": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata: [DONE]\n\n";
        // Every split point, including inside "\r\n".
        for cut in 0..body.len() {
            let mut p = SseParser::default();
            let mut events = p.feed(&body.as_bytes()[..cut]).expect("feed");
            events.extend(p.feed(&body.as_bytes()[cut..]).expect("feed"));
            assert_eq!(
                data(&events),
                ["{\"a\":1}", "{\"b\":\n2}", "[DONE]"],
                "cut at {cut}"
            );
            assert_eq!(p.comments(), 1);
        }
        // And byte by byte.
        let mut p = SseParser::default();
        let events: Vec<SseEvent> = body
            .as_bytes()
            .iter()
            .flat_map(|b| p.feed(&[*b]).expect("feed"))
            .collect();
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn fields_follow_the_spec() {
        let mut p = SseParser::default();
        let events = p
            .feed(b"\xEF\xBB\xBFevent: error\ndata:no-space\nid: 7\nretry: 10\n\ndata\n\nevent: x\n\n")
            .expect("feed");
        assert_eq!(
            events,
            [
                SseEvent {
                    event: Some("error".into()),
                    data: "no-space".into()
                },
                SseEvent {
                    event: None,
                    data: String::new()
                }
            ]
        );
    }

    #[test]
    fn an_unterminated_event_is_dropped_and_long_lines_refused() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: half").expect("feed").is_empty());
        p.finish();
        assert!(p.feed(b"\n\n").expect("feed").is_empty());
        let mut p = SseParser::new(8);
        assert_eq!(p.feed(b"data: 123456789"), Err(SseError::LineTooLong(8)));
    }
}
