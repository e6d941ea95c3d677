//! One `send` of a Server-Sent Event, end to end through the connection's write path, for
//! `benches/send_instructions.sh` (which counts its instructions with callgrind): a worker on a
//! thread answers one event-stream request with N events sent in one callback, and a client
//! reads them to the end.
//!
//!   cargo bench --bench send_cost -- 20000     # prints the bytes read

use std::io::{Read, Write};

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Worker};

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(20_000);
    let server = Worker::spawn(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, _request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "",
            ));
            for id in 0..events {
                connection.send(
                    ServerSentEvents::new()
                        .event("message")
                        .data("hello")
                        .id(id),
                );
            }
            connection.close();
        });
        worker
    })
    .expect("the worker starts");
    let mut client = std::net::TcpStream::connect(server.local_address()).expect("connect");
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .expect("write the request");
    let mut received = Vec::new();
    client.read_to_end(&mut received).expect("read the events");
    println!("{events} events, {} bytes", received.len());
    server.stop();
}
