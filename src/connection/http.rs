//! The connection's side of HTTP/1.1: what the driver does around the codec in
//! `protocols::http` — frame the next request (buffered, or a large multipart body streamed to
//! disk), start answering it (keep-alive, timeouts), the 408 of a body timeout, and what a stop
//! waits for. The end of a response (close, or let the next pipelined request go) is in
//! `response_end.rs`, below the write path that reaches it; the session saved after
//! `on_message` is in `session.rs`.

use super::output;
use super::session;
use super::table::Table;
use super::{Connection, TcpConnection};
use crate::protocols::http::parser::Limits;
use crate::protocols::http::{
    HttpError, MAX_HEADER_SIZE, Request, Streaming, Upload, upload_boundary,
};
use crate::protocols::{Message, ProtocolKind};

/// What [`frame_request`] found at the start of the unconsumed bytes.
pub(crate) enum Input {
    /// More bytes are needed.
    Wait,
    /// A whole request is the first `n` bytes.
    Request(usize),
    /// The first `n` bytes went into a streamed upload; `send_continue`: the client waits for
    /// `100 Continue` before its body; `deadline`: the connection's new deadline.
    Consumed {
        consumed: usize,
        send_continue: bool,
        deadline: Option<std::time::Instant>,
    },
    /// The first `n` bytes completed a streamed upload: its request.
    Uploaded(usize, Box<Request>),
}

/// Frames the next request in `data`: buffered whole, or (a large multipart body) streamed.
/// A streamed upload that starts here runs under the body timeout: the caller sets the
/// connection's deadline to `Input::Consumed::deadline`.
pub(crate) fn frame_request(
    connection: &mut Connection,
    now: std::time::Instant,
    data: &[u8],
) -> Result<Input, HttpError> {
    if let Some(upload) = connection.extras.as_mut().and_then(|e| e.upload.as_mut()) {
        let (consumed, done) = upload.feed(data)?;
        if !done {
            return Ok(Input::Consumed {
                consumed,
                send_continue: false,
                deadline: None,
            });
        }
        let upload = connection.extras.as_mut().and_then(|e| e.upload.take());
        return Ok(match upload {
            Some(upload) => Input::Uploaded(consumed, Box::new(upload.finish())),
            None => Input::Wait,
        });
    }
    let (upload_threshold, max_upload_size) = connection.worker.upload_limits.get();
    let limits = Limits {
        max_header_size: MAX_HEADER_SIZE,
        max_package_size: connection.max_package_size,
        upload_threshold,
        max_upload_size,
    };
    let parser = connection.http.parser.get();
    match parser.input(data, &limits)? {
        Some(length) => Ok(Input::Request(length)),
        None if parser.upload_pending() => start_upload(connection, now, data),
        None => Ok(Input::Wait),
    }
}

/// The parser framed the head of a request whose body is to be streamed.
#[cold]
fn start_upload(
    connection: &mut Connection,
    now: std::time::Instant,
    data: &[u8],
) -> Result<Input, HttpError> {
    let parser = connection.http.parser.get();
    let send_continue = parser.expects_continue();
    let (head_len, layout, body_len) = parser.take_upload();
    let head = data.get(..head_len).unwrap_or_default();
    let boundary = upload_boundary(head).ok_or(HttpError::BadRequest("no boundary"))?;
    let directory = connection.worker.upload_directory.borrow().clone();
    let upload = Upload::new(
        head.to_vec(),
        layout,
        body_len,
        &boundary,
        directory,
        connection.max_package_size,
    );
    connection.extras().upload = Some(Box::new(upload));
    let timeout = connection.worker.http_settings.get().request_body_timeout;
    let http = &mut connection.http;
    http.head_timer_running = false;
    http.body_timer_running = true;
    http.continue_sent |= send_continue;
    Ok(Input::Consumed {
        consumed: head_len,
        send_continue: send_continue && body_len > 0,
        deadline: Some(now + timeout),
    })
}

/// Builds the request from its bytes and starts answering it: later requests wait for its
/// response, and no timeout runs while the handler works.
pub(crate) fn begin_request(
    table: &mut Table,
    handle: &TcpConnection,
    raw: Vec<u8>,
) -> Option<Request> {
    let connection = table.connection_mut(handle)?;
    let request = connection.http.parser.decode(raw);
    begin_parsed_request(table, handle, request)
}

/// [`begin_request`] for a request already built (a streamed upload).
#[inline]
pub(crate) fn begin_parsed_request(
    table: &mut Table,
    handle: &TcpConnection,
    mut request: Request,
) -> Option<Request> {
    let stopping = table.stopping;
    let connection = table.connection_mut(handle)?;
    request.set_connection(handle);
    if connection.extras.is_some() {
        session::forget(connection);
    }
    let http = &mut connection.http;
    http.awaiting_response = true;
    http.keep_alive = request.keep_alive() && !stopping;
    http.head_request = request.is_head();
    http.range = request.range_header().map(Box::from);
    http.head_timer_running = false;
    http.body_timer_running = false;
    http.continue_sent = false;
    table.set_deadline(handle.key(), None);
    Some(request)
}

/// Part of a request is buffered: start the head timeout (from its first byte), or stop it once
/// the head is complete. `true` when the client waits for `100 Continue` before its body.
pub(crate) fn note_partial_request(table: &mut Table, handle: &TcpConnection) -> bool {
    let now = table.now;
    let Some(connection) = table.connection_mut(handle) else {
        return false;
    };
    let settings = connection.worker.http_settings.get();
    let timeout = settings.request_head_timeout;
    let http = &mut connection.http;
    if http.awaiting_response {
        return false;
    }
    if http.parser.head_complete() {
        let send_continue = http.parser.expects_continue() && !http.continue_sent;
        http.continue_sent |= send_continue;
        // The head is whole and the body is not: the body timeout runs from now.
        http.head_timer_running = false;
        if !std::mem::replace(&mut http.body_timer_running, true) {
            table.set_deadline(handle.key(), Some(now + settings.request_body_timeout));
        }
        send_continue
    } else {
        if !http.head_timer_running {
            http.head_timer_running = true;
            table.set_deadline(handle.key(), Some(now + timeout));
        }
        false
    }
}

/// The worker's session handler completes later: a request with a session cookie is held
/// until its session is read (`None`), else it (or any other message) comes back, to be
/// delivered now.
#[cold]
pub(crate) fn hold_for_session(handle: &TcpConnection, message: Message) -> Option<Message> {
    match message {
        Message::Request(request) => session::hold_for_read(handle, request).map(Message::Request),
        other => Some(other),
    }
}

/// A connection's deadline passed: `true` if it was the request-body timeout, answered here
/// with `408 Request Timeout` (the connection ends); else the caller destroys it.
pub(crate) fn on_deadline(handle: &TcpConnection) -> bool {
    let body = super::table::with(|table| {
        table
            .connection_mut(handle)
            .is_some_and(|connection| std::mem::take(&mut connection.http.body_timer_running))
    });
    if body {
        log::debug!("connection {}: request body timed out", handle.id());
        output::send_raw(handle, HttpError::RequestTimeout.response());
        output::end(handle);
    }
    body
}

/// During a stop, an HTTP connection is left to finish: the request in progress is answered
/// with `Connection: close` (see [`begin_request`]), which closes it, rather than closed under
/// a request that may already be on its way. True for an `http://` connection that is not an
/// endless event stream.
pub(crate) fn finishes_before_stop(connection: &Connection) -> bool {
    matches!(*connection.worker.protocol.borrow(), ProtocolKind::Http)
        && connection.http.streaming != Streaming::EventStream
}

/// Nothing of a request received and none being answered: closing now cuts nothing (only a
/// request the client sends at this very moment).
pub(crate) fn between_requests(connection: &Connection) -> bool {
    !connection.http.awaiting_response
        && connection.recv_buffer.is_empty()
        && (connection.extras.as_ref()).is_none_or(|extras| extras.upload.is_none())
}
