//! [`TlsSession`]: the sans-I/O TLS machine under a connection, a rustls `ServerConnection` or
//! `ClientConnection` driven as rustls's own mio example drives it: ciphertext in → plaintext
//! out, plaintext in → ciphertext out. The caller owns the socket, the timers and the loop.
//!
//! Buffers are bounded by rustls's limits: at most one record (16 KiB + overhead) of ciphertext
//! is held undecoded, plaintext is handed out as soon as it is decrypted, and at most
//! [`CIPHERTEXT_BUFFER_LIMIT`] of encrypted output waits for the socket ([`TlsSession::send`]
//! takes less when it is full). Garbage or truncated records are an error, never a panic; after
//! an error, [`TlsSession::write_to`] sends the alert rustls queued, then the caller closes.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, ServerName};

/// Encrypted bytes a session holds for the socket before [`TlsSession::send`] takes no more
/// (rustls's default; the caller's own send buffer holds the rest, as plaintext).
pub(crate) const CIPHERTEXT_BUFFER_LIMIT: usize = 64 * 1024;

/// A plain-HTTP answer for a plain-HTTP request that reached a TLS port (as nginx answers it),
/// written unencrypted before the close.
pub(crate) const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\nContent-Length: 50\r\nConnection: close\r\n\r\n\
The plain HTTP request was sent to an HTTPS port.\n";

/// Why a session cannot go on. After any of them the caller writes what
/// [`TlsSession::write_to`] still has (an alert) and closes.
#[derive(Debug)]
pub(crate) enum TlsError {
    /// The first bytes on a TLS server port were a plain-text request (`GET / HTTP/1.1`);
    /// [`PLAIN_HTTP_ON_TLS_PORT`] may be written raw before the close.
    PlainText,
    /// The peer broke the protocol (garbage, a bad certificate, a failed handshake...).
    Protocol(rustls::Error),
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::PlainText => formatter.write_str("plain-text request on a TLS port"),
            TlsError::Protocol(error) => write!(formatter, "TLS: {error}"),
            TlsError::Io(error) => write!(formatter, "TLS socket: {error}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What one [`TlsSession::receive`] or [`TlsSession::read_from`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Ciphertext bytes taken in.
    pub(crate) ciphertext: usize,
    /// Plaintext bytes appended to the caller's buffer.
    pub(crate) plaintext: usize,
    /// The handshake finished during this call.
    pub(crate) handshake_completed: bool,
    /// The peer sent `close_notify`: no more plaintext will come.
    pub(crate) peer_closed: bool,
    /// The socket reached its end (EOF); without `peer_closed` that is a truncation.
    pub(crate) socket_eof: bool,
}

/// One TLS connection's state, server or client side.
pub(crate) struct TlsSession {
    connection: Connection,
    /// A server still waiting for its first byte, which tells TLS from a plain-text request.
    awaiting_first_byte: bool,
    close_notify_queued: bool,
}

/// A reader that remembers the first byte it passed on.
struct FirstByte<'a> {
    inner: &'a mut dyn Read,
    first: Option<u8>,
}

impl Read for FirstByte<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if read > 0 && self.first.is_none() {
            self.first = Some(buffer[0]);
        }
        Ok(read)
    }
}

impl TlsSession {
    /// A server session for one accepted connection.
    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Self, TlsError> {
        let connection = ServerConnection::new(config).map_err(TlsError::Protocol)?;
        Ok(TlsSession::wrap(connection.into(), true))
    }

    /// A client session to `server_name` (sent as SNI and verified in the certificate; an IP
    /// address is verified as one and sent without SNI).
    pub(crate) fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            TlsError::Protocol(rustls::Error::General(format!(
                "not a valid TLS server name: {server_name:?}"
            )))
        })?;
        let connection = ClientConnection::new(config, name).map_err(TlsError::Protocol)?;
        Ok(TlsSession::wrap(connection.into(), false))
    }

    fn wrap(mut connection: Connection, server: bool) -> Self {
        connection.set_buffer_limit(Some(CIPHERTEXT_BUFFER_LIMIT));
        TlsSession {
            connection,
            awaiting_first_byte: server,
            close_notify_queued: false,
        }
    }

    /// True until the handshake is done (the caller's handshake deadline runs meanwhile).
    pub(crate) fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// True when ciphertext waits for [`write_to`](Self::write_to) (handshake messages,
    /// records, alerts, `close_notify`).
    pub(crate) fn wants_write(&self) -> bool {
        self.connection.wants_write()
    }

    /// The ALPN protocol agreed on, once the handshake is done.
    #[cfg_attr(not(test), allow(dead_code))] // tests and in-memory use
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.connection.alpn_protocol()
    }

    /// Whether the handshake was a full one or a resumption, once it is done.
    #[cfg(test)]
    pub(crate) fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        self.connection.handshake_kind()
    }

    /// The name the client asked for (SNI), on a server.
    #[cfg_attr(not(test), allow(dead_code))] // tests and in-memory use
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.connection {
            Connection::Server(server) => server.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// The peer's certificate chain, once shown (a server's always; a client's when asked).
    #[cfg_attr(not(test), allow(dead_code))] // tests and in-memory use
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.connection.peer_certificates()
    }

    /// Takes in ciphertext the caller already has and appends what it decrypts to `plaintext`.
    #[cfg_attr(not(test), allow(dead_code))] // tests and in-memory use
    pub(crate) fn receive(
        &mut self,
        ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, TlsError> {
        let mut rest = ciphertext;
        let received = self.read_from(&mut rest, plaintext, ciphertext.len())?;
        Ok(Received {
            socket_eof: false,
            ..received
        })
    }

    /// Reads ciphertext from `socket` until it would block, ends, or `budget` bytes were read,
    /// decrypting as it goes and appending the plaintext to `plaintext`.
    pub(crate) fn read_from(
        &mut self,
        socket: &mut dyn Read,
        plaintext: &mut Vec<u8>,
        budget: usize,
    ) -> Result<Received, TlsError> {
        let was_handshaking = self.connection.is_handshaking();
        let mut received = Received::default();
        while received.ciphertext < budget && !received.peer_closed {
            let mut source = FirstByte {
                inner: socket,
                first: None,
            };
            match self.connection.read_tls(&mut source) {
                Ok(0) => {
                    received.socket_eof = true;
                    break;
                }
                Ok(read) => received.ciphertext += read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(TlsError::Io(error)),
            }
            if self.awaiting_first_byte {
                self.awaiting_first_byte = false;
                if source.first.is_some_and(|byte| byte.is_ascii_uppercase()) {
                    return Err(TlsError::PlainText);
                }
            }
            self.process(plaintext, &mut received)?;
        }
        received.handshake_completed = was_handshaking && !self.connection.is_handshaking();
        Ok(received)
    }

    /// Decrypts what was read; moves the plaintext out so rustls's buffer never fills.
    fn process(
        &mut self,
        plaintext: &mut Vec<u8>,
        received: &mut Received,
    ) -> Result<(), TlsError> {
        let state = self
            .connection
            .process_new_packets()
            .map_err(TlsError::Protocol)?;
        let available = state.plaintext_bytes_to_read();
        if available > 0 {
            let start = plaintext.len();
            plaintext.resize(start + available, 0);
            let mut reader = self.connection.reader();
            let mut filled = 0;
            while filled < available {
                match reader.read(&mut plaintext[start + filled..]) {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    Err(_) => break,
                }
            }
            plaintext.truncate(start + filled);
            received.plaintext += filled;
        }
        received.peer_closed |= state.peer_has_closed();
        Ok(())
    }

    /// Encrypts as much of `plaintext` as fits under [`CIPHERTEXT_BUFFER_LIMIT`] and returns
    /// how much it took (0 when full: write first). Before the handshake ends, it is held and
    /// encrypted once keys exist, within the same limit.
    pub(crate) fn send(&mut self, plaintext: &[u8]) -> usize {
        if self.close_notify_queued {
            return 0;
        }
        self.connection.writer().write(plaintext).unwrap_or(0)
    }

    /// Writes waiting ciphertext to `socket` until it would block or nothing is left; returns
    /// the bytes written ([`wants_write`](Self::wants_write) tells whether some remain).
    pub(crate) fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize> {
        let mut written = 0;
        while self.connection.wants_write() {
            match self.connection.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(wrote) => written += wrote,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(written)
    }

    /// Queues `close_notify` (sent by the next [`write_to`](Self::write_to)); plaintext sent
    /// after it is refused.
    pub(crate) fn close_notify(&mut self) {
        if !self.close_notify_queued {
            self.close_notify_queued = true;
            self.connection.send_close_notify();
        }
    }
}

/// True when `bytes` start like a TLS record carrying a handshake (a ClientHello: `0x16 0x03`),
/// which a plain-text port should close on rather than parse as a request.
pub(crate) fn looks_like_tls_client_hello(bytes: &[u8]) -> bool {
    matches!(bytes, [0x16, 0x03, version, ..] if *version <= 0x04)
}
