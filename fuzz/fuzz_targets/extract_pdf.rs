//! An uploaded PDF as ingestion reads it: content sniffing, then text extraction with the
//! default limits (pdf-extract and lopdf behind a panic guard).
//!
//! Panics inside the guard are the extractor's documented way of refusing a malformed
//! file, so the target lets them unwind quietly as the server does; a panic that escapes
//! `extract`, an abort, a stack overflow, a leak of memory or a hang is a finding.

#![no_main]

use adam::knowledge::extract::{DocKind, Limits, extract, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| adam_fuzz::with_server_panics(|| {
    if sniff(data, "upload.pdf") != Ok(DocKind::Pdf) {
        return;
    }
    adam_fuzz::check_sections(extract(DocKind::Pdf, data, &Limits::default()));
}));
