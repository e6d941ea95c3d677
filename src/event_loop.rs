//! Your own file descriptors and signals on the worker's reactor: Workerman's
//! `Worker::$globalEvent->onReadable($fd, $cb)`, `offReadable`, `onWritable`, `offWritable`,
//! `onSignal`, `offSignal`, as [`EventLoop::on_readable`] and friends.
//!
//! Level-triggered, as Workerman's: a callback is called again, turn after turn, as long as its
//! fd is readable (writable) and registered. mio is edge-triggered, so after each callback the
//! fd is re-armed (`epoll_ctl(EPOLL_CTL_MOD)`, which reports it again in the next turn when it is
//! still ready): a callback may read a little at a time, and other events get their turn in
//! between. Every registration ends when the worker stops (the fd itself stays open: it is yours).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::connection::table::{self, call_user};

thread_local! {
    /// This thread's raw fds and signal callbacks, while a worker runs here (the reactor
    /// installs them).
    static SOURCES: RefCell<Option<Sources>> = const { RefCell::new(None) };
}

/// Gives this thread its (empty) set of sources.
pub(crate) fn install() {
    SOURCES.with(|cell| *cell.borrow_mut() = Some(Sources::default()));
}

/// Ends every registration of this thread (the worker stopped).
pub(crate) fn uninstall() {
    let sources = SOURCES.with(|cell| cell.borrow_mut().take());
    drop(sources);
}

/// Runs `f` on this thread's sources and the reactor's registry; panics with `who` named when
/// no worker runs here.
fn with_running<R>(who: &str, f: impl FnOnce(&mut Sources, &mio::Registry) -> R) -> R {
    try_with(f).unwrap_or_else(|| table::not_running(who))
}

/// Runs `f` on this thread's sources and the reactor's registry, or returns `None` when no
/// worker runs here.
fn try_with<R>(f: impl FnOnce(&mut Sources, &mio::Registry) -> R) -> Option<R> {
    table::try_with(|table| {
        SOURCES.with(|cell| Some(f(cell.borrow_mut().as_mut()?, table.poll.registry())))
    })
    .flatten()
}

/// Runs `f` on this thread's sources; only for code that runs inside the loop.
fn with<R>(f: impl FnOnce(&mut Sources, &mio::Registry) -> R) -> R {
    with_running("the reactor", f)
}

/// Tokens of raw fds count up from here (connections are slab keys far below, listeners count
/// down from `usize::MAX / 2`). A token is never reused, so an event still queued for a removed
/// fd never reaches a new registration of the same fd.
const FIRST_TOKEN: usize = usize::MAX / 4;
const LAST_TOKEN: usize = usize::MAX / 2 - 4096;

/// Whether `token` belongs to a raw fd registered here.
pub(crate) fn owns(token: Token) -> bool {
    (FIRST_TOKEN..LAST_TOKEN).contains(&token.0)
}

type FdCallback = Rc<dyn Fn(RawFd)>;
type SignalCallback = Rc<dyn Fn(i32)>;

struct Source {
    token: Token,
    read: Option<FdCallback>,
    write: Option<FdCallback>,
}

impl Source {
    fn interest(&self) -> Option<Interest> {
        match (self.read.is_some(), self.write.is_some()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

/// A reactor's raw fds and signal callbacks.
#[derive(Default)]
pub(crate) struct Sources {
    by_fd: HashMap<RawFd, Source>,
    by_token: HashMap<Token, RawFd>,
    next_token: usize,
    signal_slot: Option<SignalSlot>,
    signals: HashMap<i32, SignalCallback>,
}

impl Drop for Sources {
    fn drop(&mut self) {
        for &signal in self.signals.keys() {
            unwant(signal);
        }
        if let Some(slot) = self.signal_slot.take() {
            slot.release();
        }
    }
}

/// Sets (`Some`) or clears (`None`) one direction's callback of `fd` and updates its
/// registration.
fn update(fd: RawFd, readable: bool, callback: Option<FdCallback>) -> io::Result<bool> {
    with_running("EventLoop", |sources, registry| {
        let existed = sources.by_fd.contains_key(&fd);
        if !existed && callback.is_none() {
            return Ok(false);
        }
        if !existed {
            let token = Token(FIRST_TOKEN + sources.next_token);
            sources.next_token += 1;
            sources.by_fd.insert(
                fd,
                Source {
                    token,
                    read: None,
                    write: None,
                },
            );
        }
        let source = sources.by_fd.get_mut(&fd).expect("just inserted");
        let had = if readable {
            std::mem::replace(&mut source.read, callback).is_some()
        } else {
            std::mem::replace(&mut source.write, callback).is_some()
        };
        let token = source.token;
        let registered = match source.interest() {
            None => {
                sources.by_fd.remove(&fd);
                sources.by_token.remove(&token);
                registry.deregister(&mut SourceFd(&fd))
            }
            Some(interest) if existed => registry.reregister(&mut SourceFd(&fd), token, interest),
            Some(interest) => {
                let registered = registry.register(&mut SourceFd(&fd), token, interest);
                if registered.is_ok() {
                    sources.by_token.insert(token, fd);
                } else {
                    sources.by_fd.remove(&fd);
                }
                registered
            }
        };
        registered.map(|()| had)
    })
}

/// An event for a raw fd: call its callbacks (no borrow held), then re-arm it (level-triggered).
pub(crate) fn on_event(token: Token, readable: bool, writable: bool) {
    let callback = |readable: bool| {
        with(|sources, _| {
            let fd = *sources.by_token.get(&token)?;
            let source = sources.by_fd.get(&fd)?;
            let callback = if readable {
                source.read.clone()
            } else {
                source.write.clone()
            };
            callback.map(|callback| (fd, callback))
        })
    };
    if readable {
        if let Some((fd, read)) = callback(true) {
            call_user(&|| format!("the readable callback of fd {fd}"), || read(fd));
        }
    }
    if writable {
        // Looked up again: the read callback may have removed it.
        if let Some((fd, write)) = callback(false) {
            call_user(&|| format!("the writable callback of fd {fd}"), || {
                write(fd)
            });
        }
    }
    with(|sources, registry| {
        let Some(&fd) = sources.by_token.get(&token) else {
            return;
        };
        let Some(interest) = sources.by_fd.get(&fd).and_then(Source::interest) else {
            return;
        };
        let rearmed = registry.reregister(&mut SourceFd(&fd), token, interest);
        if let Err(error) = rearmed {
            // Closed without `off_readable`/`off_writable` first: nothing to watch any more.
            log::warn!("fd {fd} is no longer watched: {error}");
            sources.by_fd.remove(&fd);
            sources.by_token.remove(&token);
        }
    });
}

/// The reactor's raw fds and signals (Workerman's `Worker::$globalEvent`), as associated
/// functions like [`Timer`](crate::Timer)'s: call them from any callback of a running worker.
///
/// Level-triggered, as Workerman's event loops: while `fd` is readable, its callback is called
/// again every turn until it reads everything or calls [`off_readable`](Self::off_readable);
/// the same for writable (a socket with room in its send buffer is always writable: register
/// `on_writable` only while you have something to write). End of file counts as readable, so
/// a callback that reads 0 bytes should call `off_readable`. The fd should be non-blocking: a
/// callback that blocks freezes the reactor. Callbacks are caught when they panic, like every
/// callback. Registrations end when the worker stops; the fd is never closed here. Calling
/// `off_*` from inside a callback (its own or another's) is safe.
///
/// ```no_run
/// use std::io::Read;
/// use std::os::fd::AsRawFd;
/// use workerman::{EventLoop, Worker};
///
/// let mut worker = Worker::without_listener();
/// worker.on_worker_start(|_| {
///     let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
///     reader.set_nonblocking(true).unwrap();
///     let fd = reader.as_raw_fd();
///     EventLoop::on_readable(fd, move |fd| {
///         let mut buffer = [0u8; 4096];
///         match (&reader).read(&mut buffer) {
///             Ok(0) => {
///                 EventLoop::off_readable(fd);
///             }
///             Ok(count) => println!("{count} bytes"),
///             Err(_) => {}
///         }
///     })
///     .unwrap();
///     std::mem::forget(writer);
/// });
/// Worker::run_all();
/// ```
pub struct EventLoop {
    _not_constructible: (),
}

impl EventLoop {
    /// Calls `callback(fd)` whenever `fd` is readable (Workerman's `onReadable`); replaces the
    /// readable callback `fd` had. Errors when `fd` cannot be watched (not open; or a regular
    /// file, which epoll refuses: files are always ready, read them on the blocking pool).
    ///
    /// # Panics
    /// When no worker runs on this thread.
    ///
    /// ```no_run
    /// # let fd = 0;
    /// workerman::EventLoop::on_readable(fd, |fd| println!("{fd} is readable")).unwrap();
    /// ```
    pub fn on_readable(fd: RawFd, callback: impl Fn(RawFd) + 'static) -> io::Result<()> {
        update(fd, true, Some(Rc::new(callback))).map(drop)
    }

    /// Stops watching `fd` for reading (Workerman's `offReadable`); `true` if it was watched.
    ///
    /// ```no_run
    /// # let fd = 0;
    /// workerman::EventLoop::off_readable(fd);
    /// ```
    pub fn off_readable(fd: RawFd) -> bool {
        update(fd, true, None).unwrap_or(true)
    }

    /// Calls `callback(fd)` whenever `fd` is writable (Workerman's `onWritable`); replaces the
    /// writable callback `fd` had. Level-triggered: remove it when you have nothing to write.
    ///
    /// # Panics
    /// When no worker runs on this thread.
    ///
    /// ```no_run
    /// # let fd = 1;
    /// workerman::EventLoop::on_writable(fd, |fd| {
    ///     workerman::EventLoop::off_writable(fd);
    /// })
    /// .unwrap();
    /// ```
    pub fn on_writable(fd: RawFd, callback: impl Fn(RawFd) + 'static) -> io::Result<()> {
        update(fd, false, Some(Rc::new(callback))).map(drop)
    }

    /// Stops watching `fd` for writing (Workerman's `offWritable`); `true` if it was watched.
    ///
    /// ```no_run
    /// # let fd = 1;
    /// workerman::EventLoop::off_writable(fd);
    /// ```
    pub fn off_writable(fd: RawFd) -> bool {
        update(fd, false, None).unwrap_or(true)
    }

    /// Calls `callback(signal)` on this worker's reactor each time the process gets `signal`
    /// (Workerman's `onSignal`); replaces the callback it had. For signals of your app's own
    /// (`SIGWINCH`, `SIGURG`, `SIGUSR`-like real-time signals `libc::SIGRTMIN() + n`, ...): the
    /// ones the process model owns are refused with [`io::ErrorKind::InvalidInput`] (`SIGINT`,
    /// `SIGTERM`, `SIGHUP`, `SIGTSTP` stop; `SIGQUIT` stops gracefully; `SIGUSR1`, `SIGUSR2`
    /// reload; `SIGIOT`/`SIGABRT` is `status`; `SIGIO` is `connections`; `SIGCHLD`, `SIGPIPE`),
    /// as are `SIGKILL`, `SIGSTOP` and the fault signals (`SIGSEGV`, `SIGBUS`, `SIGFPE`,
    /// `SIGILL`, `SIGTRAP`, `SIGSYS`).
    ///
    /// Signals are process-wide: every worker thread of the process that asked for `signal` (in
    /// tests, every [`Worker::spawn`](crate::Worker::spawn)) gets each one; signals that arrive
    /// close together may be merged into one call. Under [`Worker::run_all`](crate::Worker::run_all),
    /// send it to the worker processes (their pids are in `status`), not the master, which does
    /// not listen for it. When the last worker of the process that wanted it stops (or calls
    /// [`off_signal`](Self::off_signal)), the signal's previous disposition is restored.
    ///
    /// # Panics
    /// When no worker runs on this thread.
    ///
    /// ```no_run
    /// use workerman::{EventLoop, Worker};
    ///
    /// let mut worker = Worker::new("http://0.0.0.0:8080");
    /// worker.on_worker_start(|_| {
    ///     EventLoop::on_signal(libc::SIGWINCH, |_| println!("reopening the log")).unwrap();
    /// });
    /// Worker::run_all();
    /// ```
    pub fn on_signal(signal: i32, callback: impl Fn(i32) + 'static) -> io::Result<()> {
        refuse_owned(signal)?;
        let needs_slot = with_running("EventLoop::on_signal", |sources, _| {
            sources.signal_slot.is_none()
        });
        if needs_slot {
            let slot = SignalSlot::lease()?;
            let fd = slot.reader.as_raw_fd();
            if let Err(error) = update(fd, true, Some(Rc::new(on_signal_bytes))) {
                slot.release();
                return Err(error);
            }
            with(|sources, _| sources.signal_slot = Some(slot));
        }
        let had = with(|sources, _| sources.signals.insert(signal, Rc::new(callback)).is_some());
        if !had {
            if let Err(error) = want(signal) {
                with(|sources, _| sources.signals.remove(&signal));
                return Err(error);
            }
        }
        Ok(())
    }

    /// Stops calling the callback for `signal` (Workerman's `offSignal`); `true` if there was
    /// one.
    ///
    /// ```no_run
    /// workerman::EventLoop::off_signal(libc::SIGWINCH);
    /// ```
    pub fn off_signal(signal: i32) -> bool {
        let had = try_with(|sources, _| sources.signals.remove(&signal).is_some()).unwrap_or(false);
        if had {
            unwant(signal);
        }
        had
    }
}

/// The readable callback of a reactor's signal socket: each byte is a signal number.
fn on_signal_bytes(_fd: RawFd) {
    let received = with(|sources, _| {
        let Some(slot) = sources.signal_slot.as_mut() else {
            return Vec::new();
        };
        crate::process::signals::take(&mut slot.reader)
    });
    let mut seen = Vec::new();
    for signal in received {
        if seen.contains(&signal) {
            continue;
        }
        seen.push(signal);
        let callback = with(|sources, _| sources.signals.get(&signal).cloned());
        if let Some(callback) = callback {
            call_user(&|| format!("the callback of signal {signal}"), || {
                callback(signal)
            });
        }
    }
}

fn refuse_owned(signal: i32) -> io::Result<()> {
    use crate::process::signals::name;
    let owner = match signal {
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGTSTP => Some("it stops the worker"),
        libc::SIGQUIT => Some("it stops the worker gracefully"),
        libc::SIGUSR1 | libc::SIGUSR2 => Some("it reloads the worker"),
        libc::SIGABRT => Some("it asks for status"),
        libc::SIGIO => Some("it asks for connections"),
        libc::SIGCHLD => Some("the master watches its workers with it"),
        libc::SIGPIPE => Some("it is ignored so a closed peer cannot kill the process"),
        libc::SIGKILL | libc::SIGSTOP => Some("no process can catch it"),
        libc::SIGSEGV
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGSYS => Some("it reports a fault that returning from a handler repeats"),
        _ => None,
    };
    if let Some(owner) = owner {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "EventLoop::on_signal({} = {signal}): the process model owns it ({owner}); use \
                 another, e.g. SIGWINCH, SIGURG or libc::SIGRTMIN() + n",
                name(signal)
            ),
        ));
    }
    if signal <= 0 || signal > libc::SIGRTMAX() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("EventLoop::on_signal({signal}): no such signal"),
        ));
    }
    Ok(())
}

/// How many reactors of the process may take signals at once.
const SLOTS: usize = 64;

/// The sending end of each leased slot's socket (-1: free); the handler writes to each.
static SLOT_WRITERS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Socket pairs of released slots, kept open for the next lease: a pair is never closed, so a
/// handler that loaded a writer just before its release never writes into a reused fd number.
static FREE_SLOTS: Mutex<Vec<SignalSlot>> = Mutex::new(Vec::new());
static SLOTS_MADE: Mutex<usize> = Mutex::new(0);

/// One reactor's signal socket.
struct SignalSlot {
    index: usize,
    reader: UnixStream,
    writer: UnixStream,
}

impl SignalSlot {
    fn lease() -> io::Result<SignalSlot> {
        let reused = FREE_SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let mut slot = match reused {
            Some(slot) => slot,
            None => {
                let mut made = SLOTS_MADE
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if *made == SLOTS {
                    return Err(io::Error::other(format!(
                        "EventLoop::on_signal: more than {SLOTS} workers of this process take \
                         signals"
                    )));
                }
                let (reader, writer) = UnixStream::pair()?;
                reader.set_nonblocking(true)?;
                writer.set_nonblocking(true)?;
                *made += 1;
                SignalSlot {
                    index: *made - 1,
                    reader,
                    writer,
                }
            }
        };
        // A byte written just before the last release belongs to nobody.
        crate::process::signals::take(&mut slot.reader);
        SLOT_WRITERS[slot.index].store(slot.writer.as_raw_fd(), Ordering::SeqCst);
        Ok(slot)
    }

    fn release(self) {
        SLOT_WRITERS[self.index].store(-1, Ordering::SeqCst);
        FREE_SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(self);
    }
}

extern "C" fn on_app_signal(signal: libc::c_int) {
    // SAFETY: only atomics loads, `send` and errno access, all async-signal-safe; errno is
    // restored so the interrupted code never sees the handler's. Every fd is a non-blocking
    // socket that is never closed (see `FREE_SLOTS`) or -1, which `send` rejects; MSG_NOSIGNAL
    // keeps a broken pipe from raising SIGPIPE, a full buffer only drops a duplicate.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = signal as u8;
        for writer in &SLOT_WRITERS {
            let fd = writer.load(Ordering::Relaxed);
            if fd >= 0 {
                libc::send(
                    fd,
                    (&byte as *const u8).cast(),
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
        }
        *libc::__errno_location() = errno;
    }
}

/// How many reactors want each signal, and the disposition each had before the first did.
struct Wanted {
    count: usize,
    previous: libc::sigaction,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, a mask, flags); moving it between
// threads is sound.
unsafe impl Send for Wanted {}

static WANTED: Mutex<Option<HashMap<i32, Wanted>>> = Mutex::new(None);

fn want(signal: i32) -> io::Result<()> {
    let mut wanted = WANTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let wanted = wanted.get_or_insert_with(HashMap::new);
    if let Some(entry) = wanted.get_mut(&signal) {
        entry.count += 1;
        return Ok(());
    }
    // SAFETY: zeroed `sigaction`s are valid to fill in; the handler is `on_app_signal`, which is
    // async-signal-safe; `previous` receives the old disposition.
    let previous = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut previous: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_app_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, &mut previous) != 0 {
            return Err(io::Error::last_os_error());
        }
        previous
    };
    wanted.insert(signal, Wanted { count: 1, previous });
    Ok(())
}

fn unwant(signal: i32) {
    let mut wanted = WANTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(wanted) = wanted.as_mut() else {
        return;
    };
    let Some(entry) = wanted.get_mut(&signal) else {
        return;
    };
    entry.count -= 1;
    if entry.count == 0 {
        let entry = wanted.remove(&signal).expect("present");
        // SAFETY: restores the disposition `sigaction` reported before ours.
        unsafe {
            libc::sigaction(signal, &entry.previous, std::ptr::null_mut());
        }
    }
}
