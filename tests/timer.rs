//! Timers on a running worker: cadence without drift, once, delete inside a callback, del_all,
//! and the panic outside a worker.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::start;
use workerman::{Timer, Worker};

#[test]
fn repeating_timer_keeps_its_cadence_over_20_ticks() {
    let (ticks, received) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| {
            let start = Instant::now();
            let count = Rc::new(Cell::new(0));
            let ticks = ticks.clone();
            Timer::add(0.05, move |timer_id| {
                count.set(count.get() + 1);
                ticks.send((count.get(), start.elapsed())).unwrap();
                if count.get() == 20 {
                    assert!(Timer::del(timer_id), "a callback deletes its own timer");
                }
            });
        });
        worker
    });
    let mut late = Vec::new();
    for expected in 1..=20u32 {
        let (count, elapsed) = received.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(count, expected);
        let schedule = Duration::from_millis(50) * expected;
        assert!(elapsed >= schedule, "tick {count} fired early: {elapsed:?}");
        late.push(elapsed - schedule);
    }
    // Each tick is measured against its place on the original grid, so drift would add up here.
    late.sort();
    let median = late[late.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "median lateness {median:?} ({late:?})"
    );
    assert!(
        late[late.len() - 1] < Duration::from_millis(25),
        "worst lateness: {late:?}"
    );
    assert!(
        received.recv_timeout(Duration::from_millis(200)).is_err(),
        "deleted timer fired"
    );
}

#[test]
fn once_fires_once_and_deleting_cancels() {
    let (fired, received) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| {
            let started = Instant::now();
            let fired_once = fired.clone();
            Timer::once(0.1, move || {
                fired_once.send(("once", started.elapsed())).unwrap()
            });
            let fired_cancelled = fired.clone();
            let cancelled = Timer::once(0.05, move || {
                fired_cancelled
                    .send(("cancelled", started.elapsed()))
                    .unwrap()
            });
            assert!(Timer::del(cancelled));
            assert!(!Timer::del(cancelled), "a second delete finds nothing");
            assert_eq!(Timer::count(), 1);
        });
        worker
    });
    let (name, elapsed) = received.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(name, "once");
    assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(150));
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_callback_may_delete_other_timers_and_add_new_ones() {
    let (events, received) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| {
            let victim_events = events.clone();
            let victim = Timer::add(0.2, move |_| victim_events.send("victim").unwrap());
            let events = events.clone();
            Timer::once(0.05, move || {
                assert!(Timer::del(victim));
                let events = events.clone();
                Timer::once(0.05, move || {
                    events.send("added from a callback").unwrap();
                    Timer::add(10.0, |_| {});
                    Timer::add(10.0, |_| {});
                    Timer::del_all();
                    events
                        .send(if Timer::count() == 0 {
                            "all deleted"
                        } else {
                            "left over"
                        })
                        .unwrap();
                });
            });
        });
        worker
    });
    assert_eq!(
        received.recv_timeout(Duration::from_secs(2)).unwrap(),
        "added from a callback"
    );
    assert_eq!(
        received.recv_timeout(Duration::from_secs(2)).unwrap(),
        "all deleted"
    );
    assert!(
        received.recv_timeout(Duration::from_millis(400)).is_err(),
        "the deleted timer fired"
    );
}

#[test]
fn a_zero_interval_timer_runs_every_turn_without_starving_io() {
    let (counts, received) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        let spins = Rc::new(Cell::new(0u64));
        let spun = spins.clone();
        worker.on_worker_start(move |_| {
            let spins = spins.clone();
            Timer::add(0.0, move |_| spins.set(spins.get() + 1));
        });
        worker.on_message(
            move |connection: &workerman::TcpConnection, _line: String| {
                counts.send(spun.get()).unwrap();
                connection.send("served");
            },
        );
        worker
    });
    std::thread::sleep(Duration::from_millis(50));
    let mut client = support::LineClient::connect(server.local_address());
    client.send("hi\n");
    assert_eq!(client.line(), "served\n");
    assert!(received.recv().unwrap() > 10);
}

#[test]
fn timer_outside_a_running_worker_panics_with_a_clear_message() {
    let outcome = std::panic::catch_unwind(|| Timer::add(1.0, |_| {}));
    let payload = outcome.expect_err("Timer::add must panic here");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("Timer::add needs a running worker"),
        "{message}"
    );
    assert_eq!(Timer::count(), 0);
}

#[test]
fn a_connection_timer_dies_with_its_connection() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &workerman::TcpConnection, line: String| {
            if line == "subscribe" {
                // No Timer::del anywhere: closing the connection deletes the timer.
                connection.add_timer(0.02, |connection, _timer_id| {
                    connection.send("tick");
                });
            } else {
                connection.send(format!("timers: {}", Timer::count()));
            }
        });
        worker
    });
    let mut probe = support::LineClient::connect(server.local_address());
    let mut subscribers: Vec<support::LineClient> = (0..3)
        .map(|_| {
            let mut client = support::LineClient::connect(server.local_address());
            client.send("subscribe\n");
            assert_eq!(client.line(), "tick\n");
            assert_eq!(client.line(), "tick\n");
            client
        })
        .collect();
    probe.send("count\n");
    assert_eq!(probe.line(), "timers: 3\n");
    subscribers.truncate(1);
    assert!(support::wait_until(Duration::from_secs(2), || {
        probe.send("count\n");
        probe.line() == "timers: 1\n"
    }));
    drop(subscribers);
    assert!(support::wait_until(Duration::from_secs(2), || {
        probe.send("count\n");
        probe.line() == "timers: 0\n"
    }));
}
