//! `examples/sse_db.rs` driven over real sockets: rows inserted on the pool reach every SSE
//! subscriber, the list comes from SQLite, and the rows outlive the process.

#[path = "support/event_stream.rs"]
mod event_stream;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_stream::EventReader;
use support::process::example_binary;
use support::{HttpClient, connect, free_port, read_response, wait_until};

/// The example's master process in the foreground; dropping it stops it (SIGINT, then SIGKILL).
struct Example {
    child: Child,
    address: SocketAddr,
}

impl Example {
    fn start(dir: &Path) -> Example {
        Example::start_with(dir, 0)
    }

    fn start_with(dir: &Path, insert_delay_ms: u64) -> Example {
        let port = free_port();
        let child = Command::new(example_binary("sse_db"))
            .arg("start")
            .env("SSE_DB_PORT", port.to_string())
            .env("SSE_DB_DIR", dir)
            .env("SSE_DB_INSERT_DELAY_MS", insert_delay_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the example");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let example = Example { child, address };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(address)
                .is_ok()),
            "the example never listened on {address}"
        );
        example
    }

    fn stop(mut self) {
        // SAFETY: `kill` has no memory effects; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let stopped = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(stopped, "the example did not stop on SIGINT");
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An SSE subscriber, its events read by an independent event-stream parser.
type Subscriber = EventReader<BufReader<TcpStream>>;

/// Opens `GET /events` and reads the response head.
fn subscribe(address: SocketAddr) -> Subscriber {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );
    EventReader::new(reader)
}

fn post(address: SocketAddr, body: &str) -> support::HttpResponse {
    let mut client = HttpClient::connect(address);
    client.write(
        format!(
            "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    read_response(&mut client.reader, false)
}

#[test]
fn rows_inserted_on_the_pool_reach_every_subscriber_and_stay_in_the_database() {
    let dir = std::env::temp_dir().join(format!("workerman-sse-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let example = Example::start(&dir);
    let address = example.address;
    let mut subscribers: Vec<Subscriber> = (0..3).map(|_| subscribe(address)).collect();
    // Subscribed before the inserts: an empty list answers first.
    let mut client = HttpClient::connect(address);
    let empty = client.get("/items");
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body_text(), "[]");

    let created = post(address, "first row");
    assert_eq!(created.status, 201, "{}", created.body_text());
    assert_eq!(created.body_text(), r#"{"id":1,"text":"first row"}"#);
    let created = post(address, "second \"row\"");
    assert_eq!(created.body_text(), r#"{"id":2,"text":"second \"row\""}"#);

    for subscriber in &mut subscribers {
        let first = subscriber.next();
        assert_eq!(first.event_type, "item");
        assert_eq!(first.last_event_id, "1");
        assert_eq!(first.data, r#"{"id":1,"text":"first row"}"#);
        let second = subscriber.next();
        assert_eq!(second.last_event_id, "2");
        assert_eq!(second.data, r#"{"id":2,"text":"second \"row\""}"#);
    }
    let listed = client.get("/items");
    assert_eq!(
        listed.body_text(),
        r#"[{"id":1,"text":"first row"},{"id":2,"text":"second \"row\""}]"#
    );
    assert_eq!(client.get("/nowhere").status, 404);
    drop(subscribers);
    example.stop();

    // A new process finds the rows in the file.
    let example = Example::start(&dir);
    let mut client = HttpClient::connect(example.address);
    let listed = client.get("/items");
    assert_eq!(
        listed.body_text(),
        r#"[{"id":1,"text":"first row"},{"id":2,"text":"second \"row\""}]"#
    );
    example.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hard stop (SIGINT to the master) while an insert runs on the pool: the worker waits for the
/// job (within the stop timeout), the request gets its answer, and the row is in the file.
#[test]
fn a_stop_waits_for_the_insert_in_flight_and_answers_its_request() {
    let dir = std::env::temp_dir().join(format!("workerman-sse-db-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let example = Example::start_with(&dir, 800);
    let mut client = HttpClient::connect(example.address);
    client.write(b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nslow");
    // The insert is on the pool now.
    std::thread::sleep(Duration::from_millis(200));
    let stopping = std::time::Instant::now();
    let pid = example.child.id() as i32;
    // SAFETY: `kill` has no memory effects; the pid is our child's.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let answer = read_response(&mut client.reader, false);
    assert_eq!(answer.status, 201, "{}", answer.body_text());
    assert_eq!(answer.body_text(), r#"{"id":1,"text":"slow"}"#);
    assert!(
        stopping.elapsed() >= Duration::from_millis(400),
        "answered before the insert could have ended"
    );
    example.stop();

    let example = Example::start(&dir);
    let mut client = HttpClient::connect(example.address);
    assert_eq!(
        client.get("/items").body_text(),
        r#"[{"id":1,"text":"slow"}]"#
    );
    example.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
