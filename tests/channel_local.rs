//! `workerman::channel` in one process (`Worker::spawn`, no broker): delivery to every handler
//! in publish order, unsubscribe, ids, history and gaps.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use support::start;
use workerman::Worker;
use workerman::channel::{Channel, EventId, History};

const WAIT: Duration = Duration::from_secs(5);

/// Runs `job` in `on_worker_start` of a spawned worker; what it sends comes back.
fn run(
    job: impl FnOnce(mpsc::Sender<String>) + Send + 'static,
) -> (workerman::RunningWorker, mpsc::Receiver<String>) {
    let (sender, received) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        let job = std::cell::RefCell::new(Some((job, sender)));
        worker.on_worker_start(move |_| {
            if let Some((job, sender)) = job.borrow_mut().take() {
                job(sender);
            }
        });
        worker
    });
    (server, received)
}

fn next(received: &mpsc::Receiver<String>) -> String {
    received
        .recv_timeout(WAIT)
        .expect("a message from the worker")
}

#[test]
fn every_handler_gets_every_publish_in_order_and_unsubscribe_stops_them() {
    let (server, received) = run(|out| {
        for name in ["first", "second"] {
            let out = out.clone();
            Channel::on("news", move |data: &[u8]| {
                out.send(format!("{name} {}", String::from_utf8_lossy(data)))
                    .unwrap();
            });
        }
        let other = out.clone();
        Channel::on("other", move |data: &[u8]| {
            other
                .send(format!("other {}", String::from_utf8_lossy(data)))
                .unwrap();
        });
        Channel::publish("news", "a");
        Channel::publish("other", "x");
        Channel::publish("news", "b");
        Channel::publish_with("news", "c", move |result| {
            assert!(result.is_ok());
            Channel::unsubscribe("news");
            Channel::publish("news", "after unsubscribe");
            Channel::publish_with("other", "y", move |_| out.send("done".into()).unwrap());
        });
    });
    let mut seen = Vec::new();
    loop {
        let line = next(&received);
        if line == "done" {
            break;
        }
        seen.push(line);
    }
    assert_eq!(
        seen,
        [
            "first a", "second a", "other x", "first b", "second b", "first c", "second c",
            "other y"
        ]
    );
    assert!(received.recv_timeout(Duration::from_millis(200)).is_err());
    server.stop();
}

#[test]
fn ids_increase_and_on_event_sees_them() {
    let (server, received) = run(|out| {
        let seen = out.clone();
        Channel::on_event("ticks", move |event| {
            seen.send(format!(
                "event {} {} {}",
                event.event,
                event.id,
                String::from_utf8_lossy(&event.data)
            ))
            .unwrap();
        });
        for n in 0..3 {
            let out = out.clone();
            Channel::publish_with("ticks", n.to_string(), move |result| {
                out.send(format!("id {}", result.unwrap())).unwrap();
            });
        }
    });
    let mut events = Vec::new();
    let mut ids = Vec::new();
    while events.len() < 3 || ids.len() < 3 {
        let line = next(&received);
        if let Some(rest) = line.strip_prefix("id ") {
            ids.push(rest.parse::<EventId>().unwrap());
        } else {
            events.push(line);
        }
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    for (n, (event, id)) in events.iter().zip(&ids).enumerate() {
        assert_eq!(*event, format!("event ticks {id} {n}"));
    }
    server.stop();
}

#[test]
fn history_after_an_id_and_gaps_for_trimmed_foreign_or_future_ids() {
    let (server, received) = run(|out| {
        Channel::set_history_size(3);
        let ids = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for n in 0..5 {
            let ids = ids.clone();
            let out = out.clone();
            Channel::publish_with("log", format!("m{n}"), move |result| {
                ids.borrow_mut().push(result.unwrap());
                if n < 4 {
                    return;
                }
                let ids = ids.borrow().clone();
                let show =
                    |result: Result<History, workerman::channel::Error>| match result.unwrap() {
                        History::Gap => "gap".to_owned(),
                        History::After(events) => events
                            .iter()
                            .map(|event| String::from_utf8_lossy(&event.data).into_owned())
                            .collect::<Vec<_>>()
                            .join(","),
                    };
                let cases = [
                    ("kept", ids[2], 10),
                    ("limit", ids[1], 2),
                    ("latest", ids[4], 10),
                    ("trimmed", ids[0], 10),
                    ("foreign epoch", EventId::new(ids[0].parts().0 - 1, 1), 10),
                    (
                        "future",
                        EventId::new(ids[0].parts().0, ids[4].parts().1 + 1),
                        10,
                    ),
                ];
                for (name, after, limit) in cases {
                    let out = out.clone();
                    Channel::history("log", &after, limit, move |result| {
                        out.send(format!("{name}: {}", show(result))).unwrap();
                    });
                }
                let out = out.clone();
                Channel::history("never published", &ids[4], 10, move |result| {
                    out.send(format!("empty: {}", show(result))).unwrap();
                });
            });
        }
    });
    let answers: Vec<String> = (0..7).map(|_| next(&received)).collect();
    assert_eq!(
        answers,
        [
            "kept: m3,m4",
            "limit: m2,m3",
            "latest: ",
            "trimmed: gap",
            "foreign epoch: gap",
            "future: gap",
            "empty: ",
        ]
    );
    server.stop();
}

#[test]
fn refused_publishes_are_reported_and_counted() {
    let (server, received) = run(|out| {
        Channel::publish("", "no name");
        let failed = Channel::failed_publishes();
        let long = "x".repeat(workerman::channel::MAX_EVENT_NAME + 1);
        Channel::publish_with(&long, "data", move |result| {
            let error = result.unwrap_err();
            out.send(format!("{failed} {}", error.is_rejected()))
                .unwrap();
        });
    });
    assert_eq!(next(&received), "1 true");
    server.stop();
}

#[test]
fn a_panicking_handler_costs_only_itself() {
    let (server, received) = run(|out| {
        Channel::on("boom", |_data: &[u8]| panic!("handler panics on purpose"));
        Channel::on("boom", move |data: &[u8]| {
            out.send(String::from_utf8_lossy(data).into_owned())
                .unwrap();
        });
        Channel::publish("boom", "one");
        Channel::publish("boom", "two");
    });
    assert_eq!(next(&received), "one");
    assert_eq!(next(&received), "two");
    server.stop();
}

#[test]
fn connect_rejects_bad_addresses_and_a_second_choice() {
    let (server, received) = run(|out| {
        let bad = Channel::connect("ftp://host").is_err();
        let local = Channel::connect("local").is_ok();
        let again = Channel::connect("redis://127.0.0.1:1").is_err();
        out.send(format!("{bad} {local} {again}")).unwrap();
    });
    assert_eq!(next(&received), "true true true");
    server.stop();
}
