//! `SseHub` in one worker (the in-process channel) over real loopback sockets: the head, live
//! events, exact replay by `Last-Event-ID` across the replay/live seam, the reset event, several
//! topics on one stream, slow consumers cut (never sent holes), the process-wide bound, and
//! keep-alive comments only on silent streams.

#[path = "support/event_stream.rs"]
mod event_stream;
#[path = "support/hub_client.rs"]
mod hub_client;
mod support;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hub_client::{Stream, publish, request};
use support::read_response;
use workerman::channel::{Channel, SlowConsumerPolicy, SseHub};
use workerman::protocols::http::{Request, Response};
use workerman::{RunningWorker, TcpConnection, Timer, Worker};

struct Settings {
    history: usize,
    keep_alive: f64,
    max_send_buffer: Option<usize>,
    policy: SlowConsumerPolicy,
    max_queued_bytes: Option<usize>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            history: 1000,
            keep_alive: 0.0,
            max_send_buffer: None,
            policy: SlowConsumerPolicy::Disconnect,
            max_queued_bytes: None,
        }
    }
}

/// A worker whose `/events?topic=..` is a hub stream, `/publish?topic=T` publishes its body,
/// `/storm?topic=T&count=N&size=S` publishes N events of S bytes (data `<i> xxxx..`), and
/// `/stats` answers the hub's statistics.
fn hub_server(settings: Settings) -> RunningWorker {
    support::start(move || {
        let hub = SseHub::new();
        hub.set_keep_alive(settings.keep_alive);
        if let Some(bytes) = settings.max_send_buffer {
            hub.set_max_send_buffer_size(bytes);
        }
        hub.set_slow_consumer_policy(settings.policy);
        if let Some(bytes) = settings.max_queued_bytes {
            hub.set_max_queued_bytes(bytes);
        }
        let history = settings.history;
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_worker_start(move |_| Channel::set_history_size(history));
        let requests = hub.clone();
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            let topic = request.get("topic").unwrap_or("news").to_string();
            match request.path() {
                "/events" => {
                    requests.subscribe_request(connection, &request);
                }
                "/publish" => {
                    let answer = connection.clone();
                    requests.publish(&topic, request.raw_body(), move |result| {
                        answer.send(match result {
                            Ok(id) => Response::ok(id.to_string()),
                            Err(error) => Response::new(503, [("X", "y")], error.to_string()),
                        });
                    });
                }
                "/storm" => {
                    // `count` events of `size` bytes, `per_tick` of them each millisecond.
                    let number = |name: &str, default: usize| {
                        request.get(name).and_then(|n| n.parse().ok()).unwrap_or(default)
                    };
                    let (count, size, per_tick) =
                        (number("count", 1), number("size", 10), number("per_tick", usize::MAX));
                    let hub = requests.clone();
                    let mut next = 0;
                    Timer::add(0.001, move |timer_id| {
                        for _ in 0..per_tick.min(count - next) {
                            let mut data = format!("{next} ");
                            data.extend(std::iter::repeat_n('x', size.saturating_sub(data.len())));
                            hub.publish(&topic, data, |result| {
                                result.expect("a storm publish");
                            });
                            next += 1;
                        }
                        if next == count {
                            Timer::del(timer_id);
                        }
                    });
                    connection.send(Response::ok("ok"));
                }
                "/stats" => {
                    let statistics = requests.statistics();
                    connection.send(Response::ok(format!(
                        "subscribers={} cut_slow={} cut_for_queued_bytes={} resets={} queued_bytes={}",
                        statistics.subscribers,
                        statistics.cut_slow,
                        statistics.cut_for_queued_bytes,
                        statistics.resets,
                        statistics.queued_bytes
                    )));
                }
                _ => {
                    connection.send(Response::new(404, [("X", "y")], "no"));
                }
            }
        });
        let closing = hub.clone();
        worker.on_close(move |connection| closing.unsubscribe(connection));
        worker
    })
}

fn stat(address: SocketAddr, name: &str) -> u64 {
    let body = request(address, "GET", "/stats", "").body_text();
    body.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body:?}"))
}

/// Waits until the server has registered `count` subscribers.
fn wait_subscribers(address: SocketAddr, count: u64) {
    assert!(
        support::wait_until(Duration::from_secs(10), || stat(address, "subscribers")
            == count),
        "the hub never had {count} subscribers"
    );
}

#[test]
fn a_stream_has_the_sse_head_and_gets_live_events_in_order() {
    let server = hub_server(Settings::default());
    let address = server.local_address();
    let mut stream = Stream::open(address, "/events?topic=news", None);
    assert_eq!(stream.head.status, 200);
    assert_eq!(
        stream.head.header("content-type"),
        Some("text/event-stream")
    );
    assert_eq!(stream.head.header("cache-control"), Some("no-cache"));
    assert_eq!(stream.head.header("x-accel-buffering"), Some("no"));
    wait_subscribers(address, 1);
    let ids: Vec<String> = (0..3)
        .map(|index| publish(address, "news", &format!("hello {index}")))
        .collect();
    for (index, id) in ids.iter().enumerate() {
        let event = stream.next();
        assert_eq!(event.event_type, "news");
        assert_eq!(event.data, format!("hello {index}"));
        assert_eq!(&event.last_event_id, id, "the SSE id is the channel's id");
    }
    // Another topic's events do not reach it.
    publish(address, "other", "not for you");
    let id = publish(address, "news", "after");
    let event = stream.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("after", id.as_str())
    );
    server.stop();
}

#[test]
fn a_reconnect_with_last_event_id_gets_exactly_what_it_missed_then_live() {
    let server = hub_server(Settings::default());
    let address = server.local_address();
    let mut stream = Stream::open(address, "/events?topic=news", None);
    wait_subscribers(address, 1);
    publish(address, "news", "one");
    let seen = stream.next();
    assert_eq!(seen.data, "one");
    drop(stream);
    let missed: Vec<String> = ["two", "three", "four"]
        .iter()
        .map(|data| publish(address, "news", data))
        .collect();

    // The header...
    let mut again = Stream::open(address, "/events?topic=news", Some(&seen.last_event_id));
    for (data, id) in ["two", "three", "four"].iter().zip(&missed) {
        let event = again.next();
        assert_eq!((event.data.as_str(), &event.last_event_id), (*data, id));
    }
    let live = publish(address, "news", "five");
    let event = again.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("five", live.as_str())
    );

    // ...or the query parameter.
    let path = format!("/events?topic=news&last_event_id={}", missed[1]);
    let mut third = Stream::open(address, &path, None);
    assert_eq!(third.next().data, "four");
    assert_eq!(third.next().data, "five");
    server.stop();
}

#[test]
fn a_fresh_stream_gets_a_position_at_once_and_a_reconnect_from_it_misses_nothing() {
    let server = hub_server(Settings::default());
    let address = server.local_address();
    // Nobody has published to "quiet" yet: the position is the start, sent with no event.
    let mut fresh = Stream::open(address, "/events?topic=quiet", None);
    let position = fresh.events.last_event_id();
    assert_eq!(position, "0-0");
    drop(fresh);
    let missed: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|data| publish(address, "quiet", data))
        .collect();
    let mut again = Stream::open(address, "/events?topic=quiet", Some(&position));
    for (data, id) in ["a", "b", "c"].iter().zip(&missed) {
        let event = again.next();
        assert_eq!((event.data.as_str(), &event.last_event_id), (*data, id));
    }
    drop(again);

    // A topic with history: the position is its newest id; published right after the head
    // (no waiting for the subscription), the events still arrive, once, in order.
    let mut fresh = Stream::open(address, "/events?topic=quiet", None);
    let now: Vec<String> = ["d", "e"]
        .iter()
        .map(|data| publish(address, "quiet", data))
        .collect();
    for (data, id) in ["d", "e"].iter().zip(&now) {
        let event = fresh.next();
        assert_eq!((event.data.as_str(), &event.last_event_id), (*data, id));
    }
    drop(fresh);
    let mut fresh = Stream::open(address, "/events?topic=quiet", None);
    assert_eq!(fresh.events.last_event_id(), now[1]);

    // Several topics: one position each, in the request's order, the new topic's included.
    let mut both = Stream::open(address, "/events?topic=quiet&topic=empty", None);
    let id = publish(address, "empty", "f");
    let event = both.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id),
        ("f", format!("{},{id}", now[1]))
    );
    server.stop();
}

/// Publishes keep coming while a client reconnects again and again with its last id: it sees
/// every event exactly once, in order, across every replay/live seam.
#[test]
fn reconnects_during_a_publish_stream_see_every_event_once_in_order() {
    let server = hub_server(Settings::default());
    let address = server.local_address();
    const TOTAL: usize = 300;
    let mut stream = Stream::open(address, "/events?topic=seam", None);
    wait_subscribers(address, 1);
    let publisher = thread::spawn(move || {
        for index in 0..TOTAL {
            publish(address, "seam", &index.to_string());
        }
    });
    let mut seen: Vec<usize> = Vec::new();
    let mut last_id = String::new();
    while seen.len() < TOTAL {
        let event = stream.next();
        seen.push(event.data.parse().expect("a number"));
        last_id = event.last_event_id;
        if seen.len() % 25 == 0 {
            stream = Stream::open(address, "/events?topic=seam", Some(&last_id));
        }
    }
    publisher.join().unwrap();
    assert_eq!(
        seen,
        (0..TOTAL).collect::<Vec<_>>(),
        "a duplicate or a hole"
    );
    assert!(!last_id.is_empty());
    server.stop();
}

#[test]
fn an_id_older_than_the_history_starts_the_stream_with_a_reset_then_live() {
    let server = hub_server(Settings {
        history: 5,
        ..Settings::default()
    });
    let address = server.local_address();
    let first = publish(address, "news", "0");
    for index in 1..20 {
        publish(address, "news", &index.to_string());
    }
    let mut stream = Stream::open(address, "/events?topic=news", Some(&first));
    let reset = stream.next();
    assert_eq!(reset.event_type, "reset");
    assert_eq!(reset.data, r#"{"topic":"news","reason":"gap"}"#);
    let live = publish(address, "news", "live");
    let event = stream.next();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        ("live", live.as_str())
    );
    assert_eq!(stat(address, "resets"), 1);

    // An id the hub cannot read: a reset too, saying so.
    let mut malformed = Stream::open(address, "/events?topic=news", Some("not-an-id"));
    let reset = malformed.next();
    assert_eq!(reset.event_type, "reset");
    assert_eq!(reset.data, r#"{"topic":"news","reason":"malformed"}"#);
    server.stop();
}

#[test]
fn a_stream_of_several_topics_resumes_each_topic_after_its_own_id() {
    let server = hub_server(Settings::default());
    let address = server.local_address();
    let mut stream = Stream::open(address, "/events?topic=a&topic=b", None);
    wait_subscribers(address, 1);
    let a1 = publish(address, "a", "a1");
    let event = stream.next();
    assert_eq!(event.event_type, "a");
    assert_eq!(
        event.last_event_id,
        format!("{a1},0-0"),
        "one position per topic, in order (b: the start, nothing published yet)"
    );
    let b1 = publish(address, "b", "b1");
    let event = stream.next();
    assert_eq!(event.last_event_id, format!("{a1},{b1}"));
    drop(stream);
    let b2 = publish(address, "b", "b2");
    let a2 = publish(address, "a", "a2");
    let mut again = Stream::open(
        address,
        "/events?topic=a&topic=b",
        Some(&format!("{a1},{b1}")),
    );
    let mut got: Vec<(String, String)> = (0..2)
        .map(|_| {
            let event = again.next();
            (event.data, event.last_event_id)
        })
        .collect();
    got.sort();
    assert_eq!(got[0].0, "a2");
    assert_eq!(got[1].0, "b2");
    // Live after the replay: its id holds the new `a` and the replayed `b`.
    let a3 = publish(address, "a", "a3");
    let event = again.next();
    assert_eq!(event.data, "a3");
    assert_eq!(event.last_event_id, format!("{a3},{b2}"));
    let _ = a2;
    server.stop();
}

/// Opens a stream and does not read it.
fn stuck_stream(address: SocketAddr, topic: &str) -> TcpStream {
    let mut stream = support::connect(address);
    write!(
        stream,
        "GET /events?topic={topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream
}

/// The storm's event numbers a stream got before it ended; fails if it does not end.
fn numbers_until_closed(stream: TcpStream) -> Vec<usize> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut reader = BufReader::new(stream);
    let head = read_response(&mut reader, true);
    assert_eq!(head.status, 200);
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => bytes.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the cut stream did not end: {error}"),
        }
    }
    event_stream::parse(&bytes)
        .iter()
        .map(|event| {
            event
                .data
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a numbered event")
        })
        .collect()
}

/// A subscriber that stops reading is disconnected once its queue passes its limit, while a
/// reading one gets every event on time; the cut one got a prefix of the events, no hole.
#[test]
fn a_stuck_subscriber_is_cut_while_the_others_stay_on_time() {
    let server = hub_server(Settings {
        max_send_buffer: Some(64 * 1024),
        ..Settings::default()
    });
    let address = server.local_address();
    let stuck = stuck_stream(address, "storm");
    let mut reading = Stream::open(address, "/events?topic=storm", None);
    wait_subscribers(address, 2);
    const COUNT: usize = 4000;
    let started = Instant::now();
    request(
        address,
        "POST",
        &format!("/storm?topic=storm&count={COUNT}&size=1024&per_tick=4"),
        "",
    );
    for index in 0..COUNT {
        let event = reading.next();
        let number: usize = event.data.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(number, index, "the reading subscriber missed an event");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "the reader fell behind: {elapsed:?}"
    );
    assert_eq!(
        stat(address, "cut_slow"),
        1,
        "the stuck subscriber was not cut"
    );
    let got = numbers_until_closed(stuck);
    assert!(
        got.len() < COUNT,
        "the stuck subscriber got everything: not stuck"
    );
    assert_eq!(
        got,
        (0..got.len()).collect::<Vec<_>>(),
        "a hole in the cut stream"
    );
    server.stop();
}

/// Many never-reading subscribers under a storm: the shared bytes their queues hold stay
/// within the process-wide bound, the furthest behind being cut.
#[test]
fn never_reading_subscribers_under_a_storm_stay_within_the_process_bound() {
    const BOUND: usize = 1024 * 1024;
    let server = hub_server(Settings {
        policy: SlowConsumerPolicy::ProcessBoundOnly,
        max_queued_bytes: Some(BOUND),
        ..Settings::default()
    });
    let address = server.local_address();
    let stuck: Vec<TcpStream> = (0..200).map(|_| stuck_stream(address, "storm")).collect();
    wait_subscribers(address, 200);
    // 3,000 events of 8 KiB: 24 MB per stream, past what the kernel's socket buffers absorb.
    request(
        address,
        "POST",
        "/storm?topic=storm&count=3000&size=8192&per_tick=100",
        "",
    );
    let mut peak = 0;
    let mut cut_at = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        peak = peak.max(stat(address, "queued_bytes"));
        if cut_at.is_none() && stat(address, "cut_for_queued_bytes") > 0 {
            cut_at = Some(Instant::now());
        }
        if cut_at.is_some_and(|at| at.elapsed() > Duration::from_secs(2)) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        peak as usize <= BOUND,
        "the queues held {peak} bytes, past the bound {BOUND}"
    );
    assert!(stat(address, "cut_for_queued_bytes") > 0, "nobody was cut");
    assert!(stat(address, "queued_bytes") as usize <= BOUND);
    for stream in stuck.into_iter().take(5) {
        let got = numbers_until_closed(stream);
        assert_eq!(
            got,
            (0..got.len()).collect::<Vec<_>>(),
            "a hole in a cut stream"
        );
    }
    server.stop();
}

/// Reads a stream's raw bytes for `span`: when each `: keep-alive` comment came (after the
/// head), and how many events.
fn comments_and_events(mut stream: TcpStream, span: Duration) -> (Vec<Duration>, usize) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut text, mut seen, mut comments) = (String::new(), 0, Vec::new());
    let mut buffer = [0u8; 4096];
    while start.elapsed() < span {
        match stream.read(&mut buffer) {
            Ok(0) => panic!("the stream ended"),
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => panic!("reading the stream: {error}"),
        }
        let count = text.matches("\n: keep-alive\n").count();
        while seen < count {
            comments.push(start.elapsed());
            seen += 1;
        }
    }
    (comments, text.matches("\ndata:").count())
}

#[test]
fn keep_alive_comments_go_only_to_streams_that_were_silent_for_the_period() {
    let period = Duration::from_millis(600);
    let server = hub_server(Settings {
        keep_alive: period.as_secs_f64(),
        ..Settings::default()
    });
    let address = server.local_address();
    // Opened, then read by a thread each below.
    let busy = stuck_stream(address, "busy");
    let idle = stuck_stream(address, "idle");
    wait_subscribers(address, 2);
    let span = Duration::from_millis(3000);
    let busy_reader = thread::spawn(move || comments_and_events(busy, span));
    let idle_reader = thread::spawn(move || comments_and_events(idle, span));
    // An event on "busy" every 150 ms: a quarter of the period, well within 3/4 of it.
    let start = Instant::now();
    let mut published = 0;
    while start.elapsed() < span {
        publish(address, "busy", &format!("event {published}"));
        published += 1;
        thread::sleep(Duration::from_millis(150));
    }
    let (busy_comments, busy_events) = busy_reader.join().unwrap();
    let (idle_comments, idle_events) = idle_reader.join().unwrap();
    assert!(
        busy_events >= 10,
        "the busy stream got {busy_events} events of {published}"
    );
    assert_eq!(
        busy_comments,
        Vec::<Duration>::new(),
        "a stream with an event every 150 ms got keep-alive comments (period 600 ms)"
    );
    assert_eq!(idle_events, 0);
    // The silent stream: a comment after between 3/4 of the period and the period, then one
    // per period (the timer's own lateness allowed).
    assert!(
        idle_comments.len() >= 3,
        "a silent stream got {} keep-alive comments in {span:?} (period {period:?}): {idle_comments:?}",
        idle_comments.len()
    );
    let slack = Duration::from_millis(250);
    let mut previous = Duration::ZERO;
    for (i, at) in idle_comments.iter().enumerate() {
        let gap = *at - previous;
        assert!(
            gap <= period + slack,
            "keep-alive comment {i} came {gap:?} after the previous one: {idle_comments:?}"
        );
        if i > 0 {
            assert!(
                gap + slack >= period * 3 / 4,
                "keep-alive comment {i} came only {gap:?} after the previous one: {idle_comments:?}"
            );
        }
        previous = *at;
    }
}
