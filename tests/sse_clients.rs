//! Real SSE client libraries against `COUNT=4 examples/sse_broadcast`: Node's `eventsource`,
//! Python's `httpx-sse` and `aiohttp-sse-client` each get all six published messages, once
//! each, in order, across a `/disconnect` and their reconnect (issue: each got 2 of the 6).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use support::process::{TestDir, example_binary, kill_hard};
use support::read_response;

const INSTALL: &str = "pip install httpx httpx-sse aiohttp-sse-client && npm ci --prefix tests/browser \
     (or: bash tests/run.sh)";

fn post(address: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = support::connect(address);
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let response = read_response(&mut BufReader::new(stream), false);
    (response.status, response.body_text())
}

/// A client program whose stdout lines are collected as they come.
struct Client {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Client {
    fn start(mut command: Command) -> Client {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}; {INSTALL}"));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Client { child, lines }
    }

    fn opens(&self) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains("\"open\""))
            .count()
    }

    /// Waits for the program to end; returns its `results` line.
    fn results(mut self) -> serde_json::Value {
        let finished = support::wait_until(Duration::from_secs(60), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !finished {
            kill_hard(self.child.id() as i32);
        }
        thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap().clone();
        lines
            .iter()
            .find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                value.get("results").cloned()
            })
            .unwrap_or_else(|| panic!("no results from the client: {lines:?}"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn real_sse_client_libraries_get_all_six_messages_once_from_count_4_sse_broadcast_across_a_reconnect()
 {
    let python = support::require_program("python3");
    let node = support::require_program("node");
    let modules = Command::new(&python)
        .args(["-c", "import httpx, httpx_sse, aiohttp_sse_client"])
        .status()
        .expect("run python3");
    assert!(
        modules.success(),
        "the Python SSE clients are missing: {INSTALL}"
    );
    let eventsource = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/eventsource");
    assert!(
        eventsource.exists(),
        "Node's eventsource is missing: {INSTALL}"
    );

    let dir = TestDir::new("sse-clients");
    let port = support::free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Command::new(example_binary("sse_broadcast"))
        .arg("start")
        .env("COUNT", "4")
        .env("DEMO_DIR", &*dir)
        .env("LISTEN", format!("http://127.0.0.1:{port}"))
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sse_broadcast starts");
    assert!(
        support::wait_until(Duration::from_secs(20), || TcpStream::connect(address)
            .is_ok()),
        "sse_broadcast did not listen"
    );
    thread::sleep(Duration::from_secs(1));

    let url = format!("http://127.0.0.1:{port}/events");
    let mut python_command = Command::new(&python);
    python_command
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/sse_clients/python_clients.py"),
        )
        .args([&url, "6", "40"]);
    let mut node_command = Command::new(&node);
    node_command
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser"))
        .args(["eventsource_client.mjs", &url, "6", "40000"]);
    let clients = [Client::start(python_command), Client::start(node_command)];
    assert!(
        support::wait_until(Duration::from_secs(20), || clients[0].opens() >= 2
            && clients[1].opens() >= 1),
        "the three clients did not all connect"
    );
    // Their processes listen on the topics (a process's first subscriber starts that).
    thread::sleep(Duration::from_secs(1));

    let messages: Vec<String> = (1..=6).map(|n| format!("message {n}")).collect();
    for message in &messages[..3] {
        assert_eq!(post(address, "/publish", message).0, 200);
    }
    thread::sleep(Duration::from_millis(500));
    let (status, body) = post(address, "/disconnect", "");
    assert_eq!(status, 200, "{body}");
    for message in &messages[3..] {
        assert_eq!(post(address, "/publish", message).0, 200);
    }

    let mut results = serde_json::Map::new();
    for client in clients {
        if let serde_json::Value::Object(map) = client.results() {
            results.extend(map);
        }
    }
    for name in ["httpx-sse", "aiohttp-sse-client", "eventsource"] {
        let result = &results[name];
        let got: Vec<String> = result["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no messages: {results:?}"))
            .iter()
            .map(|message| message.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            got, messages,
            "{name}: not all six, once each, in order: {results:?}"
        );
        assert!(
            result["opens"].as_u64().unwrap_or(0) >= 2,
            "{name} did not reconnect after /disconnect: {results:?}"
        );
    }
    kill_hard(server.id() as i32);
    let _ = server.wait();
    for pid in dir.processes() {
        kill_hard(pid);
    }
}
