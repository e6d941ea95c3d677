//! Server-Sent Events for many clients: one global timer, a broadcast, and replay on reconnect.
//!
//! ```text
//! cargo run --release --example sse_broadcast
//! curl -N -H 'Accept: text/event-stream' http://127.0.0.1:8090/events
//! curl -N -H 'Accept: text/event-stream' -H 'Last-Event-ID: 5' http://127.0.0.1:8090/events
//! curl -d 'hi' http://127.0.0.1:8090/publish
//! curl -X POST http://127.0.0.1:8090/disconnect
//! ```
//! Or open <http://127.0.0.1:8090/> in a browser.
//!
//! `COUNT=4 cargo run --release --example sse_broadcast` runs 4 worker processes on the one port
//! (`reuse_port`: the kernel spreads the connections); `TICK=10` ticks every 10 s instead of 1.
//! Each process has its own hub, history and
//! tick timer, so each still has one global timer, but **a publish reaches only the subscribers of
//! the process that received the `POST`** (and `/disconnect` closes only that process's streams):
//! processes share nothing. A real multi-process broadcast needs a channel between them (a
//! `Channel`-style server, Redis pub/sub, ...), which this example does not have.
//!
//! - `GET /events` (or any request with `Accept: text/event-stream`) subscribes. The stream starts
//!   with `retry: 1000`, so a browser reconnects one second after losing it; a reconnect carries
//!   `Last-Event-ID`, and every event after that id still in the history is replayed first.
//! - One timer for the whole worker (not one per connection, which is what the seed does) sends
//!   `event: tick` every second to every subscriber.
//! - Each stream also gets a `: keep-alive` comment every 15 seconds from a connection timer
//!   (`connection.add_timer`): it is deleted when its connection closes, so no `Timer::del` is
//!   needed and none can be forgotten.
//! - `POST /publish` (the raw body, or a form's `message=`) broadcasts `event: message`.
//! - `POST /disconnect` closes every event stream, to watch browsers reconnect and catch up.
//!
//! Ticks and messages share one id counter, so a client that saw every id saw every event.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// How many events are kept for clients that reconnect.
const HISTORY: usize = 1000;
/// What a browser waits before reconnecting, in milliseconds.
const RETRY_MS: u64 = 1000;
/// Seconds between keep-alive comments (proxies drop connections that stay silent).
const KEEP_ALIVE_SECS: f64 = 15.0;

struct Event {
    id: u64,
    name: &'static str,
    data: String,
}

impl Event {
    fn to_sse(&self) -> ServerSentEvents {
        ServerSentEvents::new()
            .event(self.name)
            .id(self.id)
            .data(self.data.clone())
    }
}

/// Everything the worker shares between requests and timers. It runs on one thread, so an
/// `Rc<RefCell<..>>` is enough; it is never borrowed across a `send` or `close`, since closing
/// runs `on_close`, which borrows it again.
#[derive(Default)]
struct Hub {
    last_id: u64,
    history: VecDeque<Event>,
    subscribers: Vec<TcpConnection>,
}

impl Hub {
    /// Records an event and returns its wire bytes and who should get them.
    fn record(&mut self, name: &'static str, data: String) -> (u64, Vec<u8>, Vec<TcpConnection>) {
        self.last_id += 1;
        let event = Event {
            id: self.last_id,
            name,
            data,
        };
        let bytes = event.to_sse().to_bytes();
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event);
        (self.last_id, bytes, self.live_subscribers())
    }

    /// The subscribers still open; closed ones are forgotten here too, in case one was missed.
    fn live_subscribers(&mut self) -> Vec<TcpConnection> {
        self.subscribers
            .retain(|connection| connection.status() == TcpConnection::STATUS_ESTABLISHED);
        self.subscribers.clone()
    }
}

type SharedHub = Rc<RefCell<Hub>>;

/// Sends an event to every subscriber and returns its id.
fn broadcast(hub: &SharedHub, name: &'static str, data: String) -> u64 {
    let (id, bytes, subscribers) = hub.borrow_mut().record(name, data);
    // Encoded once; on an event stream, bytes are written as they are.
    for connection in &subscribers {
        connection.send(&bytes[..]);
    }
    id
}

fn subscribe(hub: &SharedHub, connection: &TcpConnection, request: &Request) {
    // The head, then `retry:` as the first bytes of the stream.
    let head = format!("retry: {RETRY_MS}\n\n");
    connection.send(Response::new(
        200,
        [("Content-Type", "text/event-stream")],
        head,
    ));
    let last_seen = request
        .header("last-event-id")
        .and_then(|id| id.trim().parse::<u64>().ok());
    if let Some(last_seen) = last_seen {
        // A reconnect: what it missed, in order, before anything live. (Events older than the
        // history are gone; the ids show the client the gap.)
        let missed: Vec<u8> = hub
            .borrow()
            .history
            .iter()
            .filter(|event| event.id > last_seen)
            .flat_map(|event| event.to_sse().to_bytes())
            .collect();
        if !missed.is_empty() {
            connection.send(missed);
        }
    }
    hub.borrow_mut().subscribers.push(connection.clone());
    // Proxies drop connections that stay silent; this timer dies with its connection.
    connection.add_timer(KEEP_ALIVE_SECS, |connection, _timer_id| {
        connection.send(ServerSentEvents::new().comment("keep-alive"));
    });
}

/// Closes every event stream; browsers reconnect after `retry` with `Last-Event-ID`.
fn disconnect_all(hub: &SharedHub) -> usize {
    let subscribers = std::mem::take(&mut hub.borrow_mut().subscribers);
    for connection in &subscribers {
        connection.close();
    }
    subscribers.len()
}

/// The text to publish: a form's `message` field, else the whole body.
fn message_of(request: &Request) -> String {
    if let Some(message) = request.post("message") {
        return message.to_string();
    }
    String::from_utf8_lossy(request.raw_body()).into_owned()
}

fn wants_event_stream(request: &Request) -> bool {
    request.path() == "/events"
        || request
            .header("accept")
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/event-stream"))
}

fn text(status: u16, body: String) -> Response {
    Response::new(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        body,
    )
}

fn main() {
    let hub = SharedHub::default();
    let mut worker = Worker::new("http://0.0.0.0:8090");
    worker.set_name("sse_broadcast");
    // The command line is Workerman's (start, stop, status, ...): the process count comes from
    // the environment. Each process gets its copy of `hub`.
    let count = std::env::var("COUNT")
        .ok()
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    worker.set_count(count);
    if count > 1 {
        worker.set_reuse_port(true);
    }

    // Seconds between ticks (`TICK=10` for the benchmarks' million streams); 1 by default.
    let tick = std::env::var("TICK")
        .ok()
        .and_then(|tick| tick.parse::<f64>().ok())
        .filter(|tick| tick.is_finite() && *tick > 0.0)
        .unwrap_or(1.0);
    let ticker = hub.clone();
    worker.on_worker_start(move |_worker| {
        // One timer for everyone: a tick each `tick` seconds.
        let hub = ticker.clone();
        let mut ticks = 0u64;
        Timer::add(tick, move |_timer_id| {
            ticks += 1;
            broadcast(&hub, "tick", ticks.to_string());
        });
    });

    let requests = hub.clone();
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        if wants_event_stream(&request) {
            subscribe(&requests, connection, &request);
            return;
        }
        let response = match (request.method(), request.path()) {
            ("GET", "/") => {
                Response::new(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)
            }
            ("POST", "/publish") => {
                let message = message_of(&request);
                if message.is_empty() {
                    text(400, "empty message\n".into())
                } else {
                    let id = broadcast(&requests, "message", message);
                    text(200, format!("ok {id}\n"))
                }
            }
            ("POST", "/disconnect") => {
                let closed = disconnect_all(&requests);
                text(200, format!("ok, closed {closed} event streams\n"))
            }
            _ => text(404, "not found\n".into()),
        };
        connection.send(response);
    });

    // Forget a subscriber as soon as it goes.
    worker.on_close(move |connection| {
        hub.borrow_mut()
            .subscribers
            .retain(|subscriber| subscriber != connection);
    });

    Worker::run_all();
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>workerman: SSE broadcast</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px system-ui, sans-serif; margin: 2em; }
  #state { color: #666; }
  #log { font-family: ui-monospace, monospace; list-style: none; padding: 0; }
  #log .message { font-weight: bold; }
</style>
<h1>Server-Sent Events broadcast</h1>
<form id="publish" method="post" action="/publish">
  <input name="message" placeholder="say something" autocomplete="off" required>
  <button>Publish</button>
  <button type="button" id="disconnect">Disconnect everyone</button>
  <span id="state">connecting…</span>
</form>
<ul id="log"></ul>
<script>
  const log = document.getElementById("log");
  const state = document.getElementById("state");
  const show = (event) => {
    const item = document.createElement("li");
    item.className = event.type;
    item.textContent = `#${event.lastEventId} ${event.type}: ${event.data}`;
    log.prepend(item);
    while (log.children.length > 200) log.lastChild.remove();
  };
  const source = new EventSource("/events");
  source.addEventListener("open", () => (state.textContent = "connected"));
  source.addEventListener("error", () => (state.textContent = "reconnecting…"));
  source.addEventListener("tick", show);
  source.addEventListener("message", show);

  const form = document.getElementById("publish");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await fetch("/publish", { method: "POST", body: new URLSearchParams(new FormData(form)) });
    form.reset();
  });
  document.getElementById("disconnect").addEventListener("click", () =>
    fetch("/disconnect", { method: "POST" }),
  );
</script>
</html>
"#;
