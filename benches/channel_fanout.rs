//! `workerman::channel` fan-out between worker processes (docs/channel.md): publishes per
//! second and publish-to-delivery latency (p50, p99) through the embedded relay and through
//! Redis, `COUNT` worker processes each subscribed, rounds alternating in one run.
//!
//! ```text
//! cargo bench --bench channel_fanout                  # COUNT=4 EVENTS=20000 ROUNDS=3 WINDOW=64
//! ```
//!
//! Each round runs this same program as a `Worker::run_all` server (`start`, in the
//! foreground): process 0 publishes `EVENTS` events with `publish_with`, at most `WINDOW`
//! unanswered at once, each carrying its send time; every process records, for each event it
//! receives, the time since it was sent. Once all have them, each writes its figures to a file
//! and the round ends. Redis rounds start their own `redis-server` on a free port.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use workerman::Worker;
use workerman::channel::Channel;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

fn main() {
    if let Ok(dir) = std::env::var("CHANNEL_BENCH_DIR") {
        server(PathBuf::from(dir));
    }
    let count = env_number("COUNT", 4);
    let events = env_number("EVENTS", 20_000);
    let rounds = env_number("ROUNDS", 3);
    let window = env_number("WINDOW", 64);
    println!("channel fan-out: COUNT={count} EVENTS={events} WINDOW={window} ROUNDS={rounds}");
    let mut figures: Vec<(&str, Vec<Round>)> = vec![("relay", Vec::new()), ("redis", Vec::new())];
    for round in 0..rounds {
        for (transport, results) in &mut figures {
            let result = run_round(transport, count, events, window);
            println!(
                "round {round} {transport:<5}: {:>9.0} publishes/s  latency p50 {:>7.1} us  p99 {:>8.1} us",
                result.publishes_per_second, result.p50_us, result.p99_us
            );
            results.push(result);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut summary = Vec::new();
    for (transport, results) in &figures {
        let rate = median(&mut results.iter().map(|r| r.publishes_per_second).collect());
        let p50 = median(&mut results.iter().map(|r| r.p50_us).collect());
        let p99 = median(&mut results.iter().map(|r| r.p99_us).collect());
        println!(
            "median {transport:<5}: {rate:>9.0} publishes/s  latency p50 {p50:>7.1} us  p99 {p99:>8.1} us"
        );
        summary.push((rate, p50, p99));
    }
    println!(
        "redis / relay: publishes/s {:.2}x, p50 {:.2}x, p99 {:.2}x",
        summary[1].0 / summary[0].0,
        summary[1].1 / summary[0].1,
        summary[1].2 / summary[0].2
    );
}

struct Round {
    publishes_per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn run_round(transport: &str, count: usize, events: usize, window: usize) -> Round {
    let dir = std::env::temp_dir().join(format!(
        "workerman-channel-bench-{}-{transport}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory for the round");
    let mut redis = None;
    let mut command = Command::new(std::env::current_exe().expect("this program"));
    command
        .arg("start")
        .env("CHANNEL_BENCH_DIR", &dir)
        .env("COUNT", count.to_string())
        .env("EVENTS", events.to_string())
        .env("WINDOW", window.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if transport == "redis" {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        redis = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        command.env("REDIS_URL", format!("redis://127.0.0.1:{port}"));
    }
    let mut server = command.spawn().expect("the bench server starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with("figures-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while done(&dir) < count
        && Instant::now() < deadline
        && server.try_wait().ok().flatten().is_none()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    if let Some(mut redis) = redis {
        let _ = redis.kill();
        let _ = redis.wait();
    }
    assert_eq!(done(&dir), count, "{transport}: not every process finished");
    let mut latencies: Vec<u64> = Vec::new();
    let mut rate = 0.0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("figures-") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let mut lines = text.lines();
            let received: usize = lines.next().unwrap().parse().unwrap();
            assert_eq!(received, events, "{transport}: a process missed events");
            latencies.extend(lines.map(|line| line.parse::<u64>().unwrap()));
        } else if name == "rate" {
            rate = std::fs::read_to_string(entry.path())
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    Round {
        publishes_per_second: rate,
        p50_us: at(0.5),
        p99_us: at(0.99),
    }
}

/// The server side of a round (a `run_all` program; never returns).
fn server(dir: PathBuf) -> ! {
    let count = env_number("COUNT", 4);
    let events = env_number("EVENTS", 20_000);
    let window = env_number("WINDOW", 64);
    Worker::set_pid_file(dir.join("bench.pid"));
    Worker::set_log_file(dir.join("bench.log"));
    if let Ok(url) = std::env::var("REDIS_URL") {
        Channel::connect(&url).expect("REDIS_URL");
    }
    let mut worker = Worker::without_listener();
    worker.set_count(count);
    worker.on_worker_start(move |worker| {
        let id = worker.id();
        let dir = dir.clone();
        let latencies = std::rc::Rc::new(std::cell::RefCell::new(Vec::with_capacity(events)));
        let figures_dir = dir.clone();
        Channel::on("bench", move |data: &[u8]| {
            let sent = u64::from_be_bytes(data[..8].try_into().unwrap_or_default());
            let mut latencies = latencies.borrow_mut();
            latencies.push(now_nanos().saturating_sub(sent));
            if latencies.len() == events {
                let mut text = format!("{events}\n");
                for latency in latencies.iter() {
                    text.push_str(&format!("{latency}\n"));
                }
                let path = figures_dir.join(format!("figures-{}", std::process::id()));
                let _ = std::fs::File::create(path)
                    .and_then(|mut file| file.write_all(text.as_bytes()));
            }
        });
        // Every process announces itself once subscribed; process 0 starts when all have.
        let ready_dir = dir.clone();
        Channel::history("bench", &Default::default(), 1, move |_| {
            let _ = std::fs::write(ready_dir.join(format!("ready-{id}")), "");
        });
        if id == 0 {
            let dir = dir.clone();
            workerman::Timer::add(0.05, move |timer| {
                let ready = (0..count).all(|id| dir.join(format!("ready-{id}")).exists());
                if ready {
                    workerman::Timer::del(timer);
                    publisher(dir.clone(), events, window);
                }
            });
        }
    });
    Worker::run_all();
    std::process::exit(0)
}

struct Publisher {
    sent: usize,
    acknowledged: usize,
    events: usize,
    started: Instant,
    dir: PathBuf,
}

fn publisher(dir: PathBuf, events: usize, window: usize) {
    let state = std::rc::Rc::new(std::cell::RefCell::new(Publisher {
        sent: 0,
        acknowledged: 0,
        events,
        started: Instant::now(),
        dir,
    }));
    for _ in 0..window.min(events) {
        publish_next(&state);
    }
}

fn publish_next(state: &std::rc::Rc<std::cell::RefCell<Publisher>>) {
    {
        let mut publisher = state.borrow_mut();
        if publisher.sent == publisher.events {
            return;
        }
        publisher.sent += 1;
    }
    let state = state.clone();
    let mut data = now_nanos().to_be_bytes().to_vec();
    data.extend_from_slice(&[b'x'; 56]);
    Channel::publish_with("bench", data, move |result| {
        if let Err(error) = result {
            Worker::log(format!("channel bench: publish failed: {error}"));
        }
        let finished = {
            let mut publisher = state.borrow_mut();
            publisher.acknowledged += 1;
            (publisher.acknowledged == publisher.events).then(|| {
                let seconds = publisher.started.elapsed().as_secs_f64();
                (
                    publisher.events as f64 / seconds,
                    publisher.dir.join("rate"),
                )
            })
        };
        match finished {
            Some((rate, path)) => {
                let _ = std::fs::write(path, format!("{rate}\n"));
            }
            None => publish_next(&state),
        }
    });
}
