//! HTTP sessions: Workerman's `$request->session()`, its `Session` settings and its
//! `FileSessionHandler`.
//!
//! The session of a request lives with its connection while the request is answered:
//! [`Request::session`](crate::protocols::http::Request::session) loads it (from the `PHPSID`
//! cookie, or a new id whose `Set-Cookie` is queued on the connection's headers, as Workerman
//! does), the [`Session`] handle reads and changes it, and it is saved once, if it changed, when
//! `on_message` returns (and again when the response completes, for changes made in between).
//!
//! **Reading on the reactor thread.** [`FileSessionHandler`] reads and writes its small files
//! synchronously, as Workerman does: a session file is a few hundred bytes on a local disk, in
//! the page cache once used, so a read or a write-then-rename costs microseconds, less than
//! parsing the request. What can take long, the garbage collection that scans the directory,
//! runs on a thread of its own. A session store that is slow or remote (a network disk, Redis)
//! must not be read that way: [`SessionHandler`]'s methods complete through a callback, so such
//! a handler sends its command and calls back from the reactor when the answer comes.
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
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::connection::TcpConnection;
use crate::protocols::http::{Cookie, Request, SameSite};
use crate::reactor;

/// How a [`SessionHandler`] reports that an operation finished.
pub type SessionDone<T> = Box<dyn FnOnce(io::Result<T>)>;

/// Where sessions are stored (Workerman's `SessionHandlerInterface`).
///
/// Each method completes by calling `done`, either before it returns (a local file, as
/// [`FileSessionHandler`] does) or later from the worker's reactor (a network store: send the
/// command, call `done` from its reply callback). Ids are checked before a handler sees them:
/// they match `[a-zA-Z0-9,-]{16,256}`.
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
    /// cookie waits for its session (see [`RedisSessionHandler`](super::RedisSessionHandler)). Default `false`.
    fn completes_later(&self) -> bool {
        false
    }
}

/// Sessions as files in a directory (Workerman's `FileSessionHandler`): one file
/// `session_<id>` per session, replaced atomically (written to a temporary file, then renamed
/// over it), removed once older than the session lifetime.
///
/// ```no_run
/// use workerman::protocols::http::{FileSessionHandler, SessionConfig};
/// use workerman::Worker;
///
/// let mut worker = Worker::new("http://0.0.0.0:8080");
/// let handler = FileSessionHandler::new("/var/lib/myapp/sessions")?;
/// worker.set_session(SessionConfig::new(handler));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileSessionHandler {
    directory: PathBuf,
    /// A collection is running (at most one at a time).
    collecting: Arc<AtomicBool>,
}

/// Session files are named this, then the id (Workerman's `$sessionFilePrefix`).
const FILE_PREFIX: &str = "session_";

impl FileSessionHandler {
    /// Keeps sessions in `directory`, created if missing.
    ///
    /// ```
    /// use workerman::protocols::http::FileSessionHandler;
    ///
    /// let directory = std::env::temp_dir().join("workerman-doc-sessions");
    /// let handler = FileSessionHandler::new(&directory)?;
    /// assert_eq!(handler.directory(), directory);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(directory: impl Into<PathBuf>) -> io::Result<FileSessionHandler> {
        let directory = directory.into();
        std::fs::create_dir_all(&directory)?;
        Ok(FileSessionHandler {
            directory,
            collecting: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The directory the session files are in.
    ///
    /// ```
    /// # use workerman::protocols::http::FileSessionHandler;
    /// let handler = FileSessionHandler::new(std::env::temp_dir().join("workerman-doc-s"))?;
    /// assert!(handler.directory().is_dir());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The file of session `id`; `None` for an id that is not of the valid form (never a path).
    fn file(&self, id: &str) -> Option<PathBuf> {
        is_valid_session_id(id).then(|| self.directory.join(format!("{FILE_PREFIX}{id}")))
    }

    fn read_file(&self, id: &str, max_lifetime: Duration) -> io::Result<Vec<u8>> {
        let Some(path) = self.file(id) else {
            return Ok(Vec::new());
        };
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        if is_older_than(&metadata, max_lifetime) {
            let _ = std::fs::remove_file(&path);
            return Ok(Vec::new());
        }
        match std::fs::read(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    fn write_file(&self, id: &str, data: &[u8]) -> io::Result<()> {
        let Some(path) = self.file(id) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid session id",
            ));
        };
        let mut suffix = [0u8; 8];
        random_bytes(&mut suffix)?;
        let temporary = self
            .directory
            .join(format!(".{FILE_PREFIX}{id}.{}.tmp", hex(&suffix)));
        // Readable by this user only, as PHP's session files are.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| file.write_all(data))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }
}

impl SessionHandler for FileSessionHandler {
    fn read(&self, id: &str, max_lifetime: Duration, done: SessionDone<Vec<u8>>) {
        done(self.read_file(id, max_lifetime));
    }

    fn write(&self, id: &str, data: Vec<u8>, _max_lifetime: Duration, done: SessionDone<()>) {
        done(self.write_file(id, &data));
    }

    fn destroy(&self, id: &str, done: SessionDone<()>) {
        let result = match self.file(id).map(std::fs::remove_file) {
            Some(Err(error)) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        };
        done(result);
    }

    /// Scans the directory on a thread of its own (a directory of 100,000 sessions takes a
    /// while), removing session files and leftover temporary files older than `max_lifetime`.
    fn gc(&self, max_lifetime: Duration) {
        if self.collecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let directory = self.directory.clone();
        let collecting = self.collecting.clone();
        let spawned = std::thread::Builder::new()
            .name("session-gc".into())
            .spawn(move || {
                collect_garbage(&directory, max_lifetime);
                collecting.store(false, Ordering::Release);
            });
        if let Err(error) = spawned {
            log::warn!("session garbage collection not started: {error}");
            self.collecting.store(false, Ordering::Release);
        }
    }
}

fn collect_garbage(directory: &Path, max_lifetime: Duration) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(FILE_PREFIX) || name.starts_with(&format!(".{FILE_PREFIX}"));
        if ours
            && entry
                .metadata()
                .is_ok_and(|m| is_older_than(&m, max_lifetime))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn is_older_than(metadata: &std::fs::Metadata, max_lifetime: Duration) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > max_lifetime)
}

/// A worker's session settings (Workerman's `Session::$name`, `$lifetime`, `$cookieLifetime`,
/// `$cookiePath`, `$domain`, `$secure`, `$httpOnly`, `$sameSite`, `$gcProbability` and
/// `Session::handlerClass()`), set with `Worker::set_session`. Without one, a worker keeps its
/// sessions with a [`FileSessionHandler`] in the system's temporary directory, as Workerman does.
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
    name: Cow<'static, str>,
    lifetime: Duration,
    cookie_lifetime: Option<Duration>,
    cookie_path: Cow<'static, str>,
    domain: Option<Cow<'static, str>>,
    http_only: bool,
    same_site: Option<SameSite>,
    secure: Option<bool>,
    gc_probability: (u32, u32),
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

    /// The default: files in the system's temporary directory (Workerman's default handler).
    pub(crate) fn default_files() -> io::Result<SessionConfig> {
        let directory = std::env::temp_dir().join("workerman-sessions");
        Ok(SessionConfig::new(FileSessionHandler::new(directory)?))
    }

    fn cookie(&self, id: &str, tls: bool) -> String {
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
fn new_session_id() -> io::Result<String> {
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

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    text
}

/// The session of the request being answered on a connection (kept with the connection).
pub(crate) struct SessionState {
    config: Rc<SessionConfig>,
    id: String,
    data: Vec<(String, String)>,
    /// Changed since loaded or last saved.
    dirty: bool,
    /// Loading failed: never saved, so stored data is not overwritten.
    unreadable: bool,
    /// Ids replaced by `regenerate(true)`: destroyed at the next save.
    retired: Vec<String>,
}

/// The session of a request (Workerman's `Workerman\Protocols\Http\Session`), from
/// [`Request::session`](crate::protocols::http::Request::session). Values are strings. It is
/// saved once, if it changed, when `on_message` returns, and again when the response completes
/// if it changed in between; later changes (after both) are not saved.
///
/// ```no_run
/// use workerman::protocols::http::Request;
/// use workerman::{TcpConnection, Worker};
///
/// let mut worker = Worker::new("http://0.0.0.0:8080");
/// worker.on_message(|connection: &TcpConnection, request: Request| {
///     let session = request.session();
///     let visits: u64 = session.get("visits").and_then(|v| v.parse().ok()).unwrap_or(0);
///     session.set("visits", (visits + 1).to_string());
///     connection.send(format!("visit {}", visits + 1));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Session {
    connection: Option<TcpConnection>,
}

impl Session {
    fn with_state<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> Option<R> {
        let connection = self.connection.as_ref()?;
        reactor::try_with(|reactor| {
            let state = reactor.connection_mut(connection)?.extras.as_mut()?;
            state.session.as_deref_mut().map(f)
        })
        .flatten()
    }

    /// A value (Workerman's `get($name)`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// let user = session.get("user").unwrap_or_default();
    /// # }
    /// ```
    pub fn get(&self, name: &str) -> Option<String> {
        self.with_state(|state| {
            let (_, value) = state.data.iter().find(|(n, _)| n == name)?;
            Some(value.clone())
        })
        .flatten()
    }

    /// Sets a value (Workerman's `set($name, $value)`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// session.set("user", "ada");
    /// # }
    /// ```
    pub fn set(&self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        self.with_state(|state| {
            match state.data.iter_mut().find(|(n, _)| *n == name) {
                Some((_, old)) if *old == value => return,
                Some((_, old)) => *old = value,
                None => state.data.push((name, value)),
            }
            state.dirty = true;
        });
    }

    /// Removes a value (Workerman's `delete($name)`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// session.delete("cart");
    /// # }
    /// ```
    pub fn delete(&self, name: &str) {
        self.pull(name);
    }

    /// Removes a value and returns it (Workerman's `pull($name)`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// let flash = session.pull("flash"); // shown once
    /// # }
    /// ```
    pub fn pull(&self, name: &str) -> Option<String> {
        self.with_state(|state| {
            let index = state.data.iter().position(|(n, _)| n == name)?;
            state.dirty = true;
            Some(state.data.remove(index).1)
        })
        .flatten()
    }

    /// Every value, in the order first set (Workerman's `all()`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// for (name, value) in session.all() {
    ///     println!("{name} = {value}");
    /// }
    /// # }
    /// ```
    pub fn all(&self) -> Vec<(String, String)> {
        self.with_state(|state| state.data.clone())
            .unwrap_or_default()
    }

    /// Whether a value is set (Workerman's `has($name)`, PHP's `isset`; values are never null
    /// here, so it is [`exists`](Self::exists)).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// if !session.has("user") { /* log in */ }
    /// # }
    /// ```
    pub fn has(&self, name: &str) -> bool {
        self.exists(name)
    }

    /// Whether a value of this name exists (Workerman's `exists($name)`).
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// let known = session.exists("user");
    /// # }
    /// ```
    pub fn exists(&self, name: &str) -> bool {
        self.with_state(|state| state.data.iter().any(|(n, _)| n == name))
            .unwrap_or(false)
    }

    /// Removes every value (Workerman's `flush()`); an empty session is destroyed when saved.
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// session.flush(); // log out
    /// # }
    /// ```
    pub fn flush(&self) {
        self.with_state(|state| {
            state.dirty |= !state.data.is_empty();
            state.data.clear();
        });
    }

    /// The session id (Workerman's `getId()`); empty on a request not from a connection.
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// println!("session {}", session.id());
    /// # }
    /// ```
    pub fn id(&self) -> String {
        self.with_state(|state| state.id.clone())
            .unwrap_or_default()
    }

    /// Gives the session a new id, keeping its data, and queues the new cookie (Workerman's
    /// `$request->sessionRegenerateId($deleteOldSession)`): do it at login against session
    /// fixation. `delete_old` removes the data stored under the old id.
    ///
    /// ```no_run
    /// # fn f(session: workerman::protocols::http::Session) {
    /// session.regenerate(true);
    /// session.set("user", "ada");
    /// # }
    /// ```
    pub fn regenerate(&self, delete_old: bool) {
        let Some(connection) = &self.connection else {
            return;
        };
        let id = match new_session_id() {
            Ok(id) => id,
            Err(error) => {
                log::warn!("session id not regenerated: {error}");
                return;
            }
        };
        let cookie = reactor::try_with(|reactor| {
            let tls = reactor
                .connection(connection)
                .is_some_and(connection_is_tls);
            let state = reactor.connection_mut(connection)?.extras.as_mut()?;
            let state = state.session.as_deref_mut()?;
            let old = std::mem::replace(&mut state.id, id.clone());
            if delete_old {
                state.retired.push(old);
            }
            state.dirty = true;
            Some((state.config.name.clone(), state.config.cookie(&id, tls)))
        })
        .flatten();
        if let Some((name, cookie)) = cookie {
            queue_cookie(connection, &name, cookie);
        }
    }
}

/// Whether the connection is over TLS (for the cookie's `Secure`). The hook for a TLS
/// transport: it is not built yet, so no connection is.
fn connection_is_tls(_connection: &crate::connection::Connection) -> bool {
    false
}

/// Queues the session cookie on the connection's headers, replacing an earlier one of this
/// name (a regenerated id) and keeping other cookies.
fn queue_cookie(connection: &TcpConnection, name: &str, cookie: String) {
    let prefix = format!("{name}=");
    reactor::try_with(|reactor| {
        if let Some(state) = reactor.connection_mut(connection) {
            let headers = &mut state.extras().headers;
            headers
                .retain(|(n, v)| !(n.eq_ignore_ascii_case("set-cookie") && v.starts_with(&prefix)));
            headers.push((Cow::Borrowed("Set-Cookie"), Cow::Owned(cookie)));
        }
    });
}

/// `Request::session` is the session's: a session reads its request's cookie (`request.rs`
/// knows nothing of sessions).
impl Request {
    /// The request's session (Workerman's `$request->session()`), loaded on first call: from
    /// the session cookie (`PHPSID`), or a new session whose `Set-Cookie` is queued on the
    /// connection's headers and sent with the response. See [`Session`] for when it is saved
    /// and `Worker::set_session` for where. Out of `on_message` (a request from
    /// [`Request::parse`], or its connection gone) it is empty and keeps nothing.
    ///
    /// ```no_run
    /// use workerman::protocols::http::Request;
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let mut worker = Worker::new("http://0.0.0.0:8080");
    /// worker.on_message(|connection: &TcpConnection, request: Request| {
    ///     let session = request.session();
    ///     session.set("name", request.get("name").unwrap_or("guest"));
    ///     connection.send(format!("hello {}", session.get("name").unwrap_or_default()));
    /// });
    /// ```
    pub fn session(&self) -> Session {
        open(self, self.connection())
    }
}

thread_local! {
    /// A session was opened since `on_message` began (see [`take_opened`]).
    static OPENED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `request.session()` was called since the last call; lowers the flag.
#[inline]
pub(crate) fn take_opened() -> bool {
    OPENED
        .try_with(|opened| opened.replace(false))
        .unwrap_or(false)
}

/// `request.session()`: the session already loaded for this request, or loads it.
pub(crate) fn open(request: &Request, connection: Option<TcpConnection>) -> Session {
    let _ = OPENED.try_with(|opened| opened.set(true));
    let Some(handle) = connection else {
        return Session { connection: None };
    };
    let session = Session {
        connection: Some(handle.clone()),
    };
    enum Found {
        Loaded,
        Config(Rc<SessionConfig>, bool),
        Gone,
    }
    let found = reactor::try_with(|reactor| {
        let Some(connection) = reactor.connection_mut(&handle) else {
            return Found::Gone;
        };
        if connection
            .extras
            .as_ref()
            .is_some_and(|e| e.session.is_some())
        {
            return Found::Loaded;
        }
        let tls = connection_is_tls(connection);
        let mut config = connection.worker.session.borrow_mut();
        if config.is_none() {
            match SessionConfig::default_files() {
                Ok(default) => *config = Some(Rc::new(default)),
                Err(error) => {
                    log::warn!("no session store: {error}");
                    return Found::Gone;
                }
            }
        }
        match config.as_ref() {
            Some(config) => Found::Config(config.clone(), tls),
            None => Found::Gone,
        }
    });
    let (config, tls) = match found {
        Some(Found::Config(config, tls)) => (config, tls),
        Some(Found::Loaded) => return session,
        _ => return Session { connection: None },
    };
    let cookie_id = request
        .cookie(&config.name)
        .filter(|id| is_valid_session_id(id))
        .map(str::to_owned);
    let (id, data, unreadable) = match cookie_id {
        Some(id) => {
            let loaded = Rc::new(RefCell::new(None));
            let slot = loaded.clone();
            config.handler.read(
                &id,
                config.lifetime,
                Box::new(move |result| *slot.borrow_mut() = Some(result)),
            );
            let result = loaded.borrow_mut().take();
            match result {
                Some(Ok(bytes)) => (id, decode(&bytes), false),
                Some(Err(error)) => {
                    log::warn!("session {id} not read: {error}");
                    (id, Vec::new(), true)
                }
                None => {
                    // A handler that answers later without saying so (`completes_later`):
                    // its data is not here; never overwrite what it holds.
                    log::warn!("session {id}: the handler did not answer at once");
                    (id, Vec::new(), true)
                }
            }
        }
        None => match new_session_id() {
            Ok(id) => {
                queue_cookie(&handle, &config.name, config.cookie(&id, tls));
                (id, Vec::new(), false)
            }
            Err(error) => {
                log::warn!("no session id: {error}");
                return Session { connection: None };
            }
        },
    };
    let state = SessionState {
        config,
        id,
        data,
        dirty: false,
        unreadable,
        retired: Vec::new(),
    };
    reactor::try_with(|reactor| {
        if let Some(connection) = reactor.connection_mut(&handle) {
            connection.extras().session = Some(Box::new(state));
        }
    });
    session
}

/// Whether the connection's session changed since it was loaded or saved.
/// The answer to a request whose session could not be read.
const SERVICE_UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 31\r\n\r\n\
Session store unavailable, retry";

/// A request arrived on a worker whose session handler completes later: when it carries a
/// valid session cookie, it is held on its connection while the handler reads the session
/// (`None`: held; it is delivered when the read calls back). Otherwise it comes back, to be
/// delivered now.
#[cold]
pub(crate) fn hold_for_read(handle: &TcpConnection, request: Request) -> Option<Request> {
    let config = reactor::try_with(|reactor| {
        let connection = reactor.connection(handle)?;
        connection.worker.session.borrow().clone()
    })
    .flatten();
    let Some(config) = config else {
        return Some(request);
    };
    let Some(id) = request
        .cookie(&config.name)
        .filter(|id| is_valid_session_id(id))
        .map(str::to_owned)
    else {
        return Some(request);
    };
    let mut request = Some(request);
    reactor::try_with(|reactor| {
        if let Some(connection) = reactor.connection_mut(handle) {
            connection.extras().held_request = request.take().map(Box::new);
        }
    });
    if request.is_some() {
        // The connection is gone: nothing to deliver to.
        return None;
    }
    let resumed = handle.clone();
    let resumed_config = config.clone();
    let read_id = id.clone();
    config.handler.read(
        &read_id,
        config.lifetime,
        Box::new(move |result| resume(&resumed, resumed_config, id, result)),
    );
    None
}

/// The held request's session was read (or failed to be): deliver the request with its
/// session installed, or answer it 503.
fn resume(
    handle: &TcpConnection,
    config: Rc<SessionConfig>,
    id: String,
    result: io::Result<Vec<u8>>,
) {
    let request = reactor::try_with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        if connection.status != TcpConnection::STATUS_ESTABLISHED {
            return None;
        }
        connection.extras.as_mut()?.held_request.take()
    })
    .flatten();
    let Some(request) = request else {
        // Closed while the read was pending.
        return;
    };
    match result {
        Ok(bytes) => {
            let state = SessionState {
                config,
                data: decode(&bytes),
                id,
                dirty: false,
                unreadable: false,
                retired: Vec::new(),
            };
            reactor::try_with(|reactor| {
                if let Some(connection) = reactor.connection_mut(handle) {
                    connection.extras().session = Some(Box::new(state));
                }
            });
            crate::connection::io::deliver(handle, crate::protocols::Message::Request(*request));
            crate::connection::http::after_on_message(handle);
        }
        Err(error) => {
            log::warn!(
                "connection {}: session {id} not read ({error}), answering 503",
                handle.id()
            );
            crate::connection::io::send_raw(handle, SERVICE_UNAVAILABLE);
            reactor::try_with(|reactor| {
                if let Some(connection) = reactor.connection_mut(handle) {
                    connection.http.awaiting_response = false;
                }
            });
            crate::connection::io::close(handle);
        }
    }
}

pub(crate) fn is_dirty(connection: &crate::connection::Connection) -> bool {
    (connection.extras.as_ref())
        .and_then(|extras| extras.session.as_ref())
        .is_some_and(|state| state.dirty && !state.unreadable)
}

/// Forgets the session of the request answered before (a new request begins).
pub(crate) fn forget(connection: &mut crate::connection::Connection) {
    if let Some(extras) = connection.extras.as_mut() {
        extras.session = None;
    }
}

/// Saves the connection's session if it changed: writes it (destroys it when empty), removes
/// retired ids, and now and then collects garbage. Handler errors are logged.
pub(crate) fn save(handle: &TcpConnection) {
    let work = reactor::try_with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        if !is_dirty(connection) {
            return None;
        }
        let state = connection.extras.as_mut()?.session.as_deref_mut()?;
        state.dirty = false;
        let data = (!state.data.is_empty()).then(|| encode(&state.data));
        Some((
            state.config.clone(),
            state.id.clone(),
            data,
            std::mem::take(&mut state.retired),
        ))
    })
    .flatten();
    let Some((config, id, data, retired)) = work else {
        return;
    };
    let handler = &config.handler;
    for old in retired {
        handler.destroy(&old, report("destroy", old.clone()));
    }
    match data {
        Some(data) => handler.write(&id, data, config.lifetime, report("write", id.clone())),
        None => handler.destroy(&id, report("destroy", id.clone())),
    }
    let (numerator, denominator) = config.gc_probability;
    let mut roll = [0u8; 4];
    if numerator > 0
        && random_bytes(&mut roll).is_ok()
        && u32::from_le_bytes(roll) % denominator < numerator
    {
        handler.gc(config.lifetime);
    }
}

fn report(operation: &'static str, id: String) -> SessionDone<()> {
    Box::new(move |result| {
        if let Err(error) = result {
            log::warn!("session {id}: {operation} failed: {error}");
        }
    })
}

/// What a handler stores: a magic line, then `name` and `value` pairs, each a little-endian
/// `u32` length and its bytes.
const MAGIC: &[u8] = b"wmrs-session-1\n";

fn encode(data: &[(String, String)]) -> Vec<u8> {
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
fn decode(bytes: &[u8]) -> Vec<(String, String)> {
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

    #[test]
    fn file_handler_writes_atomically_expires_and_refuses_bad_ids() {
        let directory =
            std::env::temp_dir().join(format!("wm-session-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        let handler = FileSessionHandler::new(&directory).unwrap();
        let id = new_session_id().unwrap();
        let lifetime = Duration::from_secs(60);
        handler.write_file(&id, b"one").unwrap();
        handler.write_file(&id, b"two").unwrap();
        assert_eq!(handler.read_file(&id, lifetime).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&directory)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("session_{id}")], "no temporary file left");
        assert!(handler.write_file("../escape-attempt-000", b"x").is_err());
        assert_eq!(
            handler
                .read_file("../escape-attempt-000", lifetime)
                .unwrap(),
            b""
        );
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(handler.read_file(&id, Duration::from_secs(1)).unwrap(), b"");
        assert!(
            !directory.join(format!("session_{id}")).exists(),
            "expired file removed"
        );
        let _ = std::fs::remove_dir_all(&directory);
    }
}
