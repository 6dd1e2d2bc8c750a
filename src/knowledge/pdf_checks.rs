//! What a hostile PDF can do that pdf-extract and lopdf do not guard against, checked
//! before any page is read: a page tree that loops or nests without end and a form
//! XObject drawn inside itself (both recurse until the stack overflows, which no panic
//! guard catches: the whole server aborts), forms drawn inside forms until the work grows
//! exponentially, and streams that decompress to far more than the file (a decompression
//! bomb: the server runs out of memory). Each case has its input in
//! `fuzz/corpus/extract_pdf/hostile_*`.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::io::Read;

use pdf_extract::content::{Content, Operation};
use pdf_extract::{Dictionary, Document, LoadOptions, Object, ObjectId, Stream};

/// Deepest page tree accepted (real documents use a handful of levels).
const MAX_TREE_DEPTH: usize = 64;
/// Deepest nesting of form XObjects (drawings inside drawings) accepted.
const MAX_FORM_DEPTH: usize = 16;
/// Forms drawn per document, all pages together.
const MAX_FORM_DRAWS: usize = 5_000;
/// Content one page draws (its content streams and the drawings they draw): pdf-extract
/// parses it into operators, about twenty bytes of memory per byte of content, and a
/// text page needs a few KiB.
const MAX_PAGE_CONTENT: u64 = 4 << 20;

thread_local! {
    /// Bytes the object streams read while loading may still decompress to; `None` once
    /// one went past it.
    static LOAD_BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Loads a PDF, refusing it when its object streams (parsed during loading) decompress to
/// more than `limit` bytes.
pub fn load(bytes: &[u8], limit: u64) -> Result<Result<Document, pdf_extract::Error>, String> {
    LOAD_BUDGET.with(|b| b.set(Some(limit)));
    let options = LoadOptions {
        filter: Some(count_object_streams),
        ..LoadOptions::default()
    };
    let loaded = Document::load_mem_with_options(bytes, options);
    match LOAD_BUDGET.with(|b| b.replace(None)) {
        Some(_) => Ok(loaded),
        None => Err(bomb(limit)),
    }
}

/// lopdf's load filter (a plain function, so the budget is thread-local: lopdf loads on
/// the calling thread). Dropping an object stream keeps lopdf from decompressing it.
fn count_object_streams(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = object
        && stream.dict.has_type(b"ObjStm")
    {
        let left = LOAD_BUDGET.with(Cell::get)?;
        let Some(size) = decoded_len(stream, left) else {
            LOAD_BUDGET.with(|b| b.set(None));
            return None;
        };
        LOAD_BUDGET.with(|b| b.set(Some(left - size)));
    }
    Some((id, object.clone()))
}

fn bomb(limit: u64) -> String {
    format!(
        "its content decompresses to more than {} MiB: refusing it as a possible decompression bomb",
        limit / (1024 * 1024)
    )
}

/// Checks the loaded document's streams and the structure of every page in `pages`;
/// `limit` bounds the bytes decompressed, in the document and in the drawings its pages
/// draw.
pub fn check(
    doc: &Document,
    pages: impl Iterator<Item = ObjectId>,
    limit: u64,
) -> Result<(), String> {
    check_streams(doc, limit)?;
    let mut walk = Walk {
        draws: 0,
        bytes_left: limit,
        page_left: 0,
    };
    for page in pages {
        check_page_tree(doc, page)?;
        check_forms(doc, page, &mut walk)?;
    }
    Ok(())
}

/// What reading the pages may still cost.
struct Walk {
    draws: usize,
    /// Content left for all pages together.
    bytes_left: u64,
    /// Content left for the page being checked.
    page_left: u64,
}

impl Walk {
    fn charge(&mut self, bytes: usize) -> Result<(), String> {
        let bytes = bytes as u64;
        self.page_left = self.page_left.checked_sub(bytes).ok_or_else(|| {
            format!(
                "a page draws more than {} MiB of content",
                MAX_PAGE_CONTENT >> 20
            )
        })?;
        self.bytes_left = self
            .bytes_left
            .checked_sub(bytes)
            .ok_or_else(|| "its pages draw their content too many times".to_owned())?;
        Ok(())
    }
}

/// All streams together may decompress to at most `limit` bytes: pdf-extract decompresses
/// whatever a page refers to, whole, with no limit.
fn check_streams(doc: &Document, limit: u64) -> Result<(), String> {
    let mut left = limit;
    for object in doc.objects.values() {
        if let Object::Stream(stream) = object {
            left -= decoded_len(stream, left).ok_or_else(|| bomb(limit))?;
        }
    }
    Ok(())
}

/// What lopdf's `decompressed_content` makes of `stream`, in bytes, or `None` when that is
/// more than `budget`; never holds more than `budget` bytes of it.
fn decoded_len(stream: &Stream, budget: u64) -> Option<u64> {
    let raw = stream.content.len() as u64;
    let Ok(filters) = stream.filters() else {
        return (raw <= budget).then_some(raw);
    };
    let params = stream
        .dict
        .get(b"DecodeParms")
        .and_then(Object::as_dict)
        .ok();
    let mut data = Cow::Borrowed(stream.content.as_slice());
    for filter in filters {
        let bound = match filter {
            b"FlateDecode" => inflated_len(&data, budget),
            b"LZWDecode" => lzw_len(&data, early_change(params), budget),
            // Each `z` stands for four zero bytes.
            b"ASCII85Decode" => (data.len() as u64).saturating_mul(4),
            // lopdf refuses the others, and pdf-extract then reads the raw bytes.
            _ => return (raw <= budget).then_some(raw),
        };
        if bound > budget {
            return None;
        }
        // Within the budget: let lopdf decode this stage, so the next one sees what
        // lopdf's own decoding would.
        let mut dict = Dictionary::new();
        dict.set("Filter", Object::Name(filter.to_vec()));
        if let Some(params) = params {
            dict.set("DecodeParms", params.clone());
        }
        match Stream::new(dict, data.into_owned()).decompressed_content() {
            Ok(decoded) => data = Cow::Owned(decoded),
            Err(_) => return (raw <= budget).then_some(raw),
        }
    }
    Some(data.len() as u64)
}

/// Bytes read from `reader` until its end, an error, or past `budget`.
fn read_len(mut reader: impl Read, budget: u64) -> (u64, bool) {
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0_u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => {
                total += n as u64;
                if total > budget {
                    return (total, true);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (total, false),
        }
    }
}

/// As lopdf inflates: zlib, or raw deflate after the two header bytes when zlib yields
/// nothing.
fn inflated_len(data: &[u8], budget: u64) -> u64 {
    let (zlib, ok) = read_len(flate2::read::ZlibDecoder::new(data), budget);
    if ok || zlib > 0 || data.len() <= 2 {
        return zlib;
    }
    read_len(flate2::read::DeflateDecoder::new(&data[2..]), budget).0
}

fn early_change(params: Option<&Dictionary>) -> bool {
    params
        .and_then(|p| p.get(b"EarlyChange").ok())
        .and_then(|v| v.as_i64().ok())
        .is_none_or(|v| v != 0)
}

/// As lopdf decodes LZW (MSB first, 8-bit symbols, `EarlyChange` as given).
fn lzw_len(data: &[u8], early_change: bool, budget: u64) -> u64 {
    use weezl::{BitOrder, LzwStatus, decode::Decoder};
    let mut decoder = if early_change {
        Decoder::with_tiff_size_switch(BitOrder::Msb, 8)
    } else {
        Decoder::new(BitOrder::Msb, 8)
    };
    let mut out = vec![0; 64 * 1024];
    let mut input = data;
    let mut total = 0_u64;
    loop {
        let result = decoder.decode_bytes(input, &mut out);
        total += result.consumed_out as u64;
        input = &input[result.consumed_in..];
        match result.status {
            _ if total > budget => return total,
            Ok(LzwStatus::Ok) if result.consumed_in + result.consumed_out > 0 => {}
            _ => return total,
        }
    }
}

/// pdf-extract looks up a page's inherited attributes through `/Parent` recursively.
fn check_page_tree(doc: &Document, page: ObjectId) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut node = page;
    loop {
        if !seen.insert(node) {
            return Err("its page tree loops back on itself".to_owned());
        }
        if seen.len() > MAX_TREE_DEPTH {
            return Err(format!(
                "its page tree is more than {MAX_TREE_DEPTH} levels deep"
            ));
        }
        let parent = doc
            .get_dictionary(node)
            .and_then(|d| d.get(b"Parent"))
            .and_then(Object::as_reference);
        match parent {
            Ok(parent) => node = parent,
            Err(_) => return Ok(()),
        }
    }
}

/// Follows the page's `Do` operators as pdf-extract does (a form without `/Resources`
/// uses its caller's), to a bounded depth and count.
fn check_forms(doc: &Document, page: ObjectId, walk: &mut Walk) -> Result<(), String> {
    let Ok(content) = doc.get_page_content(page) else {
        return Ok(());
    };
    walk.page_left = MAX_PAGE_CONTENT;
    walk.charge(content.len())?;
    let resources = inherited_resources(doc, page);
    walk_forms(doc, &content, resources, 0, walk)
}

fn inherited_resources(doc: &Document, page: ObjectId) -> Option<&Dictionary> {
    let mut node = doc.get_dictionary(page).ok()?;
    for _ in 0..MAX_TREE_DEPTH {
        if let Some(resources) = node
            .get(b"Resources")
            .ok()
            .and_then(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok())
        {
            return Some(resources);
        }
        let parent = node.get(b"Parent").and_then(Object::as_reference).ok()?;
        node = doc.get_dictionary(parent).ok()?;
    }
    None
}

fn deref<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    match object {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}

fn walk_forms(
    doc: &Document,
    content: &[u8],
    resources: Option<&Dictionary>,
    depth: usize,
    walk: &mut Walk,
) -> Result<(), String> {
    if depth > MAX_FORM_DEPTH {
        return Err(format!(
            "it nests drawings more than {MAX_FORM_DEPTH} deep (a drawing that contains itself?)"
        ));
    }
    let Ok(content) = Content::decode(content) else {
        return Ok(());
    };
    for operation in content.operations.iter().filter(|o| o.operator == "Do") {
        let Some(form) = xobject(doc, resources, operation) else {
            continue;
        };
        walk.draws += 1;
        if walk.draws > MAX_FORM_DRAWS {
            return Err(format!(
                "it draws more than {MAX_FORM_DRAWS} embedded drawings"
            ));
        }
        let inner = form
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok())
            .or(resources);
        // Drawn again and again, a drawing costs again and again.
        let data = form
            .decompressed_content()
            .unwrap_or_else(|_| form.content.clone());
        walk.charge(data.len())?;
        walk_forms(doc, &data, inner, depth + 1, walk)?;
    }
    Ok(())
}

/// The XObject a `Do` operation names, looked up as pdf-extract does.
fn xobject<'a>(
    doc: &'a Document,
    resources: Option<&'a Dictionary>,
    operation: &Operation,
) -> Option<&'a Stream> {
    let xobjects = deref(doc, resources?.get(b"XObject").ok()?)?
        .as_dict()
        .ok()?;
    let name = operation.operands.first()?.as_name().ok()?;
    deref(doc, xobjects.get(name).ok()?)?.as_stream().ok()
}
