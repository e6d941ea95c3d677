//! Child programs of a test: the example binaries cargo builds, live processes found by their
//! environment, and commands run with a time limit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// `target/<profile>/deps/<test>-xxxx` → `target/<profile>/examples/<name>`, which must exist
/// (`cargo test` builds the examples).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test` (which builds the examples) or \
         `cargo build --examples` first",
        binary.display()
    );
    binary
}

/// Starts the example `name` in the foreground (`<name> start`) with `DEMO_DIR=dir`,
/// `LISTEN=listen`, `COUNT=count` and `extra` (no `REDIS_URL` unless `extra` has one), its
/// output discarded: a "node" of the channel and hub tests.
pub fn start_example(
    name: &str,
    dir: &Path,
    listen: &str,
    count: usize,
    extra: &[(&str, &str)],
) -> Child {
    let mut command = Command::new(example_binary(name));
    command
        .arg("start")
        .env("DEMO_DIR", dir)
        .env("LISTEN", listen)
        .env("COUNT", count.to_string())
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (variable, value) in extra {
        command.env(variable, value);
    }
    command
        .spawn()
        .unwrap_or_else(|error| panic!("{name} does not start: {error}"))
}

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ")?.1.chars().next())
        .is_some_and(|state| state != 'Z')
}

/// Every live process whose environment holds `variable` exactly (`"DEMO_DIR=/tmp/..."`): the
/// processes a test started, however they daemonized.
pub fn with_environment(variable: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&byte| byte == 0)
                    .any(|entry| entry == variable.as_bytes())
            })
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// Sends SIGKILL to `pid`.
pub fn kill_hard(pid: i32) {
    // SAFETY: `kill` sends a signal; it touches no memory of ours.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Runs `command` (stdin closed, stdout and stderr captured) to its end; past `limit` it is
/// killed and the test fails, naming `what`.
pub fn output_within(command: &mut Command, limit: Duration, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
    let pid = child.id() as i32;
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|error| panic!("wait for {what}: {error}")),
        Err(_) => {
            kill_hard(pid);
            panic!("{what} ran longer than {limit:?}");
        }
    }
}

/// A fresh directory of one test's own (`$TMPDIR/workerman-<name>-<pid>`), handed to the
/// programs it starts as `DEMO_DIR`. Dropping it kills every live process whose environment
/// names it (daemons included), prints its `demo.log` if the test failed, and removes it.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("workerman-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's directory");
        TestDir { path }
    }

    /// Every live process started with `DEMO_DIR` set to this directory.
    pub fn processes(&self) -> Vec<i32> {
        with_environment(&format!("DEMO_DIR={}", self.path.display()))
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for TestDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        for pid in self.processes() {
            kill_hard(pid);
        }
        if thread::panicking() {
            let log = std::fs::read_to_string(self.path.join("demo.log")).unwrap_or_default();
            eprintln!("log of the failed test:\n{log}");
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
