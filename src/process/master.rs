//! The master process: binds, writes the pid file, forks `count` workers per [`Worker`] and
//! supervises them (a worker that dies is re-forked with the same id), relays stop, reload,
//! status and connections signals. It runs no user code and has no event loop: a `poll` on the
//! signal socket, then `waitpid`.
//!
//! Also the shell side of `stop`, `reload` and `start`'s "already running" check.

use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::daemon::{self, Ready};
use super::pid_file::{master_or_exit, running_master};
use super::{child, log, program_name, settings, signals};
use crate::worker::Worker;

/// One worker process: which `Worker`, which id, and its pid while it runs.
struct Slot {
    group: usize,
    id: usize,
    pid: Option<libc::pid_t>,
}

struct Stopping {
    graceful: bool,
    kill_at: Option<Instant>,
    /// The signal the workers were sent; the channel relay gets it once they have all exited
    /// (until then they may still publish through it).
    signal: libc::c_int,
    relay_told: bool,
}

#[derive(Default)]
struct Reload {
    graceful: bool,
    /// Pids still to be replaced, in order.
    queue: VecDeque<libc::pid_t>,
    /// The one being replaced now, and when it gets SIGKILL.
    current: Option<(libc::pid_t, Option<Instant>)>,
}

struct Master {
    workers: Vec<Worker>,
    slots: Vec<Slot>,
    signals: UnixStream,
    pid: libc::pid_t,
    started_at: i64,
    stopping: Option<Stopping>,
    reload: Reload,
    /// Per `Worker`: how many of its processes ended with each status.
    exits: Vec<BTreeMap<String, u64>>,
    /// The channel relay (see `crate::channel::relay`), started when a worker first connects.
    relay: Option<Relay>,
}

/// The channel relay's worker and its pid while it runs.
struct Relay {
    worker: Worker,
    pid: Option<libc::pid_t>,
}

/// `stop [-g]` from the shell: signal the master and wait for it to end (a hard stop waits at
/// most `stop_timeout` + 3 s, a graceful one as long as it takes). Exits when `exit` is set.
pub(crate) fn stop(graceful: bool, exit: bool) {
    let program = program_name();
    let master = master_or_exit();
    let signal = if graceful {
        log::write(&format!("Workerman[{program}] is gracefully stopping ..."));
        signals::GRACEFUL_STOP
    } else {
        log::write(&format!("Workerman[{program}] is stopping ..."));
        libc::SIGINT
    };
    signals::send(master, signal);
    let deadline = Instant::now() + crate::reactor::stop_timeout() + Duration::from_secs(3);
    while signals::alive(master) {
        if !graceful && Instant::now() >= deadline {
            log::write(&format!("Workerman[{program}] stop fail"));
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    log::write(&format!("Workerman[{program}] stop success"));
    if exit {
        std::process::exit(0);
    }
}

/// `reload [-g]` from the shell.
pub(crate) fn reload(graceful: bool) -> ! {
    let master = master_or_exit();
    signals::send(
        master,
        if graceful {
            signals::GRACEFUL_RELOAD
        } else {
            signals::RELOAD
        },
    );
    log::write(&format!("Workerman[{}] reload", program_name()));
    std::process::exit(0);
}

/// `start [-d]`: refuse when a master runs; bind; daemonize; become the master.
pub(crate) fn start(mut workers: Vec<Worker>, daemon: bool) -> ! {
    let program = program_name();
    if let Some(pid) = running_master() {
        log::write(&format!(
            "Workerman[{program}] already running (master pid {pid})"
        ));
        std::process::exit(1);
    }
    if workers.is_empty() {
        eprintln!(
            "workerman: Worker::run_all() found no worker: create one with Worker::new first"
        );
        std::process::exit(1);
    }
    // The channel relay, for several processes (see `crate::channel::relay`).
    let relay = match crate::channel::relay::for_processes(&workers) {
        Ok(relay) => relay,
        Err(error) => {
            log::write(&format!("Workerman[{program}] channel relay: {error}"));
            std::process::exit(1);
        }
    };
    // The metrics endpoint, when set, is one more worker (see `crate::metrics`).
    match crate::metrics::endpoint::for_processes(&workers) {
        Ok(endpoint) => workers.extend(endpoint),
        Err(error) => {
            log::write(&format!("Workerman[{program}] metrics: {error}"));
            std::process::exit(1);
        }
    }
    // TLS certificate files are read here, before anything listens (workers inherit the
    // configuration, and `reload` reads them again): a bad file ends `start` in the user's shell.
    for worker in &workers {
        if worker.listens() {
            if let Err(error) = worker.shared().load_tls() {
                log::write(&format!("Workerman[{program}] {error}"));
                std::process::exit(1);
            }
        }
    }
    // The master binds every listener its workers share; with reuse_port each worker binds its
    // own. A bind error ends `start` here, in the user's shell.
    for worker in &workers {
        if worker.shared().binds_in_master() && worker.listens() {
            match worker.shared().bind() {
                Ok(listener) => *worker.shared().prebound.borrow_mut() = Some(listener),
                Err(error) => {
                    log::write(&format!("Workerman[{program}] {error}"));
                    std::process::exit(1);
                }
            }
        }
    }
    let daemon = daemon || settings().daemonize;
    let ready = if daemon {
        settings().daemonize = true;
        match daemon::daemonize() {
            Ok(ready) => Some(ready),
            Err(error) => {
                eprintln!("workerman: cannot daemonize: {error}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    run(workers, relay, ready)
}

fn fail(ready: Option<Ready>, message: String) -> ! {
    log::write(&message);
    if let Some(ready) = ready {
        ready.fail(&message);
    }
    std::process::exit(1);
}

fn run(workers: Vec<Worker>, relay: Option<Worker>, ready: Option<Ready>) -> ! {
    let program = program_name();
    let signals = match signals::install(true) {
        Ok(signals) => signals,
        Err(error) => fail(
            ready,
            format!("workerman: cannot install signal handlers: {error}"),
        ),
    };
    let pid = std::process::id() as libc::pid_t;
    let (pid_file, daemonize, stdout_file) = {
        let settings = settings();
        (
            settings.pid_file(),
            settings.daemonize,
            settings.stdout_file(),
        )
    };
    if let Err(error) = std::fs::write(&pid_file, format!("{pid}\n")) {
        fail(
            ready,
            format!(
                "workerman: cannot write the pid file {}: {error}",
                pid_file.display()
            ),
        );
    }
    print_banner(&workers, daemonize);
    if daemonize {
        if let Err(error) = daemon::redirect_stdio(&stdout_file) {
            log::write(&format!("workerman: cannot redirect stdio: {error}"));
        }
    }
    log::write(&format!("Workerman[{program}] start success"));
    if let Some(ready) = ready {
        ready.done();
    }
    let mut slots = Vec::new();
    for (group, worker) in workers.iter().enumerate() {
        for id in 0..worker.count() {
            slots.push(Slot {
                group,
                id,
                pid: None,
            });
        }
    }
    let mut master = Master {
        exits: vec![BTreeMap::new(); workers.len()],
        workers,
        slots,
        signals,
        pid,
        started_at: log::now_seconds(),
        stopping: None,
        reload: Reload::default(),
        relay: relay.map(|worker| Relay { worker, pid: None }),
    };
    for index in 0..master.slots.len() {
        master.fork(index);
    }
    master.supervise()
}

/// Workerman's start screen; in colour on a terminal, as Workerman 4 (white rules and column
/// titles, a green `[OK]`).
fn print_banner(workers: &[Worker], daemonize: bool) {
    use super::terminal::{green, rule, version_line, white};
    let program = program_name();
    let user = current_user();
    let decorated = super::terminal::decorated();
    let mut out = String::new();
    out.push_str(&format!(
        "{}\n{}\n{}\n",
        rule(" WORKERMAN ", 96, decorated),
        version_line(),
        rule(" WORKERS ", 96, decorated)
    ));
    // A space after every column, so a long value pushes the row along but never runs into the
    // next one (`websocket` is longer than the others).
    out.push_str(&format!(
        "{} {} {} {} {} {}\n",
        white(&format!("{:<9}", "proto"), decorated),
        white(&format!("{:<15}", "user"), decorated),
        white(&format!("{:<15}", "worker"), decorated),
        white(&format!("{:<31}", "listen"), decorated),
        white(&format!("{:<11}", "processes"), decorated),
        white("status", decorated)
    ));
    for worker in workers {
        let shared = worker.shared();
        let scheme = shared.address.split("://").next().unwrap_or("tcp");
        let worker_user = worker.user();
        out.push_str(&format!(
            "{:<9} {:<15} {:<15} {:<31} {:<11} {}\n",
            scheme,
            if worker_user.is_empty() {
                user.as_str()
            } else {
                worker_user.as_str()
            },
            worker.name(),
            shared.address,
            worker.count(),
            green(" [OK] ", decorated)
        ));
    }
    out.push_str(&format!("{:-<96}\n", ""));
    if daemonize {
        out.push_str(&format!(
            "Input \"{program} stop\" to stop. Start success.\n\n"
        ));
    } else {
        out.push_str("Press Ctrl+C to stop. Start success.\n");
    }
    print!("{out}");
    daemon::flush_stdio();
}

fn current_user() -> String {
    // SAFETY: single-threaded here; `getpwuid` returns static storage we copy at once.
    unsafe {
        let entry = libc::getpwuid(libc::getuid());
        if entry.is_null() {
            return libc::getuid().to_string();
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

impl Master {
    fn fork(&mut self, index: usize) {
        let (group, id) = (self.slots[index].group, self.slots[index].id);
        daemon::flush_stdio();
        let mask = signals::block_all();
        // SAFETY: the master never starts a thread (it has no event loop, runs no user code,
        // and `run_all` is only ever called from the program's main thread before anything
        // else), so the child is a consistent single-threaded copy. It runs `child::run`, which
        // never returns into this loop.
        let pid = unsafe { libc::fork() };
        match pid {
            0 => {
                crate::metrics::endpoint::attach_process(index);
                let worker = self.workers[group].clone();
                child::run(
                    worker,
                    id,
                    &self.all_workers(),
                    self.pid,
                    self.signals.as_raw_fd(),
                    &mask,
                )
            }
            -1 => {
                signals::restore(&mask);
                let error = std::io::Error::last_os_error();
                log::write(&format!("workerman: fork failed: {error}"));
            }
            pid => {
                signals::restore(&mask);
                self.slots[index].pid = Some(pid);
            }
        }
    }

    /// Every worker a child must know of (to close and disown their sockets): the relay too.
    fn all_workers(&self) -> Vec<Worker> {
        let mut all = self.workers.clone();
        all.extend(self.relay.as_ref().map(|relay| relay.worker.clone()));
        all
    }

    /// Forks the channel relay (a worker connected to its socket and none runs).
    fn fork_relay(&mut self) {
        let Some(relay) = &self.relay else { return };
        if relay.pid.is_some() {
            return;
        }
        let worker = relay.worker.clone();
        let all = self.all_workers();
        daemon::flush_stdio();
        let mask = signals::block_all();
        // SAFETY: as in `fork`: the master is single-threaded, and the child runs `child::run`,
        // which never returns.
        let pid = unsafe { libc::fork() };
        match pid {
            0 => child::run(worker, 0, &all, self.pid, self.signals.as_raw_fd(), &mask),
            -1 => {
                signals::restore(&mask);
                let error = std::io::Error::last_os_error();
                log::write(&format!(
                    "workerman: fork of the channel relay failed: {error}"
                ));
            }
            pid => {
                signals::restore(&mask);
                if let Some(relay) = &mut self.relay {
                    relay.pid = Some(pid);
                }
            }
        }
    }

    /// Waits for a signal, or for a worker knocking at the idle relay's socket (then forks it).
    fn wait(&mut self, timeout: Duration) {
        let idle_relay = self
            .relay
            .as_ref()
            .filter(|relay| relay.pid.is_none() && self.stopping.is_none())
            .and_then(|relay| crate::channel::relay::listener_fd(&relay.worker));
        match idle_relay {
            Some(listener) => {
                let signals = self.signals.as_raw_fd();
                if crate::channel::relay::wait_either(signals, listener, timeout) {
                    self.fork_relay();
                }
            }
            None => signals::wait_readable(&self.signals, timeout),
        }
    }

    fn supervise(mut self) -> ! {
        loop {
            let now = Instant::now();
            let mut timeout = Duration::from_secs(1);
            for deadline in [
                self.stopping.as_ref().and_then(|stopping| stopping.kill_at),
                self.reload.current.and_then(|(_, kill_at)| kill_at),
            ]
            .into_iter()
            .flatten()
            {
                timeout = timeout.min(deadline.saturating_duration_since(now));
            }
            self.wait(timeout);
            for signal in signals::take(&mut self.signals) {
                self.on_signal(signal);
            }
            self.reap();
            self.kill_late();
            self.stop_relay_after_workers();
            let relay_ended = self.relay.as_ref().is_none_or(|relay| relay.pid.is_none());
            if self.stopping.is_some()
                && relay_ended
                && self.slots.iter().all(|slot| slot.pid.is_none())
            {
                self.exit();
            }
        }
    }

    /// While stopping: once every worker has exited, the channel relay is sent the workers'
    /// stop signal (so no worker sees its relay go away while it still runs).
    fn stop_relay_after_workers(&mut self) {
        let workers_ended = self.slots.iter().all(|slot| slot.pid.is_none());
        let relay = self.relay.as_ref().and_then(|relay| relay.pid);
        if let (Some(stopping), true, Some(pid)) = (&mut self.stopping, workers_ended, relay) {
            if !stopping.relay_told {
                stopping.relay_told = true;
                signals::send(pid, stopping.signal);
            }
        }
    }

    fn live_pids(&self) -> Vec<libc::pid_t> {
        self.slots.iter().filter_map(|slot| slot.pid).collect()
    }

    fn on_signal(&mut self, signal: libc::c_int) {
        match signal {
            signal if signals::STOP.contains(&signal) => self.stop(false),
            signals::GRACEFUL_STOP => self.stop(true),
            signals::RELOAD => self.start_reload(false),
            signals::GRACEFUL_RELOAD => self.start_reload(true),
            signals::STATUS => {
                self.write_status_header();
                for pid in self.live_pids() {
                    signals::send(pid, signals::STATUS);
                }
            }
            signals::CONNECTIONS => {
                let path = settings().connections_file();
                let _ = std::fs::write(path, "");
                for pid in self.live_pids() {
                    signals::send(pid, signals::CONNECTIONS);
                }
            }
            _ => {}
        }
    }

    fn stop(&mut self, graceful: bool) {
        if let Some(stopping) = &self.stopping {
            // Already stopping that way, or harder.
            if !stopping.graceful || graceful {
                return;
            }
        }
        if self.stopping.is_none() {
            super::call_master("on_master_stop", |callbacks| {
                callbacks.on_master_stop.clone()
            });
        }
        let program = program_name();
        log::write(&if graceful {
            format!("Workerman[{program}] gracefully stopping ...")
        } else {
            format!("Workerman[{program}] stopping ...")
        });
        let signal = if graceful {
            signals::GRACEFUL_STOP
        } else {
            libc::SIGINT
        };
        for pid in self.live_pids() {
            signals::send(pid, signal);
        }
        // As Workerman's master unlistens: once the workers have closed theirs too, new
        // connections are refused instead of waiting in a backlog nobody reads.
        for worker in self.all_workers() {
            worker.shared().prebound.borrow_mut().take();
        }
        let kill_at = (!graceful)
            .then(|| Instant::now() + crate::reactor::stop_timeout() + Duration::from_secs(1));
        self.stopping = Some(Stopping {
            graceful,
            kill_at,
            signal,
            relay_told: false,
        });
        self.reload = Reload::default();
    }

    fn start_reload(&mut self, graceful: bool) {
        if self.stopping.is_some() {
            return;
        }
        if self.reload.current.is_some() {
            log::write(&format!(
                "Workerman[{}] is already reloading",
                program_name()
            ));
            return;
        }
        log::write(&format!(
            "Workerman[{}] {}reloading",
            program_name(),
            if graceful { "gracefully " } else { "" }
        ));
        super::call_master("on_master_reload", |callbacks| {
            callbacks.on_master_reload.clone()
        });
        // Rotated certificates: read now, inherited by the workers forked below.
        for worker in &self.workers {
            if let Err(error) = worker.shared().reload_tls() {
                log::write(&format!("Workerman[{}] reload: {error}", program_name()));
            }
        }
        self.reload = Reload {
            graceful,
            queue: self.live_pids().into(),
            current: None,
        };
        self.reload_next();
    }

    /// Signals the next worker to replace; one at a time.
    fn reload_next(&mut self) {
        while let Some(pid) = self.reload.queue.pop_front() {
            let Some(slot) = self.slots.iter().find(|slot| slot.pid == Some(pid)) else {
                continue;
            };
            let reloadable = self.workers[slot.group].reloadable();
            let graceful = self.reload.graceful;
            signals::send(
                pid,
                if graceful {
                    signals::GRACEFUL_RELOAD
                } else {
                    signals::RELOAD
                },
            );
            if !reloadable {
                // It runs `on_worker_reload` and keeps running: nothing to wait for.
                continue;
            }
            let kill_at = (!graceful)
                .then(|| Instant::now() + crate::reactor::stop_timeout() + Duration::from_secs(1));
            self.reload.current = Some((pid, kill_at));
            return;
        }
        self.reload.current = None;
    }

    /// Collects every ended worker: logs its status, re-forks it unless stopping.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: `waitpid` writes the status into our local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if let Some(relay) = self.relay.as_mut().filter(|relay| relay.pid == Some(pid)) {
                // Started again when a worker reconnects to its socket (see `wait`).
                relay.pid = None;
                log::write(&format!(
                    "worker[{}:{pid}] exited with status {status}",
                    crate::channel::relay::NAME
                ));
                continue;
            }
            let Some(index) = self.slots.iter().position(|slot| slot.pid == Some(pid)) else {
                continue;
            };
            self.slots[index].pid = None;
            let group = self.slots[index].group;
            let name = self.workers[group].name();
            let how = if libc::WIFSIGNALED(status) {
                let signal = libc::WTERMSIG(status);
                log::write(&format!(
                    "worker[{name}:{pid}] killed by signal {signal} ({})",
                    signals::name(signal)
                ));
                signals::name(signal).to_owned()
            } else {
                let code = libc::WEXITSTATUS(status);
                if code != 0 {
                    log::write(&format!("worker[{name}:{pid}] exit with status {code}"));
                }
                code.to_string()
            };
            *self.exits[group].entry(how).or_default() += 1;
            let worker = self.workers[group].clone();
            let callback = worker.lifecycle().on_worker_exit.borrow().clone();
            if let Some(callback) = callback {
                let call = std::panic::AssertUnwindSafe(|| callback(&worker, status, pid));
                if std::panic::catch_unwind(call).is_err() {
                    log::write(&format!(
                        "workerman: on_worker_exit of worker {name} panicked"
                    ));
                }
            }
            if self.stopping.is_none() {
                self.fork(index);
                if self
                    .reload
                    .current
                    .is_some_and(|(current, _)| current == pid)
                {
                    self.reload_next();
                }
            }
        }
    }

    /// SIGKILL for workers that outlived the stop timeout.
    fn kill_late(&mut self) {
        let now = Instant::now();
        if let Some(stopping) = &mut self.stopping {
            if stopping.kill_at.is_some_and(|at| at <= now) {
                stopping.kill_at = None;
                let relay = self.relay.as_ref().and_then(|relay| relay.pid);
                for pid in self.live_pids().into_iter().chain(relay) {
                    log::write(&format!("worker process {pid} stop timeout: SIGKILL"));
                    signals::send(pid, libc::SIGKILL);
                }
            }
        }
        if let Some((pid, Some(at))) = self.reload.current {
            if at <= now {
                log::write(&format!("worker process {pid} reload timeout: SIGKILL"));
                signals::send(pid, libc::SIGKILL);
                self.reload.current = Some((pid, None));
            }
        }
    }

    /// The first part of the status file; each worker appends its own line.
    fn write_status_header(&self) {
        let mut text = format!(
            "master\t{}\t{}\t{}\t{}\t{}\n",
            self.pid,
            self.started_at,
            self.workers.len(),
            self.slots.len(),
            u8::from(settings().daemonize)
        );
        for (group, worker) in self.workers.iter().enumerate() {
            let exits: Vec<String> = self.exits[group]
                .iter()
                .map(|(status, count)| format!("{status}={count}"))
                .collect();
            text.push_str(&format!("group\t{}\t{}\n", worker.name(), exits.join(",")));
        }
        for slot in &self.slots {
            if let Some(pid) = slot.pid {
                let worker = &self.workers[slot.group];
                text.push_str(&format!(
                    "slot\t{pid}\t{}\t{}\t{}\n",
                    slot.id,
                    worker.name(),
                    worker.shared().address
                ));
            }
        }
        let path = settings().status_file();
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
        {
            let _ = file.write_all(text.as_bytes());
        }
    }

    fn exit(self) -> ! {
        let (pid_file, status_file, connections_file) = {
            let settings = settings();
            (
                settings.pid_file(),
                settings.status_file(),
                settings.connections_file(),
            )
        };
        let ours = std::fs::read_to_string(&pid_file)
            .is_ok_and(|text| text.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&pid_file);
        }
        let _ = std::fs::remove_file(status_file);
        let _ = std::fs::remove_file(connections_file);
        log::write(&format!("Workerman[{}] has been stopped", program_name()));
        std::process::exit(0);
    }
}
