//! "No allocation per request beyond what the user asks for": a hello-world keep-alive server
//! answers 2,000 requests, a WebSocket echo server 2,000 messages; the allocator counts every
//! allocation in the process meanwhile.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call forwards to the system allocator unchanged; counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count is process-wide: tests that measure take turns.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measure_alone() -> std::sync::MutexGuard<'static, ()> {
    MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Allocations made (by the whole process) while `exchange` runs 2,000 times, after 200 runs of
/// warm-up in which buffers, pools and the slab reach their steady size.
fn allocations_per_2000(mut exchange: impl FnMut()) -> u64 {
    for _ in 0..200 {
        exchange();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..2000 {
        exchange();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_hello_request_allocates_nothing_in_steady_state() {
    let _alone = measure_alone();
    let server = support::start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            if request.path() == "/" {
                connection.send("hello");
            }
        });
        worker
    });
    let mut stream = support::connect(server.local_address());
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n";
    let mut response = [0u8; 4096];
    let expected = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";
    let mut exchange = |stream: &mut std::net::TcpStream| {
        stream.write_all(request).unwrap();
        let mut got = 0;
        while got < expected.len() {
            got += stream.read(&mut response[got..]).unwrap();
        }
        assert_eq!(&response[..got], expected);
    };
    let allocations = allocations_per_2000(|| exchange(&mut stream));
    assert!(
        allocations < 20,
        "{allocations} allocations for 2,000 requests (the client side makes none)"
    );
}

/// WebSocket: an echo costs one allocation per message, the `Vec` the handler receives; framing,
/// unmasking (in place, in that `Vec`) and encoding the answer allocate nothing.
#[test]
fn a_websocket_message_allocates_only_itself() {
    use workerman::protocols::websocket::Message;
    let _alone = measure_alone();
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, message: Message| {
            connection.send(message);
        });
        worker
    });
    let mut stream = support::connect(server.local_address());
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = [0u8; 4096];
    let mut got = 0;
    while !head[..got].ends_with(b"\r\n\r\n") {
        got += stream.read(&mut head[got..]).unwrap();
    }
    // A masked text frame of 100 bytes, and the unmasked echo it must get.
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | 100];
    frame.extend_from_slice(&mask);
    frame.extend((0..100).map(|i| b'a' ^ mask[i % 4]));
    let mut expected = vec![0x81, 100];
    expected.extend_from_slice(&[b'a'; 100]);
    let mut answer = [0u8; 102];
    let mut exchange = |stream: &mut std::net::TcpStream| {
        stream.write_all(&frame).unwrap();
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(answer[..], expected[..]);
    };
    let allocations = allocations_per_2000(|| exchange(&mut stream));
    assert!(
        (2000..2020).contains(&allocations),
        "{allocations} allocations for 2,000 messages (one each expected)"
    );
}
