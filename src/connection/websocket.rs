//! The connection's side of WebSocket control: `close_with_code`, and the server's heartbeat (a
//! ping every interval; a peer that does not answer by the pong deadline is closed). The frames
//! and the state are the codec's (`protocols::websocket`); the timers and the writes are here.
//!
//! The close handshake: when our close frame goes out first (`close`, `close_with_code`), the
//! connection keeps reading for the peer's close frame, for at most a second (`close` in
//! `connection/io.rs` sets the deadline), and closes TCP only then, so the peer (a browser) sees a clean close and our socket holds no
//! unread bytes (which would make the kernel send RST instead of FIN).

use super::TcpConnection;
use crate::protocols::websocket::control::sendable_close_code;
use crate::protocols::websocket::frame;
use crate::protocols::websocket::{Ping, WebSocketState};
use crate::reactor::{try_with, with};

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
        let frame = try_with(|reactor| {
            let connection = reactor.connection_mut(self)?;
            if connection.status != TcpConnection::STATUS_ESTABLISHED {
                return None;
            }
            connection.websocket.as_mut()?.start_close(code, reason)
        })
        .flatten();
        let Some(frame) = frame else {
            return false;
        };
        super::io::send_raw(self, &frame);
        self.close();
        true
    }
}

/// The peer's close frame came (or the peer failed): close once what is queued is written.
pub(crate) fn close_handshake_done(handle: &TcpConnection) {
    let actions = with(|reactor| super::io::finish_when_flushed(reactor, handle));
    if let Some(actions) = actions {
        super::io::run_actions(handle, actions);
    }
}

/// After the handshake: starts the worker's heartbeat on this connection, if one is set.
pub(crate) fn start_heartbeat(handle: &TcpConnection) {
    let settings = with(|reactor| {
        reactor
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
        crate::Timer::once(pong_timeout, move || {
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
        });
    });
}

/// Runs `f` on the connection's WebSocket state (`None`: gone, or not a WebSocket).
fn with_state<R>(handle: &TcpConnection, f: impl FnOnce(&mut WebSocketState) -> R) -> Option<R> {
    with(|reactor| {
        reactor
            .connection_mut(handle)
            .and_then(|connection| connection.websocket.as_deref_mut())
            .map(f)
    })
}
