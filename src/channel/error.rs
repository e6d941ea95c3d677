//! [`Error`]: why a publish or a history query failed.

use std::fmt;

/// Why a [`Channel`](super::Channel) request failed.
///
/// ```
/// use workerman::channel::Error;
/// let error = Error::Disconnected("relay gone".into());
/// assert!(error.is_disconnected());
/// assert!(Error::Timeout.is_timeout());
/// assert!(Error::Rejected("too large".into()).is_rejected());
/// println!("{error}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The broker (relay or Redis) is down or the link to it closed before an answer came:
    /// the request may or may not have been carried out.
    Disconnected(String),
    /// No answer within the request timeout (the broker may be down or stuck).
    Timeout,
    /// The broker or this process refused the request: an empty or too long event name, data
    /// over the size limit, a full queue, an error reply from Redis.
    Rejected(String),
    /// [`Channel::connect`](super::Channel::connect) got an address it cannot use, or the
    /// transport was already chosen.
    Address(String),
}

impl Error {
    /// Whether the broker was down ("broker down").
    ///
    /// ```
    /// assert!(!workerman::channel::Error::Timeout.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected(_))
    }

    /// Whether no answer came in time.
    ///
    /// ```
    /// assert!(workerman::channel::Error::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// Whether the request was refused.
    ///
    /// ```
    /// assert!(workerman::channel::Error::Rejected("x".into()).is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Disconnected(why) => write!(formatter, "channel: broker down: {why}"),
            Error::Timeout => formatter.write_str("channel: no answer from the broker in time"),
            Error::Rejected(why) => write!(formatter, "channel: refused: {why}"),
            Error::Address(why) => write!(formatter, "channel: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::redis::Error> for Error {
    fn from(error: crate::redis::Error) -> Error {
        match error {
            crate::redis::Error::Timeout => Error::Timeout,
            crate::redis::Error::Connection(why) => Error::Disconnected(why),
            crate::redis::Error::Server { message, .. } => Error::Rejected(message),
        }
    }
}
