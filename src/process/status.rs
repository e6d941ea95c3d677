//! `status` and `connections`: the shell signals the master, the master writes its part of the
//! file and signals every worker, each worker appends its lines, and after a second the shell
//! prints Workerman's table, or JSON (see [`status_report`](super::status_report)). A worker
//! that wrote nothing is shown `[busy]`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use super::pid_file::master_or_exit;
use super::{settings, signals, status_report, terminal};
use crate::connection::TcpConnection;
use crate::reactor;
use crate::timer::Timer;
use crate::worker::Worker;

/// Appends `text` in one `write` (O_APPEND: lines of several workers never interleave).
fn append(path: &std::path::Path, text: &str) {
    if let Ok(mut file) = OpenOptions::new().append(true).open(path) {
        let _ = file.write_all(text.as_bytes());
    }
}

/// This process's resident memory in bytes (`VmRSS` in `/proc/self/status`).
fn resident_memory() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// A worker's answer to SIGIOT: one `process` line.
pub(crate) fn write_process_line(worker: &Worker) {
    let statistics = Worker::statistics();
    let line = format!(
        "process\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        std::process::id(),
        resident_memory(),
        worker.shared().address,
        worker.name(),
        statistics.connection_count,
        statistics.send_fail,
        Timer::count(),
        statistics.total_request,
        statistics.panics,
        statistics.blocking_refused
    );
    append(&settings().status_file(), &line);
}

fn status_name(status: u8) -> &'static str {
    match status {
        TcpConnection::STATUS_INITIAL => "INITIAL",
        TcpConnection::STATUS_CONNECTING => "CONNECTING",
        TcpConnection::STATUS_ESTABLISHED => "ESTABLISHED",
        TcpConnection::STATUS_ENDING => "ENDING",
        TcpConnection::STATUS_CLOSING => "CLOSING",
        _ => "CLOSED",
    }
}

/// A worker's answer to SIGIO: one `connection` line per connection.
pub(crate) fn write_connection_lines() {
    let pid = std::process::id();
    let text = reactor::try_with(|reactor| {
        let mut text = String::new();
        for (_, connection) in reactor.connections.iter() {
            let worker = &connection.worker;
            let protocol = worker.address.split("://").next().unwrap_or("tcp");
            let local = worker
                .local_address
                .get()
                .map_or_else(|| worker.listen.clone(), |address| address.to_string());
            text.push_str(&format!(
                "connection\t{pid}\t{}\t{}\t{}\t{protocol}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{local}\t{}\n",
                worker.name.borrow(),
                connection.id,
                worker.transport.get().name(),
                u8::from(connection.remote_address.is_ipv4()),
                u8::from(connection.remote_address.is_ipv6()),
                connection.recv_buffer.len(),
                connection.pending_send(),
                connection.bytes_read,
                connection.bytes_written,
                status_name(connection.status),
                connection.remote_address
            ));
        }
        text
    })
    .unwrap_or_default();
    if !text.is_empty() {
        append(&settings().connections_file(), &text);
    }
}

/// `status [-d]` (or `status --json`) from the shell.
pub(crate) fn show_status(live: bool, json: bool) -> ! {
    let master = master_or_exit();
    let path = settings().status_file();
    let mut previous = HashMap::new();
    let decorated = terminal::decorated();
    loop {
        let _ = std::fs::remove_file(&path);
        signals::send(master, signals::STATUS);
        std::thread::sleep(Duration::from_secs(1));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let report = status_report::parse(&text);
        if json {
            print!("{}", status_report::status_json(&report));
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        let table = status_report::status_table(&report, &mut previous);
        // Workerman clears the screen for `-d` on a terminal only.
        if live && decorated {
            print!("\x1b[H\x1b[2J\x1b(B\x1b[m");
        }
        print!("{table}");
        if live {
            println!("\nPress Ctrl+C to quit.\n");
        }
        let _ = std::io::stdout().flush();
        if !live {
            std::process::exit(0);
        }
        if !signals::alive(master) {
            std::process::exit(1);
        }
    }
}

/// `connections` (or `connections --json`) from the shell.
pub(crate) fn show_connections(json: bool) -> ! {
    let master = master_or_exit();
    let path = settings().connections_file();
    let _ = std::fs::remove_file(&path);
    signals::send(master, signals::CONNECTIONS);
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let rows = status_report::parse_connections(&text);
    if json {
        print!("{}", status_report::connections_json(&rows));
    } else {
        print!("{}", status_report::connections_table(&rows));
    }
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}
