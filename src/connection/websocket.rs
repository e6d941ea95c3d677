//! The connection's side of WebSocket: it feeds the codec (`protocols::websocket`, bytes in,
//! `Output`s out) and acts on what it returns: the handshake's callbacks and its 101 answer,
//! pongs, `on_websocket_ping`/`pong`/`close`, the close handshake. Also `close_with_code`, the
//! server's heartbeat (a ping every interval; a peer that does not answer by the pong deadline
//! is closed) and the per-connection settings. The frames and the state are the codec's; the
//! callbacks, timers and writes are here.
//!
//! The close handshake: when our close frame goes out first (`close`, `close_with_code`), the
//! connection keeps reading for the peer's close frame, for at most a second (`close` in
//! `connection/output.rs` sets the deadline), and closes TCP only then, so the peer (a browser) sees
//! a clean close and our socket holds no unread bytes (which would make the kernel send RST
//! instead of FIN).

use super::output;
use super::table::{self, call_user, try_with, with};
use super::timer_queue::TimerCallback;
use super::{Connection, TcpConnection};
use crate::protocols::Message;
use crate::protocols::http::Request;
use crate::protocols::websocket::control::sendable_close_code;
use crate::protocols::websocket::{self as codec, HandshakeResponse, Output, frame};
use crate::protocols::websocket::{Ping, WebSocketState, WebSocketType};

impl TcpConnection {
    /// Closes a WebSocket connection with this close code and reason (at most 123 bytes), which
    /// the peer sees (a browser in `CloseEvent.code` and `CloseEvent.reason`); then as
    /// [`close`](Self::close). Workerman: `close(pack('n', $code).$reason, true)`.
    ///
    /// Refused (`false`, nothing sent, the connection stays open) for a code that may not be
    /// sent (only 1000–1003, 1007–1014 and 3000–4999 may), a reason over 123 bytes, a
    /// connection that is not an open WebSocket.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// assert!(connection.close_with_code(4001, "token expired"));
    /// # }
    /// ```
    pub fn close_with_code(&self, code: u16, reason: &str) -> bool {
        if !sendable_close_code(code) || reason.len() > frame::MAX_CONTROL_PAYLOAD - 2 {
            log::debug!(
                "connection {}: close code {code} or its reason refused",
                self.id()
            );
            return false;
        }
        let frame = try_with(|table| {
            let connection = table.connection_mut(self)?;
            if connection.status != TcpConnection::STATUS_ESTABLISHED {
                return None;
            }
            connection.websocket.as_mut()?.start_close(code, reason)
        })
        .flatten();
        let Some(frame) = frame else {
            return false;
        };
        output::send_raw(self, &frame);
        self.close();
        true
    }
}

/// The peer's close frame came (or the peer failed): close once what is queued is written.
pub(crate) fn close_handshake_done(handle: &TcpConnection) {
    let actions = with(|table| output::finish_when_flushed(table, handle));
    if let Some(actions) = actions {
        output::run_actions(handle, actions);
    }
}

/// After the handshake: starts the worker's heartbeat on this connection, if one is set.
pub(crate) fn start_heartbeat(handle: &TcpConnection) {
    let settings = with(|table| {
        table
            .connection(handle)
            .and_then(|connection| connection.worker.websocket_heartbeat.get())
    });
    let Some((interval, pong_timeout)) = settings else {
        return;
    };
    handle.add_timer(interval, move |connection, _| {
        if !with_state(connection, WebSocketState::start_ping).unwrap_or(false) {
            return;
        }
        connection.send(Ping::new(""));
        let connection = connection.clone();
        let ping = with_state(&connection, |state| state.pings_sent());
        table::add_timer(
            "Timer::once",
            pong_timeout,
            TimerCallback::once(move || {
                let now = with_state(&connection, |state| {
                    (state.pings_sent(), state.awaiting_pong())
                });
                if now.is_some_and(|(pings, awaiting)| Some(pings) == ping && awaiting) {
                    log::debug!(
                        "connection {}: no pong within {pong_timeout} s, closing",
                        connection.id()
                    );
                    connection.destroy();
                }
            }),
        );
    });
}

/// Runs `f` on the connection's WebSocket state (`None`: gone, or not a WebSocket).
fn with_state<R>(handle: &TcpConnection, f: impl FnOnce(&mut WebSocketState) -> R) -> Option<R> {
    with(|table| {
        table
            .connection_mut(handle)
            .and_then(|connection| connection.websocket.as_deref_mut())
            .map(f)
    })
}

// ---------------------------------------------------------------------------------------------
// The read path: the codec's output, acted on

/// What the read path does after [`advance`].
pub(crate) enum Advance {
    /// Wait for more bytes (after consuming this many).
    Wait(usize),
    /// This many bytes were taken; go on with the rest.
    Consumed(usize),
    /// A whole message, ending this many bytes in.
    Message(usize, Message),
    /// The connection is ending or refused: drop whatever else was received.
    Stop,
}

/// Feeds `data` to the codec (`protocols::websocket::advance`) and acts on what it returns:
/// the handshake's callbacks and answer, pongs, the close handshake.
pub(crate) fn advance(handle: &TcpConnection, data: &[u8]) -> Advance {
    let output = with(|table| {
        let connection = table.connection_mut(handle)?;
        let Connection {
            websocket,
            http,
            status,
            recv_paused,
            max_package_size,
            ..
        } = connection;
        let state = websocket.as_deref_mut()?;
        let reading = match *status {
            TcpConnection::STATUS_ESTABLISHED => !*recv_paused,
            // Our close frame is out: read on for the peer's.
            TcpConnection::STATUS_CLOSING => state.awaits_close(),
            _ => false,
        };
        reading.then(|| codec::advance(state, http, *max_package_size, data))
    });
    match output {
        None | Some(Output::Wait) => Advance::Wait(0),
        Some(Output::Consumed(consumed)) => Advance::Consumed(consumed),
        Some(Output::Message(consumed, message)) => Advance::Message(consumed, message),
        Some(output) => act(handle, output),
    }
}

/// The codec's outputs that take more than bytes: callbacks, answers, closes.
fn act(handle: &TcpConnection, output: Output) -> Advance {
    match output {
        Output::Upgrade {
            length,
            request,
            accept,
        } => finish_handshake(handle, length, &request, &accept),
        Output::Refuse(answer, why) => {
            log::debug!("connection {}: {why}", handle.id());
            output::send_raw(handle, &answer);
            output::end(handle);
            Advance::Stop
        }
        Output::Upgraded(length, response) => finish_client_handshake(handle, length, &response),
        Output::UpgradeFailed(why) => upgrade_failed(handle, &why),
        Output::Ping(consumed, payload) => {
            if !call_control(handle, "on_websocket_ping", payload.payload()) {
                return Advance::Stop;
            }
            let pong = with_state(handle, |state| state.pong(&payload)).flatten();
            if let Some((wire, length)) = pong {
                output::send_raw(handle, &wire[..length]);
            }
            Advance::Consumed(consumed)
        }
        Output::Pong(consumed, payload) => {
            match call_control(handle, "on_websocket_pong", payload.payload()) {
                true => Advance::Consumed(consumed),
                false => Advance::Stop,
            }
        }
        Output::PeerClose(payload) => on_peer_close(handle, &payload),
        Output::Fail(code) => {
            log::debug!(
                "connection {}: WebSocket protocol failure, closing with {code}",
                handle.id()
            );
            answer_close_and_end(handle, Some(code))
        }
        Output::Closed => {
            close_handshake_done(handle);
            Advance::Stop
        }
        Output::Wait => Advance::Wait(0),
        Output::Consumed(consumed) => Advance::Consumed(consumed),
        Output::Message(consumed, message) => Advance::Message(consumed, message),
    }
}

/// The peer's close frame: `on_websocket_close`, then our echo of its code (an empty close
/// frame for an empty one) and the end: our FIN follows the close frame, and the socket closes
/// once the peer closes its side.
fn on_peer_close(handle: &TcpConnection, payload: &frame::Control) -> Advance {
    let callback = worker_callback(handle, |connection| {
        connection
            .worker
            .callbacks
            .on_websocket_close
            .borrow()
            .clone()
    });
    if let Some(callback) = callback {
        let code = payload.close_code().unwrap_or(frame::CLOSE_NO_STATUS);
        call_user(&|| output::describe(handle, "on_websocket_close"), || {
            callback(handle, code, payload.close_reason())
        });
    }
    answer_close_and_end(handle, payload.close_code())
}

/// Our close frame answers the peer's (or a failure), if frames may still go out; then the
/// connection ends.
fn answer_close_and_end(handle: &TcpConnection, code: Option<u16>) -> Advance {
    if let Some(answer) = with_state(handle, |state| state.answer_close(code)).flatten() {
        output::send_raw(handle, &answer);
    }
    output::end(handle);
    Advance::Stop
}

/// The worker's callback that `pick` chooses (`None` when the connection is gone).
fn worker_callback<T>(
    handle: &TcpConnection,
    pick: impl FnOnce(&Connection) -> Option<T>,
) -> Option<T> {
    with(|table| table.connection(handle).and_then(pick))
}

/// Runs `on_websocket_ping` or `on_websocket_pong` with the payload, if set: `false` when it
/// panicked (the connection is then destroyed).
fn call_control(handle: &TcpConnection, name: &'static str, payload: &[u8]) -> bool {
    let callback = worker_callback(handle, |connection| {
        let callbacks = &connection.worker.callbacks;
        match name {
            "on_websocket_ping" => callbacks.on_websocket_ping.borrow().clone(),
            _ => callbacks.on_websocket_pong.borrow().clone(),
        }
    });
    let Some(callback) = callback else {
        return true;
    };
    if call_user(&|| output::describe(handle, name), || {
        callback(handle, payload)
    })
    .is_none()
    {
        output::destroy(handle);
        return false;
    }
    true
}

/// Server: the upgrade request is whole and valid: ask `on_websocket_connect`, answer 101 (with
/// whatever was queued), then `on_websocket_connected`.
fn finish_handshake(
    handle: &TcpConnection,
    length: usize,
    request: &Request,
    accept: &str,
) -> Advance {
    let callback = worker_callback(handle, |connection| {
        connection
            .worker
            .callbacks
            .on_websocket_connect
            .borrow()
            .clone()
    });
    if let Some(callback) = callback {
        if call_user(&|| output::describe(handle, "on_websocket_connect"), || {
            callback(handle, request)
        })
        .is_none()
        {
            output::destroy(handle);
            return Advance::Stop;
        }
    }
    let Some(answer) = accept_upgrade(handle, request, accept) else {
        // Refused: closed in the callback, or answered with a `Response` (closed here).
        handle.close();
        return Advance::Stop;
    };
    output::send_raw(handle, &answer);
    start_heartbeat(handle);
    let callback = worker_callback(handle, |connection| {
        connection
            .worker
            .callbacks
            .on_websocket_connected
            .borrow()
            .clone()
    });
    if let Some(callback) = callback {
        if call_user(
            &|| output::describe(handle, "on_websocket_connected"),
            || callback(handle, request),
        )
        .is_none()
        {
            output::destroy(handle);
            return Advance::Stop;
        }
    }
    Advance::Consumed(length)
}

/// The 101 answer, once `on_websocket_connect` let the upgrade through (`None`: it refused, or
/// the connection is closing); the request-head timeout ends with it.
fn accept_upgrade(handle: &TcpConnection, request: &Request, accept: &str) -> Option<Vec<u8>> {
    with(|table| {
        let connection = table.connection_mut(handle)?;
        if connection.status != TcpConnection::STATUS_ESTABLISHED {
            return None;
        }
        let deflate = connection.worker.websocket_deflate.get();
        let answer = connection
            .websocket
            .as_mut()?
            .accept_upgrade(request, accept, deflate)?;
        table.set_deadline(handle.key(), None);
        Some(answer)
    })
}

/// A `ws://` client's upgrade was answered and checked: open, send the frames held back, then
/// the client's `on_websocket_connect`.
fn finish_client_handshake(
    handle: &TcpConnection,
    length: usize,
    response: &HandshakeResponse,
) -> Advance {
    let opened = with(|table| {
        let connection = table.connection_mut(handle)?;
        let offered = connection.worker.websocket_deflate.get();
        Some(
            connection
                .websocket
                .as_mut()?
                .open_client(offered, response),
        )
    });
    let held = match opened {
        Some(Ok(held)) => held,
        Some(Err(why)) => return upgrade_failed(handle, &why),
        None => Vec::new(),
    };
    if !held.is_empty() {
        output::send_raw(handle, &held);
    }
    on_websocket_open(handle, response);
    Advance::Consumed(length)
}

/// A `ws://` client's handshake answer was checked: open, flush the frames held back, start
/// pinging, then `on_websocket_connect`.
fn on_websocket_open(handle: &TcpConnection, response: &HandshakeResponse) {
    let Some(worker) = with(|table| {
        table.set_deadline(handle.key(), None);
        table
            .connection(handle)
            .map(|connection| connection.worker.clone())
    }) else {
        return;
    };
    let Some(client) = worker.client.as_ref() else {
        return;
    };
    if let Some(interval) = client.websocket_ping_interval.get() {
        handle.add_timer(interval, |connection, _| {
            output::send_raw(
                connection,
                &crate::protocols::websocket::client::ping_frame(),
            );
        });
    }
    let callback = client.on_websocket_connect.borrow().clone();
    if let Some(callback) = callback {
        if call_user(&|| output::describe(handle, "on_websocket_connect"), || {
            callback(handle, response)
        })
        .is_none()
        {
            output::destroy(handle);
        }
    }
}

/// A `ws://` client's handshake failed: `on_error(CONNECT_FAIL)`, then the connection goes.
fn upgrade_failed(handle: &TcpConnection, why: &str) -> Advance {
    let message = format!("WebSocket handshake failed: {why}");
    log::debug!("connection {}: {message}", handle.id());
    output::fire_error(handle, TcpConnection::CONNECT_FAIL, &message);
    output::destroy(handle);
    Advance::Stop
}

// ---------------------------------------------------------------------------------------------
// The user's per-connection settings

impl TcpConnection {
    /// Sets the frame type `send` uses for text and bytes on this WebSocket connection
    /// (Workerman's `$connection->websocketType`); the default is text. A
    /// [`Message`](crate::protocols::websocket::Message) sent always keeps its own type.
    ///
    /// ```no_run
    /// use workerman::protocols::websocket::WebSocketType;
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connected(|connection, _request| {
    ///     connection.set_websocket_type(WebSocketType::Binary);
    ///     connection.send(&[1u8, 2, 3]);
    /// });
    /// ```
    pub fn set_websocket_type(&self, websocket_type: WebSocketType) {
        try_with(|table| {
            if let Some(state) = table
                .connection_mut(self)
                .and_then(|connection| connection.websocket.as_mut())
            {
                state.set_binary(websocket_type == WebSocketType::Binary);
            }
        });
    }

    /// See [`set_websocket_type`](Self::set_websocket_type) (text on other protocols).
    ///
    /// ```no_run
    /// use workerman::protocols::websocket::WebSocketType;
    /// # fn f(connection: &workerman::TcpConnection) {
    /// if connection.websocket_type() == WebSocketType::Binary {
    ///     connection.send(vec![0u8, 1, 2]);
    /// }
    /// # }
    /// ```
    pub fn websocket_type(&self) -> WebSocketType {
        let binary = try_with(|table| {
            table
                .connection(self)
                .and_then(|connection| connection.websocket.as_ref())
                .is_some_and(|state| state.binary())
        });
        if binary == Some(true) {
            WebSocketType::Binary
        } else {
            WebSocketType::Text
        }
    }

    /// Adds a header to the `101 Switching Protocols` answer; call it in `on_websocket_connect`
    /// (Workerman's `$connection->headers`), e.g. to pick a `Sec-WebSocket-Protocol`. Returns
    /// `false` (and adds nothing) once the handshake is over, on other protocols, or when the
    /// name is not a token or the value holds CR, LF or NUL.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connect(|connection, request| {
    ///     if let Some(offered) = request.header("sec-websocket-protocol") {
    ///         if offered.split(',').any(|p| p.trim() == "chat") {
    ///             connection.add_websocket_header("Sec-WebSocket-Protocol", "chat");
    ///         }
    ///     }
    /// });
    /// ```
    pub fn add_websocket_header(&self, name: &str, value: &str) -> bool {
        try_with(|table| {
            table
                .connection_mut(self)
                .and_then(|connection| connection.websocket.as_mut())
                .is_some_and(|state| state.add_header(name, value))
        })
        .unwrap_or(false)
    }
}
