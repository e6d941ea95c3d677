//! The cost of one `Worker::spawn_blocking` round trip (submit → run an empty job on the pool →
//! callback on the reactor), against a bare loop written for this bench: a `mio::Poll` with a
//! `Waker`, one job thread fed by a `std::sync::mpsc` channel of boxed closures, and the results
//! coming back on another channel followed by a `wake()`.
//!
//! Two shapes, each measured in alternating rounds (ours, bare, ours, ...) in one run, medians
//! reported with their ratio:
//! - `sequential`: one job in flight, the next submitted from the previous one's callback (the
//!   latency of a round trip).
//! - `burst`: 1,000 jobs submitted at once, then all their callbacks (the throughput).
//!
//! Both sides run one job thread (`Worker::set_blocking_threads(1)`), so the same work is
//! compared. Run it with `cargo bench --bench blocking_round_trip` (release build); arguments:
//! `[rounds] [jobs per round]` (default 7 and 20,000).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use workerman::Worker;

const BURST: usize = 1000;

#[derive(Clone, Copy)]
enum Shape {
    Sequential,
    Burst,
}

/// Ours: `jobs` round trips on a worker's reactor; the time per job.
fn ours(shape: Shape, jobs: usize) -> Duration {
    let (done_sender, done) = mpsc::channel();
    let server = Worker::spawn(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            // One warm-up job starts the pool's thread outside the measurement.
            let done_sender = done_sender.clone();
            Worker::spawn_blocking(
                || (),
                move |_| {
                    let started = Instant::now();
                    let finished = Rc::new(Cell::new(0usize));
                    match shape {
                        Shape::Sequential => {
                            chain(jobs, finished, started, done_sender);
                        }
                        Shape::Burst => burst(jobs, finished, started, done_sender),
                    }
                },
            )
            .expect("room in the pool");
        });
        worker
    })
    .expect("the worker starts");
    let took = done.recv().expect("the round finishes");
    server.stop();
    took / jobs as u32
}

fn chain(jobs: usize, finished: Rc<Cell<usize>>, started: Instant, done: mpsc::Sender<Duration>) {
    Worker::spawn_blocking(
        || (),
        move |result| {
            result.expect("the job ran");
            finished.set(finished.get() + 1);
            if finished.get() == jobs {
                let _ = done.send(started.elapsed());
            } else {
                chain(jobs, finished, started, done);
            }
        },
    )
    .expect("room in the pool");
}

fn burst(jobs: usize, finished: Rc<Cell<usize>>, started: Instant, done: mpsc::Sender<Duration>) {
    let round = BURST.min(jobs - finished.get());
    let target = finished.get() + round;
    for _ in 0..round {
        let finished = finished.clone();
        let done = done.clone();
        Worker::spawn_blocking(
            || (),
            move |result| {
                result.expect("the job ran");
                finished.set(finished.get() + 1);
                if finished.get() == jobs {
                    let _ = done.send(started.elapsed());
                } else if finished.get() == target {
                    burst(jobs, finished, started, done);
                }
            },
        )
        .expect("room in the pool");
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The bare loop: the same round trips through two channels and a waker; the time per job.
fn bare(shape: Shape, jobs: usize) -> Duration {
    let mut poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
    let (job_sender, job_receiver) = mpsc::channel::<(usize, Job)>();
    let (result_sender, results) = mpsc::channel::<usize>();
    let thread = {
        let waker = waker.clone();
        std::thread::spawn(move || {
            while let Ok((index, job)) = job_receiver.recv() {
                job();
                let _ = result_sender.send(index);
                let _ = waker.wake();
            }
        })
    };
    let mut events = Events::with_capacity(64);
    // Warm-up, as ours.
    job_sender.send((0, Box::new(|| ()))).unwrap();
    while results.try_recv().is_err() {
        poll.poll(&mut events, None).unwrap();
    }
    let started = Instant::now();
    let mut finished = 0;
    let mut submitted = 0;
    let in_flight = match shape {
        Shape::Sequential => 1,
        Shape::Burst => BURST,
    };
    let mut target = 0;
    while finished < jobs {
        if finished == target {
            target = (finished + in_flight).min(jobs);
            while submitted < target {
                job_sender.send((submitted, Box::new(|| ()))).unwrap();
                submitted += 1;
            }
        }
        poll.poll(&mut events, None).unwrap();
        while let Ok(_index) = results.try_recv() {
            finished += 1;
        }
    }
    let took = started.elapsed();
    drop(job_sender);
    thread.join().unwrap();
    took / jobs as u32
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    let rounds: usize = arguments
        .first()
        .and_then(|value| value.parse().ok())
        .unwrap_or(7);
    let jobs: usize = arguments
        .get(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    Worker::set_blocking_threads(1);
    println!(
        "blocking_round_trip: {rounds} alternating rounds of {jobs} jobs, one job thread each"
    );
    println!(
        "| shape | spawn_blocking (median ns/job) | bare mpsc + Waker (median ns/job) | ratio |"
    );
    println!("| --- | --- | --- | --- |");
    for (name, shape) in [
        ("sequential (1 in flight)", Shape::Sequential),
        ("burst (1,000 in flight)", Shape::Burst),
    ] {
        let mut ours_times = Vec::new();
        let mut bare_times = Vec::new();
        for _ in 0..rounds {
            ours_times.push(ours(shape, jobs));
            bare_times.push(bare(shape, jobs));
        }
        let ours_median = median(&mut ours_times);
        let bare_median = median(&mut bare_times);
        println!(
            "| {name} | {} | {} | {:.2}x |",
            ours_median.as_nanos(),
            bare_median.as_nanos(),
            ours_median.as_secs_f64() / bare_median.as_secs_f64()
        );
    }
}
