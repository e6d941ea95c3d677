//! `unix://` listeners: raw echo, `text://` and `http://` over a Unix socket, the socket file's
//! life (a stale one replaced, a live one kept, removed on stop), many connections at once.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use support::{READ_TIMEOUT, read_response, start};
use workerman::protocols::http::{Request, Response};
use workerman::{TcpConnection, Worker};

/// A fresh directory for one test's socket file (unique per process and test).
fn socket_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wm-unix-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("s.sock")
}

fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect to the unix socket");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

fn raw_echo(path: &Path) -> workerman::RunningWorker {
    let address = format!("unix://{}", path.display());
    start(move || {
        let mut worker = Worker::new(&address);
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            connection.send(data);
        });
        // Backpressure: stop reading while the client is not reading its echo.
        worker.on_buffer_full(|connection| connection.pause_recv());
        worker.on_buffer_drain(|connection| connection.resume_recv());
        worker
    })
}

fn read_exactly(stream: &mut UnixStream, length: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; length];
    stream.read_exact(&mut buffer).expect("read the echo");
    buffer
}

#[test]
fn raw_echo_over_a_unix_socket() {
    let path = socket_path("echo");
    let server = raw_echo(&path);
    assert_eq!(
        server.local_address().port(),
        0,
        "a unix worker has no port"
    );
    let mut stream = connect(&path);
    stream.write_all(b"hello").unwrap();
    assert_eq!(read_exactly(&mut stream, 5), b"hello");
    // Far more than a Unix socket's buffer, and more than the send buffer limit (1 MiB): the
    // echo queues, fills, pauses reading and drains.
    let big: Vec<u8> = (0..2_000_000u32).map(|i| i as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let sent = big.clone();
    let writing = thread::spawn(move || writer.write_all(&sent).unwrap());
    assert_eq!(read_exactly(&mut stream, big.len()), big);
    writing.join().unwrap();
}

#[test]
fn a_unix_connection_reports_its_transport_and_no_ip_address() {
    let path = socket_path("addresses");
    let address = format!("unix://{}", path.display());
    let (sender, seen) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new(&address);
        worker.on_connect(move |connection| {
            sender
                .send((
                    connection.transport(),
                    connection.remote_address(),
                    connection.local_address(),
                ))
                .unwrap();
        });
        worker
    });
    let _stream = connect(&path);
    let (transport, remote, local) = seen.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(transport, "unix");
    assert_eq!(remote.to_string(), "0.0.0.0:0");
    assert_eq!(local.to_string(), "0.0.0.0:0");
}

#[test]
fn text_over_unix() {
    let path = socket_path("text");
    let address = format!("text://{}", path.display());
    let _server = start(move || {
        let mut worker = Worker::new(&address);
        worker.set_transport("unix");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("echo: {line}"));
            if line == "bye" {
                connection.close();
            }
        });
        worker
    });
    let mut reader = BufReader::new(connect(&path));
    reader.get_mut().write_all(b"one\ntwo\nbye\n").unwrap();
    let mut all = String::new();
    reader.read_to_string(&mut all).unwrap();
    assert_eq!(all, "echo: one\necho: two\necho: bye\n");
}

#[test]
fn http_over_unix() {
    let path = socket_path("http");
    let address = format!("http://{}", path.display());
    let _server = start(move || {
        let mut worker = Worker::new(&address);
        worker.set_transport("unix");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/plain")],
                format!("path {}", request.path()),
            ));
        });
        worker
    });
    let mut reader = BufReader::new(connect(&path));
    for round in 0..2 {
        reader
            .get_mut()
            .write_all(format!("GET /r{round} HTTP/1.1\r\nHost: local\r\n\r\n").as_bytes())
            .unwrap();
        let response = read_response(&mut reader, false);
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), format!("path /r{round}"));
    }
    // Keep-alive: no EOF, the read just times out.
    reader
        .get_ref()
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let idle = reader.fill_buf().map(<[u8]>::len);
    assert!(
        idle.as_ref().is_err_and(|error| matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "keep-alive: still open, got {idle:?}"
    );
}

#[test]
fn a_stale_socket_file_is_replaced_and_the_file_goes_on_stop() {
    let path = socket_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a stale socket file is left behind");
    let server = raw_echo(&path);
    let mut stream = connect(&path);
    stream.write_all(b"x").unwrap();
    assert_eq!(read_exactly(&mut stream, 1), b"x");
    server.stop();
    assert!(!path.exists(), "the socket file is removed on stop");
}

#[test]
fn a_socket_someone_listens_on_is_not_taken() {
    let path = socket_path("live");
    let _live = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let address = format!("unix://{}", path.display());
    let error = Worker::spawn(move || Worker::new(&address))
        .err()
        .expect("the bind fails");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    assert!(path.exists(), "the other listener's file stays");
}

#[test]
fn many_connections_at_once() {
    let path = socket_path("many");
    let _server = raw_echo(&path);
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let mut stream = connect(&path);
            stream.write_all(format!("{i:05}").as_bytes()).unwrap();
            stream
        })
        .collect();
    for (i, mut stream) in clients.into_iter().enumerate() {
        assert_eq!(read_exactly(&mut stream, 5), format!("{i:05}").as_bytes());
    }
}
