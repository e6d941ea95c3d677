//! `docs/deploy/workerman.service` and `docs/deploy/logrotate`, run for real against
//! `examples/process_demo.rs` (a master and 2 worker processes): the unit's `ExecStart`,
//! `ExecReload` and `ExecStop` lines, as systemd would run them, start, reload and stop the
//! server; Debian's `logrotate` with that config rotates the log and stdout files while the
//! server runs, and the server's next lines go to the new files.
//!
//! Each test has its own directory (pid, log and stdout files, through the demo's `DEMO_DIR`) and
//! a free port; a guard kills every process of the test (found by its `DEMO_DIR`) even when the
//! test fails. `cargo test` builds the example first. `bash tests/run.sh` installs `logrotate`
//! and `systemd` (for `systemd-analyze verify`).

mod support;

#[path = "support/example.rs"]
mod example;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use example::{accepts_connections, example_binary, manifest_dir};
use support::free_port;
use support::process::{TestDir, alive, output_within};

/// The program path written in the unit file.
const UNIT_PROGRAM: &str = "/opt/myapp/myapp";
/// The longest a command (`start -d`, `reload`, `stop`, logrotate) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(15);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The demo's directory, port and environment; dropping it kills every process it started.
struct Demo {
    dir: TestDir,
    port: u16,
}

impl Demo {
    fn new(test: &str) -> Demo {
        let dir = TestDir::new(&format!("deploy-{test}"));
        Demo {
            dir,
            port: free_port(),
        }
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `program arguments...` with the demo's environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, arguments: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(arguments)
            .env("DEMO_DIR", &self.dir)
            .env("DEMO_PORT", self.port.to_string())
            .env("DEMO_COUNT", "2")
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` to its end, at most [`COMMAND_LIMIT`].
    fn run(&self, mut command: Command) -> Output {
        let what = format!("{command:?}");
        output_within(&mut command, COMMAND_LIMIT, &what)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The pid worker `id` wrote when it last started, if it runs.
    fn worker_pid(&self, id: usize) -> Option<i32> {
        self.read(&format!("worker-{id}.pid"))
            .trim()
            .parse()
            .ok()
            .filter(|&pid| alive(pid))
    }

    fn workers(&self) -> Option<[i32; 2]> {
        Some([self.worker_pid(0)?, self.worker_pid(1)?])
    }

    /// The body of `GET path` on a new connection.
    fn get(&self, path: &str) -> support::HttpResponse {
        let mut client = support::HttpClient::connect(self.address());
        client.get(path)
    }

    /// Every live process of this test (its environment names this test's directory).
    fn processes(&self) -> Vec<i32> {
        self.dir.processes()
    }
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    assert!(
        support::wait_until(COMMAND_LIMIT, &mut condition),
        "{what}, not within {COMMAND_LIMIT:?}"
    );
}

/// The words of the unit's one `key=` line (e.g. `ExecStart`).
fn unit_line(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    let lines: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.trim().strip_prefix(&prefix))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "docs/deploy/workerman.service must have one {key}= line: {lines:?}"
    );
    lines[0].split_whitespace().map(str::to_owned).collect()
}

/// An Exec line of the unit as a command on the demo: its program swapped for process_demo.
fn exec_line(demo: &Demo, unit: &str, key: &str) -> Command {
    let words = unit_line(unit, key);
    assert_eq!(
        words.first().map(String::as_str),
        Some(UNIT_PROGRAM),
        "{key}= should run {UNIT_PROGRAM}"
    );
    let arguments: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    demo.command(example_binary("process_demo"), &arguments)
}

/// systemd's own parser reads the unit without a complaint (an unknown key or a bad value is
/// only a warning to systemd, so any output fails the test).
#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let analyze = support::require_program("systemd-analyze");
    let unit = std::fs::read_to_string(manifest_dir().join("docs/deploy/workerman.service"))
        .expect("read docs/deploy/workerman.service");
    let demo = Demo::new("verify");
    // The unit's program must exist for verify: the demo stands in for it.
    let program = example_binary("process_demo");
    let unit = unit.replace(UNIT_PROGRAM, &program.display().to_string());
    let path = demo.path("myapp.service");
    std::fs::write(&path, unit).expect("write the unit");
    let mut verify = demo.command(&analyze, &["verify"]);
    verify.arg(&path);
    let output = demo.run(verify);
    assert_success(&output, "systemd-analyze verify");
    assert_eq!(
        text(&output.stderr).trim(),
        "",
        "systemd-analyze verify complains about docs/deploy/workerman.service"
    );
}

/// The unit's three Exec lines, run in order as systemd runs them for `systemctl start`,
/// `reload` and `stop` (Type=simple: ExecStart stays in the foreground as the main process).
#[test]
fn unit_exec_lines_start_reload_and_stop_the_server() {
    let unit = std::fs::read_to_string(manifest_dir().join("docs/deploy/workerman.service"))
        .expect("read docs/deploy/workerman.service");
    assert_eq!(unit_line(&unit, "Type"), ["simple"]);
    let stop_limit = Duration::from_secs(
        unit_line(&unit, "TimeoutStopSec")[0]
            .parse()
            .expect("TimeoutStopSec in seconds"),
    );
    let demo = Demo::new("unit");

    let output = std::fs::File::create(demo.path("journal")).expect("create the journal file");
    let mut main = exec_line(&demo, &unit, "ExecStart")
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .expect("run ExecStart");
    wait_until("ExecStart did not start two workers", || {
        if let Ok(Some(status)) = main.try_wait() {
            panic!("ExecStart exited ({status}):\n{}", demo.read("journal"));
        }
        accepts_connections(demo.port) && demo.workers().is_some()
    });
    let before = demo.workers().expect("two workers");
    let answer = demo.get("/").body_text();
    assert!(
        before
            .iter()
            .any(|pid| answer == format!("pid {pid} id 0") || answer == format!("pid {pid} id 1")),
        "{answer:?} is from none of the workers {before:?}"
    );

    let reload = demo.run(exec_line(&demo, &unit, "ExecReload"));
    assert_success(&reload, "ExecReload");
    wait_until("ExecReload did not replace both workers", || {
        demo.workers()
            .is_some_and(|now| now.iter().all(|pid| !before.contains(pid)))
            && before.iter().all(|&pid| !alive(pid))
    });
    assert_eq!(demo.get("/").status, 200);
    assert_eq!(
        main.try_wait().expect("poll ExecStart"),
        None,
        "the master (systemd's main process) must survive a reload"
    );

    let started_stop = Instant::now();
    let stop = demo.run(exec_line(&demo, &unit, "ExecStop"));
    assert_success(&stop, "ExecStop");
    let status = loop {
        if let Some(status) = main.try_wait().expect("poll ExecStart") {
            break status;
        }
        assert!(
            started_stop.elapsed() < stop_limit,
            "the master outlived ExecStop by more than TimeoutStopSec ({stop_limit:?})"
        );
        thread::sleep(Duration::from_millis(10));
    };
    // Restart=on-failure: a stop must not look like a failure.
    assert!(
        status.success(),
        "the master ended with {status} after ExecStop"
    );
    assert!(
        !accepts_connections(demo.port),
        "still listening after stop"
    );
    assert!(
        demo.processes().is_empty(),
        "processes left after ExecStop: {:?}",
        demo.processes()
    );
}

/// `text` with its one line `from` (trimmed) replaced by `to`.
fn replace_line(text: &str, from: &str, to: &str) -> String {
    let found = text.lines().filter(|line| line.trim() == from).count();
    assert_eq!(
        found, 1,
        "docs/deploy/logrotate must have the line `{from}` exactly once (tests/deploy_service.rs \
         swaps its path); found it {found} times"
    );
    text.lines()
        .map(|line| if line.trim() == from { to } else { line })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn has_zero_byte(path: &Path) -> bool {
    let mut bytes = Vec::new();
    let _ = std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes));
    bytes.contains(&0)
}

/// logrotate with `docs/deploy/logrotate` while the daemon (`start -d`) runs: the log file is
/// renamed and the next line (a worker's, after a caught panic) creates the new one; the stdout
/// file is copied and truncated, and what the daemon writes next lands at its start, with no hole.
#[test]
fn logrotate_config_rotates_while_the_daemon_runs() {
    let logrotate = support::require_program("logrotate");
    let demo = Demo::new("logrotate");
    let start = demo.run(demo.command(example_binary("process_demo"), &["start", "-d"]));
    assert_success(&start, "start -d");
    wait_until("the workers did not start", || demo.workers().is_some());

    // A caught panic writes a line to the log file (our logger) and a message to stderr, which a
    // daemon sends to the stdout file.
    let panic_lines = |name: &str| {
        demo.read(name)
            .lines()
            .filter(|line| line.contains("a bug in a handler"))
            .count()
    };
    assert_eq!(demo.get("/panic").status, 500);
    wait_until("the first panic is not in both files", || {
        panic_lines("demo.log") == 1 && panic_lines("demo.stdout") == 1
    });

    let config = std::fs::read_to_string(manifest_dir().join("docs/deploy/logrotate"))
        .expect("read docs/deploy/logrotate");
    let dir = demo.dir.display();
    let config = replace_line(
        &config,
        "/var/log/myapp/workerman.log {",
        &format!("{dir}/demo.log {{"),
    );
    let config = replace_line(
        &config,
        "/var/log/myapp/stdout.log {",
        &format!("{dir}/demo.stdout {{"),
    );
    let config_path = demo.path("logrotate.conf");
    std::fs::File::create(&config_path)
        .and_then(|mut file| file.write_all(config.as_bytes()))
        .expect("write logrotate.conf");
    let mut rotate = demo.command(&logrotate, &["--force", "--verbose", "--state"]);
    rotate.arg(demo.path("logrotate.state")).arg(&config_path);
    let rotated = demo.run(rotate);
    assert_success(&rotated, "logrotate");

    let old_log = demo.read("demo.log.1");
    assert!(
        old_log.contains("start success") && old_log.contains("a bug in a handler"),
        "demo.log.1 lacks the lines from before the rotation: {old_log:?}"
    );
    assert_eq!(panic_lines("demo.log"), 0, "the new log file is not new");
    assert_eq!(panic_lines("demo.stdout.1"), 1, "the stdout copy");
    assert_eq!(
        demo.read("demo.stdout"),
        "",
        "copytruncate left the stdout file full"
    );

    assert_eq!(demo.get("/panic").status, 500);
    wait_until("the second panic is not in the new files", || {
        panic_lines("demo.log") == 1 && panic_lines("demo.stdout") == 1
    });
    assert_eq!(
        panic_lines("demo.log.1"),
        1,
        "written to the rotated log file"
    );
    assert!(
        !has_zero_byte(&demo.path("demo.stdout")),
        "the stdout file has a hole of zeros: written at the old offset"
    );
    assert!(
        demo.read("demo.stdout").trim_start().starts_with("thread"),
        "the stdout file does not start with the panic message: {:?}",
        demo.read("demo.stdout")
    );

    let stop = demo.run(demo.command(example_binary("process_demo"), &["stop"]));
    assert_success(&stop, "stop");
}
