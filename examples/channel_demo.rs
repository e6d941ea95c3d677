//! `workerman::channel` across worker processes: `COUNT` processes of one HTTP worker, each
//! subscribed to the event `demo`; a publish in any of them reaches all of them, through the
//! embedded relay (no broker) or, with `REDIS_URL`, through Redis (several machines).
//!
//! ```text
//! cargo build --example channel_demo
//! COUNT=4 target/debug/examples/channel_demo start
//! curl -d hello 'http://127.0.0.1:8095/publish'       # "<id> <pid>": the event's id, who published
//! curl 'http://127.0.0.1:8095/history?after=<id>'    # "<id> <data>" lines after <id>, or "gap"
//! curl 'http://127.0.0.1:8095/last_id'               # the newest kept id, or "none"
//! ```
//!
//! Settings from the environment: `LISTEN` (`127.0.0.1:8095`), `COUNT` (4), `REDIS_URL`
//! (optional), `HISTORY_SIZE` (optional), and `DEMO_DIR`: a directory for the pid and log
//! files where each process appends every event it gets to `seen-<pid>` (`<id> <data>` lines)
//! and writes `ready-<pid>` once its channel answers.

use std::io::Write;
use std::path::PathBuf;

use workerman::channel::{Channel, EventId, History};
use workerman::protocols::http::{Request, Response};
use workerman::{TcpConnection, Worker};

fn main() {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8095".to_owned());
    let count = std::env::var("COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(4);
    let dir = std::env::var_os("DEMO_DIR").map(PathBuf::from);
    if let Some(dir) = &dir {
        Worker::set_pid_file(dir.join("demo.pid"));
        Worker::set_log_file(dir.join("demo.log"));
        Worker::set_stdout_file(dir.join("demo.stdout"));
    }
    if let Some(size) = std::env::var("HISTORY_SIZE")
        .ok()
        .and_then(|size| size.parse().ok())
    {
        Channel::set_history_size(size);
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        Channel::connect(&url).expect("a redis:// URL in REDIS_URL");
    }
    let mut worker = Worker::new(&format!("http://{listen}"));
    worker.set_name("channel_demo");
    worker.set_count(count);
    let start_dir = dir.clone();
    worker.on_worker_start(move |_| {
        let pid = std::process::id();
        let seen = start_dir
            .as_ref()
            .map(|dir| dir.join(format!("seen-{pid}")));
        Channel::on_event("demo", move |event| {
            let line = format!("{} {}\n", event.id, String::from_utf8_lossy(&event.data));
            match &seen {
                Some(path) => {
                    let appended = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .and_then(|mut file| file.write_all(line.as_bytes()));
                    if let Err(error) = appended {
                        Worker::log(format!(
                            "channel_demo: cannot write {}: {error}",
                            path.display()
                        ));
                    }
                }
                None => print!("{line}"),
            }
        });
        Channel::on_connection_state(move |up| {
            Worker::log(format!(
                "channel_demo[{pid}]: channel {}",
                if up { "up" } else { "down" }
            ));
        });
        // Answered once the transport is up and the subscription above went before it.
        let ready = start_dir
            .as_ref()
            .map(|dir| dir.join(format!("ready-{pid}")));
        Channel::history("demo", &EventId::new(0, 0), 1, move |result| match result {
            Ok(_) => {
                if let Some(path) = ready {
                    let _ = std::fs::write(path, "");
                }
            }
            Err(error) => Worker::log(format!("channel_demo[{pid}]: channel not ready: {error}")),
        });
    });
    worker.on_message(|connection: &TcpConnection, request: Request| {
        let connection = connection.clone();
        let text = [("Content-Type", "text/plain")];
        match (request.method(), request.path()) {
            ("POST", "/publish") => {
                let data = request.raw_body().to_vec();
                Channel::publish_with("demo", data, move |result| match result {
                    Ok(id) => {
                        connection.send(Response::new(
                            200,
                            text,
                            format!("{id} {}", std::process::id()),
                        ));
                    }
                    Err(error) => {
                        connection.send(Response::new(503, text, format!("{error}\n")));
                    }
                });
            }
            ("GET", "/last_id") => {
                Channel::last_id("demo", move |result| {
                    let response = match result {
                        Ok(Some(id)) => Response::new(200, text, format!("{id}\n")),
                        Ok(None) => Response::new(200, text, "none\n"),
                        Err(error) => Response::new(503, text, format!("{error}\n")),
                    };
                    connection.send(response);
                });
            }
            ("GET", "/history") => {
                let after = request
                    .get("after")
                    .and_then(|after| after.parse::<EventId>().ok())
                    .unwrap_or_default();
                let limit = request
                    .get("limit")
                    .and_then(|limit| limit.parse().ok())
                    .unwrap_or(100);
                Channel::history("demo", &after, limit, move |result| match result {
                    Ok(History::Gap) => {
                        connection.send(Response::new(200, text, "gap\n"));
                    }
                    Ok(History::After(events)) => {
                        let body: String = events
                            .iter()
                            .map(|event| {
                                format!("{} {}\n", event.id, String::from_utf8_lossy(&event.data))
                            })
                            .collect();
                        connection.send(Response::new(200, text, body));
                    }
                    Err(error) => {
                        connection.send(Response::new(503, text, format!("{error}\n")));
                    }
                });
            }
            _ => {
                connection.send(Response::new(
                    404,
                    text,
                    "POST /publish, GET /history?after=<id>&limit=<n>, GET /last_id\n",
                ));
            }
        }
    });
    Worker::run_all();
}
