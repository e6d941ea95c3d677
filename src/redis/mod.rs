//! An asynchronous Redis client on the worker's reactor (workerman/redis, in Rust).
//!
//! [`Client::new`] takes `redis://[user:password@]host[:port][/db]`, `rediss://` (TLS) or
//! `unix:///path`; every command takes a callback that receives `Result<`[`Value`]`, `[`Error`]`>`. Commands pipeline on
//! one connection and their callbacks run in order. RESP3 (`HELLO 3`) where the server speaks
//! it, RESP2 otherwise. Pub/sub with [`Client::subscribe`], [`Client::psubscribe`],
//! [`Client::ssubscribe`]. A lost connection comes back by itself (backoff from 50 ms to 3 s),
//! authenticated, on the same database, with its subscriptions, then [`Client::on_reconnect`]
//! runs; commands made meanwhile wait in a bounded queue, and every command's callback gets an
//! answer or an error.
//!
//! ```no_run
//! use workerman::redis::Client;
//! use workerman::Worker;
//!
//! let mut worker = Worker::without_listener();
//! worker.on_worker_start(|_| {
//!     let redis = Client::new("redis://127.0.0.1:6379");
//!     redis.subscribe(["news"], |channel, message| {
//!         println!("{channel}: {}", String::from_utf8_lossy(message));
//!     });
//!     redis.incr("visits", |result| match result {
//!         Ok(count) => println!("visit {}", count.as_int().unwrap_or(0)),
//!         Err(error) if error.is_server() => eprintln!("Redis said no: {error}"),
//!         Err(error) => eprintln!("no answer: {error}"),
//!     });
//! });
//! Worker::run_all();
//! ```

mod address;
mod client;
mod commands;
mod error;
mod link;
pub(crate) mod protocol;
mod pubsub;
mod subscriptions;
mod value;

pub use client::Client;
pub use error::Error;
pub use value::Value;

/// Checks a client URL without connecting (what [`Client::new`] would refuse).
pub(crate) fn parse_address(url: &str) -> Result<(), String> {
    address::parse(url).map(drop)
}
