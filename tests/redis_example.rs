//! `examples/redis_pubsub.rs`, its wire contract against a real `redis-server`: `/set`, `/get`
//! (404 for nil), `/events?channel=C` fed by `redis-cli PUBLISH`; with Redis killed, `/get` and
//! `/set` answer 503 within a second and the open stream stays open, then carries messages
//! again once Redis is back on the same port.

#[path = "support/event_stream.rs"]
mod event_stream;
#[path = "../examples/redis_pubsub.rs"]
mod example;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use event_stream::EventStreamParser;
use support::redis::RedisServer;
use support::{HttpClient, read_response};

fn post(address: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut client = HttpClient::connect(address);
    client.write(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let response = client.response();
    (response.status, response.body_text())
}

fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let response = HttpClient::connect(address).get(path);
    (response.status, response.body_text())
}

/// An open event stream: the response head read, events parsed as they come.
struct Stream {
    reader: std::io::BufReader<TcpStream>,
    parser: EventStreamParser,
    pending: Vec<String>,
}

impl Stream {
    fn open(address: SocketAddr, channel: &str) -> Stream {
        let mut stream = support::connect(address);
        stream
            .write_all(
                format!(
                    "GET /events?channel={channel} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let head = read_response(&mut reader, true);
        assert_eq!(head.status, 200);
        assert!(head.head.contains("text/event-stream"), "{}", head.head);
        Stream {
            reader,
            parser: EventStreamParser::new(),
            pending: Vec::new(),
        }
    }

    /// The next event's data (fails on EOF or after the read timeout).
    fn next_data(&mut self) -> String {
        loop {
            if !self.pending.is_empty() {
                return self.pending.remove(0);
            }
            let mut buffer = [0u8; 4096];
            let count = self
                .reader
                .read(&mut buffer)
                .expect("the stream stays open");
            assert!(count > 0, "the stream closed");
            let events = self.parser.feed(&buffer[..count]);
            self.pending
                .extend(events.into_iter().map(|event| event.data));
        }
    }

    /// No EOF and no error within `wait` (a read timeout means still open).
    fn still_open(&mut self, wait: Duration) -> bool {
        let stream = self.reader.get_mut();
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut buffer = [0u8; 4096];
        let open = match stream.read(&mut buffer) {
            Ok(0) => false,
            Ok(_) => true,
            Err(error) => matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        stream
            .set_read_timeout(Some(support::READ_TIMEOUT))
            .unwrap();
        open
    }
}

fn wait_subscribers(server: &RedisServer, channel: &str, count: usize) {
    let expected = format!("{channel}\n{count}");
    assert!(
        support::wait_until(Duration::from_secs(10), || server
            .cli(&["PUBSUB", "NUMSUB", channel])
            == expected),
        "{count} subscriber(s) on {channel} within 10 s"
    );
}

#[test]
fn the_example_serves_keys_and_streams_and_survives_redis_going_away() {
    let mut server = RedisServer::start();
    let url = server.url();
    let worker = support::start(move || example::worker("http://127.0.0.1:0", &url));
    let address = worker.local_address();

    assert_eq!(
        post(address, "/set?key=greeting", "hello"),
        (200, "OK".into())
    );
    assert_eq!(get(address, "/get?key=greeting"), (200, "hello".into()));
    assert_eq!(get(address, "/get?key=nothing").0, 404);
    assert_eq!(server.cli(&["GET", "greeting"]), "hello");

    let mut news = Stream::open(address, "news");
    let mut news_too = Stream::open(address, "news");
    let mut other = Stream::open(address, "other");
    wait_subscribers(&server, "news", 1);
    wait_subscribers(&server, "other", 1);
    server.cli(&["PUBLISH", "news", "first"]);
    server.cli(&["PUBLISH", "other", "elsewhere"]);
    assert_eq!(news.next_data(), "first");
    assert_eq!(news_too.next_data(), "first");
    assert_eq!(other.next_data(), "elsewhere");

    // Redis goes away: 503 within a second, streams stay open.
    server.kill9();
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(get(address, "/get?key=greeting").0, 503);
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "/get answered after {elapsed:?}"
        );
        let started = Instant::now();
        assert_eq!(post(address, "/set?key=k", "v").0, 503);
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "/set answered after {elapsed:?}"
        );
    }
    assert!(news.still_open(Duration::from_millis(300)));
    assert!(other.still_open(Duration::from_millis(300)));

    // Back on the same port: re-subscribed, and messages flow on the same streams.
    server.restart();
    wait_subscribers(&server, "news", 1);
    wait_subscribers(&server, "other", 1);
    server.cli(&["PUBLISH", "news", "second"]);
    assert_eq!(news.next_data(), "second");
    assert_eq!(news_too.next_data(), "second");
    server.cli(&["PUBLISH", "other", "again"]);
    assert_eq!(other.next_data(), "again");
    assert_eq!(
        post(address, "/set?key=greeting", "back"),
        (200, "OK".into())
    );
    assert_eq!(get(address, "/get?key=greeting"), (200, "back".into()));

    // The last stream of a channel closing unsubscribes the worker from it.
    drop(other);
    wait_subscribers(&server, "other", 0);
    worker.stop();
}
