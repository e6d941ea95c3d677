//! TCP keepalive on accepted connections, as Workerman sets it: the socket options an accepted
//! connection carries, and a peer that vanishes without a FIN being found and closed (with its
//! timers and context).

mod support;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{connect, start};
use workerman::connection::TcpKeepalive;
use workerman::{TcpConnection, Timer, Worker};

/// An integer socket option of `socket`.
fn option(socket: &impl AsRawFd, level: i32, name: i32) -> i32 {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `length` are valid for writes and sized for a c_int; the fd is open.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    assert_eq!(result, 0, "getsockopt: {}", std::io::Error::last_os_error());
    value
}

/// The keepalive options of the server side of a fresh connection, read in `on_connect`.
fn accepted_options(keepalive: Option<TcpKeepalive>) -> [i32; 4] {
    let (sender, options) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        if keepalive != Some(TcpKeepalive::default()) {
            worker.set_tcp_keepalive(keepalive);
        }
        worker.on_connect(move |connection: &TcpConnection| {
            // The server's socket is found by its address pair among this process's fds.
            let local = connection.local_address();
            let remote = connection.remote_address();
            for fd in 0..4096 {
                // SAFETY: the fd is borrowed, not owned: `ManuallyDrop` never closes it.
                let socket = std::mem::ManuallyDrop::new(unsafe {
                    <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd)
                });
                if socket.local_addr().ok() == Some(local)
                    && socket.peer_addr().ok() == Some(remote)
                {
                    sender
                        .send([
                            option(&*socket, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
                            option(&*socket, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
                            option(&*socket, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
                            option(&*socket, libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
                        ])
                        .unwrap();
                    return;
                }
            }
            panic!("the accepted socket was not found");
        });
        worker
    });
    let _client = connect(server.local_address());
    let options = options.recv_timeout(Duration::from_secs(5)).unwrap();
    server.stop();
    options
}

#[test]
fn accepted_connections_have_workermans_keepalive_by_default() {
    assert_eq!(
        accepted_options(Some(TcpKeepalive::default())),
        [1, 55, 55, 1]
    );
}

#[test]
fn keepalive_timing_is_settable_and_can_be_turned_off() {
    let keepalive = TcpKeepalive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(3),
        count: 4,
    };
    assert_eq!(accepted_options(Some(keepalive)), [1, 7, 3, 4]);
    assert_eq!(accepted_options(None)[0], 0);
}

/// A peer that vanishes without a FIN or RST: client and server run in a network namespace of
/// their own (made by this test's thread, gone with it), whose loopback is then taken down. No
/// packet passes any more, so only keepalive can find the dead peer.
#[test]
fn a_vanished_peer_is_found_by_keepalive_and_closed_with_its_timers_and_context() {
    let ip = support::require_program("ip");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test makes a network namespace: run it as root (or with CAP_NET_ADMIN and \
         CAP_SYS_ADMIN)"
    );
    let ip_for_thread = ip.clone();
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) moves only this thread into a fresh network namespace;
        // threads and processes started from it inherit it.
        let result = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(result, 0, "unshare: {}", std::io::Error::last_os_error());
        let up = Command::new(&ip_for_thread)
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());

        let (events, seen) = mpsc::channel::<&'static str>();
        let server = start(move || {
            let mut worker = Worker::new("tcp://127.0.0.1:0");
            worker.set_tcp_keepalive(Some(TcpKeepalive {
                idle: Duration::from_secs(1),
                interval: Duration::from_secs(1),
                count: 1,
            }));
            let connected = events.clone();
            worker.on_connect(move |connection: &TcpConnection| {
                connection.set_context(String::from("session"));
                // A connection timer that would run forever if the peer were never found.
                connection.add_timer(0.2, |_, _| {});
                connected.send("connected").unwrap();
            });
            let closed = events.clone();
            worker.on_close(move |connection: &TcpConnection| {
                let context = connection.take_context::<String>();
                assert_eq!(context.as_deref(), Some("session"));
                closed.send("closed").unwrap();
            });
            let timers = events.clone();
            worker.on_worker_start(move |_| {
                // Reports how many timers are left once the connection is gone: only this one.
                let timers = timers.clone();
                Timer::add(0.1, move |_| {
                    if Worker::statistics().connection_count == 0 && Timer::count() == 1 {
                        let _ = timers.send("timers gone");
                    }
                });
            });
            worker
        });
        let client = connect(server.local_address());
        assert_eq!(seen.recv_timeout(Duration::from_secs(5)), Ok("connected"));
        let down = Command::new(&ip_for_thread)
            .args(["link", "set", "lo", "down"])
            .status()
            .unwrap();
        assert!(down.success());
        let vanished = Instant::now();
        let closed = seen.recv_timeout(Duration::from_secs(20));
        let took = vanished.elapsed();
        let timers = seen.recv_timeout(Duration::from_secs(5));
        drop(client);
        server.stop();
        (closed, took, timers)
    })
    .join()
    .unwrap();
    let (closed, took, timers) = outcome;
    assert_eq!(closed, Ok("closed"), "the vanished peer was not found");
    // 1 s idle + 1 probe 1 s apart: about 2 s, well before the 20 s bound.
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert_eq!(timers, Ok("timers gone"));
}
