//! Shared test helpers: start workers on port 0 on their own thread, and talk to them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use workerman::{RunningWorker, Worker};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// How long any single blocking read in a test may take before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the worker `build` makes on its own thread.
pub fn start(build: impl FnOnce() -> Worker + Send + 'static) -> RunningWorker {
    Worker::spawn(build).expect("the worker starts")
}

/// A client socket with read and write timeouts, so a broken server fails the test instead of
/// hanging it.
pub fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A line-oriented client.
pub struct LineClient {
    pub reader: BufReader<TcpStream>,
}

impl LineClient {
    pub fn connect(address: SocketAddr) -> LineClient {
        LineClient {
            reader: BufReader::new(connect(address)),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.reader.get_mut().write_all(text.as_bytes()).unwrap();
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        line
    }

    /// True once the server has closed (EOF), within the read timeout.
    pub fn closed(&mut self) -> bool {
        peer_closes(&mut self.reader)
    }
}

/// True when the peer closes (EOF) within the read timeout; what it sent before is dropped.
pub fn peer_closes(reader: &mut impl Read) -> bool {
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).is_ok()
}

/// Reads until the peer closes (or the timeout), returning everything read.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return all,
            Ok(count) => all.extend_from_slice(&buffer[..count]),
            Err(error) => panic!("read failed before the peer closed: {error} (got {all:?})"),
        }
    }
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// One HTTP response as read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status line and headers, exactly as sent (up to and including the blank line).
    pub head: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads exactly one response from `reader` (by Content-Length, chunked, or to EOF); `head_only`
/// for the answer to a HEAD request.
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> HttpResponse {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let count = reader
            .read_line(&mut line)
            .expect("read a response head line");
        assert!(
            count > 0,
            "connection closed inside a response head: {head:?}"
        );
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let mut response = HttpResponse {
        head,
        status,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || status == 100 {
        return response;
    }
    if let Some(length) = response.header("content-length") {
        let mut body = vec![0u8; length.parse().unwrap()];
        reader.read_exact(&mut body).expect("read the body");
        response.body = body;
    } else if response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim_end(), 16).expect("chunk size");
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut response.body).unwrap();
    }
    response
}

/// An HTTP/1.1 client on one connection.
pub struct HttpClient {
    pub reader: BufReader<TcpStream>,
}

impl HttpClient {
    pub fn connect(address: SocketAddr) -> HttpClient {
        HttpClient {
            reader: BufReader::new(connect(address)),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.write(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.response()
    }

    pub fn response(&mut self) -> HttpResponse {
        read_response(&mut self.reader, false)
    }

    /// True once the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        peer_closes(&mut self.reader)
    }
}

/// The path of an installed program that a test needs (`redis-server`, `nginx`, ...), found on
/// `PATH` or in the usual system directories. A missing one fails the test, naming the command
/// that installs it: no test is skipped silently.
pub fn require_program(program: &str) -> std::path::PathBuf {
    let search = std::env::var_os("PATH").unwrap_or_default();
    let directories = std::env::split_paths(&search)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"].map(std::path::PathBuf::from));
    for directory in directories {
        let candidate = directory.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "this test needs `{program}`, which is not installed: run `bash tests/run.sh` (it installs \
         every tool the tests use, from Debian's packages) or `apt-get install` its package"
    )
}
pub mod channel_node;
pub mod process;
pub mod redis;
pub mod tls;
