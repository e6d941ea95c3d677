//! The HTTP ceiling: a raw mio loop that answers every request head (`\r\n\r\n`) with a canned
//! `hello` response, byte for byte what workerman's `http_hello` sends. No parsing beyond
//! finding the end of each head, so pipelined requests are answered in one write.
//!
//! ```text
//! mio_http [--port 18181] [--count 1]      (env PORT, COUNT)
//! ```

use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use workerman_bench_peers::{HELLO_RESPONSE, arg, listen, raise_nofile, run_processes};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Bytes of an incomplete request head carried to the next read.
    partial: Vec<u8>,
    /// Responses not yet written (only when the socket pushed back).
    out: Vec<u8>,
}

fn serve(port: u16) {
    let mut poll = Poll::new().expect("poll");
    let mut listener = TcpListener::from_std(listen(port));
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register");
    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            panic!("poll: {e}");
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let key = conns.insert(Conn {
                                stream,
                                partial: Vec::new(),
                                out: Vec::new(),
                            });
                            let conn = &mut conns[key];
                            poll.registry()
                                .register(&mut conn.stream, Token(key), Interest::READABLE)
                                .expect("register");
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            let mut close = false;
            if let Some(conn) = conns.get_mut(key) {
                if event.is_writable() && !conn.out.is_empty() {
                    match conn.stream.write(&conn.out) {
                        Ok(n) => {
                            conn.out.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => close = true,
                    }
                    if conn.out.is_empty() && !close {
                        let _ = poll.registry().reregister(
                            &mut conn.stream,
                            Token(key),
                            Interest::READABLE,
                        );
                    }
                }
                if event.is_readable() && !close {
                    loop {
                        match conn.stream.read(&mut buf) {
                            Ok(0) => {
                                close = true;
                                break;
                            }
                            Ok(n) => {
                                let answered = count_heads(&mut conn.partial, &buf[..n]);
                                for _ in 0..answered {
                                    out.extend_from_slice(HELLO_RESPONSE);
                                }
                                if n < buf.len() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                            Err(_) => {
                                close = true;
                                break;
                            }
                        }
                    }
                    if !out.is_empty() && !close {
                        if conn.out.is_empty() {
                            match conn.stream.write(&out) {
                                Ok(n) if n == out.len() => {}
                                Ok(n) => conn.out.extend_from_slice(&out[n..]),
                                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                    conn.out.extend_from_slice(&out)
                                }
                                Err(_) => close = true,
                            }
                            if !conn.out.is_empty() {
                                let _ = poll.registry().reregister(
                                    &mut conn.stream,
                                    Token(key),
                                    Interest::READABLE | Interest::WRITABLE,
                                );
                            }
                        } else {
                            conn.out.extend_from_slice(&out);
                        }
                    }
                    out.clear();
                }
            }
            if close && let Some(mut conn) = conns.try_remove(key) {
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Counts the complete request heads in `partial + data` and keeps the incomplete tail.
fn count_heads(partial: &mut Vec<u8>, data: &[u8]) -> usize {
    let mut owned = Vec::new();
    let joined: &[u8] = if partial.is_empty() {
        data
    } else {
        owned.extend_from_slice(partial);
        owned.extend_from_slice(data);
        &owned
    };
    let mut count = 0;
    let mut start = 0;
    while let Some(end) = find(&joined[start..], b"\r\n\r\n") {
        count += 1;
        start += end + 4;
    }
    *partial = joined[start..].to_vec();
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    raise_nofile();
    let port: u16 = arg("port", "PORT", "18181").parse().expect("port");
    let count: usize = arg("count", "COUNT", "1").parse().expect("count");
    eprintln!("mio_http: listening on 0.0.0.0:{port} ({count} process(es))");
    run_processes(count, || serve(port));
}
