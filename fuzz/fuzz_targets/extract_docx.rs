//! An uploaded Word document as ingestion reads it: content sniffing, the zip-bomb checks,
//! then `word/document.xml` to sections.
//!
//! Input: a selector byte, then either (0) the `.docx` file itself, or (1) the text of
//! `word/document.xml`, zipped here into a minimal valid document so the XML reader gets
//! the mutations that would otherwise break the archive's checksums.

#![no_main]

use std::io::{Cursor, Write};

use adam::knowledge::extract::{DocKind, Limits, extract, sniff};
use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;

fuzz_target!(|input: &[u8]| adam_fuzz::with_server_panics(|| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let zipped;
    let docx = if selector & 1 == 0 {
        data
    } else {
        zipped = zip_document_xml(data);
        &zipped
    };
    if sniff(docx, "upload.docx") != Ok(DocKind::Docx) {
        return;
    }
    adam_fuzz::check_sections(extract(DocKind::Docx, docx, &Limits::default()));
}));

fn zip_document_xml(xml: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", options).expect("zip");
    zip.write_all(CONTENT_TYPES.as_bytes()).expect("zip");
    zip.start_file("word/document.xml", options).expect("zip");
    zip.write_all(xml).expect("zip");
    zip.finish().expect("zip").into_inner()
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
