//! Workerman's process settings, in a master and its worker processes (`tests/process_settings.rs`
//! drives it with `start -d`, `reload`, `stop`):
//!
//! - `keeper` (`http://127.0.0.1:<port>`) is not reloadable: `reload` only runs its
//!   `on_worker_reload`; its listen backlog is 77;
//! - `replaced` (`http://127.0.0.1:<port + 1>`) is reloaded as usual; the master's
//!   `on_worker_exit` records each of its processes that ends, and its `on_worker_stop` blocks
//!   while `<dir>/block-stop` exists (so `stop` must kill it after the stop timeout, 1 s);
//! - `v6only` (`http://[::]:<port + 2>`) takes IPv6 only;
//! - `on_master_reload` and `on_master_stop` write to `<dir>/master`;
//! - the log file is cut to its second half past 4096 bytes (each worker writes 100 lines);
//! - with `DEMO_GROUP`, every worker process runs in that group (needs root).
//!
//! ```text
//! DEMO_DIR=/tmp/settings DEMO_PORT=8090 cargo run --example process_settings -- start -d
//! curl http://127.0.0.1:8090/      # "pid 1234": the keeper's process
//! DEMO_DIR=/tmp/settings cargo run --example process_settings -- stop
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

/// Appends one line to `<dir>/<file>`.
fn note(dir: &Path, file: &str, line: &str) {
    if let Ok(mut out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
    {
        let _ = writeln!(out, "{line}");
    }
}

fn answer_pid(worker: &mut Worker) {
    worker.on_message(|connection: &TcpConnection, _request: Request| {
        connection.send(format!("pid {}", std::process::id()));
    });
}

/// Writes `<dir>/<name>.pid` when a process of `worker` starts, and logs 100 lines.
fn record_start(worker: &mut Worker, dir: &Path) {
    let dir = dir.to_path_buf();
    worker.on_worker_start(move |worker| {
        let _ = std::fs::write(
            dir.join(format!("{}.pid", worker.name())),
            std::process::id().to_string(),
        );
        for line in 0..100 {
            Worker::log(format!("{} log line {line}", worker.name()));
        }
    });
}

fn main() {
    let port: u16 = std::env::var("DEMO_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(8090);
    let dir = std::env::var_os("DEMO_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let group = std::env::var("DEMO_GROUP").unwrap_or_default();
    Worker::set_pid_file(dir.join("demo.pid"));
    Worker::set_log_file(dir.join("demo.log"));
    Worker::set_stdout_file(dir.join("demo.stdout"));
    Worker::set_log_file_max_size(4096);
    Worker::set_stop_timeout(Duration::from_secs(1));
    let master_dir = dir.clone();
    Worker::on_master_reload(move || note(&master_dir, "master", "master reload"));
    let master_dir = dir.clone();
    Worker::on_master_stop(move || note(&master_dir, "master", "master stop"));

    let mut keeper = Worker::new(&format!("http://127.0.0.1:{port}"));
    keeper.set_name("keeper");
    keeper.set_reloadable(false);
    keeper.set_backlog(77);
    keeper.set_group(group.clone());
    answer_pid(&mut keeper);
    record_start(&mut keeper, &dir);
    let reload_dir = dir.clone();
    keeper.on_worker_reload(move |_| {
        note(
            &reload_dir,
            "keeper-reloads",
            &std::process::id().to_string(),
        )
    });

    let mut replaced = Worker::new(&format!("http://127.0.0.1:{}", port + 1));
    replaced.set_name("replaced");
    replaced.set_group(group.clone());
    answer_pid(&mut replaced);
    record_start(&mut replaced, &dir);
    let exit_dir = dir.clone();
    replaced.on_worker_exit(move |worker, status, pid| {
        note(
            &exit_dir,
            "exits",
            &format!("{} {status} {pid}", worker.name()),
        )
    });
    let block_dir = dir.clone();
    replaced.on_worker_stop(move |_| {
        // Blocking the reactor on purpose: what `stop_timeout` is for.
        while block_dir.join("block-stop").exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });

    let mut v6only = Worker::new(&format!("http://[::]:{}", port + 2));
    v6only.set_name("v6only");
    v6only.set_ipv6_v6only(true);
    v6only.set_group(group);
    answer_pid(&mut v6only);
    record_start(&mut v6only, &dir);

    Worker::run_all();
}
