//! Shared test helpers: start workers on port 0 on their own thread, and talk to them.
#![allow(dead_code)]

pub mod event_stream;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use workerman::{RunningWorker, Worker};

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
        let mut rest = Vec::new();
        matches!(self.reader.read_to_end(&mut rest), Ok(_))
    }
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
