//! The I/O side of HTTP sessions (the codec's side is `protocols/http/session.rs`: the settings,
//! the handler trait, ids, the stored form): the [`Session`] handle, which reads and changes the
//! session kept with its connection, `Request::session`, which loads it, the save when
//! `on_message` returns (the save itself is in `session_save.rs`, which the write path also
//! reaches when a response completes), the requests held while a handler that completes later
//! reads, and the
//! handlers that do I/O: [`FileSessionHandler`] here, `RedisSessionHandler` in
//! `connection/session_redis.rs`. All of them are public at `workerman::protocols::http`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::output;
use super::session_save::{is_dirty, save};
use super::table::try_with;
use super::{Connection, TcpConnection};
use crate::protocols::http::Request;
use crate::protocols::http::session::{
    SessionConfig, SessionDone, SessionHandler, SessionState, decode, hex, is_valid_session_id,
    new_session_id, random_bytes,
};

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
        try_with(|table| {
            let state = table.connection_mut(connection)?.extras.as_mut()?;
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
        let cookie = try_with(|table| {
            let tls = table.connection(connection).is_some_and(connection_is_tls);
            let state = table.connection_mut(connection)?.extras.as_mut()?;
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
fn connection_is_tls(_connection: &Connection) -> bool {
    false
}

/// Queues the session cookie on the connection's headers, replacing an earlier one of this
/// name (a regenerated id) and keeping other cookies.
fn queue_cookie(connection: &TcpConnection, name: &str, cookie: String) {
    let prefix = format!("{name}=");
    try_with(|table| {
        if let Some(state) = table.connection_mut(connection) {
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

/// What `open` finds on the connection: a session already loaded, or the worker's settings
/// (made the default on first use) and whether the connection is over TLS.
enum Found {
    Loaded,
    Config(Rc<SessionConfig>, bool),
    Gone,
}

/// `on_message` returned: the request's session is saved if it changed.
///
/// Only a request that opened its session costs anything here: `request.session()` raises a
/// per-thread flag, read (and lowered) with one thread-local access per request.
#[inline]
pub(crate) fn after_on_message(handle: &TcpConnection) {
    if take_opened() {
        save_after_on_message(handle);
    }
}

#[cold]
fn save_after_on_message(handle: &TcpConnection) {
    let dirty = super::table::with(|table| {
        table
            .connection(handle)
            .is_some_and(|connection| connection.extras.is_some() && is_dirty(connection))
    });
    if dirty {
        save(handle);
    }
}

fn find_config(handle: &TcpConnection) -> Option<Found> {
    try_with(|table| {
        let Some(connection) = table.connection_mut(handle) else {
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
            match default_files() {
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
    })
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
    let found = find_config(&handle);
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
        Some(id) => read_now(&config, id),
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
    try_with(|table| {
        if let Some(connection) = table.connection_mut(&handle) {
            connection.extras().session = Some(Box::new(state));
        }
    });
    session
}

/// Reads a session from a handler that answers at once: its id, data and whether it could not
/// be read (then it is never saved, so what the store holds is not overwritten).
fn read_now(config: &SessionConfig, id: String) -> (String, Vec<(String, String)>, bool) {
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
            // A handler that answers later without saying so (`completes_later`): its data is
            // not here; never overwrite what it holds.
            log::warn!("session {id}: the handler did not answer at once");
            (id, Vec::new(), true)
        }
    }
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
    let config = try_with(|table| {
        let connection = table.connection(handle)?;
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
    try_with(|table| {
        if let Some(connection) = table.connection_mut(handle) {
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
    let request = try_with(|table| {
        let connection = table.connection_mut(handle)?;
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
            try_with(|table| {
                if let Some(connection) = table.connection_mut(handle) {
                    connection.extras().session = Some(Box::new(state));
                }
            });
            output::deliver(handle, crate::protocols::Message::Request(*request));
            after_on_message(handle);
        }
        Err(error) => {
            log::warn!(
                "connection {}: session {id} not read ({error}), answering 503",
                handle.id()
            );
            output::send_raw(handle, SERVICE_UNAVAILABLE);
            try_with(|table| {
                if let Some(connection) = table.connection_mut(handle) {
                    connection.http.awaiting_response = false;
                }
            });
            output::close(handle);
        }
    }
}

/// Forgets the session of the request answered before (a new request begins).
pub(crate) fn forget(connection: &mut Connection) {
    if let Some(extras) = connection.extras.as_mut() {
        extras.session = None;
    }
}

/// The default settings: files in the system's temporary directory (Workerman's default
/// handler).
fn default_files() -> io::Result<SessionConfig> {
    let directory = std::env::temp_dir().join("workerman-sessions");
    Ok(SessionConfig::new(FileSessionHandler::new(directory)?))
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

#[cfg(test)]
mod tests {
    use super::*;

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
