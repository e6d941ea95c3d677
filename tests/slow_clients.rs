//! Slow and stuck clients: 1,000 SSE subscribers that never read cost at most their send-buffer
//! limit each (then `on_buffer_full`, then refused sends), and a subscriber that reads still gets
//! every event on time.

mod support;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use support::HttpClient;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

const STUCK: usize = 1000;
const LIMIT: usize = 64 * 1024;
const EVENT_BYTES: usize = 4096;
const INTERVAL: f64 = 0.01;

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

#[test]
fn stuck_subscribers_cost_bounded_memory_and_do_not_delay_others() {
    let full_count = Arc::new(AtomicUsize::new(0));
    let (queued_sender, queued) = mpsc::channel();
    let fulls = full_count.clone();
    let server = support::start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_max_send_buffer_size(LIMIT);
        worker.on_buffer_full(move |_| {
            fulls.fetch_add(1, Ordering::Relaxed);
        });
        let subscribers: Rc<RefCell<Vec<TcpConnection>>> = Rc::default();
        let all = subscribers.clone();
        worker.on_worker_start(move |_| {
            let all = all.clone();
            let payload = "x".repeat(EVENT_BYTES);
            let mut id = 0u64;
            Timer::add(INTERVAL, move |_| {
                id += 1;
                all.borrow_mut()
                    .retain(|c| c.status() == TcpConnection::STATUS_ESTABLISHED);
                for connection in all.borrow().iter() {
                    connection.send(ServerSentEvents::new().id(id).data(payload.clone()));
                }
            });
        });
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            if request.path() == "/queued" {
                let total: usize = subscribers
                    .borrow()
                    .iter()
                    .map(|c| c.send_buffer_queue_size())
                    .sum();
                let most = subscribers
                    .borrow()
                    .iter()
                    .map(|c| c.send_buffer_queue_size())
                    .max();
                queued_sender.send((total, most.unwrap_or(0))).unwrap();
                connection.send("ok");
                return;
            }
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "",
            ));
            subscribers.borrow_mut().push(connection.clone());
        });
        worker
    });
    let before = resident_bytes();
    let mut stuck = Vec::with_capacity(STUCK);
    for _ in 0..STUCK {
        // A small receive buffer (set before connecting, so the window stays small) makes the
        // kernel hold little for a client that never reads: the server's own queue fills fast.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.local_address().into()).unwrap();
        let mut client = std::net::TcpStream::from(socket);
        client
            .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stuck.push(client); // never read again
    }
    // Let every stuck connection fill the kernel's buffers and then its own queue. The kernel
    // takes over a megabyte per connection first (the server side's send buffer is autotuned from
    // the congestion window, whatever the client's receive window), so about 1.3 GB must be
    // written: a few seconds on a quiet machine, more on a loaded one with a debug build.
    assert!(
        support::wait_until(Duration::from_secs(90), || full_count
            .load(Ordering::Relaxed)
            >= STUCK),
        "on_buffer_full fired for {} of {STUCK} stuck subscribers",
        full_count.load(Ordering::Relaxed)
    );

    // A live subscriber meanwhile: every event arrives, on time.
    let mut live = HttpClient::connect(server.local_address());
    live.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut parser_buffer = Vec::new();
    let mut arrivals = Vec::new();
    let mut chunk = [0u8; 65536];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let count = live.reader.read(&mut chunk).unwrap();
        assert!(count > 0);
        parser_buffer.extend_from_slice(&chunk[..count]);
        while let Some(end) = parser_buffer.windows(2).position(|w| w == b"\n\n") {
            arrivals.push(Instant::now());
            parser_buffer.drain(..end + 2);
        }
    }
    let mut gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let p99 = gaps[gaps.len() * 99 / 100];
    assert!(
        arrivals.len() >= 150,
        "only {} events in 2 s at 10 ms",
        arrivals.len()
    );
    assert!(
        p99 < Duration::from_millis(60),
        "p99 gap {p99:?} (median {:?})",
        gaps[gaps.len() / 2]
    );

    // The queues are bounded: each stuck subscriber holds at most one event over its limit.
    HttpClient::connect(server.local_address()).get("/queued");
    let (total, most) = queued.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        most < LIMIT + EVENT_BYTES + 100,
        "a queue holds {most} bytes"
    );
    assert!(total <= STUCK * (LIMIT + EVENT_BYTES + 100));
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < STUCK * (LIMIT + 32 * 1024),
        "resident memory grew {} MiB for {STUCK} stuck subscribers",
        grown >> 20
    );
    eprintln!(
        "{STUCK} stuck subscribers: {} MiB queued in user space, resident +{} MiB; live p99 gap {p99:?}",
        total >> 20,
        grown >> 20
    );
}
