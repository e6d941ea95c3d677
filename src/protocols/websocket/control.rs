//! WebSocket control messages: pings and pongs the app sends with `send`, the close frame of
//! `close_with_code`, and the heartbeat's state (a ping sent, its pong awaited). The connection
//! layer (`connection::websocket`) sends them and runs the heartbeat's timers.

use super::{Phase, WebSocketState, frame};

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

/// The control state the connection layer drives (`close_with_code`, the heartbeat).
impl WebSocketState {
    /// An open connection starts its close: the close frame to send, with this code and reason
    /// (`None`, and nothing changes, when it is not open).
    pub(crate) fn start_close(&mut self, code: u16, reason: &str) -> Option<Vec<u8>> {
        if self.phase != Phase::Open {
            return None;
        }
        self.phase = Phase::Closing;
        let mut wire = Vec::with_capacity(8 + reason.len());
        frame::encode_close(&mut wire, Some(code), reason, self.mask());
        Some(wire)
    }

    /// Marks a heartbeat ping as sent: `false` if the connection is not open, or if the last
    /// ping is still unanswered (its deadline decides).
    pub(crate) fn start_ping(&mut self) -> bool {
        if self.phase != Phase::Open || self.awaiting_pong {
            return false;
        }
        self.awaiting_pong = true;
        self.pings_sent = self.pings_sent.wrapping_add(1);
        true
    }

    /// How many heartbeat pings were sent so far (tells one ping's deadline from the next's).
    pub(crate) fn pings_sent(&self) -> u8 {
        self.pings_sent
    }

    /// Whether the last heartbeat ping is unanswered.
    pub(crate) fn awaiting_pong(&self) -> bool {
        self.awaiting_pong
    }
}
