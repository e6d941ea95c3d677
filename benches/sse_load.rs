//! The SSE load generator: holds N concurrent event streams against a URL and measures what the
//! server does with them. See `docs/benchmarks.md` for the scenarios and `benches/run.sh` for
//! how they are run.
//!
//! ```text
//! cargo bench --bench sse_load -- run --url http://127.0.0.1:18080/ --streams 10000 \
//!     [--cafile CA.pem | --insecure]   # with an https:// URL \
//!     [--procs P] [--addrs A] [--rate 4000] [--warmup 3] [--duration 10] [--interval S] \
//!     [--server-pid PID] \
//!     [--scenario NAME] [--server NAME] [--publish-url URL] [--publishes 5] [--storm SECS] \
//!     [--publish-rate R] [--grace 3] [--report-limit 120] \
//!     [--rep N] [--csv FILE] [--json FILE]
//! cargo bench --bench sse_load -- plot --csv FILE --out FILE.svg
//! cargo bench --bench sse_load -- table --csv FILE
//! cargo bench --bench sse_load -- summary [--sse FILE] [--http FILE]   # medians and ratios
//! cargo bench --bench sse_load -- cpu PID      # CPU time of PID and its descendants, in ns
//! cargo bench --bench sse_load -- mem PID      # resident memory of PID and its descendants
//! ```
//!
//! `run` spawns itself `P` times (by default one process per 15,000 streams, at least one), each
//! child connecting from its own source address 127.0.0.2, 127.0.0.3, … (so no address runs out
//! of ephemeral ports, and no process needs more than 20,000 descriptors). The parent shows a
//! progress bar while streams ramp up, waits `--warmup` seconds so every stream has had an event,
//! then measures for `--duration` seconds: events, inter-event gaps, the server's CPU time
//! (`/proc/<pid>/task/*/schedstat`, summed over the server and its child processes), its
//! resident memory (`VmRSS`, same sum) against the empty server measured before the first
//! connection, and the kernel's TCP socket memory (`/proc/net/sockstat`, which counts both ends
//! of these loopback connections). With `--publish-url` it POSTs `--publishes` events spread over
//! the window and times each from the POST to the last subscriber's receipt (fan-out); with
//! `--storm SECS` it POSTs back to back for that long instead; with `--publish-rate R`, R per
//! second from the window's start until `--grace` seconds before its end. The POSTs are
//! closed-loop (each waits for the previous answer), so when the server answers late they run
//! past that point; the window then ends `--grace` seconds after the last answer. Each publish's
//! fan-out is the time from its POST to the last stream's receipt; the figures are its p50,
//! p99 (nearest rank) and max, and how many publishes reached every stream held. Every publish
//! a stream lacks at the end is counted as one of two kinds: a *hole* (the stream got a later
//! publish: this one was lost) or the *tail* (after the last one it got: still on its way), and
//! publishes a stream got twice or out of order as *repeats*.
//!
//! The children report once the window ends; one that has not reported within
//! `--report-limit` seconds (120) is killed, and the row's `unreported_procs` says how many.
//!
//! An `https://` URL makes every stream a TLS client (rustls, TLS 1.3 or 1.2 as the server
//! picks, the `ring` provider): the server's certificate is verified against `--cafile` (PEM),
//! or not at all with the explicit `--insecure`. Each child shares one client configuration; a
//! stream holds its rustls connection and nothing more, and its handshake is done once, at ramp.
//!
//! `--addrs A` spreads the children over A source addresses (by default one each). With
//! `--interval S` (the server's event interval) it also reports the events due in the window
//! beside those delivered, and how many streams got more events than their ticks in the window
//! (a burst) or fewer (a missed tick). Its own CPU (the parent and its children) is reported
//! beside the server's, to show that the generator is not the bottleneck.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

/// Streams per child process when `--procs` is not given.
const STREAMS_PER_PROC: usize = 15_000;
/// Gap histogram: 100 µs buckets up to 60 s.
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 600_000;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("run") => parent(&Args(args[1..].to_vec())),
        Some("child") => child(&Args(args[1..].to_vec())),
        Some("plot") => plot(&Args(args[1..].to_vec())),
        Some("table") => table(&Args(args[1..].to_vec())),
        Some("summary") => summary(&Args(args[1..].to_vec())),
        Some("cpu") => println!("{}", cpu_ns(pid_arg(&args))),
        Some("mem") => println!("{}", rss_bytes(pid_arg(&args))),
        _ => {
            // A plain `cargo bench` runs every bench target: do nothing then.
            eprintln!(
                "usage: sse_load run|plot|table|cpu|mem ... (see the top of benches/sse_load.rs)"
            );
        }
    }
}

fn pid_arg(args: &[String]) -> u32 {
    args.get(1)
        .and_then(|p| p.parse().ok())
        .expect("a process id")
}

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<String> {
        let flag = format!("--{name}");
        let i = self.0.iter().position(|a| *a == flag)?;
        self.0.get(i + 1).cloned()
    }
    fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("--{name} {v}: not a number")),
            None => default,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readings

/// `pid` and every process descending from it.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // The fields after the command's closing parenthesis: state, ppid, ...
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                    parents.push((p, ppid));
                }
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// CPU time (user + system, ns) of the process tree: the sum of every thread's schedstat.
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for p in process_tree(pid) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Ok(text) = std::fs::read_to_string(path) {
                total += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// Resident memory (`VmRSS`, bytes) of the process tree.
fn rss_bytes(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum::<u64>()
        * 1024
}

/// The kernel's TCP socket memory (`/proc/net/sockstat`, `TCP: ... mem N` pages), in bytes.
fn sock_mem_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let page = 4096;
    text.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "mem")?;
            words.get(i + 1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
        * page
}

/// Kernel memory in the slab caches of TCP sockets (`TCP`, `sock_inode_cache`: active objects
/// times object size, from `/proc/slabinfo`), in bytes; 0 where it cannot be read.
fn sock_slab_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/slabinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() > 3 && (w[0] == "TCP" || w[0] == "sock_inode_cache") {
                Some(w[1].parse::<u64>().ok()? * w[3].parse::<u64>().ok()?)
            } else {
                None
            }
        })
        .sum()
}

/// The median of five readings 100 ms apart (the kernel's counters jump while sockets of
/// other programs come and go).
fn sampled(read: fn() -> u64) -> u64 {
    let mut values: Vec<u64> = (0..5)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            read()
        })
        .collect();
    values.sort_unstable();
    values[2]
}

/// Waits (at most 10 s) until the TCP sockets in use (`/proc/net/sockstat`, `inuse`) stop
/// falling, so the base readings do not count the sockets of a run that just ended.
fn settle_sockets() {
    let inuse = || {
        let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with("TCP:"))
            .and_then(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let start = Instant::now();
    let mut last = inuse();
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        let now = inuse();
        if now >= last {
            break;
        }
        last = now;
    }
}

fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on a value on the stack.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            return limit.rlim_cur;
        }
    }
    0
}

// ---------------------------------------------------------------------------------------------
// The parent: spawn children, show progress, measure, report

struct Url {
    addr: SocketAddr,
    host: String,
    path: String,
    /// `https://`: the streams speak TLS.
    tls: bool,
}

fn parse_url(url: &str) -> Url {
    let (rest, tls) = match url.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => (
            url.strip_prefix("http://")
                .unwrap_or_else(|| panic!("{url}: only http:// and https:// URLs")),
            false,
        ),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("{authority}: cannot resolve"));
    Url {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        tls,
    }
}

/// The TLS client configuration of an `https://` run: `--cafile` roots, or `--insecure`.
fn tls_config(args: &Args) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions");
    let builder = match (args.get("cafile"), args.0.iter().any(|a| a == "--insecure")) {
        (Some(cafile), _) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&cafile)
                .unwrap_or_else(|e| panic!("--cafile {cafile}: {e}"))
            {
                roots
                    .add(cert.unwrap_or_else(|e| panic!("--cafile {cafile}: {e}")))
                    .unwrap_or_else(|e| panic!("--cafile {cafile}: {e}"));
            }
            builder.with_root_certificates(roots)
        }
        (None, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(NoVerification(provider))),
        (None, false) => panic!("an https:// URL needs --cafile CA.pem (or --insecure)"),
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}

/// `--insecure`: any certificate is accepted (signatures are still checked, so the handshake
/// costs what a verifying one does, less the chain's verification).
#[derive(Debug)]
struct NoVerification(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

struct ChildProc {
    process: Child,
    stdin: std::process::ChildStdin,
    connected: u64,
    failed: u64,
    closed: u64,
    ramped: bool,
}

#[derive(Default)]
struct Results {
    events: u64,
    hist: Vec<u64>,
    fanout: HashMap<u64, (u64, u64)>,
    /// Streams that got more events in the window than their ticks (a burst), or fewer.
    over_due: u64,
    under_due: u64,
    /// Over the open streams: publishes lost between two received ones, publishes received
    /// twice or out of order, the streams, and the sum of each one's last publish number.
    seq_holes: u64,
    seq_repeats: u64,
    seq_streams: u64,
    last_seq_sum: u64,
    done: usize,
}

fn parent(args: &Args) {
    raise_nofile();
    let url = args.get("url").expect("--url http://host:port/path");
    let streams: usize = args.num("streams", 1000);
    let procs: usize = args
        .num("procs", 0)
        .max(streams.div_ceil(STREAMS_PER_PROC))
        .max(1);
    let rate: f64 = args.num("rate", 4000.0);
    let warmup: f64 = args.num("warmup", 3.0);
    let duration: f64 = args.num("duration", 10.0);
    let server_pid: Option<u32> = args.get("server-pid").map(|p| p.parse().expect("pid"));
    let scenario = args.or("scenario", "sse");
    let server = args.or("server", "server");
    let publish_url = args.get("publish-url").map(|u| parse_url(&u));
    let publishes: u64 = args.num("publishes", 5);
    let publish_rate: f64 = args.num("publish-rate", 0.0);
    let grace: f64 = args.num("grace", 3.0);
    let storm: f64 = args.num("storm", 0.0);
    let first_src: u8 = args.num("src-base", 2);
    // Source addresses to spread the children over (each has about 28,000 ephemeral ports).
    let addrs: usize = args
        .num("addrs", procs)
        .clamp(1, 250 - usize::from(first_src));
    // The server's event interval, when it has one: the events due in the window, and streams
    // that got more (a burst) or fewer (a missed tick) than their share.
    let interval: f64 = args.num("interval", 0.0);
    // An https:// URL: the children verify with --cafile, or not with --insecure.
    let mut tls_args: Vec<String> = Vec::new();
    if let Some(cafile) = args.get("cafile") {
        tls_args.extend(["--cafile".to_owned(), cafile]);
    }
    if args.0.iter().any(|a| a == "--insecure") {
        tls_args.push("--insecure".to_owned());
    }
    if parse_url(&url).tls {
        drop(tls_config(args)); // fails here, once, on a bad --cafile
    }

    // The empty server, before any stream, once the sockets of earlier runs are gone.
    settle_sockets();
    let rss_base = server_pid.map(rss_bytes).unwrap_or(0);
    let sock_base = sampled(sock_mem_bytes);
    let slab_base = sampled(sock_slab_bytes);

    let exe = std::env::current_exe().expect("current_exe");
    let (lines_tx, lines_rx) = mpsc::channel::<(usize, String)>();
    let mut children: Vec<ChildProc> = Vec::new();
    for i in 0..procs {
        let share = streams / procs + usize::from(i < streams % procs);
        let src = Ipv4Addr::new(127, 0, 0, first_src + (i % addrs) as u8);
        let mut process = Command::new(&exe)
            .args([
                "child",
                "--url",
                &url,
                "--streams",
                &share.to_string(),
                "--src",
                &src.to_string(),
                "--rate",
                &(rate / procs as f64).to_string(),
                "--interval",
                &interval.to_string(),
            ])
            .args(tls_args.iter())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child generator");
        let stdin = process.stdin.take().expect("stdin");
        let stdout = process.stdout.take().expect("stdout");
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((i, line)).is_err() {
                    break;
                }
            }
        });
        children.push(ChildProc {
            process,
            stdin,
            connected: 0,
            failed: 0,
            closed: 0,
            ramped: false,
        });
    }
    drop(lines_tx);

    // Ramp, with a progress bar.
    let ramp_start = Instant::now();
    let ramp_limit = Duration::from_secs_f64(streams as f64 / rate + 30.0);
    let mut last_bar = Instant::now() - Duration::from_secs(1);
    loop {
        while let Ok((i, line)) = lines_rx.recv_timeout(Duration::from_millis(100)) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("P") => {
                    let c = &mut children[i];
                    c.connected = words[1].parse().unwrap_or(0);
                    c.failed = words[2].parse().unwrap_or(0);
                    c.closed = words[3].parse().unwrap_or(0);
                }
                Some("R") => children[i].ramped = true,
                _ => {}
            }
            if last_bar.elapsed() >= Duration::from_millis(250) {
                break;
            }
        }
        let connected: u64 = children.iter().map(|c| c.connected).sum();
        let failed: u64 = children.iter().map(|c| c.failed).sum();
        if last_bar.elapsed() >= Duration::from_millis(250) {
            progress(connected, failed, streams, ramp_start.elapsed());
            last_bar = Instant::now();
        }
        if children.iter().all(|c| c.ramped) || ramp_start.elapsed() > ramp_limit {
            let connected: u64 = children.iter().map(|c| c.connected).sum();
            progress(connected, failed, streams, ramp_start.elapsed());
            eprintln!();
            break;
        }
    }
    let ramp_secs = ramp_start.elapsed().as_secs_f64();

    // Let every stream get its first event, then measure.
    drain_for(&lines_rx, &mut children, Duration::from_secs_f64(warmup));
    let cpu_start = server_pid.map(cpu_ns).unwrap_or(0);
    let client_cpu_start = cpu_ns(std::process::id());
    for c in &mut children {
        let _ = c.stdin.write_all(b"M\n");
    }
    let measure_start = Instant::now();
    let mut publish_times: Vec<(u64, u64)> = Vec::new();
    let mut storm_secs = 0.0;
    let mut quiet_end = 0.0f64;
    if let Some(target) = &publish_url {
        let mut client = HttpClient::connect(target);
        if storm > 0.0 {
            let start = Instant::now();
            let mut seq = 0;
            while start.elapsed().as_secs_f64() < storm {
                seq += 1;
                let sent = realtime_ns();
                if client.publish(target, seq).is_err() {
                    eprintln!("sse_load: publish {seq} failed");
                    break;
                }
                publish_times.push((seq, sent));
                drain(&lines_rx, &mut children);
            }
            storm_secs = start.elapsed().as_secs_f64();
        } else {
            // `--publish-rate R`: one publish every 1/R s, the last `--grace` s before the
            // window's end (so that its fan-out ends inside the window); else `--publishes`
            // spread over the window.
            let (every, publishes) = if publish_rate > 0.0 {
                let span = (duration - grace).max(0.0);
                (1.0 / publish_rate, (span * publish_rate).floor() as u64)
            } else {
                (duration / (publishes as f64 + 1.0), publishes)
            };
            for seq in 1..=publishes {
                let due = measure_start + Duration::from_secs_f64(every * seq as f64);
                drain_for(
                    &lines_rx,
                    &mut children,
                    due.saturating_duration_since(Instant::now()),
                );
                let sent = realtime_ns();
                if client.publish(target, seq).is_err() {
                    eprintln!("sse_load: publish {seq} failed");
                    break;
                }
                publish_times.push((seq, sent));
            }
            // The POSTs are closed-loop: when the server answers late they run past the
            // window's planned end. The quiet end (`--grace`) still follows the last one.
            quiet_end = measure_start.elapsed().as_secs_f64() + grace;
        }
    }
    let window_end =
        measure_start + Duration::from_secs_f64(duration.max(storm_secs).max(quiet_end));
    drain_for(
        &lines_rx,
        &mut children,
        window_end.saturating_duration_since(Instant::now()),
    );
    for c in &mut children {
        let _ = c.stdin.write_all(b"E\n");
    }
    let window = measure_start.elapsed().as_secs_f64();
    let cpu_end = server_pid.map(cpu_ns).unwrap_or(0);
    let client_cpu = cpu_ns(std::process::id()).saturating_sub(client_cpu_start);
    let rss = server_pid.map(rss_bytes).unwrap_or(0);
    let sock = sampled(sock_mem_bytes);
    let slab = sampled(sock_slab_bytes);

    // Collect what the children saw.
    let mut results = Results {
        hist: vec![0; BUCKETS],
        ..Results::default()
    };
    // A starved child may report late; past the deadline it is not waited for, and the row
    // says how many did not report (their streams count as held but their events are missing).
    let report_deadline = Instant::now() + Duration::from_secs_f64(args.num("report-limit", 120.0));
    let mut reported = vec![false; children.len()];
    while results.done < children.len() {
        let left = report_deadline.saturating_duration_since(Instant::now());
        let Ok((i, line)) = lines_rx.recv_timeout(left.min(Duration::from_secs(30))) else {
            if Instant::now() >= report_deadline {
                eprintln!(
                    "sse_load: {} of {} children did not report within the report limit",
                    children.len() - results.done,
                    children.len()
                );
                break;
            }
            continue;
        };
        let w: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        match line.split_whitespace().next() {
            Some("P") if w.len() == 3 => {
                children[i].connected = w[0];
                children[i].failed = w[1];
                children[i].closed = w[2];
            }
            Some("S") if !w.is_empty() => results.events += w[0],
            Some("C") if w.len() == 2 => {
                results.over_due += w[0];
                results.under_due += w[1];
            }
            Some("H") if w.len() == 2 => results.hist[w[0] as usize] += w[1],
            Some("F") if w.len() == 3 => {
                let entry = results.fanout.entry(w[0]).or_insert((0, 0));
                entry.0 += w[1];
                entry.1 = entry.1.max(w[2]);
            }
            Some("G") if w.len() == 4 => {
                results.seq_holes += w[0];
                results.seq_repeats += w[1];
                results.seq_streams += w[2];
                results.last_seq_sum += w[3];
            }
            Some("D") => {
                results.done += 1;
                reported[i] = true;
            }
            _ => {}
        }
    }
    let unreported = reported.iter().filter(|r| !**r).count();
    for c in &mut children {
        let _ = c.stdin.write_all(b"Q\n");
    }
    for (c, reported) in children.iter_mut().zip(&reported) {
        if !reported {
            let _ = c.process.kill();
        }
        let _ = c.process.wait();
    }

    // The figures.
    let connected: u64 = children.iter().map(|c| c.connected).sum();
    let failed: u64 = children.iter().map(|c| c.failed).sum();
    let closed: u64 = children.iter().map(|c| c.closed).sum();
    let held = connected.saturating_sub(closed);
    let (p50, p99, max) = percentiles(&results.hist);
    let cpu = cpu_end.saturating_sub(cpu_start);
    let mut fanouts: Vec<f64> = Vec::new();
    let mut delivered = 0u64;
    // Publishes that every stream held at the end received (counted per stream, once each).
    let mut reached_all = 0u64;
    for (seq, sent) in &publish_times {
        if let Some((count, last)) = results.fanout.get(seq) {
            delivered += count;
            if *count >= held {
                reached_all += 1;
            }
            fanouts.push(last.saturating_sub(*sent) as f64 / 1e6);
        }
    }
    fanouts.sort_by(f64::total_cmp);
    let fanout_p50 = median(&fanouts);
    // Nearest rank: the publish-to-last-subscriber time 99% of the publishes stayed within.
    let fanout_p99 = if fanouts.is_empty() {
        f64::NAN
    } else {
        fanouts[(fanouts.len() * 99).div_ceil(100).max(1) - 1]
    };
    let fanout_max = fanouts.last().copied().unwrap_or(f64::NAN);
    let expected = publish_times.len() as u64 * held;
    let row: Vec<(&str, String)> = vec![
        ("scenario", scenario.clone()),
        ("server", server.clone()),
        ("rep", args.or("rep", "1")),
        ("streams", streams.to_string()),
        ("procs", procs.to_string()),
        ("held", held.to_string()),
        ("failures", (failed + closed).to_string()),
        ("ramp_s", format!("{ramp_secs:.2}")),
        ("window_s", format!("{window:.2}")),
        ("events", results.events.to_string()),
        (
            "events_per_s",
            format!("{:.0}", results.events as f64 / window),
        ),
        (
            "events_due_per_s",
            if interval > 0.0 {
                format!("{:.0}", held as f64 / interval)
            } else {
                String::new()
            },
        ),
        (
            "delivered_vs_due",
            if interval > 0.0 && held > 0 {
                format!(
                    "{:.4}",
                    results.events as f64 / window / (held as f64 / interval)
                )
            } else {
                String::new()
            },
        ),
        (
            "streams_over_due",
            if interval > 0.0 {
                results.over_due.to_string()
            } else {
                String::new()
            },
        ),
        (
            "streams_under_due",
            if interval > 0.0 {
                results.under_due.to_string()
            } else {
                String::new()
            },
        ),
        ("gap_p50_ms", fmt_ms(p50)),
        ("gap_p99_ms", fmt_ms(p99)),
        ("gap_max_ms", fmt_ms(max)),
        ("rss_base_b", rss_base.to_string()),
        ("rss_b", rss.to_string()),
        (
            "rss_per_stream_b",
            per(rss.saturating_sub(rss_base) as f64, held),
        ),
        ("sockmem_base_b", sock_base.to_string()),
        ("sockmem_b", sock.to_string()),
        (
            "sockmem_per_stream_b",
            per(sock.saturating_sub(sock_base) as f64, held),
        ),
        (
            "sockslab_per_stream_b",
            per(slab.saturating_sub(slab_base) as f64, held),
        ),
        ("server_cpu_ms", format!("{:.1}", cpu as f64 / 1e6)),
        (
            "server_cpu_util",
            format!("{:.3}", cpu as f64 / 1e9 / window),
        ),
        ("cpu_per_event_ns", per(cpu as f64, results.events)),
        ("client_procs", procs.to_string()),
        ("client_addrs", addrs.to_string()),
        ("client_cpu_ms", format!("{:.1}", client_cpu as f64 / 1e6)),
        (
            "client_cpu_util",
            format!("{:.3}", client_cpu as f64 / 1e9 / window),
        ),
        ("publishes", publish_times.len().to_string()),
        (
            "publishes_per_s",
            if storm_secs > 0.0 {
                format!("{:.1}", publish_times.len() as f64 / storm_secs)
            } else {
                String::new()
            },
        ),
        (
            "delivered_frac",
            if expected > 0 {
                format!("{:.4}", delivered as f64 / expected as f64)
            } else {
                String::new()
            },
        ),
        ("fanout_p50_ms", nan_empty(fanout_p50, 3)),
        ("fanout_p99_ms", nan_empty(fanout_p99, 3)),
        ("fanout_max_ms", nan_empty(fanout_max, 3)),
        ("publishes_reached_all", reached_all.to_string()),
        // Every publish a stream lacked at the end is either a hole (it got a later one: lost)
        // or still on its way (after its last one: the tail).
        ("publish_holes", results.seq_holes.to_string()),
        ("publish_repeats", results.seq_repeats.to_string()),
        (
            "publish_tail",
            (publish_times.len() as u64 * results.seq_streams)
                .saturating_sub(results.last_seq_sum)
                .to_string(),
        ),
        ("unreported_procs", unreported.to_string()),
        (
            "fanout_per_sub_ns",
            if fanout_p50.is_nan() || held == 0 {
                String::new()
            } else {
                format!("{:.1}", fanout_p50 * 1e6 / held as f64)
            },
        ),
    ];
    let mut row = row;
    // How busy the machine was (other programs share it): the 1-minute load average at the end.
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    row.push((
        "loadavg_1m",
        loadavg.split_whitespace().next().unwrap_or("").to_string(),
    ));
    print_table(&row);
    if let Some(path) = args.get("csv") {
        append_csv(&path, &row);
    }
    if let Some(path) = args.get("json") {
        let mut json = String::from("{");
        for (i, (k, v)) in row.iter().enumerate() {
            let value = if v.is_empty() {
                "null".to_string()
            } else if v.parse::<f64>().is_ok() {
                v.clone()
            } else {
                format!("\"{v}\"")
            };
            let _ = write!(json, "{}\"{k}\":{value}", if i > 0 { "," } else { "" });
        }
        json.push_str("}\n");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("--json file");
        file.write_all(json.as_bytes()).expect("write --json");
    }
}

fn per(total: f64, count: u64) -> String {
    if count == 0 {
        String::new()
    } else {
        format!("{:.1}", total / count as f64)
    }
}

fn nan_empty(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        String::new()
    } else {
        format!("{value:.decimals$}")
    }
}

fn fmt_ms(us: Option<u64>) -> String {
    us.map(|v| format!("{:.1}", v as f64 / 1000.0))
        .unwrap_or_default()
}

fn median(sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    }
}

/// p50, p99 and max of the gap histogram, in µs (the upper edge of the bucket).
fn percentiles(hist: &[u64]) -> (Option<u64>, Option<u64>, Option<u64>) {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return (None, None, None);
    }
    let at = |q: f64| {
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((i as u64 + 1) * BUCKET_US);
            }
        }
        None
    };
    let max = hist
        .iter()
        .rposition(|&n| n > 0)
        .map(|i| (i as u64 + 1) * BUCKET_US);
    (at(0.50), at(0.99), max)
}

fn progress(connected: u64, failed: u64, target: usize, elapsed: Duration) {
    let width = 40;
    let filled = ((connected as f64 / target.max(1) as f64) * width as f64) as usize;
    eprint!(
        "\r[{}{}] {connected}/{target} streams, {failed} failed, {:.1} s ",
        "#".repeat(filled.min(width)),
        " ".repeat(width - filled.min(width)),
        elapsed.as_secs_f64()
    );
    let _ = std::io::stderr().flush();
}

fn drain(rx: &mpsc::Receiver<(usize, String)>, children: &mut [ChildProc]) {
    while let Ok((i, line)) = rx.try_recv() {
        note(&mut children[i], &line);
    }
}

fn drain_for(rx: &mpsc::Receiver<(usize, String)>, children: &mut [ChildProc], wait: Duration) {
    let end = Instant::now() + wait;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((i, line)) => note(&mut children[i], &line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left);
                break;
            }
        }
    }
}

fn note(child: &mut ChildProc, line: &str) {
    let w: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    if line.starts_with("P ") && w.len() == 3 {
        child.connected = w[0];
        child.failed = w[1];
        child.closed = w[2];
    }
}

fn print_table(row: &[(&str, String)]) {
    let width = row.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in row {
        println!("  {k:<width$}  {}", if v.is_empty() { "-" } else { v });
    }
}

fn append_csv(path: &str, row: &[(&str, String)]) {
    let exists = std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("--csv file");
    let mut text = String::new();
    if !exists {
        text.push_str(&row.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text.push_str(
        &row.iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    text.push('\n');
    file.write_all(text.as_bytes()).expect("write --csv");
}

/// A blocking keep-alive HTTP/1.1 client for `POST /publish`.
struct HttpClient {
    stream: StdStream,
    buf: Vec<u8>,
}

impl HttpClient {
    fn connect(url: &Url) -> HttpClient {
        let stream = StdStream::connect(url.addr).expect("connect to --publish-url");
        let _ = stream.set_nodelay(true);
        HttpClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// POSTs `pub <seq>` and waits for the whole response.
    fn publish(&mut self, url: &Url, seq: u64) -> std::io::Result<()> {
        let body = format!("pub {seq}");
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            url.path,
            url.host,
            body.len()
        );
        self.stream.write_all(request.as_bytes())?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    // nchan answers a publish 201 (or 202 with no subscriber).
                    if !head.starts_with("http/1.1 2") {
                        return Err(std::io::Error::other(head));
                    }
                    self.buf.drain(..end + 4 + length);
                    return Ok(());
                }
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// A child: one mio loop holding its share of the streams

const WAKER: Token = Token(usize::MAX);

#[derive(PartialEq)]
enum Phase {
    Connecting,
    Head,
    Body,
}

/// One stream's state: a few dozen bytes beside the socket.
struct Stream {
    socket: TcpStream,
    /// `https://`: the stream's TLS client (its handshake, then records both ways).
    tls: Option<Box<rustls::ClientConnection>>,
    phase: Phase,
    /// The response head while it arrives (freed after).
    head: Vec<u8>,
    chunked: bool,
    /// Chunked framing: bytes left in the current chunk, or the state of the size line.
    chunk_left: u64,
    chunk_state: u8,
    /// The SSE line being read: only its first bytes are kept.
    line: [u8; 24],
    line_len: u8,
    line_cr: bool,
    has_data: bool,
    publish_seq: u64,
    /// The highest publish sequence number this stream received (publishes are numbered 1, 2, …
    /// in the order they were POSTed; every stream is open before the first).
    last_seq: u32,
    last_event: u64,
    /// Events in the measuring window.
    window_events: u16,
}

struct ChildState {
    measuring: bool,
    events: u64,
    hist: Vec<u32>,
    fanout: HashMap<u64, (u64, u64)>,
    /// Publishes a stream never got although it got a later one (a hole: lost), and publishes
    /// a stream got again or after a later one (out of order).
    seq_holes: u64,
    seq_repeats: u64,
    connected: u64,
    failed: u64,
    closed: u64,
}

fn child(args: &Args) {
    raise_nofile();
    let url = parse_url(&args.get("url").expect("--url"));
    let streams: usize = args.num("streams", 0);
    let rate: f64 = args.num("rate", 4000.0);
    let src: Ipv4Addr = args.or("src", "127.0.0.2").parse().expect("--src");
    let interval: f64 = args.num("interval", 0.0);
    let mut window_start = Instant::now();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        url.path, url.host
    );
    let tls = url.tls.then(|| {
        let name = url
            .host
            .rsplit_once(':')
            .map_or(url.host.as_str(), |(h, _)| h);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("a server name");
        (tls_config(args), name)
    });

    let mut poll = Poll::new().expect("poll");
    let waker = std::sync::Arc::new(Waker::new(poll.registry(), WAKER).expect("waker"));
    let (cmd_tx, cmd_rx) = mpsc::channel::<String>();
    {
        let waker = waker.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if cmd_tx.send(line).is_err() {
                    break;
                }
                let _ = waker.wake();
            }
            let _ = cmd_tx.send("Q".into());
            let _ = waker.wake();
        });
    }

    let mut conns: Slab<Stream> = Slab::with_capacity(streams);
    let mut state = ChildState {
        measuring: false,
        events: 0,
        hist: vec![0; BUCKETS],
        fanout: HashMap::new(),
        seq_holes: 0,
        seq_repeats: 0,
        connected: 0,
        failed: 0,
        closed: 0,
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut opened = 0usize;
    let mut pending = 0usize;
    let mut ramp_reported = false;
    let mut last_progress = Instant::now();
    let mut ports = SourcePorts::new();
    let out = std::io::stdout();

    loop {
        // Open more streams, at `rate` per second, at most 1,000 connecting at once.
        let allowed = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(streams);
        while opened < allowed && pending < 1000 {
            opened += 1;
            match open(src, url.addr, &mut ports) {
                Ok(socket) => {
                    let entry = conns.vacant_entry();
                    let key = entry.key();
                    let mut stream = Stream {
                        socket,
                        tls: None,
                        phase: Phase::Connecting,
                        head: Vec::new(),
                        chunked: false,
                        chunk_left: 0,
                        chunk_state: 0,
                        line: [0; 24],
                        line_len: 0,
                        line_cr: false,
                        has_data: false,
                        publish_seq: 0,
                        last_seq: 0,
                        last_event: 0,
                        window_events: 0,
                    };
                    poll.registry()
                        .register(
                            &mut stream.socket,
                            Token(key),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .expect("register");
                    entry.insert(stream);
                    pending += 1;
                }
                Err(_) => state.failed += 1,
            }
        }
        if !ramp_reported && opened == streams && pending == 0 {
            ramp_reported = true;
            report_progress(&out, &state);
            let _ = writeln!(out.lock(), "R");
        }
        if last_progress.elapsed() >= Duration::from_millis(200) {
            report_progress(&out, &state);
            last_progress = Instant::now();
        }

        let timeout = if opened < streams {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(200)
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                panic!("poll: {e}");
            }
        }
        let now = monotonic_us();
        let wall = realtime_ns();
        for event in &events {
            if event.token() == WAKER {
                while let Ok(cmd) = cmd_rx.try_recv() {
                    match cmd.trim() {
                        "M" => {
                            window_start = Instant::now();
                            for (_, stream) in conns.iter_mut() {
                                stream.window_events = 0;
                            }
                            state.measuring = true;
                            state.events = 0;
                            state.hist.iter_mut().for_each(|n| *n = 0);
                        }
                        "E" => {
                            state.measuring = false;
                            let mut text = String::new();
                            let _ = writeln!(
                                text,
                                "P {} {} {}",
                                state.connected, state.failed, state.closed
                            );
                            let _ = writeln!(text, "S {}", state.events);
                            if interval > 0.0 {
                                // A stream on its grid gets floor or ceil of window / interval.
                                let ticks = window_start.elapsed().as_secs_f64() / interval;
                                let (low, high) = (ticks.floor() as u16, ticks.ceil() as u16);
                                let streams = conns.iter().filter(|(_, s)| s.phase == Phase::Body);
                                let (mut over, mut under) = (0, 0);
                                for (_, stream) in streams {
                                    over += u64::from(stream.window_events > high);
                                    under += u64::from(stream.window_events < low);
                                }
                                let _ = writeln!(text, "C {over} {under}");
                            }
                            for (i, &n) in state.hist.iter().enumerate() {
                                if n > 0 {
                                    let _ = writeln!(text, "H {i} {n}");
                                }
                            }
                            for (seq, (count, last)) in &state.fanout {
                                let _ = writeln!(text, "F {seq} {count} {last}");
                            }
                            // Per open stream, the last publish it got: with the number of
                            // publishes, what was still on its way at the end.
                            let open = conns.iter().filter(|(_, s)| s.phase == Phase::Body);
                            let (mut streams, mut last_sum) = (0u64, 0u64);
                            for (_, stream) in open {
                                streams += 1;
                                last_sum += u64::from(stream.last_seq);
                            }
                            let _ = writeln!(
                                text,
                                "G {} {} {streams} {last_sum}",
                                state.seq_holes, state.seq_repeats
                            );
                            text.push_str("D\n");
                            let _ = out.lock().write_all(text.as_bytes());
                        }
                        "Q" => std::process::exit(0),
                        _ => {}
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(stream) = conns.get_mut(key) else {
                continue;
            };
            let mut alive = true;
            let was_pending = stream.phase != Phase::Body;
            if stream.phase == Phase::Connecting && (event.is_writable() || event.is_error()) {
                let connected = matches!(stream.socket.take_error(), Ok(None))
                    && stream.socket.peer_addr().is_ok()
                    && match &tls {
                        None => stream.socket.write_all(request.as_bytes()).is_ok(),
                        Some((config, name)) => {
                            // The request waits in rustls until the handshake is done.
                            let mut client =
                                rustls::ClientConnection::new(config.clone(), name.clone())
                                    .expect("a TLS client");
                            let queued = client.writer().write_all(request.as_bytes()).is_ok();
                            let written = tls_write(&mut client, &mut stream.socket);
                            stream.tls = Some(Box::new(client));
                            queued && written
                        }
                    };
                if connected {
                    stream.phase = Phase::Head;
                    let interest = if stream.tls.is_some() {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    let _ = poll
                        .registry()
                        .reregister(&mut stream.socket, Token(key), interest);
                } else {
                    state.failed += 1;
                    alive = false;
                }
            }
            if alive && stream.phase != Phase::Connecting && stream.tls.is_some() {
                if event.is_readable() || event.is_writable() {
                    alive = tls_receive(stream, &mut buf, now, wall, &mut state);
                    if !alive {
                        if stream.phase == Phase::Body {
                            state.closed += 1;
                        } else {
                            state.failed += 1;
                        }
                    }
                }
            } else if alive && stream.phase != Phase::Connecting && event.is_readable() {
                loop {
                    match stream.socket.read(&mut buf) {
                        Ok(0) => {
                            alive = false;
                            break;
                        }
                        Ok(n) => {
                            if !receive(stream, &buf[..n], now, wall, &mut state) {
                                alive = false;
                                break;
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            alive = false;
                            break;
                        }
                    }
                }
                if !alive {
                    if stream.phase == Phase::Body {
                        state.closed += 1;
                    } else {
                        state.failed += 1;
                    }
                }
            }
            if was_pending && (!alive || stream.phase == Phase::Body) {
                pending -= 1;
            }
            if !alive {
                if let Some(mut stream) = conns.try_remove(key) {
                    let _ = poll.registry().deregister(&mut stream.socket);
                }
            }
        }
    }
}

/// Writes what the TLS client has for the socket (a full socket keeps the rest for the next
/// event); false when the socket failed.
fn tls_write(client: &mut rustls::ClientConnection, socket: &mut TcpStream) -> bool {
    while client.wants_write() {
        match client.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// A TLS stream's readable event: ciphertext in until the socket is drained, plaintext out to
/// [`receive`], handshake messages back; false when the stream must be dropped.
fn tls_receive(
    stream: &mut Stream,
    buf: &mut [u8],
    now: u64,
    wall: u64,
    state: &mut ChildState,
) -> bool {
    let Some(mut client) = stream.tls.take() else {
        return false;
    };
    let mut alive = true;
    'socket: loop {
        match client.read_tls(&mut stream.socket) {
            Ok(0) => {
                alive = false;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                alive = false;
                break;
            }
        }
        if client.process_new_packets().is_err() {
            alive = false;
            break;
        }
        loop {
            match client.reader().read(buf) {
                Ok(0) => {
                    // close_notify: the server ended the stream.
                    alive = false;
                    break 'socket;
                }
                Ok(n) => {
                    if !receive(stream, &buf[..n], now, wall, state) {
                        alive = false;
                        break 'socket;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    alive = false;
                    break 'socket;
                }
            }
        }
    }
    // What the socket does not take now goes on the next writable event (TLS streams are
    // registered for both).
    alive = alive && tls_write(&mut client, &mut stream.socket);
    stream.tls = Some(client);
    alive
}

fn report_progress(out: &std::io::Stdout, state: &ChildState) {
    let _ = writeln!(
        out.lock(),
        "P {} {} {}",
        state.connected,
        state.failed,
        state.closed
    );
}

fn monotonic_us() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A non-blocking connect from `src` (port chosen at connect time, so the 4-tuple, not the
/// source port alone, must be unique).
/// The source ports a child hands out itself, one after the other over the kernel's ephemeral
/// range. Leaving the choice to `connect()` costs the kernel a scan of the ports in use for each
/// new connection (`__inet_hash_connect` tries the even ports first, and past half the range it
/// walks all of them: at 15,000 connections per address that scan took most of both cores);
/// naming the port makes `bind()` one lookup.
struct SourcePorts {
    low: u16,
    count: u32,
    next: u32,
}

impl SourcePorts {
    fn new() -> SourcePorts {
        let range =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let mut bounds = range
            .split_whitespace()
            .filter_map(|v| v.parse::<u16>().ok());
        let low = bounds.next().unwrap_or(32768);
        let high = bounds.next().unwrap_or(60999).max(low);
        SourcePorts {
            low,
            count: u32::from(high - low) + 1,
            next: 0,
        }
    }
}

fn open(src: Ipv4Addr, dst: SocketAddr, ports: &mut SourcePorts) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    // Close with a reset when the generator exits: no TIME_WAIT left to block the next run's
    // ports from the same source address.
    socket.set_linger(Some(Duration::ZERO))?;
    // The next free port of the range (one in use, by a listener or an earlier socket, is
    // skipped); after a full turn, the kernel's own choice.
    let mut bound = false;
    for _ in 0..ports.count {
        let port = ports.low + (ports.next % ports.count) as u16;
        ports.next = ports.next.wrapping_add(1);
        match socket.bind(&SocketAddr::from((src, port)).into()) {
            Ok(()) => {
                bound = true;
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => continue,
            Err(e) => return Err(e),
        }
    }
    if !bound {
        socket.bind(&SocketAddr::from((src, 0)).into())?;
    }
    match socket.connect(&dst.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream: StdStream = socket.into();
    Ok(TcpStream::from_std(stream))
}

/// Feeds bytes from the socket to a stream's parser; false when the stream must be dropped.
fn receive(
    stream: &mut Stream,
    mut data: &[u8],
    now: u64,
    wall: u64,
    state: &mut ChildState,
) -> bool {
    if stream.phase == Phase::Head {
        stream.head.extend_from_slice(data);
        let Some(end) = find(&stream.head, b"\r\n\r\n") else {
            return stream.head.len() < 16 * 1024;
        };
        let head = String::from_utf8_lossy(&stream.head[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
            return false;
        }
        stream.chunked = head.contains("transfer-encoding: chunked");
        stream.phase = Phase::Body;
        state.connected += 1;
        let rest = stream.head.split_off(end + 4);
        stream.head = Vec::new();
        return receive(stream, &rest, now, wall, state);
    }
    if !stream.chunked {
        sse(stream, data, now, wall, state);
        return true;
    }
    // Chunked framing: 0 = size digits, 1 = rest of the size line, 2 = data, 3 = CRLF after it.
    while !data.is_empty() {
        match stream.chunk_state {
            0 | 1 => {
                let byte = data[0];
                data = &data[1..];
                if byte == b'\n' {
                    if stream.chunk_left == 0 {
                        return false; // the last chunk: the stream ended
                    }
                    stream.chunk_state = 2;
                } else if stream.chunk_state == 0 {
                    match (byte as char).to_digit(16) {
                        Some(d) => stream.chunk_left = stream.chunk_left * 16 + u64::from(d),
                        None => stream.chunk_state = 1,
                    }
                }
            }
            2 => {
                let take = (stream.chunk_left as usize).min(data.len());
                let (body, rest) = data.split_at(take);
                sse(stream, body, now, wall, state);
                stream.chunk_left -= take as u64;
                data = rest;
                if stream.chunk_left == 0 {
                    stream.chunk_state = 3;
                }
            }
            _ => {
                let byte = data[0];
                data = &data[1..];
                if byte == b'\n' {
                    stream.chunk_state = 0;
                }
            }
        }
    }
    true
}

/// The SSE parser: counts events (a blank line after at least one `data:` field), times the gap
/// since the stream's previous event, and notes which publish (`data: pub <seq>`) arrived when.
fn sse(stream: &mut Stream, data: &[u8], now: u64, wall: u64, state: &mut ChildState) {
    for &byte in data {
        if byte == b'\n' && stream.line_cr {
            stream.line_cr = false;
            continue;
        }
        stream.line_cr = byte == b'\r';
        if byte != b'\n' && byte != b'\r' {
            if (stream.line_len as usize) < stream.line.len() {
                stream.line[stream.line_len as usize] = byte;
                stream.line_len += 1;
            }
            continue;
        }
        let line = &stream.line[..stream.line_len as usize];
        if line.is_empty() {
            if stream.has_data {
                if state.measuring {
                    state.events += 1;
                    stream.window_events = stream.window_events.saturating_add(1);
                    if stream.last_event != 0 {
                        let bucket = ((now - stream.last_event) / BUCKET_US) as usize;
                        state.hist[bucket.min(BUCKETS - 1)] += 1;
                    }
                }
                stream.last_event = now.max(1);
                if stream.publish_seq != 0 {
                    let entry = state.fanout.entry(stream.publish_seq).or_insert((0, 0));
                    entry.0 += 1;
                    entry.1 = entry.1.max(wall);
                    let seq = u32::try_from(stream.publish_seq).unwrap_or(u32::MAX);
                    if seq > stream.last_seq {
                        state.seq_holes += u64::from(seq - stream.last_seq - 1);
                        stream.last_seq = seq;
                    } else {
                        state.seq_repeats += 1;
                    }
                }
            }
            stream.has_data = false;
            stream.publish_seq = 0;
        } else if let Some(value) = line.strip_prefix(b"data:") {
            stream.has_data = true;
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let Some(seq) = value.strip_prefix(b"pub ") {
                stream.publish_seq = std::str::from_utf8(seq)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
        }
        stream.line_len = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the CSV back: a table and an SVG plot

fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn table(args: &Args) {
    let (header, rows) = read_csv(&args.get("csv").expect("--csv"));
    let columns = [
        "scenario",
        "server",
        "streams",
        "held",
        "failures",
        "events_per_s",
        "gap_p50_ms",
        "gap_p99_ms",
        "gap_max_ms",
        "rss_per_stream_b",
        "sockmem_per_stream_b",
        "sockslab_per_stream_b",
        "cpu_per_event_ns",
        "fanout_p50_ms",
        "fanout_per_sub_ns",
        "publishes_per_s",
        "delivered_frac",
    ];
    let index: Vec<Option<usize>> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == c))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            index
                .iter()
                .map(|i| {
                    i.and_then(|i| row.get(i))
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .unwrap_or_else(|| "-".into())
                })
                .collect()
        })
        .collect();
    println!("| {} |", columns.join(" | "));
    println!("|{}", " --- |".repeat(columns.len()));
    for row in cells {
        println!("| {} |", row.join(" | "));
    }
}

/// Draws resident memory per stream and the p99 gap against the stream count, one line per
/// scenario and server, into an SVG written by hand.
fn plot(args: &Args) {
    let (header, rows) = read_csv(&args.get("csv").expect("--csv"));
    let out = args.or("out", "sse.svg");
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (scenario, server, streams) = (col("scenario"), col("server"), col("held"));
    let panels = [
        (
            "server memory per stream (bytes, log scale)",
            col("rss_per_stream_b"),
        ),
        ("p99 inter-event gap (ms)", col("gap_p99_ms")),
    ];
    // series name -> points (streams, value), the median where a size was run more than once.
    let mut names: Vec<String> = Vec::new();
    for row in &rows {
        let name = format!("{} / {}", row[scenario], row[server]);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    let (panel_w, panel_h, margin) = (520.0, 340.0, 60.0);
    let legend_h = 20.0 * names.len() as f64 + 20.0;
    let width = 2.0 * panel_w + 40.0;
    let height = panel_h + legend_h + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (p, (title, value_col)) in panels.iter().enumerate() {
        let x0 = p as f64 * (panel_w + 40.0);
        let series: Vec<Vec<(f64, f64)>> = names
            .iter()
            .map(|name| {
                let mut by_size: HashMap<u64, Vec<f64>> = HashMap::new();
                for row in &rows {
                    if format!("{} / {}", row[scenario], row[server]) != *name {
                        continue;
                    }
                    let (Ok(n), Ok(v)) =
                        (row[streams].parse::<f64>(), row[*value_col].parse::<f64>())
                    else {
                        continue;
                    };
                    if n > 0.0 {
                        by_size.entry(n.round() as u64).or_default().push(v);
                    }
                }
                let mut points: Vec<(f64, f64)> = by_size
                    .into_iter()
                    .map(|(n, mut v)| {
                        v.sort_by(f64::total_cmp);
                        (n as f64, median(&v))
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                points
            })
            .collect();
        let all: Vec<(f64, f64)> = series.iter().flatten().copied().collect();
        let xmin = all
            .iter()
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min)
            .max(1.0);
        let xmax = all.iter().map(|p| p.0).fold(0.0, f64::max).max(xmin * 10.0);
        let (lx0, lx1) = (xmin.log10().floor(), xmax.log10().ceil());
        let ymax = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
        // Memory spans decades between servers: a log scale there, linear for the gap.
        let log_y = p == 0;
        let positive_min = all
            .iter()
            .map(|p| p.1)
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let (ly0, ly1) = if positive_min.is_finite() {
            (positive_min.log10().floor(), ymax.log10().ceil())
        } else {
            (0.0, 1.0)
        };
        let (left, right, top, bottom) = (x0 + margin, x0 + panel_w - 40.0, 30.0, panel_h - 40.0);
        let sx = |x: f64| left + (x.log10() - lx0) / (lx1 - lx0).max(1e-9) * (right - left);
        let sy = |y: f64| {
            if log_y {
                let fraction = (y.max(10f64.powf(ly0)).log10() - ly0) / (ly1 - ly0).max(1e-9);
                bottom - fraction * (bottom - top)
            } else {
                bottom - y / ymax * (bottom - top)
            }
        };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>",
            (left + right) / 2.0
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>\
             <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>"
        );
        let mut decade = lx0;
        while decade <= lx1 {
            let x = sx(10f64.powf(decade));
            let _ = writeln!(
                svg,
                "<line x1=\"{x}\" y1=\"{bottom}\" x2=\"{x}\" y2=\"{}\" stroke=\"black\"/>\
                 <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                bottom + 5.0,
                bottom + 18.0,
                10f64.powf(decade)
            );
            decade += 1.0;
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">streams (log scale)</text>",
            (left + right) / 2.0,
            bottom + 34.0
        );
        let ticks: Vec<f64> = if log_y {
            (ly0 as i32..=ly1 as i32).map(|e| 10f64.powi(e)).collect()
        } else {
            (0..=5).map(|i| ymax * f64::from(i) / 5.0).collect()
        };
        for y in ticks {
            let gy = sy(y);
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" y1=\"{gy}\" x2=\"{right}\" y2=\"{gy}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                left - 4.0,
                gy + 4.0,
                if ymax < 10.0 {
                    format!("{y:.2}")
                } else {
                    format!("{y:.0}")
                }
            );
        }
        for (s, points) in series.iter().enumerate() {
            let colour = colours[s % colours.len()];
            let path: Vec<String> = points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            for &(x, y) in points {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{}: {} streams, {y}</title></circle>",
                    sx(x),
                    sy(y),
                    names[s],
                    x
                );
            }
        }
    }
    for (s, name) in names.iter().enumerate() {
        let y = panel_h + 10.0 + 20.0 * s as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{margin}\" y=\"{y}\" width=\"14\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{name}</text>",
            colours[s % colours.len()],
            margin + 20.0,
            y + 10.0
        );
    }
    svg.push_str("</svg>\n");
    std::fs::write(&out, svg).unwrap_or_else(|e| panic!("{out}: {e}"));
    eprintln!("sse_load: wrote {out}");
}

// ---------------------------------------------------------------------------------------------
// Medians of repeated runs, and ratios against the peers measured in the same invocation

/// The median of `column` over the rows whose `keys` columns equal `values`.
fn median_of(header: &[String], rows: &[Vec<String>], keys: &[(&str, &str)], column: &str) -> f64 {
    let Some(c) = header.iter().position(|h| h == column) else {
        return f64::NAN;
    };
    let key_cols: Vec<(usize, &str)> = keys
        .iter()
        .filter_map(|(k, v)| Some((header.iter().position(|h| h == k)?, *v)))
        .collect();
    let mut values: Vec<f64> = rows
        .iter()
        .filter(|row| {
            key_cols
                .iter()
                .all(|(i, v)| row.get(*i).map(String::as_str) == Some(v))
        })
        .filter_map(|row| row.get(c)?.parse::<f64>().ok())
        .collect();
    values.sort_by(f64::total_cmp);
    median(&values)
}

fn distinct(header: &[String], rows: &[Vec<String>], column: &str) -> Vec<String> {
    let Some(c) = header.iter().position(|h| h == column) else {
        return Vec::new();
    };
    let mut seen: Vec<String> = Vec::new();
    for row in rows {
        if let Some(v) = row.get(c) {
            if !seen.contains(v) {
                seen.push(v.clone());
            }
        }
    }
    seen
}

fn cell(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "-".into()
    } else {
        format!("{value:.decimals$}")
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_nan() || theirs.is_nan() || theirs == 0.0 {
        "-".into()
    } else {
        format!("{:.2}", ours / theirs)
    }
}

fn summary(args: &Args) {
    if let Some(path) = args.get("http") {
        let (header, rows) = read_csv(&path);
        println!(
            "### HTTP (wrk): medians of {} run(s) per cell",
            count_reps(&header, &rows)
        );
        println!();
        println!(
            "| variant | server | requests/s | server CPU | CPU ns/request | load avg | ours ÷ this: req/s | ours ÷ this: CPU/request |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        for variant in distinct(&header, &rows, "variant") {
            let get = |server: &str, column: &str| {
                median_of(
                    &header,
                    &rows,
                    &[("variant", &variant), ("server", server)],
                    column,
                )
            };
            let ours_rps = get("workerman", "requests_per_s");
            let ours_cpu = get("workerman", "cpu_per_req_ns");
            for server in distinct(&header, &rows, "server") {
                let rps = get(&server, "requests_per_s");
                let cpu = get(&server, "cpu_per_req_ns");
                let util = get(&server, "server_cpu_util");
                let (r1, r2) = if server == "workerman" {
                    ("".into(), "".into())
                } else {
                    (ratio(ours_rps, rps), ratio(ours_cpu, cpu))
                };
                println!(
                    "| {variant} | {server} | {} | {} | {} | {} | {r1} | {r2} |",
                    cell(rps, 0),
                    cell(util, 2),
                    cell(cpu, 0),
                    cell(get(&server, "loadavg_1m"), 1)
                );
            }
        }
        println!();
    }
    if let Some(path) = args.get("sse") {
        let (header, rows) = read_csv(&path);
        println!(
            "### SSE: medians of {} run(s) per cell",
            count_reps(&header, &rows)
        );
        println!();
        println!(
            "| scenario | streams | server | held | failures | events/s | gap p50 / p99 / max (ms) | RSS/stream (B) | socket slab/stream (B, both ends) | sockstat mem/stream (B) | CPU ns/event | fan-out p50 (ms) | fan-out ns/subscriber | publishes/s | delivered | load avg | ours ÷ this: CPU/event | ours ÷ this: fan-out |"
        );
        println!("|{}", " --- |".repeat(18));
        for scenario in distinct(&header, &rows, "scenario") {
            for streams in distinct(&header, &rows, "streams") {
                let get = |server: &str, column: &str| {
                    median_of(
                        &header,
                        &rows,
                        &[
                            ("scenario", &scenario),
                            ("streams", &streams),
                            ("server", server),
                        ],
                        column,
                    )
                };
                let ours_cpu = get("workerman", "cpu_per_event_ns");
                let ours_fan = get("workerman", "fanout_per_sub_ns");
                for server in distinct(&header, &rows, "server") {
                    let held = get(&server, "held");
                    if held.is_nan() {
                        continue;
                    }
                    let (r1, r2) = if server == "workerman" {
                        ("".into(), "".into())
                    } else {
                        (
                            ratio(ours_cpu, get(&server, "cpu_per_event_ns")),
                            ratio(ours_fan, get(&server, "fanout_per_sub_ns")),
                        )
                    };
                    println!(
                        "| {scenario} | {streams} | {server} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {r1} | {r2} |",
                        cell(held, 0),
                        cell(get(&server, "failures"), 0),
                        cell(get(&server, "events_per_s"), 0),
                        cell(get(&server, "gap_p50_ms"), 1),
                        cell(get(&server, "gap_p99_ms"), 1),
                        cell(get(&server, "gap_max_ms"), 1),
                        cell(get(&server, "rss_per_stream_b"), 0),
                        cell(get(&server, "sockslab_per_stream_b"), 0),
                        cell(get(&server, "sockmem_per_stream_b"), 0),
                        cell(get(&server, "cpu_per_event_ns"), 0),
                        cell(get(&server, "fanout_p50_ms"), 2),
                        cell(get(&server, "fanout_per_sub_ns"), 0),
                        cell(get(&server, "publishes_per_s"), 1),
                        cell(get(&server, "delivered_frac"), 4),
                        cell(get(&server, "loadavg_1m"), 1),
                    );
                }
            }
        }
        println!();
    }
}

fn count_reps(header: &[String], rows: &[Vec<String>]) -> String {
    let reps = distinct(header, rows, "rep");
    if reps.is_empty() {
        "the".into()
    } else {
        reps.len().to_string()
    }
}
