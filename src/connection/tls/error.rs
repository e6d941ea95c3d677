//! [`SslContextError`]: why an ssl context could not be loaded, in one line naming the file.

use std::fmt;
use std::path::Path;

/// Why an [`SslContext`](super::SslContext) could not be turned into a TLS configuration: a
/// missing or unreadable file, a file without a certificate or key, an encrypted key, a key that
/// does not match its certificate. The message is one line and names the file and the setting.
///
/// ```
/// use workerman::connection::SslContext;
///
/// let error = SslContext::new()
///     .local_cert("/nonexistent/server.pem")
///     .local_pk("/nonexistent/server.key")
///     .check()
///     .unwrap_err();
/// assert!(error.to_string().contains("/nonexistent/server.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslContextError {
    message: String,
}

impl SslContextError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SslContextError {
            message: message.into(),
        }
    }

    /// An error about one file: `ssl <setting> <path>: <what>`.
    pub(crate) fn file(setting: &str, path: &Path, what: impl fmt::Display) -> Self {
        SslContextError::new(format!("ssl {setting} {}: {what}", path.display()))
    }
}

impl fmt::Display for SslContextError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for SslContextError {}

impl From<SslContextError> for std::io::Error {
    fn from(error: SslContextError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
    }
}
