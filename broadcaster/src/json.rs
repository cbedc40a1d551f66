//! Validated JSON with the exact byte span of every value.
//!
//! simd-json validates a document and lays it out as a tape: one node per value (object keys
//! included), in document order. simd-json does not say where in the input a node came from, so
//! a small structural scanner walks the same bytes and emits one span per value in the same
//! pre-order, and the two are checked to agree node for node (same count, same kind at every
//! position). [`with_doc`] walks a document after parsing it; [`split_array`] walks the array of
//! a large answer once, finding its elements and every span inside them, and [`with_element`]
//! then parses each element on its own against those spans. A value can then be handed out
//! exactly as it was sent: [`Val::compact`] copies its bytes and drops only the whitespace
//! outside strings (a copy of the bytes as they are when the document has none), and
//! [`Val::shared`] hands out a slice of the answer's own buffer instead of a copy, so keys keep
//! their order, numbers keep their digits (u64 beyond `i64::MAX` included) and strings keep
//! their escapes.
//!
//! The scanner checks every index and gives up (`None`, or an error) on text that does not
//! have the shape it expects, never a panic; text it walked before simd-json saw it is parsed
//! by simd-json before any of its spans is used.

use bytes::Bytes;
use simd_json::{Node, StaticNode};

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// simd-json rejected the input (truncated, not JSON, a number that overflows u64, ...).
    #[error("invalid JSON: {0}")]
    Invalid(String),
    /// The input is larger than 4 GiB, which simd-json cannot index.
    #[error("JSON document too large ({0} bytes)")]
    TooLarge(usize),
    /// The structural scan disagreed with simd-json's tape.
    #[error("JSON structure scan disagrees with the parser at value {0}")]
    Structure(usize),
}

/// Where one value's text lies in the input, and where its next sibling sits on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
    /// Tape index just past this value and everything nested in it.
    next: u32,
}

/// A parsed document: the input bytes, simd-json's tape and one [`Span`] per tape node.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'d> {
    raw: &'d [u8],
    /// The buffer `raw` is, when the caller has it as shared bytes: values are then handed out
    /// as slices of it ([`Val::shared`]) instead of copies.
    owner: Option<&'d Bytes>,
    nodes: &'d [Node<'d>],
    spans: &'d [Span],
    /// Whether the input has whitespace outside strings. Nodes send compact JSON, so a value is
    /// usually handed out by copying its bytes as they are.
    spaced: bool,
}

/// A handle to one value of a [`Doc`].
#[derive(Clone, Copy)]
pub(crate) struct Val<'d> {
    doc: Doc<'d>,
    idx: usize,
}

/// The JSON type of a value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Integer,
    Float,
    Bool,
    Null,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Float => "a number with a fraction or exponent",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// Parses `raw` and runs `f` on its root value.
///
/// simd-json parses in place, so the input is copied into a scratch buffer first; the spans
/// always refer to `raw` itself.
///
/// The buffers this needs (the scratch copy, simd-json's own, the tape and the span table) are
/// kept per thread between documents, so parsing block after block allocates nothing once they
/// have grown to a block's size; buffers grown past [`KEEP_BUFFERS_UP_TO`] by a larger document
/// are freed after it.
pub(crate) fn with_doc<R, E: From<JsonError>>(
    raw: &[u8],
    f: impl FnOnce(Val<'_>) -> Result<R, E>,
) -> Result<R, E> {
    parse_doc(raw, None, f)
}

/// [`with_doc`] on shared bytes: [`Val::shared`] hands out slices of `bytes`, not copies.
pub(crate) fn with_shared_doc<R, E: From<JsonError>>(
    bytes: &Bytes,
    f: impl FnOnce(Val<'_>) -> Result<R, E>,
) -> Result<R, E> {
    parse_doc(bytes, Some(bytes), f)
}

fn parse_doc<R, E: From<JsonError>>(
    raw: &[u8],
    owner: Option<&Bytes>,
    f: impl FnOnce(Val<'_>) -> Result<R, E>,
) -> Result<R, E> {
    with_parser(raw.len(), |parser| {
        parser.parse(raw, |nodes, spans, open| {
            let spaced = scan(raw, nodes, spans, open)?;
            let doc = Doc {
                raw,
                owner,
                nodes,
                spans,
                spaced,
            };
            f(Val { doc, idx: 0 })
        })
    })
}

/// Runs `parse` with this thread's parser buffers, for a document of `len` bytes.
fn with_parser<R, E: From<JsonError>>(
    len: usize,
    parse: impl FnOnce(&mut Parser) -> Result<R, E>,
) -> Result<R, E> {
    if u32::try_from(len).is_err() {
        return Err(JsonError::TooLarge(len).into());
    }
    // Taken out of the thread's slot for the call: a nested call (none today) would find the
    // slot empty and use buffers of its own.
    let mut parser = PARSER.take().unwrap_or_default();
    let result = parse(&mut parser);
    if len <= KEEP_BUFFERS_UP_TO {
        PARSER.set(Some(parser));
    }
    result
}

/// Documents up to this size leave their buffers to the next one on the same thread (a
/// today-sized block is about 100 KB; a `get_block_range` answer is parsed block by block).
pub(crate) const KEEP_BUFFERS_UP_TO: usize = 1 << 20;

thread_local! {
    static PARSER: std::cell::Cell<Option<Parser>> = const { std::cell::Cell::new(None) };
}

/// Buffers reused from one document to the next.
struct Parser {
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
    /// Always empty between documents ([`simd_json::Tape::reset`] frees it of any borrow).
    tape: Option<simd_json::Tape<'static>>,
    spans: Vec<Span>,
    open: Vec<usize>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            scratch: Vec::new(),
            buffers: simd_json::Buffers::new(0),
            tape: None,
            spans: Vec::new(),
            open: Vec::new(),
        }
    }
}

impl Parser {
    /// Copies `text` to the scratch buffer, has simd-json lay it out as a tape and runs `f` on
    /// the tape with the span table and work stack to fill.
    fn parse<R, E: From<JsonError>>(
        &mut self,
        text: &[u8],
        f: impl FnOnce(&[Node<'_>], &mut Vec<Span>, &mut Vec<usize>) -> Result<R, E>,
    ) -> Result<R, E> {
        let Parser {
            scratch,
            buffers,
            tape: kept,
            spans,
            open,
        } = self;
        scratch.clear();
        scratch.extend_from_slice(text);
        let mut tape = kept
            .take()
            .map_or_else(|| simd_json::Tape(Vec::new()), simd_json::Tape::reset);
        let result = match simd_json::fill_tape(scratch, buffers, &mut tape) {
            Err(e) => Err(JsonError::Invalid(e.to_string()).into()),
            Ok(()) => f(&tape.0, spans, open),
        };
        *kept = Some(tape.reset());
        result
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Byte offset just past the string whose opening quote is at `start`.
fn string_end(raw: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let k = quote_or_backslash(raw.get(i..)?)?;
        if raw[i + k] == b'"' {
            return Some(i + k + 1);
        }
        i += k + 2;
    }
}

/// Where the first `"` or `\` of `text` is.
///
/// Most searches end within a few bytes: keys, account names, and the escaped quotes every few
/// bytes of a `custom_json` payload. The first 32 bytes are therefore looked at eight at a time
/// in a plain `u64`, which costs less than setting up a vector search; the rest with `memchr2`.
fn quote_or_backslash(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x` is zero exactly where the lowest flagged byte of `zero_bytes(x)` is (borrows
    // only carry upwards, so bytes above a zero byte may be flagged too, never below it).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let words = text.chunks_exact(8).take(4);
    let searched = words.len() * 8;
    for (n, chunk) in words.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Little-endian, so the first byte in the text is the lowest.
        let word = u64::from_le_bytes(word);
        let hits = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(n * 8 + hits.trailing_zeros() as usize / 8);
        }
    }
    memchr::memchr2(b'"', b'\\', &text[searched..]).map(|k| searched + k)
}

/// Walks the value that starts at `at` (its first byte, not whitespace) and appends one span
/// per value in it, in document order, which is simd-json's tape order; `next` counts from the
/// first span appended. Sets `spaced` on meeting whitespace outside strings. Returns the offset
/// just past the value, or `None` when the text does not have the shape of a value at a glance
/// (brackets are counted, strings skipped whole, nothing else is checked: a parser validates
/// the same text and [`check_spans`] compares both walks).
fn scan_value(
    raw: &[u8],
    mut at: usize,
    spans: &mut Vec<Span>,
    open: &mut Vec<usize>,
    spaced: &mut bool,
) -> Option<usize> {
    let base = spans.len();
    let offset = |v: usize| u32::try_from(v).ok();
    open.clear();
    loop {
        match *raw.get(at)? {
            b' ' | b'\t' | b'\n' | b'\r' if !open.is_empty() => {
                *spaced = true;
                at += 1;
                continue;
            }
            b',' | b':' if !open.is_empty() => {
                at += 1;
                continue;
            }
            b'{' | b'[' => {
                open.push(spans.len());
                spans.push(Span {
                    start: offset(at)?,
                    end: 0,
                    next: 0,
                });
                at += 1;
                continue;
            }
            b'}' | b']' => {
                let index = open.pop()?;
                let next = offset(spans.len() - base)?;
                let span = &mut spans[index];
                span.end = offset(at + 1)?;
                span.next = next;
                at += 1;
            }
            b'"' => {
                let end = string_end(raw, at)?;
                spans.push(Span {
                    start: offset(at)?,
                    end: offset(end)?,
                    next: offset(spans.len() + 1 - base)?,
                });
                at = end;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' => return None,
            _ => {
                let len = raw[at..]
                    .iter()
                    .position(|&b| matches!(b, b',' | b'}' | b']' | b':') || is_ws(b))
                    .unwrap_or(raw.len() - at);
                spans.push(Span {
                    start: offset(at)?,
                    end: offset(at + len)?,
                    next: offset(spans.len() + 1 - base)?,
                });
                at += len;
            }
        }
        if open.is_empty() {
            return Some(at);
        }
    }
}

/// Checks that the spans of a walk match simd-json's tape of the same text node for node: as
/// many, and each of the kind the byte it starts at says.
fn check_spans(raw: &[u8], nodes: &[Node<'_>], spans: &[Span]) -> Result<(), JsonError> {
    if nodes.len() != spans.len() {
        return Err(JsonError::Structure(nodes.len().min(spans.len())));
    }
    for (at, (node, span)) in nodes.iter().zip(spans).enumerate() {
        let first = raw.get(span.start as usize).copied();
        let agrees = match node {
            Node::Object { .. } => first == Some(b'{'),
            Node::Array { .. } => first == Some(b'['),
            Node::String(_) => first == Some(b'"'),
            Node::Static(_) => first.is_some_and(|b| !matches!(b, b'{' | b'[' | b'"')),
        };
        if !agrees {
            return Err(JsonError::Structure(at));
        }
    }
    Ok(())
}

/// Walks a whole document `raw` (already accepted by simd-json) into `spans`; says whether it
/// met whitespace outside strings.
fn scan(
    raw: &[u8],
    nodes: &[Node<'_>],
    spans: &mut Vec<Span>,
    open: &mut Vec<usize>,
) -> Result<bool, JsonError> {
    spans.clear();
    spans.reserve(nodes.len());
    let start = skip_ws(raw, 0);
    let mut spaced = start > 0;
    let end = scan_value(raw, start, spans, open, &mut spaced)
        .ok_or(JsonError::Structure(spans.len()))?;
    if skip_ws(raw, end) != raw.len() {
        return Err(JsonError::Structure(spans.len()));
    }
    spaced |= end < raw.len();
    check_spans(raw, nodes, spans)?;
    Ok(spaced)
}

impl<'d> Val<'d> {
    fn node(&self) -> Node<'d> {
        self.doc.nodes[self.idx]
    }

    fn span(&self) -> Span {
        self.doc.spans[self.idx]
    }

    /// The JSON type of this value.
    pub(crate) fn kind(&self) -> Kind {
        match self.node() {
            Node::Object { .. } => Kind::Object,
            Node::Array { .. } => Kind::Array,
            Node::String(_) => Kind::String,
            Node::Static(StaticNode::I64(_) | StaticNode::U64(_)) => Kind::Integer,
            Node::Static(StaticNode::Bool(_)) => Kind::Bool,
            Node::Static(StaticNode::Null) => Kind::Null,
            Node::Static(_) => Kind::Float,
        }
    }

    /// The value's text exactly as it appears in the input.
    pub(crate) fn raw(&self) -> &'d [u8] {
        let span = self.span();
        &self.doc.raw[span.start as usize..span.end as usize]
    }

    /// The value's text with the whitespace outside strings removed; nothing else changes.
    pub(crate) fn compact(&self) -> Vec<u8> {
        if self.doc.spaced {
            compact(self.raw())
        } else {
            self.raw().to_vec()
        }
    }

    /// [`Val::compact`] as shared bytes: a slice of the document's buffer when it was parsed
    /// from shared bytes and has nothing to drop, else a copy.
    pub(crate) fn shared(&self) -> Bytes {
        match self.doc.owner {
            Some(owner) if !self.doc.spaced => {
                let span = self.span();
                owner.slice(span.start as usize..span.end as usize)
            }
            _ => Bytes::from(self.compact()),
        }
    }

    /// The string's content, unescaped.
    pub(crate) fn as_str(&self) -> Option<&'d str> {
        match self.node() {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an unsigned integer, if it is a non-negative integer.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self.node() {
            Node::Static(StaticNode::U64(v)) => Some(v),
            Node::Static(StaticNode::I64(v)) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The number as a signed integer, if it is an integer that fits.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self.node() {
            Node::Static(StaticNode::I64(v)) => Some(v),
            Node::Static(StaticNode::U64(v)) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.node() {
            Node::Static(StaticNode::Bool(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.node(), Node::Static(StaticNode::Null))
    }

    /// Number of members (object) or elements (array); 0 for anything else.
    pub(crate) fn len(&self) -> usize {
        match self.node() {
            Node::Object { len, .. } | Node::Array { len, .. } => len,
            _ => 0,
        }
    }

    /// The members of an object as (unescaped key, value), in document order; empty otherwise.
    pub(crate) fn members(&self) -> impl Iterator<Item = (&'d str, Val<'d>)> + 'd {
        let doc = self.doc;
        let count = if self.kind() == Kind::Object {
            self.len()
        } else {
            0
        };
        let mut key = self.idx + 1;
        (0..count).map(move |_| {
            let value = Val { doc, idx: key + 1 };
            let name = Val { doc, idx: key }.as_str().unwrap_or_default();
            key = doc.spans[key + 1].next as usize;
            (name, value)
        })
    }

    /// The elements of an array, in order; empty otherwise.
    pub(crate) fn elements(&self) -> impl Iterator<Item = Val<'d>> + 'd {
        let doc = self.doc;
        let count = if self.kind() == Kind::Array {
            self.len()
        } else {
            0
        };
        let mut at = self.idx + 1;
        (0..count).map(move |_| {
            let value = Val { doc, idx: at };
            at = doc.spans[at].next as usize;
            value
        })
    }

    /// The first member named `key`, if this is an object that has one.
    pub(crate) fn get(&self, key: &str) -> Option<Val<'d>> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Where the elements of an array inside a document lie, found without parsing them (see
/// [`split_array`]), with the span of every value inside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// The array, brackets included.
    pub(crate) array: std::ops::Range<usize>,
    /// Each element, from its first byte to just past its last.
    pub(crate) elements: Vec<std::ops::Range<usize>>,
    /// Where each element's spans lie in `spans`.
    element_spans: Vec<std::ops::Range<usize>>,
    /// The spans of every element, one after the other, each element's counted from its own.
    spans: Vec<Span>,
    /// Whitespace outside strings somewhere in the elements.
    spaced: bool,
}

/// Finds the array at `keys` (object keys from the root: `["result", "blocks"]`) in `raw` and
/// the byte range of each of its elements, looking only at the structure: strings are skipped
/// whole and nothing inside the elements is validated. `None` when the text does not have that
/// shape at a glance (the caller then parses it whole, which says what is wrong). Each element
/// is meant to be parsed on its own ([`with_element`]), and the rest with the array emptied: a
/// large answer is then parsed in pieces that stay in the caches, and this one walk over the
/// elements is the only one ([`with_element`] checks its spans against the parser's tape).
pub(crate) fn split_array(raw: &[u8], keys: &[&str]) -> Option<Split> {
    let mut at = skip_ws(raw, 0);
    for key in keys {
        at = member(raw, at, key)?;
    }
    if raw.get(at) != Some(&b'[') {
        return None;
    }
    let mut split = Split {
        array: at..at,
        elements: Vec::new(),
        element_spans: Vec::new(),
        spans: Vec::with_capacity(raw.len() / 16),
        spaced: false,
    };
    let start = at;
    let mut open = Vec::new();
    at = skip_ws(raw, at + 1);
    if raw.get(at) == Some(&b']') {
        split.array = start..at + 1;
        return Some(split);
    }
    loop {
        let first_span = split.spans.len();
        let end = scan_value(raw, at, &mut split.spans, &mut open, &mut split.spaced)?;
        split.elements.push(at..end);
        split.element_spans.push(first_span..split.spans.len());
        at = skip_ws(raw, end);
        match raw.get(at)? {
            b',' => at = skip_ws(raw, at + 1),
            b']' => {
                split.array = start..at + 1;
                return Some(split);
            }
            _ => return None,
        }
    }
}

/// Parses element `index` of `split` (found in `raw`) and runs `f` on it, as [`with_doc`] does
/// for a whole document.
pub(crate) fn with_element<R, E: From<JsonError>>(
    raw: &Bytes,
    split: &Split,
    index: usize,
    f: impl FnOnce(Val<'_>) -> Result<R, E>,
) -> Result<R, E> {
    let text = split.elements[index].clone();
    let spans = &split.spans[split.element_spans[index].clone()];
    with_parser(text.len(), |parser| {
        parser.parse(&raw[text], |nodes, _, _| {
            check_spans(raw, nodes, spans)?;
            let doc = Doc {
                raw,
                owner: Some(raw),
                nodes,
                spans,
                spaced: split.spaced,
            };
            f(Val { doc, idx: 0 })
        })
    })
}

fn skip_ws(raw: &[u8], mut at: usize) -> usize {
    while raw.get(at).is_some_and(|&b| is_ws(b)) {
        at += 1;
    }
    at
}

/// The start of the value of member `key` of the object starting at `at`.
fn member(raw: &[u8], at: usize, key: &str) -> Option<usize> {
    if raw.get(at) != Some(&b'{') {
        return None;
    }
    let mut at = skip_ws(raw, at + 1);
    loop {
        if raw.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(raw, at)?;
        let name = &raw[at + 1..key_end - 1];
        at = skip_ws(raw, key_end);
        if raw.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(raw, at + 1);
        if name == key.as_bytes() {
            return Some(at);
        }
        at = skip_ws(raw, value_end(raw, at)?);
        match raw.get(at)? {
            b',' => at = skip_ws(raw, at + 1),
            _ => return None,
        }
    }
}

/// Just past the value starting at `at`: a string, an object or array (brackets counted, strings
/// skipped), or a scalar (up to the next delimiter).
fn value_end(raw: &[u8], at: usize) -> Option<usize> {
    match *raw.get(at)? {
        b'"' => string_end(raw, at),
        b'{' | b'[' => {
            let mut depth = 1usize;
            let mut i = at + 1;
            while depth > 0 {
                match *raw.get(i)? {
                    b'"' => i = string_end(raw, i)?,
                    b'{' | b'[' => {
                        depth += 1;
                        i += 1;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
            Some(i)
        }
        _ => {
            let rest = &raw[at..];
            let len = rest
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || is_ws(b))
                .unwrap_or(rest.len());
            (len > 0).then_some(at + len)
        }
    }
}

/// Copies a JSON text, dropping the whitespace outside strings.
pub(crate) fn compact(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    // Between strings (structure, numbers, literals: short runs) whitespace is dropped byte by
    // byte; a string (often long: bodies, memos, `custom_json` payloads) is copied whole, its
    // end found with `memchr` on quotes and backslashes.
    while let Some(quote) = memchr::memchr(b'"', &raw[at..]) {
        push_without_ws(&raw[at..at + quote], &mut out);
        let start = at + quote;
        let mut scan = start + 1;
        loop {
            match memchr::memchr2(b'"', b'\\', raw.get(scan..).unwrap_or_default()) {
                Some(k) if raw[scan + k] == b'\\' => scan += k + 2,
                Some(k) => {
                    out.extend_from_slice(&raw[start..=scan + k]);
                    at = scan + k + 1;
                    break;
                }
                // An unterminated string: the rest is kept as it is.
                None => {
                    out.extend_from_slice(&raw[start..]);
                    return out;
                }
            }
        }
    }
    push_without_ws(&raw[at..], &mut out);
    out
}

/// Appends `run`, a stretch outside strings, without its whitespace.
fn push_without_ws(run: &[u8], out: &mut Vec<u8>) {
    if run.iter().any(|&b| is_ws(b)) {
        out.extend(run.iter().copied().filter(|&b| !is_ws(b)));
    } else {
        out.extend_from_slice(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use test_support::panics::catch;

    fn parse<R>(raw: &str, f: impl FnOnce(Val<'_>) -> R) -> R {
        with_doc::<R, JsonError>(raw.as_bytes(), |v| Ok(f(v))).expect("valid JSON")
    }

    #[test]
    fn spans_cover_every_value() {
        let text = r#" { "a" : [1, -2, 18446744073709551615, 1.50, "x\"y\\", true, null, {}],
                        "b" : { "c" : "d" } } "#;
        parse(text, |root| {
            assert_eq!(root.kind(), Kind::Object);
            let keys: Vec<&str> = root.members().map(|(k, _)| k).collect();
            assert_eq!(keys, ["a", "b"]);
            let a = root.get("a").unwrap();
            let raws: Vec<&[u8]> = a.elements().map(|v| v.raw()).collect();
            assert_eq!(
                raws,
                [
                    &b"1"[..],
                    b"-2",
                    b"18446744073709551615",
                    b"1.50",
                    br#""x\"y\\""#,
                    b"true",
                    b"null",
                    b"{}"
                ]
            );
            assert_eq!(a.elements().nth(2).unwrap().as_u64(), Some(u64::MAX));
            assert_eq!(a.elements().nth(1).unwrap().as_i64(), Some(-2));
            assert_eq!(a.elements().nth(3).unwrap().kind(), Kind::Float);
            assert_eq!(a.elements().nth(4).unwrap().as_str(), Some("x\"y\\"));
            assert_eq!(root.get("b").unwrap().compact(), br#"{"c":"d"}"#);
            assert!(root.get("zz").is_none());
        });
    }

    #[test]
    fn compact_keeps_strings_and_numbers() {
        let text = "{ \"k\" : \"a  b\\\" \\u00e9 /\" ,\n \"n\" : [ 1.10 , 2e5 ] }";
        assert_eq!(
            compact(text.as_bytes()),
            b"{\"k\":\"a  b\\\" \\u00e9 /\",\"n\":[1.10,2e5]}"
        );
    }

    #[test]
    fn invalid_input_is_an_error() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":}",
            "18446744073709551616",
            "nul",
            "\"abc",
        ] {
            let r = with_doc::<(), JsonError>(bad.as_bytes(), |_| Ok(()));
            assert!(r.is_err(), "{bad:?} was accepted");
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\ é\u{1F600}\n]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(("[a-z]{1,4}", inner), 0..6)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    // Failures are not persisted into the tree; a panic fails the case quietly with its
    // report, so shrinking does not print one report per case tried.
    #[test]
    fn split_array_finds_the_elements_and_refuses_other_shapes() {
        let raw = &Bytes::from_static(
            br#" {"jsonrpc":"2.0", "result" : {"x": [1, {"]":"}"}], "blocks": [ {"a":"[\"]"} , [1,2],"s" ,3 ]}, "id":1}"#,
        );
        let split = split_array(raw, &["result", "blocks"]).unwrap();
        let text = |r: std::ops::Range<usize>| std::str::from_utf8(&raw[r]).unwrap().to_owned();
        assert_eq!(
            text(split.array.clone()),
            r#"[ {"a":"[\"]"} , [1,2],"s" ,3 ]"#
        );
        let elements: Vec<String> = split.elements.iter().cloned().map(text).collect();
        assert_eq!(elements, [r#"{"a":"[\"]"}"#, "[1,2]", r#""s""#, "3"]);
        let member = with_element::<_, JsonError>(raw, &split, 0, |v| {
            Ok(v.get("a").unwrap().raw().to_vec())
        });
        assert_eq!(member.unwrap(), br#""[\"]""#);
        assert_eq!(
            with_element::<_, JsonError>(raw, &split, 1, |v| Ok(v.compact())).unwrap(),
            b"[1,2]"
        );
        // An element that only looks like a value is refused when it is parsed.
        let bad = &Bytes::from_static(br#"{"result":{"blocks":[{"a":1,}, 2]}}"#);
        let split = split_array(bad, &["result", "blocks"]).unwrap();
        assert!(matches!(
            with_element::<(), JsonError>(bad, &split, 0, |_| Ok(())),
            Err(JsonError::Invalid(_))
        ));
        let empty = split_array(br#"{"result":{"blocks":[ ]}}"#, &["result", "blocks"]).unwrap();
        assert!(empty.elements.is_empty());
        for bad in [
            &br#"{"result":{"blocks":[1 2]}}"#[..],
            br#"{"result":{"blocks":[1,2}"#,
            br#"{"result":{"blocks":{}}}"#,
            br#"{"result":{"other":[]}}"#,
            br#"[{"result":{"blocks":[]}}]"#,
            br#"{"result":{"blocks":[{"a":"unterminated}]}}"#,
        ] {
            assert_eq!(
                split_array(bad, &["result", "blocks"]),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The `memchr` compaction against the plain byte-by-byte definition, on any bytes:
        /// JSON-like text with strings, escapes and whitespace, unterminated strings included.
        #[test]
        fn compact_agrees_with_the_byte_by_byte_definition(
            bytes in prop::collection::vec(
                prop_oneof![
                    Just(b'"'), Just(b'\\'), Just(b' '), Just(b'\n'), Just(b'\t'), Just(b'\r'),
                    Just(b'{'), Just(b':'), any::<u8>(),
                ],
                0..200,
            )
        ) {
            let mut expected = Vec::new();
            let (mut in_string, mut escaped) = (false, false);
            for &b in &bytes {
                if in_string {
                    expected.push(b);
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else if !is_ws(b) {
                    in_string = b == b'"';
                    expected.push(b);
                }
            }
            prop_assert_eq!(compact(&bytes), expected);
        }

        #[test]
        fn scan_agrees_with_serde(value in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let compacted =
                catch(|| parse(&text, |root| root.compact())).map_err(TestCaseError::fail)?;
            prop_assert_eq!(compacted, serde_json::to_vec(&value).unwrap());
        }

        #[test]
        fn split_array_agrees_with_the_parser(
            items in prop::collection::vec(arb_json(), 0..6),
            pretty in any::<bool>(),
        ) {
            let doc = serde_json::json!({"id": 1, "result": {"blocks": items, "n": 2}});
            let text = if pretty {
                serde_json::to_string_pretty(&doc).unwrap()
            } else {
                serde_json::to_string(&doc).unwrap()
            };
            let raw = &Bytes::from(text.into_bytes());
            let split = split_array(raw, &["result", "blocks"])
                .ok_or_else(|| TestCaseError::fail("no split"))?;
            prop_assert_eq!(split.elements.len(), items.len());
            for (i, (range, item)) in split.elements.iter().zip(&items).enumerate() {
                let parsed: serde_json::Value = serde_json::from_slice(&raw[range.clone()])
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&parsed, item);
                // Parsed on its own with the spans of the split's walk: every value's text.
                let compacted = with_element::<_, JsonError>(raw, &split, i, |v| Ok(v.compact()))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&compacted, &serde_json::to_vec(item).unwrap());
                // Shared: a slice of the answer itself unless whitespace had to go.
                let shared = with_element::<_, JsonError>(raw, &split, i, |v| Ok(v.shared()))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&shared[..], &compacted[..]);
                if !pretty && !shared.is_empty() {
                    prop_assert!(raw.as_ptr_range().contains(&shared.as_ptr()));
                }
                let doc_spans = with_doc::<_, JsonError>(&raw[range.clone()], |v| {
                    Ok(v.doc.spans.iter().map(|s| (s.end - s.start, s.next)).collect::<Vec<_>>())
                })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let element_spans = with_element::<_, JsonError>(raw, &split, i, |v| {
                    Ok(v.doc.spans.iter().map(|s| (s.end - s.start, s.next)).collect::<Vec<_>>())
                })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(element_spans, doc_spans);
            }
        }

        /// The word-at-a-time search against `memchr2`, at every length and position.
        #[test]
        fn quote_or_backslash_agrees_with_memchr(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(b'"' + 0x80), any::<u8>()],
                0..80,
            ),
            from in 0usize..80,
        ) {
            let text = &bytes[from.min(bytes.len())..];
            prop_assert_eq!(quote_or_backslash(text), memchr::memchr2(b'"', b'\\', text));
        }

        #[test]
        fn split_array_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = catch(|| split_array(&bytes, &["result", "blocks"]).map(|s| s.elements.len()))
                .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = catch(|| with_doc::<usize, JsonError>(&bytes, |root| Ok(root.compact().len())))
                .map_err(TestCaseError::fail)?;
        }
    }
}
