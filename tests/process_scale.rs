//! The process model at the scale of a million streams: 64 worker processes (20,000 descriptors
//! each is the per-process limit here, so 1M streams need at least 52). `examples/process_demo.rs`
//! with `DEMO_COUNT=64` is started with `start -d`; `status --json` must list all 64 within a
//! bounded time, `reload` must replace every one of them, `stop` must end every process.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::process::{TestDir, alive, example_binary, output_within};
use support::{free_port, wait_until};

const WORKERS: usize = 64;
/// The longest one command (`start -d`, `status`, `reload`, `stop`) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

fn run(dir: &TestDir, port: u16, arguments: &[&str]) -> Output {
    let mut command = Command::new(example_binary("process_demo"));
    command
        .args(arguments)
        .env("DEMO_DIR", dir)
        .env("DEMO_PORT", port.to_string())
        .env("DEMO_COUNT", WORKERS.to_string())
        .env("DEMO_REUSE_PORT", "1")
        .env("DEMO_UNIX_UDP", "0");
    output_within(
        &mut command,
        COMMAND_LIMIT,
        &format!("`process_demo {}`", arguments.join(" ")),
    )
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The live pid each worker id wrote when it (last) started.
fn worker_pids(dir: &TestDir) -> Vec<Option<i32>> {
    (0..WORKERS)
        .map(|id| read_pid(&dir.join(format!("worker-{id}.pid"))).filter(|&pid| alive(pid)))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `status --json`: the worker processes' pids it lists, and how long it took.
fn status_pids(dir: &TestDir, port: u16) -> (BTreeSet<i64>, Duration) {
    let began = Instant::now();
    let output = run(dir, port, &["status", "--json"]);
    let took = began.elapsed();
    assert!(output.status.success(), "status: {}", text(&output.stderr));
    let status: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status --json prints one JSON document");
    assert_eq!(status["master"]["processes"], WORKERS, "{status}");
    let processes = status["processes"].as_array().expect("processes");
    for process in processes {
        assert_eq!(
            process["status"], "idle",
            "a worker did not answer: {process}"
        );
        assert!(process["memory"].as_u64().unwrap() > 0, "{process}");
    }
    let pids = processes
        .iter()
        .map(|process| process["pid"].as_i64().expect("a pid"))
        .collect();
    (pids, took)
}

#[test]
fn sixty_four_workers_start_report_status_reload_and_stop() {
    let dir = TestDir::new("process-64");
    let port = free_port();

    let output = run(&dir, port, &["start", "-d"]);
    assert!(
        output.status.success(),
        "start -d failed: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let master = read_pid(&dir.join("demo.pid")).expect("a pid file");
    assert!(
        wait_until(Duration::from_secs(20), || worker_pids(&dir)
            .iter()
            .all(Option::is_some)),
        "not all {WORKERS} workers started: {:?}",
        worker_pids(&dir)
    );
    let first: Vec<i32> = worker_pids(&dir).into_iter().flatten().collect();
    assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), WORKERS);

    // status: every one of the 64 answers, within a bounded time.
    let (listed, took) = status_pids(&dir, port);
    let expected: BTreeSet<i64> = first.iter().map(|&pid| i64::from(pid)).collect();
    assert_eq!(listed, expected, "status lists exactly the 64 workers");
    assert!(took < Duration::from_secs(10), "status took {took:?}");

    // reload: every worker is replaced (one at a time), each id by a new process.
    let output = run(&dir, port, &["reload"]);
    assert!(output.status.success(), "reload: {}", text(&output.stderr));
    let replaced = || {
        let now = worker_pids(&dir);
        now.iter()
            .zip(&first)
            .all(|(now, before)| now.is_some_and(|pid| pid != *before))
    };
    assert!(
        wait_until(Duration::from_secs(60), replaced),
        "not every worker was replaced: before {first:?}, now {:?}",
        worker_pids(&dir)
    );
    for &old in &first {
        assert!(
            wait_until(Duration::from_secs(5), || !alive(old)),
            "old worker {old} still runs"
        );
    }
    assert!(alive(master), "the master survives a reload");
    let second: Vec<i32> = worker_pids(&dir).into_iter().flatten().collect();
    let (listed, _) = status_pids(&dir, port);
    let expected: BTreeSet<i64> = second.iter().map(|&pid| i64::from(pid)).collect();
    assert_eq!(listed, expected, "status lists the 64 new workers");

    // stop: every process ends, the pid file goes.
    let output = run(&dir, port, &["stop"]);
    assert!(output.status.success(), "stop: {}", text(&output.stderr));
    assert!(
        wait_until(Duration::from_secs(10), || dir.processes().is_empty()),
        "processes left after stop: {:?}",
        dir.processes()
    );
    assert!(!dir.join("demo.pid").exists(), "the pid file was removed");
}
