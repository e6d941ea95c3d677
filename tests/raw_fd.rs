//! `EventLoop`: your own fds (a pipe, a socketpair) and signals on the worker's reactor.

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use support::start;
use workerman::{EventLoop, Worker};

const WAIT: Duration = Duration::from_secs(5);

/// A pipe, both ends non-blocking: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` fills two fds we then own.
    unsafe {
        assert_eq!(
            libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC),
            0
        );
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

/// One `read(2)` of up to `limit` bytes: `Some(bytes)` (empty at end of file), `None` if it
/// would block.
fn read_some(fd: RawFd, limit: usize) -> Option<Vec<u8>> {
    let mut buffer = vec![0u8; limit];
    // SAFETY: `buffer` has `limit` writable bytes.
    let count = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), limit) };
    if count < 0 {
        return None;
    }
    buffer.truncate(count as usize);
    Some(buffer)
}

#[test]
fn a_pipe_is_level_triggered_and_deregisters_itself_at_end_of_file() {
    let (read_end, write_end) = pipe();
    let (events_sender, events) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        let read_end = std::cell::RefCell::new(Some(read_end));
        worker.on_worker_start(move |_| {
            let read_end = read_end.borrow_mut().take().expect("one start");
            let events = events_sender.clone();
            let fd = read_end.as_raw_fd();
            EventLoop::on_readable(fd, move |fd| {
                let _keep_open = &read_end;
                // One byte per call: the rest must come in later calls (level-triggered).
                match read_some(fd, 1) {
                    Some(byte) if byte.is_empty() => {
                        let _ = events.send("eof".to_owned());
                        assert!(EventLoop::off_readable(fd));
                    }
                    Some(byte) => {
                        let _ = events.send(String::from_utf8_lossy(&byte).into_owned());
                    }
                    None => {
                        let _ = events.send("would block".to_owned());
                    }
                }
            })
            .expect("a pipe can be watched");
        });
        worker
    });
    let mut writer = std::fs::File::from(write_end);
    writer.write_all(b"hello").unwrap();
    let bytes: Vec<String> = (0..5).map(|_| events.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(bytes.concat(), "hello", "{bytes:?}");
    // Nothing is readable now: no more calls.
    assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
    writer.write_all(b"!").unwrap();
    assert_eq!(events.recv_timeout(WAIT).unwrap(), "!");
    drop(writer);
    assert_eq!(events.recv_timeout(WAIT).unwrap(), "eof");
    // Off: end of file stays "readable", but the callback is not called again.
    assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
    server.stop();
}

#[test]
fn a_socketpair_echoes_through_readable_and_writable_callbacks() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        let socket = std::rc::Rc::new(theirs);
        worker.on_worker_start(move |_| {
            let socket = socket.clone();
            let fd = socket.as_raw_fd();
            // What is read waits here for the socket to be writable.
            let pending = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u8>::new()));
            let reader_pending = pending.clone();
            let reader_socket = socket.clone();
            EventLoop::on_readable(fd, move |fd| {
                let mut buffer = [0u8; 4096];
                match (&*reader_socket).read(&mut buffer) {
                    Ok(0) => {
                        EventLoop::off_readable(fd);
                        EventLoop::off_writable(fd);
                    }
                    Ok(count) => {
                        reader_pending
                            .borrow_mut()
                            .extend(buffer[..count].iter().map(u8::to_ascii_uppercase));
                        let writer_pending = reader_pending.clone();
                        let writer_socket = reader_socket.clone();
                        EventLoop::on_writable(fd, move |fd| {
                            let mut pending = writer_pending.borrow_mut();
                            match (&*writer_socket).write(&pending) {
                                Ok(count) => drop(pending.drain(..count)),
                                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => pending.clear(),
                            }
                            // Level-triggered: off once there is nothing left to write.
                            if pending.is_empty() {
                                EventLoop::off_writable(fd);
                            }
                        })
                        .expect("watch for writable");
                    }
                    Err(_) => {}
                }
            })
            .expect("a socket can be watched");
        });
        worker
    });
    ours.set_read_timeout(Some(WAIT)).unwrap();
    let mut ours = ours;
    // 1 MiB: more than a socket buffer holds, so the writable callback runs many times.
    let message: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let expected: Vec<u8> = message.iter().map(u8::to_ascii_uppercase).collect();
    let writer = {
        let mut ours = ours.try_clone().unwrap();
        let message = message.clone();
        std::thread::spawn(move || ours.write_all(&message).unwrap())
    };
    let mut echoed = vec![0u8; expected.len()];
    ours.read_exact(&mut echoed).unwrap();
    writer.join().unwrap();
    assert!(echoed == expected, "the echo differs");
    server.stop();
}

#[test]
fn removing_another_fd_from_inside_a_callback_is_safe() {
    let (first_read, first_write) = pipe();
    let (second_read, second_write) = pipe();
    // Both readable before the worker starts: both events come in the first turn.
    let mut first_writer = std::fs::File::from(first_write);
    let mut second_writer = std::fs::File::from(second_write);
    first_writer.write_all(b"1").unwrap();
    second_writer.write_all(b"2").unwrap();
    let (calls_sender, calls) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        let fds = (first_read, second_read);
        worker.on_worker_start(move |_| {
            let (first, second) = (fds.0.as_raw_fd(), fds.1.as_raw_fd());
            for (fd, other) in [(first, second), (second, first)] {
                let calls = calls_sender.clone();
                EventLoop::on_readable(fd, move |fd| {
                    let _ = calls.send(fd);
                    // Each removes both: whichever runs first, the other must not run.
                    EventLoop::off_readable(fd);
                    EventLoop::off_readable(other);
                })
                .unwrap();
            }
        });
        // The read ends stay open as long as the worker: moved into the start callback.
        worker
    });
    let first_call = calls.recv_timeout(WAIT).expect("one callback runs");
    assert!(
        calls.recv_timeout(Duration::from_millis(300)).is_err(),
        "a callback ran after {first_call} removed it"
    );
    server.stop();
    drop((first_writer, second_writer));
}

#[test]
fn registrations_end_when_the_worker_stops() {
    let (read_end, write_end) = pipe();
    let (calls_sender, calls) = mpsc::channel::<()>();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let calls = calls_sender.clone();
            EventLoop::on_readable(read_end.as_raw_fd(), move |fd| {
                let _ = read_some(fd, 64);
                let _ = calls.send(());
            })
            .unwrap();
        });
        worker
    });
    let mut writer = std::fs::File::from(write_end);
    writer.write_all(b"x").unwrap();
    calls.recv_timeout(WAIT).expect("the callback runs");
    server.stop();
    // Every callback (and the sender each holds) is gone with the worker.
    assert_eq!(
        calls.recv_timeout(WAIT),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_regular_file_or_a_closed_fd_is_refused() {
    let (results_sender, results) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let file = std::fs::File::open("/proc/self/cmdline").unwrap();
            let file_result = EventLoop::on_readable(file.as_raw_fd(), |_| {}).is_err();
            let closed_result = EventLoop::on_readable(987_654, |_| {}).is_err();
            let _ =
                results_sender.send((file_result, closed_result, EventLoop::off_readable(987_654)));
        });
        worker
    });
    assert_eq!(results.recv_timeout(WAIT).unwrap(), (true, true, false));
    server.stop();
}

/// The only test of this binary that uses signals (they are process-wide).
#[test]
fn app_signals_reach_the_reactor_and_owned_ones_are_refused() {
    let (events_sender, events) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            for owned in [
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGUSR1,
                libc::SIGCHLD,
            ] {
                let error = EventLoop::on_signal(owned, |_| {}).unwrap_err();
                assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
                assert!(error.to_string().contains("process model owns"), "{error}");
            }
            let events = events_sender.clone();
            EventLoop::on_signal(libc::SIGWINCH, move |signal| {
                let thread = std::thread::current().name().unwrap_or("").to_owned();
                let _ = events.send((signal, thread));
            })
            .unwrap();
            let _ = events_sender.send((0, "ready".to_owned()));
        });
        worker
    });
    assert_eq!(events.recv_timeout(WAIT).unwrap(), (0, "ready".to_owned()));
    // SAFETY: `kill` has no memory effects; our own process has a handler for SIGWINCH now.
    unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        (libc::SIGWINCH, "workerman-worker".to_owned())
    );
    unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
    assert_eq!(events.recv_timeout(WAIT).unwrap().0, libc::SIGWINCH);
    server.stop();
    // The disposition before (the default) is back once the last worker that wanted it stopped.
    // SAFETY: a zeroed `sigaction` to be filled in; a null new action only queries.
    let handler = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGWINCH, std::ptr::null(), &mut current);
        current.sa_sigaction
    };
    assert_eq!(handler, libc::SIG_DFL);
}
