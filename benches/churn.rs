//! Churn without leaks: many SSE connect / disconnect cycles against the seed's pattern (one
//! `Timer::add` per stream, deleted once it sees its connection closed) and against
//! `TcpConnection::add_timer` (no `Timer::del` at all), a quarter of them ended by a reset.
//! Afterwards the worker must hold no connection and no timer, and its resident memory must be
//! within 10% of where it was after warming up with as many cycles at the same rate: enough for
//! the allocator and the timer index to reach the pattern's high-water mark (the seed pattern
//! keeps each closed stream's timer until its next tick, thousands at a time at this rate), so
//! what grows after that is a leak.
//!
//! ```text
//! cargo bench --bench churn                 # 100,000 cycles of each pattern
//! cargo bench --bench churn -- 10000        # fewer
//! ```
//! Prints one line per pattern; exits non-zero if a check fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// The seed's per-stream timer interval, shortened so a forgotten timer shows up quickly.
const INTERVAL: f64 = 0.5;
const THREADS: usize = 4;

fn server(connection_timer: bool) -> workerman::RunningWorker {
    Worker::spawn(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            if request.path() == "/stats" {
                let statistics = Worker::statistics();
                connection.send(format!(
                    "{} {}",
                    statistics.connection_count,
                    Timer::count()
                ));
                return;
            }
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            if connection_timer {
                connection.add_timer(INTERVAL, |connection, _| {
                    connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
                });
            } else {
                let connection = connection.clone();
                Timer::add(INTERVAL, move |timer_id| {
                    if connection.status() != TcpConnection::STATUS_ESTABLISHED {
                        Timer::del(timer_id);
                        return;
                    }
                    connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
                });
            }
        });
        worker
    })
    .expect("the worker starts")
}

/// One cycle: connect from `source`, open a stream, read its head, then close (or reset).
fn cycle(server: SocketAddr, source: Ipv4Addr, reset: bool) -> std::io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    socket.connect(&server.into())?;
    let mut stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let count = stream.read(&mut buffer)?;
        if count == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buffer[..count]);
    }
    if reset {
        Socket::from(stream).set_linger(Some(Duration::ZERO))?;
    }
    Ok(())
}

fn stats(server: SocketAddr) -> (usize, usize) {
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.rsplit("\r\n\r\n").next().unwrap();
    let mut numbers = body.split(' ').map(|n| n.parse().unwrap());
    // The /stats connection itself is open while it answers.
    (numbers.next().unwrap() - 1, numbers.next().unwrap())
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap()
}

/// Runs `cycles` cycles over `THREADS` client threads and 16 source addresses.
fn churn(server: SocketAddr, cycles: usize, offset: usize) -> usize {
    let per_thread = cycles / THREADS;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut failures = 0;
                for index in 0..per_thread {
                    let n = offset + thread * per_thread + index;
                    let source = Ipv4Addr::new(127, 0, 0, 2 + (n % 16) as u8);
                    if cycle(server, source, n % 4 == 0).is_err() {
                        failures += 1;
                    }
                }
                failures
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum()
}

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(100_000);
    let mut failed = false;
    for (name, connection_timer) in [
        ("seed pattern (Timer::add + Timer::del)", false),
        ("TcpConnection::add_timer, no del", true),
    ] {
        let running = server(connection_timer);
        let address = running.local_address();
        // Warm up at full rate, so the allocator reaches the high-water mark the pattern needs
        // (the seed pattern keeps a closed stream's timer until its next tick: at this rate,
        // thousands at a time). A leak would then still grow with the number of cycles.
        let warm_up = cycles;
        churn(address, warm_up, 0);
        std::thread::sleep(Duration::from_secs_f64(INTERVAL * 3.0));
        let warm = resident_kib();
        let started = Instant::now();
        let failures = churn(address, cycles, warm_up);
        let elapsed = started.elapsed();
        // Let the last streams' timers see their connections gone (the seed pattern notices at
        // its next tick).
        std::thread::sleep(Duration::from_secs_f64(INTERVAL * 3.0));
        let (connections, timers) = stats(address);
        let after = resident_kib();
        let growth = (after as f64 - warm as f64) / warm as f64 * 100.0;
        let ok = failures == 0 && connections == 0 && timers == 0 && growth.abs() <= 10.0;
        failed |= !ok;
        println!(
            "{name}: {cycles} cycles in {:.1} s ({:.0}/s), {failures} failed; after: {connections} connections, {timers} timers; RSS {warm} KiB -> {after} KiB ({growth:+.1}%) {}",
            elapsed.as_secs_f64(),
            cycles as f64 / elapsed.as_secs_f64(),
            if ok { "ok" } else { "FAILED" }
        );
    }
    if failed {
        std::process::exit(1);
    }
}
