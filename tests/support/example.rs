//! The example programs (`examples/*.rs`) run as child processes by the end-to-end tests
//! (tests/browser.rs, tests/deploy_nginx.rs): `cargo test` builds them first.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The longest an example may take to listen.
pub const STARTUP: Duration = Duration::from_secs(10);

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/debug/deps/<test>-xxxx` → `target/debug/examples/<name>`; `cargo test` builds them.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join(name);
    let built = std::fs::metadata(&binary)
        .and_then(|metadata| metadata.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run these tests with `cargo test`, which builds the examples \
                 (`cargo test --test <name>` alone does not: `cargo build --examples` first)",
                binary.display()
            )
        });
    // `cargo test --test <name>` runs whatever examples were built last: refuse stale ones.
    let source = manifest_dir().join("examples").join(format!("{name}.rs"));
    if let Some(newer) = [source, manifest_dir().join("src")]
        .iter()
        .find(|path| newest_change(path) > Some(built))
    {
        panic!(
            "{} is older than {}: run `cargo test` (which builds the examples) or \
             `cargo build --examples` first",
            binary.display(),
            newer.display()
        );
    }
    binary
}

/// The latest modification time of a Rust file, or of any Rust file under a directory.
fn newest_change(path: &Path) -> Option<std::time::SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        let rust = path.extension().is_some_and(|extension| extension == "rs");
        return if rust { metadata.modified().ok() } else { None };
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_change(&entry.path()))
        .max()
}

pub fn accepts_connections(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

/// An example binary running as a child process; dropping it kills it.
pub struct Example {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Example {
    pub fn start(name: &'static str, port: u16) -> Example {
        assert!(
            !accepts_connections(port),
            "port {port} is already taken by another process, so examples/{name}.rs cannot \
             listen on it; stop that process (e.g. `ss -ltnp 'sport = :{port}'`) and rerun"
        );
        let binary = example_binary(name);
        let log = std::env::temp_dir().join(format!(
            "workerman-example-{name}-{}.log",
            std::process::id()
        ));
        let output = std::fs::File::create(&log).expect("create the example's log file");
        let child = Command::new(&binary)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut example = Example { name, child, log };
        let deadline = Instant::now() + STARTUP;
        while !accepts_connections(port) {
            if let Ok(Some(status)) = example.child.try_wait() {
                panic!(
                    "examples/{name}.rs exited ({status}) before listening on {port}:\n{}",
                    example.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "examples/{name}.rs did not listen on {port} within {STARTUP:?}:\n{}",
                example.output()
            );
            thread::sleep(Duration::from_millis(50));
        }
        example
    }

    /// What the example printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the example died during the test (a panic in it, say).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "examples/{}.rs exited ({status}) during the test:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits until the example also listens on `port` (a second worker of the same program).
    pub fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + STARTUP;
        while !accepts_connections(port) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "examples/{}.rs did not listen on {port} within {STARTUP:?}:\n{}",
                self.name,
                self.output()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
