//! The transports under a connection: a TCP or Unix stream socket, or a UDP peer; and the
//! listening sockets they come from.
//!
//! Every read, write, register and close path in [`super::io`] goes through [`Stream`], so HTTP,
//! WebSocket, backpressure and close work the same over `tcp://` and `unix://`. A UDP peer has no
//! socket of its own: its replies go out through the worker's socket ([`super::udp`]).

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol as SocketProtocol, SockAddr, Socket, Type};

use super::udp_listener::UdpListener;

/// Workerman's listen backlog (`DEFAULT_BACKLOG`); the kernel caps it at `net.core.somaxconn`.
pub(crate) const BACKLOG: i32 = 102_400;

/// TCP keepalive on accepted connections, as Workerman sets it on its listen sockets
/// (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`): a peer that vanishes without
/// a FIN (a phone that lost its network, a NAT that forgot the flow) is found after `idle` plus
/// `count` unanswered probes `interval` apart, and its connection closes (`on_close` runs, its
/// timers go).
///
/// ```
/// use std::time::Duration;
/// use workerman::connection::TcpKeepalive;
/// let keepalive = TcpKeepalive::default();
/// assert_eq!(keepalive.idle, Duration::from_secs(55));
/// assert_eq!(keepalive.interval, Duration::from_secs(55));
/// assert_eq!(keepalive.count, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Silence before the first probe (`TCP_KEEPIDLE`; whole seconds, at least 1).
    pub idle: std::time::Duration,
    /// Between unanswered probes (`TCP_KEEPINTVL`; whole seconds, at least 1).
    pub interval: std::time::Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: u32,
}

impl Default for TcpKeepalive {
    /// Workerman's: 55 s idle, 55 s between probes, one probe.
    fn default() -> TcpKeepalive {
        let interval = std::time::Duration::from_secs(55);
        TcpKeepalive {
            idle: interval,
            interval,
            count: 1,
        }
    }
}

/// How a listen socket is made (the worker's settings that reach `bind`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenOptions {
    pub(crate) reuse_port: bool,
    /// Set on the listener; Linux copies it to every socket accepted from it.
    pub(crate) keepalive: Option<TcpKeepalive>,
    pub(crate) backlog: i32,
    /// `IPV6_V6ONLY` on an IPv6 listener (`None`: the system's default).
    pub(crate) ipv6_v6only: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> ListenOptions {
        ListenOptions {
            reuse_port: false,
            keepalive: Some(TcpKeepalive::default()),
            backlog: BACKLOG,
            ipv6_v6only: None,
        }
    }
}

/// The address reported where there is none: a Unix socket's peer, a connection that is gone.
pub(crate) const UNSPECIFIED_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// How a worker's sockets carry bytes (Workerman's `$worker->transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Udp,
    Unix,
}

impl Transport {
    /// The transport a scheme names (`tcp`, `udp`, `unix`), or `None` for a protocol scheme.
    pub(crate) fn from_name(name: &str) -> Option<Transport> {
        match name.to_ascii_lowercase().as_str() {
            "tcp" => Some(Transport::Tcp),
            "udp" => Some(Transport::Udp),
            "unix" => Some(Transport::Unix),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Unix => "unix",
        }
    }
}

/// One connection's socket. As small as the `TcpStream` it replaced plus a tag, so a connection
/// slot does not grow.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A UDP peer of the listener with this index: it has no socket, it is not registered, and
    /// its replies are sent with `sendto` on the listener's socket.
    Datagram(u32),
}

impl Stream {
    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.set_nodelay(true),
            Stream::Unix(_) | Stream::Datagram(_) => Ok(()),
        }
    }

    /// A connecting client socket's pending error (`SO_ERROR`), as after a non-blocking connect.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(stream) => stream.take_error(),
            Stream::Unix(stream) => stream.take_error(),
            Stream::Datagram(_) => Ok(None),
        }
    }

    /// Whether a connecting client socket is connected now (`Ok(false)`: not yet).
    pub(crate) fn is_connected(&self) -> io::Result<bool> {
        let peer = match self {
            Stream::Tcp(stream) => stream.peer_addr().map(drop),
            Stream::Unix(stream) => stream.peer_addr().map(drop),
            Stream::Datagram(_) => Ok(()),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.shutdown(how),
            Stream::Unix(stream) => stream.shutdown(how),
            Stream::Datagram(_) => Ok(()),
        }
    }

    /// Our end's address: `0.0.0.0:0` for a Unix socket; `None` for a UDP peer (whose local
    /// address is the worker's).
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(stream) => stream.local_addr().ok(),
            Stream::Unix(_) => Some(UNSPECIFIED_ADDRESS),
            Stream::Datagram(_) => None,
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(stream) => (&*stream).read(buffer),
            Stream::Unix(stream) => (&*stream).read(buffer),
            // A peer's datagrams arrive on its worker's socket; a stray readable event for the
            // peer's slot (left by the connection that had it before) finds nothing here.
            Stream::Datagram(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(stream) => (&*stream).write(bytes),
            Stream::Unix(stream) => (&*stream).write(bytes),
            Stream::Datagram(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.register(registry, token, interests),
            Stream::Unix(stream) => stream.register(registry, token, interests),
            Stream::Datagram(_) => Ok(()),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.reregister(registry, token, interests),
            Stream::Unix(stream) => stream.reregister(registry, token, interests),
            Stream::Datagram(_) => Ok(()),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.deregister(registry),
            Stream::Unix(stream) => stream.deregister(registry),
            Stream::Datagram(_) => Ok(()),
        }
    }
}

/// A listening socket as bound, before the reactor takes it: what the master binds before it
/// forks (a worker's `prebound`), or what a worker binds itself.
pub(crate) enum BoundSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener, SocketFile),
    Udp(std::net::UdpSocket),
}

impl BoundSocket {
    /// Binds `listen` (`host:port`, or a path for `unix`): non-blocking, `SO_REUSEADDR` (and
    /// `SO_REUSEPORT` when asked; not for `unix`), Workerman's backlog. A stale Unix socket file
    /// (nobody listens on it) is removed first, as Workerman does.
    pub(crate) fn bind(
        transport: Transport,
        listen: &str,
        options: ListenOptions,
    ) -> io::Result<BoundSocket> {
        match transport {
            Transport::Tcp => bind_inet(listen, Type::STREAM, options)
                .map(|socket| BoundSocket::Tcp(socket.into())),
            Transport::Udp => bind_inet(listen, Type::DGRAM, options)
                .map(|socket| BoundSocket::Udp(socket.into())),
            Transport::Unix => bind_unix(Path::new(listen), options.backlog),
        }
    }

    /// In a forked worker process: the socket file belongs to the master, which removes it.
    pub(crate) fn disown(&self) {
        if let BoundSocket::Unix(_, file) = self {
            file.armed.set(false);
        }
    }
}

fn bind_inet(listen: &str, kind: Type, options: ListenOptions) -> io::Result<Socket> {
    let address = listen
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{listen} names no address")))?;
    let protocol = if kind == Type::DGRAM {
        SocketProtocol::UDP
    } else {
        SocketProtocol::TCP
    };
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let (Some(only), true) = (options.ipv6_v6only, address.is_ipv6()) {
        socket.set_only_v6(only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    if kind == Type::STREAM {
        if let Some(keepalive) = options.keepalive {
            set_keepalive(&socket, keepalive)?;
        }
        socket.listen(options.backlog)?;
    }
    Ok(socket)
}

/// `SO_KEEPALIVE` with `keepalive`'s timing (whole seconds, at least one).
fn set_keepalive(socket: &Socket, keepalive: TcpKeepalive) -> io::Result<()> {
    let seconds = |duration: std::time::Duration| duration.max(std::time::Duration::from_secs(1));
    let settings = socket2::TcpKeepalive::new()
        .with_time(seconds(keepalive.idle))
        .with_interval(seconds(keepalive.interval))
        .with_retries(keepalive.count.max(1));
    socket.set_tcp_keepalive(&settings)
}

fn bind_unix(path: &Path, backlog: i32) -> io::Result<BoundSocket> {
    remove_stale_socket_file(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog)?;
    let metadata = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_owned(),
        device: metadata.dev(),
        inode: metadata.ino(),
        armed: Cell::new(true),
    };
    Ok(BoundSocket::Unix(socket.into(), file))
}

/// Removes `path` if it is a Unix socket nobody listens on (left by a process that died). A
/// socket someone listens on, or a file that is not a socket, is left alone: the bind fails.
fn remove_stale_socket_file(path: &Path) -> io::Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Ok(());
    }
    // A non-blocking connect: refused means stale; anything else (even a full backlog) means
    // a live listener.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            log::debug!("removing the stale socket file {}", path.display());
            std::fs::remove_file(path).or_else(|error| match error.kind() {
                io::ErrorKind::NotFound => Ok(()),
                _ => Err(error),
            })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process listens on {}", path.display()),
        )),
    }
}

/// A Unix socket file this process created: removed when the listener goes (Workerman unlinks
/// it on stop), unless it was replaced meanwhile or a forked worker process holds this copy.
pub(crate) struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
    armed: Cell<bool>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if !self.armed.get() {
            return;
        }
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| metadata.dev() == self.device && metadata.ino() == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A listening socket in the reactor.
pub(crate) enum Listen {
    Tcp(TcpListener),
    /// The socket file is removed when this goes.
    Unix {
        listener: UnixListener,
        _socket_file: SocketFile,
    },
    /// A `udp://` worker's socket, with its peers.
    Udp(UdpListener),
}

impl Listen {
    pub(crate) fn new(bound: BoundSocket) -> Listen {
        match bound {
            BoundSocket::Tcp(listener) => Listen::Tcp(TcpListener::from_std(listener)),
            BoundSocket::Unix(listener, file) => Listen::Unix {
                listener: UnixListener::from_std(listener),
                _socket_file: file,
            },
            BoundSocket::Udp(socket) => {
                Listen::Udp(UdpListener::new(mio::net::UdpSocket::from_std(socket)))
            }
        }
    }

    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Listen::Udp(_))
    }

    /// A new connection and its peer's address (`0.0.0.0:0` for a Unix socket's peer).
    pub(crate) fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        match self {
            Listen::Tcp(listener) => listener
                .accept()
                .map(|(stream, address)| (Stream::Tcp(stream), address)),
            Listen::Unix { listener, .. } => listener
                .accept()
                .map(|(stream, _)| (Stream::Unix(stream), UNSPECIFIED_ADDRESS)),
            Listen::Udp(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// The bound address; `0.0.0.0:0` for a Unix socket.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listen::Tcp(listener) => listener.local_addr(),
            Listen::Unix { .. } => Ok(UNSPECIFIED_ADDRESS),
            Listen::Udp(udp) => udp.socket.local_addr(),
        }
    }
}

impl Source for Listen {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listen::Tcp(listener) => listener.register(registry, token, interests),
            Listen::Unix { listener, .. } => listener.register(registry, token, interests),
            Listen::Udp(udp) => udp.socket.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listen::Tcp(listener) => listener.reregister(registry, token, interests),
            Listen::Unix { listener, .. } => listener.reregister(registry, token, interests),
            Listen::Udp(udp) => udp.socket.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listen::Tcp(listener) => listener.deregister(registry),
            Listen::Unix { listener, .. } => listener.deregister(registry),
            Listen::Udp(udp) => udp.socket.deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_no_larger_than_a_tag_and_a_socket() {
        // A connection slot keeps its size: the tag fits in the padding after the socket
        // (release: 8 bytes; debug builds add mio's selector id to every socket).
        let socket = std::mem::size_of::<TcpStream>();
        assert!(std::mem::size_of::<Option<Stream>>() <= socket.next_multiple_of(8) + 8);
        #[cfg(not(debug_assertions))]
        assert_eq!(std::mem::size_of::<Option<Stream>>(), 8);
    }

    #[test]
    fn transports_by_name() {
        assert_eq!(Transport::from_name("UDP"), Some(Transport::Udp));
        assert_eq!(Transport::from_name("unix"), Some(Transport::Unix));
        assert_eq!(Transport::from_name("text"), None);
        assert_eq!(Transport::Tcp.name(), "tcp");
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("workerman-stream-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("s.sock")
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
        let path = temp_path("stale");
        // A socket file whose listener is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let bound = BoundSocket::bind(
            Transport::Unix,
            path.to_str().unwrap(),
            ListenOptions::default(),
        )
        .unwrap();
        // Now someone listens: a second bind must fail and leave the file.
        let error = BoundSocket::bind(
            Transport::Unix,
            path.to_str().unwrap(),
            ListenOptions::default(),
        )
        .err()
        .expect("a live socket is not replaced");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(path.exists());
        drop(bound);
        assert!(!path.exists(), "the owner removes its socket file");
    }

    #[test]
    fn a_regular_file_is_never_removed() {
        let path = temp_path("regular");
        std::fs::write(&path, "data").unwrap();
        assert!(
            BoundSocket::bind(
                Transport::Unix,
                path.to_str().unwrap(),
                ListenOptions::default()
            )
            .is_err()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }

    #[test]
    fn a_disowned_socket_file_stays() {
        let path = temp_path("disowned");
        let bound = BoundSocket::bind(
            Transport::Unix,
            path.to_str().unwrap(),
            ListenOptions::default(),
        )
        .unwrap();
        bound.disown();
        drop(bound);
        assert!(path.exists());
    }
}
