//! Any upload as ingestion reads it: the file name's extension and content sniffing decide
//! the kind (Markdown and plain text mostly, from this input), then text extraction.
//!
//! Input: a selector byte choosing the client's file name (`.md`, `.txt`, `.markdown`,
//! none), then the file.

#![no_main]

use adam::knowledge::extract::{Limits, display_name, extract, sniff};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["notes.md", "notes.txt", "../Notes.MARKDOWN", "notes"];

fuzz_target!(|input: &[u8]| adam_fuzz::with_server_panics(|| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let name = NAMES[usize::from(selector) % NAMES.len()];
    assert!(!display_name(name).is_empty());
    let Ok(kind) = sniff(data, name) else {
        return;
    };
    adam_fuzz::check_sections(extract(kind, data, &Limits::default()));
}));
