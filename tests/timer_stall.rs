//! A repeating timer whose worker was held up: it fires once for the ticks it missed, then on its
//! next future grid tick: never two firings back to back (a burst), never a drift off the grid.
//! The worker is made to stall by a callback that sleeps for more than two intervals.

mod support;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::start;
use workerman::{TcpConnection, Timer, Worker};

const INTERVAL: Duration = Duration::from_millis(100);
/// How late a firing may be on this shared machine and still count as on time.
const SLACK: Duration = Duration::from_millis(60);

/// The firings after a stall, as offsets from the timer's own start: the first is the one
/// catch-up firing, each later one must sit on the grid (a whole number of intervals), at most
/// `SLACK` late, one interval after the one before.
fn assert_once_then_on_the_grid(firings: &[Duration], stall_end: Duration) {
    let catch_up = firings[0];
    assert!(
        catch_up >= stall_end,
        "the catch-up firing came before the stall ended: {firings:?}"
    );
    let first_tick = stall_end.as_nanos().div_ceil(INTERVAL.as_nanos()) as u32;
    for (n, &at) in firings.iter().enumerate().skip(1) {
        let grid = INTERVAL * (first_tick + n as u32 - 1);
        assert!(
            at >= grid,
            "firing {n} at {at:?} came before its grid tick {grid:?}: a burst after the \
             stall (firings {firings:?})"
        );
        assert!(
            at < grid + SLACK,
            "firing {n} at {at:?} is late for its grid tick {grid:?} (firings {firings:?})"
        );
    }
}

#[test]
fn a_stall_inside_a_timer_batch_fires_the_missed_tick_once_then_on_the_grid() {
    let (report, received) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| {
            // Created first, so it comes first in the batch where both are due: it holds the
            // worker for 2.5 intervals before the repeating timer's first firing.
            let stall = Rc::new(RefCell::new(None));
            let stall_end = stall.clone();
            Timer::once(INTERVAL.as_secs_f64(), move || {
                std::thread::sleep(INTERVAL * 5 / 2);
                *stall_end.borrow_mut() = Some(Instant::now());
            });
            let start = Instant::now();
            let firings = Rc::new(RefCell::new(Vec::new()));
            let report = report.clone();
            Timer::add(INTERVAL.as_secs_f64(), move |timer_id| {
                let mut firings = firings.borrow_mut();
                firings.push(start.elapsed());
                if firings.len() == 5 {
                    Timer::del(timer_id);
                    let stall_end = stall.borrow().expect("the stall ran").duration_since(start);
                    report.send((firings.clone(), stall_end)).unwrap();
                }
            });
        });
        worker
    });
    let (firings, stall_end) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_once_then_on_the_grid(&firings, stall_end);
}

#[test]
fn a_stall_in_a_connection_callback_fires_the_missed_tick_once_then_on_the_grid() {
    let (report, received) = mpsc::channel();
    let (started, ready) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        let firings = Rc::new(RefCell::new(Vec::new()));
        let stall_end = Rc::new(RefCell::new(None));
        let start = Rc::new(RefCell::new(Instant::now()));
        {
            let (firings, stall_end, start) = (firings.clone(), stall_end.clone(), start.clone());
            worker.on_worker_start(move |_| {
                *start.borrow_mut() = Instant::now();
                let (firings, stall_end, start) =
                    (firings.clone(), stall_end.clone(), start.clone());
                let report = report.clone();
                Timer::add(INTERVAL.as_secs_f64(), move |timer_id| {
                    let start = *start.borrow();
                    let mut firings = firings.borrow_mut();
                    firings.push(start.elapsed());
                    if let Some(end) = *stall_end.borrow() {
                        let end: Instant = end;
                        let after: Vec<Duration> = firings
                            .iter()
                            .copied()
                            .filter(|&at| at >= end.duration_since(start))
                            .collect();
                        if after.len() == 5 {
                            Timer::del(timer_id);
                            report
                                .send((firings.clone(), after, end.duration_since(start)))
                                .unwrap();
                        }
                    }
                });
                started.send(()).unwrap();
            });
        }
        worker.on_message(move |_connection: &TcpConnection, _line: String| {
            // Stall for 2.5 intervals, half-way between two ticks.
            std::thread::sleep(INTERVAL * 5 / 2);
            *stall_end.borrow_mut() = Some(Instant::now());
        });
        worker
    });
    ready.recv_timeout(Duration::from_secs(5)).unwrap();
    std::thread::sleep(INTERVAL * 3 + INTERVAL / 2);
    let mut client = support::connect(server.local_address());
    client.write_all(b"stall\n").unwrap();
    let (all, after, stall_end) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_once_then_on_the_grid(&after, stall_end);
    // The missed ticks were skipped, not made up: no more firings than ticks so far.
    let last = *all.last().unwrap();
    let ticks = (last.as_nanos() / INTERVAL.as_nanos()) as usize;
    assert!(
        all.len() <= ticks,
        "{} firings in {ticks} ticks: {all:?}",
        all.len()
    );
}

#[test]
fn thousands_of_timers_held_up_each_fire_once_then_on_their_grid() {
    const TIMERS: usize = 5_000;
    let interval = Duration::from_millis(200);
    let (report, received) = mpsc::channel();
    let _server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| {
            Timer::once(interval.as_secs_f64(), move || {
                std::thread::sleep(interval * 5 / 2);
            });
            // Each timer's firings, as offsets from its own start (so its grid is 1, 2, ...
            // intervals).
            let firings: Rc<RefCell<Vec<Vec<Duration>>>> =
                Rc::new(RefCell::new(vec![Vec::new(); TIMERS]));
            for index in 0..TIMERS {
                let firings = firings.clone();
                let start = Instant::now();
                Timer::add(interval.as_secs_f64(), move |_| {
                    firings.borrow_mut()[index].push(start.elapsed());
                });
            }
            let report = report.clone();
            Timer::once((interval * 8 + interval / 2).as_secs_f64(), move || {
                Timer::del_all();
                report.send(firings.borrow().clone()).unwrap();
            });
        });
        worker
    });
    let firings = received.recv_timeout(Duration::from_secs(20)).unwrap();
    for (index, timer) in firings.iter().enumerate() {
        // Ticks at 1..=8 intervals; the stall swallows ticks 2 and 3 (one catch-up for them all).
        assert!(
            timer.len() >= 5,
            "timer {index} fired {} times: {timer:?}",
            timer.len()
        );
        assert!(
            timer.len() <= 8,
            "timer {index} fired more often than it was due: {timer:?}"
        );
        // Each firing is for a tick of its own: the catch-up in the interval where the stall
        // ended, every later one in a later interval. A burst fires twice in one.
        let slot = |at: &Duration| at.as_nanos() / interval.as_nanos();
        for pair in timer.windows(2) {
            assert!(
                slot(&pair[1]) > slot(&pair[0]),
                "timer {index} fired twice within one interval (a burst): {timer:?}"
            );
        }
    }
}
