//! Raw sends and shared messages: `send_raw` writes bytes as they are; a `SharedMessage` is
//! encoded once and its bytes are shared, not copied, by every connection it is sent to, even
//! while their sockets are full (their queues hold references).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use support::{connect, start};
use workerman::protocols::SharedMessage;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::protocols::websocket::Message;
use workerman::{SendResult, TcpConnection, Timer, Worker};

/// Counts the bytes the process has allocated and not freed.
struct LiveBytes;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `pointer` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        LIVE.fetch_add(size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

/// The count is process-wide: tests that measure take turns.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

const SUBSCRIBERS: usize = 200;
const EVENTS: usize = 300;

thread_local! {
    static STREAMS: RefCell<Vec<TcpConnection>> = const { RefCell::new(Vec::new()) };
}

/// What the stuck-subscriber broadcast cost: heap bytes it added, bytes queued on the
/// connections, and the bytes the events hold once.
#[derive(Debug)]
struct Cost {
    heap_growth: isize,
    queued: usize,
    event_bytes: usize,
}

/// Pins the server side's kernel send buffer of `connection` small (no autotuning), so that what
/// a client does not read stays queued in user space, where it can be measured.
fn small_kernel_send_buffer(connection: &TcpConnection) {
    use std::os::fd::FromRawFd;
    let local = connection.local_address();
    let remote = connection.remote_address();
    for fd in 0..65536 {
        // SAFETY: the fd is borrowed, not owned: `ManuallyDrop` never closes it.
        let socket = std::mem::ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
        if socket.local_addr().ok() == Some(local) && socket.peer_addr().ok() == Some(remote) {
            socket2::SockRef::from(&*socket)
                .set_send_buffer_size(8192)
                .unwrap();
            return;
        }
    }
    panic!("the accepted socket was not found");
}

/// A client that asks for an event stream and then never reads: a small receive window, so
/// the server's socket fills after a few events.
fn stuck_subscriber(address: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    stream
}

/// `SUBSCRIBERS` stuck streams, then `EVENTS` events of 1 KiB to each (shared or copied).
fn broadcast_to_stuck_subscribers(shared: bool) -> Cost {
    let (report, cost) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_connect(small_kernel_send_buffer);
        worker.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            STREAMS.with(|streams| streams.borrow_mut().push(connection.clone()));
        });
        worker.on_worker_start(move |_| {
            let report = report.clone();
            Timer::add(0.05, move |timer| {
                if STREAMS.with(|streams| streams.borrow().len()) < SUBSCRIBERS {
                    return;
                }
                Timer::del(timer);
                let data = "x".repeat(1000);
                let before = LIVE.load(Ordering::Relaxed);
                let mut events = Vec::with_capacity(EVENTS);
                for id in 0..EVENTS {
                    let event = ServerSentEvents::new().data(data.clone()).id(id as u64);
                    STREAMS.with(|streams| {
                        if shared {
                            let message = SharedMessage::event(&event);
                            for stream in streams.borrow().iter() {
                                assert!(stream.send(&message).is_accepted());
                            }
                            events.push(message);
                        } else {
                            for stream in streams.borrow().iter() {
                                assert!(stream.send(event.clone()).is_accepted());
                            }
                        }
                    });
                }
                // The events themselves, held once here (shared) or not at all (copied).
                let event_bytes: usize = events.iter().map(|event| event.as_bytes().len()).sum();
                let heap_growth = LIVE.load(Ordering::Relaxed) - before;
                let queued = STREAMS.with(|streams| {
                    streams
                        .borrow()
                        .iter()
                        .map(TcpConnection::send_buffer_queue_size)
                        .sum()
                });
                report
                    .send(Cost {
                        heap_growth,
                        queued,
                        event_bytes,
                    })
                    .unwrap();
            });
        });
        worker
    });
    let clients: Vec<TcpStream> = (0..SUBSCRIBERS)
        .map(|_| stuck_subscriber(server.local_address()))
        .collect();
    let cost = cost.recv_timeout(Duration::from_secs(30)).unwrap();
    drop(clients);
    server.stop();
    cost
}

#[test]
fn stuck_subscribers_queue_references_to_shared_events_not_copies() {
    let _alone = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let shared = broadcast_to_stuck_subscribers(true);
    let copied = broadcast_to_stuck_subscribers(false);
    eprintln!("{SUBSCRIBERS} stuck subscribers x {EVENTS} events of 1 KiB: shared {shared:?}");
    eprintln!("{SUBSCRIBERS} stuck subscribers x {EVENTS} events of 1 KiB: copied {copied:?}");
    // Most of the 60 MB sent is still queued in user space (the kernel took a little).
    assert!(shared.queued > 30_000_000, "{shared:?}");
    assert!(copied.queued > 30_000_000, "{copied:?}");
    // Copies cost what is queued; shared events cost themselves once plus a reference per
    // queued event per connection (24 bytes each, about 1.4 MB here).
    assert!(
        copied.heap_growth as usize > copied.queued / 2,
        "{copied:?}"
    );
    assert!(
        (shared.heap_growth as usize) < shared.event_bytes + 4_000_000,
        "{shared:?}"
    );
    assert!(
        (shared.heap_growth as usize) < shared.queued / 10,
        "{shared:?}"
    );
}

/// A reader that takes the response head of an event stream, then reads events.
fn subscribe(address: SocketAddr) -> BufReader<TcpStream> {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    reader
}

#[test]
fn a_stuck_subscriber_gets_every_shared_event_in_order_once_it_reads() {
    let _alone = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (sent, done) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_connect(small_kernel_send_buffer);
        worker.set_max_send_buffer_size(16 << 20);
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            if request.path() != "/events" {
                return;
            }
            // Shared events interleaved with copies, past the socket's capacity.
            let data = "y".repeat(2000);
            for id in 0..2000u64 {
                if id % 3 == 0 {
                    connection.send(ServerSentEvents::new().data(data.clone()).id(id));
                } else {
                    let event =
                        SharedMessage::event(&ServerSentEvents::new().data(data.clone()).id(id));
                    connection.send(&event);
                }
            }
            sent.send(connection.send_buffer_queue_size()).unwrap();
        });
        worker
    });
    let mut reader = subscribe(server.local_address());
    let queued = done.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        queued > 1_000_000,
        "the socket did not fill: {queued} queued"
    );
    let mut line = String::new();
    for id in 0..2000u64 {
        line.clear();
        reader
            .read_line(&mut line)
            .unwrap_or_else(|error| panic!("event {id}: {error}"));
        assert_eq!(line, format!("id: {id}\n"));
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line.len(), "data: \n".len() + 2000);
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "\n");
    }
    server.stop();
}

#[test]
fn send_raw_writes_bytes_as_they_are_and_shared_messages_match_their_protocol() {
    let _alone = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let server = start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, text: String| {
            match text.as_str() {
                // A frame written by hand: a text frame "raw" around the protocol.
                "raw" => assert_eq!(
                    connection.send_raw([0x81, 3, b'r', b'a', b'w']),
                    SendResult::Written
                ),
                "shared" => {
                    let frame = SharedMessage::websocket(&Message::Text("shared".into()));
                    assert_eq!(connection.send(&frame), SendResult::Written);
                    // An SSE event is not a WebSocket message: refused, nothing sent.
                    let event = SharedMessage::event(&ServerSentEvents::new().data("no"));
                    assert_eq!(connection.send(&event), SendResult::Refused);
                    connection.send("after");
                }
                _ => {}
            }
        });
        worker
    });
    let mut stream = connect(server.local_address());
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let masked = |text: &str| {
        let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(text.as_bytes());
        frame
    };
    stream.write_all(&masked("raw")).unwrap();
    let mut raw = [0u8; 5];
    stream.read_exact(&mut raw).unwrap();
    assert_eq!(raw, [0x81, 3, b'r', b'a', b'w']);
    stream.write_all(&masked("shared")).unwrap();
    let mut frames = [0u8; 8 + 7];
    stream.read_exact(&mut frames).unwrap();
    assert_eq!(&frames[..8], b"\x81\x06shared");
    assert_eq!(&frames[8..], b"\x81\x05after");
    server.stop();
}

#[test]
fn a_shared_chunk_goes_out_framed_once_on_chunked_responses_only() {
    use workerman::protocols::http::Chunk;
    let _alone = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            let chunk = SharedMessage::chunk(&Chunk::new("shared piece"));
            if request.path() == "/plain" {
                // No chunked response is streaming: refused.
                assert_eq!(connection.send(&chunk), SendResult::Refused);
                connection.send("plain");
                return;
            }
            connection.send(Response::new(
                200,
                [("Transfer-Encoding", "chunked")],
                "first",
            ));
            assert!(connection.send(&chunk).is_accepted());
            connection.send(Chunk::last());
        });
        worker
    });
    let mut stream = connect(server.local_address());
    stream
        .write_all(
            b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let response = support::read_response(&mut reader, false);
    assert_eq!(response.body_text(), "firstshared piece");
    let plain = support::read_response(&mut reader, false);
    assert_eq!(plain.body_text(), "plain");
    server.stop();
}
