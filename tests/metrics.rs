//! The metrics endpoint (`Worker::set_metrics_listen`), scraped over real sockets and parsed by
//! Python's `prometheus_client` text parser: under `run_all` with two worker processes
//! (`examples/process_demo.rs`, as `tests/process.rs` drives it) and under `Worker::spawn`.
//! The figures must move as the traffic does, per process and in total.
//!
//! Needs `python3` with the `prometheus_client` module (`bash tests/run.sh` installs both).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use support::free_port;
use support::process::{TestDir, example_binary};
use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a figure may take to show a change (a worker publishes at the end of its turn).
const SETTLE: Duration = Duration::from_secs(20);

/// One sample as the Python parser read it.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: every sample, and each family's type.
#[derive(Debug)]
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// The value of the sample `name` whose labels include `labels`; exactly one must match.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels).collect();
        assert_eq!(
            found.len(),
            1,
            "one sample {name}{labels:?} expected, found {found:?}"
        );
        found[0].value
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
    }

    /// The sum of every per-process sample `name` (with `labels`).
    fn process_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    /// The pids of the per-process series of `name`.
    fn pids(&self, name: &str) -> Vec<String> {
        let mut pids: Vec<String> = self
            .matching(name, &[])
            .filter_map(|sample| sample.labels.get("pid").cloned())
            .collect();
        pids.sort();
        pids.dedup();
        pids
    }
}

/// One Python process for the whole test binary, parsing each scrape it is sent with
/// `prometheus_client.parser.text_string_to_metric_families` (a Python start-up per scrape is
/// seconds on a loaded machine).
struct Parser {
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
    _child: std::process::Child,
}

static PARSER: Mutex<Option<Parser>> = Mutex::new(None);

/// Reads a length line and that many bytes of exposition text, answers one line of JSON:
/// `{"samples": [[name, labels, value], ...], "types": {family: type}}`, or `{"error": ...}`.
const PARSER_SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
while True:
    length = sys.stdin.buffer.readline()
    if not length:
        break
    text = sys.stdin.buffer.read(int(length)).decode()
    try:
        out = {"samples": [], "types": {}}
        for family in text_string_to_metric_families(text):
            out["types"][family.name] = family.type
            for sample in family.samples:
                out["samples"].append([sample.name, sample.labels, sample.value])
    except Exception as error:
        out = {"error": repr(error)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"#;

fn start_parser() -> Parser {
    let python = support::require_program("python3");
    let check = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .expect("run python3");
    assert!(
        check.status.success(),
        "this test needs Python's prometheus_client module, which is missing: run \
         `pip install prometheus_client` (or `bash tests/run.sh`, which installs it)\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut child = Command::new(&python)
        .args(["-c", PARSER_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    Parser {
        input: child.stdin.take().expect("stdin"),
        output: std::io::BufReader::new(child.stdout.take().expect("stdout")),
        _child: child,
    }
}

/// Parses exposition text with Python's `prometheus_client` text parser.
fn parse(text: &str) -> Scrape {
    let answer = {
        let mut parser = PARSER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let parser = parser.get_or_insert_with(start_parser);
        write!(parser.input, "{}\n{text}", text.len()).expect("write to the parser");
        parser.input.flush().expect("write to the parser");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut parser.output, &mut line).expect("the parser answers");
        line
    };
    let parsed: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|error| panic!("the parser's answer {answer:?}: {error}"));
    assert!(
        parsed.get("error").is_none(),
        "the Prometheus parser rejected the scrape: {}\n{text}",
        parsed["error"]
    );
    let samples = parsed["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|sample| Sample {
            name: sample[0].as_str().expect("a name").to_owned(),
            labels: sample[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
                .collect(),
            value: sample[2].as_f64().expect("a value"),
        })
        .collect();
    let types = parsed["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(name, kind)| (name.clone(), kind.as_str().unwrap_or("").to_owned()))
        .collect();
    Scrape { samples, types }
}

/// `GET path` on a new connection: the status line's code, the content type and the body.
fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = connect(address);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_owned();
    (status, content_type, body.to_owned())
}

/// Scrapes and parses `/metrics`.
fn scrape(address: SocketAddr) -> Scrape {
    let (status, content_type, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    parse(&body)
}

/// Scrapes until `condition` holds (at most [`SETTLE`]); returns the last scrape.
fn scrape_until(address: SocketAddr, what: &str, condition: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + SETTLE;
    loop {
        let scrape = scrape(address);
        if condition(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "after {SETTLE:?}, still not {what}: {:?}",
            scrape.samples
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads one HTTP response with a `Content-Length` off a keep-alive connection.
fn read_response(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|length| length.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).expect("a response body");
    head + &String::from_utf8_lossy(&body)
}

// ---------------------------------------------------------------------------------------------
// Under run_all: examples/process_demo.rs, two worker processes and the metrics process.

/// The demo with metrics on, in a directory of its own; dropping it kills all its processes.
struct Demo {
    dir: TestDir,
    port: u16,
    metrics_port: u16,
}

impl Demo {
    fn new(test: &str) -> Demo {
        let dir = TestDir::new(&format!("metrics-{test}"));
        Demo {
            dir,
            port: free_port(),
            metrics_port: free_port(),
        }
    }

    fn run(&self, arguments: &[&str]) -> std::process::Output {
        let output = Command::new(example_binary("process_demo"))
            .args(arguments)
            .env("DEMO_DIR", &self.dir)
            .env("DEMO_PORT", self.port.to_string())
            .env("DEMO_METRICS_PORT", self.metrics_port.to_string())
            .env("DEMO_COUNT", "2")
            .stdin(Stdio::null())
            .output()
            .expect("run the demo");
        assert!(
            output.status.success(),
            "process_demo {arguments:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn metrics(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.metrics_port))
    }

    fn worker_pid(&self, id: usize) -> Option<String> {
        let pid = std::fs::read_to_string(self.dir.join(format!("worker-{id}.pid"))).ok()?;
        let pid = pid.trim().to_owned();
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}

/// Totals equal the sum of the per-process series, for every figure.
fn assert_totals_are_sums(scrape: &Scrape) {
    for name in [
        "requests_total",
        "send_failures_total",
        "panics_total",
        "read_bytes_total",
        "written_bytes_total",
    ] {
        assert_eq!(
            scrape.value(&format!("workerman_{name}"), &[]),
            scrape.process_sum(&format!("workerman_process_{name}"), &[]),
            "{name}: the total is not the sum of the processes"
        );
    }
    for name in ["timers", "send_buffer_bytes", "sse_streams"] {
        assert_eq!(
            scrape.value(&format!("workerman_{name}"), &[]),
            scrape.process_sum(&format!("workerman_process_{name}"), &[]),
            "{name}: the total is not the sum of the processes"
        );
    }
    for protocol in ["tcp", "http", "websocket", "udp", "unix", "custom"] {
        assert_eq!(
            scrape.value("workerman_connections", &[("protocol", protocol)]),
            scrape.process_sum("workerman_process_connections", &[("protocol", protocol)]),
        );
    }
    assert_eq!(
        scrape.value("workerman_reactor_turn_seconds_count", &[]),
        scrape.process_sum("workerman_process_reactor_turn_seconds_count", &[]),
    );
}

#[test]
fn run_all_two_worker_processes_one_scrape_shows_both_and_the_figures_follow_the_traffic() {
    let demo = Demo::new("two");
    demo.run(&["start", "-d"]);
    assert!(
        support::wait_until(IO_TIMEOUT, || demo.worker_pid(0).is_some()
            && demo.worker_pid(1).is_some()),
        "the workers did not start"
    );
    let pids = [demo.worker_pid(0).unwrap(), demo.worker_pid(1).unwrap()];

    // One scrape, both worker processes, each under its name, id and pid; the metrics process
    // has no series of its own (its scrapes count nowhere).
    let first = scrape_until(demo.metrics(), "both processes published", |scrape| {
        scrape.pids("workerman_process_requests_total").len() == 2
    });
    let mut expected_pids = pids.to_vec();
    expected_pids.sort();
    assert_eq!(
        first.pids("workerman_process_requests_total"),
        expected_pids
    );
    for (id, pid) in pids.iter().enumerate() {
        let id = id.to_string();
        let labels = [
            ("worker", "demo"),
            ("id", id.as_str()),
            ("pid", pid.as_str()),
        ];
        first.value("workerman_process_requests_total", &labels);
        first.value("workerman_process_reactor_turn_seconds_count", &labels);
    }
    assert_eq!(first.value("workerman_processes", &[]), 2.0);
    assert_eq!(
        first.types.get("workerman_requests").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        first
            .types
            .get("workerman_reactor_turn_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    assert_eq!(
        first.types.get("workerman_connections").map(String::as_str),
        Some("gauge")
    );
    assert_totals_are_sums(&first);

    // Requests: exactly N more after N requests, over several connections (both processes
    // accept); bytes and turns grow with them.
    let requests = first.value("workerman_requests_total", &[]);
    let read = first.value("workerman_read_bytes_total", &[]);
    let written = first.value("workerman_written_bytes_total", &[]);
    let turns = first.value("workerman_reactor_turn_seconds_count", &[]);
    for _ in 0..10 {
        let (status, _, body) = get(demo.address(), "/");
        assert_eq!(status, 200);
        assert!(body.starts_with("pid "), "{body}");
    }
    let after = scrape_until(demo.metrics(), "10 more requests", |scrape| {
        scrape.value("workerman_requests_total", &[]) >= requests + 10.0
    });
    assert_eq!(
        after.value("workerman_requests_total", &[]),
        requests + 10.0
    );
    assert!(after.value("workerman_read_bytes_total", &[]) > read + 10.0 * 40.0);
    assert!(after.value("workerman_written_bytes_total", &[]) > written + 10.0 * 40.0);
    assert!(after.value("workerman_reactor_turn_seconds_count", &[]) >= turns + 10.0);
    assert!(after.value("workerman_reactor_turn_seconds_sum", &[]) > 0.0);
    assert_totals_are_sums(&after);

    // Connections: 5 held open show as 5 http connections; 3 SSE streams as 3 streams (and
    // their 3 timers); all back to 0 once closed.
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut stream = connect(demo.address());
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            read_response(&mut stream);
            stream
        })
        .collect();
    for _ in 0..3 {
        let mut stream = connect(demo.address());
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let open = scrape_until(demo.metrics(), "8 connections and 3 streams", |scrape| {
        scrape.value("workerman_connections", &[("protocol", "http")]) == 8.0
            && scrape.value("workerman_sse_streams", &[]) == 3.0
    });
    assert_eq!(open.value("workerman_timers", &[]), 3.0);
    assert_eq!(
        open.value("workerman_connections", &[("protocol", "tcp")]),
        0.0
    );
    assert_totals_are_sums(&open);
    drop(held);
    let closed = scrape_until(demo.metrics(), "no connection left", |scrape| {
        scrape.value("workerman_connections", &[("protocol", "http")]) == 0.0
            && scrape.value("workerman_sse_streams", &[]) == 0.0
            && scrape.value("workerman_timers", &[]) == 0.0
    });
    assert_eq!(closed.value("workerman_send_buffer_bytes", &[]), 0.0);

    // A panic is counted; a worker killed and re-forked takes its slot over: a new pid, its
    // own counters from 0, and totals that do not go down.
    let (status, _, _) = get(demo.address(), "/panic");
    assert_eq!(status, 500);
    let panicked = scrape_until(demo.metrics(), "one panic", |scrape| {
        scrape.value("workerman_panics_total", &[]) == 1.0
    });
    let total_before = panicked.value("workerman_requests_total", &[]);
    let _ = Command::new("kill").args(["-9", &pids[0]]).status();
    assert!(
        support::wait_until(IO_TIMEOUT, || demo
            .worker_pid(0)
            .is_some_and(|pid| pid != pids[0])),
        "worker 0 was not re-forked"
    );
    let new_pid = demo.worker_pid(0).unwrap();
    let respawned = scrape_until(demo.metrics(), "the new worker 0 in its slot", |scrape| {
        scrape
            .pids("workerman_process_requests_total")
            .contains(&new_pid)
    });
    assert!(
        !respawned
            .pids("workerman_process_requests_total")
            .contains(&pids[0])
    );
    assert_eq!(
        respawned.value("workerman_requests_total", &[]),
        total_before
    );
    assert_eq!(respawned.value("workerman_panics_total", &[]), 1.0);
    assert_eq!(
        respawned.value(
            "workerman_process_requests_total",
            &[("id", "0"), ("pid", new_pid.as_str())]
        ),
        0.0
    );

    // Anything but GET /metrics is turned away.
    assert_eq!(get(demo.metrics(), "/").0, 404);
    demo.run(&["stop"]);
}

// ---------------------------------------------------------------------------------------------
// Under Worker::spawn: the spawned thread serves the endpoint itself.

#[test]
fn spawn_serves_its_own_figures_including_bytes_queued_for_a_client_that_does_not_read() {
    Worker::set_metrics_listen("127.0.0.1:0");
    let server = support::start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_name("spawned");
        worker.set_max_send_buffer_size(64 * 1024 * 1024);
        worker.on_message(|connection: &TcpConnection, request: Request| {
            if request.path() == "/big" {
                connection.send(vec![b'x'; 16 * 1024 * 1024]);
            } else {
                connection.send("ok");
            }
        });
        worker
    });
    let metrics = server.metrics_address().expect("a metrics address");
    assert_eq!(server.local_addresses().last(), Some(&metrics));

    // The scrapes are served by this same reactor, so each one is a request it counts.
    let first = scrape(metrics);
    let pid = std::process::id().to_string();
    let labels = [("worker", "spawned"), ("id", "0"), ("pid", pid.as_str())];
    let requests = first.value("workerman_process_requests_total", &labels);
    for _ in 0..5 {
        assert_eq!(get(server.local_address(), "/").0, 200);
    }
    let after = scrape(metrics);
    assert_eq!(
        after.value("workerman_process_requests_total", &labels),
        requests + 6.0,
        "5 requests and this scrape"
    );
    assert_totals_are_sums(&after);

    // 16 MiB to a client that reads nothing: what the kernel does not take stays queued.
    let mut slow = connect(server.local_address());
    slow.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let queued = scrape_until(metrics, "bytes queued", |scrape| {
        scrape.value("workerman_send_buffer_bytes", &[]) > 1024.0 * 1024.0
    });
    assert!(queued.value("workerman_send_buffer_bytes", &[]) < 16.0 * 1024.0 * 1024.0 + 1024.0);
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while body.len() < 16 * 1024 * 1024 {
        let count = slow.read(&mut chunk).expect("read the big body");
        assert!(count > 0, "the server closed early");
        body.extend_from_slice(&chunk[..count]);
    }
    let drained = scrape_until(metrics, "the queue drained", |scrape| {
        scrape.value("workerman_send_buffer_bytes", &[]) == 0.0
    });
    assert!(drained.value("workerman_written_bytes_total", &[]) > 16.0 * 1024.0 * 1024.0);
    server.stop();
}
