//! `examples/sse_cluster.rs` run as real `run_all` programs ("nodes"), over real loopback
//! sockets and a real `redis-server`: delivery to every subscriber of every process and node
//! once and in order, replay on another node by `Last-Event-ID`, the reset event, Redis killed
//! and back, a worker killed, and 2,000 never-reading subscribers under a storm within the
//! process-wide bound (RSS from /proc).

#[path = "support/event_stream.rs"]
mod event_stream;
#[path = "support/hub_client.rs"]
mod hub_client;
mod support;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use hub_client::{Stream, publish, request};
use support::process::{TestDir, kill_hard, start_example};
use support::read_response;
use support::redis::{RedisServer, SlowSubscribeProxy};

/// One `sse_cluster` program: its directory, port and master process.
struct Node {
    dir: TestDir,
    port: u16,
    child: Child,
}

impl Node {
    fn start(name: &str, count: usize, extra: &[(&str, &str)]) -> Node {
        let dir = TestDir::new(name);
        let port = support::free_port();
        let child = start_example(
            "sse_cluster",
            &dir,
            &format!("http://127.0.0.1:{port}"),
            count,
            extra,
        );
        let node = Node { dir, port, child };
        assert!(
            support::wait_until(Duration::from_secs(20), || node.workers().len() == count
                && TcpStream::connect(node.address()).is_ok()),
            "{name}: {count} workers did not start"
        );
        node
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The live worker processes (each wrote `worker-<pid>`).
    fn workers(&self) -> Vec<i32> {
        std::fs::read_dir(&*self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()?
                    .strip_prefix("worker-")?
                    .parse()
                    .ok()
            })
            .filter(|&pid| support::process::alive(pid))
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        kill_hard(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// Waits for each fresh stream's position (its first `id:` line): the hub sends it once the
/// process's subscription to the topic is in effect, so every event published after that
/// reaches the stream live.
fn wait_for_positions(streams: &mut [Stream]) {
    for stream in streams {
        stream.events.last_event_id();
    }
}

#[test]
fn two_redis_nodes_deliver_every_publish_to_every_subscriber_once_in_order_and_replay_on_either() {
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes = [
        Node::start("sse-cluster-a", 2, &[("REDIS_URL", &url)]),
        Node::start("sse-cluster-b", 2, &[("REDIS_URL", &url)]),
    ];
    let mut streams: Vec<Stream> = (0..8)
        .map(|index| Stream::open_ok(nodes[index % 2].address(), "/events?topic=news", None))
        .collect();
    wait_for_positions(&mut streams);
    let published: Vec<(String, String)> = (0..20)
        .map(|index| {
            let data = format!("event {index}");
            (publish(nodes[index % 2].address(), "news", &data), data)
        })
        .collect();
    for (number, stream) in streams.iter_mut().enumerate() {
        for (id, data) in &published {
            let event = stream.next();
            assert_eq!(
                (&event.data, &event.last_event_id),
                (data, id),
                "subscriber {number}: not every event once, in order"
            );
        }
    }
    // The SSE id is the Redis stream entry id.
    assert!(published[0].0.split_once('-').is_some());

    // A subscriber that read up to event 9 on node A reconnects to node B: it gets 10.. exactly.
    let mut moved = Stream::open_ok(
        nodes[1].address(),
        "/events?topic=news",
        Some(&published[9].0),
    );
    for (id, data) in &published[10..] {
        let event = moved.next();
        assert_eq!((&event.data, &event.last_event_id), (data, id));
    }
    let live = publish(nodes[0].address(), "news", "live");
    let event = moved.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("live", live.as_str())
    );
}

#[test]
fn an_id_trimmed_from_redis_gets_a_reset_then_live() {
    let redis = RedisServer::start();
    let url = redis.url();
    let node = Node::start(
        "sse-cluster-trim",
        1,
        &[("REDIS_URL", &url), ("HISTORY_SIZE", "10")],
    );
    let first = publish(node.address(), "news", "0");
    for index in 1..300 {
        publish(node.address(), "news", &index.to_string());
    }
    let mut stream = Stream::open_ok(node.address(), "/events?topic=news", Some(&first));
    let reset = stream.next();
    assert_eq!(reset.event_type, "reset");
    assert_eq!(reset.data, r#"{"topic":"news","reason":"gap"}"#);
    let live = publish(node.address(), "news", "live");
    let event = stream.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("live", live.as_str())
    );
}

#[test]
fn a_fresh_redis_stream_disconnected_before_any_event_resumes_from_the_position_it_was_given() {
    let redis = RedisServer::start();
    let url = redis.url();
    let node = Node::start("sse-cluster-fresh", 2, &[("REDIS_URL", &url)]);
    // Nobody published to "quiet": the position is the start, sent at once with no event.
    let mut fresh = Stream::open_ok(node.address(), "/events?topic=quiet", None);
    let position = fresh.events.last_event_id();
    assert_eq!(position, "0-0");
    drop(fresh);
    let missed: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|data| publish(node.address(), "quiet", data))
        .collect();
    let mut again = Stream::open_ok(node.address(), "/events?topic=quiet", Some(&position));
    for (data, id) in ["a", "b", "c"].iter().zip(&missed) {
        let event = again.next();
        assert_eq!((event.data.as_str(), &event.last_event_id), (*data, id));
    }
    drop(again);
    // A topic with history that a process may not have seen: the newest id, then exactly
    // what follows it.
    let mut fresh = Stream::open_ok(node.address(), "/events?topic=quiet", None);
    let position = fresh.events.last_event_id();
    assert_eq!(position, missed[2]);
    drop(fresh);
    let later = publish(node.address(), "quiet", "d");
    let mut again = Stream::open_ok(node.address(), "/events?topic=quiet", Some(&position));
    let event = again.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("d", later.as_str())
    );
}

#[test]
fn redis_killed_streams_stay_open_publishes_fail_loudly_and_delivery_resumes() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let node = Node::start("sse-cluster-redis-kill", 2, &[("REDIS_URL", &url)]);
    let mut streams: Vec<Stream> = (0..4)
        .map(|_| Stream::open_ok(node.address(), "/events?topic=news", None))
        .collect();
    wait_for_positions(&mut streams);
    let before = publish(node.address(), "news", "before");
    for stream in &mut streams {
        assert_eq!(stream.next().last_event_id, before);
    }
    redis.kill9();
    let started = Instant::now();
    let failed = request(node.address(), "POST", "/publish?topic=news", "while down");
    assert_eq!(failed.status, 503, "{}", failed.body_text());
    assert!(
        failed.body_text().starts_with("publish failed:"),
        "the body says why: {}",
        failed.body_text()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    redis.restart();
    // Delivery resumes on the streams that stayed open (after the channel re-subscribed).
    let mut after = None;
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            let response = request(node.address(), "POST", "/publish?topic=news", "after");
            if response.status == 200 {
                after = Some(response.body_text());
                true
            } else {
                thread::sleep(Duration::from_millis(200));
                false
            }
        }),
        "publishing never worked again"
    );
    let after = after.unwrap();
    for stream in &mut streams {
        // Redis lost its streams (no persistence): after the outage each stream either gets
        // the event, or first a reset saying its position is gone, then the event.
        let mut event = stream.next();
        if event.event_type == "reset" {
            event = stream.next();
        }
        assert_eq!(
            (event.data.as_str(), event.last_event_id.as_str()),
            ("after", after.as_str())
        );
    }
}

#[test]
fn a_killed_workers_subscribers_reconnect_to_the_others_and_replay() {
    let node = Node::start("sse-cluster-kill-worker", 2, &[]);
    let mut streams: Vec<Stream> = (0..6)
        .map(|_| Stream::open_ok(node.address(), "/events?topic=news", None))
        .collect();
    // Through the relay, publishing right after the subscribe is safe.
    let first = publish(node.address(), "news", "first");
    for stream in &mut streams {
        assert_eq!(stream.next().last_event_id, first);
    }
    let workers = node.workers();
    kill_hard(workers[0]);
    // A connection the kernel had queued for the killed process is reset, as a real client
    // would see it: like one, retry.
    let missed: Vec<String> = (0..3)
        .map(|index| retrying(|| publish(node.address(), "news", &format!("missed {index}"))))
        .collect();
    // Every subscriber reconnects with its last id (to whichever process takes it) and gets
    // exactly what it missed.
    for _ in &streams {
        let got: Vec<(String, String)> = retrying(|| {
            let mut again = Stream::open_ok(node.address(), "/events?topic=news", Some(&first));
            (0..missed.len())
                .map(|_| {
                    let event = again.next();
                    (event.data, event.last_event_id)
                })
                .collect()
        });
        let expected: Vec<(String, String)> = missed
            .iter()
            .enumerate()
            .map(|(index, id)| (format!("missed {index}"), id.clone()))
            .collect();
        assert_eq!(got, expected, "not exactly what it missed");
    }
    drop(streams);
}

/// `attempt` again (up to 10 s) when it fails the way a reset connection does.
fn retrying<T>(mut attempt: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut attempt)) {
            Ok(value) => return value,
            Err(panic) if Instant::now() >= deadline => std::panic::resume_unwind(panic),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn vm_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// 2,000 subscribers that never read and 3,000 events of 4 KiB (12 MB each would hold): the
/// worker's RSS grows by at most the bound plus a stated allowance, as the furthest-behind
/// subscribers are cut.
#[test]
fn two_thousand_stuck_subscribers_under_a_storm_keep_the_worker_within_the_bound() {
    const BOUND: usize = 4 * 1024 * 1024;
    /// What the worker may grow by beyond the bound: allocator slack, the hub's tables, the
    /// 2,000 connections' buffers.
    const ALLOWANCE_KIB: u64 = 16 * 1024;
    let bound = BOUND.to_string();
    let node = Node::start(
        "sse-cluster-storm",
        1,
        &[
            ("MAX_QUEUED_BYTES", &bound),
            ("MAX_SEND_BUFFER", "1073741824"),
        ],
    );
    let worker = node.workers()[0];
    let stuck: Vec<TcpStream> = (0..2000)
        .map(|_| {
            let mut stream = TcpStream::connect(node.address()).expect("connect");
            write!(
                stream,
                "GET /events?topic=storm HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
            )
            .unwrap();
            stream
        })
        .collect();
    // The baseline: once the worker has taken every connection (its RSS stops growing).
    let mut baseline = vm_rss_kib(worker);
    let mut stable_since = Instant::now();
    let started = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(2)
        && started.elapsed() < Duration::from_secs(30)
    {
        thread::sleep(Duration::from_millis(200));
        let now = vm_rss_kib(worker);
        if now.abs_diff(baseline) > 256 {
            stable_since = Instant::now();
        }
        baseline = now;
    }
    // One keep-alive connection publishing 3,000 events of 4 KiB.
    let mut publisher = support::connect(node.address());
    let mut replies = BufReader::new(publisher.try_clone().unwrap());
    let data = "x".repeat(4096);
    let mut peak = baseline;
    for index in 0..3000 {
        write!(
            publisher,
            "POST /publish?topic=storm HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{data}",
            data.len()
        )
        .unwrap();
        let reply = read_response(&mut replies, false);
        assert_eq!(reply.status, 200, "publish {index}: {}", reply.body_text());
        if index % 100 == 0 {
            peak = peak.max(vm_rss_kib(worker));
        }
    }
    peak = peak.max(vm_rss_kib(worker));
    let grown = peak.saturating_sub(baseline);
    eprintln!("worker RSS: baseline {baseline} KiB, peak {peak} KiB, grown {grown} KiB");
    assert!(
        grown <= BOUND as u64 / 1024 + ALLOWANCE_KIB,
        "the worker grew {grown} KiB under the storm: past the {} KiB bound + {ALLOWANCE_KIB} KiB",
        BOUND / 1024
    );
    drop(stuck);
}

/// Publishes to `topic` through `node` as fast as it answers for `length`, in a thread; the
/// ids in order.
fn publish_for(node: SocketAddr, topic: &str, length: Duration) -> thread::JoinHandle<Vec<String>> {
    let topic = topic.to_owned();
    thread::spawn(move || {
        let end = Instant::now() + length;
        let mut ids = Vec::new();
        while Instant::now() < end {
            ids.push(publish(node, &topic, &format!("n{}", ids.len())));
            thread::sleep(Duration::from_millis(2));
        }
        ids
    })
}

/// Reads `stream` until `last`; every id after `after` in `published`, in order, once.
/// How long a stream may take to deliver everything it is owed in [`assert_contiguous`].
const CONTIGUOUS_WITHIN: Duration = Duration::from_secs(30);

fn assert_contiguous(stream: &mut Stream, after: &str, published: &[String], what: &str) {
    let start = if after == "0-0" {
        0
    } else {
        published
            .iter()
            .position(|id| id == after)
            .unwrap_or_else(|| panic!("{what}: its position {after} is no published id"))
            + 1
    };
    // Until the last published id, or a deadline: keep-alive comments keep each read alive, so
    // a missing last event must end in the report below, not in a wait without end.
    let deadline = Instant::now() + CONTIGUOUS_WITHIN;
    let mut got = Vec::new();
    while got.last() != published.last() && Instant::now() < deadline {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match stream.next_within(remaining) {
            Some(event) => got.push(event.last_event_id),
            None => break,
        }
    }
    let expected = &published[start..];
    let missing: Vec<&String> = expected.iter().filter(|id| !got.contains(id)).collect();
    let extra: Vec<&String> = got.iter().filter(|id| !expected.contains(id)).collect();
    assert!(
        got == expected,
        "{what}: after {after}, {} of {} events missing (first {:?}), {} received, \
         {} not expected (first {:?}), the first received {:?}",
        missing.len(),
        expected.len(),
        missing.first(),
        got.len(),
        extra.len(),
        extra.first(),
        &got[..got.len().min(3)]
    );
}

/// The seam between history and live with Redis: a process's subscription to a topic takes
/// effect some time after it is asked for (on RESP2 on another connection than the history
/// reads; here a proxy holds each `SUBSCRIBE` 500 ms to make that time long). Streams opened on
/// that process meanwhile, fresh or resuming, while another node publishes in a tight loop,
/// must still get every event after their start, once, in order.
#[test]
fn streams_opened_while_their_processs_redis_subscription_is_on_the_way_miss_nothing() {
    let redis = RedisServer::with_config(&["rename-command HELLO \"\""]);
    let proxy = SlowSubscribeProxy::start(redis.port, Duration::from_millis(500));
    let (direct, proxied) = (redis.url(), proxy.url());
    let publisher = Node::start(
        "sse-seam-a",
        1,
        &[("REDIS_URL", &direct), ("HISTORY_SIZE", "10000")],
    );
    let node = Node::start(
        "sse-seam-b",
        1,
        &[("REDIS_URL", &proxied), ("HISTORY_SIZE", "10000")],
    );
    for round in 0..2 {
        let topic = format!("seam{round}");
        let publishing = publish_for(publisher.address(), &topic, Duration::from_millis(1500));
        thread::sleep(Duration::from_millis(200));
        let mut fresh = Stream::open_ok(node.address(), &format!("/events?topic={topic}"), None);
        let mut resumed = Stream::open_ok(
            node.address(),
            &format!("/events?topic={topic}"),
            Some("0-0"),
        );
        let position = fresh.events.last_event_id();
        let published = publishing.join().unwrap();
        assert!(published.len() > 50, "only {} publishes", published.len());
        assert_contiguous(&mut fresh, &position, &published, "a fresh stream");
        assert_contiguous(
            &mut resumed,
            "0-0",
            &published,
            "a stream resuming from 0-0",
        );
    }
}

/// The same seam through the embedded relay: streams opened on a topic new to their process
/// while publishes (through either process) go on in a tight loop get every event after their
/// start. The subscribe and the position request go in order on one link to the relay, which
/// stores and fans out each publish in one step.
#[test]
fn relay_streams_opened_during_a_publish_loop_miss_nothing() {
    let node = Node::start("sse-seam-relay", 2, &[("HISTORY_SIZE", "10000")]);
    for round in 0..3 {
        let topic = format!("seam{round}");
        let publishing = publish_for(node.address(), &topic, Duration::from_millis(800));
        thread::sleep(Duration::from_millis(100));
        let mut streams: Vec<(Stream, String)> = (0..4)
            .map(|_| {
                let mut stream =
                    Stream::open_ok(node.address(), &format!("/events?topic={topic}"), None);
                let position = stream.events.last_event_id();
                (stream, position)
            })
            .collect();
        let published = publishing.join().unwrap();
        assert!(published.len() > 20, "only {} publishes", published.len());
        for (stream, position) in &mut streams {
            assert_contiguous(stream, position, &published, "a fresh stream via the relay");
        }
    }
}
