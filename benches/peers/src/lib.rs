//! Shared bits of the peer servers: argument parsing and a listener like workerman's.

use std::net::SocketAddr;

/// `--name value` from the command line, else the environment variable, else `default`.
pub fn arg(name: &str, env: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_string())
}

/// A non-blocking listener on `0.0.0.0:port` with `SO_REUSEADDR`, `SO_REUSEPORT` and the same
/// backlog workerman asks for (the kernel caps it at `net.core.somaxconn`).
pub fn listen(port: u16) -> std::net::TcpListener {
    use socket2::{Domain, Protocol, Socket, Type};
    let address: SocketAddr = ([0, 0, 0, 0], port).into();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket.set_nonblocking(true).expect("O_NONBLOCK");
    socket
        .bind(&address.into())
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    socket.listen(102_400).expect("listen");
    socket.into()
}

/// `count` processes serving the same port with `SO_REUSEPORT`: forks `count - 1` children that
/// run `serve` too, and runs it in this process. With `count == 1` it just runs `serve`.
pub fn run_processes(count: usize, serve: impl Fn()) {
    for _ in 1..count {
        // SAFETY: called before any thread is started; the child only runs `serve`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // Die with the parent, so stopping the first process stops them all.
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
            serve();
            std::process::exit(0);
        }
        assert!(pid > 0, "fork failed");
    }
    serve();
}

/// Raises the soft descriptor limit to the hard one.
pub fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a stack value.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The bytes workerman's `http_hello` sends for every request, so both answer the same.
pub const HELLO_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";

/// The head of workerman's event streams.
pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n";

/// The seed's event, as workerman writes it.
pub const SSE_EVENT: &[u8] = b"event: message\nid: 1\ndata: hello\n\n";
