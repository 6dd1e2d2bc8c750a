//! Helpers shared by the fuzz targets.

use adam::knowledge::extract::{ExtractError, Section};

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `body` the way the server runs an extractor: panics unwind without a word (the PDF
/// extractor catches pdf-extract's and refuses the file; libfuzzer-sys's own hook would
/// abort on the first one). A panic that escapes `body` is printed and aborts: a finding.
pub fn with_server_panics(body: impl FnOnce()) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string());
        }))
    });
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        LAST_PANIC.with(|last| eprintln!("panic escaped the extractor: {}", last.borrow()));
        std::process::abort();
    }
}

/// What ingestion relies on in an extraction's result.
pub fn check_sections(result: Result<Vec<Section>, ExtractError>) {
    match result {
        Ok(sections) => {
            assert!(!sections.is_empty(), "an empty extraction is an error");
            for section in sections {
                assert!(!section.text.is_empty(), "empty sections are dropped");
                assert_eq!(section.text.trim(), section.text, "text is tidied");
                if let Some(heading) = section.heading {
                    assert!(!heading.is_empty(), "an empty heading is none");
                }
            }
        }
        Err(e) => assert!(!e.0.is_empty(), "a refusal says why"),
    }
}
