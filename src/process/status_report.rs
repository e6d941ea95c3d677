//! What `status` and `connections` print, from the lines the master and the workers wrote:
//! Workerman's tables, or one JSON document for scripts (`--json`, shapes in `docs/porting.md`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::log;

/// The status file, read: the master's part and every process's line.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) master_pid: u64,
    pub(crate) started_at: i64,
    pub(crate) worker_count: u64,
    pub(crate) process_count: u64,
    pub(crate) daemon: bool,
    /// Per worker: its name and how many of its processes ended with each exit status.
    pub(crate) groups: Vec<(String, Vec<(String, u64)>)>,
    pub(crate) processes: Vec<Process>,
}

/// One worker process: who it is (from the master) and its figures (from itself; `None` when it
/// did not answer in time, Workerman's `[busy]`).
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: u64,
    pub(crate) id: u64,
    pub(crate) worker_name: String,
    pub(crate) listening: String,
    pub(crate) figures: Option<Figures>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) memory: u64,
    pub(crate) connections: u64,
    pub(crate) send_fail: u64,
    pub(crate) timers: u64,
    pub(crate) total_request: u64,
    pub(crate) panics: u64,
    /// `Worker::spawn_blocking` submits refused (the pool's bound was reached).
    pub(crate) refused: u64,
}

fn number<T: std::str::FromStr + Default>(field: Option<&&str>) -> T {
    field
        .and_then(|field| field.parse().ok())
        .unwrap_or_default()
}

/// Reads the status file's lines (`master`, `group`, `slot` from the master; `process` from each
/// worker, see `status::write_process_line`).
pub(crate) fn parse(text: &str) -> Report {
    let mut report = Report::default();
    let mut figures = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("master") if fields.len() >= 5 => {
                report.master_pid = number(fields.get(1));
                report.started_at = number(fields.get(2));
                report.worker_count = number(fields.get(3));
                report.process_count = number(fields.get(4));
                report.daemon = fields.get(5) == Some(&"1");
            }
            Some("group") if fields.len() >= 3 => {
                let exits = fields[2]
                    .split(',')
                    .filter(|entry| !entry.is_empty())
                    .map(|entry| {
                        let (status, count) = entry.split_once('=').unwrap_or((entry, "0"));
                        (status.to_owned(), count.parse().unwrap_or(0))
                    })
                    .collect();
                report.groups.push((fields[1].to_owned(), exits));
            }
            Some("slot") if fields.len() >= 5 => report.processes.push(Process {
                pid: number(fields.get(1)),
                id: number(fields.get(2)),
                worker_name: fields[3].to_owned(),
                listening: fields[4].to_owned(),
                figures: None,
            }),
            Some("process") if fields.len() >= 9 => {
                let pid: u64 = number(fields.get(1));
                figures.insert(
                    pid,
                    Figures {
                        memory: number(fields.get(2)),
                        connections: number(fields.get(5)),
                        send_fail: number(fields.get(6)),
                        timers: number(fields.get(7)),
                        total_request: number(fields.get(8)),
                        panics: number(fields.get(9)),
                        refused: number(fields.get(10)),
                    },
                );
            }
            _ => {}
        }
    }
    for process in &mut report.processes {
        process.figures = figures.get(&process.pid).copied();
    }
    report
}

/// Lays out rows as left-aligned columns, each as wide as its widest cell plus two spaces.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
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
            let _ = write!(line, "{cell:<width$}", width = widths[column]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2}M", bytes as f64 / (1024.0 * 1024.0))
}

fn load_average() -> Vec<String> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Workerman's status screen. `previous` holds each pid's last total and when it was read, for
/// qps (0 on the first look, as in Workerman).
pub(crate) fn status_table(report: &Report, previous: &mut HashMap<u64, (Instant, u64)>) -> String {
    let now = Instant::now();
    let mut out = String::new();
    let mode = if report.daemon { "DAEMON" } else { "DEBUG" };
    let run = (log::now_seconds() - report.started_at).max(0);
    let _ = writeln!(out, "Start worker in {mode} mode.");
    let _ = writeln!(out, "{:-^110}", "GLOBAL STATUS");
    let _ = writeln!(out, "{}", super::terminal::version_line());
    let _ = writeln!(
        out,
        "start time:{}   run {} days {} hours   load average: {}",
        log::local_time(report.started_at),
        run / 86_400,
        run % 86_400 / 3600,
        load_average().join(", ")
    );
    let _ = writeln!(
        out,
        "{} workers       {} processes",
        report.worker_count, report.process_count
    );
    let mut exit_rows = vec![
        ["name", "event-loop", "exit_status", "exit_count"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for (name, exits) in &report.groups {
        if exits.is_empty() {
            exit_rows.push(vec![name.clone(), "mio".into(), "0".into(), "0".into()]);
        }
        for (status, count) in exits {
            exit_rows.push(vec![
                name.clone(),
                "mio".into(),
                status.clone(),
                count.to_string(),
            ]);
        }
    }
    out.push_str(&table(&exit_rows));
    let _ = writeln!(out, "{:-^110}", "PROCESS STATUS");
    // Workerman's ten columns, in its order; `panics` and `refused` (ours) last.
    let mut rows = vec![
        [
            "pid",
            "memory",
            "listening",
            "name",
            "connections",
            "send_fail",
            "timers",
            "total_request",
            "qps",
            "status",
            "panics",
            "refused",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let mut total = Figures {
        memory: 0,
        connections: 0,
        send_fail: 0,
        timers: 0,
        total_request: 0,
        panics: 0,
        refused: 0,
    };
    let mut total_qps = 0;
    for process in &report.processes {
        let Some(figures) = process.figures else {
            let mut row = vec![
                process.pid.to_string(),
                "N/A".to_owned(),
                process.listening.clone(),
                process.worker_name.clone(),
            ];
            row.extend(["N/A"; 5].map(str::to_owned));
            row.extend(["[busy]", "N/A", "N/A"].map(str::to_owned));
            rows.push(row);
            continue;
        };
        let requests = figures.total_request;
        let qps = match previous.insert(process.pid, (now, requests)) {
            Some((then, before)) if now > then => {
                let seconds = now.duration_since(then).as_secs_f64();
                (requests.saturating_sub(before) as f64 / seconds).round() as u64
            }
            _ => 0,
        };
        total.memory += figures.memory;
        total.connections += figures.connections;
        total.send_fail += figures.send_fail;
        total.timers += figures.timers;
        total.total_request += requests;
        total.panics += figures.panics;
        total.refused += figures.refused;
        total_qps += qps;
        rows.push(vec![
            process.pid.to_string(),
            megabytes(figures.memory),
            process.listening.clone(),
            process.worker_name.clone(),
            figures.connections.to_string(),
            figures.send_fail.to_string(),
            figures.timers.to_string(),
            requests.to_string(),
            qps.to_string(),
            "[idle]".to_owned(),
            figures.panics.to_string(),
            figures.refused.to_string(),
        ]);
    }
    rows.push(vec![
        "Summary".to_owned(),
        megabytes(total.memory),
        "-".to_owned(),
        "-".to_owned(),
        total.connections.to_string(),
        total.send_fail.to_string(),
        total.timers.to_string(),
        total.total_request.to_string(),
        total_qps.to_string(),
        "[Summary]".to_owned(),
        total.panics.to_string(),
        total.refused.to_string(),
    ]);
    let laid_out = table(&rows);
    // The summary row goes under a rule, as in Workerman.
    let mut lines: Vec<&str> = laid_out.lines().collect();
    let summary = lines.pop().unwrap_or_default();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    let _ = writeln!(out, "{:-^110}\n{summary}", "PROCESS STATUS");
    out
}

/// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(control));
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// `status --json`: one document, `{"master": {..}, "workers": [..], "processes": [..]}`.
pub(crate) fn status_json(report: &Report) -> String {
    let mut out = String::new();
    let load: Vec<String> = load_average()
        .iter()
        .map(|value| value.parse::<f64>().unwrap_or(0.0).to_string())
        .collect();
    let _ = write!(
        out,
        "{{\"master\":{{\"pid\":{},\"start_time\":{},\"daemon\":{},\"workers\":{},\
         \"processes\":{},\"version\":{},\"load_average\":[{}]}},\"workers\":[",
        report.master_pid,
        report.started_at,
        report.daemon,
        report.worker_count,
        report.process_count,
        json_string(env!("CARGO_PKG_VERSION")),
        load.join(",")
    );
    for (index, (name, exits)) in report.groups.iter().enumerate() {
        let exits: Vec<String> = exits
            .iter()
            .map(|(status, count)| format!("{}:{count}", json_string(status)))
            .collect();
        let _ = write!(
            out,
            "{}{{\"name\":{},\"exits\":{{{}}}}}",
            if index > 0 { "," } else { "" },
            json_string(name),
            exits.join(",")
        );
    }
    out.push_str("],\"processes\":[");
    for (index, process) in report.processes.iter().enumerate() {
        let figures = match process.figures {
            Some(f) => format!(
                "\"status\":\"idle\",\"memory\":{},\"connections\":{},\"send_fail\":{},\
                 \"timers\":{},\"total_request\":{},\"panics\":{},\"refused\":{}",
                f.memory, f.connections, f.send_fail, f.timers, f.total_request, f.panics, f.refused
            ),
            None => "\"status\":\"busy\",\"memory\":null,\"connections\":null,\
                     \"send_fail\":null,\"timers\":null,\"total_request\":null,\"panics\":null,\"refused\":null"
                .to_owned(),
        };
        let _ = write!(
            out,
            "{}{{\"pid\":{},\"worker_name\":{},\"id\":{},\"listening\":{},{figures}}}",
            if index > 0 { "," } else { "" },
            process.pid,
            json_string(&process.worker_name),
            process.id,
            json_string(&process.listening),
        );
    }
    out.push_str("]}\n");
    out
}

/// One line of `connections`, as a worker wrote it (see `status::write_connection_lines`).
#[derive(Debug)]
pub(crate) struct ConnectionRow {
    pub(crate) fields: Vec<String>,
}

/// The connections file's `connection` lines.
pub(crate) fn parse_connections(text: &str) -> Vec<ConnectionRow> {
    text.lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|fields| fields.first() == Some(&"connection") && fields.len() >= 15)
        .map(|fields| ConnectionRow {
            fields: fields[1..15]
                .iter()
                .map(|field| (*field).to_owned())
                .collect(),
        })
        .collect()
}

/// Workerman's `bytesFormat`: `512B`, `1.5KB`, `2.3MB`, ...
fn bytes_format(field: &str) -> String {
    let bytes: f64 = field.parse().unwrap_or(0.0);
    const UNITS: [(f64, &str); 4] = [
        (1024.0 * 1024.0 * 1024.0 * 1024.0, "TB"),
        (1024.0 * 1024.0 * 1024.0, "GB"),
        (1024.0 * 1024.0, "MB"),
        (1024.0, "KB"),
    ];
    for (size, unit) in UNITS {
        if bytes > size {
            return format!("{}{unit}", (bytes / size * 10.0).round() / 10.0);
        }
    }
    format!("{bytes}B")
}

/// The columns of `connections`, in Workerman's order.
const CONNECTION_COLUMNS: [&str; 14] = [
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
];

/// Workerman's connection screen (byte counts as it formats them).
pub(crate) fn connections_table(rows: &[ConnectionRow]) -> String {
    let mut cells = vec![CONNECTION_COLUMNS.map(str::to_owned).to_vec()];
    for row in rows {
        let mut line = row.fields.clone();
        for cell in &mut line[7..=10] {
            *cell = bytes_format(cell);
        }
        cells.push(line);
    }
    format!(
        "{:-^130}\n{}",
        " WORKERMAN CONNECTION STATUS ",
        table(&cells)
    )
}

/// `connections --json`: `{"connections": [..]}`, byte counts as numbers.
pub(crate) fn connections_json(rows: &[ConnectionRow]) -> String {
    let mut out = String::from("{\"connections\":[");
    for (index, row) in rows.iter().enumerate() {
        let f = &row.fields;
        let number = |index: usize| f[index].parse::<u64>().unwrap_or(0);
        let _ = write!(
            out,
            "{}{{\"pid\":{},\"worker_name\":{},\"connection_id\":{},\"transport\":{},\"protocol\":{},\
             \"ipv4\":{},\"ipv6\":{},\"recv_q\":{},\"send_q\":{},\"bytes_read\":{},\
             \"bytes_written\":{},\"status\":{},\"local_address\":{},\"remote_address\":{}}}",
            if index > 0 { "," } else { "" },
            number(0),
            json_string(&f[1]),
            number(2),
            json_string(&f[3]),
            json_string(&f[4]),
            f[5] == "1",
            f[6] == "1",
            number(7),
            number(8),
            number(9),
            number(10),
            json_string(&f[11]),
            json_string(&f[12]),
            json_string(&f[13]),
        );
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn bytes_as_workerman_formats_them() {
        assert_eq!(bytes_format("512"), "512B");
        assert_eq!(bytes_format("1536"), "1.5KB");
        assert_eq!(bytes_format("3145728"), "3MB");
    }

    #[test]
    fn a_process_that_did_not_answer_is_busy() {
        let text = "master\t10\t0\t1\t2\t1\ngroup\tweb\tSIGKILL=1\n\
                    slot\t11\t0\tweb\thttp://0.0.0.0:80\nslot\t12\t1\tweb\thttp://0.0.0.0:80\n\
                    process\t11\t1048576\thttp://0.0.0.0:80\tweb\t3\t0\t1\t40\t2\n";
        let report = parse(text);
        assert!(report.daemon);
        assert_eq!(
            report.groups,
            vec![("web".to_owned(), vec![("SIGKILL".to_owned(), 1)])]
        );
        assert_eq!(
            report.processes[0].figures.map(|f| f.total_request),
            Some(40)
        );
        assert!(report.processes[1].figures.is_none());
        let table = status_table(&report, &mut HashMap::new());
        assert!(table.contains("[busy]") && table.contains("Start worker in DAEMON mode."));
        let json: serde_json::Value = serde_json::from_str(&status_json(&report)).unwrap();
        assert_eq!(json["processes"][1]["status"], "busy");
        assert_eq!(json["processes"][0]["panics"], 2);
        assert_eq!(json["workers"][0]["exits"]["SIGKILL"], 1);
    }
}
