//! A worker process: set up after `fork`, run one worker's reactor, act on the master's signals
//! (which arrive through the reactor's poll, see [`on_signals`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::{log, signals, status};
use crate::reactor;
use crate::worker::Worker;

thread_local! {
    /// The worker this process runs (set only in a forked worker process).
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Runs `worker` as process number `id` of its group. Never returns.
pub(crate) fn run(
    worker: Worker,
    id: usize,
    all: &[Worker],
    master: libc::pid_t,
    master_signals: libc::c_int,
    mask: &libc::sigset_t,
) -> ! {
    let receiver = match signals::install(false) {
        Ok(receiver) => receiver,
        Err(error) => {
            log::write(&format!(
                "workerman: worker cannot install signals: {error}"
            ));
            std::process::exit(1);
        }
    };
    signals::restore(mask);
    // SAFETY: `master_signals` is this process's copy of the master's signal socket, which only
    // the master reads; `prctl` asks for SIGTERM (a hard stop) when the master dies, so workers
    // never outlive a master that was killed; `getppid` catches a master that died before that.
    unsafe {
        libc::close(master_signals);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != master {
            libc::_exit(0);
        }
    }
    // Unix socket files belong to the master, which removes them when it stops.
    for any in all {
        if let Some(bound) = any.shared().prebound.borrow().as_ref() {
            bound.disown();
        }
    }
    // Other workers' listeners are not this process's business.
    for other in all {
        if !Rc::ptr_eq(other.shared(), worker.shared()) {
            other.shared().prebound.borrow_mut().take();
        }
    }
    worker.shared().id.set(id);
    if let Err(error) = switch_user(&worker.user(), &worker.group()) {
        log::write(&format!("workerman: {error}"));
    }
    WORKER.with(|cell| *cell.borrow_mut() = Some(worker.clone()));
    let receiver = mio::net::UnixStream::from_std(receiver);
    let name = worker.name();
    let handler = reactor::SignalHandler {
        take: |socket| signals::take(socket),
        deliver: on_signals,
    };
    match reactor::run_process(crate::worker::for_reactor(vec![worker]), receiver, handler) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            log::write(&format!("workerman: worker {name}: {error}"));
            // As Workerman after a failed start: do not let the master re-fork in a tight loop.
            std::thread::sleep(Duration::from_secs(1));
            std::process::exit(1);
        }
    }
}

/// Acts on signals read from this process's signal socket (called by the reactor, with no borrow
/// held).
pub(crate) fn on_signals(received: Vec<libc::c_int>) {
    for signal in received {
        match signal {
            signal if signals::STOP.contains(&signal) => reactor::request_stop(false),
            signals::GRACEFUL_STOP => reactor::request_stop(true),
            signals::RELOAD | signals::GRACEFUL_RELOAD => {
                let worker = WORKER.with(|cell| cell.borrow().clone());
                if let Some(worker) = worker {
                    let callback = worker.lifecycle().on_worker_reload.borrow().clone();
                    if let Some(callback) = callback {
                        let name = worker.name();
                        reactor::call_user(
                            &|| format!("on_worker_reload of worker {name}"),
                            || callback(&worker),
                        );
                    }
                }
                // Workerman's `reloadable = false`: the callback is the whole reload.
                let reloadable = WORKER.with(|cell| {
                    cell.borrow()
                        .as_ref()
                        .is_none_or(|worker| worker.reloadable())
                });
                if reloadable {
                    reactor::request_stop(signal == signals::GRACEFUL_RELOAD);
                }
            }
            signals::STATUS => {
                if let Some(worker) = WORKER.with(|cell| cell.borrow().clone()) {
                    status::write_process_line(&worker);
                }
            }
            signals::CONNECTIONS => status::write_connection_lines(),
            _ => {}
        }
    }
}

/// Workerman's `$worker->user` and `$worker->group`: become that user, in that group (or the
/// user's primary group); a group alone changes only the group. Needs root.
fn switch_user(user: &str, group: &str) -> Result<(), String> {
    if user.is_empty() && group.is_empty() {
        return Ok(());
    }
    let group_id = match group {
        "" => None,
        group => Some(group_id(group)?),
    };
    if user.is_empty() {
        let Some(gid) = group_id else {
            return Ok(());
        };
        // SAFETY: getuid and setgid have no memory preconditions.
        let (root, joined) = unsafe { (libc::getuid() == 0, libc::setgid(gid) == 0) };
        return match (root, joined) {
            (false, _) => Err(format!("must be root to run workers in group {group}")),
            (true, true) => Ok(()),
            (true, false) => Err(format!(
                "cannot join group {group}: {}",
                std::io::Error::last_os_error()
            )),
        };
    }
    let name = std::ffi::CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    // SAFETY: single-threaded worker process; `getpwnam` returns static storage read at once;
    // the ids come from it.
    unsafe {
        if libc::getuid() != 0 {
            return Err(format!("must be root to run workers as {user}"));
        }
        let entry = libc::getpwnam(name.as_ptr());
        if entry.is_null() {
            return Err(format!("user {user} does not exist"));
        }
        let (uid, gid) = ((*entry).pw_uid, group_id.unwrap_or((*entry).pw_gid));
        if libc::setgid(gid) != 0
            || libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(format!(
                "cannot become {user}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The id of the group named `group`.
fn group_id(group: &str) -> Result<libc::gid_t, String> {
    let name = std::ffi::CString::new(group).map_err(|_| format!("bad group name {group:?}"))?;
    // SAFETY: single-threaded worker process; `getgrnam` returns static storage read at once.
    unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        if entry.is_null() {
            return Err(format!("group {group} does not exist"));
        }
        Ok((*entry).gr_gid)
    }
}
