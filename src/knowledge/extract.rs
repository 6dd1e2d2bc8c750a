//! From uploaded bytes to text sections: the document's type is decided by its content
//! ([`sniff`]), never by the client's file name, and its text is read by well-kept crates
//! ([`extract`]): pdf-extract for PDFs (per page, panics caught), zip + quick-xml for
//! Word documents (with zip-bomb limits checked before anything is decompressed),
//! pulldown-cmark for Markdown. Each [`Section`] carries its heading path and page so
//! chunks can cite where they come from. The client's file name is only ever a label
//! ([`display_name`]).

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pulldown_cmark::{Event as MdEvent, Options as MdOptions, Parser as MdParser, Tag, TagEnd};
use quick_xml::events::{BytesRef, BytesStart, Event as XmlEvent};

use super::pdf_checks;

/// The kinds of document the knowledge base accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// A PDF document.
    Pdf,
    /// A Word document (Office Open XML, `.docx`).
    Docx,
    /// UTF-8 text named `.md` / `.markdown`.
    Markdown,
    /// Any other UTF-8 text.
    Text,
    /// UTF-8 comma-separated values named `.csv` (a table: one record per row).
    Csv,
}

impl DocKind {
    /// The MIME type to store and serve the original with.
    pub fn mime(&self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Text => "text/plain; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The stable identifier stored and returned by the API: `pdf`, `docx`, `markdown`,
    /// `text`, `csv`.
    pub fn id(&self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Csv => "csv",
        }
    }

    /// A short human label ("PDF", "Word document", ...), for messages and the admin UI.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Docx => "Word document",
            Self::Markdown => "Markdown",
            Self::Text => "plain text",
            Self::Csv => "CSV table",
        }
    }

    /// The kind in a sentence ("the content is a PDF document").
    fn described(&self) -> &'static str {
        match self {
            Self::Pdf => "a PDF document",
            Self::Docx => "a Word document",
            Self::Markdown => "Markdown text",
            Self::Text => "plain text",
            Self::Csv => "a CSV table",
        }
    }

    /// Whether a file whose extension names `self` may hold content of kind `other`
    /// (Markdown and plain text are interchangeable).
    fn compatible(self, other: DocKind) -> bool {
        matches!(
            (self, other),
            (Self::Pdf, Self::Pdf)
                | (Self::Docx, Self::Docx)
                | (
                    Self::Markdown | Self::Text | Self::Csv,
                    Self::Markdown | Self::Text | Self::Csv
                )
        )
    }
}

/// Why an upload was refused before any extraction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// The content is not a kind we accept (HTTP 415). The string names what it is
    /// ("a PNG image", "a zip archive that is not a Word document", ...).
    #[error(
        "{0} is not supported: upload a PDF, a Word document (.docx), Markdown, CSV or UTF-8 plain text"
    )]
    Unsupported(String),
    /// The file name's extension names a different kind than the content (HTTP 422).
    #[error("the file name ends in .{declared} but its content is {}", .actual.described())]
    Mismatch {
        /// The extension as written by the client, lower-cased, without the dot.
        declared: String,
        /// What the content actually is.
        actual: DocKind,
    },
}

/// How far a PDF header may sit from the start of the file (as real readers allow).
const PDF_HEADER_WINDOW: usize = 1024;

/// Decides a document's kind from its bytes; the file name only tells Markdown from plain
/// text, and is then checked against the content (a `.txt` holding a PDF is refused).
pub fn sniff(bytes: &[u8], filename: &str) -> Result<DocKind, SniffError> {
    let extension = extension_of(filename);
    let kind = sniff_content(bytes, extension.as_deref())?;
    if let Some(ext) = extension
        && let Some(declared) = kind_of_extension(&ext)
        && !declared.compatible(kind)
    {
        return Err(SniffError::Mismatch {
            declared: ext,
            actual: kind,
        });
    }
    Ok(kind)
}

fn sniff_content(bytes: &[u8], extension: Option<&str>) -> Result<DocKind, SniffError> {
    let unsupported = |what: &str| Err(SniffError::Unsupported(what.to_owned()));
    if bytes.starts_with(b"PK\x03\x04") {
        return match zip::ZipArchive::new(Cursor::new(bytes)) {
            Ok(archive) if archive.index_for_name(DOCX_MAIN_PART).is_some() => Ok(DocKind::Docx),
            Ok(_) => unsupported("a zip archive that is not a Word document"),
            Err(_) => unsupported("a damaged zip archive"),
        };
    }
    if bytes.starts_with(b"PK\x05\x06") {
        return unsupported("an empty zip archive");
    }
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"\x7FELF", "an executable (ELF)"),
        (b"\x1F\x8B", "a gzip archive"),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "a legacy or password-protected Office file (.doc/.xls/.ppt)",
        ),
        (b"{\\rtf", "an RTF document"),
        (b"\xFF\xFE", "UTF-16 text (save it as UTF-8)"),
        (b"\xFE\xFF", "UTF-16 text (save it as UTF-8)"),
    ];
    if let Some((_, what)) = SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return unsupported(what);
    }
    if looks_like_pdf(bytes) {
        return Ok(DocKind::Pdf);
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if text.contains(&0) {
        return unsupported("binary data");
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return unsupported("a file that is neither a known document type nor UTF-8 text");
    };
    if text.trim().is_empty() {
        return unsupported("an empty file");
    }
    Ok(match extension {
        Some("md" | "markdown") => DocKind::Markdown,
        Some("csv") => DocKind::Csv,
        _ => DocKind::Text,
    })
}

/// `%PDF-` at the start, or (as readers tolerate) after some junk within the first KiB
/// when it is followed by a version digit and the file ends like a PDF; the extra checks
/// keep a text file that merely mentions `%PDF-` from being taken for one.
fn looks_like_pdf(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"%PDF-") {
        return true;
    }
    let head = &bytes[..bytes.len().min(PDF_HEADER_WINDOW + 5)];
    let Some(at) = find(head, b"%PDF-") else {
        return false;
    };
    let versioned = head.get(at + 5).is_some_and(u8::is_ascii_digit);
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    versioned && find(tail, b"%%EOF").is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The lower-cased extension of the file name's last component, if any.
fn extension_of(filename: &str) -> Option<String> {
    let name = display_name(filename);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

fn kind_of_extension(ext: &str) -> Option<DocKind> {
    match ext {
        "pdf" => Some(DocKind::Pdf),
        "docx" => Some(DocKind::Docx),
        "md" | "markdown" => Some(DocKind::Markdown),
        "txt" => Some(DocKind::Text),
        "csv" => Some(DocKind::Csv),
        _ => None,
    }
}

/// Safety limits for extraction (`[knowledge.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most entries a Word document's zip may have (default 1000).
    pub max_zip_entries: usize,
    /// Most bytes a document may expand to: a Word document's entries, a PDF's streams,
    /// all together (default 50 MiB).
    pub max_uncompressed_bytes: u64,
    /// Highest uncompressed/compressed ratio, per entry of 64 KiB or more and overall
    /// (default 100).
    pub max_ratio: u64,
    /// Most pages a PDF may have (default 2000).
    pub max_pdf_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_zip_entries: 1000,
            max_uncompressed_bytes: 50 * MIB,
            max_ratio: 100,
            max_pdf_pages: 2000,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// Entries smaller than this are not ratio-checked (small XML parts compress very well).
const RATIO_FLOOR: u64 = 64 * 1024;

/// A run of a document's text under one heading (and, for a PDF, on one page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading path, joined with " > " ("Service > Hours"), if any.
    pub heading: Option<String>,
    /// 1-based page number (PDFs only).
    pub page: Option<u32>,
    /// The text, whitespace tidied, paragraphs separated by a blank line.
    pub text: String,
}

/// Why a document's text could not be extracted. The message is shown to the admin as
/// the failure reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExtractError(pub String);

/// Extracts a document's text as sections in document order (empty sections dropped).
/// A document without any text is an error.
pub fn extract(kind: DocKind, bytes: &[u8], limits: &Limits) -> Result<Vec<Section>, ExtractError> {
    let sections = match kind {
        DocKind::Pdf => extract_pdf(bytes, limits)?,
        DocKind::Docx => extract_docx(bytes, limits)?,
        DocKind::Markdown => extract_markdown(decode_text(bytes)?),
        DocKind::Text => extract_text(decode_text(bytes)?),
        DocKind::Csv => {
            let text = decode_text(bytes)?;
            match super::tables::csv_records(text) {
                Some(records) => {
                    let mut sections = Sections::default();
                    sections.push(None, None, &records);
                    sections.0
                }
                None => extract_text(text),
            }
        }
    };
    if sections.is_empty() {
        return Err(ExtractError(match kind {
            DocKind::Pdf => "no text found (scanned PDF?)".to_owned(),
            _ => "no text found in the document".to_owned(),
        }));
    }
    Ok(sections)
}

fn decode_text(bytes: &[u8]) -> Result<&str, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map_err(|e| ExtractError(format!("the text is not valid UTF-8: {e}")))
}

/// Collects sections, dropping empty ones.
#[derive(Default)]
struct Sections(Vec<Section>);

impl Sections {
    fn push(&mut self, heading: Option<String>, page: Option<u32>, raw: &str) {
        let text = super::tables::labelled_lines(&super::tables::records(&tidy(raw)));
        if !text.is_empty() {
            self.0.push(Section {
                heading: heading.filter(|h| !h.is_empty()),
                page,
                text,
            });
        }
    }
}

/// A heading path: entries of lower level than a new heading stay, the others go.
#[derive(Default)]
struct HeadingPath(Vec<(u8, String)>);

impl HeadingPath {
    fn enter(&mut self, level: u8, text: &str) {
        let text = tidy_line(text);
        if text.is_empty() {
            return;
        }
        self.0.retain(|(l, _)| *l < level);
        self.0.push((level, text));
    }

    fn joined(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        })
    }
}

/// Tidies whitespace: control characters become spaces, runs of spaces/tabs collapse,
/// lines are trimmed, blank lines separate paragraphs (written as exactly one blank line).
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_break = false;
    for line in text.lines() {
        let line = tidy_line(line);
        if line.is_empty() {
            pending_break = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if pending_break { "\n\n" } else { "\n" });
        }
        pending_break = false;
        out.push_str(&line);
    }
    out
}

/// One line: control characters to spaces, whitespace runs collapsed, dot leaders
/// ("Parts ........ 555-0152") made a dash, trimmed.
fn tidy_line(line: &str) -> String {
    let line = line
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !line.contains("....") {
        return line;
    }
    let mut out = String::with_capacity(line.len());
    let mut dots = 0;
    for c in line.chars() {
        if c == '.' {
            dots += 1;
            continue;
        }
        if dots >= 4 {
            let kept = out.trim_end().len();
            out.truncate(kept);
            out.push_str(" — ");
            if c == ' ' {
                dots = 0;
                continue;
            }
        } else {
            out.extend(std::iter::repeat_n('.', dots));
        }
        dots = 0;
        out.push(c);
    }
    if dots >= 4 {
        out.truncate(out.trim_end().len());
    } else {
        out.extend(std::iter::repeat_n('.', dots));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Plain text and Markdown

/// Plain text: paragraphs, where a paragraph of one short line without closing
/// punctuation ("Prices and fees") is taken as the heading of the paragraphs after it
/// (the first one of the file as the title above them).
fn extract_text(text: &str) -> Vec<Section> {
    let mut sections = Sections::default();
    let mut path = HeadingPath::default();
    let mut body = String::new();
    let paragraphs: Vec<String> = tidy(text).split("\n\n").map(str::to_owned).collect();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        let is_last = i + 1 == paragraphs.len();
        if !is_last && looks_like_heading(paragraph) {
            sections.push(path.joined(), None, &body);
            body.clear();
            path.enter(if i == 0 { 1 } else { 2 }, paragraph);
        } else {
            body.push_str(paragraph);
            body.push_str("\n\n");
        }
    }
    sections.push(path.joined(), None, &body);
    sections.0
}

/// A PDF page's printed lines joined back into sentences: a line continues the one before
/// when that one has no closing punctuation and this one starts in lower case (or with a
/// price or bracket), or when the one before filled the page's width. Table rows and list
/// items stay on their own lines.
fn unwrap_lines(text: &str) -> String {
    let widest = text
        .lines()
        .map(|l| l.trim().chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<&str> = None;
    let mut blank = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank = true;
            continue;
        }
        if let Some(before) = previous {
            if continues(before, line, widest) {
                out.push(' ');
            } else {
                out.push_str(if blank { "\n\n" } else { "\n" });
            }
        }
        out.push_str(line);
        previous = Some(line);
        blank = false;
    }
    out
}

/// Whether `line` goes on the sentence `before` left open (see [`unwrap_lines`]).
fn continues(before: &str, line: &str, widest: usize) -> bool {
    let list_item = |l: &str| l.starts_with(['-', '•', '*']);
    if before.ends_with(['.', '!', '?', ':']) || list_item(line) {
        return false;
    }
    let starts_low = line
        .chars()
        .next()
        .is_some_and(|c| c.is_lowercase() || matches!(c, '$' | '(' | ',' | ';' | '&'));
    // A row of a table holds several numbers and no sentence; wrapped prose has stops.
    let numbers = before
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .count();
    let row = numbers >= 3 && !before.contains(". ");
    // A line ending in "on", "the", "and" … stops mid-sentence.
    let open_ended = before
        .rsplit(' ')
        .next()
        .is_some_and(|w| OPEN_ENDED.contains(&w.to_lowercase().as_str()));
    starts_low
        || before.ends_with([',', ';'])
        || open_ended && !list_item(before)
        || (before.chars().count() * 10 >= widest * 7 && !row && !list_item(before))
}

/// Words a sentence does not end on.
const OPEN_ENDED: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "on", "to", "at", "for", "with", "from", "in", "by", "is",
    "are", "was", "be", "our", "your", "their", "its", "as", "than", "that", "which",
];

/// A PDF page's text cut at its title lines: a short line without closing punctuation
/// followed by a line that starts with a capital (a section title above sentences).
/// Lines of running text that merely wrap are left alone.
fn page_sections(text: &str) -> Vec<(Option<String>, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // The nearest non-blank line after each line, in one pass from the end: searching
    // from every line is quadratic in a run of blank lines, and a hostile PDF makes
    // millions of them (fuzz/corpus/extract_pdf/hostile_blank_lines.pdf).
    let mut next_text: Vec<Option<&str>> = vec![None; lines.len()];
    let mut following = None;
    for (i, line) in lines.iter().enumerate().rev() {
        next_text[i] = following;
        if !line.is_empty() {
            following = Some(*line);
        }
    }
    // Three or more short unpunctuated lines one after the other are the rows of a table
    // or a list ("Dolores Whitcombe General Manager Administration"), not headings: taken
    // for headings, each would head an empty section and be lost. The last of them may
    // still head the text after it ("Holiday Closures").
    let mut in_row_run = vec![false; lines.len()];
    let mut run: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate().chain([(lines.len(), &"")]) {
        if line.is_empty() && i < lines.len() {
            continue;
        }
        if i < lines.len() && looks_like_heading(line) {
            run.push(i);
            continue;
        }
        if run.len() >= 3 {
            for &r in &run[..run.len() - 1] {
                in_row_run[r] = true;
            }
        }
        run.clear();
    }
    let mut previous_text: Option<&str> = None;
    let mut out: Vec<(Option<String>, String)> = vec![(None, String::new())];
    for ((line, next), row) in lines.iter().zip(next_text).zip(in_row_run) {
        let next_starts_sentence =
            next.is_some_and(|l| l.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()));
        let previous_ended = previous_text
            .is_none_or(|l| l.ends_with(['.', '!', '?', ':']) || looks_like_heading(l));
        if !row
            && !line.is_empty()
            && looks_like_heading(line)
            && next_starts_sentence
            && previous_ended
        {
            out.push((Some(tidy_line(line)), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
        if !line.is_empty() {
            previous_text = Some(line);
        }
    }
    out.retain(|(_, body)| !body.trim().is_empty());
    out
}

fn looks_like_heading(paragraph: &str) -> bool {
    let words = paragraph.split_whitespace().count();
    // "Main line: (555) 010-2000" is a line of facts, "- May 26 - Memorial Day" a list item.
    let labelled_fact = paragraph.split_once(": ").is_some_and(|(_, value)| {
        value.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '(' | '$' | '+'))
    });
    !paragraph.contains('\n')
        && !paragraph.contains(" | ")
        && (1..=10).contains(&words)
        && !paragraph.ends_with(['.', '!', '?', ':', ';', ','])
        && !paragraph.starts_with(['-', '•', '*'])
        && !labelled_fact
        && !states_contact(paragraph)
}

/// An address, phone number or email: a fact to answer with, never a heading.
fn states_contact(line: &str) -> bool {
    use adam_providers::grounded::question::Want;
    [Want::Address, Want::Phone, Want::Email]
        .iter()
        .any(|w| w.found_in(line))
}

fn extract_markdown(text: &str) -> Vec<Section> {
    let options = MdOptions::ENABLE_TABLES
        | MdOptions::ENABLE_STRIKETHROUGH
        | MdOptions::ENABLE_TASKLISTS
        | MdOptions::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut sections = Sections::default();
    let mut path = HeadingPath::default();
    let mut body = String::new();
    let mut heading: Option<(u8, String)> = None;
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;
    let mut in_metadata = false;

    for event in MdParser::new_ext(text, options) {
        let sink = match (&mut heading, &mut cell) {
            (Some((_, h)), _) => h,
            (None, Some(c)) => c,
            (None, None) => &mut body,
        };
        match event {
            MdEvent::Start(Tag::Heading { level, .. }) => {
                sections.push(path.joined(), None, &body);
                body.clear();
                heading = Some((level as u8, String::new()));
            }
            MdEvent::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take() {
                    path.enter(level, &text);
                }
            }
            MdEvent::Start(Tag::MetadataBlock(_)) => in_metadata = true,
            MdEvent::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            MdEvent::Start(Tag::TableHead | Tag::TableRow) => row = Some(Vec::new()),
            MdEvent::End(TagEnd::TableHead | TagEnd::TableRow) => {
                if let Some(cells) = row.take() {
                    body.push_str(&cells.join(" | "));
                    body.push('\n');
                }
            }
            MdEvent::Start(Tag::TableCell) => cell = Some(String::new()),
            MdEvent::End(TagEnd::TableCell) => {
                if let (Some(text), Some(cells)) = (cell.take(), row.as_mut()) {
                    cells.push(tidy_line(&text));
                }
            }
            MdEvent::End(
                TagEnd::Paragraph
                | TagEnd::CodeBlock
                | TagEnd::Table
                | TagEnd::List(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::FootnoteDefinition,
            )
            | MdEvent::Rule => sink.push_str("\n\n"),
            MdEvent::End(TagEnd::Item) | MdEvent::HardBreak => sink.push('\n'),
            MdEvent::SoftBreak => sink.push(' '),
            MdEvent::Text(t)
            | MdEvent::Code(t)
            | MdEvent::InlineMath(t)
            | MdEvent::DisplayMath(t)
                if !in_metadata =>
            {
                sink.push_str(&t);
            }
            _ => {}
        }
    }
    sections.push(path.joined(), None, &body);
    sections.0
}

// ---------------------------------------------------------------------------------------
// PDF

fn extract_pdf(bytes: &[u8], limits: &Limits) -> Result<Vec<Section>, ExtractError> {
    let unreadable = |why: String| ExtractError(format!("the PDF could not be read: {why}"));
    let refused = |why: String| ExtractError(format!("the PDF was refused: {why}"));
    let limit = limits.max_uncompressed_bytes;
    let mut doc = guarded(|| pdf_checks::load(bytes, limit))
        .map_err(unreadable)?
        .map_err(refused)?
        .map_err(|e| unreadable(e.to_string()))?;
    // Like pdf-extract: try the empty user password (owner-only restrictions).
    if doc.is_encrypted() && !matches!(guarded(|| doc.decrypt("")), Ok(Ok(()))) {
        return Err(ExtractError(
            "the PDF is password-protected: upload an unprotected copy".to_owned(),
        ));
    }
    let pages = guarded(|| doc.get_pages()).map_err(unreadable)?;
    if pages.len() > limits.max_pdf_pages {
        return Err(ExtractError(format!(
            "the PDF has too many pages ({} > {})",
            pages.len(),
            limits.max_pdf_pages
        )));
    }
    guarded(|| pdf_checks::check(&doc, pages.values().copied(), limit))
        .map_err(unreadable)?
        .map_err(refused)?;
    let mut sections = Sections::default();
    let mut first_failure: Option<String> = None;
    let mut failed_pages = 0_usize;
    for &page in pages.keys() {
        let text = guarded(|| {
            let mut text = String::new();
            let mut output = pdf_extract::PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&doc, &mut output, page).map(|()| text)
        });
        match text {
            Ok(Ok(text)) => {
                let text = super::tables::text_tables(&unwrap_lines(&text));
                for (heading, body) in page_sections(&text) {
                    sections.push(heading, Some(page), &body);
                }
            }
            Ok(Err(e)) => {
                failed_pages += 1;
                first_failure.get_or_insert_with(|| format!("page {page}: {e}"));
            }
            Err(panic) => {
                failed_pages += 1;
                first_failure.get_or_insert_with(|| format!("page {page}: {panic}"));
            }
        }
    }
    match first_failure {
        Some(why) if sections.0.is_empty() => Err(unreadable(why)),
        Some(why) => {
            tracing::warn!(failed_pages, first = %why, "PDF pages skipped: their text could not be read");
            Ok(sections.0)
        }
        None => Ok(sections.0),
    }
}

/// Runs `f`, turning a panic (pdf-extract and lopdf may panic on malformed input) into an
/// error carrying the panic message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unexpected structure".to_owned());
        format!("malformed document ({message})")
    })
}

// ---------------------------------------------------------------------------------------
// DOCX

const DOCX_MAIN_PART: &str = "word/document.xml";

fn extract_docx(bytes: &[u8], limits: &Limits) -> Result<Vec<Section>, ExtractError> {
    let xml = read_docx_main_part(bytes, limits)?;
    let xml = String::from_utf8(xml).map_err(|_| {
        ExtractError("the Word document could not be read: its text is not UTF-8".to_owned())
    })?;
    parse_document_xml(&xml)
        .map_err(|e| ExtractError(format!("the Word document could not be read: {e}")))
}

fn mib(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10).div_ceil(MIB);
    if tenths.is_multiple_of(10) {
        format!("{} MiB", tenths / 10)
    } else {
        format!("{}.{} MiB", tenths / 10, tenths % 10)
    }
}

/// Checks the zip's central directory against `limits` before decompressing anything,
/// then reads `word/document.xml` without ever going past the size limit.
fn read_docx_main_part(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, ExtractError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        ExtractError(format!("the Word document could not be read: {e}"))
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    if archive.len() > limits.max_zip_entries {
        return Err(ExtractError(format!(
            "the Word document has too many parts ({} > {})",
            archive.len(),
            limits.max_zip_entries
        )));
    }
    let mut entries = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| unreadable(&e))?;
        if entry.encrypted() {
            return Err(ExtractError(
                "the Word document is encrypted: upload an unprotected copy".to_owned(),
            ));
        }
        entries.push((
            entry.name().to_owned(),
            entry.size(),
            entry.compressed_size(),
        ));
    }
    let total = entries.iter().fold(0_u64, |sum, e| sum.saturating_add(e.1));
    let total_compressed = entries.iter().fold(0_u64, |sum, e| sum.saturating_add(e.2));
    if total > limits.max_uncompressed_bytes {
        return Err(ExtractError(format!(
            "the Word document is too large once uncompressed ({} > {})",
            mib(total),
            mib(limits.max_uncompressed_bytes)
        )));
    }
    let too_compressed = |what: &str| {
        ExtractError(format!(
            "the Word document is compressed suspiciously well ({what} expands more than {} times): refusing it as a possible zip bomb",
            limits.max_ratio
        ))
    };
    for (name, size, compressed) in &entries {
        if *size >= RATIO_FLOOR && *size > compressed.saturating_mul(limits.max_ratio) {
            return Err(too_compressed(name));
        }
    }
    if total >= RATIO_FLOOR && total > total_compressed.saturating_mul(limits.max_ratio) {
        return Err(too_compressed("the archive as a whole"));
    }

    let entry = archive.by_name(DOCX_MAIN_PART).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => ExtractError(format!(
            "the Word document has no main text part ({DOCX_MAIN_PART})"
        )),
        e => unreadable(&e),
    })?;
    let mut xml = Vec::new();
    entry
        .take(limits.max_uncompressed_bytes.saturating_add(1))
        .read_to_end(&mut xml)
        .map_err(|e| unreadable(&e))?;
    if xml.len() as u64 > limits.max_uncompressed_bytes {
        return Err(ExtractError(format!(
            "the Word document is too large once uncompressed (more than {}; its sizes are misdeclared)",
            mib(limits.max_uncompressed_bytes)
        )));
    }
    Ok(xml)
}

/// A table row being read (tables can nest inside cells).
#[derive(Default)]
struct Row {
    cells: Vec<String>,
    cell: String,
}

/// A paragraph being read (text boxes can nest paragraphs inside a run).
#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
}

/// The heading level of a paragraph style id: "Title" is 0, "Heading1".."Heading9" 1..9.
fn heading_level(style: &str) -> Option<u8> {
    let style = style.to_ascii_lowercase().replace(' ', "");
    if style == "title" {
        return Some(0);
    }
    let level: u8 = style.strip_prefix("heading")?.parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}

fn append_spaced(to: &mut String, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    if !to.trim().is_empty() {
        to.push(' ');
    }
    to.push_str(text.trim());
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

fn general_ref(r: &BytesRef<'_>) -> Cow<'static, str> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Cow::Owned(c.to_string()),
        _ => Cow::Borrowed(quick_xml::escape::resolve_predefined_entity(r).unwrap_or("")),
    }
}

/// Reads `word/document.xml`: paragraphs (`w:p`) with their text (`w:t`, `w:tab`,
/// `w:br`), headings from the paragraph style, table rows (`w:tr`) as cells joined with
/// " | ".
fn parse_document_xml(xml: &str) -> Result<Vec<Section>, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut sections = Sections::default();
    let mut path = HeadingPath::default();
    let mut body = String::new();
    let mut paragraphs: Vec<Paragraph> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let (mut in_text, mut in_run, mut in_ppr) = (false, 0_usize, 0_usize);

    loop {
        match reader.read_event()? {
            XmlEvent::Eof => break,
            XmlEvent::Start(e) => match local_name(&e).as_str() {
                "p" => paragraphs.push(Paragraph::default()),
                "r" => in_run += 1,
                "t" => in_text = in_run > 0,
                "pPr" => in_ppr += 1,
                "tr" => rows.push(Row::default()),
                "tc" => {
                    if let Some(row) = rows.last_mut() {
                        row.cell.clear();
                    }
                }
                "pStyle" if in_ppr > 0 => set_style(&e, paragraphs.last_mut()),
                _ => {}
            },
            XmlEvent::Empty(e) => match local_name(&e).as_str() {
                "tab" if in_run > 0 && in_ppr == 0 => {
                    if let Some(p) = paragraphs.last_mut() {
                        p.text.push('\t');
                    }
                }
                "br" | "cr" if in_run > 0 => {
                    if let Some(p) = paragraphs.last_mut() {
                        p.text.push('\n');
                    }
                }
                "pStyle" if in_ppr > 0 => set_style(&e, paragraphs.last_mut()),
                _ => {}
            },
            XmlEvent::Text(t) if in_text => {
                if let Some(p) = paragraphs.last_mut() {
                    p.text.push_str(&t.xml10_content());
                }
            }
            XmlEvent::CData(t) if in_text => {
                if let Some(p) = paragraphs.last_mut() {
                    p.text.push_str(&t);
                }
            }
            XmlEvent::GeneralRef(r) if in_text => {
                if let Some(p) = paragraphs.last_mut() {
                    p.text.push_str(&general_ref(&r));
                }
            }
            XmlEvent::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "r" => in_run = in_run.saturating_sub(1),
                "pPr" => in_ppr = in_ppr.saturating_sub(1),
                "p" => {
                    let Some(paragraph) = paragraphs.pop() else {
                        continue;
                    };
                    if let Some(outer) = paragraphs.last_mut() {
                        // A text box inside a run: its text joins the outer paragraph.
                        append_spaced(&mut outer.text, &paragraph.text);
                    } else if let Some(row) = rows.last_mut() {
                        append_spaced(&mut row.cell, &tidy_line(&paragraph.text));
                    } else if let Some(level) = paragraph.style.as_deref().and_then(heading_level)
                        && !tidy_line(&paragraph.text).is_empty()
                    {
                        sections.push(path.joined(), None, &body);
                        body.clear();
                        path.enter(level, &paragraph.text);
                    } else {
                        body.push_str(&paragraph.text);
                        body.push_str("\n\n");
                    }
                }
                "tc" => {
                    if let Some(row) = rows.last_mut() {
                        let cell = std::mem::take(&mut row.cell);
                        row.cells.push(tidy_line(&cell));
                    }
                }
                "tr" => {
                    let Some(row) = rows.pop() else { continue };
                    let line = row
                        .cells
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join(" | ");
                    if let Some(outer) = rows.last_mut() {
                        append_spaced(&mut outer.cell, &line);
                    } else if !line.is_empty() {
                        body.push_str(&line);
                        body.push('\n');
                    }
                }
                "tbl" if rows.is_empty() => body.push_str("\n\n"),
                _ => {}
            },
            _ => {}
        }
    }
    sections.push(path.joined(), None, &body);
    Ok(sections.0)
}

fn set_style(e: &BytesStart<'_>, paragraph: Option<&mut Paragraph>) {
    let Some(paragraph) = paragraph else { return };
    let value = e
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == "val")
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(Cow::into_owned)
        });
    paragraph.style = value;
}

// ---------------------------------------------------------------------------------------
// Display name

/// Longest display name, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// The label shown for an uploaded document: the client's file name's last path
/// component (after `/` or `\`), without control or bidirectional-override characters,
/// whitespace collapsed, leading/trailing dots and spaces trimmed, at most 200 characters;
/// "document" if nothing is left. It is never used as a path.
pub fn display_name(client_filename: &str) -> String {
    let last = client_filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(client_filename);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let trim = |s: &str| s.trim_matches(|c: char| c == '.' || c == ' ').to_owned();
    let trimmed = trim(&collapsed);
    let limited = trim(
        &trimmed
            .chars()
            .take(MAX_DISPLAY_NAME_CHARS)
            .collect::<String>(),
    );
    if limited.is_empty() {
        "document".to_owned()
    } else {
        limited
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod text_heading_tests {
    use super::*;

    #[test]
    fn short_unpunctuated_lines_of_a_text_file_become_headings() {
        let sections = extract_text(
            "Buying policies\n\nDeposits\n\nA deposit of 500 dollars holds a car.\n\n\
             Returns\n\nUsed cars can be returned within 3 days.\nNew cars cannot.\n",
        );
        let got: Vec<(Option<&str>, &str)> = sections
            .iter()
            .map(|s| (s.heading.as_deref(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("Buying policies > Deposits"),
                    "A deposit of 500 dollars holds a car."
                ),
                (
                    Some("Buying policies > Returns"),
                    "Used cars can be returned within 3 days.\nNew cars cannot."
                ),
            ]
        );
        // PDF pages: title lines head the sentences below them; wrapped lines do not.
        let page = page_sections(
            "Oil and filters\nA synthetic oil change costs 79 dollars.\nTires\nA tire rotation\ncosts 25 dollars.\n",
        );
        assert_eq!(
            page,
            [
                (
                    Some("Oil and filters".to_owned()),
                    "A synthetic oil change costs 79 dollars.\n".to_owned()
                ),
                (
                    Some("Tires".to_owned()),
                    "A tire rotation\ncosts 25 dollars.\n".to_owned()
                ),
            ]
        );
        // A text without such lines is one section of paragraphs.
        let plain = extract_text("One sentence.\n\nAnother one.");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].heading, None);
    }

    #[test]
    fn a_pdf_page_of_a_million_blank_lines_is_read_in_one_pass() {
        // Whitespace glyphs drawn line under line come back as blank lines; each line used
        // to search the whole run for its neighbours (10^12 steps here: a hung ingestion).
        let blank = "\n".repeat(1_000_000);
        let page = page_sections(&format!(
            "Tires\n{blank}A tire rotation costs 25 dollars.\n"
        ));
        assert_eq!(page.len(), 1, "one titled section");
        assert_eq!(page[0].0.as_deref(), Some("Tires"));
        assert_eq!(page[0].1.trim(), "A tire rotation costs 25 dollars.");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    use super::*;

    /// A minimal valid PDF: one page per entry, each page's lines drawn with Helvetica
    /// (Type1, WinAnsiEncoding) 16 points apart, and a cross-reference table with the
    /// objects' real byte offsets.
    fn pdf(pages: &[&[&str]]) -> Vec<u8> {
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {} >>",
                (0..pages.len())
                    .map(|i| format!("{} 0 R", 4 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(" "),
                pages.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        ];
        for (i, lines) in pages.iter().enumerate() {
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            let shown: Vec<String> = lines.iter().map(|l| format!("({l}) Tj")).collect();
            let content = format!("BT /F1 12 Tf 72 720 Td {} ET", shown.join(" 0 -16 Td "));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
        }
        let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
        }
        let xref_at = out.len();
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            xref.push_str(&format!("{offset:010} 00000 n \n"));
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        ));
        out.extend_from_slice(xref.as_bytes());
        out
    }

    fn zip_of(files: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            writer.start_file(*name, options).expect("start zip entry");
            writer.write_all(data).expect("write zip entry");
        }
        writer.finish().expect("finish zip").into_inner()
    }

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    fn document_xml(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}<w:sectPr/></w:body></w:document>"#
        )
    }

    fn docx(body: &str) -> Vec<u8> {
        zip_of(
            &[
                ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
                ("word/document.xml", document_xml(body).as_bytes()),
            ],
            CompressionMethod::Deflated,
        )
    }

    fn para(style: Option<&str>, text: &str) -> String {
        let ppr = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        format!(r#"<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
    }

    fn sample_docx() -> Vec<u8> {
        let cell = |t: &str| format!("<w:tc>{}</w:tc>", para(None, t));
        let body = [
            para(Some("Heading1"), "Title"),
            // Runs with formatting, a tab, an escaped ampersand; the tab stop in the
            // paragraph properties and the field code are not text.
            r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t xml:space="preserve">Opening hours are </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>8 to 6</w:t></w:r><w:r><w:tab/><w:t>weekdays &amp; Saturdays.</w:t></w:r><w:r><w:instrText>PAGE</w:instrText></w:r></w:p>"#.to_owned(),
            para(Some("Heading2"), "Sub"),
            para(None, "Oil change costs 49 dollars."),
            format!(
                "<w:tbl><w:tr>{}{}</w:tr><w:tr>{}{}</w:tr></w:tbl>",
                cell("Service"),
                cell("Price"),
                cell("Tyres"),
                cell("80")
            ),
            para(None, "After the table."),
            para(Some("Heading1"), "Second"),
            para(None, "Back at the top level."),
        ]
        .concat();
        docx(&body)
    }

    fn err_text<T: std::fmt::Debug>(result: Result<T, ExtractError>) -> String {
        result.expect_err("extraction should fail").0
    }

    // -- sniff ------------------------------------------------------------------------

    #[test]
    fn sniff_accepts_the_four_kinds_by_content() {
        let pdf = pdf(&[&["Hello"]]);
        assert_eq!(sniff(&pdf, "manual.pdf"), Ok(DocKind::Pdf));
        assert_eq!(sniff(&pdf, "no-extension"), Ok(DocKind::Pdf));
        assert_eq!(sniff(&pdf, "manual.bin"), Ok(DocKind::Pdf));
        assert_eq!(sniff(&sample_docx(), "Report.DOCX"), Ok(DocKind::Docx));
        assert_eq!(
            sniff(b"# Hours\n\nOpen 8-6.", "faq.md"),
            Ok(DocKind::Markdown)
        );
        assert_eq!(sniff(b"# Hours", "faq.markdown"), Ok(DocKind::Markdown));
        assert_eq!(sniff(b"# Hours", "faq.txt"), Ok(DocKind::Text));
        assert_eq!(
            sniff("\u{FEFF}Caf\u{e9} hours".as_bytes(), "notes"),
            Ok(DocKind::Text)
        );
        // Markdown and text names are interchangeable.
        assert_eq!(sniff(b"plain", "x.md"), Ok(DocKind::Markdown));
    }

    #[test]
    fn sniff_finds_a_pdf_header_after_leading_junk_but_not_in_prose() {
        let mut shifted = b"\r\n  junk\n".to_vec();
        shifted.extend(pdf(&[&["Hello"]]));
        assert_eq!(sniff(&shifted, "a.pdf"), Ok(DocKind::Pdf));
        assert_eq!(
            sniff(b"PDF files begin with %PDF- then a version.", "notes.txt"),
            Ok(DocKind::Text)
        );
    }

    #[test]
    fn sniff_rejects_binary_formats_whatever_the_name() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        match sniff(&png, "x.pdf") {
            Err(SniffError::Unsupported(what)) => assert!(what.contains("PNG"), "{what}"),
            other => panic!("PNG named x.pdf: {other:?}"),
        }
        for (bytes, named) in [
            (&b"\xFF\xD8\xFF\xE0\0\x10JFIF"[..], "JPEG"),
            (b"GIF89a\x01\0", "GIF"),
            (b"\x7FELF\x02\x01\x01", "ELF"),
            (b"\x1F\x8B\x08\0", "gzip"),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0", ".doc"),
        ] {
            match sniff(bytes, "upload.txt") {
                Err(SniffError::Unsupported(what)) => assert!(what.contains(named), "{what}"),
                other => panic!("{named}: {other:?}"),
            }
        }
    }

    #[test]
    fn sniff_rejects_a_zip_that_is_not_a_word_document() {
        let zip = zip_of(&[("readme.txt", b"hello")], CompressionMethod::Deflated);
        assert_eq!(
            sniff(&zip, "report.docx"),
            Err(SniffError::Unsupported(
                "a zip archive that is not a Word document".to_owned()
            ))
        );
    }

    #[test]
    fn sniff_rejects_binary_or_empty_text() {
        assert!(matches!(
            sniff(b"abc\0def", "a.txt"),
            Err(SniffError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(b"\xC3\x28 not utf-8", "a.txt"),
            Err(SniffError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(b" \n\t ", "a.txt"),
            Err(SniffError::Unsupported(_))
        ));
    }

    #[test]
    fn sniff_reports_an_extension_that_contradicts_the_content() {
        assert_eq!(
            sniff(&pdf(&[&["Hello"]]), "notes.txt"),
            Err(SniffError::Mismatch {
                declared: "txt".to_owned(),
                actual: DocKind::Pdf
            })
        );
        assert_eq!(
            sniff(b"just text", "scan.PDF"),
            Err(SniffError::Mismatch {
                declared: "pdf".to_owned(),
                actual: DocKind::Text
            })
        );
        let err = sniff(&sample_docx(), "slides.pdf").expect_err("docx named .pdf");
        assert_eq!(
            err.to_string(),
            "the file name ends in .pdf but its content is a Word document"
        );
    }

    // -- PDF ----------------------------------------------------------------------------

    #[test]
    fn pdf_text_comes_back_per_page() {
        let bytes = pdf(&[
            &["Service department opens at 8 am.", "Closed on Sundays."],
            &["Oil change costs 49 dollars."],
        ]);
        let sections = extract(DocKind::Pdf, &bytes, &Limits::default()).expect("extract");
        assert_eq!(sections.len(), 2, "{sections:?}");
        assert_eq!(sections[0].page, Some(1));
        assert_eq!(sections[1].page, Some(2));
        assert!(sections.iter().all(|s| s.heading.is_none()));
        assert_eq!(
            sections[0].text,
            "Service department opens at 8 am.\nClosed on Sundays."
        );
        assert_eq!(sections[1].text, "Oil change costs 49 dollars.");
    }

    #[test]
    fn pdf_with_too_many_pages_is_refused() {
        let bytes = pdf(&[&["one"], &["two"], &["three"]]);
        let limits = Limits {
            max_pdf_pages: 2,
            ..Limits::default()
        };
        let message = err_text(extract(DocKind::Pdf, &bytes, &limits));
        assert!(message.contains("too many pages (3 > 2)"), "{message}");
    }

    #[test]
    fn pdf_without_text_says_so() {
        let bytes = pdf(&[&[]]);
        let message = err_text(extract(DocKind::Pdf, &bytes, &Limits::default()));
        assert_eq!(message, "no text found (scanned PDF?)");
    }

    // -- hostile PDFs (fuzz/corpus/extract_pdf/hostile_*): each hung, aborted or exhausted
    // the server before knowledge/pdf_checks.rs

    /// A PDF of these objects (numbered from 1; object 1 is the catalog).
    fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(object);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref_at = out.len();
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            xref.push_str(&format!("{offset:010} 00000 n \n"));
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        ));
        out.extend_from_slice(xref.as_bytes());
        out
    }

    fn stream_object(dict: &str, content: &[u8]) -> Vec<u8> {
        let mut out = format!("<< /Length {} {dict} >>\nstream\n", content.len()).into_bytes();
        out.extend_from_slice(content);
        out.extend_from_slice(b"\nendstream");
        out
    }

    /// Catalog, page tree of one page (object 4), a font and the page's content (object 5).
    fn one_page_pdf(page: &str, content: Vec<u8>, more: Vec<Vec<u8>>) -> Vec<u8> {
        let mut objects = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec(),
            page.as_bytes().to_vec(),
            content,
        ];
        objects.extend(more);
        pdf_of(&objects)
    }

    const HELLO: &[u8] = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET";

    #[test]
    fn a_page_that_is_its_own_parent_is_refused_not_a_stack_overflow() {
        // No MediaBox: pdf-extract looked it up through /Parent for ever.
        let bytes = one_page_pdf(
            "<< /Type /Page /Parent 4 0 R /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
            stream_object("", HELLO),
            vec![],
        );
        let message = err_text(extract(DocKind::Pdf, &bytes, &Limits::default()));
        assert!(message.contains("page tree loops"), "{message}");
    }

    #[test]
    fn a_drawing_that_draws_itself_is_refused_not_a_stack_overflow() {
        // The form has no /Resources, so it uses the page's, which name it.
        let bytes = one_page_pdf(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> /XObject << /X1 6 0 R >> >> /Contents 5 0 R >>",
            stream_object("", b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET /X1 Do"),
            vec![stream_object(
                "/Type /XObject /Subtype /Form /BBox [0 0 10 10]",
                b"/X1 Do",
            )],
        );
        let message = err_text(extract(DocKind::Pdf, &bytes, &Limits::default()));
        assert!(message.contains("nests drawings"), "{message}");
    }

    #[test]
    fn a_pdf_stream_that_decompresses_past_the_limit_is_refused() {
        use std::io::Write;
        let zlib = |data: &[u8]| {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(data).expect("compress");
            encoder.finish().expect("compress")
        };
        // 32 MiB of drawing operators, compressed twice into a few KiB.
        let content = b"0 0 m\n".repeat((32 << 20) / 6);
        let bytes = one_page_pdf(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
            stream_object(
                "/Filter [/FlateDecode /FlateDecode]",
                &zlib(&zlib(&content)),
            ),
            vec![],
        );
        assert!(bytes.len() < 100_000, "{}", bytes.len());
        let limits = Limits {
            max_uncompressed_bytes: 8 << 20,
            ..Limits::default()
        };
        let message = err_text(extract(DocKind::Pdf, &bytes, &limits));
        assert!(message.contains("decompression bomb"), "{message}");
        // The same in an object stream, which lopdf decompresses while loading the file.
        let mut objects = b"6 0 [".to_vec();
        objects.extend(b"0 ".repeat(16 << 20));
        objects.push(b']');
        let bytes = one_page_pdf(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
            stream_object("", HELLO),
            vec![stream_object(
                "/Type /ObjStm /N 1 /First 4 /Filter [/FlateDecode /FlateDecode]",
                &zlib(&zlib(&objects)),
            )],
        );
        let message = err_text(extract(DocKind::Pdf, &bytes, &limits));
        assert!(message.contains("decompression bomb"), "{message}");
    }

    #[test]
    fn a_page_with_more_content_than_a_page_needs_is_refused() {
        use std::io::Write;
        // Found by fuzz/extract_pdf (hostile_partial_flate.pdf): a corrupted bomb that
        // inflates to 40 MiB of operators, within the decompression limit, took 1.1 GB and
        // minutes to parse.
        let content = b"0 0 m\n".repeat((5 << 20) / 6);
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&content).expect("compress");
        let bytes = one_page_pdf(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
            stream_object("/Filter /FlateDecode", &encoder.finish().expect("compress")),
            vec![],
        );
        let message = err_text(extract(DocKind::Pdf, &bytes, &Limits::default()));
        assert!(
            message.contains("a page draws more than 4 MiB"),
            "{message}"
        );
    }

    #[test]
    fn corrupt_pdfs_are_errors_not_panics() {
        let good = pdf(&[&["Hello there"], &["Second page"]]);
        let truncated = &good[..good.len() / 2];
        let message = err_text(extract(DocKind::Pdf, truncated, &Limits::default()));
        assert!(
            message.starts_with("the PDF could not be read"),
            "{message}"
        );

        let garbage = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF".to_vec();
        assert!(extract(DocKind::Pdf, &garbage, &Limits::default()).is_err());

        // Every prefix and a few byte flips: whatever the outcome, nothing may panic out.
        for cut in (0..good.len()).step_by(23) {
            let _ = extract(DocKind::Pdf, &good[..cut], &Limits::default());
        }
        for at in (0..good.len()).step_by(31) {
            let mut flipped = good.clone();
            flipped[at] ^= 0x5A;
            let _ = extract(DocKind::Pdf, &flipped, &Limits::default());
        }
    }

    // -- DOCX ---------------------------------------------------------------------------

    #[test]
    fn docx_sections_follow_the_heading_styles_and_keep_tables() {
        let sections = extract(DocKind::Docx, &sample_docx(), &Limits::default()).expect("ok");
        let view: Vec<(Option<&str>, &str)> = sections
            .iter()
            .map(|s| (s.heading.as_deref(), s.text.as_str()))
            .collect();
        assert_eq!(
            view,
            vec![
                (
                    Some("Title"),
                    "Opening hours are 8 to 6 weekdays & Saturdays."
                ),
                (
                    Some("Title > Sub"),
                    "Oil change costs 49 dollars.\n\nTyres — Price: 80.\n\nAfter the table."
                ),
                (Some("Second"), "Back at the top level."),
            ]
        );
        assert!(sections.iter().all(|s| s.page.is_none()));
    }

    #[test]
    fn docx_title_style_heads_the_path() {
        let body = [
            para(Some("Title"), "Owner's Guide"),
            para(Some("Heading1"), "Service"),
            para(Some("Heading3"), "Hours"),
            para(None, "8 to 6."),
            para(Some("Heading2"), "Prices"),
            para(None, "Fair."),
        ]
        .concat();
        let sections = extract(DocKind::Docx, &docx(&body), &Limits::default()).expect("ok");
        let headings: Vec<_> = sections.iter().map(|s| s.heading.as_deref()).collect();
        assert_eq!(
            headings,
            vec![
                Some("Owner's Guide > Service > Hours"),
                Some("Owner's Guide > Service > Prices")
            ]
        );
    }

    #[test]
    fn docx_without_text_or_with_broken_xml_is_an_error() {
        let message = err_text(extract(DocKind::Docx, &docx(""), &Limits::default()));
        assert_eq!(message, "no text found in the document");
        let broken = zip_of(
            &[("word/document.xml", b"<w:document><w:body><w:p></w:body>")],
            CompressionMethod::Deflated,
        );
        let message = err_text(extract(DocKind::Docx, &broken, &Limits::default()));
        assert!(
            message.starts_with("the Word document could not be read"),
            "{message}"
        );
        let message = err_text(extract(
            DocKind::Docx,
            b"PK\x03\x04 nope",
            &Limits::default(),
        ));
        assert!(
            message.starts_with("the Word document could not be read"),
            "{message}"
        );
    }

    fn padded_docx(padding: usize) -> Vec<u8> {
        let body = format!(
            "{}<w:p><w:r><w:t>{}</w:t></w:r></w:p>",
            para(None, "Real text."),
            " ".repeat(padding)
        );
        docx(&body)
    }

    #[test]
    fn docx_expanding_past_the_size_limit_is_refused_before_decompression() {
        let bytes = padded_docx(10 * 1024 * 1024);
        let limits = Limits {
            max_uncompressed_bytes: MIB,
            ..Limits::default()
        };
        let message = err_text(extract(DocKind::Docx, &bytes, &limits));
        assert!(
            message.contains("too large once uncompressed (10.1 MiB > 1 MiB)"),
            "{message}"
        );
    }

    #[test]
    fn docx_with_an_extreme_compression_ratio_is_refused() {
        // 5 MiB is well under the default size limit, but spaces compress ~1000:1.
        let bytes = padded_docx(5 * 1024 * 1024);
        assert!(bytes.len() < 100 * 1024, "fixture is {} bytes", bytes.len());
        let message = err_text(extract(DocKind::Docx, &bytes, &Limits::default()));
        assert!(message.contains("zip bomb"), "{message}");
        assert!(message.contains("word/document.xml"), "{message}");
        // The same document is fine once the ratio is allowed.
        let lenient = Limits {
            max_ratio: 10_000,
            ..Limits::default()
        };
        let sections = extract(DocKind::Docx, &bytes, &lenient).expect("lenient");
        assert_eq!(sections[0].text, "Real text.");
    }

    #[test]
    fn docx_with_too_many_entries_is_refused() {
        let names: Vec<String> = (0..20).map(|i| format!("word/media/{i}.bin")).collect();
        let main = document_xml(&para(None, "Hi"));
        let mut files: Vec<(&str, &[u8])> = vec![("word/document.xml", main.as_bytes())];
        files.extend(names.iter().map(|n| (n.as_str(), &b"x"[..])));
        let bytes = zip_of(&files, CompressionMethod::Stored);
        let limits = Limits {
            max_zip_entries: 10,
            ..Limits::default()
        };
        let message = err_text(extract(DocKind::Docx, &bytes, &limits));
        assert!(message.contains("too many parts (21 > 10)"), "{message}");
        assert!(extract(DocKind::Docx, &bytes, &Limits::default()).is_ok());
    }

    /// Rewrites the declared uncompressed size of every entry (local and central headers).
    fn lie_about_sizes(zip: &mut [u8], size: u32) {
        let size = size.to_le_bytes();
        let mut at = 0;
        while at + 4 <= zip.len() {
            match &zip[at..at + 4] {
                b"PK\x03\x04" => zip[at + 22..at + 26].copy_from_slice(&size),
                b"PK\x01\x02" => zip[at + 24..at + 28].copy_from_slice(&size),
                _ => {}
            }
            at += 1;
        }
    }

    #[test]
    fn docx_lying_about_its_size_cannot_make_us_read_past_the_limit() {
        let mut bytes = padded_docx(3 * 1024 * 1024);
        lie_about_sizes(&mut bytes, 1000);
        let limits = Limits {
            max_uncompressed_bytes: MIB,
            ..Limits::default()
        };
        let message = err_text(extract(DocKind::Docx, &bytes, &limits));
        assert!(
            message.contains("too large once uncompressed (more than 1 MiB"),
            "{message}"
        );
    }

    // -- Markdown and text -----------------------------------------------------------

    #[test]
    fn markdown_sections_carry_the_heading_path() {
        let md = "---\ntitle: front matter\n---\n\nIntro *text* with `code` and a [link](http://x).\n\n\
# Service\n\nWe fix   cars.\n\n## Hours\n\n- Mon to Fri: 8-6\n- Sat: 9-1\n\n\
### Holidays\n\nClosed.\n\n## Prices\n\n| Job | Price |\n|---|---|\n| Oil | 49 |\n\n\
```\nlet x = 1;\n```\n\n# Sales\n\nNew and used.\n";
        let sections = extract(DocKind::Markdown, md.as_bytes(), &Limits::default()).expect("ok");
        let view: Vec<(Option<&str>, &str)> = sections
            .iter()
            .map(|s| (s.heading.as_deref(), s.text.as_str()))
            .collect();
        assert_eq!(
            view,
            vec![
                (None, "Intro text with code and a link."),
                (Some("Service"), "We fix cars."),
                (Some("Service > Hours"), "Mon to Fri: 8-6\nSat: 9-1"),
                (Some("Service > Hours > Holidays"), "Closed."),
                (Some("Service > Prices"), "Oil — Price: 49.\n\nlet x = 1;"),
                (Some("Sales"), "New and used."),
            ]
        );
    }

    #[test]
    fn short_pdf_lines_one_after_another_are_rows_not_headings() {
        // A staff table printed without punctuation: each row looks like a title, but
        // taken for one it would head an empty section and be lost.
        let page = "Our people\n\nMeet the team:\n\nName Job Desk\n\nIlse Varga Owner Office\n\n\
                    Tomas Reyes Workshop Manager Workshop\n\nOpening times\n\nWe open at 8 am.";
        let sections = page_sections(page);
        let all: String = sections.iter().map(|(_, body)| body.as_str()).collect();
        assert!(all.contains("Ilse Varga Owner Office"), "{sections:?}");
        assert!(
            all.contains("Tomas Reyes Workshop Manager Workshop"),
            "{sections:?}"
        );
        // The last short line before a sentence still heads it.
        assert!(
            sections
                .iter()
                .any(|(h, body)| h.as_deref() == Some("Opening times") && body.contains("8 am")),
            "{sections:?}"
        );
    }

    #[test]
    fn pdf_lines_wrapped_mid_sentence_are_joined_and_rows_are_not() {
        let page = "Routine maintenance is the heart of what we do, and a full synthetic oil change costs\n\n\
                    $69 for most models, and our technicians will tell you honestly what else it needs.\n\n\
                    Service (541) 555-0152 7:00 am - 6:00 pm 8:00 am - 2:00 pm Closed\n\n\
                    Parts (541) 555-0163 7:30 am - 5:30 pm 8:00 am - 1:00 pm Closed\n\
                    - January 1 - New Year's Day\n\
                    - July 4 - Independence Day";
        assert_eq!(
            unwrap_lines(page),
            "Routine maintenance is the heart of what we do, and a full synthetic oil change costs \
             $69 for most models, and our technicians will tell you honestly what else it needs.\n\n\
             Service (541) 555-0152 7:00 am - 6:00 pm 8:00 am - 2:00 pm Closed\n\n\
             Parts (541) 555-0163 7:30 am - 5:30 pm 8:00 am - 1:00 pm Closed\n\
             - January 1 - New Year's Day\n\
             - July 4 - Independence Day"
        );
    }

    #[test]
    fn dot_leaders_become_a_dash_and_contact_lines_are_no_headings() {
        assert_eq!(
            tidy_line("Parts counter .......... (920) 555-0152"),
            "Parts counter — (920) 555-0152"
        );
        assert_eq!(tidy_line("Wait... what?"), "Wait... what?");
        assert!(looks_like_heading("Body shop hours"));
        assert!(!looks_like_heading("Main line: (555) 010-2000"));
        assert!(!looks_like_heading("4410 Quarry Ridge Road, Bend"));
        assert!(!looks_like_heading("- May 26 - Memorial Day"));
    }

    #[test]
    fn csv_documents_are_read_as_one_record_per_row() {
        let csv = "Model,Trim,Price\nCorvo,LX,\"$18,400\"\nCorvo,EX,\"$21,900\"\n";
        assert_eq!(sniff(csv.as_bytes(), "stock.csv"), Ok(DocKind::Csv));
        let sections = extract(DocKind::Csv, csv.as_bytes(), &Limits::default()).expect("ok");
        assert_eq!(
            sections[0].text,
            "Corvo — Trim: LX; Price: $18,400.\nCorvo — Trim: EX; Price: $21,900."
        );
    }

    #[test]
    fn text_keeps_paragraphs_and_tidies_whitespace() {
        let text = "\u{FEFF}  First   line\r\nsecond\tline\n\n\n\nNext  paragraph. \n";
        let sections = extract(DocKind::Text, text.as_bytes(), &Limits::default()).expect("ok");
        assert_eq!(
            sections,
            vec![Section {
                heading: None,
                page: None,
                text: "First line\nsecond line\n\nNext paragraph.".to_owned()
            }]
        );
        let message = err_text(extract(DocKind::Text, b" \n ", &Limits::default()));
        assert_eq!(message, "no text found in the document");
    }

    // -- display name -----------------------------------------------------------------

    #[test]
    fn display_name_is_a_safe_label() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(display_name("re\u{0}po\u{7}rt\n.pdf"), "report.pdf");
        assert_eq!(display_name("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(
            display_name("  ..  Service   Guide 2024.pdf. "),
            "Service Guide 2024.pdf"
        );
        assert_eq!(display_name(""), "document");
        assert_eq!(display_name("/"), "document");
        assert_eq!(display_name(".."), "document");
        let long = format!("{}.pdf", "é".repeat(300));
        let shown = display_name(&long);
        assert_eq!(shown.chars().count(), 200);
        assert!(shown.chars().all(|c| c == 'é'));
    }
}
