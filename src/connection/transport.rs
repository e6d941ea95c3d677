//! The transport: what the driver ([`super::io`]) reads from and writes to. Plain TCP and Unix
//! sockets pass bytes straight through; a [`Layer`] (TLS) sits between the socket and the codec:
//! ciphertext from the socket → layer → plaintext to the codec, plaintext from the encoder →
//! layer → ciphertext to the socket. Neither the codec nor the socket knows a layer is there.
//!
//! A layer is sans-I/O in spirit (as rustls' `ServerConnection`): it is handed the socket for
//! each call and never registers, polls or times anything itself. The driver's send-buffer limit,
//! `on_buffer_full` and `on_buffer_drain` count what is pending after the layer: the plaintext
//! the driver still queues plus what the layer holds ([`Layer::pending`]: ciphertext not yet
//! written), and `on_buffer_drain` waits until the layer's ciphertext has left too. A layer takes
//! no more while its own ciphertext cannot reach the socket: `write` answers `WouldBlock`, as a
//! full socket does.
//!
//! Where a layer comes from: a worker's (or a client connection's) [`LayerFactory`], set with
//! [`Worker::set_transport_layer`](crate::Worker); `Connection::attach_transport` (`state.rs`)
//! makes one per connection when the socket is accepted (`reactor::accept`) or connected
//! (`async_tcp::start_connecting`).

use std::io::{self, Read, Write};
use std::rc::Rc;

use super::stream::Stream;

/// A layer between a connection's socket and its codec (TLS).
///
/// Every method gets the socket; `Err(WouldBlock)` means "not now", as on the socket, and any
/// other error ends the connection.
pub(crate) trait Layer {
    /// Reads from `socket` and returns plaintext in `plaintext`, as [`Read::read`] does: `Ok(0)`
    /// at the end of the stream (the peer's orderly close, or its FIN), `Err(WouldBlock)` when
    /// the socket is drained and no plaintext is buffered. It may write to `socket` as it reads
    /// (a handshake's reply); what the socket does not take yet it keeps and reports with
    /// [`Layer::wants_write`], and the driver calls [`Layer::flush`] on the next writable event.
    fn read(&mut self, socket: &Stream, plaintext: &mut [u8]) -> io::Result<usize>;

    /// Takes plaintext for the peer, as [`Write::write`] on the socket: the count it took, or
    /// `Err(WouldBlock)` while ciphertext it holds cannot be written (then the driver keeps the
    /// rest in its send buffer and waits for writable). Plaintext taken before the handshake is
    /// done is held until it is.
    fn write(&mut self, socket: &Stream, plaintext: &[u8]) -> io::Result<usize>;

    /// Writes the ciphertext it holds (handshake messages, records, alerts): `Ok(true)` once
    /// none is left, `Ok(false)` when the socket would block.
    fn flush(&mut self, socket: &Stream) -> io::Result<bool>;

    /// Whether it holds ciphertext to write.
    fn wants_write(&self) -> bool;

    /// Bytes it holds for the peer: ciphertext not yet written to the socket, and plaintext
    /// taken but not yet encrypted (before a handshake's keys exist). The driver adds them to
    /// its own queue for the send-buffer limit, `on_buffer_full` and `on_buffer_drain`.
    fn pending(&self) -> usize {
        0
    }

    /// The orderly close (TLS `close_notify`): queues what the peer must see before our FIN.
    /// Called once, when the driver's send buffer is empty; [`Layer::flush`] writes it.
    fn close(&mut self);

    /// True while a handshake is under way (the connection's handshake deadline runs).
    fn is_handshaking(&self) -> bool {
        false
    }
}

/// Makes the layer of one new connection (a worker's TLS settings, a client's server name).
pub(crate) type LayerFactory = Rc<dyn Fn() -> io::Result<Box<dyn Layer>>>;

/// A connection's layer and how far its close has gone.
pub(crate) struct Layered {
    layer: Box<dyn Layer>,
    closed: bool,
    /// The connection's deadline is the handshake's (set at accept; any later
    /// `Reactor::set_deadline` means the protocol's own deadline took over).
    pub(crate) handshake_deadline: bool,
}

impl Layered {
    /// A new connection's layer, at the start of its handshake.
    pub(crate) fn new(layer: Box<dyn Layer>) -> Layered {
        Layered {
            layer,
            closed: false,
            handshake_deadline: false,
        }
    }
}

/// Reads plaintext: from the socket, or through the layer.
#[inline(always)]
pub(crate) fn read(
    mut socket: &Stream,
    layer: Option<&mut Layered>,
    plaintext: &mut [u8],
) -> io::Result<usize> {
    match layer {
        None => socket.read(plaintext),
        Some(layered) => layered.layer.read(socket, plaintext),
    }
}

/// Writes plaintext: to the socket, or through the layer.
#[inline(always)]
pub(crate) fn write(
    mut socket: &Stream,
    layer: Option<&mut Layered>,
    plaintext: &[u8],
) -> io::Result<usize> {
    match layer {
        None => socket.write(plaintext),
        Some(layered) => layered.layer.write(socket, plaintext),
    }
}

/// Whether the layer is still in its handshake (never, for a plain socket).
pub(crate) fn is_handshaking(layer: Option<&Layered>) -> bool {
    layer.is_some_and(|layered| layered.layer.is_handshaking())
}

/// Whether the layer holds ciphertext to write (never, for a plain socket).
#[inline(always)]
pub(crate) fn wants_write(layer: Option<&Layered>) -> bool {
    layer.is_some_and(|layered| layered.layer.wants_write())
}

/// Bytes the layer holds for the peer (none, for a plain socket).
pub(crate) fn pending(layer: Option<&Layered>) -> usize {
    layer.map_or(0, |layered| layered.layer.pending())
}

/// Writes what the layer holds: `Ok(true)` once nothing is left (at once for a plain socket).
#[inline(always)]
pub(crate) fn flush(socket: &Stream, layer: Option<&mut Layered>) -> io::Result<bool> {
    match layer {
        Some(layered) if layered.layer.wants_write() => layered.layer.flush(socket),
        _ => Ok(true),
    }
}

/// The layer's orderly close, then its flush: `Ok(true)` once written (at once for a plain
/// socket); the caller then shuts the socket or drops it.
pub(crate) fn close(socket: &Stream, layer: Option<&mut Layered>) -> io::Result<bool> {
    let Some(layered) = layer else {
        return Ok(true);
    };
    if !layered.closed {
        layered.closed = true;
        layered.layer.close();
    }
    flush(socket, Some(layered))
}

#[cfg(test)]
mod tests {
    //! A toy layer over real loopback sockets: bytes XOR-ed on the wire, a greeting the server
    //! writes during its first read (as a handshake's reply), a farewell before FIN (as
    //! `close_notify`). The codec (`text://`) and the callbacks see plain lines.

    use super::*;
    use crate::{TcpConnection, Worker};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    const KEY: u8 = 0x5a;
    const GREETING: &[u8] = b"HELLO";
    const FAREWELL: &[u8] = b"BYE";

    #[derive(Default)]
    struct Xor {
        greeted: bool,
        held: Vec<u8>,
    }

    impl Xor {
        fn hold(&mut self, bytes: &[u8]) {
            self.held.extend_from_slice(bytes);
        }
    }

    impl Layer for Xor {
        fn read(&mut self, socket: &Stream, plaintext: &mut [u8]) -> io::Result<usize> {
            let mut socket_reader = socket;
            let count = socket_reader.read(plaintext)?;
            if !self.greeted {
                self.greeted = true;
                self.hold(GREETING);
                self.flush(socket)?;
            }
            for byte in &mut plaintext[..count] {
                *byte ^= KEY;
            }
            Ok(count)
        }

        fn write(&mut self, socket: &Stream, plaintext: &[u8]) -> io::Result<usize> {
            if !self.flush(socket)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let cipher: Vec<u8> = plaintext.iter().map(|byte| byte ^ KEY).collect();
            self.hold(&cipher);
            self.flush(socket)?;
            Ok(plaintext.len())
        }

        fn flush(&mut self, socket: &Stream) -> io::Result<bool> {
            let mut socket = socket;
            while !self.held.is_empty() {
                match socket.write(&self.held) {
                    Ok(count) => drop(self.held.drain(..count)),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(error) => return Err(error),
                }
            }
            Ok(true)
        }

        fn wants_write(&self) -> bool {
            !self.held.is_empty()
        }

        fn pending(&self) -> usize {
            self.held.len()
        }

        fn close(&mut self) {
            self.hold(FAREWELL);
        }
    }

    fn xor(bytes: &[u8]) -> Vec<u8> {
        bytes.iter().map(|byte| byte ^ KEY).collect()
    }

    #[test]
    fn a_layer_sits_between_the_socket_and_the_codec() {
        let server = Worker::spawn(|| {
            let mut worker = Worker::new("text://127.0.0.1:0");
            worker.set_transport_layer(Rc::new(|| Ok(Box::new(Xor::default()) as Box<dyn Layer>)));
            worker.on_message(|connection: &TcpConnection, line: String| {
                connection.send(format!("echo {line}"));
                if line == "bye" {
                    connection.close();
                }
            });
            worker
        })
        .unwrap();
        let mut client = TcpStream::connect(server.local_address()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(&xor(b"hi\nbye\n")).unwrap();
        let mut expected = GREETING.to_vec();
        expected.extend(xor(b"echo hi\necho bye\n"));
        expected.extend_from_slice(FAREWELL);
        let mut received = Vec::new();
        client.read_to_end(&mut received).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&received),
            String::from_utf8_lossy(&expected)
        );
        server.stop();
    }

    #[test]
    fn a_layer_that_fails_to_start_drops_only_its_connection() {
        let server = Worker::spawn(|| {
            let mut worker = Worker::new("text://127.0.0.1:0");
            worker.set_transport_layer(Rc::new(|| Err(io::Error::other("no certificate"))));
            worker.on_message(|connection: &TcpConnection, line: String| {
                connection.send(line);
            });
            worker
        })
        .unwrap();
        for _ in 0..2 {
            let mut client = TcpStream::connect(server.local_address()).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let _ = client.write_all(b"hi\n");
            let mut received = Vec::new();
            let _ = client.read_to_end(&mut received);
            assert!(received.is_empty(), "{received:?}");
        }
        server.stop();
    }
}
