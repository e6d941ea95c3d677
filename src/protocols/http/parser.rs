//! Framing and validation of HTTP/1.x requests: a push parser over the connection's receive buffer.
//!
//! [`RequestParser::input`] is called with everything received so far; it remembers how far it got,
//! so a request arriving in many small pieces is scanned once (O(n)), and a request without a body
//! is framed and validated without allocating. [`RequestParser::decode`] then turns the framed
//! bytes into a lazy [`Request`].
//!
//! The rules are Workerman's `Http::input` (v5.2), made strict where RFC 9112 asks for it:
//! Workerman's seven methods only (`GET POST OPTIONS HEAD DELETE PUT PATCH`, case-sensitive; any
//! other, `get` or `PROPFIND` included, is a 400 as in Workerman); origin-form, absolute-form (`http://host/path`) and `*` (OPTIONS only)
//! targets; HTTP/1.0 and 1.1 only; one valid Host, required in 1.1; `Transfer-Encoding: chunked`
//! alone and never with Content-Length (nor in HTTP/1.0); Content-Length digits only.

use std::mem::MaybeUninit;

use crate::protocols::http::error::HttpError;
use crate::protocols::http::form::Span;
use crate::protocols::http::request::{Layout, Request};

/// Size limits for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest request head (request line and header fields, up to the blank line); also bounds
    /// a chunked body's trailer section. Beyond it: 431.
    pub max_header_size: usize,
    /// Largest whole request (head and body as framed on the wire). Beyond it: 413.
    pub max_package_size: usize,
    /// A `multipart/form-data` body with a Content-Length over this is streamed (see
    /// [`RequestParser::upload_pending`]) instead of buffered.
    pub upload_threshold: usize,
    /// Largest streamed body. Beyond it: 413.
    pub max_upload_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_size: 16 * 1024,
            max_package_size: 10 * 1024 * 1024,
            upload_threshold: usize::MAX,
            max_upload_size: 0,
        }
    }
}

/// Header fields beyond this count give 431.
const MAX_HEADERS: usize = 100;
/// A chunk-size line (with extensions) longer than this is malformed.
const MAX_CHUNK_LINE: usize = 4096;

/// Where the parser is within the current request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Waiting for the blank line that ends the head.
    #[default]
    Head,
    /// Waiting for a Content-Length body; `pos` is the request's end.
    Length,
    /// Reading a chunk-size line that starts at `pos`.
    ChunkSize,
    /// Reading chunk data at `pos`, `remaining` bytes of it left.
    ChunkData,
    /// Expecting the CRLF after chunk data at `pos`.
    ChunkDataEnd,
    /// Reading trailer lines; the current one starts at `pos`.
    Trailers,
    /// A whole request is `buf[..pos]`.
    Done,
    /// The head (`buf[..pos]`) is whole and announces a multipart body of `remaining` bytes to
    /// be streamed rather than buffered: see [`RequestParser::take_upload`].
    Upload,
}

/// Parser-only flags, kept in the high bits of `Layout::flags`.
const LEADING_SKIPPED: u8 = 1 << 6;
const LINE_CHECKED: u8 = 1 << 7;

/// Per-connection request parser state (at most 64 bytes).
#[derive(Debug, Default)]
pub(crate) struct RequestParser {
    phase: Phase,
    layout: Layout,
    /// Where to resume looking for a line end (head, chunk-size and trailer lines).
    scan: u32,
    /// Phase-dependent position, see [`Phase`].
    pos: u32,
    /// Bytes of the current chunk still to come.
    remaining: u32,
    /// Bytes of chunk data so far.
    decoded: u32,
    /// Where the trailer section starts (after the last chunk's size line).
    trailer_start: u32,
}

impl RequestParser {
    /// `buf` starts at a request boundary and holds every byte received so far (it grows between
    /// calls for the same request; the caller never drops bytes between calls).
    ///
    /// `Ok(None)`: need more bytes. `Ok(Some(n))`: one whole request (head + body as framed on the
    /// wire) is `buf[..n]`. `Err(e)`: malformed; the caller answers `e.response()` and ends the
    /// connection (the parser is reset).
    pub(crate) fn input(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<usize>, HttpError> {
        let result = self.advance(buf, limits);
        if result.is_err() {
            *self = RequestParser::default();
        }
        result
    }

    /// True when the head is whole and its body is to be streamed (`input` said `Ok(None)`).
    pub(crate) fn upload_pending(&self) -> bool {
        self.phase == Phase::Upload
    }

    /// The streamed request's head length, layout and body length; resets the parser.
    pub(crate) fn take_upload(&mut self) -> (usize, Layout, u64) {
        let state = std::mem::take(self);
        (state.pos as usize, state.layout, u64::from(state.remaining))
    }

    /// True once the head of the request in progress is complete (used for the head timeout).
    pub(crate) fn head_complete(&self) -> bool {
        self.phase != Phase::Head
    }

    /// True when the head is complete, has `Expect: 100-continue`, and the request is HTTP/1.1:
    /// the client may wait for `HTTP/1.1 100 Continue` before sending the body (RFC 9110 §10.1.1).
    pub(crate) fn expects_continue(&self) -> bool {
        let flags = self.layout.flags;
        self.head_complete() && flags & Layout::EXPECT_CONTINUE != 0 && flags & Layout::HTTP_11 != 0
    }

    /// Turns exactly `buf[..n]` (as an owned Vec, `len == n`) from the last `Ok(Some(n))` into a
    /// [`Request`] and resets the parser for the next request. A chunked body is de-chunked in
    /// place, so this allocates nothing. Called out of turn it does not panic, but the request
    /// reads as empty or garbled.
    pub(crate) fn decode(&mut self, mut raw: Vec<u8>) -> Request {
        let state = std::mem::take(self);
        let layout = state.layout;
        let head_len = layout.head_len as usize;
        let (body, trailers) = if layout.flags & Layout::CHUNKED != 0 {
            let trailer_start = state.trailer_start as usize;
            let body_end = dechunk(&mut raw, head_len, trailer_start);
            (
                Span::new(head_len, body_end),
                Span::new(trailer_start, raw.len()),
            )
        } else {
            (Span::new(head_len, raw.len()), Span::default())
        };
        Request::from_parts(raw, layout, body, trailers)
    }

    fn advance(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
        let max_package = limits.max_package_size.min(u32::MAX as usize - 1);
        let max_header = limits.max_header_size.min(u32::MAX as usize - 1);
        if self.phase == Phase::Head {
            // Usually the whole head is in the first read: then one httparse pass frames it.
            let fresh = self.scan == 0 && self.layout.flags == 0;
            let parsed = fresh && self.parse_head(buf, buf.len().min(max_header), limits)?;
            if !parsed {
                match self.find_head_end(buf, max_header)? {
                    Some(end) => {
                        if !self.parse_head(buf, end, limits)? {
                            return Err(bad("malformed request head"));
                        }
                    }
                    None if buf.len() > max_header => return Err(HttpError::HeaderTooLarge),
                    None => return Ok(None),
                }
            }
        }
        loop {
            let pos = self.pos as usize;
            match self.phase {
                Phase::Head | Phase::Upload => return Ok(None),
                Phase::Done => return Ok(Some(pos)),
                Phase::Length => {
                    if buf.len() < pos {
                        return Ok(None);
                    }
                    self.phase = Phase::Done;
                }
                Phase::ChunkSize => {
                    let Some(newline) = self.find_line_end(buf, MAX_CHUNK_LINE) else {
                        return match buf.len().saturating_sub(pos) > MAX_CHUNK_LINE {
                            true => Err(HttpError::BadRequest("chunk size line too long")),
                            false => Ok(None),
                        };
                    };
                    let size = parse_chunk_size(&buf[pos..newline])?;
                    let next = newline + 1;
                    if size == 0 {
                        self.trailer_start = next as u32;
                        self.phase = Phase::Trailers;
                    } else {
                        // The chunk's data and its CRLF must fit in the package.
                        if (next as u64).saturating_add(size).saturating_add(2) > max_package as u64
                        {
                            return Err(HttpError::PayloadTooLarge);
                        }
                        self.remaining = size as u32;
                        self.phase = Phase::ChunkData;
                    }
                    self.pos = next as u32;
                    self.scan = next as u32;
                }
                Phase::ChunkData => {
                    let available = buf.len().saturating_sub(pos);
                    let taken = available.min(self.remaining as usize) as u32;
                    self.pos += taken;
                    self.remaining -= taken;
                    self.decoded += taken;
                    if self.remaining > 0 {
                        return Ok(None);
                    }
                    self.phase = Phase::ChunkDataEnd;
                }
                Phase::ChunkDataEnd => {
                    let Some(end) = buf.get(pos..pos + 2) else {
                        return match buf.get(pos) {
                            Some(&b) if b != b'\r' => Err(missing_chunk_crlf()),
                            _ => Ok(None),
                        };
                    };
                    if end != b"\r\n" {
                        return Err(missing_chunk_crlf());
                    }
                    self.pos += 2;
                    self.scan = self.pos;
                    self.phase = Phase::ChunkSize;
                }
                Phase::Trailers => {
                    let trailer_start = self.trailer_start as usize;
                    let limit = max_header.saturating_sub(pos - trailer_start);
                    let Some(newline) = self.find_line_end(buf, limit) else {
                        return match buf.len().saturating_sub(trailer_start) > max_header {
                            true => Err(HttpError::HeaderTooLarge),
                            false => Ok(None),
                        };
                    };
                    let end = newline + 1;
                    if end > max_package {
                        return Err(HttpError::PayloadTooLarge);
                    }
                    if newline == pos || buf[newline - 1] != b'\r' {
                        return Err(HttpError::BadRequest("trailer line must end in CRLF"));
                    }
                    self.pos = end as u32;
                    self.scan = end as u32;
                    if newline - 1 == pos {
                        // The empty line: the trailer section (maybe empty) is complete.
                        validate_trailers(&buf[trailer_start..end])?;
                        self.phase = Phase::Done;
                    }
                }
            }
        }
    }

    /// Finds the `\n` ending the line that starts at `pos`, scanning from `scan` and at most
    /// `limit` bytes past `pos`; remembers the scan progress when it is not there yet.
    fn find_line_end(&mut self, buf: &[u8], limit: usize) -> Option<usize> {
        let pos = self.pos as usize;
        let end = buf.len().min(pos.saturating_add(limit));
        let from = (self.scan as usize).max(pos);
        let region = buf.get(from..end)?;
        match region.iter().position(|&b| b == b'\n') {
            Some(offset) => Some(from + offset),
            None => {
                self.scan = end as u32;
                None
            }
        }
    }

    /// Finds the end of the head (just past the blank line) within the first `limit` bytes,
    /// resuming where the previous call stopped. Leading empty lines (RFC 9112 §2.2) are skipped.
    fn find_head_end(&mut self, buf: &[u8], limit: usize) -> Result<Option<usize>, HttpError> {
        let region = &buf[..buf.len().min(limit)];
        let mut i = self.scan as usize;
        if self.layout.flags & LEADING_SKIPPED == 0 {
            while region.get(i).is_some_and(|&b| b == b'\r' || b == b'\n') {
                i += 1;
            }
            if i == region.len() {
                self.scan = i as u32;
                return Ok(None);
            }
            self.layout.method_start = i as u32;
            self.layout.flags |= LEADING_SKIPPED;
        }
        let mut saw_line = false;
        // Where the next call resumes: the end of what has no `\n`, or a `\n` whose following
        // bytes have not all arrived.
        let mut resume = region.len();
        while let Some(offset) = region
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            let newline = i + offset;
            saw_line = true;
            match (region.get(newline + 1), region.get(newline + 2)) {
                (Some(b'\n'), _) => return Ok(Some(newline + 2)),
                (Some(b'\r'), Some(b'\n')) => return Ok(Some(newline + 3)),
                (Some(b'\r'), None) | (None, _) => {
                    resume = newline;
                    break;
                }
                _ => i = newline + 1,
            }
        }
        self.scan = resume as u32;
        // Reject a bad request line as soon as it is complete rather than waiting for the head.
        if saw_line && self.layout.flags & LINE_CHECKED == 0 {
            self.layout.flags |= LINE_CHECKED;
            let mut request = httparse::Request::new(&mut []);
            let mut headers: [MaybeUninit<httparse::Header>; 0] = [];
            match request.parse_with_uninit_headers(region, &mut headers) {
                Ok(_) | Err(httparse::Error::TooManyHeaders) => {}
                Err(_) => return Err(bad("malformed request line")),
            }
        }
        Ok(None)
    }

    /// Parses and validates the head in `buf[..end]`, then sets up body framing; `Ok(false)` (and
    /// nothing changed) if the head is not complete there.
    fn parse_head(&mut self, buf: &[u8], end: usize, limits: &Limits) -> Result<bool, HttpError> {
        let max_package = limits.max_package_size.min(u32::MAX as usize - 1);
        let head = &buf[..end];
        let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let head_len = match request.parse_with_uninit_headers(head, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeaderTooLarge),
            Err(httparse::Error::Version) => return Err(bad("unsupported HTTP version")),
            Err(httparse::Error::HeaderName) => return Err(bad("invalid header name")),
            Err(httparse::Error::HeaderValue) => return Err(bad("invalid header value")),
            Err(_) => return Err(bad("malformed request line")),
        };
        let (Some(method), Some(target), Some(version)) =
            (request.method, request.path, request.version)
        else {
            return Err(bad("malformed request line"));
        };
        if !is_known_method(method) {
            return Err(bad("unknown method"));
        }
        let layout = &mut self.layout;
        layout.method_start = Span::of(buf, method.as_bytes()).start;
        layout.head_len = head_len as u32;
        if version == 1 {
            layout.flags |= Layout::HTTP_11;
        }

        // The request target: origin-form, absolute-form, or `*` for OPTIONS.
        let target_span = Span::of(buf, target.as_bytes());
        layout.target_start = target_span.start;
        layout.uri = target_span;
        let target = target.as_bytes();
        if target.first() == Some(&b'/') {
            // origin-form
        } else if target == b"*" {
            if method != "OPTIONS" {
                return Err(bad("asterisk target is only for OPTIONS"));
            }
        } else {
            let scheme_len = if starts_with_ignore_case(target, b"http://") {
                7
            } else if starts_with_ignore_case(target, b"https://") {
                8
            } else {
                return Err(bad("invalid request target"));
            };
            let rest = &target[scheme_len..];
            let authority_len = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            if authority_len == 0 || !valid_host(&rest[..authority_len]) {
                return Err(bad("invalid authority in request target"));
            }
            match rest.get(authority_len) {
                None => layout.flags |= Layout::ROOT_URI,
                Some(b'/') => {}
                Some(_) => return Err(bad("invalid request target")),
            }
            layout.uri.start = target_span.start + (scheme_len + authority_len) as u32;
        }

        // Header fields that matter for framing, routing and keep-alive.
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let (mut close, mut keep_alive) = (false, false);
        for header in request.headers.iter() {
            let name = header.name.as_bytes();
            let value = trim(header.value);
            if name.eq_ignore_ascii_case(b"host") {
                if !layout.host.is_absent() {
                    return Err(bad("duplicate Host header"));
                }
                if !valid_host(value) {
                    return Err(bad("invalid Host header"));
                }
                layout.host = Span::of(buf, value);
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let length = parse_content_length(value)?;
                if content_length.is_some_and(|previous| previous != length) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                content_length = Some(length);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                if chunked {
                    return Err(bad("repeated Transfer-Encoding header"));
                }
                if !value.eq_ignore_ascii_case(b"chunked") {
                    return Err(bad("unsupported Transfer-Encoding"));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',') {
                    let token = trim(token);
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    layout.flags |= Layout::EXPECT_CONTINUE;
                }
            } else if name.eq_ignore_ascii_case(b"range") && layout.range.is_absent() {
                layout.range = Span::of(buf, value);
            }
        }
        let http_11 = version == 1;
        if http_11 && layout.host.is_absent() {
            return Err(bad("missing Host header"));
        }
        if !close && (http_11 || keep_alive) {
            layout.flags |= Layout::KEEP_ALIVE;
        }
        if head_len > max_package {
            return Err(HttpError::PayloadTooLarge);
        }

        // Body framing.
        if chunked {
            if content_length.is_some() {
                return Err(bad("both Transfer-Encoding and Content-Length"));
            }
            if !http_11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            layout.flags |= Layout::CHUNKED;
            self.phase = Phase::ChunkSize;
            self.pos = head_len as u32;
            self.scan = head_len as u32;
        } else if let Some(length) = content_length.filter(|&length| length > 0) {
            // The Content-Type is looked up only for a body this large (off the common path).
            if length > limits.upload_threshold as u64 && is_form_data(request.headers) {
                let max_upload = limits.max_upload_size.min(u32::MAX as usize);
                if length > max_upload as u64 {
                    return Err(HttpError::PayloadTooLarge);
                }
                self.phase = Phase::Upload;
                self.pos = head_len as u32;
                self.remaining = length as u32;
                return Ok(true);
            }
            let total = head_len as u64 + length;
            if total > max_package as u64 {
                return Err(HttpError::PayloadTooLarge);
            }
            self.phase = Phase::Length;
            self.pos = total as u32;
        } else {
            self.phase = Phase::Done;
            self.pos = head_len as u32;
        }
        Ok(true)
    }
}

/// A `multipart/form-data` Content-Type with a boundary: a body that can be streamed.
#[cold]
fn is_form_data(headers: &[httparse::Header<'_>]) -> bool {
    let Some(content_type) = headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-type"))
    else {
        return false;
    };
    std::str::from_utf8(trim(content_type.value)).is_ok_and(|value| {
        starts_with_ignore_case(value.trim_start().as_bytes(), b"multipart/form-data")
            && crate::protocols::http::form::multipart_boundary(value).is_some()
    })
}

/// Workerman's `Http::input` answers 400 to a method outside these (exact case).
#[inline]
fn is_known_method(method: &str) -> bool {
    // GET first: three byte compares, no call.
    method.as_bytes() == b"GET" || is_other_known_method(method)
}

fn is_other_known_method(method: &str) -> bool {
    matches!(
        method,
        "POST" | "OPTIONS" | "HEAD" | "DELETE" | "PUT" | "PATCH"
    )
}

fn bad(detail: &'static str) -> HttpError {
    HttpError::BadRequest(detail)
}

fn missing_chunk_crlf() -> HttpError {
    bad("missing CRLF after chunk data")
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// A Content-Length value: one or more digits, nothing else, no overflow.
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    if value.is_empty() {
        return Err(bad("empty Content-Length"));
    }
    value.iter().try_fold(0u64, |length, &b| {
        if !b.is_ascii_digit() {
            return Err(bad("invalid Content-Length"));
        }
        length
            .checked_mul(10)
            .and_then(|length| length.checked_add(u64::from(b - b'0')))
            .ok_or(bad("Content-Length overflows"))
    })
}

/// A chunk-size line without its `\n`: hex digits, optional `;extensions`, then `\r`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(bad("chunk size line must end in CRLF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad("invalid chunk size"));
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
        size = size
            .checked_mul(16)
            .and_then(|size| size.checked_add(digit))
            .ok_or(bad("chunk size overflows"))?;
    }
    let rest = trim(&line[digits..]);
    // `chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`: only checked for
    // control characters, its content is ignored.
    if !rest.is_empty()
        && (rest[0] != b';' || rest.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)))
    {
        return Err(bad("invalid chunk size"));
    }
    Ok(size)
}

/// The trailer section (fields then the blank line) must be valid header fields.
fn validate_trailers(section: &[u8]) -> Result<(), HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(section, &mut headers) {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeaderTooLarge),
        _ => Err(bad("invalid trailer field")),
    }
}

/// A Host value (RFC 9110 §7.2, RFC 3986 §3.2.2): `reg-name / IPv4 / [IPv6]` with an optional
/// `:port`. An empty value is valid (for targets without an authority).
pub(crate) fn valid_host(value: &[u8]) -> bool {
    let port = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let address = &literal[..close];
        let valid_literal = if address
            .first()
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'v'))
        {
            // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
            address.len() > 3
                && address
                    .iter()
                    .skip(1)
                    .all(|&b| is_reg_name_byte(b) || b == b':')
        } else {
            address.contains(&b':')
                && address
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        };
        if !valid_literal {
            return false;
        }
        &literal[close + 1..]
    } else {
        let colon = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        let host = &value[..colon];
        if !valid_reg_name(host) || (host.is_empty() && !value.is_empty()) {
            return false;
        }
        &value[colon..]
    };
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// `*( unreserved / pct-encoded / sub-delims )`.
fn valid_reg_name(host: &[u8]) -> bool {
    // The common case, a name or an IPv4 address: one table lookup a byte.
    if host.iter().all(|&b| is_reg_name_byte(b)) {
        return true;
    }
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let escape = host.get(i + 1..i + 3);
                if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_reg_name_byte(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// unreserved / sub-delims.
fn is_reg_name_byte(b: u8) -> bool {
    REG_NAME_BYTES[b as usize]
}

/// `REG_NAME_BYTES[b]`: `b` is unreserved or a sub-delim (RFC 3986), so a Host check costs one
/// lookup a byte (it runs on every request).
static REG_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

/// Removes chunked framing in place: the data of every chunk is moved to `raw[start..]`,
/// contiguous; returns the end of the decoded body. The trailer section, which follows every
/// chunk, is left where it is. The framing was validated by `input`, so this only walks it.
fn dechunk(raw: &mut [u8], start: usize, trailer_start: usize) -> usize {
    let framed_end = trailer_start.min(raw.len());
    let mut read = start;
    let mut write = start;
    while let Some(rest) = raw.get(read..framed_end) {
        let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let size = rest[..digits]
            .iter()
            .try_fold(0usize, |size, &b| {
                let digit = (b as char).to_digit(16)? as usize;
                size.checked_mul(16)?.checked_add(digit)
            })
            .unwrap_or(0);
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        read += newline + 1;
        let data_end = read.saturating_add(size);
        if size == 0 || data_end > framed_end {
            break;
        }
        raw.copy_within(read..data_end, write);
        write += size;
        read = data_end + 2;
    }
    write
}

/// `Request::parse` is the parser's: a request is what it makes (`request.rs` knows nothing of
/// the parser).
impl Request {
    /// Parses one complete request from `bytes` with the default limits (16 KiB head, 10 MiB in
    /// all), like Workerman's `new Request($buffer)` but validated. Bytes after the first request
    /// are ignored; an incomplete request is a `BadRequest`.
    ///
    /// ```
    /// use workerman::protocols::http::{HttpError, Request};
    ///
    /// let request = Request::parse(b"GET / HTTP/1.0\r\n\r\n")?;
    /// assert_eq!(request.protocol_version(), "1.0");
    /// assert_eq!(
    ///     Request::parse(b"GET / HTTP/1.1\r\n\r\n").err(),
    ///     Some(HttpError::BadRequest("missing Host header"))
    /// );
    /// # Ok::<(), HttpError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Request, HttpError> {
        let mut parser = RequestParser::default();
        match parser.input(bytes, &Limits::default())? {
            Some(len) => Ok(parser.decode(bytes[..len].to_vec())),
            None => Err(HttpError::BadRequest("incomplete request")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_with(bytes: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
        RequestParser::default().input(bytes, limits)
    }

    fn input(bytes: &[u8]) -> Result<Option<usize>, HttpError> {
        input_with(bytes, &Limits::default())
    }

    /// The status of the error `bytes` must give.
    fn status(bytes: &[u8]) -> u16 {
        match input(bytes) {
            Err(error) => error.status(),
            Ok(result) => panic!(
                "expected an error for {:?}, got {result:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    fn decode(bytes: &[u8]) -> Request {
        let mut parser = RequestParser::default();
        let len = parser
            .input(bytes, &Limits::default())
            .unwrap()
            .expect("a complete request");
        parser.decode(bytes[..len].to_vec())
    }

    /// A request with the given head fields after `Host: h`.
    fn with_headers(fields: &str) -> Vec<u8> {
        format!("GET / HTTP/1.1\r\nHost: h\r\n{fields}\r\n").into_bytes()
    }

    #[test]
    fn parser_state_is_small() {
        assert!(std::mem::size_of::<RequestParser>() <= 64);
    }

    #[test]
    fn complete_get() {
        let raw = b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        let request = decode(raw);
        assert_eq!(request.method(), "GET");
        assert_eq!(request.uri(), "/a?b=c");
        assert_eq!(request.protocol_version(), "1.1");
        assert_eq!(request.host(), Some("example.com"));
        assert!(request.raw_body().is_empty());
    }

    #[test]
    fn incomplete_head_needs_more() {
        assert_eq!(input(b""), Ok(None));
        assert_eq!(input(b"GET / HTTP/1.1\r\nHost: h\r\n"), Ok(None));
        assert_eq!(input(b"GET / HTTP/1.1\r\nHost: h\r\n\r"), Ok(None));
    }

    #[test]
    fn pipelined_request_ends_at_its_own_length() {
        let first = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut both = first.to_vec();
        both.extend_from_slice(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(input(&both), Ok(Some(first.len())));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let raw = b"\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        let request = decode(raw);
        assert_eq!(request.method(), "GET");
        assert_eq!(request.raw_head(), b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(input(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn only_workermans_seven_methods_are_accepted() {
        for method in ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            let raw = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(decode(raw.as_bytes()).method(), method);
        }
        for method in ["get", "Get", "PROPFIND", "M-SEARCH", "TRACE", "BREW"] {
            let raw = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{method}");
        }
        assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn request_targets() {
        let request =
            decode(b"GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
        assert_eq!(request.uri(), "/p?q=1");
        assert_eq!(request.path(), "/p");
        let request = decode(b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(request.uri(), "/");
        let request = decode(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(request.uri(), "*");
        assert_eq!(status(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET ftp://h/p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(
            status(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://u@h/p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn only_http_1_0_and_1_1() {
        assert_eq!(decode(b"GET / HTTP/1.0\r\n\r\n").protocol_version(), "1.0");
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET /\r\n\r\n"), 400);
        assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 400);
    }

    #[test]
    fn bad_request_line_is_rejected_before_the_head_ends() {
        assert_eq!(status(b"PRI * HTTP/2.0\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/3\r\nHost: h"), 400);
        // A good line with the head still incomplete just waits.
        assert_eq!(input(b"GET / HTTP/1.1\r\nHost: h\r\nX: y"), Ok(None));
    }

    /// Found by the `http_request` fuzz target: a bad method byte is rejected at once when the
    /// partial line arrives in one read, but arriving after a first byte it waits for the line
    /// end; either way it is rejected before any request is delivered.
    #[test]
    fn regression_fuzz_bad_token_in_a_partial_line_is_rejected_by_its_end() {
        let limits = Limits::default();
        assert_eq!(status(b"y\x1c"), 400);
        let mut parser = RequestParser::default();
        assert_eq!(parser.input(b"y", &limits), Ok(None));
        assert_eq!(parser.input(b"y\x1c", &limits), Ok(None));
        let rejected = parser.input(b"y\x1c / HTTP/1.1\r\n", &limits);
        assert_eq!(rejected.map_err(|error| error.status()), Err(400));
    }

    #[test]
    fn host_is_required_in_1_1_unique_and_valid() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(decode(b"GET / HTTP/1.0\r\n\r\n").host(), None);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::ff00:42:8329]",
            "[::ffff:192.0.2.1]",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "a%41b",
            "h:",
            "",
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
            assert_eq!(decode(raw.as_bytes()).host(), Some(good), "{good}");
        }
        for bad in [
            "exa mple.com",
            "h:abc",
            "h:123456",
            "[::1",
            "[::1]x",
            "[zz]",
            "[]",
            "u@h",
            ":80",
            "h/p",
            "a%4",
            "h\"",
            "h\u{e9}",
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad}");
        }
    }

    #[test]
    fn transfer_encoding_must_be_a_single_chunked() {
        let chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n";
        assert_eq!(input(chunked), Ok(Some(chunked.len())));
        for bad in [
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: identity",
            "Transfer-Encoding:",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nHost: h\r\n{bad}\r\n\r\n0\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad}");
        }
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400
        );
    }

    #[test]
    fn content_length_is_digits_only() {
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(input(&raw[..raw.len() - 1]), Ok(None));
        assert_eq!(input(raw), Ok(Some(raw.len())));
        let raw =
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\nhello!!";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        for bad in [
            "abc",
            "-1",
            "+5",
            "1 2",
            "5, 5",
            "0x10",
            "",
            "5\r\nContent-Length: 6",
            "99999999999999999999999",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad:?}");
        }
    }

    #[test]
    fn payload_too_large_is_decided_from_content_length() {
        // No body bytes have arrived: the header alone decides.
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10485761\r\n\r\n";
        assert_eq!(status(raw), 413);
        let limits = Limits {
            max_header_size: 1024,
            max_package_size: 100,
            ..Limits::default()
        };
        let head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 52\r\n\r\n";
        assert_eq!(head.len(), 48);
        let raw = format!("{head}{}", "x".repeat(52));
        assert_eq!(input_with(raw.as_bytes(), &limits), Ok(Some(100)));
        let head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 53\r\n\r\n";
        assert_eq!(
            input_with(head.as_bytes(), &limits),
            Err(HttpError::PayloadTooLarge)
        );
        // A head alone above the package size.
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "x".repeat(200)
        );
        assert_eq!(
            input_with(big_head.as_bytes(), &limits),
            Err(HttpError::PayloadTooLarge)
        );
    }

    #[test]
    fn oversized_head_is_431() {
        let limits = Limits::default();
        // Exactly at the limit is fine.
        let prefix = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
        let filler = "a".repeat(limits.max_header_size - prefix.len() - 4);
        let raw = format!("{prefix}{filler}\r\n\r\n");
        assert_eq!(raw.len(), limits.max_header_size);
        assert_eq!(input(raw.as_bytes()), Ok(Some(raw.len())));
        // One byte more is not.
        let raw = format!("{prefix}{filler}a\r\n\r\n");
        assert_eq!(status(raw.as_bytes()), 431);
        // Detected while the head is still arriving, before any blank line.
        let partial = format!("{prefix}{}", "a".repeat(limits.max_header_size));
        assert_eq!(status(partial.as_bytes()), 431);
        assert_eq!(
            input(&partial.as_bytes()[..limits.max_header_size]),
            Ok(None)
        );
        // Only blank lines, forever.
        assert_eq!(status(&b"\r\n".repeat(limits.max_header_size)), 431);
    }

    #[test]
    fn too_many_headers_is_431() {
        let fields: String = (0..MAX_HEADERS - 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert!(input(&with_headers(&fields)).unwrap().is_some());
        let fields: String = (0..MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(status(&with_headers(&fields)), 431);
    }

    #[test]
    fn malformed_fields_are_400() {
        for bad in [
            "X: a\r\n b\r\n", // obsolete line folding
            "X: a\0b\r\n",    // NUL in a value
            "X: a\rb\r\n",    // bare CR in a value
            "X : a\r\n",      // space before the colon
            "X(y): a\r\n",    // not a token
            "X\r\n",          // no colon
            ": a\r\n",        // empty name
            " X: a\r\n",      // leading whitespace
            "X: a\x7f\r\n",   // DEL
        ] {
            assert_eq!(status(&with_headers(bad)), 400, "{bad:?}");
        }
        // obs-text is allowed and the value is still readable.
        let mut raw = with_headers("X: caf\u{e9}\r\nY: a");
        raw.splice(raw.len() - 2..raw.len() - 2, *b"\xff\r\n");
        let request = decode(&raw);
        assert_eq!(request.header("x"), Some("caf\u{e9}"));
        assert_eq!(request.header("y"), Some("a\u{fffd}"));
    }

    #[test]
    fn bare_lf_line_ends_are_accepted_as_httparse_does() {
        let raw = b"GET / HTTP/1.1\nHost: h\n\n";
        assert_eq!(input(raw), Ok(Some(raw.len())));
        assert_eq!(decode(raw).host(), Some("h"));
    }

    fn chunked(body: &str) -> Vec<u8> {
        format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn chunked_body_is_dechunked_with_trailers() {
        let raw = chunked(
            "5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nX-Sum: 42\r\nX-Sum: 43\r\n\r\n",
        );
        assert_eq!(input(&raw), Ok(Some(raw.len())));
        let request = decode(&raw);
        assert_eq!(request.raw_body(), b"hello 0123456789");
        assert_eq!(request.trailer("x-sum"), Some("42, 43"));
        assert_eq!(request.trailer("missing"), None);
        assert_eq!(request.header("transfer-encoding"), Some("chunked"));
        let request = decode(&chunked("0\r\n\r\n"));
        assert!(request.raw_body().is_empty());
        assert_eq!(request.trailer("x"), None);
    }

    #[test]
    fn bad_chunk_framing_is_400() {
        for bad in [
            "zz\r\nhello\r\n0\r\n\r\n",
            "\r\nhello\r\n0\r\n\r\n",
            "-5\r\nhello\r\n0\r\n\r\n",
            "0x5\r\nhello\r\n0\r\n\r\n",
            "5 x\r\nhello\r\n0\r\n\r\n",
            "5\nhello\r\n0\r\n\r\n",
            "5\r\nhelloX\r\n0\r\n\r\n",
            "5\r\nhello\n0\r\n\r\n",
            "5\r\nhello\r\n0\r\nX: y\n\r\n",
            "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            "5\r\nhello\r\n0\r\n\n",
            "5;\x01\r\nhello\r\n0\r\n\r\n",
            "10000000000000000\r\n",
        ] {
            assert_eq!(status(&chunked(bad)), 400, "{bad:?}");
        }
        // The CRLF after data is checked as soon as its first byte arrives.
        assert_eq!(status(&chunked("5\r\nhelloX")), 400);
        assert_eq!(input(&chunked("5\r\nhello\r")), Ok(None));
        // A chunk-size line that never ends.
        assert_eq!(status(&chunked(&"0".repeat(MAX_CHUNK_LINE + 10))), 400);
    }

    #[test]
    fn chunked_size_is_bounded() {
        let limits = Limits {
            max_header_size: 1024,
            max_package_size: 200,
            ..Limits::default()
        };
        // Decided from the declared chunk size, before the data arrives.
        let raw = chunked("1000\r\n");
        assert_eq!(input_with(&raw, &limits), Err(HttpError::PayloadTooLarge));
        let raw = chunked("ffffffffffffffff\r\n");
        assert_eq!(input(&raw), Err(HttpError::PayloadTooLarge));
        // Many small chunks add up.
        let raw = chunked(&"1\r\nx\r\n".repeat(40));
        assert_eq!(input_with(&raw, &limits), Err(HttpError::PayloadTooLarge));
        // Trailers are bounded by the header size.
        let raw = chunked(&format!("0\r\nX: {}\r\n\r\n", "y".repeat(2000)));
        assert_eq!(input_with(&raw, &limits), Err(HttpError::HeaderTooLarge));
    }

    #[test]
    fn keep_alive_follows_rfc_9112() {
        let cases: [(&str, &str, bool); 9] = [
            ("1.1", "", true),
            ("1.1", "Connection: close\r\n", false),
            ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false),
            ("1.1", "Connection: Upgrade\r\n", true),
            ("1.0", "", false),
            ("1.0", "Connection: keep-alive\r\n", true),
            ("1.0", "Connection: keep-alive, Upgrade\r\n", true),
            ("1.0", "Connection: close, keep-alive\r\n", false),
            ("1.0", "Connection: x\r\nConnection: Keep-Alive\r\n", true),
        ];
        for (version, fields, expected) in cases {
            let raw = format!("GET / HTTP/{version}\r\nHost: h\r\n{fields}\r\n");
            assert_eq!(
                decode(raw.as_bytes()).keep_alive(),
                expected,
                "{version} {fields:?}"
            );
        }
    }

    #[test]
    fn head_and_range_are_found_while_framing() {
        let request = decode(
            b"HEAD /f HTTP/1.1\r\nHost: h\r\nRange:  bytes=0-99 \r\nRange: bytes=5-\r\n\r\n",
        );
        assert!(request.is_head());
        assert_eq!(request.range_header(), Some("bytes=0-99"));
        let request = decode(b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(!request.is_head());
        assert_eq!(request.range_header(), None);
    }

    #[test]
    fn expect_continue_is_reported_once_the_head_is_complete() {
        let mut parser = RequestParser::default();
        let limits = Limits::default();
        let head =
            b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parser.input(&head[..20], &limits), Ok(None));
        assert!(!parser.expects_continue());
        assert_eq!(parser.input(head, &limits), Ok(None));
        assert!(parser.expects_continue());
        let mut parser = RequestParser::default();
        let head = b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parser.input(head, &limits), Ok(None));
        assert!(!parser.expects_continue());
    }

    #[test]
    fn decode_tolerates_misuse() {
        // Not part of the contract, but must not panic: decode without a complete request.
        let mut parser = RequestParser::default();
        let _ = parser.input(&chunked("5\r\nhel"), &Limits::default());
        let request = parser.decode(b"GET".to_vec());
        touch(&request);
        let request = RequestParser::default().decode(Vec::new());
        touch(&request);
    }

    #[test]
    fn head_complete_tracks_the_request_in_progress() {
        let mut parser = RequestParser::default();
        let limits = Limits::default();
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(parser.input(&raw[..10], &limits), Ok(None));
        assert!(!parser.head_complete());
        assert_eq!(parser.input(&raw[..raw.len() - 1], &limits), Ok(None));
        assert!(parser.head_complete());
        assert_eq!(parser.input(raw, &limits), Ok(Some(raw.len())));
        // Asking again without decoding gives the same answer.
        assert_eq!(parser.input(raw, &limits), Ok(Some(raw.len())));
        let request = parser.decode(raw.to_vec());
        assert_eq!(request.raw_body(), b"abc");
        assert!(!parser.head_complete());
    }

    #[test]
    fn parser_is_reset_after_an_error() {
        let mut parser = RequestParser::default();
        let limits = Limits::default();
        assert!(parser.input(b"GET / HTTP/1.1\r\n\r\n", &limits).is_err());
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(parser.input(raw, &limits), Ok(Some(raw.len())));
    }

    /// What a request decodes to, for comparing whole and piecewise parsing.
    fn summary(request: &Request) -> String {
        format!(
            "{} {} {} {:?} {:?} {:?} {:?} {}",
            request.method(),
            request.uri(),
            request.protocol_version(),
            request.host(),
            String::from_utf8_lossy(request.raw_head()),
            String::from_utf8_lossy(request.raw_body()),
            request.trailer("t"),
            request.keep_alive(),
        )
    }

    fn sample_stream() -> Vec<u8> {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"GET /plain?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n");
        stream.extend_from_slice(
            b"POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
        );
        stream.extend_from_slice(
            b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\nU: w\r\n\r\n",
        );
        stream.extend_from_slice(b"\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        stream.extend_from_slice(
            b"PUT /empty HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        stream
    }

    /// Parses a stream of pipelined requests whole: (length, summary) of each.
    fn parse_whole(stream: &[u8]) -> Vec<(usize, String)> {
        let mut parser = RequestParser::default();
        let limits = Limits::default();
        let mut results = Vec::new();
        let mut start = 0;
        while start < stream.len() {
            let len = parser.input(&stream[start..], &limits).unwrap().unwrap();
            let request = parser.decode(stream[start..start + len].to_vec());
            results.push((len, summary(&request)));
            start += len;
        }
        results
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        let stream = sample_stream();
        let whole = parse_whole(&stream);
        assert_eq!(whole.len(), 5);
        assert!(
            whole[2].1.contains("Wikipedia in\\r\\n\\r\\nchunks."),
            "{}",
            whole[2].1
        );
        assert!(whole[2].1.contains("Some(\"v\")"));

        let limits = Limits::default();
        let mut start = 0;
        for (len, expected) in &whole {
            // One parser fed a growing buffer, one byte more each call.
            let mut parser = RequestParser::default();
            for i in 0..*len {
                assert_eq!(
                    parser.input(&stream[start..start + i], &limits),
                    Ok(None),
                    "request at {start}, cut at {i}"
                );
            }
            assert_eq!(
                parser.input(&stream[start..start + len], &limits),
                Ok(Some(*len))
            );
            let request = parser.decode(stream[start..start + len].to_vec());
            assert_eq!(&summary(&request), expected);
            // A fresh parser at every cut, with the rest of the stream behind the whole request.
            for i in 0..*len {
                let fresh = RequestParser::default().input(&stream[start..start + i], &limits);
                assert_eq!(fresh, Ok(None));
            }
            assert_eq!(
                RequestParser::default().input(&stream[start..], &limits),
                Ok(Some(*len))
            );
            start += len;
        }
    }

    #[test]
    fn every_two_piece_split_of_the_stream() {
        // The caller's buffer holds a first piece, then everything: same requests either way.
        let stream = sample_stream();
        let whole = parse_whole(&stream);
        let limits = Limits::default();
        for cut in 0..stream.len() {
            let mut parser = RequestParser::default();
            let mut start = 0;
            let mut results = Vec::new();
            let first = parser.input(&stream[..cut], &limits).unwrap();
            if let Some(len) = first {
                let request = parser.decode(stream[..len].to_vec());
                results.push((len, summary(&request)));
                start = len;
            }
            while start < stream.len() {
                let len = parser.input(&stream[start..], &limits).unwrap().unwrap();
                let request = parser.decode(stream[start..start + len].to_vec());
                results.push((len, summary(&request)));
                start += len;
            }
            assert_eq!(results, whole, "cut at {cut}");
        }
    }

    #[test]
    fn large_chunked_body_in_many_pieces_is_linear() {
        // 2 MiB of 16-byte chunks fed 61 bytes at a time: a parser that rescanned from the start
        // would do ~35 G byte steps here; a linear one does a few million.
        let mut body = Vec::new();
        for _ in 0..(2 << 20) / 16 {
            body.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let mut raw = chunked("");
        raw.extend_from_slice(&body);
        let limits = Limits {
            max_header_size: 16384,
            max_package_size: 4 << 20,
            ..Limits::default()
        };
        let started = std::time::Instant::now();
        let mut parser = RequestParser::default();
        let mut end = 0;
        let len = loop {
            end = (end + 61).min(raw.len());
            if let Some(len) = parser.input(&raw[..end], &limits).unwrap() {
                break len;
            }
        };
        assert_eq!(len, raw.len());
        let request = parser.decode(raw);
        assert_eq!(request.raw_body().len(), 2 << 20);
        assert_eq!(&request.raw_body()[..20], b"0123456789abcdef0123");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn slow_head_is_scanned_once() {
        let value = "0123456789".repeat(15);
        let head = with_headers(&format!("X-Long: {value}\r\n").repeat(90));
        assert!(head.len() > 14_000);
        let mut parser = RequestParser::default();
        let limits = Limits::default();
        for i in 0..head.len() {
            assert_eq!(parser.input(&head[..i], &limits), Ok(None));
        }
        assert_eq!(parser.input(&head, &limits), Ok(Some(head.len())));
    }

    /// A small xorshift generator, so the property tests need no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Uses every accessor, to show none of them panics on whatever was accepted.
    fn touch(request: &Request) {
        let _ = summary(request);
        let _ = (
            request.path(),
            request.query_string(),
            request.host_without_port(),
        );
        let _ = request.headers().count();
        let _ = (request.get("a"), request.get_all().count());
        let _ = (
            request.post("a"),
            request.post_all().count(),
            request.file("f"),
        );
        let _ = (request.cookie("c"), request.cookies().count());
        let _ = (
            request.is_head(),
            request.range_header(),
            request.header("x"),
        );
        #[cfg(feature = "json")]
        let _ = request.json();
    }

    #[test]
    fn random_input_never_panics() {
        let pieces: [&[u8]; 32] = [
            b"GET ",
            b"POST ",
            b"/",
            b"/a?b=%zz&c",
            b" HTTP/1.1",
            b" HTTP/1.0",
            b"\r\n",
            b"\n",
            b"\r",
            b"Host: h",
            b"Host: [::1]:80",
            b"Content-Length: ",
            b"5",
            b"0",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"Cookie: a=b; c",
            b": ",
            b"\0",
            b"\xff",
            b" ",
            b"\t",
            b"a",
            b";",
            b"=",
            b"ffffffff",
            b"Range: bytes=0-",
            b"Content-Type: multipart/form-data; boundary=B",
            b"--B\r\n",
            b"--B--",
            b"Content-Type: application/json",
            b"{\"a\":1}",
        ];
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let limits = Limits {
            max_header_size: 256,
            max_package_size: 1024,
            ..Limits::default()
        };
        for round in 0..20_000 {
            let mut buf = Vec::new();
            if round % 2 == 0 {
                // Random bytes.
                for _ in 0..rng.below(300) {
                    buf.push(rng.next() as u8);
                }
            } else {
                // Random HTTP-ish pieces.
                for _ in 0..rng.below(40) {
                    buf.extend_from_slice(pieces[rng.below(pieces.len())]);
                }
            }
            let mut parser = RequestParser::default();
            let mut end = 0;
            while end < buf.len() {
                end = (end + 1 + rng.below(64)).min(buf.len());
                match parser.input(&buf[..end], &limits) {
                    Ok(None) => {}
                    Ok(Some(len)) => {
                        assert!(len <= end);
                        touch(&parser.decode(buf[..len].to_vec()));
                        break;
                    }
                    Err(error) => {
                        assert!(matches!(error.status(), 400 | 413 | 431));
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn mutated_valid_requests_never_panic() {
        let stream = sample_stream();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let limits = Limits::default();
        for _ in 0..20_000 {
            let mut buf = stream.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(buf.len());
                match rng.below(3) {
                    0 => buf[at] = rng.next() as u8,
                    1 => {
                        buf.remove(at);
                    }
                    _ => buf.insert(at, b"\r\n:;= 0%\0"[rng.below(9)]),
                }
            }
            let mut parser = RequestParser::default();
            let mut start = 0;
            loop {
                let whole = parser.input(&buf[start..], &limits);
                // The same bytes in random pieces must give the same outcome.
                let mut pieces = RequestParser::default();
                let mut end = start;
                let split = loop {
                    end = (end + 1 + rng.below(40)).min(buf.len());
                    match pieces.input(&buf[start..end], &limits) {
                        Ok(None) if end < buf.len() => {}
                        outcome => break outcome,
                    }
                };
                match (whole, split) {
                    (Ok(whole), Ok(split)) => assert_eq!(whole, split),
                    (Err(_), Err(_)) => {}
                    // A fresh parser checks every field of a partial head at once; one fed in
                    // pieces checks the request line early and the fields when the head ends.
                    (Err(_), Ok(None)) => {}
                    (whole, split) => panic!("whole {whole:?}, in pieces {split:?}"),
                }
                let Ok(Some(len)) = whole else { break };
                touch(&parser.decode(buf[start..start + len].to_vec()));
                start += len;
            }
        }
    }
}
