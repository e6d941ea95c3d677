//! Workerman's process settings through the real process model: `examples/process_settings.rs`
//! started with `start -d`, then `reload` and `stop`, on free ports with its files in a directory
//! of its own: `reloadable = false`, `on_worker_exit`, `on_master_reload` / `on_master_stop`,
//! `group`, `log_file_max_size`, `stop_timeout`, the listen backlog and `ipv6_v6only`.
//!
//! Every wait is bounded, and a guard kills every process the test started (found by the
//! `DEMO_DIR` in its environment) even when it fails. `cargo test` builds the example first.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::process::{TestDir, alive, example_binary, output_within};
use support::wait_until;

const COMMAND_LIMIT: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A port whose next two ports are free too (the example listens on all three).
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        if port < 65000
            && (1..3).all(|offset| {
                TcpListener::bind(("127.0.0.1", port + offset)).is_ok()
                    && TcpListener::bind((Ipv6Addr::UNSPECIFIED, port + offset)).is_ok()
            })
        {
            return port;
        }
    }
    panic!("no three free ports in a row");
}

struct Settings {
    dir: TestDir,
    port: u16,
    group: Option<String>,
}

impl Settings {
    fn new(group: Option<&str>) -> Settings {
        let dir = TestDir::new("settings");
        Settings {
            dir,
            port: three_free_ports(),
            group: group.map(str::to_owned),
        }
    }

    fn run(&self, arguments: &[&str]) -> Output {
        let mut command = Command::new(example_binary("process_settings"));
        command
            .args(arguments)
            .env("DEMO_DIR", &self.dir)
            .env("DEMO_PORT", self.port.to_string());
        if let Some(group) = &self.group {
            command.env("DEMO_GROUP", group);
        }
        output_within(
            &mut command,
            COMMAND_LIMIT,
            &format!("`process_settings {}`", arguments.join(" ")),
        )
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn pid(&self, name: &str) -> Option<i32> {
        self.file(&format!("{name}.pid"))
            .trim()
            .parse()
            .ok()
            .filter(|&pid| alive(pid))
    }

    fn get(&self, address: SocketAddr) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned())
    }
}

/// The listen backlog of a listening socket on `port`: `ss`'s Send-Q for it.
fn backlog(port: u16) -> Option<u32> {
    let output = Command::new("ss").args(["-ltnH"]).output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(3)? == &format!("127.0.0.1:{port}")).then(|| fields.get(2)?.parse().ok())?
        })
}

/// The effective group id of `pid` (`/proc/<pid>/status`'s `Gid:` line, second field).
fn gid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("Gid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn process_settings_hold_through_start_reload_and_stop() {
    let ss = Command::new("ss").arg("-V").output();
    assert!(
        ss.is_ok(),
        "this test reads backlogs with `ss`: apt-get install iproute2"
    );
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test runs the workers in another group: run it as root"
    );
    let settings = Settings::new(Some("nogroup"));
    let output = settings.run(&["start", "-d"]);
    assert!(
        output.status.success(),
        "start -d failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        wait_until(IO_TIMEOUT, || ["keeper", "replaced", "v6only"]
            .iter()
            .all(|name| settings.pid(name).is_some())),
        "the workers did not start"
    );
    let keeper = settings.pid("keeper").unwrap();
    let replaced = settings.pid("replaced").unwrap();
    let master: i32 = settings.file("demo.pid").trim().parse().unwrap();

    // group: the workers run as nogroup (65534); the master stays root's.
    for pid in [keeper, replaced] {
        assert_eq!(gid_of(pid), Some(65534), "worker {pid}'s group");
    }
    assert_eq!(gid_of(master), Some(0));

    // The listen backlog, as set (the master bound it).
    assert_eq!(backlog(settings.port), Some(77));

    // ipv6_v6only on [::]: IPv6 is answered, IPv4 on the same port is refused.
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, settings.port + 2));
    assert!(settings.get(v6).unwrap().starts_with("pid "));
    let v4 = SocketAddr::from(([127, 0, 0, 1], settings.port + 2));
    assert!(
        TcpStream::connect_timeout(&v4, IO_TIMEOUT).is_err(),
        "IPv4 reached a v6only worker"
    );

    // log_file_max_size: 300 lines were logged (~15 KB), the file stays about 4 KB and keeps
    // the newest lines.
    assert!(wait_until(IO_TIMEOUT, || {
        let log = settings.file("demo.log");
        log.contains("log line 99")
    }));
    let log_size = std::fs::metadata(settings.dir.join("demo.log"))
        .unwrap()
        .len();
    assert!(log_size <= 4096 + 200, "the log is {log_size} bytes");
    let kept = settings.file("demo.log").matches(" log line ").count();
    assert!(
        kept < 100,
        "{kept} of the 300 lines kept: the log was not cut"
    );

    // reload: the reloadable worker is replaced (on_worker_exit in the master), the other only
    // runs on_worker_reload and keeps its process; on_master_reload ran first.
    let output = settings.run(&["reload"]);
    assert!(output.status.success());
    assert!(
        wait_until(IO_TIMEOUT, || settings
            .pid("replaced")
            .is_some_and(|pid| pid != replaced)),
        "the reloadable worker was not replaced"
    );
    assert!(wait_until(IO_TIMEOUT, || settings
        .file("keeper-reloads")
        .contains(&keeper.to_string())));
    assert_eq!(
        settings.pid("keeper"),
        Some(keeper),
        "the non-reloadable worker was replaced"
    );
    assert!(alive(keeper));
    assert!(settings.file("master").contains("master reload"));
    assert!(wait_until(IO_TIMEOUT, || settings
        .file("exits")
        .contains(&format!("replaced 0 {replaced}"))));

    // stop with a worker whose on_worker_stop blocks: killed after stop_timeout (1 s) + 1 s,
    // on_worker_exit sees SIGKILL (9), on_master_stop ran.
    let blocked = settings.pid("replaced").unwrap();
    std::fs::write(settings.dir.join("block-stop"), "").unwrap();
    let started = Instant::now();
    let output = settings.run(&["stop"]);
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        took >= Duration::from_secs(1),
        "stopped in {took:?}: nothing blocked?"
    );
    assert!(took < Duration::from_secs(8), "stopped in {took:?}");
    assert!(
        settings
            .file("demo.log")
            .contains(&format!("worker process {blocked} stop timeout: SIGKILL"))
    );
    assert!(
        settings
            .file("exits")
            .contains(&format!("replaced 9 {blocked}"))
    );
    assert!(settings.file("master").contains("master stop"));
    assert!(!alive(master) && !alive(keeper) && !alive(blocked));
}
