//! The process model (Workerman's `runAll`): the command line, one master process that
//! supervises `count` worker processes per [`Worker`], signals, the pid and log files, `status`
//! and `connections`.
//!
//! - [`cli`] reads `start [-d]`, `stop [-g]`, `restart [-d] [-g]`, `reload [-g]`,
//!   `status [-d]`, `connections`.
//! - [`master`] binds, forks the workers, re-forks the ones that die, relays signals.
//! - [`child`] is a worker process: its reactor, and the signals it gets from the master.
//! - [`signals`] is the self-pipe every signal goes through.
//! - [`daemon`] does `-d`.
//! - [`status`] gathers the `status` and `connections` figures; [`status_report`] prints them
//!   as Workerman's tables or as JSON; [`terminal`] has Workerman's colours.
//! - [`log`] is `Worker::log`.
//!
//! None of this runs under [`Worker::spawn`] (tests): no fork, no signal handler, no file.

pub(crate) mod child;
pub(crate) mod cli;
pub(crate) mod daemon;
pub(crate) mod log;
pub(crate) mod master;
pub(crate) mod pid_file;
pub(crate) mod signals;
pub(crate) mod status;
pub(crate) mod status_report;
pub(crate) mod terminal;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::worker::Worker;

/// Workerman's static settings (`$pidFile`, `$logFile`, `$stdoutFile`, `$daemonize`; its
/// `$stopTimeout` is kept by the reactor, which applies it: `src/reactor.rs`, `stop_timeout`).
pub(crate) struct Settings {
    pid_file: Option<PathBuf>,
    log_file: Option<PathBuf>,
    stdout_file: Option<PathBuf>,
    pub(crate) daemonize: bool,
    /// A log file larger than this is cut to its second half (Workerman's `$logFileMaxSize`).
    pub(crate) log_file_max_size: u64,
}

/// A master callback (`on_master_reload`, `on_master_stop`).
pub(crate) type MasterCallback = std::rc::Rc<dyn Fn()>;

/// Workerman's `Worker::$onMasterReload` and `$onMasterStop`: run in the master, so on the
/// thread that calls `run_all` (the program's main thread).
#[derive(Default)]
pub(crate) struct MasterCallbacks {
    pub(crate) on_master_reload: Option<MasterCallback>,
    pub(crate) on_master_stop: Option<MasterCallback>,
}

thread_local! {
    pub(crate) static MASTER_CALLBACKS: std::cell::RefCell<MasterCallbacks> =
        std::cell::RefCell::new(MasterCallbacks::default());
}

/// Runs a master callback, catching a panic (logged; the master carries on).
pub(crate) fn call_master(name: &str, pick: fn(&MasterCallbacks) -> Option<MasterCallback>) {
    let Some(callback) = MASTER_CALLBACKS.with(|callbacks| pick(&callbacks.borrow())) else {
        return;
    };
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback())).is_err() {
        log::write(&format!("workerman: {name} panicked"));
    }
}

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    pid_file: None,
    log_file: None,
    stdout_file: None,
    daemonize: false,
    log_file_max_size: 10_485_760,
});

pub(crate) fn settings() -> MutexGuard<'static, Settings> {
    SETTINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Settings {
    /// Default: `workerman.<program>.pid` next to the executable.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.pid_file
            .clone()
            .unwrap_or_else(|| program_dir().join(format!("workerman.{}.pid", program_name())))
    }

    /// Default: `workerman.log` next to the executable.
    pub(crate) fn log_file(&self) -> PathBuf {
        self.log_file
            .clone()
            .unwrap_or_else(|| program_dir().join("workerman.log"))
    }

    /// Default: `/dev/null`.
    pub(crate) fn stdout_file(&self) -> PathBuf {
        self.stdout_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/null"))
    }

    /// Where workers write their `status` lines: the pid file's name with `.status`.
    pub(crate) fn status_file(&self) -> PathBuf {
        self.pid_file().with_extension("status")
    }

    /// Where workers write their `connections` lines.
    pub(crate) fn connections_file(&self) -> PathBuf {
        self.pid_file().with_extension("connections")
    }
}

/// The executable's file name (`sse` for `target/release/examples/sse`).
pub(crate) fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .or_else(|| {
            std::env::args().next().and_then(|argument| {
                Path::new(&argument)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
        })
        .unwrap_or_else(|| "workerman".to_owned())
}

fn program_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(Path::to_path_buf))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `Worker::run_all`: parse the command line, then act. Never returns.
pub(crate) fn run_all(workers: Vec<Worker>) -> ! {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let program = program_name();
    let command = match cli::parse(&arguments) {
        Ok(command) => command,
        Err(error) => {
            eprint!("{error}\n{}", cli::usage(&program));
            std::process::exit(64);
        }
    };
    log::install_logger();
    match command {
        cli::Command::Start { daemon } => master::start(workers, daemon),
        cli::Command::Restart { daemon, graceful } => {
            if pid_file::running_master().is_some() {
                master::stop(graceful, false);
            }
            master::start(workers, daemon)
        }
        cli::Command::Stop { graceful } => {
            master::stop(graceful, true);
            std::process::exit(0)
        }
        cli::Command::Reload { graceful } => master::reload(graceful),
        cli::Command::Status { live, json } => status::show_status(live, json),
        cli::Command::Connections { json } => status::show_connections(json),
    }
}

/// `Worker::run_all`, Workerman's static settings and `Worker::log`, as associated functions of
/// [`Worker`].
impl Worker {
    /// Runs the program as Workerman's `Worker::runAll()` does: reads the command line (`start
    /// [-d]`, `stop [-g]`, `restart [-d] [-g]`, `reload [-g]`, `status [-d]`, `connections`; no
    /// argument means `start`), and for `start` becomes the master process, which forks
    /// [`count`](Self::count) worker processes for every worker created on this thread and
    /// supervises them. Never returns; a wrong command prints the usage and exits with status 64,
    /// a worker that cannot listen makes `start` exit with status 1.
    ///
    /// Call it from `main`, before starting any thread of your own: the master forks.
    ///
    /// ```no_run
    /// let mut worker = workerman::Worker::new("http://0.0.0.0:8080");
    /// worker.on_message(|connection, _request: workerman::protocols::http::Request| {
    ///     connection.send("hello");
    /// });
    /// workerman::Worker::run_all();
    /// ```
    pub fn run_all() {
        run_all(crate::worker::take_created())
    }

    /// Sets the pid file (Workerman's `Worker::$pidFile`). Default: `workerman.<program>.pid`
    /// next to the executable. `stop`, `reload`, `status` and `connections` find the master
    /// through it, so set it the same way whatever the command.
    ///
    /// ```no_run
    /// workerman::Worker::set_pid_file("/run/myapp.pid");
    /// ```
    pub fn set_pid_file(path: impl Into<PathBuf>) {
        settings().pid_file = Some(path.into());
    }

    /// The pid file in effect.
    ///
    /// ```
    /// assert!(workerman::Worker::pid_file().to_string_lossy().ends_with(".pid"));
    /// ```
    pub fn pid_file() -> PathBuf {
        settings().pid_file()
    }

    /// Sets the log file [`Worker::log`] appends to (Workerman's `Worker::$logFile`). Default:
    /// `workerman.log` next to the executable.
    ///
    /// ```no_run
    /// workerman::Worker::set_log_file("/var/log/myapp.log");
    /// ```
    pub fn set_log_file(path: impl Into<PathBuf>) {
        settings().log_file = Some(path.into());
    }

    /// The log file in effect.
    ///
    /// ```
    /// assert!(workerman::Worker::log_file().ends_with("workerman.log"));
    /// ```
    pub fn log_file() -> PathBuf {
        settings().log_file()
    }

    /// Where stdout and stderr go once daemonized (Workerman's `Worker::$stdoutFile`, default
    /// `/dev/null`).
    ///
    /// ```no_run
    /// workerman::Worker::set_stdout_file("/tmp/myapp.stdout");
    /// ```
    pub fn set_stdout_file(path: impl Into<PathBuf>) {
        settings().stdout_file = Some(path.into());
    }

    /// The stdout file in effect.
    ///
    /// ```
    /// assert_eq!(workerman::Worker::stdout_file(), std::path::PathBuf::from("/dev/null"));
    /// ```
    pub fn stdout_file() -> PathBuf {
        settings().stdout_file()
    }

    /// Daemonize on `start` even without `-d` (Workerman's `Worker::$daemonize`).
    ///
    /// ```no_run
    /// workerman::Worker::set_daemonize(true);
    /// ```
    pub fn set_daemonize(daemonize: bool) {
        settings().daemonize = daemonize;
    }

    /// Whether `start` daemonizes (set by `-d` too).
    ///
    /// ```
    /// assert!(!workerman::Worker::daemonize());
    /// ```
    pub fn daemonize() -> bool {
        settings().daemonize
    }

    /// How long a stopping worker may take to close its connections (Workerman's
    /// `Worker::$stopTimeout`, default 2 s). After it, what is left is closed; a worker process
    /// still alive a second later is killed (`SIGKILL`).
    ///
    /// ```
    /// workerman::Worker::set_stop_timeout(std::time::Duration::from_secs(5));
    /// assert_eq!(workerman::Worker::stop_timeout(), std::time::Duration::from_secs(5));
    /// ```
    pub fn set_stop_timeout(timeout: Duration) {
        crate::reactor::set_stop_timeout(timeout);
    }

    /// The stop timeout in effect.
    ///
    /// ```
    /// println!("{:?}", workerman::Worker::stop_timeout());
    /// ```
    pub fn stop_timeout() -> Duration {
        crate::reactor::stop_timeout()
    }

    /// The log file's size limit (Workerman's `Worker::$logFileMaxSize`, default 10 MiB): a
    /// write that finds the file larger cuts it to its newer half (from a line start). 0: no
    /// limit.
    ///
    /// ```
    /// workerman::Worker::set_log_file_max_size(1 << 20);
    /// assert_eq!(workerman::Worker::log_file_max_size(), 1 << 20);
    /// ```
    pub fn set_log_file_max_size(bytes: u64) {
        settings().log_file_max_size = bytes;
    }

    /// See [`set_log_file_max_size`](Self::set_log_file_max_size).
    ///
    /// ```
    /// if workerman::Worker::log_file_max_size() == 0 {
    ///     println!("the log file grows without limit");
    /// }
    /// ```
    pub fn log_file_max_size() -> u64 {
        settings().log_file_max_size
    }

    /// Called in the master when it gets `reload` (SIGUSR1 / SIGUSR2), before it replaces the
    /// workers (Workerman's `Worker::$onMasterReload`; e.g. to re-read a config file the new
    /// workers will load). Set it before [`Worker::run_all`], on the same thread.
    ///
    /// ```no_run
    /// workerman::Worker::on_master_reload(|| workerman::Worker::log("master: reloading"));
    /// ```
    pub fn on_master_reload(callback: impl Fn() + 'static) {
        MASTER_CALLBACKS.with(|callbacks| {
            callbacks.borrow_mut().on_master_reload = Some(std::rc::Rc::new(callback))
        });
    }

    /// Called in the master when it starts stopping (`stop`, `stop -g`, Ctrl+C), before it
    /// signals the workers (Workerman's `Worker::$onMasterStop`). Set it before
    /// [`Worker::run_all`], on the same thread.
    ///
    /// ```no_run
    /// workerman::Worker::on_master_stop(|| workerman::Worker::log("master: stopping"));
    /// ```
    pub fn on_master_stop(callback: impl Fn() + 'static) {
        MASTER_CALLBACKS.with(|callbacks| {
            callbacks.borrow_mut().on_master_stop = Some(std::rc::Rc::new(callback))
        });
    }

    /// Appends `Y-m-d H:i:s pid:N message` to the log file, and prints the message unless
    /// daemonized (Workerman's `Worker::log`).
    ///
    /// ```no_run
    /// workerman::Worker::log("cache warmed");
    /// ```
    pub fn log(message: impl AsRef<str>) {
        log::write(message.as_ref());
    }
}
