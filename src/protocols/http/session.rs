//! HTTP sessions: Workerman's `$request->session()` and its `Session` settings. This file is the
//! codec's part, sans-I/O: the settings ([`SessionConfig`]), the handler trait, session ids,
//! the stored form and the session's data; the handle, the loading and saving and the handlers
//! that do I/O are the connection's (`connection/session.rs`, `connection/session_redis.rs`),
//! re-exported here.
//!
//! The session of a request lives with its connection while the request is answered:
//! [`Request::session`](crate::protocols::http::Request::session) loads it (from the `PHPSID`
//! cookie, or a new id whose `Set-Cookie` is queued on the connection's headers, as Workerman
//! does), the [`Session`](super::Session) handle reads and changes it, and it is saved once, if
//! it changed, when `on_message` returns (and again when the response completes, for changes
//! made in between).
//!
//! **Reading on the reactor thread.** [`FileSessionHandler`](super::FileSessionHandler) reads
//! and writes its small files synchronously, as Workerman does: a session file is a few hundred
//! bytes on a local disk, in the page cache once used, so a read or a write-then-rename costs
//! microseconds, less than parsing the request. What can take long, the garbage collection that
//! scans the directory, runs on a thread of its own. A session store that is slow or remote (a
//! network disk, Redis) must not be read that way: [`SessionHandler`]'s methods complete through
//! a callback, so such a handler sends its command and calls back from the reactor when the
//! answer comes.
//!
//! **A handler that answers later** ([`RedisSessionHandler`](super::RedisSessionHandler):
//! `GET`/`SETEX`/`DEL` on the reactor's Redis client, `done` called from the reply callback) says
//! so with [`SessionHandler::completes_later`]. Its data must be in place before `on_message`
//! runs, since `request.session()` returns at once: a request that carries a valid session cookie
//! is held, as a pipelined request waits behind the one before it, while the handler reads its
//! session, then delivered with the session installed (requests behind it keep their order). A
//! request without a cookie needs no read and goes at once. A read that fails (the store is down,
//! no reply within its timeout) answers the request `503 Service Unavailable` and closes the
//! connection: an empty session in its place would log the user out and, once saved, overwrite
//! what the store holds. A connection that closes while its read is pending is simply gone when
//! the read calls back: nothing is delivered. Writes and destroys complete later too; a failure
//! is logged.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::protocols::http::{Cookie, SameSite};

/// How a [`SessionHandler`] reports that an operation finished.
pub type SessionDone<T> = Box<dyn FnOnce(io::Result<T>)>;

/// Where sessions are stored (Workerman's `SessionHandlerInterface`).
///
/// Each method completes by calling `done`, either before it returns (a local file, as
/// [`FileSessionHandler`](super::FileSessionHandler) does) or later from the worker's reactor
/// (a network store: send the command, call `done` from its reply callback). Ids are checked
/// before a handler sees them: they match `[a-zA-Z0-9,-]{16,256}`.
///
/// ```
/// use std::cell::RefCell;
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use workerman::protocols::http::{SessionDone, SessionHandler};
///
/// /// Sessions in memory (lost on restart; one worker process only).
/// #[derive(Default)]
/// struct MemorySessions(RefCell<HashMap<String, Vec<u8>>>);
///
/// impl SessionHandler for MemorySessions {
///     fn read(&self, id: &str, _max_lifetime: Duration, done: SessionDone<Vec<u8>>) {
///         done(Ok(self.0.borrow().get(id).cloned().unwrap_or_default()));
///     }
///     fn write(&self, id: &str, data: Vec<u8>, _lifetime: Duration, done: SessionDone<()>) {
///         self.0.borrow_mut().insert(id.to_owned(), data);
///         done(Ok(()));
///     }
///     fn destroy(&self, id: &str, done: SessionDone<()>) {
///         self.0.borrow_mut().remove(id);
///         done(Ok(()));
///     }
///     fn gc(&self, _max_lifetime: Duration) {}
/// }
/// ```
pub trait SessionHandler {
    /// Loads session `id`: its stored bytes, empty if there is none or it is older than
    /// `max_lifetime`.
    fn read(&self, id: &str, max_lifetime: Duration, done: SessionDone<Vec<u8>>);
    /// Stores `data` as session `id`, replacing what was there; it lives `max_lifetime` unless
    /// written again (a store that expires keys uses it as their time to live).
    fn write(&self, id: &str, data: Vec<u8>, max_lifetime: Duration, done: SessionDone<()>);
    /// Removes session `id` (no error if there is none).
    fn destroy(&self, id: &str, done: SessionDone<()>);
    /// Removes sessions unused for longer than `max_lifetime`. Called now and then (see
    /// [`SessionConfig::gc_probability`]); it must not block the reactor thread.
    fn gc(&self, max_lifetime: Duration);
    /// Whether `read` calls `done` later, from the reactor (a network store), rather than before
    /// it returns. Such a handler's reads happen before `on_message`: a request with a session
    /// cookie waits for its session (see [`RedisSessionHandler`](super::RedisSessionHandler)).
    /// Default `false`.
    fn completes_later(&self) -> bool {
        false
    }
}

/// A worker's session settings (Workerman's `Session::$name`, `$lifetime`, `$cookieLifetime`,
/// `$cookiePath`, `$domain`, `$secure`, `$httpOnly`, `$sameSite`, `$gcProbability` and
/// `Session::handlerClass()`), set with `Worker::set_session`. Without one, a worker keeps its
/// sessions with a [`FileSessionHandler`](super::FileSessionHandler) in the system's temporary
/// directory, as Workerman does.
///
/// ```no_run
/// use std::time::Duration;
/// use workerman::protocols::http::{FileSessionHandler, SameSite, SessionConfig};
///
/// let config = SessionConfig::new(FileSessionHandler::new("/tmp/app-sessions")?)
///     .name("APPSID")
///     .lifetime(Duration::from_secs(3600))
///     .same_site(SameSite::Lax);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SessionConfig {
    pub(crate) handler: Rc<dyn SessionHandler>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) lifetime: Duration,
    cookie_lifetime: Option<Duration>,
    cookie_path: Cow<'static, str>,
    domain: Option<Cow<'static, str>>,
    http_only: bool,
    same_site: Option<SameSite>,
    secure: Option<bool>,
    pub(crate) gc_probability: (u32, u32),
}

impl SessionConfig {
    /// Workerman's defaults with this handler: cookie `PHPSID`, lifetime 1440 s (data and
    /// cookie), path `/`, `HttpOnly`, no `SameSite`, `Secure` on TLS connections, a garbage
    /// collection in 20,000 saves.
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// let config = SessionConfig::new(FileSessionHandler::new(std::env::temp_dir())?);
    /// assert_eq!(config.cookie_name(), "PHPSID");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(handler: impl SessionHandler + 'static) -> SessionConfig {
        SessionConfig {
            handler: Rc::new(handler),
            name: Cow::Borrowed("PHPSID"),
            lifetime: Duration::from_secs(1440),
            cookie_lifetime: Some(Duration::from_secs(1440)),
            cookie_path: Cow::Borrowed("/"),
            domain: None,
            http_only: true,
            same_site: None,
            secure: None,
            gc_probability: (1, 20_000),
        }
    }

    /// The session cookie's name (Workerman's `Session::$name`, default `PHPSID`).
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// let config = SessionConfig::new(FileSessionHandler::new(std::env::temp_dir())?).name("SID");
    /// assert_eq!(config.cookie_name(), "SID");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> SessionConfig {
        self.name = name.into();
        self
    }

    /// The cookie's name.
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let config = SessionConfig::new(FileSessionHandler::new(std::env::temp_dir())?);
    /// assert_eq!(config.cookie_name(), "PHPSID");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cookie_name(&self) -> &str {
        &self.name
    }

    /// How long stored data lives unchanged (Workerman's `Session::$lifetime`, 1440 s); older
    /// sessions read as empty and are collected. Also the cookie's `Max-Age` unless
    /// [`cookie_lifetime`](Self::cookie_lifetime) says otherwise.
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).lifetime(std::time::Duration::from_secs(600));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lifetime(mut self, lifetime: Duration) -> SessionConfig {
        self.lifetime = lifetime;
        self.cookie_lifetime = Some(lifetime);
        self
    }

    /// The cookie's `Max-Age` (Workerman's `$cookieLifetime`); `None` makes it a browser-session
    /// cookie.
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).cookie_lifetime(None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cookie_lifetime(mut self, lifetime: Option<Duration>) -> SessionConfig {
        self.cookie_lifetime = lifetime;
        self
    }

    /// The cookie's `Path` (default `/`).
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).cookie_path("/app");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cookie_path(mut self, path: impl Into<Cow<'static, str>>) -> SessionConfig {
        self.cookie_path = path.into();
        self
    }

    /// The cookie's `Domain` (default none: this host only).
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).domain("example.com");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn domain(mut self, domain: impl Into<Cow<'static, str>>) -> SessionConfig {
        self.domain = Some(domain.into());
        self
    }

    /// `HttpOnly` on the cookie (default true).
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).http_only(false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn http_only(mut self, http_only: bool) -> SessionConfig {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` (default none, as Workerman's `''`).
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SameSite, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).same_site(SameSite::Strict);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> SessionConfig {
        self.same_site = Some(same_site);
        self
    }

    /// `Secure` on the cookie: `Some(true)` always, `Some(false)` never, `None` (the default)
    /// when the request came over TLS. (TLS transports are not built yet, so today `None`
    /// means never; a TLS transport marks its connections and the cookie follows.)
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).secure(Some(true)); // behind a TLS proxy
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn secure(mut self, secure: Option<bool>) -> SessionConfig {
        self.secure = secure;
        self
    }

    /// A garbage collection runs on `numerator` in `denominator` saves (Workerman's
    /// `$gcProbability`, default 1 in 20,000); `(0, 1)` never.
    ///
    /// ```
    /// # use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let handler = FileSessionHandler::new(std::env::temp_dir())?;
    /// let config = SessionConfig::new(handler).gc_probability(1, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn gc_probability(mut self, numerator: u32, denominator: u32) -> SessionConfig {
        self.gc_probability = (numerator, denominator.max(1));
        self
    }

    /// The `Set-Cookie` value for a session of this id (`Secure` on TLS unless set).
    pub(crate) fn cookie(&self, id: &str, tls: bool) -> String {
        let mut cookie = Cookie::new(self.name.to_string(), id.to_owned())
            .path(self.cookie_path.to_string())
            .http_only(self.http_only)
            .secure(self.secure.unwrap_or(tls));
        if let Some(lifetime) = self.cookie_lifetime {
            cookie = cookie.max_age(lifetime.as_secs() as i64);
        }
        if let Some(domain) = &self.domain {
            cookie = cookie.domain(domain.to_string());
        }
        if let Some(same_site) = self.same_site {
            cookie = cookie.same_site(same_site);
        }
        cookie.to_string()
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("name", &self.name)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A session id the handlers accept: `[a-zA-Z0-9,-]{16,256}` (Workerman's `isValidSessionId`).
/// A cookie that does not match is ignored (a new session starts), never used as a path.
///
/// ```
/// use workerman::protocols::http::is_valid_session_id;
/// assert!(is_valid_session_id("0123456789abcdef"));
/// assert!(!is_valid_session_id("../../etc/passwd"));
/// assert!(!is_valid_session_id("short"));
/// ```
pub fn is_valid_session_id(id: &str) -> bool {
    (16..=256).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-')
}

/// A new session id: 160 bits from the OS random source, as 40 hex digits.
pub(crate) fn new_session_id() -> io::Result<String> {
    let mut bytes = [0u8; 20];
    random_bytes(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Fills `buffer` from the kernel's random source (`getrandom(2)`).
pub(crate) fn random_bytes(buffer: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the whole call,
        // and getrandom writes at most that many bytes into it.
        let count = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
            continue;
        }
        filled += count as usize;
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    text
}

/// The session of the request being answered on a connection (kept with the connection).
pub(crate) struct SessionState {
    pub(crate) config: Rc<SessionConfig>,
    pub(crate) id: String,
    pub(crate) data: Vec<(String, String)>,
    /// Changed since loaded or last saved.
    pub(crate) dirty: bool,
    /// Loading failed: never saved, so stored data is not overwritten.
    pub(crate) unreadable: bool,
    /// Ids replaced by `regenerate(true)`: destroyed at the next save.
    pub(crate) retired: Vec<String>,
}

/// What a handler stores: a magic line, then `name` and `value` pairs, each a little-endian
/// `u32` length and its bytes.
const MAGIC: &[u8] = b"wmrs-session-1\n";

pub(crate) fn encode(data: &[(String, String)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (name, value) in data {
        for text in [name, value] {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

/// The pairs stored in `bytes`; what is not of the form (another program's file, a truncated
/// one) reads as the pairs before it.
pub(crate) fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC) else {
        return Vec::new();
    };
    let mut take = move || -> Option<String> {
        let length = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = rest.get(4..4 + length)?;
        rest = &rest[4 + length..];
        String::from_utf8(text.to_vec()).ok()
    };
    let mut data = Vec::new();
    while let (Some(name), Some(value)) = (take(), take()) {
        data.push((name, value));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_data_round_trips_and_garbage_reads_as_empty() {
        let data = vec![
            ("user".to_string(), "ada".to_string()),
            ("empty".to_string(), String::new()),
            ("ünï".to_string(), "a\nb\0c".to_string()),
        ];
        assert_eq!(decode(&encode(&data)), data);
        assert!(decode(b"a:1:{s:1:\"a\";}").is_empty());
        let mut truncated = encode(&data);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(decode(&truncated), data[..2]);
        assert!(decode(&[]).is_empty());
    }

    #[test]
    fn ids_are_random_and_of_the_valid_form() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 40);
        assert!(is_valid_session_id(&a));
        for bad in [
            "",
            "abc",
            "../../../../etc/pass",
            "0123456789abcdef/",
            "0123456789abcde\0",
        ] {
            assert!(!is_valid_session_id(bad), "{bad:?}");
        }
        assert!(is_valid_session_id(&"a".repeat(256)));
        assert!(!is_valid_session_id(&"a".repeat(257)));
    }
}
