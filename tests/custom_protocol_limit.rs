//! A custom protocol is held to `max_package_size` as `text://` is: Workerman's README
//! MyTextProtocol (a package ends at "\n"; `input` returns 0 until one arrives), fed more than
//! `max_package_size` with no newline, closes the connection, and the server never holds much
//! more than the limit. (Workerman itself buffers without bound while `input` returns 0.) The
//! limit is 1 MiB here rather than the 10 MiB default only to keep the test short: the example's
//! `input` scans the whole buffer on every read.
//! Alone in its binary: the memory bound is the process's peak resident size.

mod support;

use std::io::Write;
use std::time::Duration;

use support::{connect, start};
use workerman::protocols::{Input, Protocol};
use workerman::{TcpConnection, Worker};

/// Protocols/MyTextProtocol.php, ported.
struct MyTextProtocol;

impl Protocol for MyTextProtocol {
    type Message = String;
    fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
        // Find the position of the first occurrence of "\n"; none: the length is not known yet.
        match buffer.iter().position(|&byte| byte == b'\n') {
            None => Input::Package(0),
            Some(position) => Input::Package(position + 1),
        }
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
        String::from_utf8_lossy(package).trim().to_owned()
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(data);
        out.push(b'\n');
    }
}

/// The process's peak resident set (`VmHWM`), in bytes.
fn peak_resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

const MIB: usize = 1024 * 1024;

#[test]
fn my_text_protocol_without_a_newline_closes_at_max_package_size_with_bounded_memory() {
    let server = start(|| {
        let mut worker = Worker::with_protocol("tcp://127.0.0.1:0", MyTextProtocol);
        worker.set_max_package_size(MIB);
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker
    });
    let before = peak_resident();
    let mut client = connect(server.local_address());
    client
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // 32 MiB without a newline, in 256 KiB writes, until the server closes.
    let piece = vec![b'x'; MIB / 4];
    let mut sent = 0;
    while sent < 32 * MIB {
        match client.write(&piece) {
            Ok(count) => sent += count,
            Err(_) => break,
        }
    }
    // Closed well before all of it was taken (the kernel's socket buffers hold a few MiB).
    assert!(
        sent < 24 * MIB,
        "the server took {} MiB without a newline",
        sent / MIB
    );
    let grown = peak_resident().saturating_sub(before);
    // The buffer stops at 1 MiB (a growing Vec may briefly hold twice that while it moves);
    // unbounded, what was sent would show here as at least that much.
    assert!(
        grown < 8 * MIB,
        "peak resident size grew by {} MiB",
        grown / MIB
    );
    server.stop();
}
