//! WebSocket control from the app: pings and pongs sent with `send`, `close` with a chosen code
//! and reason, and the server's heartbeat (a ping every interval; a peer that does not answer by
//! the pong deadline is closed).

use super::{Phase, frame};
use crate::connection::TcpConnection;
use crate::connection::io as connection_io;
use crate::reactor::{try_with, with};

/// A ping to send with `connection.send(Ping::new(..))` (Workerman: `send("\x89\x00", true)`);
/// the peer answers with a pong carrying the same payload (`on_websocket_pong`). A payload over
/// 125 bytes is refused.
///
/// ```no_run
/// use workerman::protocols::websocket::Ping;
/// # fn f(connection: &workerman::TcpConnection) {
/// connection.send(Ping::new("are you there?"));
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping(Vec<u8>);

/// A pong to send unasked (RFC 6455 allows it as a one-way heartbeat); pings are answered
/// without it.
///
/// ```no_run
/// use workerman::protocols::websocket::Pong;
/// # fn f(connection: &workerman::TcpConnection) {
/// connection.send(Pong::new(""));
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pong(Vec<u8>);

macro_rules! control_message {
    ($name:ident) => {
        impl $name {
            /// A control message with this payload (at most 125 bytes to be sent).
            ///
            /// ```
            #[doc = concat!("use workerman::protocols::websocket::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::new(\"x\").payload(), b\"x\");")]
            /// ```
            pub fn new(payload: impl Into<Vec<u8>>) -> $name {
                $name(payload.into())
            }

            /// The payload.
            ///
            /// ```
            #[doc = concat!("use workerman::protocols::websocket::", stringify!($name), ";")]
            #[doc = concat!("let frame = ", stringify!($name), "::new(vec![1, 2, 3]);")]
            /// assert_eq!(frame.payload().len(), 3);
            /// ```
            pub fn payload(&self) -> &[u8] {
                &self.0
            }

            /// The payload, taken.
            ///
            /// ```
            #[doc = concat!("use workerman::protocols::websocket::", stringify!($name), ";")]
            #[doc = concat!("let frame = ", stringify!($name), "::new(\"heartbeat\");")]
            /// assert_eq!(String::from_utf8(frame.into_payload()).unwrap(), "heartbeat");
            /// ```
            pub fn into_payload(self) -> Vec<u8> {
                self.0
            }
        }
    };
}
control_message!(Ping);
control_message!(Pong);

/// Whether `code` may be sent in a close frame: 1000–1003, 1007–1014 (registered) or
/// 3000–4999 (libraries and applications); never 1005, 1006 or 1015, which only report.
pub(crate) fn sendable_close_code(code: u16) -> bool {
    frame::valid_close_code(code)
}

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
            let state = connection.websocket.as_mut()?;
            if state.phase != Phase::Open {
                return None;
            }
            state.phase = Phase::Closing;
            let mut wire = Vec::with_capacity(8 + reason.len());
            frame::encode_close(&mut wire, Some(code), reason, state.mask());
            Some(wire)
        })
        .flatten();
        let Some(frame) = frame else {
            return false;
        };
        connection_io::send_raw(self, &frame);
        self.close();
        true
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
        if !set_awaiting_pong(connection) {
            return;
        }
        connection.send(Ping::new(""));
        let connection = connection.clone();
        let ping = connection_generation(&connection);
        crate::Timer::once(pong_timeout, move || {
            if connection_generation(&connection) == ping && awaiting_pong(&connection) {
                log::debug!(
                    "connection {}: no pong within {pong_timeout} s, closing",
                    connection.id()
                );
                connection.destroy();
            }
        });
    });
}

/// Marks a ping as sent: `false` if the connection is not an open WebSocket, or if the last
/// ping is still unanswered (its deadline decides).
fn set_awaiting_pong(handle: &TcpConnection) -> bool {
    with(|reactor| {
        reactor
            .connection_mut(handle)
            .and_then(|connection| connection.websocket.as_mut())
            .filter(|state| state.phase == Phase::Open && !state.awaiting_pong)
            .map(|state| {
                state.awaiting_pong = true;
                state.pings_sent = state.pings_sent.wrapping_add(1);
            })
            .is_some()
    })
}

/// How many heartbeat pings were sent so far (tells one ping's deadline from the next's).
fn connection_generation(handle: &TcpConnection) -> u8 {
    with(|reactor| {
        reactor
            .connection(handle)
            .and_then(|connection| connection.websocket.as_ref())
            .map_or(0, |state| state.pings_sent)
    })
}

fn awaiting_pong(handle: &TcpConnection) -> bool {
    with(|reactor| {
        reactor
            .connection(handle)
            .and_then(|connection| connection.websocket.as_ref())
            .is_some_and(|state| state.awaiting_pong)
    })
}
