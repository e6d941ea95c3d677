//! [`TlsLayer`]: a [`TlsSession`] as the driver's transport [`Layer`]: ciphertext from the
//! socket in, plaintext to the codec out, and back.

use std::io::{self, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::session::{PLAIN_HTTP_ON_TLS_PORT, TlsError, TlsSession};
use crate::connection::stream::Stream;
use crate::connection::transport::{Layer, LayerFactory};

/// Ciphertext read from the socket per step before the plaintext is handed on.
const READ_BUDGET: usize = 64 * 1024;

/// One connection's TLS, with the plaintext decrypted but not yet taken by the driver.
pub(crate) struct TlsLayer {
    session: TlsSession,
    plaintext: Vec<u8>,
    plaintext_offset: usize,
    /// The peer's end came (close_notify or FIN): `read` answers `Ok(0)` once drained.
    ended: bool,
    /// Ciphertext made but not yet taken by the socket, from `held_offset` on. The session's
    /// own output buffer is always moved here (or to the socket) before a call returns, so
    /// this is all the ciphertext the connection holds, and [`Layer::pending`] counts it.
    held: Vec<u8>,
    held_offset: usize,
    /// Plaintext taken while the handshake runs: rustls keeps it until its keys exist.
    early: usize,
}

/// A drained ciphertext buffer larger than this is freed, not kept (an idle connection holds
/// no big buffer after a burst).
const KEEP_HELD_CAPACITY: usize = 16 * 1024;

impl TlsLayer {
    pub(super) fn new(session: TlsSession) -> Self {
        TlsLayer {
            session,
            plaintext: Vec::new(),
            plaintext_offset: 0,
            ended: false,
            held: Vec::new(),
            held_offset: 0,
            early: 0,
        }
    }

    /// Copies buffered plaintext out, freeing the buffer once it is all taken.
    fn take_plaintext(&mut self, out: &mut [u8]) -> usize {
        let available = &self.plaintext[self.plaintext_offset..];
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.plaintext_offset += count;
        if self.plaintext_offset == self.plaintext.len() {
            self.plaintext.clear();
            self.plaintext_offset = 0;
        }
        count
    }

    /// Sends what the session holds (an alert after an error), ignoring a full socket.
    fn write_best_effort(&mut self, socket: &Stream) {
        let _ = self.push_out(socket);
    }

    /// Writes held ciphertext, then the session's new output, to the socket; what the socket
    /// does not take moves into `held` (in order). `Ok(true)` once nothing is left.
    fn push_out(&mut self, socket: &Stream) -> io::Result<bool> {
        let mut writer = socket;
        while self.held_offset < self.held.len() {
            match writer.write(&self.held[self.held_offset..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => self.held_offset += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if self.held_offset == self.held.len() {
            self.held.clear();
            self.held_offset = 0;
            if self.held.capacity() > KEEP_HELD_CAPACITY {
                self.held = Vec::new();
            }
            // The common case: the session's records go straight to the socket.
            self.session.write_to(&mut writer)?;
        }
        if self.session.wants_write() {
            // Behind what is held, and counted with it (a Vec takes everything).
            self.session.write_to(&mut self.held)?;
        }
        if self.early > 0 && !self.session.is_handshaking() {
            self.early = 0;
        }
        Ok(self.held_offset == self.held.len())
    }
}

/// A failure as the driver sees it (the connection ends), after the alert is written.
fn failure(error: TlsError) -> io::Error {
    match error {
        TlsError::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl Layer for TlsLayer {
    fn read(&mut self, socket: &Stream, plaintext: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.plaintext_offset < self.plaintext.len() {
                return Ok(self.take_plaintext(plaintext));
            }
            if self.ended {
                return Ok(0);
            }
            let mut reader = socket;
            let received = self
                .session
                .read_from(&mut reader, &mut self.plaintext, READ_BUDGET);
            let received = match received {
                Ok(received) => received,
                Err(TlsError::PlainText) => {
                    // As nginx: a plain-text answer to a plain-text request, then the close.
                    let mut writer = socket;
                    let _ = writer.write(PLAIN_HTTP_ON_TLS_PORT);
                    return Err(failure(TlsError::PlainText));
                }
                Err(error) => {
                    self.write_best_effort(socket);
                    return Err(failure(error));
                }
            };
            // Handshake replies (and key updates) go out as soon as they exist.
            self.push_out(socket)?;
            self.ended |= received.peer_closed || received.socket_eof;
            let drained = received.ciphertext < READ_BUDGET;
            if self.plaintext.is_empty() && !self.ended && drained {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    fn write(&mut self, socket: &Stream, plaintext: &[u8]) -> io::Result<usize> {
        // Nothing waiting is the common case (an event on an idle stream): straight to the
        // record, without a pass over empty buffers first.
        if self.wants_write() && !self.push_out(socket)? {
            // Ciphertext is waiting: the caller keeps the plaintext (counted as its own).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = self.session.send(plaintext);
        if self.session.is_handshaking() && !self.session.wants_write() {
            self.early += taken;
        }
        self.push_out(socket)?;
        if taken == 0 && !plaintext.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn flush(&mut self, socket: &Stream) -> io::Result<bool> {
        self.push_out(socket)
    }

    fn wants_write(&self) -> bool {
        self.held_offset < self.held.len() || self.session.wants_write()
    }

    fn pending(&self) -> usize {
        self.held.len() - self.held_offset + self.early
    }

    fn close(&mut self) {
        self.session.close_notify();
    }

    fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }
}

/// The layer factory of a TLS server: one session per accepted connection.
pub(crate) fn server_layer_factory(config: Arc<ServerConfig>) -> LayerFactory {
    std::rc::Rc::new(move || {
        let session = TlsSession::server(config.clone()).map_err(failure)?;
        Ok(Box::new(TlsLayer::new(session)) as Box<dyn Layer>)
    })
}

/// The layer factory of a TLS client to `server_name`.
pub(crate) fn client_layer_factory(config: Arc<ClientConfig>, server_name: String) -> LayerFactory {
    std::rc::Rc::new(move || {
        let session = TlsSession::client(config.clone(), &server_name).map_err(failure)?;
        Ok(Box::new(TlsLayer::new(session)) as Box<dyn Layer>)
    })
}
