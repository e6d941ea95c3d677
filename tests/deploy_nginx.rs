//! `docs/deploy/nginx-site.conf`, run by Debian's nginx in front of us: Server-Sent Events pass
//! through one by one, unbuffered, and WebSocket messages go both ways.
//!
//! Each test starts its own nginx, unprivileged-safe: a prefix in a temporary directory (`-p`),
//! a generated top-level `nginx.conf` (`daemon off; master_process off;`, logs and temp paths in
//! that directory) that `include`s the site file with its `listen` port and upstream ports swapped
//! for free loopback ones, and nothing else. nginx is killed when the test ends, failed or not.
//!
//! Run with `cargo test` (which builds the examples; for this file alone,
//! `cargo build --examples && cargo test --test deploy_nginx`). Needs Debian's `nginx`, which
//! `bash tests/run.sh` installs.

mod support;

#[path = "support/event_stream.rs"]
mod event_stream;
#[path = "support/example.rs"]
mod example;
#[path = "support/websocket.rs"]
mod websocket;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use event_stream::{Event, EventStreamParser};
use example::{Example, accepts_connections, manifest_dir};
use serde_json::Value;
use websocket::{OP_TEXT, WsClient, upgrade_request};
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// What "unbuffered" means here: an event is through nginx this soon after we sent it.
const WITHIN: Duration = Duration::from_millis(100);
/// The same for the seed's own 2 s cadence, where the send time is not stamped but inferred
/// from the head's arrival: a quarter of the interval. A buffering proxy would hold a 60-byte
/// event until the endless stream ends, or hand two over together (one of them 2 s off), so
/// this still tells the two apart, while leaving room for a loaded machine's scheduling (one
/// CI run saw 106 ms with the timer on time).
const SEED_WITHIN: Duration = Duration::from_millis(500);
/// The upstream ports written in the site file (the examples' own ports).
const SITE_HTTP_PORT: u16 = 8080;
const SITE_WEBSOCKET_PORT: u16 = 8096;

/// A free loopback port (bound, read, released; nginx binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `text` with its one `from` line replaced by `to`; the site file must keep each such line
/// exactly once, or this test (and its substitution) would silently test something else.
fn replace_line(text: &str, from: &str, to: &str) -> String {
    let found = text.lines().filter(|line| line.trim() == from).count();
    assert_eq!(
        found, 1,
        "docs/deploy/nginx-site.conf must have the line `{from}` exactly once (tests/deploy_nginx.rs \
         swaps it for a free port); found it {found} times"
    );
    text.lines()
        .map(|line| if line.trim() == from { to } else { line })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Debian's nginx with the site file, in its own temporary prefix; killed on drop.
struct Nginx {
    child: Child,
    prefix: PathBuf,
    address: SocketAddr,
}

impl Nginx {
    /// Starts nginx on a free port with the site's upstreams pointed at `http_port` and
    /// `websocket_port`.
    fn start(http_port: u16, websocket_port: u16) -> Nginx {
        let nginx = support::require_program("nginx");
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let prefix = std::env::temp_dir().join(format!(
            "workerman-nginx-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(&prefix).expect("create nginx's prefix directory");

        let site_path = manifest_dir().join("docs/deploy/nginx-site.conf");
        let site = std::fs::read_to_string(&site_path).expect("read docs/deploy/nginx-site.conf");
        let port = free_port();
        let site = replace_line(
            &site,
            "listen 80;",
            &format!("    listen 127.0.0.1:{port};"),
        );
        let site = replace_line(
            &site,
            &format!("server 127.0.0.1:{SITE_HTTP_PORT};"),
            &format!("    server 127.0.0.1:{http_port};"),
        );
        let site = replace_line(
            &site,
            &format!("server 127.0.0.1:{SITE_WEBSOCKET_PORT};"),
            &format!("    server 127.0.0.1:{websocket_port};"),
        );
        std::fs::write(prefix.join("site.conf"), site).expect("write site.conf");
        let dir = prefix.display();
        let config = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             \x20   access_log {dir}/access.log;\n\
             \x20   client_body_temp_path {dir}/client_body;\n\
             \x20   proxy_temp_path {dir}/proxy;\n\
             \x20   fastcgi_temp_path {dir}/fastcgi;\n\
             \x20   uwsgi_temp_path {dir}/uwsgi;\n\
             \x20   scgi_temp_path {dir}/scgi;\n\
             \x20   include {dir}/site.conf;\n\
             }}\n"
        );
        std::fs::write(prefix.join("nginx.conf"), config).expect("write nginx.conf");

        let child = Command::new(&nginx)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", nginx.display()));
        let mut started = Nginx {
            child,
            prefix,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + example::STARTUP;
        while !accepts_connections(port) {
            if let Ok(Some(status)) = started.child.try_wait() {
                panic!(
                    "nginx exited ({status}) before listening on {port}:\n{}",
                    started.error_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port}:\n{}",
                started.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        started
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("nginx's error log:\n{}", self.error_log());
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// An SSE client through nginx: the response head, then events stamped with the instant the
/// read that completed them returned.
struct EventClient {
    stream: TcpStream,
    /// Bytes read but not yet de-chunked.
    pending: Vec<u8>,
    /// Bytes left in the current chunk.
    chunk_left: usize,
    parser: EventStreamParser,
    arrived: Vec<(Instant, Event)>,
}

impl EventClient {
    /// Sends the SSE request (as a browser's EventSource does) and reads the head; returns the
    /// client and the instant the head's last byte arrived.
    fn open(address: SocketAddr) -> (EventClient, String, Instant) {
        let mut stream = support::connect(address);
        stream
            .write_all(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
                  Cache-Control: no-cache\r\nAccept-Encoding: gzip\r\n\r\n",
            )
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        // Byte by byte, so nothing after the head is consumed with it.
        while !head.ends_with(b"\r\n\r\n") {
            let count = stream.read(&mut byte).expect("read the response head");
            assert!(count > 0, "nginx closed inside the head: {head:?}");
            head.push(byte[0]);
        }
        let arrived = Instant::now();
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("\r\ncontent-type: text/event-stream"),
            "{head}"
        );
        assert!(
            lower.contains("\r\ntransfer-encoding: chunked"),
            "nginx should stream an HTTP/1.1 client the body in chunks: {head}"
        );
        let client = EventClient {
            stream,
            pending: Vec::new(),
            chunk_left: 0,
            parser: EventStreamParser::new(),
            arrived: Vec::new(),
        };
        (client, head, arrived)
    }

    /// Reads until `count` events arrived in all (or the read timeout fails the test).
    fn read_events(&mut self, count: usize) {
        let mut buffer = [0u8; 4096];
        while self.arrived.len() < count {
            let read = self
                .stream
                .read(&mut buffer)
                .expect("read the event stream");
            let now = Instant::now();
            assert!(read > 0, "nginx closed the stream after {:?}", self.arrived);
            self.pending.extend_from_slice(&buffer[..read]);
            let body = self.dechunk();
            for event in self.parser.feed(&body) {
                self.arrived.push((now, event));
            }
        }
    }

    /// Takes the complete chunk data out of `pending` (the chunked framing of RFC 9112 §7.1).
    fn dechunk(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            if self.chunk_left > 0 {
                let take = self.chunk_left.min(self.pending.len());
                body.extend(self.pending.drain(..take));
                self.chunk_left -= take;
                if self.chunk_left > 0 {
                    return body;
                }
                // The chunk's data is followed by CRLF.
                self.chunk_left = usize::MAX;
            }
            if self.chunk_left == usize::MAX {
                if self.pending.len() < 2 {
                    return body;
                }
                assert_eq!(&self.pending[..2], b"\r\n", "no CRLF after a chunk");
                self.pending.drain(..2);
                self.chunk_left = 0;
            }
            let Some(end) = self.pending.windows(2).position(|pair| pair == b"\r\n") else {
                return body;
            };
            let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .unwrap_or_else(|_| panic!("a bad chunk size line {line:?}"));
            assert!(
                size > 0,
                "the stream ended (last chunk) after {:?}",
                self.arrived
            );
            self.pending.drain(..end + 2);
            self.chunk_left = size;
        }
    }
}

/// The seed (`examples/sse.rs`, on its own port 8080) behind the site: plain requests get `ok`,
/// and an EventSource request gets `hello` every 2 s, each event as it is sent.
///
/// When we sent an event is known here from the stream's cadence, not from a stamp: the seed
/// sends the response head and starts its 2 s timer in the same callback, and our timers keep
/// their cadence (deadline = previous deadline + interval), so event k leaves at the head's send
/// time + 2k s. The head's arrival stands for its send time (it can only be later), so each event
/// must arrive within [`SEED_WITHIN`] of head arrival + 2k s, either way. A buffering proxy holds these
/// 60-byte events until its buffer fills or the stream ends.
#[test]
fn seed_events_pass_through_nginx_one_by_one() {
    let mut seed = Example::start("sse", SITE_HTTP_PORT);
    let nginx = Nginx::start(SITE_HTTP_PORT, free_port());

    let mut plain = support::HttpClient::connect(nginx.address);
    let response = plain.get("/");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body_text(), "ok");

    let (mut client, head, head_arrived) = EventClient::open(nginx.address);
    client.read_events(3);
    seed.assert_running();
    for (index, (arrived, event)) in client.arrived.iter().enumerate() {
        assert_eq!(event.event_type, "message", "{head}");
        assert_eq!(event.data, "hello");
        assert_eq!(event.last_event_id, "1");
        let expected = head_arrived + Duration::from_secs(2 * (index as u64 + 1));
        let off = if *arrived >= expected {
            *arrived - expected
        } else {
            expected - *arrived
        };
        assert!(
            off <= SEED_WITHIN,
            "event {} arrived {off:?} off its time (head + {} s), more than {SEED_WITHIN:?}",
            index + 1,
            2 * (index + 1)
        );
    }
}

/// A worker of our own behind the site stamps each event's send time (the instant just before
/// `connection.send`, on the same clock as the client's): every event arrives through nginx
/// within 100 ms of it, and before the next one is sent (one by one, not batched).
#[test]
fn stamped_events_arrive_through_nginx_within_100ms() {
    const EVENTS: u64 = 6;
    const INTERVAL: f64 = 0.25;
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stamps = sent.clone();
    let server = support::start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            if request.header("accept") != Some("text/event-stream") {
                connection.send("not an event stream");
                return;
            }
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "",
            ));
            let connection = connection.clone();
            let stamps = stamps.clone();
            let mut next_id = 1;
            Timer::add(INTERVAL, move |timer_id| {
                if next_id > EVENTS || connection.status() != TcpConnection::STATUS_ESTABLISHED {
                    Timer::del(timer_id);
                    return;
                }
                let before_send = Instant::now();
                connection.send(
                    ServerSentEvents::new()
                        .event("stamp")
                        .data(next_id.to_string())
                        .id(next_id),
                );
                stamps.lock().unwrap().push(before_send);
                next_id += 1;
            });
        });
        worker
    });
    let nginx = Nginx::start(server.local_address().port(), free_port());

    let (mut client, _head, _) = EventClient::open(nginx.address);
    client.read_events(EVENTS as usize);
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), EVENTS as usize);
    let mut latencies = Vec::new();
    for (index, (arrived, event)) in client.arrived.iter().enumerate() {
        let id = index as u64 + 1;
        assert_eq!(event.event_type, "stamp");
        assert_eq!(event.data, id.to_string());
        assert_eq!(event.last_event_id, id.to_string());
        let latency = arrived.saturating_duration_since(sent[index]);
        latencies.push(latency);
        assert!(
            latency <= WITHIN,
            "event {id} took {latency:?} through nginx (more than {WITHIN:?}); all: {latencies:?}"
        );
        if let Some(next_sent) = sent.get(index + 1) {
            assert!(
                arrived < next_sent,
                "event {id} arrived only after event {} was sent: batched",
                id + 1
            );
        }
    }
    eprintln!("send-to-arrival through nginx: {latencies:?}");
}

/// The WebSocket chat (`examples/websocket_chat.rs`, its socket on 8096) behind the site at
/// `/chat`: two clients join through nginx, one speaks, both get the message; a close goes through.
#[test]
fn websocket_chat_works_through_nginx() {
    let mut chat = Example::start("websocket_chat", 8095);
    chat.wait_listening(SITE_WEBSOCKET_PORT);
    let nginx = Nginx::start(free_port(), SITE_WEBSOCKET_PORT);

    let join = |client: &mut WsClient| -> String {
        let line = chat_line(client);
        assert_eq!(line["system"], true, "{line}");
        let text = line["text"].as_str().unwrap_or_default().to_owned();
        let user = text
            .strip_suffix(" joined")
            .unwrap_or_else(|| panic!("not a join line: {line}"));
        user.to_owned()
    };
    let mut first = WsClient::connect_with(nginx.address, &upgrade_request("/chat", ""));
    let first_user = join(&mut first);
    let mut second = WsClient::connect_with(nginx.address, &upgrade_request("/chat", ""));
    let second_user = join(&mut second);
    assert_eq!(
        join(&mut first),
        second_user,
        "the first client saw the second join"
    );
    assert_ne!(first_user, second_user);

    first.send(OP_TEXT, "hello through nginx ✓".as_bytes());
    for client in [&mut first, &mut second] {
        let line = chat_line(client);
        assert_eq!(line["system"], false, "{line}");
        assert_eq!(line["text"], format!("{first_user}: hello through nginx ✓"));
    }

    second.send_close(1000, b"");
    second.expect_close(1000);
    let line = chat_line(&mut first);
    assert_eq!(line["text"], format!("{second_user} left"));
    chat.assert_running();
}

/// The next chat message a client gets, as the JSON the page reads.
fn chat_line(client: &mut WsClient) -> Value {
    let frame = client.read_message().expect("a chat message");
    assert_eq!(frame.opcode, OP_TEXT, "{frame:?}");
    serde_json::from_slice(&frame.payload)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {frame:?}"))
}
