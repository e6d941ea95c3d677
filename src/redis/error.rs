//! [`Error`]: why a command got no value.

use std::fmt;

/// Why a command got no [`Value`](super::Value): the server answered with an error, the
/// connection failed (or was never up, or the queue was full), or no answer came in time.
///
/// ```
/// use workerman::redis::Error;
/// let error = Error::Server { kind: "WRONGTYPE".into(), message: "WRONGTYPE Operation against a key holding the wrong kind of value".into() };
/// assert!(error.is_server());
/// assert_eq!(error.kind(), Some("WRONGTYPE"));
/// assert!(Error::Timeout.is_timeout());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An error reply from Redis: `kind` is its first word (`ERR`, `WRONGTYPE`, `NOAUTH`,
    /// `NOPERM`...), `message` the whole line.
    Server {
        /// The error's first word, e.g. `WRONGTYPE`.
        kind: String,
        /// The whole error line, e.g. `WRONGTYPE Operation against a key ...`.
        message: String,
    },
    /// The command may not have reached Redis, or its answer was lost: the connection failed or
    /// closed, could not be made, sent something malformed, or the queue while disconnected was
    /// full.
    Connection(String),
    /// No answer within the reply timeout (or, while disconnected, no connection within it).
    Timeout,
}

impl Error {
    /// An error reply's line, split into its kind and message.
    pub(crate) fn server(line: &str) -> Error {
        let kind = line.split(' ').next().unwrap_or_default();
        Error::Server {
            kind: kind.to_owned(),
            message: line.to_owned(),
        }
    }

    /// Whether Redis answered with an error reply.
    ///
    /// ```
    /// assert!(!workerman::redis::Error::Timeout.is_server());
    /// ```
    pub fn is_server(&self) -> bool {
        matches!(self, Error::Server { .. })
    }

    /// Whether the connection failed (or was down) before an answer came.
    ///
    /// ```
    /// assert!(workerman::redis::Error::Connection("closed".into()).is_connection());
    /// ```
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection(_))
    }

    /// Whether no answer came within the reply timeout.
    ///
    /// ```
    /// assert!(workerman::redis::Error::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// A server error's kind (`ERR`, `WRONGTYPE`...), `None` for other errors.
    ///
    /// ```
    /// use workerman::redis::Error;
    /// assert_eq!(Error::Timeout.kind(), None);
    /// ```
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Server { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server { message, .. } => write!(formatter, "redis: {message}"),
            Error::Connection(why) => write!(formatter, "redis connection: {why}"),
            Error::Timeout => formatter.write_str("redis: no reply within the timeout"),
        }
    }
}

impl std::error::Error for Error {}
