//! The knowledge base through the API: every format is ingested and answered from,
//! deletion forgets, uploads are checked, dealerships never see each other's chunks, and
//! a restart resumes unfinished ingestion. Runs on the local store (SQLite) and on
//! pgvector (PostgreSQL) with the simulated providers, whose answer quotes the best
//! passage.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, World, json_body, spawn_app_with, world};
use crate::realtime::{ask, connect, event, read_until};

/// A minimal PDF: one page per entry of `pages`, Helvetica, one line each.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let n = pages.len();
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {n} >>",
        kids.join(" ")
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    for (i, text) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        write!(out, "{} 0 obj\n{body}\nendobj\n", i + 1).expect("write");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).expect("write");
    for o in offsets {
        writeln!(out, "{o:010} 00000 n ").expect("write");
    }
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    )
    .expect("write");
    out
}

/// A minimal Word document: `(style, text)` paragraphs (style `Heading1`, or "" for body).
pub fn docx(paragraphs: &[(&str, &str)]) -> Vec<u8> {
    docx_with_body(
        &paragraphs
            .iter()
            .map(|(style, text)| {
                let props = if style.is_empty() {
                    String::new()
                } else {
                    format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
                };
                format!("<w:p>{props}<w:r><w:t>{text}</w:t></w:r></w:p>")
            })
            .collect::<String>(),
    )
}

fn docx_with_body(body: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let files = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned(),
        ),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
            ),
        ),
    ];
    for (name, text) in files {
        zip.start_file(name, deflated).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

pub async fn upload(
    app: &TestApp,
    token: &str,
    query: &str,
    filename: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()),
    );
    app.client
        .post(app.url(&format!("/v1/documents{query}")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload sent")
}

/// Uploads and returns the document id (202 expected).
pub async fn upload_ok(
    app: &TestApp,
    token: &str,
    query: &str,
    name: &str,
    bytes: Vec<u8>,
) -> String {
    let resp = upload(app, token, query, name, bytes).await;
    assert_eq!(resp.status(), 202, "upload of {name}");
    let body = json_body(resp).await;
    assert_eq!(body["status"], "queued");
    body["id"].as_str().expect("id").to_owned()
}

/// Waits until the document is `ready` or `failed` and returns it.
pub async fn settled(app: &TestApp, token: &str, id: &str) -> Value {
    let path = format!("/v1/documents/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let doc = json_body(app.get(&path, Some(token)).await).await;
        if doc["status"] == "ready" || doc["status"] == "failed" {
            return doc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "document {id} still {doc}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asks `question` in a new session of `dealership` and returns `response.done`'s response.
pub async fn answer(app: &TestApp, token: &str, dealership: &str, question: &str) -> Value {
    let resp = app
        .post(
            "/v1/sessions",
            Some(token),
            json!({"dealership_id": dealership}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    let url = format!(
        "{}{}",
        app.base.replace("http://", "ws://"),
        body["ws_url"].as_str().expect("ws url")
    );
    let mut ws = connect(&url, None).await.expect("connect");
    ask(&mut ws, question).await;
    let items = read_until(&mut ws, "response.done").await;
    event(&items, "response.done")["response"].clone()
}

fn cited(done: &Value) -> Vec<String> {
    done["citations"]
        .as_array()
        .expect("citations")
        .iter()
        .map(|c| c["document_id"].as_str().expect("document id").to_owned())
        .collect()
}

async fn quick_app() -> TestApp {
    spawn_app_with(|s| {
        let sim = &mut s.providers.simulated;
        sim.stt_delay_ms = 10;
        sim.answer_first_token_ms = 10;
        sim.answer_tokens_per_sec = 500.0;
        sim.tts_first_byte_ms = 5;
        sim.tts_ms_per_char = 1;
        s.knowledge.max_upload_bytes = 256 * 1024;
    })
    .await
}

const FORMATS: &[(&str, &str, &str)] = &[
    (
        "valet.md",
        "How much does the Zephyr valet service cost?",
        "75 dollars",
    ),
    (
        "detailing.txt",
        "How long does Quasar detailing take?",
        "three hours",
    ),
    (
        "loyalty.docx",
        "What discount does the Nimbus loyalty card give?",
        "15 percent",
    ),
    (
        "winter.pdf",
        "How much is the Orion winter tyre package?",
        "640 dollars",
    ),
];

fn format_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "valet.md",
            b"# Valet\n\nThe Zephyr valet service costs 75 dollars per visit.\n".to_vec(),
        ),
        (
            "detailing.txt",
            b"Quasar detailing takes three hours and includes a hand wax.\n".to_vec(),
        ),
        (
            "loyalty.docx",
            docx(&[
                ("Heading1", "Loyalty"),
                (
                    "",
                    "The Nimbus loyalty card gives members a 15 percent discount on parts.",
                ),
            ]),
        ),
        (
            "winter.pdf",
            pdf(&["The Orion winter tyre package costs 640 dollars installed."]),
        ),
    ]
}

#[tokio::test]
async fn every_format_is_answered_from_and_forgotten_once_deleted() {
    let app = quick_app().await;
    let World { a, admin_a, .. } = world(&app).await;
    let mut ids = Vec::new();
    for (name, bytes) in format_files() {
        let id = upload_ok(&app, &admin_a.access, "", name, bytes.clone()).await;
        let doc = settled(&app, &admin_a.access, &id).await;
        assert_eq!(doc["status"], "ready", "{doc}");
        assert!(doc["chunk_count"].as_i64().expect("count") >= 1);
        let expected_kind = match name.rsplit('.').next() {
            Some("md") => "markdown",
            Some("txt") => "text",
            Some(other) => other,
            None => unreachable!(),
        };
        assert_eq!(doc["kind"], expected_kind);
        let store = match app.state.db.kind() {
            "postgres" => "pgvector",
            _ => "local",
        };
        assert_eq!(doc["vector_store"], store);
        // The original comes back byte for byte, as an attachment.
        let resp = app
            .get(
                &format!("/v1/documents/{id}/content"),
                Some(&admin_a.access),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let disposition = resp.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(disposition.starts_with("attachment;") && disposition.contains(name));
        assert_eq!(resp.bytes().await.expect("body").as_ref(), bytes.as_slice());
        ids.push(id);
    }
    let list = json_body(app.get("/v1/documents", Some(&admin_a.access)).await).await;
    assert_eq!(list.as_array().expect("list").len(), 4);

    for ((_, question, fact), id) in FORMATS.iter().zip(&ids) {
        let done = answer(&app, &admin_a.access, &a, question).await;
        let text = done["output_text"].as_str().expect("text");
        assert!(text.contains(fact), "{question} → {text}");
        assert!(
            cited(&done).contains(id),
            "{question} cites {:?}",
            cited(&done)
        );
    }

    // Asked twice: the second answer comes from the semantic cache.
    let (_, question, fact) = FORMATS[0];
    let again = answer(&app, &admin_a.access, &a, question).await;
    assert_eq!(again["metrics"]["cache_hit"], true);
    let resp = app
        .delete(&format!("/v1/documents/{}", ids[0]), Some(&admin_a.access))
        .await;
    assert_eq!(resp.status(), 204);
    let gone = app
        .get(&format!("/v1/documents/{}", ids[0]), Some(&admin_a.access))
        .await;
    assert_eq!(gone.status(), 404);
    let after = answer(&app, &admin_a.access, &a, question).await;
    assert_eq!(
        after["metrics"]["cache_hit"], false,
        "deletion clears the cache"
    );
    let text = after["output_text"].as_str().expect("text");
    assert!(!text.contains(fact), "deleted fact still answered: {text}");
    assert!(!cited(&after).contains(&ids[0]));
}

#[tokio::test]
async fn dealerships_never_retrieve_each_others_chunks() {
    let app = quick_app().await;
    let w = world(&app).await;
    let secret = upload_ok(
        &app,
        &w.admin_a.access,
        "",
        "secret.md",
        b"The Alpha staff discount code is ZEBRA-4411.".to_vec(),
    )
    .await;
    assert_eq!(
        settled(&app, &w.admin_a.access, &secret).await["status"],
        "ready"
    );
    // A super_admin uploads for B by naming it.
    let own = upload_ok(
        &app,
        &w.root.access,
        &format!("?dealership_id={}", w.b),
        "b.md",
        b"Bravo Cars washes every car for free.".to_vec(),
    )
    .await;
    assert_eq!(settled(&app, &w.root.access, &own).await["status"], "ready");

    let question = "What is the Alpha staff discount code?";
    let from_a = answer(&app, &w.root.access, &w.a, question).await;
    assert!(
        from_a["output_text"]
            .as_str()
            .expect("text")
            .contains("ZEBRA-4411")
    );
    let from_b = answer(&app, &w.root.access, &w.b, question).await;
    let text = from_b["output_text"].as_str().expect("text");
    assert!(!text.contains("ZEBRA"), "B heard A's secret: {text}");
    assert_eq!(cited(&from_b), [own], "B only ever cites its own document");
    // Nor can B's admin see or fetch A's document.
    for path in [
        format!("/v1/documents/{secret}"),
        format!("/v1/documents/{secret}/content"),
    ] {
        assert_eq!(app.get(&path, Some(&w.admin_b.access)).await.status(), 404);
    }
    assert_eq!(
        app.delete(&format!("/v1/documents/{secret}"), Some(&w.admin_b.access))
            .await
            .status(),
        404
    );
    let listed = json_body(app.get("/v1/documents", Some(&w.admin_b.access)).await).await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
    // A user (not an admin) may not manage documents.
    assert_eq!(
        app.get("/v1/documents", Some(&w.user_a.access))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn hostile_uploads_are_refused_or_fail_alone_and_nothing_else_is_lost() {
    let app = quick_app().await;
    let World { a, admin_a, .. } = world(&app).await;
    let token = &admin_a.access;
    let good = upload_ok(
        &app,
        token,
        "",
        "hours.md",
        b"The Vega showroom opens at 9 am.".to_vec(),
    )
    .await;
    assert_eq!(settled(&app, token, &good).await["status"], "ready");

    // Too large: 413 with the JSON error shape.
    let resp = upload(&app, token, "", "big.txt", vec![b'a'; 300 * 1024]).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(json_body(resp).await["error"]["code"], "payload_too_large");
    // A PNG named .pdf: the content decides, and it is not a document.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let resp = upload(&app, token, "", "brochure.pdf", png).await;
    assert_eq!(resp.status(), 415);
    assert!(
        json_body(resp).await["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("PNG")
    );
    // A PDF named .docx: the name lies about the content.
    let resp = upload(&app, token, "", "letter.docx", pdf(&["Hello."])).await;
    assert_eq!(resp.status(), 422);
    // A path in the name is only a label, never a path.
    let id = upload_ok(
        &app,
        token,
        "",
        "../../etc/passwd.md",
        b"Nothing to see.".to_vec(),
    )
    .await;
    let doc = settled(&app, token, &id).await;
    assert_eq!(doc["filename"], "passwd.md");
    // A zip bomb: 60 MiB of spaces in word/document.xml, refused before inflating it.
    let padding = " ".repeat(60 * 1024 * 1024);
    let bomb = docx_with_body(&format!("<w:p><w:r><w:t>Hi</w:t></w:r></w:p>{padding}"));
    assert!(bomb.len() < 256 * 1024, "bomb is {} bytes", bomb.len());
    let bomb_id = upload_ok(&app, token, "", "bomb.docx", bomb).await;
    let doc = settled(&app, token, &bomb_id).await;
    assert_eq!(doc["status"], "failed");
    assert!(!doc["error"].as_str().expect("reason").is_empty(), "{doc}");
    // A corrupt PDF fails alone, with a reason.
    let mut broken = pdf(&["The end."]);
    broken.truncate(60);
    let broken_id = upload_ok(&app, token, "", "broken.pdf", broken).await;
    let doc = settled(&app, token, &broken_id).await;
    assert_eq!(doc["status"], "failed");
    assert!(
        doc["error"].as_str().expect("reason").contains("PDF"),
        "{doc}"
    );

    // The server is healthy and the good document is still answered.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(settled(&app, token, &good).await["status"], "ready");
    let done = answer(&app, token, &a, "When does the Vega showroom open?").await;
    assert!(done["output_text"].as_str().expect("text").contains("9 am"));
    // A failed document can be re-indexed (it fails again, with the same reason).
    let resp = app
        .post(
            &format!("/v1/documents/{broken_id}/reindex"),
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let doc = settled(&app, token, &broken_id).await;
    assert_eq!(doc["status"], "failed");
}

#[tokio::test]
async fn ingestion_interrupted_by_a_restart_resumes() {
    let first = quick_app().await;
    let World { admin_a, .. } = world(&first).await;
    let id = upload_ok(
        &first,
        &admin_a.access,
        "",
        "note.md",
        b"The Lyra car wash is open all night.".to_vec(),
    )
    .await;
    settled(&first, &admin_a.access, &id).await;
    // As if the node died mid-way.
    first
        .state
        .db
        .execute_static("UPDATE documents SET status = 'processing', chunk_count = 0")
        .await
        .expect("update");
    first.shutdown.notify_one();
    let url = first.state.settings.database.url.clone();
    let second = spawn_app_with(move |s| s.database.url = url).await;
    let token = second
        .login("admin@alpha.test", crate::helpers::PASSWORD)
        .await;
    let doc = settled(&second, &token.access, &id).await;
    assert_eq!(doc["status"], "ready");
    assert!(doc["chunk_count"].as_i64().expect("count") >= 1);
}

#[tokio::test]
async fn reindexing_moves_every_document_to_pinecone_and_isolation_holds_there() {
    let first = quick_app().await;
    let w = world(&first).await;
    let a_doc = upload_ok(
        &first,
        &w.admin_a.access,
        "",
        "valet.md",
        b"The Zephyr valet service costs 75 dollars per visit.".to_vec(),
    )
    .await;
    let b_doc = upload_ok(
        &first,
        &w.admin_b.access,
        "",
        "wash.md",
        b"Bravo Cars washes every car for free.".to_vec(),
    )
    .await;
    for (token, id) in [(&w.admin_a.access, &a_doc), (&w.admin_b.access, &b_doc)] {
        assert_ne!(settled(&first, token, id).await["vector_store"], "pinecone");
    }
    first.shutdown.notify_one();

    // The same database, now configured for Pinecone: the documents move at startup.
    let pinecone = crate::fake_pinecone::start("pc-test-key", 128).await;
    let url = first.state.settings.database.url.clone();
    let host = pinecone.url();
    let second = spawn_app_with(move |s| {
        s.database.url = url;
        s.knowledge.vector_store = "pinecone".into();
        s.knowledge.pinecone.index_host = host;
        s.knowledge.pinecone.api_key = Some(secrecy::SecretString::from("pc-test-key"));
    })
    .await;
    let root = second.admin().await;
    let moved = crate::helpers::eventually(Duration::from_secs(60), || async {
        let docs = json_body(second.get("/v1/documents", Some(&root.access)).await).await;
        docs.as_array().is_some_and(|d| {
            d.len() == 2
                && d.iter()
                    .all(|d| d["status"] == "ready" && d["vector_store"] == "pinecone")
        })
    })
    .await;
    assert!(moved, "documents were not re-indexed into Pinecone");
    assert!(pinecone.vector_count(&format!("dealership-{}", w.a)) >= 1);
    assert!(pinecone.vector_count(&format!("dealership-{}", w.b)) >= 1);

    let question = "How much does the Zephyr valet service cost?";
    let from_a = answer(&second, &root.access, &w.a, question).await;
    assert!(
        from_a["output_text"]
            .as_str()
            .expect("text")
            .contains("75 dollars")
    );
    assert_eq!(cited(&from_a), std::slice::from_ref(&a_doc));
    let from_b = answer(&second, &root.access, &w.b, question).await;
    assert!(!from_b["output_text"].as_str().expect("text").contains("75"));
    assert_eq!(cited(&from_b), [b_doc]);

    // Deleting removes the vectors from Pinecone too.
    let resp = second
        .delete(&format!("/v1/documents/{a_doc}"), Some(&root.access))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(pinecone.vector_count(&format!("dealership-{}", w.a)), 0);
}

#[tokio::test]
async fn a_new_document_is_answered_at_once_not_the_cached_answer_from_before_it() {
    let app = quick_app().await;
    let World { a, admin_a, .. } = world(&app).await;
    let question = "How much does the Zephyr valet service cost?";
    let before = answer(&app, &admin_a.access, &a, question).await;
    let again = answer(&app, &admin_a.access, &a, question).await;
    assert_eq!(again["metrics"]["cache_hit"], true, "the answer was cached");
    assert!(!before["output_text"].as_str().expect("text").contains("75"));
    let id = upload_ok(
        &app,
        &admin_a.access,
        "",
        "valet.md",
        b"The Zephyr valet service costs 75 dollars per visit.".to_vec(),
    )
    .await;
    assert_eq!(settled(&app, &admin_a.access, &id).await["status"], "ready");
    let after = answer(&app, &admin_a.access, &a, question).await;
    assert_eq!(
        after["metrics"]["cache_hit"], false,
        "ingestion cleared the cache"
    );
    assert!(
        after["output_text"]
            .as_str()
            .expect("text")
            .contains("75 dollars")
    );
    assert_eq!(cited(&after), [id]);
    let stats = json_body(app.get("/v1/cache/stats", Some(&admin_a.access)).await).await;
    assert_eq!(stats["dealership_id"], a.as_str());
    assert_eq!(stats["semantic"]["hits"], 1);
}
