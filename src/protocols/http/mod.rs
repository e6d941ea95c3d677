//! `http://`: HTTP/1.1 on the reactor, with Server-Sent Events.
//!
//! The codec is split by responsibility: [`parser`] frames and validates requests, [`Request`]
//! reads them lazily, [`Response`], [`ServerSentEvents`] and [`Chunk`] are what handlers send.
//! This module holds the per-connection state that ties them together: keep-alive (RFC 9112),
//! answers in request order for pipelined requests, streaming responses (event streams, chunked
//! bodies, large files) during which the next request waits, and the head / idle timeouts.

use std::io;
use std::time::Duration;

use crate::connection::TcpConnection;
use crate::connection::io::Actions;
use crate::protocols::Outbound;
use crate::reactor::Reactor;

mod chunk;
mod error;
mod file;
mod form;
mod mime;
pub(crate) mod parser;
mod request;
mod response;
mod sse;

pub use chunk::Chunk;
pub use error::HttpError;
pub(crate) use file::FileStream;
pub use form::UploadedFile;
pub use request::Request;
pub(crate) use request::take_buffer;
pub use response::{Body, Cookie, Response, SameSite};
pub(crate) use response::{EncodeOptions, Encoded, Framing, encode_body_response};
pub use sse::ServerSentEvents;

use parser::{Limits, RequestParser};

/// Workerman's `MAX_HEADER_LENGTH`: a request head over 16 KiB is answered 431.
pub const MAX_HEADER_SIZE: usize = 16 * 1024;

/// The answer when `on_message` panicked before answering.
pub(crate) const INTERNAL_SERVER_ERROR: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\
Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nInternal Server Error";

/// A worker's HTTP timeouts (see `Worker::set_request_head_timeout`, `set_keep_alive_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpSettings {
    pub(crate) request_head_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_head_timeout: Duration::from_secs(30),
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
    pub(crate) parser: RequestParser,
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
    /// `100 Continue` went out for the request being received.
    pub(crate) continue_sent: bool,
    /// The `Range` header of the request being answered, for `with_file`.
    pub(crate) range: Option<Box<str>>,
    pub(crate) file: Option<Box<FileStream>>,
}

/// The next request's length in `data`, or `None` while incomplete.
pub(crate) fn input(
    connection: &mut crate::connection::Connection,
    data: &[u8],
) -> Result<Option<usize>, HttpError> {
    let limits = Limits {
        max_header_size: MAX_HEADER_SIZE,
        max_package_size: connection.max_package_size,
    };
    connection.http.parser.input(data, &limits)
}

/// Builds the request from its bytes and starts answering it: later requests wait for its
/// response, and no timeout runs while the handler works.
pub(crate) fn begin_request(
    reactor: &mut Reactor,
    handle: &TcpConnection,
    raw: Vec<u8>,
) -> Option<Request> {
    let stopping = reactor.stopping;
    let connection = reactor.connection_mut(handle)?;
    let request = connection.http.parser.decode(raw);
    let http = &mut connection.http;
    http.awaiting_response = true;
    http.keep_alive = request.keep_alive() && !stopping;
    http.head_request = request.is_head();
    http.range = request.range_header().map(Box::from);
    http.head_timer_running = false;
    http.continue_sent = false;
    reactor.set_deadline(handle.key(), None);
    Some(request)
}

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Part of a request is buffered: start the head timeout (from its first byte), or stop it once
/// the head is complete. `true` when the client waits for `100 Continue` before its body.
pub(crate) fn note_partial_request(reactor: &mut Reactor, handle: &TcpConnection) -> bool {
    let now = reactor.now;
    let Some(connection) = reactor.connection_mut(handle) else {
        return false;
    };
    let timeout = connection.worker.http_settings.get().request_head_timeout;
    let http = &mut connection.http;
    if http.awaiting_response {
        return false;
    }
    if http.parser.head_complete() {
        let send_continue = http.parser.expects_continue() && !http.continue_sent;
        http.continue_sent |= send_continue;
        if std::mem::take(&mut http.head_timer_running) {
            reactor.set_deadline(handle.key(), None);
        }
        send_continue
    } else {
        if !http.head_timer_running {
            http.head_timer_running = true;
            reactor.set_deadline(handle.key(), Some(now + timeout));
        }
        false
    }
}

/// Encodes what `send` was given; `Ok(Some(close_after))` when it completes a response.
pub(crate) fn encode(
    state: &mut HttpState,
    outbound: Outbound<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<bool>, &'static str> {
    let options = EncodeOptions {
        head_request: state.head_request,
        close: !state.keep_alive,
        range: state.range.as_deref(),
    };
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
                let encoded = encode_body_response(&bytes, &options, out);
                Ok(start_response(state, encoded))
            }
        },
        Outbound::Response(response) => {
            if state.streaming != Streaming::None {
                return Err("the previous response is still streaming on this connection");
            }
            let encoded = response.encode(&options, out);
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
            out,
        ),
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
    None
}

/// A response is complete: close if it must, else the next request may go (now, or at the end
/// of this turn when it was answered from outside the read path), under the right timeout.
pub(crate) fn response_complete(
    reactor: &mut Reactor,
    handle: &TcpConnection,
    close_after: bool,
) -> Actions {
    let now = reactor.now;
    let Some(connection) = reactor.connection_mut(handle) else {
        return Actions::default();
    };
    let settings = connection.worker.http_settings.get();
    let http = &mut connection.http;
    http.awaiting_response = false;
    http.streaming = Streaming::None;
    http.range = None;
    if close_after {
        return Actions {
            close: true,
            ..Actions::default()
        };
    }
    let buffered = !connection.recv_buffer.is_empty();
    let deadline = if buffered {
        connection.http.head_timer_running = true;
        now + settings.request_head_timeout
    } else {
        now + settings.keep_alive_timeout
    };
    let run_again = !connection.dispatching && (buffered || connection.read_pending);
    reactor.set_deadline(handle.key(), Some(deadline));
    if run_again {
        reactor.ready.push_back((handle.key(), handle.id()));
    }
    Actions::default()
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
