//! `http://`: HTTP/1.1 on the reactor, with Server-Sent Events.
//!
//! The codec is split by responsibility: the (private) `parser` module frames and validates
//! requests, [`Request`] reads them lazily, [`Response`], [`ServerSentEvents`] and [`Chunk`] are
//! what handlers send.
//! This module holds the per-connection state that ties them together: keep-alive (RFC 9112),
//! answers in request order for pipelined requests, streaming responses (event streams, chunked
//! bodies, large files) during which the next request waits, and the head / idle timeouts.
//!
//! ```
//! use std::io::{Read, Write};
//! use workerman::protocols::http::{Request, Response};
//! use workerman::{TcpConnection, Worker};
//!
//! let server = Worker::spawn(|| {
//!     let mut worker = Worker::new("http://127.0.0.1:0");
//!     worker.on_message(|connection: &TcpConnection, request: Request| {
//!         let body = format!("hello {}", request.path());
//!         connection.send(Response::new(200, [("Content-Type", "text/plain")], body));
//!     });
//!     worker
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_address())?;
//! client.write_all(b"GET /world HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! client.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(answer.ends_with("\r\n\r\nhello /world"));
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use crate::protocols::Outbound;

mod chunk;
mod error;
mod fields;
mod file;
mod form;
mod mime;
pub(crate) mod parser;
mod request;
mod response;
pub(crate) mod session;
mod sse;
mod upload;

pub use chunk::Chunk;
pub use error::HttpError;
pub use fields::Field;
pub(crate) use file::FileStream;
pub use form::UploadedFile;
pub use request::Request;
pub(crate) use request::take_buffer;
pub(crate) use response::Header;
pub use response::{Body, Cookie, Response, SameSite};
pub(crate) use response::{EncodeOptions, Encoded, Framing, encode_body_response};
pub(crate) use session::SessionState;
pub use session::{SessionConfig, SessionDone, SessionHandler, is_valid_session_id};
// The session's I/O (the handle, the handlers that read and write) is the connection's; its
// public names stay here.
pub use crate::connection::session::{FileSessionHandler, Session};
pub use crate::connection::session_redis::RedisSessionHandler;
pub use sse::ServerSentEvents;
pub(crate) use upload::Upload;

use parser::{Limits, RequestParser};

/// Workerman's `MAX_HEADER_LENGTH`: a request head over 16 KiB is answered 431.
///
/// ```
/// use workerman::protocols::http::{MAX_HEADER_SIZE, Request};
///
/// let huge = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEADER_SIZE));
/// let error = Request::parse(huge.as_bytes()).unwrap_err();
/// assert_eq!(error.status(), 431);
/// ```
pub const MAX_HEADER_SIZE: usize = 16 * 1024;

/// The answer when `on_message` panicked before answering.
pub(crate) const INTERNAL_SERVER_ERROR: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\
Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nInternal Server Error";

/// A worker's HTTP timeouts (see `Worker::set_request_head_timeout`, `set_keep_alive_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpSettings {
    pub(crate) request_head_timeout: Duration,
    pub(crate) request_body_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_head_timeout: Duration::from_secs(30),
            request_body_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(60),
        }
    }
}

/// What follows the head of the response in progress.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streaming {
    #[default]
    None,
    /// `text/event-stream`: events until the connection closes.
    EventStream,
    /// `Transfer-Encoding: chunked`: chunks until an empty one.
    Chunked,
    /// A large file, pulled in pieces as the socket drains.
    File,
}

/// One HTTP connection's state.
#[derive(Default)]
pub(crate) struct HttpState {
    pub(crate) parser: ParserSlot,
    /// A request was delivered and its response is not complete: later requests wait.
    pub(crate) awaiting_response: bool,
    pub(crate) streaming: Streaming,
    /// The request being answered allows keep-alive.
    pub(crate) keep_alive: bool,
    /// The request being answered is `HEAD`.
    pub(crate) head_request: bool,
    /// The streaming response ends the connection when it ends.
    pub(crate) close_after: bool,
    /// The connection's deadline is the request-head timeout.
    pub(crate) head_timer_running: bool,
    /// The connection's deadline is the request-body timeout (a 408 when it passes).
    pub(crate) body_timer_running: bool,
    /// `100 Continue` went out for the request being received.
    pub(crate) continue_sent: bool,
    /// The `Range` header of the request being answered, for `with_file`.
    pub(crate) range: Option<Box<str>>,
    pub(crate) file: Option<Box<FileStream>>,
}

/// Parsers kept for reuse by a thread's connections.
const PARSER_POOL: usize = 64;

thread_local! {
    // The boxes themselves are what is reused (moved into and out of connections).
    #[allow(clippy::vec_box)]
    static PARSERS: RefCell<Vec<Box<RequestParser>>> = const { RefCell::new(Vec::new()) };
}

/// A connection's request parser, in a box taken when its first request arrives and given back
/// when a streaming response starts (an event stream never ends, and no request is parsed while
/// a response streams) or the connection goes. The boxes go to a small per-thread pool, so
/// neither requests nor, in steady state, new connections allocate one; a slot holding 64 bytes
/// of parser state inline in every connection would be idle in every open event stream.
#[derive(Default)]
pub(crate) struct ParserSlot(Option<Box<RequestParser>>);

impl ParserSlot {
    /// The parser, taken from the pool (or made) if the slot is empty.
    pub(crate) fn get(&mut self) -> &mut RequestParser {
        self.0.get_or_insert_with(|| {
            PARSERS
                .try_with(|pool| pool.try_borrow_mut().ok()?.pop())
                .ok()
                .flatten()
                .unwrap_or_default()
        })
    }

    /// Whether the head of the request in progress is complete (not while none is).
    pub(crate) fn head_complete(&self) -> bool {
        self.0.as_ref().is_some_and(|parser| parser.head_complete())
    }

    /// Whether the client of the request in progress waits for `100 Continue`.
    pub(crate) fn expects_continue(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|parser| parser.expects_continue())
    }

    /// Builds the request the parser just framed (see [`RequestParser::decode`]).
    pub(crate) fn decode(&mut self, raw: Vec<u8>) -> Request {
        self.get().decode(raw)
    }

    /// Gives the parser back to the pool (reset); the next request takes one again.
    pub(crate) fn release(&mut self) {
        let Some(mut parser) = self.0.take() else {
            return;
        };
        *parser = RequestParser::default();
        let _ = PARSERS.try_with(|pool| {
            let Ok(mut pool) = pool.try_borrow_mut() else {
                return;
            };
            if pool.len() < PARSER_POOL {
                if pool.capacity() == 0 {
                    pool.reserve_exact(PARSER_POOL);
                }
                pool.push(parser);
            }
        });
    }

    #[cfg(test)]
    fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for ParserSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// The next request's length in `data`, or `None` while incomplete, never streamed (a
/// WebSocket handshake).
pub(crate) fn input(
    state: &mut HttpState,
    max_package_size: usize,
    data: &[u8],
) -> Result<Option<usize>, HttpError> {
    let limits = Limits {
        max_header_size: MAX_HEADER_SIZE,
        max_package_size,
        ..Limits::default()
    };
    state.parser.get().input(data, &limits)
}

/// The multipart boundary named in a head's Content-Type.
pub(crate) fn upload_boundary(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(head).ok()?;
    let content_type = request
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-type"))?;
    let value = std::str::from_utf8(content_type.value).ok()?;
    form::multipart_boundary(value).map(str::to_owned)
}

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Encodes what `send` was given; `Ok(Some(close_after))` when it completes a response.
///
/// `pending` holds the connection's headers (`TcpConnection::set_header`), merged into the
/// response this send starts and then cleared (an event or chunk of a stream leaves them).
pub(crate) fn encode(
    state: &mut HttpState,
    outbound: Outbound<'_>,
    pending: Option<&mut Vec<Header>>,
    out: &mut Vec<u8>,
) -> Result<Option<bool>, &'static str> {
    // Only a response's head reads these; an event on a stream does not.
    fn options(state: &HttpState) -> EncodeOptions<'_> {
        EncodeOptions {
            head_request: state.head_request,
            close: !state.keep_alive,
            range: state.range.as_deref(),
        }
    }
    match outbound {
        Outbound::Bytes(bytes) => match state.streaming {
            Streaming::EventStream => {
                out.extend_from_slice(&bytes);
                Ok(None)
            }
            Streaming::Chunked => {
                if !bytes.is_empty() {
                    response::push_chunk(out, &bytes);
                }
                Ok(None)
            }
            Streaming::File => Err("a file is still being sent on this connection"),
            Streaming::None => {
                let encoded = match pending {
                    // Workerman: a plain body with connection headers is a 200 carrying them.
                    Some(headers) => Response::default()
                        .with_headers(std::mem::take(headers))
                        .with_body(bytes.into_owned())
                        .encode(&options(state), out),
                    None => encode_body_response(&bytes, &options(state), out),
                };
                Ok(start_response(state, encoded))
            }
        },
        Outbound::Response(mut response) => {
            if state.streaming != Streaming::None {
                return Err("the previous response is still streaming on this connection");
            }
            if let Some(headers) = pending {
                response = response.merge_connection_headers(std::mem::take(headers));
            }
            let encoded = response.encode(&options(state), out);
            Ok(start_response(state, encoded))
        }
        Outbound::Event(event) => {
            if state.streaming == Streaming::Chunked {
                let mut bytes = Vec::new();
                event.encode(&mut bytes);
                response::push_chunk(out, &bytes);
            } else {
                event.encode(out);
            }
            Ok(None)
        }
        Outbound::WebSocket(message) => encode(
            state,
            Outbound::Bytes(std::borrow::Cow::Owned(message.into_bytes())),
            pending,
            out,
        ),
        // Sent around the protocol (raw, shared) or WebSocket only: never reach here.
        Outbound::Raw(_) | Outbound::Shared(_) | Outbound::Ping(_) | Outbound::Pong(_) => {
            Err("not an HTTP message")
        }
        Outbound::Chunk(chunk) => {
            chunk.encode(out);
            if chunk.is_last() && state.streaming == Streaming::Chunked {
                state.streaming = Streaming::None;
                Ok(Some(state.close_after))
            } else {
                Ok(None)
            }
        }
    }
}

/// Records how the response that was just encoded continues; `Some(close_after)` if it is whole.
fn start_response(state: &mut HttpState, encoded: Encoded) -> Option<bool> {
    state.close_after = encoded.close_after;
    match encoded.framing {
        Framing::Complete => return Some(encoded.close_after),
        Framing::EventStream => state.streaming = Streaming::EventStream,
        Framing::Chunked => state.streaming = Streaming::Chunked,
        Framing::File(file) => {
            state.file = Some(Box::new(file));
            state.streaming = Streaming::File;
        }
    }
    // No request is parsed until the stream ends (an event stream never does).
    state.parser.release();
    None
}

/// What [`pump_file`] did.
pub(crate) enum Pumped {
    /// No file is being sent.
    Nothing,
    /// Another piece is in the buffer.
    More,
    /// The last piece is in the buffer: the response is complete.
    Finished { close_after: bool },
}

/// Moves the next piece of a streamed file into `out`.
pub(crate) fn pump_file(
    state: &mut HttpState,
    out: &mut Vec<u8>,
    max: usize,
) -> io::Result<Pumped> {
    let Some(file) = state.file.as_mut() else {
        return Ok(Pumped::Nothing);
    };
    if file.fill(out, max)? {
        state.file = None;
        Ok(Pumped::Finished {
            close_after: state.close_after,
        })
    } else {
        Ok(Pumped::More)
    }
}

/// Default upload threshold and largest streamed body (`Worker::set_upload_threshold`,
/// `set_max_upload_size`).
pub(crate) const DEFAULT_UPLOAD_LIMITS: (usize, usize) = (1024 * 1024, 100 * 1024 * 1024);

/// The answer to a connection over the worker's `max_connections`.
pub(crate) const SERVICE_UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\nService Unavailable";

/// A `Response` sent on a connection that is not `http://`: its bytes, as for a new request.
pub(crate) fn encode_standalone(response: Response, out: &mut Vec<u8>) {
    let options = EncodeOptions {
        head_request: false,
        close: false,
        range: None,
    };
    let _ = response.encode(&options, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stream_gives_its_parser_back_and_the_next_connection_reuses_it() {
        let mut state = HttpState::default();
        assert!(!state.parser.is_held());
        let raw = b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        let limits = Limits {
            max_header_size: MAX_HEADER_SIZE,
            max_package_size: 1 << 20,
            ..Limits::default()
        };
        assert_eq!(state.parser.get().input(&raw, &limits), Ok(Some(raw.len())));
        let request = state.parser.decode(raw);
        assert!(state.parser.is_held(), "kept for the next request");
        let pointer: *const RequestParser = state.parser.get();
        let head = Response::new(200, [("Content-Type", "text/event-stream")], "");
        let mut out = Vec::new();
        encode(&mut state, Outbound::Response(head), None, &mut out).unwrap();
        assert_eq!(state.streaming, Streaming::EventStream);
        assert!(!state.parser.is_held(), "released while the stream lasts");
        drop(request);
        let mut next = HttpState::default();
        assert!(
            std::ptr::eq(next.parser.get(), pointer),
            "taken from the pool"
        );
        assert!(!next.parser.head_complete());
    }

    #[test]
    fn http_state_stays_small() {
        assert!(
            std::mem::size_of::<HttpState>() <= 40,
            "{}",
            std::mem::size_of::<HttpState>()
        );
    }
}
