//! Signals through a self-pipe: the handler only writes the signal's number to a socket; the
//! master's loop (`poll`) or a worker's reactor (a mio registration) reads it and acts. No code
//! but that one `write` runs inside a signal handler.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

/// Where the handler writes: the sending end of this process's signal socket (-1: none).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Hard stop (Workerman: SIGINT, SIGTERM, SIGHUP, SIGTSTP).
pub(crate) const STOP: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGTSTP];
/// Graceful stop.
pub(crate) const GRACEFUL_STOP: libc::c_int = libc::SIGQUIT;
/// Reload, one worker at a time.
pub(crate) const RELOAD: libc::c_int = libc::SIGUSR1;
/// Graceful reload.
pub(crate) const GRACEFUL_RELOAD: libc::c_int = libc::SIGUSR2;
/// Status (Workerman's SIGIOT, which Linux names SIGABRT).
pub(crate) const STATUS: libc::c_int = libc::SIGABRT;
/// Connections listing.
pub(crate) const CONNECTIONS: libc::c_int = libc::SIGIO;

/// Every signal the process model handles (the master also wants `SIGCHLD`).
const HANDLED: [libc::c_int; 9] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGTSTP,
    GRACEFUL_STOP,
    RELOAD,
    GRACEFUL_RELOAD,
    STATUS,
    CONNECTIONS,
];

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: `__errno_location` and `write` are async-signal-safe; errno is restored so the
    // interrupted code never sees the handler's. The fd is a non-blocking socket (a full buffer
    // drops the byte, which only loses a duplicate signal) or -1, which `write` rejects.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = signal as u8;
        libc::write(
            WRITE_FD.load(Ordering::Relaxed),
            (&byte as *const u8).cast(),
            1,
        );
        *libc::__errno_location() = errno;
    }
}

/// Installs the handlers for this process: a new signal socket (closing the one inherited from a
/// parent, if any), `SIGPIPE` ignored, `SIGCHLD` reported when `children` is set. Returns the
/// receiving end, non-blocking.
pub(crate) fn install(children: bool) -> io::Result<UnixStream> {
    let (receiver, sender) = UnixStream::pair()?;
    receiver.set_nonblocking(true)?;
    sender.set_nonblocking(true)?;
    let old = WRITE_FD.swap(sender.into_raw_fd(), Ordering::SeqCst);
    if old >= 0 {
        // SAFETY: `old` is the sending end this process got from `install` in its parent; nothing
        // else owns it, and the handler now writes to the new one.
        unsafe { libc::close(old) };
    }
    for &signal in &HANDLED {
        set_handler(signal, on_signal as *const () as libc::sighandler_t)?;
    }
    let child = if children {
        on_signal as *const () as libc::sighandler_t
    } else {
        libc::SIG_DFL
    };
    set_handler(libc::SIGCHLD, child)?;
    set_handler(libc::SIGPIPE, libc::SIG_IGN)?;
    Ok(receiver)
}

fn set_handler(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed `sigaction` is a valid value to fill in; the handler is `on_signal` (which
    // is async-signal-safe), SIG_DFL or SIG_IGN.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Every signal number waiting in `receiver`, in arrival order.
pub(crate) fn take(receiver: &mut impl Read) -> Vec<libc::c_int> {
    let mut signals = Vec::new();
    let mut buffer = [0u8; 64];
    loop {
        match receiver.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => signals.extend(buffer[..count].iter().map(|&b| libc::c_int::from(b))),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    signals
}

/// Blocks every signal until the returned mask is restored (around `fork`, so a signal meant
/// for a new worker never reaches the master's handler through the inherited socket).
pub(crate) fn block_all() -> libc::sigset_t {
    // SAFETY: the sets are plain values filled by the libc calls; `sigprocmask` with valid
    // pointers cannot fail for SIG_SETMASK.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a mask from [`block_all`]; pending signals are delivered now.
pub(crate) fn restore(mask: &libc::sigset_t) {
    // SAFETY: `mask` came from `sigprocmask`.
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// Waits up to `timeout` for `receiver` to become readable.
pub(crate) fn wait_readable(receiver: &UnixStream, timeout: std::time::Duration) {
    let mut poll_fd = libc::pollfd {
        fd: receiver.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid `pollfd`; EINTR is fine (the caller looks again).
    unsafe {
        libc::poll(&mut poll_fd, 1, millis);
    }
}

/// Sends `signal` to `pid`; `false` when the process does not exist.
pub(crate) fn send(pid: libc::pid_t, signal: libc::c_int) -> bool {
    // SAFETY: `kill` has no memory effects.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether `pid` names a live process (one we may not signal counts as live).
pub(crate) fn alive(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks.
    let result = unsafe { libc::kill(pid, 0) };
    let exists = result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie (ended, not yet reaped by its parent) still takes signals: it is not alive.
    exists && !zombie(pid)
}

fn zombie(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(") ")?;
            after_name.chars().next()
        })
        == Some('Z')
}

/// A signal's name for logs.
pub(crate) fn name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGABRT => "SIGIOT",
        libc::SIGIO => "SIGIO",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        _ => "signal",
    }
}
