//! End to end in a real browser: the example binaries, served on their own ports, read by headless
//! Chromium's `EventSource` (through `tests/browser/eventsource.mjs`, Node and playwright-core).
//! The WebSocket chat runs in Chromium tabs through `tests/browser/websocket.mjs`.
//!
//! Run with `cargo test` (which builds the examples first; for this file alone,
//! `cargo build --examples && cargo test --test browser`).
//! Needs Debian's Chromium and the harness's npm packages (`bash tests/run.sh` installs both);
//! without them these tests fail, naming that command.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/example.rs"]
mod example;

use example::{Example, manifest_dir};

/// The examples listen on fixed ports (their own), so these tests run one at a time.
static FIXED_PORTS: Mutex<()> = Mutex::new(());

const INSTALL: &str = "run `bash tests/run.sh` (it installs every tool the tests use), or \
                       `apt-get install -y chromium && npm ci --prefix tests/browser`";
/// The longest the browser script may run; it stops itself after at most 30 s (+5 s hard limit).
const BROWSER_LIMIT: Duration = Duration::from_secs(45);

/// Fails (never skips) when the browser or the harness's packages are missing.
fn require_browser() {
    let chromium =
        std::env::var_os("CHROMIUM").map_or(PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.exists(),
        "{} is missing; install the browser tests' tools: {INSTALL}",
        chromium.display()
    );
    let playwright = manifest_dir().join("tests/browser/node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "{} is missing; install the browser tests' tools: {INSTALL}",
        playwright.display()
    );
}

/// Runs `tests/browser/eventsource.mjs` with `plan` (see [`run_script`]).
fn run_browser(plan: &Value) -> Value {
    run_script("eventsource.mjs", plan)
}

/// Runs `tests/browser/<script>` with `plan` and returns its JSON result; fails the test
/// when the script fails, with what it reported.
fn run_script(script: &str, plan: &Value) -> Value {
    let script = manifest_dir().join("tests/browser").join(script);
    let mut child = Command::new("node")
        .arg(&script)
        .arg(plan.to_string())
        .current_dir(manifest_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run node (Node.js 20 is needed): {error}"));
    let stdout = read_in_background(child.stdout.take().expect("piped stdout"));
    let stderr = read_in_background(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + BROWSER_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "the browser script ran longer than {BROWSER_LIMIT:?} and was killed\nstderr: {stderr}"
        );
    };
    let last_line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    let result: Value = serde_json::from_str(last_line).unwrap_or_else(|error| {
        panic!("the browser script printed no JSON result ({error}); {status}\nstdout: {stdout}\nstderr: {stderr}")
    });
    assert!(
        status.success() && result["ok"] == true,
        "the browser script failed ({status}): {}\nstderr: {stderr}\nresult: {result}",
        result["error"]
    );
    result
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn lock_ports() -> std::sync::MutexGuard<'static, ()> {
    FIXED_PORTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn array<'a>(result: &'a Value, key: &str) -> &'a [Value] {
    result[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("the result has no {key:?} list: {result}"))
}

fn millis(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.get("t").and_then(Value::as_i64))
        .unwrap_or_else(|| panic!("no time in {value}"))
}

/// The seed (`examples/sse.rs`): a browser's EventSource gets `hello` with id 1 every 2 seconds.
#[test]
fn seed_example_pushes_hello_to_a_browser_every_two_seconds() {
    let _ports = lock_ports();
    require_browser();
    let mut server = Example::start("sse", 8080);

    let result = run_browser(&json!({
        "page": "http://127.0.0.1:8080/",
        "source": "http://127.0.0.1:8080/",
        "types": ["message"],
        "timeout_ms": 15_000,
        "steps": [{"wait": {"count": 2, "type": "message", "data": "hello"}}],
    }));
    server.assert_running();

    let events = array(&result, "events");
    assert!(events.len() >= 2, "two events expected: {result}");
    for event in &events[..2] {
        assert_eq!(event["type"], "message", "{result}");
        assert_eq!(event["data"], "hello", "{result}");
        assert_eq!(event["lastEventId"], "1", "{result}");
    }
    let apart = millis(&events[1]) - millis(&events[0]);
    assert!(
        (1500..=2600).contains(&apart),
        "the events came {apart} ms apart, not about 2 s: {result}"
    );
    assert_eq!(
        array(&result, "opens").len(),
        1,
        "one connection, no reconnect: {result}"
    );
    assert!(
        array(&result, "errors").is_empty(),
        "the stream broke: {result}"
    );
}

/// `examples/sse_broadcast.rs`: ticks and published messages reach the browser; after the server
/// drops every stream, the browser reconnects with `Last-Event-ID` and gets what it missed, so the
/// ids it saw run without a gap or a repeat.
#[test]
fn broadcast_example_replays_missed_events_after_a_reconnect() {
    let _ports = lock_ports();
    require_browser();
    let mut server = Example::start("sse_broadcast", 8090);

    let result = run_browser(&json!({
        // The demo page, which also runs its own EventSource and list.
        "page": "http://127.0.0.1:8090/",
        "source": "/events",
        "types": ["tick", "message"],
        "timeout_ms": 25_000,
        "steps": [
            {"wait": {"count": 2, "type": "tick"}},
            {"post": "/publish", "body": "from the browser"},
            {"wait": {"type": "message", "data": "from the browser"}},
            {"post": "/disconnect"},
            {"post": "/publish", "body": "while away 1"},
            {"post": "/publish", "form": {"message": "while away 2"}},
            {"wait_opens": 2},
            {"wait": {"type": "message", "data": "while away 2"}},
            {"wait": {"count": 2, "type": "tick", "new": true}},
            {"wait_selector": "#log li.message", "count": 3},
        ],
    }));
    server.assert_running();

    let events = array(&result, "events");
    let opens = array(&result, "opens");
    let errors = array(&result, "errors");
    let posts = array(&result, "posts");
    assert!(
        !errors.is_empty(),
        "the browser never saw the stream close: {result}"
    );
    assert!(opens.len() >= 2, "the browser did not reconnect: {result}");

    // The ids: one position per topic (`<tick id>,<message id>`, examples/sse_broadcast.rs);
    // each topic's position only moves forward, and the ticks (numbered by the timer) run on
    // without a gap or a repeat across the reconnect.
    let positions = |event: &Value| -> (String, String) {
        let id = event["lastEventId"].as_str().unwrap_or_default();
        let (tick, message) = id
            .split_once(',')
            .unwrap_or_else(|| panic!("an event without a two-topic id: {event}"));
        (tick.to_string(), message.to_string())
    };
    let id_key = |id: &str| -> (u64, u64) {
        let (a, b) = id.split_once('-').unwrap_or(("0", "0"));
        (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
    };
    for pair in events.windows(2) {
        let (before, after) = (positions(&pair[0]), positions(&pair[1]));
        assert!(
            id_key(&after.0) >= id_key(&before.0) && id_key(&after.1) >= id_key(&before.1),
            "an id went back at {pair:?}\n{result}"
        );
    }
    let ticks: Vec<u64> = events
        .iter()
        .filter(|event| event["type"] == "tick")
        .map(|event| {
            event["data"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("a tick number")
        })
        .collect();
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "the ticks have a gap or a repeat at {pair:?}: {ticks:?}\n{result}"
        );
    }

    // Each published message arrived once, with the id /publish answered.
    let published: Vec<&Value> = posts
        .iter()
        .filter(|post| post["url"] == "/publish")
        .collect();
    assert_eq!(published.len(), 3, "{result}");
    for (post, text) in published
        .iter()
        .zip(["from the browser", "while away 1", "while away 2"])
    {
        let answer = post["body"].as_str().unwrap_or_default();
        let id = answer
            .trim()
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("/publish answered {answer:?}"));
        let received: Vec<&Value> = events
            .iter()
            .filter(|event| event["type"] == "message" && event["data"] == text)
            .collect();
        assert_eq!(
            received.len(),
            1,
            "{text:?} arrived {} times: {result}",
            received.len()
        );
        assert_eq!(positions(received[0]).1, id, "{text:?}: {result}");
    }

    // The two "while away" messages were published after the stream closed and before the
    // browser reconnected, and came on the new connection (replayed from the history).
    let reconnected = millis(&opens[1]);
    for post in &published[1..] {
        assert!(
            millis(post) < reconnected,
            "published after the reconnect: {result}"
        );
    }
    for event in events.iter().filter(|event| {
        event["data"]
            .as_str()
            .is_some_and(|data| data.starts_with("while away"))
    }) {
        assert!(
            millis(event) >= reconnected,
            "delivered before the reconnect: {result}"
        );
    }
    // Ticks went on after the reconnect.
    assert!(
        events
            .iter()
            .any(|event| event["type"] == "tick" && millis(event) > reconnected),
        "no tick after the reconnect: {result}"
    );
}

/// `examples/sse_cluster.rs`: its page shows a topic live; `/disconnect` closes the stream, the
/// browser's EventSource reconnects with `Last-Event-ID` and gets the events published
/// meanwhile, each once, with the ids `/publish` answered.
#[test]
fn cluster_example_page_catches_up_after_a_disconnect() {
    let _ports = lock_ports();
    require_browser();
    let mut server = Example::start("sse_cluster", 8091);

    let result = run_browser(&json!({
        "page": "http://127.0.0.1:8091/?topic=news",
        "source": "/events?topic=news",
        "types": ["news", "reset"],
        "timeout_ms": 25_000,
        "steps": [
            {"wait_opens": 1},
            {"post": "/publish?topic=news", "body": "before"},
            {"wait": {"type": "news", "data": "before"}},
            {"post": "/disconnect"},
            {"post": "/publish?topic=news", "body": "while away 1"},
            {"post": "/publish?topic=news", "body": "while away 2"},
            {"wait_opens": 2},
            {"wait": {"type": "news", "data": "while away 2"}},
            {"wait_selector": "#log li.news", "count": 3},
        ],
    }));
    server.assert_running();

    let events = array(&result, "events");
    let posts = array(&result, "posts");
    assert!(array(&result, "opens").len() >= 2, "no reconnect: {result}");
    assert!(
        events.iter().all(|event| event["type"] != "reset"),
        "a reset though the history had everything: {result}"
    );
    let published: Vec<&Value> = posts
        .iter()
        .filter(|post| post["url"] == "/publish?topic=news")
        .collect();
    assert_eq!(published.len(), 3, "{result}");
    for (post, text) in published
        .iter()
        .zip(["before", "while away 1", "while away 2"])
    {
        let id = post["body"].as_str().unwrap_or_default().trim().to_string();
        let received: Vec<&Value> = events
            .iter()
            .filter(|event| event["type"] == "news" && event["data"] == text)
            .collect();
        assert_eq!(
            received.len(),
            1,
            "{text:?} arrived {} times: {result}",
            received.len()
        );
        assert_eq!(
            received[0]["lastEventId"],
            id.as_str(),
            "{text:?}: {result}"
        );
    }
}

/// `examples/websocket_chat.rs`: two Chromium tabs open the chat page (served by the `http://`
/// worker on 8095); each page's WebSocket connects to the `websocket://` worker on 8096. A message
/// typed in the first tab comes back to it and reaches the second, as WebSocket frames.
#[test]
fn websocket_chat_example_broadcasts_a_browsers_message() {
    let _ports = lock_ports();
    require_browser();
    let mut server = Example::start("websocket_chat", 8095);
    server.wait_listening(8096);

    let said = ["hello from Chromium", "ünïcödé ✓ and \"quotes\""];
    let result = run_script(
        "websocket.mjs",
        &json!({
            "page": "http://127.0.0.1:8095/",
            "tabs": 2,
            "say": said,
            "timeout_ms": 20_000,
        }),
    );
    server.assert_running();

    let tabs = array(&result, "tabs");
    assert_eq!(tabs.len(), 2, "{result}");
    for (index, tab) in tabs.iter().enumerate() {
        let lines: Vec<&str> = array(tab, "lines")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for text in said {
            assert_eq!(
                lines
                    .iter()
                    .filter(|line| line.ends_with(&format!(": {text}")))
                    .count(),
                1,
                "tab {index} should show {text:?} once: {lines:?}"
            );
        }
        let sockets = array(tab, "sockets");
        assert_eq!(sockets.len(), 1, "one WebSocket per tab: {result}");
        assert_eq!(sockets[0]["url"], "ws://127.0.0.1:8096/", "{result}");
        let received = array(&sockets[0], "received");
        for text in said {
            assert!(
                received
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|frame| frame.contains(&serde_json::to_string(text).unwrap()[1..])),
                "tab {index} received no frame carrying {text:?}: {result}"
            );
        }
    }
    // The first tab sent both messages as text frames.
    let sent = array(&array(&tabs[0], "sockets")[0], "sent");
    assert_eq!(sent, said.map(Value::from), "{result}");
}

/// WebSocket control from the app, seen by a browser: the server's heartbeat pings are answered
/// by Chromium's pongs (`on_websocket_pong`), codes that may not be sent are refused, and
/// `close_with_code(4001, ..)` reaches the page's `CloseEvent` as its code and reason.
#[test]
fn a_browser_sees_the_close_code_and_reason_the_server_chose() {
    use std::sync::mpsc;
    use workerman::protocols::http::{Request, Response};
    use workerman::{TcpConnection, Worker};

    require_browser();
    let (refusals, refused) = mpsc::channel();
    let server = Worker::spawn(move || {
        let mut page = Worker::new("http://127.0.0.1:0");
        page.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/html; charset=utf-8")],
                CLOSE_PAGE,
            ));
        });
        let mut socket = Worker::new("websocket://127.0.0.1:0");
        socket.set_websocket_ping_interval(0.2);
        socket.on_websocket_connected(move |connection, _request| {
            connection.set_context(0u32);
            let long_reason = "x".repeat(124);
            refusals
                .send([
                    connection.close_with_code(1005, "reserved"),
                    connection.close_with_code(1006, "reserved"),
                    connection.close_with_code(2999, "unassigned"),
                    connection.close_with_code(5000, "out of range"),
                    connection.close_with_code(4000, &long_reason),
                ])
                .unwrap();
            connection.send("open");
        });
        socket.on_websocket_pong(|connection, _payload| {
            let pongs = connection.with_context(|pongs: &mut u32| {
                *pongs += 1;
                *pongs
            });
            connection.send(format!("pong {}", pongs.unwrap_or(0)));
            if pongs == Some(2) {
                assert!(connection.close_with_code(4001, "two pongs, goodbye"));
            }
        });
        page
    })
    .expect("the workers start");
    let [page, socket] = server.local_addresses() else {
        panic!("two workers: {:?}", server.local_addresses());
    };
    let plan = json!({
        "page": format!("http://{page}/?ws={}", socket.port()),
        "timeout_ms": 20000,
    });
    let result = run_script("websocket_close.mjs", &plan);
    let refused = refused.recv_timeout(Duration::from_secs(5)).unwrap();
    server.stop();
    assert_eq!(refused, [false; 5], "codes that may not be sent were sent");
    assert_eq!(result["code"], 4001, "{result}");
    assert_eq!(result["reason"], "two pongs, goodbye", "{result}");
    assert_eq!(result["wasClean"], true, "{result}");
    assert_eq!(
        result["messages"],
        json!(["open", "pong 1", "pong 2"]),
        "{result}"
    );
}

/// Opens `ws://<this host>:<?ws=port>/`, lists the messages, then reports the CloseEvent.
const CLOSE_PAGE: &str = r#"<!doctype html>
<html><body data-state="connecting"><script>
const port = new URLSearchParams(location.search).get("ws");
const socket = new WebSocket(`ws://${location.hostname}:${port}/`);
const messages = [];
socket.onopen = () => (document.body.dataset.state = "open");
socket.onmessage = (event) => messages.push(String(event.data));
socket.onclose = (event) => {
  document.body.dataset.closed = JSON.stringify({
    code: event.code, reason: event.reason, wasClean: event.wasClean, messages,
  });
};
</script></body></html>
"#;

/// `examples/sse_tls.rs`: the seed over https (its self-signed certificate for localhost,
/// accepted by Chromium's certificate-error switch): `hello` with id 1 every 2 seconds.
#[test]
fn sse_tls_example_pushes_hello_over_https() {
    let _ports = lock_ports();
    require_browser();
    let mut server = Example::start("sse_tls", 8443);

    let result = run_browser(&json!({
        "page": "https://localhost:8443/",
        "source": "https://localhost:8443/",
        "ignore_https_errors": true,
        "types": ["message"],
        "timeout_ms": 15_000,
        "steps": [{"wait": {"count": 2, "type": "message", "data": "hello"}}],
    }));
    server.assert_running();
    let events = array(&result, "events");
    assert!(events.len() >= 2, "two events expected: {result}");
    for event in &events[..2] {
        assert_eq!(event["data"], "hello", "{result}");
        assert_eq!(event["lastEventId"], "1", "{result}");
    }
    assert!(
        array(&result, "errors").is_empty(),
        "the stream broke: {result}"
    );
    assert!(
        server
            .output()
            .contains("self-signed certificate for localhost written to"),
        "{}",
        server.output()
    );
}
