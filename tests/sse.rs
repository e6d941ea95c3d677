//! Server-Sent Events over loopback: the seed's head bytes, events read back through an
//! independent WHATWG event-stream parser, Last-Event-ID, the media-type rule, a pipelined request
//! waiting behind a stream, and the seed's per-connection timer dying with its connection.

#[path = "support/event_stream.rs"]
mod event_stream;
mod support;

use std::io::{BufRead, Read};
use std::time::Duration;

use event_stream::{Event, EventStreamParser};
use support::{HttpClient, start};
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// The seed example, at a 50 ms cadence, plus `/timers` to count this worker's timers, and
/// `/script` streaming a fixed script of awkward events.
fn seed_server() -> workerman::RunningWorker {
    start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            if request.path() == "/timers" {
                connection.send(Timer::count().to_string());
                return;
            }
            if request.path() == "/script" {
                let last = request.header("last-event-id").unwrap_or("none").to_owned();
                connection.send(Response::new(
                    200,
                    [("content-type", "Text/Event-Stream; charset=utf-8")],
                    "",
                ));
                connection.send(ServerSentEvents::new().comment("resuming after").data(last));
                connection.send(
                    ServerSentEvents::new()
                        .event("multi")
                        .data("line one\nline two\r\nline three\rend")
                        .id("a1"),
                );
                connection.send(ServerSentEvents::new().data("").retry(2500));
                connection.send(
                    ServerSentEvents::new()
                        .event("evil\nevent: injected")
                        .id("x\r\ndata: injected\0")
                        .data("ok"),
                );
                return;
            }
            if request.header("accept") == Some("text/event-stream") {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/event-stream")],
                    "\r\n",
                ));
                let connection = connection.clone();
                Timer::add(0.05, move |timer_id| {
                    if connection.status() != TcpConnection::STATUS_ESTABLISHED {
                        Timer::del(timer_id);
                        return;
                    }
                    connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
                });
                return;
            }
            connection.send("ok");
        });
        worker
    })
}

fn read_events(
    client: &mut HttpClient,
    parser: &mut EventStreamParser,
    count: usize,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buffer = [0u8; 4096];
    while events.len() < count {
        let read = client.reader.read(&mut buffer).expect("read events");
        assert!(read > 0, "the stream ended after {events:?}");
        events.extend(parser.feed(&buffer[..read]));
    }
    events
}

fn read_head(client: &mut HttpClient) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        client.reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            return head;
        }
    }
}

#[test]
fn seed_stream_head_bytes_and_hello_events() {
    let server = seed_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    assert_eq!(
        read_head(&mut client),
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\
         Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n"
    );
    let mut parser = EventStreamParser::new();
    let events = read_events(&mut client, &mut parser, 3);
    for event in events {
        assert_eq!(event.event_type, "message");
        assert_eq!(event.data, "hello");
        assert_eq!(event.last_event_id, "1");
    }
}

#[test]
fn any_other_request_gets_ok() {
    let server = seed_server();
    let response = HttpClient::connect(server.local_address()).get("/");
    assert_eq!(response.body_text(), "ok");
}

#[test]
fn awkward_events_parse_back_exactly_and_cannot_inject_fields() {
    let server = seed_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET /script HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\n\r\n");
    let head = read_head(&mut client);
    assert!(head.contains("Cache-Control: no-cache\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    let mut parser = EventStreamParser::new();
    let events = read_events(&mut client, &mut parser, 4);
    assert_eq!(
        events[0].data, "41",
        "Last-Event-ID is readable through request.header"
    );
    assert_eq!(events[1].event_type, "multi");
    assert_eq!(events[1].data, "line one\nline two\nline three\nend");
    assert_eq!(events[1].last_event_id, "a1");
    assert_eq!(events[2].data, "");
    assert_eq!(parser.retry(), Some(2500));
    // CR/LF in event and id were removed (documented sanitizing), so no field was injected.
    assert_eq!(events[3].data, "ok");
    assert!(!events[3].event_type.contains('\n'));
    assert!(events[3].event_type.starts_with("evil"));
    assert!(events[3].last_event_id.starts_with('x'));
    assert!(!events.iter().any(|event| event.data.contains("injected")));
}

#[test]
fn a_pipelined_request_waits_behind_a_stream() {
    let server = seed_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    read_head(&mut client);
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    client
        .reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_millis(400);
    while std::time::Instant::now() < deadline {
        if let Ok(read) = client.reader.read(&mut buffer) {
            raw.extend_from_slice(&buffer[..read]);
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("data: hello"), "{text}");
    assert!(
        !text.contains("HTTP/1.1"),
        "a response landed inside the stream: {text}"
    );
}

#[test]
fn the_seed_timer_dies_with_its_connection() {
    let server = seed_server();
    let mut probe = HttpClient::connect(server.local_address());
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut client = HttpClient::connect(server.local_address());
        client.write(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
        read_head(&mut client);
        streams.push(client);
    }
    assert_eq!(probe.get("/timers").body_text(), "5");
    drop(streams);
    assert!(
        support::wait_until(Duration::from_secs(2), || probe.get("/timers").body_text()
            == "0"),
        "timers left behind"
    );
}
