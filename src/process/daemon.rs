//! `-d`: fork, `setsid`, fork (Workerman's `daemonize`), and the stdio redirect that follows.
//!
//! Unlike Workerman, the shell's `start -d` waits until the master says it is running (pid file
//! written, workers forked) or why it could not: a readiness pipe from the master to the process
//! the user started.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The master's end of the readiness pipe; dropping it without [`Ready::done`] reports a failure.
pub(crate) struct Ready(File);

impl Ready {
    /// Tells the waiting shell the server runs (before the workers are forked, so none of them
    /// holds the pipe open).
    pub(crate) fn done(mut self) {
        let _ = self.0.write_all(b"ok");
    }

    /// Tells the waiting shell why the server could not start.
    pub(crate) fn fail(mut self, message: &str) {
        let _ = self.0.write_all(message.as_bytes());
    }
}

/// Detaches from the terminal. Returns in the daemon (the future master) only: the process the
/// user started waits for [`Ready`] and exits 0 (running) or 1 (with the master's message); the
/// middle process exits at once.
///
/// Must run before any thread exists.
pub(crate) fn daemonize() -> io::Result<Ready> {
    let (reader, writer) = pipe()?;
    flush_stdio();
    // SAFETY: `run_all` calls this from the program's only thread (no worker, timer or test
    // thread exists in a process that runs `run_all`), so the child gets a consistent copy of
    // memory; it only calls `setsid` and `fork` before returning into Rust code of its own.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(reader);
            // SAFETY: the child has one thread; `setsid` makes it a session leader without a
            // controlling terminal, the second `fork` makes sure it never gets one again.
            unsafe {
                libc::setsid();
                match libc::fork() {
                    -1 => libc::_exit(1),
                    0 => Ok(Ready(File::from(writer))),
                    _ => libc::_exit(0),
                }
            }
        }
        middle => {
            drop(writer);
            let mut answer = String::new();
            let _ = File::from(reader).read_to_string(&mut answer);
            let mut status = 0;
            // SAFETY: reaps the middle process (it exited right after its fork).
            unsafe { libc::waitpid(middle, &mut status, 0) };
            if answer == "ok" {
                std::process::exit(0);
            }
            if answer.is_empty() {
                answer = "the master process ended before it was ready (see the log file)".into();
            }
            eprintln!("{answer}");
            std::process::exit(1);
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` fills two fds we then own; O_CLOEXEC keeps them out of anything exec'd.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn flush_stdio() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

/// Points stdin at `/dev/null` and stdout and stderr at `stdout_file` (Workerman's `resetStd`;
/// `/dev/null` by default).
pub(crate) fn redirect_stdio(stdout_file: &Path) -> io::Result<()> {
    flush_stdio();
    let null = File::open("/dev/null")?;
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(stdout_file)
        .or_else(|_| OpenOptions::new().write(true).open("/dev/null"))?;
    // SAFETY: `dup2` onto 0, 1 and 2 with fds we hold open; the originals are closed by the
    // kernel as part of `dup2`.
    unsafe {
        if libc::dup2(null.as_raw_fd(), 0) < 0
            || libc::dup2(output.as_raw_fd(), 1) < 0
            || libc::dup2(output.as_raw_fd(), 2) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
