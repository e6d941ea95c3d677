//! An SSE feed of SQLite rows: the database runs on the blocking pool, the reactor never waits.
//!
//! ```text
//! cargo run --example sse_db
//! curl -N -H 'Accept: text/event-stream' http://127.0.0.1:8092/events    # in one terminal
//! curl -d 'hello' http://127.0.0.1:8092/items                            # in another
//! curl http://127.0.0.1:8092/items                                       # [{"id":1,"text":"hello"}]
//! ```
//!
//! - `POST /items` inserts the body as a row (on the pool, [`Worker::spawn_blocking`]), answers
//!   `201` with the row as JSON, and sends it to every subscriber as an `item` event whose id is
//!   the row's.
//! - `GET /events` subscribes (an SSE stream; a comment every 15 s keeps proxies from closing it).
//! - `GET /items` lists the rows as JSON (on the pool too).
//! - A full pool answers `503` with `Retry-After`.
//!
//! One worker process (`set_count(1)`): subscribers live in the process that inserts. With more
//! processes, each would poll the table for rows past the last id it sent (a `Timer` submitting a
//! `SELECT ... WHERE id > ?` to the pool).
//!
//! Settings from the environment (for tests): `SSE_DB_PORT` (8092), `SSE_DB_DIR` (the current
//! directory), where the database `sse_db.sqlite` and the pid and log files go, and
//! `SSE_DB_INSERT_DELAY_MS` (0), a slow disk for each insert.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection as Database;
use serde_json::json;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{BlockingError, TcpConnection, Timer, Worker};

/// The worker process's database connection, shared by the pool's threads one at a time.
type Shared = Arc<Mutex<Database>>;

fn main() {
    let port = std::env::var("SSE_DB_PORT").unwrap_or_else(|_| "8092".to_owned());
    let dir = std::env::var_os("SSE_DB_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    Worker::set_pid_file(dir.join("sse_db.pid"));
    Worker::set_log_file(dir.join("sse_db.log"));
    let path = dir.join("sse_db.sqlite");
    let delay = std::time::Duration::from_millis(
        std::env::var("SSE_DB_INSERT_DELAY_MS")
            .ok()
            .and_then(|millis| millis.parse().ok())
            .unwrap_or(0),
    );

    let mut worker = Worker::new(&format!("http://127.0.0.1:{port}"));
    worker.set_name("sse_db");
    worker.set_count(1);
    // Opened in the worker process, after the fork: a SQLite connection must not cross one.
    let database: Rc<RefCell<Option<Shared>>> = Rc::default();
    let subscribers: Rc<RefCell<Vec<TcpConnection>>> = Rc::default();
    {
        let database = database.clone();
        let subscribers = subscribers.clone();
        worker.on_worker_start(move |_| {
            let opened = Database::open(&path).and_then(|db| {
                db.execute_batch(
                    "PRAGMA journal_mode = WAL;
                     CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
                )?;
                Ok(db)
            });
            match opened {
                Ok(db) => *database.borrow_mut() = Some(Arc::new(Mutex::new(db))),
                Err(error) => Worker::log(format!("cannot open {}: {error}", path.display())),
            }
            // A comment now and then keeps idle streams open through proxies.
            let subscribers = subscribers.clone();
            Timer::add(15.0, move |_| {
                broadcast(&subscribers, ServerSentEvents::new().comment("keep-alive"));
            });
        });
    }
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        let Some(db) = database.borrow().clone() else {
            connection.send(text(500, "the database did not open"));
            return;
        };
        match (request.method(), request.path()) {
            ("GET", "/events") => {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/event-stream")],
                    "\r\n",
                ));
                subscribers.borrow_mut().push(connection.clone());
            }
            ("POST", "/items") => {
                let item = String::from_utf8_lossy(request.raw_body()).into_owned();
                let reply = connection.clone();
                let subscribers = subscribers.clone();
                submit(
                    connection,
                    move || {
                        std::thread::sleep(delay);
                        insert(&db, item)
                    },
                    move |result| match result {
                        Ok(row) => {
                            let event = ServerSentEvents::new()
                                .event("item")
                                .id(row["id"].to_string())
                                .data(row.to_string());
                            broadcast(&subscribers, event);
                            reply.send(json_response(201, &row));
                        }
                        Err(error) => drop(reply.send(text(500, &error))),
                    },
                );
            }
            ("GET", "/items") => {
                let reply = connection.clone();
                submit(
                    connection,
                    move || list(&db),
                    move |result| match result {
                        Ok(rows) => drop(reply.send(json_response(200, &rows))),
                        Err(error) => drop(reply.send(text(500, &error))),
                    },
                );
            }
            _ => {
                connection.send(text(404, "try GET /events, POST /items or GET /items"));
            }
        }
    });
    Worker::run_all();
}

/// Runs `job` on the pool; its error (or a panic) becomes the callback's `Err(message)`, a full
/// pool a `503`.
fn submit<T: Send + 'static>(
    connection: &TcpConnection,
    job: impl FnOnce() -> Result<T, rusqlite::Error> + Send + 'static,
    callback: impl FnOnce(Result<T, String>) + 'static,
) {
    let submitted = Worker::spawn_blocking(job, move |result: Result<_, BlockingError>| {
        callback(match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        })
    });
    if submitted.is_err() {
        connection.send(Response::new(
            503,
            [("Retry-After", "1"), ("Content-Type", "text/plain")],
            "busy: try again",
        ));
    }
}

fn insert(db: &Shared, item: String) -> Result<serde_json::Value, rusqlite::Error> {
    let db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    db.execute("INSERT INTO items (text) VALUES (?1)", [&item])?;
    Ok(json!({ "id": db.last_insert_rowid(), "text": item }))
}

fn list(db: &Shared) -> Result<serde_json::Value, rusqlite::Error> {
    let db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut statement = db.prepare("SELECT id, text FROM items ORDER BY id")?;
    let rows = statement
        .query_map([], |row| {
            Ok(json!({ "id": row.get::<_, i64>(0)?, "text": row.get::<_, String>(1)? }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::Value::Array(rows))
}

/// Sends `event` to every open subscriber and forgets the closed ones.
fn broadcast(subscribers: &RefCell<Vec<TcpConnection>>, event: ServerSentEvents) {
    subscribers
        .borrow_mut()
        .retain(|subscriber| subscriber.status() == TcpConnection::STATUS_ESTABLISHED);
    for subscriber in subscribers.borrow().iter() {
        subscriber.send(event.clone());
    }
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    Response::new(
        status,
        [("Content-Type", "application/json")],
        value.to_string(),
    )
}

fn text(status: u16, body: &str) -> Response {
    Response::new(status, [("Content-Type", "text/plain")], body.to_owned())
}
