//! The SSE floor: a raw mio loop holding event streams with minimal per-connection state, writing
//! workerman's canned seed event (`event: message\nid: 1\ndata: hello\n\n`) to each.
//!
//! ```text
//! mio_sse [--port 18190] [--interval 2] [--mode wheel|global] [--count 1]
//!         (env PORT, INTERVAL, MODE, COUNT)
//! ```
//! - `--mode wheel` (the default) is the seed's pattern: each stream gets an event every
//!   `interval` seconds counted from its own connect (a timing wheel of 5 ms slots, so one
//!   timer per stream costs one `u32` in a slot; the loop sleeps until the next non-empty slot).
//! - `--mode global` is `sse_broadcast`'s pattern: one timer writes the event to every stream.
//! - Any `GET` opens a stream; `POST /publish` with a body writes `event: message`,
//!   `id: <n>`, `data: <body>` to every stream of this process and answers `ok`.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use workerman_bench_peers::{SSE_EVENT, SSE_HEAD, arg, listen, raise_nofile, run_processes};

const LISTENER: Token = Token(usize::MAX);
const SLOT: Duration = Duration::from_millis(5);

struct Conn {
    stream: TcpStream,
    /// An incomplete request carried to the next read (empty, unallocated, once streaming).
    partial: Vec<u8>,
    /// Bytes the socket refused (unallocated unless the peer is slow).
    out: Vec<u8>,
    /// The wheel slot of a stream; `u32::MAX` while it is a plain request connection.
    slot: u32,
}

struct Server {
    poll: Poll,
    conns: Slab<Conn>,
    wheel: Vec<Vec<u32>>,
    global: bool,
    published: u64,
}

impl Server {
    /// Writes `bytes` to connection `key`; returns false when it must close.
    fn write(&mut self, key: usize, bytes: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if !conn.out.is_empty() {
            conn.out.extend_from_slice(bytes);
            return conn.out.len() < 1 << 20;
        }
        match conn.stream.write(bytes) {
            Ok(n) if n == bytes.len() => true,
            Ok(n) => {
                conn.out.extend_from_slice(&bytes[n..]);
                self.want_write(key)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.out.extend_from_slice(bytes);
                self.want_write(key)
            }
            Err(_) => false,
        }
    }

    fn want_write(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        self.poll
            .registry()
            .reregister(
                &mut conn.stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_ok()
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if conn.slot != u32::MAX && !self.global {
                let slot = &mut self.wheel[conn.slot as usize];
                if let Some(i) = slot.iter().position(|&k| k as usize == key) {
                    slot.swap_remove(i);
                }
            }
        }
    }

    /// Handles whatever complete requests `partial` holds.
    fn requests(&mut self, key: usize, current_slot: usize) -> bool {
        loop {
            let conn = &mut self.conns[key];
            if conn.slot != u32::MAX {
                conn.partial = Vec::new();
                return true;
            }
            let Some(head_end) = find(&conn.partial, b"\r\n\r\n") else {
                return true;
            };
            let head = &conn.partial[..head_end];
            if head.starts_with(b"POST ") {
                let length = content_length(head);
                let total = head_end + 4 + length;
                if conn.partial.len() < total {
                    return true;
                }
                let body = conn.partial[head_end + 4..total].to_vec();
                conn.partial.drain(..total);
                self.published += 1;
                let mut event = Vec::with_capacity(body.len() + 48);
                event.extend_from_slice(b"event: message\nid: ");
                event.extend_from_slice(self.published.to_string().as_bytes());
                event.extend_from_slice(b"\ndata: ");
                event.extend_from_slice(&body);
                event.extend_from_slice(b"\n\n");
                let streams: Vec<usize> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.slot != u32::MAX)
                    .map(|(k, _)| k)
                    .collect();
                for stream in streams {
                    if !self.write(stream, &event) {
                        self.close(stream);
                    }
                }
                if !self.write(key, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n") {
                    return false;
                }
            } else {
                // Any other request opens an event stream.
                conn.partial = Vec::new();
                let slot = if self.global {
                    0
                } else {
                    // Due one full turn (one interval) from now.
                    (current_slot + self.wheel.len() - 1) % self.wheel.len()
                };
                conn.slot = slot as u32;
                if !self.global {
                    self.wheel[slot].push(key as u32);
                }
                return self.write(key, SSE_HEAD);
            }
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn serve(port: u16, interval: Duration, global: bool) {
    let poll = Poll::new().expect("poll");
    let mut listener = TcpListener::from_std(listen(port));
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register");
    let slots = (interval.as_nanos() / SLOT.as_nanos()).max(1) as usize;
    let mut server = Server {
        poll,
        conns: Slab::new(),
        wheel: vec![Vec::new(); slots],
        global,
        published: 0,
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let start = Instant::now();
    // The wheel's next slot to fire, counted from `start`.
    let mut next_tick: u64 = 1;
    let mut next_global = start + interval;
    let mut due: Vec<u32> = Vec::new();
    loop {
        let now = Instant::now();
        // Sleep until the next slot that holds a stream (none: until a socket has news).
        let deadline = if global {
            Some(next_global)
        } else {
            (0..slots as u64)
                .find(|k| !server.wheel[((next_tick + k) as usize) % slots].is_empty())
                .map(|k| start + SLOT * (next_tick + k) as u32)
        };
        let timeout = deadline.map(|d| d.saturating_duration_since(now));
        if let Err(e) = server.poll.poll(&mut events, timeout)
            && e.kind() != ErrorKind::Interrupted
        {
            panic!("poll: {e}");
        }
        let current_slot = (next_tick as usize) % slots;
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let entry = server.conns.vacant_entry();
                    let key = entry.key();
                    server
                        .poll
                        .registry()
                        .register(&mut stream, Token(key), Interest::READABLE)
                        .expect("register");
                    entry.insert(Conn {
                        stream,
                        partial: Vec::new(),
                        out: Vec::new(),
                        slot: u32::MAX,
                    });
                }
                continue;
            }
            let key = event.token().0;
            let mut ok = server.conns.contains(key);
            if ok && event.is_writable() {
                let conn = &mut server.conns[key];
                match conn.stream.write(&conn.out) {
                    Ok(n) => {
                        conn.out.drain(..n);
                        if conn.out.is_empty() {
                            conn.out = Vec::new();
                            let _ = server.poll.registry().reregister(
                                &mut conn.stream,
                                Token(key),
                                Interest::READABLE,
                            );
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => ok = false,
                }
            }
            if ok && event.is_readable() {
                loop {
                    let conn = &mut server.conns[key];
                    match conn.stream.read(&mut buf) {
                        Ok(0) => {
                            ok = false;
                            break;
                        }
                        Ok(n) => {
                            if conn.slot == u32::MAX {
                                conn.partial.extend_from_slice(&buf[..n]);
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    ok = server.requests(key, current_slot);
                }
            }
            if !ok {
                server.close(key);
            }
        }
        let now = Instant::now();
        if global {
            if now >= next_global {
                next_global += interval;
                due.clear();
                due.extend(
                    server
                        .conns
                        .iter()
                        .filter(|(_, c)| c.slot != u32::MAX)
                        .map(|(k, _)| k as u32),
                );
                for &key in &due {
                    if !server.write(key as usize, SSE_EVENT) {
                        server.close(key as usize);
                    }
                }
            }
        } else {
            while start + SLOT * next_tick as u32 <= now {
                let slot = (next_tick as usize) % slots;
                next_tick += 1;
                due.clear();
                due.extend_from_slice(&server.wheel[slot]);
                for &key in &due {
                    if !server.write(key as usize, SSE_EVENT) {
                        server.close(key as usize);
                    }
                }
            }
        }
    }
}

fn main() {
    raise_nofile();
    let port: u16 = arg("port", "PORT", "18190").parse().expect("port");
    let interval: f64 = arg("interval", "INTERVAL", "2").parse().expect("interval");
    let mode = arg("mode", "MODE", "wheel");
    let count: usize = arg("count", "COUNT", "1").parse().expect("count");
    let global = match mode.as_str() {
        "wheel" => false,
        "global" => true,
        other => panic!("--mode {other}: use wheel or global"),
    };
    eprintln!(
        "mio_sse: listening on 0.0.0.0:{port}, an event every {interval} s per stream ({mode}), \
         {count} process(es)"
    );
    run_processes(count, || {
        serve(port, Duration::from_secs_f64(interval), global)
    });
}
