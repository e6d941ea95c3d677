//! One connection, pipelined: `workerman::redis::Client` against `redis-benchmark -P 16 -c 1
//! -t set,get` (the C client that ships with redis-server), alternately in one run, against one
//! `redis-server` this program starts on a free port.
//!
//! ```text
//! cargo bench --bench redis_pipeline -- run [--requests 200000] [--reps 5] [--pipeline 16]
//! ```
//! Both clients do the same thing: send 16 commands (`SET key:000000000000 xxx`, or `GET` of it,
//! as redis-benchmark does without `-r`), wait for the 16 replies, send 16 more. Each round runs
//! redis-benchmark for SET, then ours, then the same for GET. Reported: operations per second
//! and client CPU per operation (redis-benchmark: its process's user+system time; ours: the
//! worker thread's, from `getrusage(RUSAGE_THREAD)`), medians over the rounds, and our ratio.
//! With `taskset` installed, redis-server runs on CPU 1 and both clients on CPU 0.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use workerman::Worker;
use workerman::redis::Client;

/// A test, a client, and each round's (ops/s, CPU ns/op).
type Row = (&'static str, &'static str, Vec<(f64, f64)>);

const KEY: &str = "key:000000000000";
const VALUE: &str = "xxx";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("run") {
        eprintln!(
            "usage: cargo bench --bench redis_pipeline -- run [--requests N] [--reps N] [--pipeline N]"
        );
        return;
    }
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let requests = flag("--requests", 200_000);
    let reps = flag("--reps", 5);
    let pipeline = flag("--pipeline", 16);
    let taskset = which("taskset");

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = start_redis(port, taskset.as_deref());
    if taskset.is_some() {
        pin_to_cpu(0);
    }
    println!(
        "redis_pipeline: {requests} requests per test, pipeline {pipeline}, one connection, {reps} rounds, redis-server on port {port}{}",
        if taskset.is_some() {
            " (server on CPU 1, clients on CPU 0)"
        } else {
            ""
        }
    );
    let mut rows: Vec<Row> = vec![
        ("SET", "redis-benchmark", Vec::new()),
        ("SET", "workerman", Vec::new()),
        ("GET", "redis-benchmark", Vec::new()),
        ("GET", "workerman", Vec::new()),
    ];
    for rep in 1..=reps {
        for (index, test) in ["SET", "GET"].iter().enumerate() {
            let theirs = redis_benchmark(port, test, requests, pipeline, taskset.as_deref());
            let ours = ours(port, test, requests, pipeline);
            println!(
                "round {rep} {test}: redis-benchmark {:.0} ops/s {:.0} ns CPU/op | workerman {:.0} ops/s {:.0} ns CPU/op",
                theirs.0, theirs.1, ours.0, ours.1
            );
            rows[index * 2].2.push(theirs);
            rows[index * 2 + 1].2.push(ours);
        }
    }
    server.kill().ok();
    server.wait().ok();

    println!();
    println!(
        "| test | client | ops/s (median) | client CPU ns/op (median) | ours ÷ redis-benchmark: ops/s | ours ÷ redis-benchmark: CPU/op |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for pair in rows.chunks(2) {
        let (test, _, theirs) = &pair[0];
        let (_, _, ours) = &pair[1];
        let their_ops = median(theirs.iter().map(|r| r.0).collect());
        let their_cpu = median(theirs.iter().map(|r| r.1).collect());
        let our_ops = median(ours.iter().map(|r| r.0).collect());
        let our_cpu = median(ours.iter().map(|r| r.1).collect());
        println!("| {test} | redis-benchmark | {their_ops:.0} | {their_cpu:.0} | | |");
        println!(
            "| {test} | workerman | {our_ops:.0} | {our_cpu:.0} | {:.2} | {:.2} |",
            our_ops / their_ops,
            our_cpu / their_cpu
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
        .map(|found| found.display().to_string())
}

fn command(program: &str, taskset: Option<&str>, cpu: &str) -> Command {
    match taskset {
        Some(taskset) => {
            let mut command = Command::new(taskset);
            command.args(["-c", cpu, program]);
            command
        }
        None => Command::new(program),
    }
}

fn start_redis(port: u16, taskset: Option<&str>) -> Child {
    let mut child = command("redis-server", taskset, "1")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts (apt-get install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let mut answer = [0u8; 16];
            if stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut answer).unwrap_or(0) > 0 {
                return child;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok();
    child.wait().ok();
    panic!("redis-server did not come up");
}

/// CPU time (user + system) from a `getrusage` record.
fn cpu_of(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the record it is given, which lives for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_THREAD or RUSAGE_CHILDREN.
    unsafe { libc::getrusage(who, &mut usage) };
    cpu_of(&usage)
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only read
    // and write that set, which outlives the calls.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// redis-benchmark's ops/s for `test`, and its CPU per operation in ns.
fn redis_benchmark(
    port: u16,
    test: &str,
    requests: usize,
    pipeline: usize,
    taskset: Option<&str>,
) -> (f64, f64) {
    let before = rusage(libc::RUSAGE_CHILDREN);
    let output = command("redis-benchmark", taskset, "0")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-P",
            &pipeline.to_string(),
            "-c",
            "1",
            "-n",
            &requests.to_string(),
        ])
        .args(["-t", &test.to_ascii_lowercase(), "--csv"])
        .output()
        .expect("redis-benchmark runs (it ships with redis-server)");
    let cpu = rusage(libc::RUSAGE_CHILDREN) - before;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("\"{test}\"")))
        .unwrap_or_else(|| panic!("no {test} line in redis-benchmark's output: {text}"));
    let ops: f64 = line
        .split(',')
        .nth(1)
        .map(|field| field.trim_matches('"'))
        .and_then(|field| field.parse().ok())
        .expect("an ops/s figure");
    (ops, cpu.as_nanos() as f64 / requests as f64)
}

struct Run {
    client: Client,
    get: bool,
    left: usize,
    in_batch: usize,
    pipeline: usize,
    started: Instant,
    cpu_started: Duration,
    done: mpsc::Sender<(f64, f64)>,
    requests: usize,
}

fn send_batch(run: &Rc<RefCell<Run>>) {
    let (client, count, get) = {
        let mut state = run.borrow_mut();
        let count = state.pipeline.min(state.left);
        state.left -= count;
        state.in_batch = count;
        (state.client.clone(), count, state.get)
    };
    for _ in 0..count {
        let run = run.clone();
        let callback = move |result: Result<workerman::redis::Value, workerman::redis::Error>| {
            assert!(result.is_ok(), "{result:?}");
            let finished = {
                let mut state = run.borrow_mut();
                state.in_batch -= 1;
                state.in_batch == 0
            };
            if !finished {
                return;
            }
            let left = run.borrow().left;
            if left > 0 {
                send_batch(&run);
                return;
            }
            let state = run.borrow();
            let seconds = state.started.elapsed().as_secs_f64();
            let cpu = rusage(libc::RUSAGE_THREAD) - state.cpu_started;
            state
                .done
                .send((
                    state.requests as f64 / seconds,
                    cpu.as_nanos() as f64 / state.requests as f64,
                ))
                .ok();
        };
        if get {
            client.get(KEY, callback);
        } else {
            client.set(KEY, VALUE, callback);
        }
    }
}

/// Our client's ops/s for `test`, and the worker thread's CPU per operation in ns.
fn ours(port: u16, test: &str, requests: usize, pipeline: usize) -> (f64, f64) {
    let (done, result) = mpsc::channel();
    let get = test == "GET";
    let worker = Worker::spawn(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let client = Client::new(&format!("redis://127.0.0.1:{port}"));
            let done = done.clone();
            let starter = client.clone();
            // Timed from the first batch, once the connection is up (the PING answered).
            client.ping(move |result| {
                assert!(result.is_ok(), "{result:?}");
                let run = Rc::new(RefCell::new(Run {
                    client: starter,
                    get,
                    left: requests,
                    in_batch: 0,
                    pipeline,
                    started: Instant::now(),
                    cpu_started: rusage(libc::RUSAGE_THREAD),
                    done,
                    requests,
                }));
                send_batch(&run);
            });
        });
        worker
    })
    .expect("the client worker starts");
    let figures = result
        .recv_timeout(Duration::from_secs(120))
        .expect("our client finishes within 2 minutes");
    worker.stop();
    figures
}
