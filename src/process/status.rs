//! `status` and `connections`: the shell signals the master, the master writes its part of the
//! file and signals every worker, each worker appends its lines, and after a second the shell
//! prints Workerman's table. A worker that wrote nothing is shown `[busy]`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use super::master::running_master;
use super::{log, program_name, settings, signals};
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

/// Lays out rows as left-aligned columns, each as wide as its widest cell plus two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            line.push_str(&format!("{cell:<width$}", width = widths[column]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2}M", bytes as f64 / (1024.0 * 1024.0))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Formats the status file as Workerman's table. `previous` holds each pid's last total and
/// when it was read, for qps (0 on the first look, as in Workerman).
pub(crate) fn format_status(text: &str, previous: &mut HashMap<String, (Instant, u64)>) -> String {
    let now = Instant::now();
    let mut out = String::new();
    let mut groups = Vec::new();
    let mut slots = Vec::new();
    let mut processes: HashMap<String, Vec<String>> = HashMap::new();
    let mut started_at = 0i64;
    let mut counts = (String::new(), String::new());
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("master") if fields.len() >= 5 => {
                started_at = fields[2].parse().unwrap_or(0);
                counts = (fields[3].to_owned(), fields[4].to_owned());
            }
            Some("group") if fields.len() >= 3 => {
                groups.push((fields[1].to_owned(), fields[2].to_owned()));
            }
            Some("slot") if fields.len() >= 5 => {
                slots.push(
                    fields[1..]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect::<Vec<_>>(),
                );
            }
            Some("process") if fields.len() >= 9 => {
                processes.insert(
                    fields[1].to_owned(),
                    fields[1..].iter().map(|s| (*s).to_owned()).collect(),
                );
            }
            _ => {}
        }
    }
    let run = (log::now_seconds() - started_at).max(0);
    out.push_str(&format!("{:-^110}\n", "GLOBAL STATUS"));
    out.push_str(&format!(
        "Workerman-rs version:{}          Rust\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(&format!(
        "start time:{}   run {} days {} hours\n",
        log::local_time(started_at),
        run / 86_400,
        run % 86_400 / 3600
    ));
    out.push_str(&format!("load average: {}\n", load_average()));
    out.push_str(&format!(
        "{} workers       {} processes\n",
        counts.0, counts.1
    ));
    let mut exit_rows = vec![vec![
        "worker_name".to_owned(),
        "exit_status".to_owned(),
        "exit_count".to_owned(),
    ]];
    for (name, exits) in &groups {
        if exits.is_empty() {
            exit_rows.push(vec![name.clone(), "0".to_owned(), "0".to_owned()]);
        }
        for entry in exits.split(',').filter(|entry| !entry.is_empty()) {
            let (status, count) = entry.split_once('=').unwrap_or((entry, "0"));
            exit_rows.push(vec![name.clone(), status.to_owned(), count.to_owned()]);
        }
    }
    out.push_str(&table(&exit_rows));
    out.push_str(&format!("{:-^110}\n", "PROCESS STATUS"));
    let mut rows = vec![
        [
            "pid",
            "memory",
            "listening",
            "worker_name",
            "connections",
            "send_fail",
            "panics",
            "refused",
            "timers",
            "total_request",
            "qps",
            "status",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let mut total = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for slot in &slots {
        let pid = &slot[0];
        match processes.get(pid) {
            Some(process) => {
                let number = |index: usize| {
                    process
                        .get(index)
                        .and_then(|field| field.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                let requests = number(7);
                let qps = match previous.insert(pid.clone(), (now, requests)) {
                    Some((then, before)) if now > then => {
                        let seconds = now.duration_since(then).as_secs_f64();
                        (requests.saturating_sub(before) as f64 / seconds).round() as u64
                    }
                    _ => 0,
                };
                total.0 += number(1);
                total.1 += number(4);
                total.2 += number(5);
                total.3 += number(6);
                total.4 += requests;
                total.5 += qps;
                total.6 += number(8);
                total.7 += number(9);
                rows.push(vec![
                    pid.clone(),
                    megabytes(number(1)),
                    process[2].clone(),
                    process[3].clone(),
                    process[4].clone(),
                    process[5].clone(),
                    process.get(8).cloned().unwrap_or_default(),
                    process.get(9).cloned().unwrap_or_default(),
                    process[6].clone(),
                    process[7].clone(),
                    qps.to_string(),
                    "[idle]".to_owned(),
                ]);
            }
            None => rows.push(vec![
                pid.clone(),
                "N/A".to_owned(),
                slot[3].clone(),
                slot[2].clone(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "N/A".to_owned(),
                "[busy]".to_owned(),
            ]),
        }
    }
    rows.push(vec![
        "Summary".to_owned(),
        megabytes(total.0),
        "-".to_owned(),
        "-".to_owned(),
        total.1.to_string(),
        total.2.to_string(),
        total.6.to_string(),
        total.7.to_string(),
        total.3.to_string(),
        total.4.to_string(),
        total.5.to_string(),
        "[Summary]".to_owned(),
    ]);
    let laid_out = table(&rows);
    // The summary row goes under a rule, as in Workerman.
    let mut lines: Vec<&str> = laid_out.lines().collect();
    let summary = lines.pop().unwrap_or_default();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("{:-^110}\n{summary}\n", "PROCESS STATUS"));
    out
}

fn master_or_exit() -> libc::pid_t {
    running_master().unwrap_or_else(|| {
        log::write(&format!("Workerman[{}] not run", program_name()));
        std::process::exit(1);
    })
}

/// `status [-d]` from the shell.
pub(crate) fn show_status(live: bool) -> ! {
    let master = master_or_exit();
    let path = settings().status_file();
    let mut previous = HashMap::new();
    loop {
        let _ = std::fs::remove_file(&path);
        signals::send(master, signals::STATUS);
        std::thread::sleep(Duration::from_secs(1));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let table = format_status(&text, &mut previous);
        if live {
            print!("\x1b[H\x1b[2J\x1b(B\x1b[m");
        }
        print!("{table}");
        if live {
            println!("Press Ctrl+C to quit.");
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

/// `connections` from the shell.
pub(crate) fn show_connections() -> ! {
    let master = master_or_exit();
    let path = settings().connections_file();
    let _ = std::fs::remove_file(&path);
    signals::send(master, signals::CONNECTIONS);
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut rows = vec![
        [
            "PID",
            "Worker",
            "CID",
            "Trans",
            "Protocol",
            "ipv4",
            "ipv6",
            "Recv-Q",
            "Send-Q",
            "Bytes-R",
            "Bytes-W",
            "Status",
            "Local Address",
            "Foreign Address",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.first() == Some(&"connection") && fields.len() >= 15 {
            rows.push(
                fields[1..]
                    .iter()
                    .map(|field| (*field).to_owned())
                    .collect(),
            );
        }
    }
    print!("{}", table(&rows));
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}
