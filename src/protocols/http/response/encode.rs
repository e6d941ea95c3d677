//! Encoding a `Response` onto the wire: the status line, the application's headers, the
//! defaults it left out (`Connection`, `Content-Type`, `Content-Length`), and the body, framed as
//! complete, Server-Sent Events or chunked. File bodies are in `file_body.rs`.

use super::Response;
use super::digits::{push_decimal, push_hex};
use super::header::{Header, is};
use super::status::reason_phrase;
use crate::protocols::http::file::FileStream;

/// The default `Content-Type`, as Workerman writes it.
const DEFAULT_CONTENT_TYPE: &str = "text/html;charset=utf-8";

impl Response {
    /// Writes the response into `out` (the head, and the body or its first part).
    ///
    /// Never allocates beyond growing `out` (a file response opens the file).
    pub(crate) fn encode(mut self, opts: &EncodeOptions<'_>, out: &mut Vec<u8>) -> Encoded {
        if !is_bodiless(self.status) {
            if let Some(source) = self.file.take() {
                return self.encode_file(source, opts, out);
            }
        }
        let scan = Scan::of(&self.headers);
        let kind = if is_bodiless(self.status) {
            Kind::Bodiless
        } else if scan.event_stream {
            Kind::EventStream
        } else if scan.chunked {
            Kind::Chunked
        } else {
            Kind::Complete
        };
        // A HEAD answer may carry the application's own Content-Length (of the GET body).
        let keep_user_length = kind == Kind::Complete && opts.head_request && scan.content_length;

        push_status_line(out, self.status, self.reason());
        for (name, value) in &self.headers {
            let skip = (opts.close && is(name, "connection"))
                || (is(name, "content-length") && !keep_user_length)
                || (is(name, "transfer-encoding") && kind != Kind::Chunked);
            if !skip {
                push_header(out, name, value);
            }
        }
        push_connection(out, opts, &scan);
        if kind != Kind::Bodiless && !scan.content_type {
            push_header(out, "Content-Type", DEFAULT_CONTENT_TYPE);
        }
        let close_after = opts.close || scan.close;
        let body = self.body.as_bytes();
        let framing = match kind {
            Kind::Bodiless => {
                out.extend_from_slice(b"\r\n");
                Framing::Complete
            }
            Kind::Complete => {
                if !keep_user_length {
                    push_content_length(out, body.len() as u64);
                }
                out.extend_from_slice(b"\r\n");
                if !opts.head_request {
                    out.extend_from_slice(body);
                }
                Framing::Complete
            }
            Kind::EventStream => {
                if !scan.cache_control {
                    push_header(out, "Cache-Control", "no-cache");
                }
                if !scan.accel_buffering {
                    push_header(out, "X-Accel-Buffering", "no");
                }
                out.extend_from_slice(b"\r\n");
                if opts.head_request {
                    Framing::Complete
                } else {
                    // Old Workerman needed a "\r\n" body to end the head; it is not an event.
                    if body.iter().any(|&b| b != b'\r' && b != b'\n') {
                        out.extend_from_slice(body);
                    }
                    Framing::EventStream
                }
            }
            Kind::Chunked => {
                out.extend_from_slice(b"\r\n");
                if opts.head_request {
                    Framing::Complete
                } else {
                    if !body.is_empty() {
                        push_chunk(out, body);
                    }
                    Framing::Chunked
                }
            }
        };
        Encoded {
            framing,
            close_after,
        }
    }
}

/// How the caller should treat the connection after [`Response::encode`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EncodeOptions<'a> {
    /// The request was `HEAD`: write the head only.
    pub head_request: bool,
    /// The connection closes after this response: write `Connection: close` instead of
    /// keep-alive.
    pub close: bool,
    /// The request's `Range` header value, for `with_file`.
    pub range: Option<&'a str>,
}

/// What follows the head that [`Response::encode`] wrote.
#[derive(Debug)]
pub(crate) enum Framing {
    /// The response is complete in `out`.
    Complete,
    /// An open Server-Sent Events stream: later `ServerSentEvents` are written raw.
    EventStream,
    /// An open chunked body: later `Chunk`s are written framed, `Chunk::new("")` ends it.
    Chunked,
    /// The rest of a large file, to be pulled with `FileStream::fill`.
    File(FileStream),
}

/// The result of encoding a response.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// What follows the head.
    pub framing: Framing,
    /// Close the connection once this response is sent (the application sent
    /// `Connection: close`, or `EncodeOptions::close`).
    pub close_after: bool,
}

/// `connection.send("ok")` on an HTTP connection: a 200 text/html response, written with no
/// intermediate struct.
pub(crate) fn encode_body_response(
    body: &[u8],
    opts: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    write_plain(200, body, opts, out)
}

/// A response with only the default headers.
pub(super) fn write_plain(
    status: u16,
    body: &[u8],
    opts: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    push_status_line(out, status, reason_phrase(status));
    out.extend_from_slice(if opts.close {
        b"Connection: close\r\n"
    } else {
        b"Connection: keep-alive\r\n"
    });
    out.extend_from_slice(b"Content-Type: text/html;charset=utf-8\r\n");
    push_content_length(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    if !opts.head_request {
        out.extend_from_slice(body);
    }
    Encoded {
        framing: Framing::Complete,
        close_after: opts.close,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bodiless,
    Complete,
    EventStream,
    Chunked,
}

/// What the application's headers already say, from one pass over them.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) connection: bool,
    pub(super) close: bool,
    pub(super) content_type: bool,
    pub(super) event_stream: bool,
    pub(super) content_length: bool,
    pub(super) chunked: bool,
    pub(super) cache_control: bool,
    pub(super) accel_buffering: bool,
    pub(super) content_disposition: bool,
    pub(super) last_modified: bool,
    pub(super) accept_ranges: bool,
}

impl Scan {
    pub(super) fn of(headers: &[Header]) -> Scan {
        let mut scan = Scan::default();
        for (name, value) in headers {
            if is(name, "connection") {
                scan.connection = true;
                scan.close |= value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("close"));
            } else if is(name, "content-type") {
                scan.content_type = true;
                scan.event_stream = is_event_stream(value);
            } else if is(name, "content-length") {
                scan.content_length = true;
            } else if is(name, "transfer-encoding") {
                // The last coding must be chunked; anything else cannot frame a response.
                scan.chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
                if !scan.chunked {
                    log::warn!("dropping Transfer-Encoding {value:?}: only chunked is supported");
                }
            } else if is(name, "cache-control") {
                scan.cache_control = true;
            } else if is(name, "x-accel-buffering") {
                scan.accel_buffering = true;
            } else if is(name, "content-disposition") {
                scan.content_disposition = true;
            } else if is(name, "last-modified") {
                scan.last_modified = true;
            } else if is(name, "accept-ranges") {
                scan.accept_ranges = true;
            }
        }
        scan
    }
}

/// `true` when a `Content-Type` value's media type is `text/event-stream` (any case, parameters
/// and surrounding spaces allowed).
fn is_event_stream(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("");
    media_type
        .trim_matches([' ', '\t'])
        .eq_ignore_ascii_case("text/event-stream")
}

/// 1xx, 204 and 304 responses never have a body (RFC 9112 §6.3).
fn is_bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

pub(super) fn push_status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_connection(out: &mut Vec<u8>, opts: &EncodeOptions<'_>, scan: &Scan) {
    if opts.close {
        push_header(out, "Connection", "close");
    } else if !scan.connection {
        push_header(out, "Connection", "keep-alive");
    }
}

pub(super) fn push_content_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
}

/// A chunk of a chunked body: `{hex len}\r\n{data}\r\n` (`0\r\n\r\n` for empty data).
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn encode_with(response: Response, opts: &EncodeOptions<'_>) -> (String, Encoded) {
        let mut out = Vec::new();
        let encoded = response.encode(opts, &mut out);
        (String::from_utf8(out).expect("utf-8 output"), encoded)
    }

    pub(crate) fn wire(response: Response) -> String {
        encode_with(response, &EncodeOptions::default()).0
    }

    pub(crate) const HEAD: EncodeOptions<'static> = EncodeOptions {
        head_request: true,
        close: false,
        range: None,
    };
    pub(crate) const CLOSE: EncodeOptions<'static> = EncodeOptions {
        head_request: false,
        close: true,
        range: None,
    };

    pub(crate) fn ranged(range: &str) -> EncodeOptions<'_> {
        EncodeOptions {
            range: Some(range),
            ..EncodeOptions::default()
        }
    }

    #[test]
    fn plain_body_response_is_workermans_bytes() {
        let mut out = Vec::new();
        let encoded = encode_body_response(b"ok", &EncodeOptions::default(), &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
              Content-Length: 2\r\n\r\nok"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
        assert!(!encoded.close_after);
    }

    #[test]
    fn plain_body_response_head_and_close() {
        let mut out = Vec::new();
        let opts = EncodeOptions {
            head_request: true,
            close: true,
            range: None,
        };
        let encoded = encode_body_response(b"hello", &opts, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html;charset=utf-8\r\n\
              Content-Length: 5\r\n\r\n"
        );
        assert!(encoded.close_after);
    }

    #[test]
    fn response_without_headers_matches_plain_send() {
        let mut plain = Vec::new();
        encode_body_response(b"ok", &EncodeOptions::default(), &mut plain);
        assert_eq!(wire(Response::ok("ok")).into_bytes(), plain);
    }

    #[test]
    fn user_headers_in_order_then_defaults() {
        let response = Response::new(201, [("X-B", "2"), ("X-A", "1")], "made");
        assert_eq!(
            wire(response),
            "HTTP/1.1 201 Created\r\nX-B: 2\r\nX-A: 1\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\nContent-Length: 4\r\n\r\nmade"
        );
    }

    #[test]
    fn user_content_type_and_connection_match_any_case() {
        let response = Response::new(
            200,
            [("content-type", "text/plain"), ("CONNECTION", "keep-alive")],
            "x",
        );
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONNECTION: keep-alive\r\nContent-Length: 1\r\n\r\nx"
        );
    }

    #[test]
    fn user_content_length_is_replaced_by_the_real_one() {
        let response = Response::new(
            200,
            [("Content-Length", "999"), ("content-length", "1")],
            "abc",
        );
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn head_keeps_content_length_and_drops_body() {
        let (bytes, encoded) = encode_with(Response::ok("hello"), &HEAD);
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 5\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn head_keeps_an_explicit_content_length() {
        let response = Response::new(200, [("Content-Length", "1234")], "");
        assert_eq!(
            encode_with(response, &HEAD).0,
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn bodiless_statuses_have_no_body_and_no_length() {
        for status in [100, 101, 103, 204, 304] {
            let response = Response::new(status, [("Content-Length", "5")], "dropped");
            let expected = format!(
                "HTTP/1.1 {status} {}\r\nConnection: keep-alive\r\n\r\n",
                reason_phrase(status)
            );
            assert_eq!(wire(response), expected);
        }
        let upgrade = Response::new(
            101,
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "",
        );
        assert_eq!(
            wire(upgrade),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn close_option_replaces_the_users_connection_header() {
        let response = Response::new(200, [("Connection", "keep-alive"), ("X", "y")], "a");
        let (bytes, encoded) = encode_with(response, &CLOSE);
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 1\r\n\r\na"
        );
        assert!(encoded.close_after);
    }

    #[test]
    fn user_connection_close_is_honoured() {
        for value in ["close", "Close", "keep-alive, close", " CLOSE "] {
            let (bytes, encoded) = encode_with(
                Response::new(200, [("Connection", value)], ""),
                &EncodeOptions::default(),
            );
            assert!(encoded.close_after, "{value}");
            assert!(!bytes.contains("keep-alive\r\n") || value.contains("keep-alive"));
        }
        let (_, encoded) = encode_with(
            Response::new(200, [("Connection", "closer")], ""),
            &EncodeOptions::default(),
        );
        assert!(!encoded.close_after);
    }

    #[test]
    fn unknown_status_has_an_empty_reason() {
        assert!(wire(Response::ok("").with_status(599)).starts_with("HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn custom_reason_phrase() {
        let response = Response::ok("")
            .with_status(200)
            .with_reason("Fine\r\nX-Evil: 1");
        assert!(wire(response).starts_with("HTTP/1.1 200 Fine  X-Evil: 1\r\nConnection"));
        let reset = Response::ok("").with_reason("Custom").with_status(404);
        assert_eq!(reset.reason(), "Not Found");
    }

    #[test]
    fn sse_seed_response() {
        let response = Response::new(200, [("Content-Type", "text/event-stream")], "\r\n");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\
             Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::EventStream));
        assert!(!encoded.close_after);
    }

    #[test]
    fn sse_media_type_any_case_with_parameters() {
        for value in [
            "text/event-stream",
            "TEXT/Event-Stream",
            "text/event-stream; charset=utf-8",
            " text/event-stream ;charset=utf-8",
            "\ttext/event-stream",
        ] {
            let response = Response::new(200, [("content-type", value)], "");
            let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
            assert!(matches!(encoded.framing, Framing::EventStream), "{value:?}");
            assert!(
                !bytes.to_ascii_lowercase().contains("content-length"),
                "{value:?}"
            );
        }
        for value in [
            "text/event-streams",
            "text/plain; x=text/event-stream",
            "text/event",
        ] {
            let response = Response::new(200, [("Content-Type", value)], "");
            let (_, encoded) = encode_with(response, &EncodeOptions::default());
            assert!(matches!(encoded.framing, Framing::Complete), "{value:?}");
        }
    }

    #[test]
    fn sse_keeps_user_cache_headers_and_writes_a_real_body() {
        let response = Response::new(
            200,
            [
                ("Content-Type", "text/event-stream"),
                ("cache-control", "no-store"),
                ("X-Accel-Buffering", "yes"),
            ],
            "retry: 1000\n\n",
        )
        .with_header("Content-Length", "10")
        .with_header("Transfer-Encoding", "chunked");
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ncache-control: no-store\r\n\
             X-Accel-Buffering: yes\r\nConnection: keep-alive\r\n\r\nretry: 1000\n\n"
        );
    }

    #[test]
    fn sse_crlf_only_bodies_are_dropped() {
        for body in ["", "\r\n", "\n", "\r\n\r\n", "\r"] {
            let response = Response::new(200, [("Content-Type", "text/event-stream")], body);
            assert!(
                wire(response).ends_with("X-Accel-Buffering: no\r\n\r\n"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn sse_head_request_is_complete() {
        let response = Response::new(200, [("Content-Type", "text/event-stream")], "data: x\n\n");
        let (bytes, encoded) = encode_with(response, &HEAD);
        assert!(bytes.ends_with("X-Accel-Buffering: no\r\n\r\n"));
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn sse_error_status_is_a_normal_response() {
        let response = Response::new(204, [("Content-Type", "text/event-stream")], "");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 204 No Content\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn chunked_first_chunk_is_the_body() {
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], "x");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n1\r\nx\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Chunked));
    }

    #[test]
    fn chunked_empty_body_writes_no_chunk() {
        let response = Response::new(
            200,
            [("transfer-encoding", "Chunked"), ("Content-Length", "3")],
            "",
        );
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Chunked));
    }

    #[test]
    fn chunked_length_is_hex() {
        let body = "a".repeat(255);
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], body.clone());
        assert!(wire(response).ends_with(&format!("\r\n\r\nff\r\n{body}\r\n")));
    }

    #[test]
    fn chunked_head_request_is_complete() {
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], "x");
        let (bytes, encoded) = encode_with(response, &HEAD);
        assert!(bytes.ends_with("charset=utf-8\r\n\r\n"));
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn non_chunked_transfer_encoding_is_dropped() {
        let response = Response::new(200, [("Transfer-Encoding", "gzip")], "abc");
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn odd_headers_cannot_split_the_response() {
        let response = Response::ok("")
            .with_header("X-Evil", "a\r\nSet-Cookie: owned=1")
            .with_header("Bad Name", "v")
            .with_header("Bad:Name", "v")
            .with_header("", "v")
            .with_header("Bad\r\nName", "v")
            .with_header("X-Nul", "a\0b\x7fc\td");
        assert_eq!(
            response.headers().collect::<Vec<_>>(),
            [("X-Evil", "a  Set-Cookie: owned=1"), ("X-Nul", "a b c\td")]
        );
        let bytes = wire(response);
        assert_eq!(bytes.matches("\r\n").count(), 7, "{bytes}");
    }

    #[test]
    fn unicode_body_length_is_in_bytes() {
        assert!(wire(Response::ok("你好")).contains("Content-Length: 6\r\n\r\n你好"));
    }
}
