//! Sessions in Redis (Workerman's `RedisSessionHandler`), through the worker's own
//! [`redis::Client`](crate::redis::Client): non-blocking, each operation one command whose reply
//! callback completes it.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::io;
use std::time::Duration;

use crate::protocols::http::{SessionDone, SessionHandler};
use crate::redis::{Client, Error};

/// Sessions as Redis strings (Workerman's `RedisSessionHandler`): session `id` is the key
/// `redis_session_<id>` (the prefix is a setting), read with `GET`, written with
/// `SETEX key <lifetime> data` (so Redis expires it after the session lifetime; nothing to
/// collect), removed with `DEL`.
///
/// The client is made in each worker process on first use (a client belongs to one reactor).
/// Reads complete later, so a request carrying a session cookie waits for its session before
/// `on_message` runs; a read that fails (Redis down: no reply within the reply timeout, 2 s
/// unless set) answers that request `503 Service Unavailable` rather than hand it an empty
/// session that would overwrite the stored one (see [`SessionHandler::completes_later`]).
///
/// ```no_run
/// use workerman::protocols::http::{RedisSessionHandler, SessionConfig};
/// use workerman::Worker;
///
/// let mut worker = Worker::new("http://0.0.0.0:8080");
/// let handler = RedisSessionHandler::new("redis://127.0.0.1:6379/0").prefix("myapp_sess_");
/// worker.set_session(SessionConfig::new(handler));
/// Worker::run_all();
/// ```
pub struct RedisSessionHandler {
    url: String,
    prefix: Cow<'static, str>,
    reply_timeout: Duration,
    client: OnceCell<Client>,
}

/// Workerman's default key prefix.
const DEFAULT_PREFIX: &str = "redis_session_";

impl RedisSessionHandler {
    /// Sessions in the Redis at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `unix:///path`, as [`Client::new`] takes), under the prefix `redis_session_`.
    ///
    /// # Panics
    /// On a malformed URL (at once, not on first use).
    ///
    /// ```
    /// use workerman::protocols::http::RedisSessionHandler;
    ///
    /// let handler = RedisSessionHandler::new("redis://127.0.0.1:6379");
    /// assert_eq!(handler.key("0123456789abcdef"), "redis_session_0123456789abcdef");
    /// ```
    pub fn new(url: &str) -> RedisSessionHandler {
        if let Err(why) = crate::redis::parse_address(url) {
            panic!("RedisSessionHandler::new: {why}");
        }
        RedisSessionHandler {
            url: url.to_owned(),
            prefix: Cow::Borrowed(DEFAULT_PREFIX),
            reply_timeout: Duration::from_secs(2),
            client: OnceCell::new(),
        }
    }

    /// The key prefix (Workerman's `prefix` setting, default `redis_session_`).
    ///
    /// ```
    /// # use workerman::protocols::http::RedisSessionHandler;
    /// let handler = RedisSessionHandler::new("redis://127.0.0.1").prefix("app:sess:");
    /// assert_eq!(handler.key("0123456789abcdef"), "app:sess:0123456789abcdef");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> RedisSessionHandler {
        self.prefix = prefix.into();
        self
    }

    /// How long a command may wait for its reply, or for a connection while Redis is down
    /// (default 2 s): past it the operation fails, and a request waiting for its session is
    /// answered 503.
    ///
    /// ```
    /// # use workerman::protocols::http::RedisSessionHandler;
    /// let handler = RedisSessionHandler::new("redis://127.0.0.1")
    ///     .reply_timeout(std::time::Duration::from_millis(500));
    /// ```
    pub fn reply_timeout(mut self, timeout: Duration) -> RedisSessionHandler {
        self.reply_timeout = timeout;
        self
    }

    /// The Redis key of session `id`.
    ///
    /// ```
    /// # use workerman::protocols::http::RedisSessionHandler;
    /// let handler = RedisSessionHandler::new("redis://127.0.0.1");
    /// assert!(handler.key("abcdefabcdefabcdef").starts_with("redis_session_"));
    /// ```
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    /// This process's client, made on first use (from a running worker only).
    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let client = Client::new(&self.url);
            client.set_reply_timeout(self.reply_timeout);
            client.set_connect_timeout(self.reply_timeout);
            client
        })
    }
}

/// A Redis error as the session layer reports it.
fn failed(error: Error) -> io::Error {
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, error.to_string())
}

impl SessionHandler for RedisSessionHandler {
    /// `GET prefix+id`: a missing key reads as an empty session.
    fn read(&self, id: &str, _max_lifetime: Duration, done: SessionDone<Vec<u8>>) {
        self.client().get(self.key(id), move |result| {
            done(match result {
                Ok(value) if value.is_nil() => Ok(Vec::new()),
                Ok(value) => match value.as_bytes() {
                    Some(bytes) => Ok(bytes.to_vec()),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("redis: a session key holds {value:?}, not a string"),
                    )),
                },
                Err(error) => Err(failed(error)),
            })
        });
    }

    /// `SETEX prefix+id <lifetime in seconds, at least 1> data`.
    fn write(&self, id: &str, data: Vec<u8>, max_lifetime: Duration, done: SessionDone<()>) {
        let seconds = max_lifetime.as_secs().max(1);
        self.client()
            .setex(self.key(id), seconds, data, move |result| {
                done(result.map(drop).map_err(failed))
            });
    }

    /// `DEL prefix+id`.
    fn destroy(&self, id: &str, done: SessionDone<()>) {
        self.client().del([self.key(id)], move |result| {
            done(result.map(drop).map_err(failed))
        });
    }

    /// Nothing: Redis expires the keys itself.
    fn gc(&self, _max_lifetime: Duration) {}

    fn completes_later(&self) -> bool {
        true
    }
}
