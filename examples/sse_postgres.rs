//! PostgreSQL `LISTEN/NOTIFY` → Server-Sent Events, through [`EventLoop::on_readable`] on the
//! `postgres` crate's own connection: no thread waits for notifications.
//!
//! ```text
//! PG_CONFIG='host=/var/run/postgresql user=postgres' cargo run --example sse_postgres
//! curl -N -H 'Accept: text/event-stream' http://127.0.0.1:8093/events
//! psql -c "NOTIFY items, 'hello'"        # every subscriber gets: event: items, data: hello
//! ```
//!
//! How it works (docs/porting.md, "PostgreSQL LISTEN/NOTIFY"):
//! - The sync `postgres` client runs its I/O on a small tokio runtime of its own and does not
//!   hand out its socket; the socket it opens is found as the one socket fd that `connect` added
//!   to the process (compared in `on_worker_start`, before the worker accepts anything).
//! - `EventLoop::on_readable(socket, ..)` watches it on the worker's reactor (a second epoll
//!   registration beside the client's own, which is allowed).
//! - When it is readable, a notification has arrived: `notifications().timeout_iter(1 ms)` lets
//!   the client's runtime read it (it returns as soon as one is parsed; the 1 ms only bounds a
//!   message cut in two by the network), then `iter()` takes the others already read, without
//!   waiting.
//!
//! Settings from the environment: `PG_CONFIG` (a libpq-style string, default `host=/var/run/
//! postgresql user=postgres`), `PG_CHANNEL` (`items`), `SSE_PG_PORT` (8093), `SSE_PG_DIR` (the
//! current directory, for the pid and log files).

use std::cell::RefCell;
use std::collections::HashSet;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{EventLoop, TcpConnection, Timer, Worker};

fn main() {
    let config = std::env::var("PG_CONFIG")
        .unwrap_or_else(|_| "host=/var/run/postgresql user=postgres".to_owned());
    let channel = std::env::var("PG_CHANNEL").unwrap_or_else(|_| "items".to_owned());
    let port = std::env::var("SSE_PG_PORT").unwrap_or_else(|_| "8093".to_owned());
    let dir = std::env::var_os("SSE_PG_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    Worker::set_pid_file(dir.join("sse_postgres.pid"));
    Worker::set_log_file(dir.join("sse_postgres.log"));

    let mut worker = Worker::new(&format!("http://127.0.0.1:{port}"));
    worker.set_name("sse_postgres");
    worker.set_count(1);
    let subscribers: Rc<RefCell<Vec<TcpConnection>>> = Rc::default();
    {
        let subscribers = subscribers.clone();
        worker.on_worker_start(move |_| {
            if let Err(error) = listen(&config, &channel, subscribers.clone()) {
                Worker::log(format!("LISTEN {channel}: {error}"));
                Worker::stop_all();
            }
            let subscribers = subscribers.clone();
            Timer::add(15.0, move |_| {
                broadcast(&subscribers, ServerSentEvents::new().comment("keep-alive"));
            });
        });
    }
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        if request.path() == "/events" {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            subscribers.borrow_mut().push(connection.clone());
            return;
        }
        connection.send(Response::new(
            404,
            [("Content-Type", "text/plain")],
            "GET /events",
        ));
    });
    Worker::run_all();
}

/// Connects, `LISTEN`s, and watches the client's socket on the reactor.
fn listen(
    config: &str,
    channel: &str,
    subscribers: Rc<RefCell<Vec<TcpConnection>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = socket_fds()?;
    // Blocking, once, in on_worker_start: the worker serves nobody yet.
    let mut client = Client::connect(config, NoTls)?;
    let added: Vec<RawFd> = socket_fds()?.difference(&before).copied().collect();
    let [socket] = added[..] else {
        return Err(format!("connect opened {} sockets, expected one", added.len()).into());
    };
    client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))?;
    let client = RefCell::new(client);
    EventLoop::on_readable(socket, move |socket| {
        let mut client = client.borrow_mut();
        let mut notifications = client.notifications();
        let mut arrived = Vec::new();
        let first = notifications.timeout_iter(Duration::from_millis(1)).next();
        let rest = first.and_then(|first| {
            arrived.extend(first);
            let mut pending = notifications.iter();
            while let Some(notification) = pending.next()? {
                arrived.push(notification);
            }
            Ok(())
        });
        drop(notifications);
        for notification in arrived {
            broadcast(
                &subscribers,
                ServerSentEvents::new()
                    .event(notification.channel().to_owned())
                    .data(notification.payload().to_owned()),
            );
        }
        if let Err(error) = rest {
            Worker::log(format!("PostgreSQL connection lost: {error}"));
            EventLoop::off_readable(socket);
        } else if client.is_closed() {
            Worker::log("PostgreSQL closed the connection");
            EventLoop::off_readable(socket);
        }
    })?;
    Ok(())
}

/// This process's open socket fds.
fn socket_fds() -> std::io::Result<HashSet<RawFd>> {
    use std::os::unix::fs::FileTypeExt;
    let mut sockets = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // `metadata` follows the link to the socket itself.
        if std::fs::metadata(entry.path()).is_ok_and(|meta| meta.file_type().is_socket()) {
            sockets.insert(fd);
        }
    }
    Ok(sockets)
}

fn broadcast(subscribers: &RefCell<Vec<TcpConnection>>, event: ServerSentEvents) {
    subscribers
        .borrow_mut()
        .retain(|subscriber| subscriber.status() == TcpConnection::STATUS_ESTABLISHED);
    for subscriber in subscribers.borrow().iter() {
        subscriber.send(event.clone());
    }
}
