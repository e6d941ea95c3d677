//! The process model, driven as a user drives it: `examples/process_demo.rs` (a master and
//! `count = 2` worker processes) started with `start -d`, then `status`, `connections`,
//! `kill -9`, `reload`, `stop -g`, `stop`, on a free port with its pid, log and stdout files in a
//! directory of each test's own.
//!
//! Every wait is bounded, and a guard kills every process of a test (found by the `DEMO_DIR` in
//! its environment) even when the test fails. `cargo test` builds the example first.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::process::{TestDir, alive, example_binary, kill_hard, output_within};
use support::{free_port, wait_until};

/// The longest any command (`start -d`, `status`, `stop`, ...) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One demo server: its directory, port and environment. Dropping it kills all its processes.
struct Demo {
    dir: TestDir,
    port: u16,
    reuse_port: bool,
    /// `DEMO_UNIX_UDP=1`: also the demo's `unix://` and `udp://` workers.
    unix_udp: bool,
}

impl Demo {
    fn new(test: &str, reuse_port: bool) -> Demo {
        let dir = TestDir::new(&format!("process-{test}"));
        Demo {
            dir,
            port: free_port(),
            reuse_port,
            unix_udp: false,
        }
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Runs the demo with `arguments` and waits (at most [`COMMAND_LIMIT`]) for it to exit.
    fn run(&self, arguments: &[&str]) -> Output {
        run_demo(
            &self.dir,
            self.port,
            self.reuse_port,
            self.unix_udp,
            arguments,
        )
    }

    /// `start -d`, which must succeed.
    fn start(&self) {
        let output = self.run(&["start", "-d"]);
        assert!(
            output.status.success(),
            "start -d failed: {}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        assert!(
            self.master().is_some_and(alive),
            "no live master after start -d"
        );
        assert!(
            wait_until(IO_TIMEOUT, || self.worker_pid(0).is_some()
                && self.worker_pid(1).is_some()),
            "the workers did not start"
        );
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("demo.pid")
    }

    fn master(&self) -> Option<i32> {
        read_pid(&self.pid_file())
    }

    /// The pid worker `id` wrote when it started (its latest incarnation).
    fn worker_pid(&self, id: usize) -> Option<i32> {
        read_pid(&self.dir.join(format!("worker-{id}.pid"))).filter(|&pid| alive(pid))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("demo.log")).unwrap_or_default()
    }

    /// Every live process started by this test (its environment names this test's directory).
    fn processes(&self) -> Vec<i32> {
        self.dir.processes()
    }

    /// `GET /` on a new connection: the answering worker's `pid N id M`.
    fn who(&self) -> String {
        let mut stream = connect(self.address());
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no body in {answer:?}"))
            .to_owned()
    }
}

/// Runs the demo with `arguments` and this environment, and waits (at most [`COMMAND_LIMIT`]).
fn run_demo(dir: &Path, port: u16, reuse_port: bool, unix_udp: bool, arguments: &[&str]) -> Output {
    let mut command = Command::new(example_binary("process_demo"));
    command
        .args(arguments)
        .env("DEMO_UNIX_UDP", if unix_udp { "1" } else { "0" })
        .env("DEMO_DIR", dir)
        .env("DEMO_PORT", port.to_string())
        .env("DEMO_REUSE_PORT", if reuse_port { "1" } else { "0" });
    output_within(
        &mut command,
        COMMAND_LIMIT,
        &format!("`process_demo {}`", arguments.join(" ")),
    )
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// The rows of `status`'s process table: pid → the row's cells.
fn status_rows(output: &str) -> HashMap<String, Vec<String>> {
    output
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.len() == 12 && cells[0].parse::<i32>().is_ok())
        .map(|cells| (cells[0].clone(), cells))
        .collect()
}

#[test]
fn start_daemon_status_connections_refused_second_start_and_stop() {
    let demo = Demo::new("lifecycle", false);
    demo.start();
    let master = demo.master().expect("a pid file");
    assert!(demo.log().contains("start success"), "log: {}", demo.log());

    // status: Workerman's table, one row per worker process.
    let _ = demo.who();
    let status = demo.run(&["status"]);
    let status_text = text(&status.stdout);
    println!("{status_text}");
    assert!(status.status.success());
    assert!(status_text.contains("2 processes"), "{status_text}");
    let rows = status_rows(&status_text);
    assert_eq!(rows.len(), 2, "two worker rows expected:\n{status_text}");
    for id in 0..2 {
        let pid = demo.worker_pid(id).expect("worker pid").to_string();
        let row = rows.get(&pid).unwrap_or_else(|| panic!("no row for {pid}"));
        assert_eq!(row[2], format!("http://127.0.0.1:{}", demo.port));
        assert_eq!(row[3], "demo");
        assert_eq!(row[9], "[idle]");
        assert_eq!(row[10], "0", "no panics yet");
        assert_eq!(row[11], "0", "no blocking job refused");
    }
    for header in [
        "pid",
        "memory",
        "listening",
        "name",
        "send_fail",
        "panics",
        "refused",
        "total_request",
        "qps",
    ] {
        assert!(
            status_text.contains(header),
            "no {header} in\n{status_text}"
        );
    }

    // A panic in a handler costs its request a 500 and shows in the panics column.
    let mut panicking = connect(demo.address());
    panicking
        .write_all(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    panicking.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
    let status_text = text(&demo.run(&["status"]).stdout);
    let panics: u64 = status_rows(&status_text)
        .values()
        .map(|row| row[10].parse::<u64>().unwrap())
        .sum();
    assert_eq!(panics, 1, "{status_text}");

    // connections: an open keep-alive connection is listed with its address and byte counts.
    let mut open = connect(demo.address());
    open.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    open.read_exact(&mut first).unwrap();
    let listing = text(&demo.run(&["connections"]).stdout);
    println!("{listing}");
    let client = open.local_addr().unwrap().to_string();
    let row = listing
        .lines()
        .find(|line| line.ends_with(&client))
        .unwrap_or_else(|| panic!("{client} is not listed:\n{listing}"));
    assert!(row.contains("ESTABLISHED") && row.contains("demo"), "{row}");
    drop(open);

    // A second start refuses while the master lives.
    let again = demo.run(&["start", "-d"]);
    assert!(!again.status.success(), "a second start succeeded");
    assert!(
        text(&again.stdout).contains("already running"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(demo.master(), Some(master));

    // stop: every process ends, the pid file goes.
    let stop = demo.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop.stdout));
    assert!(text(&stop.stdout).contains("stop success"));
    assert!(!alive(master));
    assert!(!demo.pid_file().exists(), "the pid file is still there");
    assert!(
        wait_until(Duration::from_secs(2), || demo.processes().is_empty()),
        "processes left: {:?}",
        demo.processes()
    );
    assert!(
        TcpStream::connect(demo.address()).is_err(),
        "still listening"
    );
}

#[test]
fn a_wrong_command_prints_the_usage_and_fails() {
    let demo = Demo::new("usage", false);
    let output = demo.run(&["strat"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(
        text(&output.stderr).contains("Usage:"),
        "{}",
        text(&output.stderr)
    );
    let output = demo.run(&["stop"]);
    assert!(
        !output.status.success(),
        "stop with nothing running succeeded"
    );
    assert!(text(&output.stdout).contains("not run"));
}

#[test]
fn a_killed_worker_is_replaced_within_a_second_with_the_same_id() {
    let demo = Demo::new("respawn", false);
    demo.start();
    let victim = demo.worker_pid(1).expect("worker 1");
    let other = demo.worker_pid(0).expect("worker 0");
    let killed_at = Instant::now();
    kill_hard(victim);
    assert!(
        wait_until(Duration::from_secs(1), || demo
            .worker_pid(1)
            .is_some_and(|pid| pid != victim)),
        "worker 1 was not replaced within a second"
    );
    println!("worker 1 replaced after {:?}", killed_at.elapsed());
    assert_eq!(demo.worker_pid(0), Some(other), "worker 0 changed");
    let replacement = demo.worker_pid(1).unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || demo
            .log()
            .contains(&format!("worker[demo:{victim}] killed by signal 9"))),
        "the exit is not logged: {}",
        demo.log()
    );
    // The replacement answers as id 1, and status lists it.
    assert!(
        wait_until(IO_TIMEOUT, || demo.who()
            == format!("pid {replacement} id 1")),
        "the replacement never answered as id 1"
    );
    let status = text(&demo.run(&["status"]).stdout);
    let rows = status_rows(&status);
    assert!(rows.contains_key(&replacement.to_string()), "{status}");
    assert!(rows.contains_key(&other.to_string()), "{status}");
    assert!(
        status.contains("SIGKILL"),
        "exit_status lacks SIGKILL:\n{status}"
    );
}

/// A keep-alive client: `GET /` in a loop, on a new connection every 20 requests. A request that got no byte of answer on a connection
/// that had already served one is retried once on a new connection, as HTTP clients do
/// (RFC 9112 §9.3.1: the server may close an idle connection as the request is sent); anything
/// else that is not a whole `200 pid N id M` counts as a failure.
struct ClientLoop {
    ok: u64,
    retries: u64,
    failures: Vec<String>,
    answers: HashSet<String>,
}

fn client_loop(address: SocketAddr, stop: Arc<AtomicBool>) -> ClientLoop {
    let mut result = ClientLoop {
        ok: 0,
        retries: 0,
        failures: Vec::new(),
        answers: HashSet::new(),
    };
    let mut connection: Option<(BufReader<TcpStream>, u64)> = None;
    while !stop.load(Ordering::Relaxed) {
        let (reader, served) = match connection.as_mut() {
            Some(open) => open,
            None => match TcpStream::connect_timeout(&address, IO_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    connection.insert((BufReader::new(stream), 0))
                }
                Err(error) => {
                    result.failures.push(format!("connect: {error}"));
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let reused = *served > 0;
        let sent = reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        match sent.and_then(|()| read_answer(reader)) {
            Ok(Some((body, close))) if body.starts_with("pid ") => {
                result.ok += 1;
                *served += 1;
                result.answers.insert(body);
                // A new connection now and then, so accepting is exercised during the reload;
                // and after a `Connection: close` answer, as HTTP says.
                if *served == 20 || close {
                    connection = None;
                }
            }
            Ok(Some((body, _))) => {
                result.failures.push(format!("unexpected answer {body:?}"));
                connection = None;
            }
            Ok(None) | Err(_) if reused => {
                // Closed before any byte of the answer: retry on a new connection.
                result.retries += 1;
                connection = None;
            }
            Ok(None) => {
                result
                    .failures
                    .push("closed before answering (new connection)".into());
                connection = None;
            }
            Err(error) => {
                result.failures.push(format!("{error} (new connection)"));
                connection = None;
            }
        }
    }
    result
}

/// One answer's body and whether it said `Connection: close`; `Ok(None)` when the connection
/// closed before its first byte.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, bool)>> {
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut length = None;
    let mut close = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed inside the head"));
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
            close |= name.eq_ignore_ascii_case("connection") && value.trim() == "close";
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((text(&body), close)))
}

#[test]
fn reload_replaces_every_worker_while_keep_alive_requests_keep_succeeding() {
    let demo = Demo::new("reload", false);
    demo.start();
    let before = [demo.worker_pid(0).unwrap(), demo.worker_pid(1).unwrap()];
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (address, stop) = (demo.address(), stop.clone());
            thread::spawn(move || client_loop(address, stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let reload = demo.run(&["reload"]);
    assert!(reload.status.success(), "{}", text(&reload.stdout));
    let replaced = wait_until(Duration::from_secs(10), || {
        (0..2).all(|id| {
            demo.worker_pid(id)
                .is_some_and(|pid| !before.contains(&pid))
        })
    });
    // Keep the clients going a little on the new workers.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<ClientLoop> = clients
        .into_iter()
        .map(|client| client.join().expect("client thread"))
        .collect();
    assert!(replaced, "not every worker was replaced: before {before:?}");
    let after = [demo.worker_pid(0).unwrap(), demo.worker_pid(1).unwrap()];
    let ok: u64 = results.iter().map(|r| r.ok).sum();
    let retries: u64 = results.iter().map(|r| r.retries).sum();
    let failures: Vec<&String> = results.iter().flat_map(|r| &r.failures).collect();
    let answers: HashSet<&String> = results.iter().flat_map(|r| &r.answers).collect();
    println!(
        "workers {before:?} -> {after:?}; {ok} requests answered, {retries} retried after an \
         idle close, {} failed; answers from {answers:?}",
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    // A plain reload cuts no keep-alive request: each connection's last answer says
    // `Connection: close`, none is closed under a request on its way.
    assert_eq!(retries, 0, "keep-alive requests cut by the reload");
    assert!(ok > 100, "only {ok} requests answered");
    for (id, pid) in after.iter().enumerate() {
        let expected = format!("pid {pid} id {id}");
        assert!(
            answers.contains(&expected) || wait_until(IO_TIMEOUT, || demo.who() == expected),
            "the new worker {id} ({pid}) never answered"
        );
    }
    assert!(demo.master().is_some_and(alive), "the master died");
}

#[test]
fn plain_reload_lets_a_request_in_flight_finish_and_closes_it_after_its_answer() {
    let demo = Demo::new("reload-in-flight", false);
    demo.start();
    let before = [demo.worker_pid(0).unwrap(), demo.worker_pid(1).unwrap()];
    // A keep-alive connection that was answered once, then is halfway through a request body.
    let mut client = BufReader::new(connect(demo.address()));
    client
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (first, _) = read_answer(&mut client).unwrap().expect("an answer");
    client
        .get_mut()
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let reload = demo.run(&["reload"]);
    assert!(reload.status.success(), "{}", text(&reload.stdout));
    thread::sleep(Duration::from_millis(400));
    client.get_mut().write_all(b"56789").unwrap();
    let (second, close) = read_answer(&mut client)
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(second, first, "answered by the worker it was sent to");
    assert!(close, "the last answer says Connection: close");
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("then the connection closes");
    assert!(rest.is_empty(), "nothing after the last answer: {rest:?}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            (0..2).all(|id| {
                demo.worker_pid(id)
                    .is_some_and(|pid| !before.contains(&pid))
            })
        }),
        "the workers were replaced"
    );
}

#[test]
fn graceful_stop_lets_a_slow_request_and_an_sse_stream_finish() {
    let demo = Demo::new("graceful", false);
    demo.start();
    let master = demo.master().unwrap();

    let mut stream = connect(demo.address());
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut events = BufReader::new(stream);
    let mut ticks = 0;
    let mut read_ticks = |events: &mut BufReader<TcpStream>, count: usize| {
        let mut seen = 0;
        while seen < count {
            let mut line = String::new();
            assert!(
                events.read_line(&mut line).expect("read the stream") > 0,
                "the stream ended"
            );
            if line == "event: tick\n" {
                seen += 1;
            }
        }
        ticks += count;
    };
    read_ticks(&mut events, 1);

    let mut slow = connect(demo.address());
    slow.write_all(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(100));

    let stopping = {
        let (dir, port) = (demo.dir.to_path_buf(), demo.port);
        thread::spawn(move || run_demo(&dir, port, false, false, &["stop", "-g"]))
    };
    thread::sleep(Duration::from_millis(300));
    assert!(alive(master), "the master ended with connections open");
    assert!(
        TcpStream::connect_timeout(&demo.address(), Duration::from_millis(500)).is_err(),
        "new connections are still accepted after stop -g"
    );

    // The slow request is answered in full, and the stream goes on.
    let mut answer = String::new();
    slow.read_to_string(&mut answer).expect("the slow answer");
    assert!(answer.ends_with("slow done"), "{answer:?}");
    read_ticks(&mut events, 3);
    assert!(alive(master), "the master ended while the stream was open");
    println!("{ticks} ticks read; closing the stream");
    drop(events);

    let output = stopping.join().expect("the stop thread");
    assert!(output.status.success(), "{}", text(&output.stdout));
    assert!(!alive(master));
    assert!(!demo.pid_file().exists());
    assert!(
        wait_until(Duration::from_secs(2), || demo.processes().is_empty()),
        "processes left: {:?}",
        demo.processes()
    );
}

#[test]
fn with_reuse_port_both_workers_take_connections() {
    let demo = Demo::new("reuse-port", true);
    demo.start();
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    for _ in 0..200 {
        *by_worker.entry(demo.who()).or_default() += 1;
    }
    println!("200 new connections answered by: {by_worker:?}");
    let ids: HashSet<&str> = by_worker
        .keys()
        .filter_map(|answer| answer.rsplit(' ').next())
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["0", "1"]),
        "both workers should answer: {by_worker:?}"
    );
    let stop = demo.run(&["stop"]);
    assert!(stop.status.success());
}

/// The pid in a `pid N` answer.
fn answer_pid(answer: &str) -> i32 {
    answer
        .strip_prefix("pid ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not a `pid N` answer: {answer:?}"))
}

#[test]
fn unix_and_udp_workers_run_in_worker_processes_and_survive_a_reload() {
    use std::os::unix::net::UnixStream;

    let mut demo = Demo::new("unix-udp", false);
    demo.unix_udp = true;
    demo.start();
    let socket_file = demo.dir.join("demo.sock");
    let ask_unix = || -> Option<i32> {
        let mut stream = UnixStream::connect(&socket_file).ok()?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.write_all(b"?").ok()?;
        let mut answer = [0u8; 64];
        let length = stream.read(&mut answer).ok()?;
        Some(answer_pid(&text(&answer[..length])))
    };
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let ask_udp = || -> Option<i32> {
        udp.send_to(b"?", demo.address()).ok()?;
        let mut answer = [0u8; 64];
        let (length, _) = udp.recv_from(&mut answer).ok()?;
        Some(answer_pid(&text(&answer[..length])))
    };
    let master = demo.master().unwrap();
    let mut unix_pids = HashSet::new();
    assert!(
        wait_until(IO_TIMEOUT, || {
            unix_pids.extend(ask_unix());
            unix_pids.len() == 2
        }),
        "both unix workers answer (other workers' processes leave the socket file alone): \
         {unix_pids:?}"
    );
    let udp_pid = (0..10)
        .find_map(|_| ask_udp())
        .expect("a udp worker answers");
    assert!(alive(udp_pid) && udp_pid != master && !unix_pids.contains(&udp_pid));

    let reload = demo.run(&["reload"]);
    assert!(reload.status.success(), "{}", text(&reload.stdout));
    assert!(
        wait_until(Duration::from_secs(10), || unix_pids
            .iter()
            .all(|&pid| !alive(pid))),
        "the unix workers were replaced"
    );
    assert!(
        wait_until(IO_TIMEOUT, || ask_unix()
            .is_some_and(|pid| !unix_pids.contains(&pid))),
        "a replaced worker answers on the same socket file"
    );
    assert!(
        (0..10).find_map(|_| ask_udp()).is_some(),
        "udp answers after the reload"
    );

    let stop = demo.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop.stdout));
    assert!(
        !socket_file.exists(),
        "the master removes the socket file on stop"
    );
}

#[test]
fn status_json_and_connections_json_are_one_document_each_for_scripts() {
    let demo = Demo::new("json", false);
    demo.start();
    let master = demo.master().expect("a pid file");
    let mut open = connect(demo.address());
    open.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    open.read_exact(&mut first).unwrap();

    let status = demo.run(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json prints one JSON document");
    assert_eq!(status["master"]["pid"], master);
    assert_eq!(status["master"]["daemon"], true);
    assert_eq!(status["master"]["workers"], 1);
    assert_eq!(status["master"]["processes"], 2);
    assert_eq!(status["workers"][0]["name"], "demo");
    let processes = status["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 2, "{status}");
    for id in 0..2 {
        let pid = demo.worker_pid(id).expect("worker pid");
        let process = processes
            .iter()
            .find(|process| process["pid"] == pid)
            .unwrap_or_else(|| panic!("no process {pid} in {status}"));
        assert_eq!(process["id"], id);
        assert_eq!(process["worker_name"], "demo");
        assert_eq!(process["status"], "idle");
        assert_eq!(
            process["listening"],
            format!("http://127.0.0.1:{}", demo.port)
        );
        assert!(process["memory"].as_u64().unwrap() > 0);
    }
    let sum = |field: &str| -> u64 {
        processes
            .iter()
            .map(|process| process[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum("total_request"), 1, "{status}");
    assert_eq!(sum("connections"), 1, "{status}");
    assert_eq!(sum("panics"), 0, "{status}");

    let listing = demo.run(&["connections", "--json"]);
    assert!(listing.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&listing.stdout)
        .expect("connections --json prints one JSON document");
    let connections = listing["connections"].as_array().expect("connections");
    assert_eq!(connections.len(), 1, "{listing}");
    let connection = &connections[0];
    assert_eq!(
        connection["remote_address"],
        open.local_addr().unwrap().to_string()
    );
    assert_eq!(
        connection["local_address"],
        format!("127.0.0.1:{}", demo.port)
    );
    assert_eq!(connection["status"], "ESTABLISHED");
    assert_eq!(connection["protocol"], "http");
    assert_eq!(connection["transport"], "tcp");
    assert_eq!(connection["ipv4"], true);
    assert!(connection["bytes_read"].as_u64().unwrap() >= 27);
    assert!(connection["bytes_written"].as_u64().unwrap() > 0);
    let pids: Vec<String> = (0..2)
        .filter_map(|id| demo.worker_pid(id))
        .map(|pid| pid.to_string())
        .collect();
    assert!(pids.contains(&connection["pid"].to_string()), "{listing}");

    // --json is for status and connections only, and not with -d.
    assert_eq!(
        demo.run(&["status", "-d", "--json"]).status.code(),
        Some(64)
    );
    assert_eq!(demo.run(&["stop", "--json"]).status.code(), Some(64));
    drop(open);
    assert!(demo.run(&["stop"]).status.success());
}
