//! An HTTP worker backed by Redis: keys through `GET`/`POST`, and Server-Sent Events fed by
//! Redis pub/sub, on one reactor with no blocking call.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! cargo run --release --example redis_pubsub
//! curl -d 'hello' 'http://127.0.0.1:8100/set?key=greeting'     # 200 OK
//! curl 'http://127.0.0.1:8100/get?key=greeting'                 # 200 hello
//! curl 'http://127.0.0.1:8100/get?key=nothing'                  # 404
//! curl -N 'http://127.0.0.1:8100/events?channel=news'           # an event stream
//! redis-cli PUBLISH news 'breaking'                             # -> data: breaking
//! ```
//!
//! `LISTEN` (default `http://127.0.0.1:8100`) and `REDIS_URL` (default
//! `redis://127.0.0.1:6379`) set the addresses.
//!
//! - `POST /set?key=K` stores the request body under `K`: `200 OK`.
//! - `GET /get?key=K` answers the value: `200` with it, `404` when the key does not exist.
//! - `GET /events?channel=C` is an event stream of every message published on Redis channel
//!   `C` (`data:` the message). The worker subscribes once per channel, on the first stream,
//!   and unsubscribes when the last one closes; each message is encoded once for all streams.
//! - While Redis is unreachable, `/get` and `/set` answer `503` within a second (the client's
//!   reply timeout is 500 ms, and commands made while it reconnects wait no longer than that);
//!   open streams stay open (a comment every 15 s keeps proxies from dropping them) and carry
//!   messages again once the client has reconnected and re-subscribed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::redis::{Client, Error, Value};
use workerman::{TcpConnection, Worker};

/// Seconds between keep-alive comments on a stream.
const KEEP_ALIVE_SECS: f64 = 15.0;

thread_local! {
    /// This worker's Redis client, made in `on_worker_start`.
    static REDIS: RefCell<Option<Client>> = const { RefCell::new(None) };
    /// The open event streams of each channel.
    static STREAMS: RefCell<HashMap<String, Vec<TcpConnection>>> = RefCell::new(HashMap::new());
}

fn redis() -> Client {
    REDIS.with(|redis| redis.borrow().clone().expect("made in on_worker_start"))
}

/// The HTTP worker on `listen`, with its Redis client for `redis_url`.
pub fn worker(listen: &str, redis_url: &str) -> Worker {
    let mut worker = Worker::new(listen);
    worker.set_name("redis_pubsub");
    let redis_url = redis_url.to_owned();
    worker.on_worker_start(move |_| {
        let client = Client::new(&redis_url);
        client.set_reply_timeout(Duration::from_millis(500));
        client.set_connect_timeout(Duration::from_millis(500));
        client.on_reconnect(|_| log::info!("Redis is back"));
        REDIS.with(|redis| *redis.borrow_mut() = Some(client));
    });
    worker.on_message(|connection: &TcpConnection, request: Request| {
        let key = request.get("key").map(str::to_owned);
        match (request.method(), request.path()) {
            ("POST", "/set") => match key {
                Some(key) => {
                    let connection = connection.clone();
                    redis().set(key, request.raw_body(), move |result| match result {
                        Ok(_) => {
                            connection.send(Response::new(
                                200,
                                [("Content-Type", "text/plain")],
                                "OK",
                            ));
                        }
                        Err(error) => answer_error(&connection, &error),
                    });
                }
                None => bad_request(connection),
            },
            ("GET", "/get") => match key {
                Some(key) => {
                    let connection = connection.clone();
                    redis().get(key, move |result| match result {
                        Ok(Value::Nil) => {
                            connection.send(Response::new(
                                404,
                                [("Content-Type", "text/plain")],
                                "not found",
                            ));
                        }
                        Ok(value) => {
                            let body = value.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
                            connection.send(Response::new(
                                200,
                                [("Content-Type", "application/octet-stream")],
                                body,
                            ));
                        }
                        Err(error) => answer_error(&connection, &error),
                    });
                }
                None => bad_request(connection),
            },
            ("GET", "/events") => match request.get("channel") {
                Some(channel) => open_stream(connection, channel),
                None => bad_request(connection),
            },
            _ => {
                connection.send(Response::new(
                    404,
                    [("Content-Type", "text/plain")],
                    "not found",
                ));
            }
        }
    });
    worker.on_close(close_stream);
    worker
}

/// 503 when Redis could not be reached in time, 500 when it answered with an error.
fn answer_error(connection: &TcpConnection, error: &Error) {
    let status = if error.is_server() { 500 } else { 503 };
    connection.send(Response::new(
        status,
        [("Content-Type", "text/plain")],
        error.to_string(),
    ));
}

fn bad_request(connection: &TcpConnection) {
    connection.send(Response::new(
        400,
        [("Content-Type", "text/plain")],
        "missing parameter",
    ));
}

fn open_stream(connection: &TcpConnection, channel: &str) {
    connection.send(Response::new(
        200,
        [("Content-Type", "text/event-stream")],
        ": connected\n\n",
    ));
    connection.set_context(channel.to_owned());
    connection.add_timer(KEEP_ALIVE_SECS, |connection, _| {
        connection.send(ServerSentEvents::new().comment("keep-alive"));
    });
    let first = STREAMS.with(|streams| {
        let mut streams = streams.borrow_mut();
        let list = streams.entry(channel.to_owned()).or_default();
        list.push(connection.clone());
        list.len() == 1
    });
    if first {
        redis().subscribe([channel], |channel, message| {
            let event = ServerSentEvents::new()
                .data(String::from_utf8_lossy(message).into_owned())
                .to_bytes();
            let streams = STREAMS.with(|streams| streams.borrow().get(channel).cloned());
            for stream in streams.unwrap_or_default() {
                stream.send(&event[..]);
            }
        });
    }
}

fn close_stream(connection: &TcpConnection) {
    let Some(channel) = connection.with_context(|channel: &mut String| channel.clone()) else {
        return;
    };
    let last = STREAMS.with(|streams| {
        let mut streams = streams.borrow_mut();
        let Some(list) = streams.get_mut(&channel) else {
            return false;
        };
        list.retain(|stream| stream.id() != connection.id());
        if list.is_empty() {
            streams.remove(&channel);
            return true;
        }
        false
    });
    if last {
        redis().unsubscribe([channel]);
    }
}

#[allow(dead_code)]
fn main() {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "http://127.0.0.1:8100".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    worker(&listen, &redis_url);
    Worker::run_all();
}
