//! A client of an `SseHub` server (`tests/sse_hub.rs`, `tests/sse_cluster.rs`): one-shot HTTP
//! requests, `POST /publish?topic=T`, and event streams read through the spec's parser.
//! Included with `#[path]` by tests that also include `support/event_stream.rs` as
//! `event_stream`.
#![allow(dead_code)]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::event_stream::{Event, EventReader};
use crate::support::{self, HttpResponse, read_response};

/// How long a stream read may wait for its next event.
pub const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// One request on its own connection (`Connection: close`), and its whole response.
pub fn request(address: SocketAddr, method: &str, path: &str, body: &str) -> HttpResponse {
    let mut stream = support::connect(address);
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut BufReader::new(stream), false)
}

/// `POST /publish?topic=T` with `data`; the new event's id (fails the test unless 200).
pub fn publish(address: SocketAddr, topic: &str, data: &str) -> String {
    let response = request(address, "POST", &format!("/publish?topic={topic}"), data);
    assert_eq!(response.status, 200, "{}", response.body_text());
    response.body_text()
}

/// An event stream: its response head, then its events.
pub struct Stream {
    pub head: HttpResponse,
    pub events: EventReader<BufReader<TcpStream>>,
}

impl Stream {
    /// `GET path` with `Accept: text/event-stream` (and `Last-Event-ID` when given); reads the
    /// head.
    pub fn open(address: SocketAddr, path: &str, last_event_id: Option<&str>) -> Stream {
        let mut stream = support::connect(address);
        stream.set_read_timeout(Some(STREAM_READ_TIMEOUT)).unwrap();
        let header = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{header}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let head = read_response(&mut reader, true);
        Stream {
            head,
            events: EventReader::new(reader),
        }
    }

    /// [`open`](Self::open), failing the test unless the answer is a `200` event stream.
    pub fn open_ok(address: SocketAddr, path: &str, last_event_id: Option<&str>) -> Stream {
        let stream = Stream::open(address, path, last_event_id);
        assert_eq!(stream.head.status, 200);
        assert_eq!(
            stream.head.header("content-type"),
            Some("text/event-stream")
        );
        stream
    }

    /// The next event (within [`STREAM_READ_TIMEOUT`]).
    pub fn next(&mut self) -> Event {
        self.events.next()
    }

    /// The next event if one comes within `wait` (keep-alive comments do not count).
    pub fn next_within(&mut self, wait: Duration) -> Option<Event> {
        self.events.next_before(std::time::Instant::now() + wait)
    }
}
