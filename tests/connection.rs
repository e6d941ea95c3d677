//! TcpConnection behaviour over loopback: send's three results and the buffer callbacks,
//! close / close_with / end / destroy, on_close exactly once, stale handles, panics in callbacks,
//! pause / resume, pipe, context, addresses.

mod support;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{LineClient, connect, read_to_close, start};
use workerman::{SendResult, TcpConnection, Worker};

#[derive(Debug, PartialEq)]
enum Seen {
    Send(SendResult),
    Full,
    Drain,
    Error(i32, String),
}

#[test]
fn slow_reader_queues_then_fills_then_refuses_then_drains() {
    let (events, seen) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        let full = events.clone();
        worker.on_buffer_full(move |_| full.send(Seen::Full).unwrap());
        let drain = events.clone();
        worker.on_buffer_drain(move |_| drain.send(Seen::Drain).unwrap());
        let error = events.clone();
        worker.on_error(move |_, code, message| {
            error.send(Seen::Error(code, message.to_owned())).unwrap()
        });
        worker.on_message(move |connection: &TcpConnection, _bytes: Vec<u8>| {
            // Send 64 KiB pieces to a client that does not read, until one is refused.
            let piece = vec![b'x'; 64 * 1024];
            for _ in 0..100_000 {
                let result = connection.send(piece.as_slice());
                events.send(Seen::Send(result)).unwrap();
                if result == SendResult::Refused {
                    break;
                }
            }
        });
        worker
    });
    let mut client = connect(server.local_address());
    client.write_all(b"go").unwrap();

    let mut order = Vec::new();
    loop {
        let event = seen.recv_timeout(Duration::from_secs(10)).expect("events");
        let refused = event == Seen::Send(SendResult::Refused);
        order.push(event);
        if refused {
            break;
        }
    }
    let first_queued = order
        .iter()
        .position(|e| *e == Seen::Send(SendResult::Queued))
        .expect("some send is queued once the kernel's buffers are full");
    assert!(
        order[..first_queued]
            .iter()
            .all(|e| *e == Seen::Send(SendResult::Written)),
        "before that, sends are written: {order:?}"
    );
    let full = order
        .iter()
        .position(|e| *e == Seen::Full)
        .expect("on_buffer_full fired");
    assert!(full > first_queued);
    assert_eq!(order.iter().filter(|e| **e == Seen::Full).count(), 1);
    // on_error fires inside the refused send, before it returns (as in Workerman).
    assert_eq!(
        order[order.len() - 2..],
        [
            Seen::Error(
                TcpConnection::SEND_FAIL,
                "send buffer full and drop package".into()
            ),
            Seen::Send(SendResult::Refused)
        ]
    );

    // Now read everything: the queue drains and on_buffer_drain fires.
    let written_or_queued = order
        .iter()
        .filter(|e| matches!(e, Seen::Send(r) if r.is_accepted()))
        .count();
    let mut remaining = written_or_queued * 64 * 1024;
    let mut buffer = vec![0u8; 1 << 20];
    while remaining > 0 {
        let count = client.read(&mut buffer).unwrap();
        assert!(count > 0);
        assert!(buffer[..count].iter().all(|&b| b == b'x'));
        remaining -= count;
    }
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(5)).unwrap(),
        Seen::Drain
    );
}

#[test]
fn close_with_delivers_its_data_then_closes_and_on_close_fires_once() {
    let (closes, closed) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _line: String| {
            connection.close_with("goodbye");
            // Everything after a close is refused, and closing again does nothing.
            assert_eq!(connection.send("late"), SendResult::Refused);
            connection.close();
            connection.destroy();
        });
        worker.on_close(move |connection| closes.send(connection.id()).unwrap());
        worker
    });
    let mut client = connect(server.local_address());
    client.write_all(b"bye\n").unwrap();
    assert_eq!(read_to_close(&mut client), b"goodbye\n");
    let id = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(id, 1);
    assert!(
        closed.recv_timeout(Duration::from_millis(300)).is_err(),
        "on_close fired twice"
    );
}

#[test]
fn close_with_a_large_queue_flushes_it_all_first() {
    let server = start(|| {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _bytes: Vec<u8>| {
            connection.close_with(vec![b'z'; 900_000]);
        });
        worker
    });
    let mut client = connect(server.local_address());
    client.write_all(b"x").unwrap();
    thread::sleep(Duration::from_millis(200)); // let the kernel buffers fill first
    let all = read_to_close(&mut client);
    assert_eq!(all.len(), 900_000);
}

#[test]
fn end_flushes_sends_fin_and_closes_when_the_peer_closes() {
    let (closes, closed) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _line: String| {
            connection.send("last");
            connection.end();
            assert_eq!(connection.status(), TcpConnection::STATUS_ENDING);
            assert_eq!(connection.send("refused"), SendResult::Refused);
        });
        worker.on_close(move |_| closes.send(()).unwrap());
        worker
    });
    let mut client = connect(server.local_address());
    client.write_all(b"x\n").unwrap();
    // Our FIN arrives after the data; the server waits for ours.
    assert_eq!(read_to_close(&mut client), b"last\n");
    assert!(
        closed.recv_timeout(Duration::from_millis(300)).is_err(),
        "closed before our FIN"
    );
    // Input after end() is discarded, not delivered.
    client.write_all(b"ignored\n").unwrap();
    drop(client);
    closed
        .recv_timeout(Duration::from_secs(3))
        .expect("on_close after the peer closed");
}

#[test]
fn stale_handle_after_slot_reuse_is_closed_and_sends_nothing() {
    let (reports, report) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        let first: Rc<RefCell<Option<TcpConnection>>> = Rc::default();
        worker.on_message(move |connection: &TcpConnection, line: String| {
            if line == "first" {
                *first.borrow_mut() = Some(connection.clone());
                connection.send("noted");
                return;
            }
            let old = first.borrow().clone().unwrap();
            let same_slot = format!("{old:?}").split("slot: ").nth(1)
                == format!("{connection:?}").split("slot: ").nth(1);
            reports
                .send((
                    same_slot,
                    old.status(),
                    old.send("to the old connection"),
                    old.id() != connection.id(),
                ))
                .unwrap();
            connection.send("checked");
        });
        worker
    });
    let mut first = LineClient::connect(server.local_address());
    first.send("first\n");
    assert_eq!(first.line(), "noted\n");
    drop(first);
    thread::sleep(Duration::from_millis(100));
    let mut second = LineClient::connect(server.local_address());
    second.send("second\n");
    let (same_slot, status, sent, different_id) =
        report.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(same_slot, "the new connection reuses the old one's slot");
    assert!(different_id);
    assert_eq!(status, TcpConnection::STATUS_CLOSED);
    assert_eq!(sent, SendResult::Refused);
    assert_eq!(
        second.line(),
        "checked\n",
        "nothing meant for the old handle arrived"
    );
}

#[test]
fn panic_in_on_message_closes_only_its_connection() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            if line == "boom" {
                panic!("a bug in user code");
            }
            connection.send(format!(
                "{line} (panics so far: {})",
                Worker::statistics().panics
            ));
        });
        worker
    });
    let mut good = LineClient::connect(server.local_address());
    let mut bad = LineClient::connect(server.local_address());
    good.send("before\n");
    assert_eq!(good.line(), "before (panics so far: 0)\n");
    bad.send("boom\n");
    assert!(bad.closed(), "the panicking connection is closed");
    good.send("after\n");
    assert_eq!(good.line(), "after (panics so far: 1)\n");
}

#[test]
fn panics_in_on_connect_on_close_and_timers_are_contained() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_connect(|connection| {
            if connection.id() == 1 {
                panic!("on_connect bug");
            }
        });
        worker.on_close(|_| panic!("on_close bug"));
        worker.on_message(|connection: &TcpConnection, line: String| {
            if line == "timer" {
                workerman::Timer::once(0.0, || panic!("timer bug"));
                let connection = connection.clone();
                workerman::Timer::once(0.05, move || {
                    connection.send(format!("panics: {}", Worker::statistics().panics));
                });
                return;
            }
            connection.send(line);
        });
        worker
    });
    let mut first = LineClient::connect(server.local_address());
    assert!(
        first.closed(),
        "a panic in on_connect closes that connection"
    );
    let mut second = LineClient::connect(server.local_address());
    second.send("timer\n");
    // on_connect (1), on_close of the first connection (2), the timer (3).
    assert_eq!(second.line(), "panics: 3\n");
}

#[test]
fn pause_and_resume_recv() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line.as_str());
            if line == "pause" {
                connection.pause_recv();
                let connection = connection.clone();
                workerman::Timer::once(0.3, move || {
                    connection.send("resuming");
                    connection.resume_recv();
                });
            }
        });
        worker
    });
    let mut client = LineClient::connect(server.local_address());
    client.send("pause\n");
    assert_eq!(client.line(), "pause\n");
    client.send("queued one\nqueued two\n");
    // Nothing is delivered while paused: the first thing back is the timer's line.
    assert_eq!(client.line(), "resuming\n");
    assert_eq!(client.line(), "queued one\n");
    assert_eq!(client.line(), "queued two\n");
}

#[test]
fn pipe_forwards_both_ways_and_closes_together() {
    // A text worker whose connections pair up: the first two clients are piped to each other.
    let server = start(|| {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        let waiting: Rc<RefCell<Option<TcpConnection>>> = Rc::default();
        worker.on_connect(move |connection| {
            let other = waiting.borrow_mut().take();
            match other {
                Some(other) => {
                    connection.pipe(&other);
                    other.pipe(connection);
                    connection.send("paired");
                    other.send("paired");
                }
                None => *waiting.borrow_mut() = Some(connection.clone()),
            }
        });
        worker
    });
    let mut a = connect(server.local_address());
    thread::sleep(Duration::from_millis(50));
    let mut b = connect(server.local_address());
    let mut buffer = [0u8; 6];
    a.read_exact(&mut buffer).unwrap();
    b.read_exact(&mut buffer).unwrap();
    a.write_all(b"from a").unwrap();
    b.read_exact(&mut buffer).unwrap();
    assert_eq!(&buffer, b"from a");
    b.write_all(b"from b").unwrap();
    a.read_exact(&mut buffer).unwrap();
    assert_eq!(&buffer, b"from b");
    drop(a);
    assert_eq!(read_to_close(&mut b), b"", "b closes when a does");
}

#[test]
fn context_and_addresses() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_connect(|connection| connection.set_context(0u32));
        worker.on_message(|connection: &TcpConnection, _line: String| {
            let count = connection
                .with_context(|count: &mut u32| {
                    *count += 1;
                    *count
                })
                .unwrap();
            assert!(connection.with_context(|_: &mut String| ()).is_none());
            connection.send(format!(
                "{count} {} {} {}",
                connection.remote_ip(),
                connection.remote_port(),
                connection.local_port()
            ));
        });
        worker
    });
    let mut client = LineClient::connect(server.local_address());
    let local = client.reader.get_ref().local_addr().unwrap();
    client.send("a\n");
    assert_eq!(
        client.line(),
        format!(
            "1 127.0.0.1 {} {}\n",
            local.port(),
            server.local_address().port()
        )
    );
    client.send("b\n");
    assert!(client.line().starts_with("2 "));
}

#[test]
fn stop_calls_on_worker_stop_and_closes_connections() {
    let (stops, stopped) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_worker_stop(move |_| stops.send(()).unwrap());
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker
    });
    let mut client = LineClient::connect(server.local_address());
    client.send("hi\n");
    assert_eq!(client.line(), "hi\n");
    server.stop();
    stopped.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(client.closed());
}

#[test]
fn data_and_fin_arriving_together_are_both_seen() {
    let (closes, closed) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker.on_close(move |_| closes.send(()).unwrap());
        worker
    });
    for _ in 0..20 {
        let mut client = connect(server.local_address());
        // The line and our FIN leave together: one readable event carries both.
        client.write_all(b"last words\n").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_to_close(&mut client), b"last words\n");
        closed
            .recv_timeout(Duration::from_secs(2))
            .expect("the server saw the FIN behind the data and closed");
    }
}

#[test]
fn on_close_can_still_read_the_context() {
    let (names, name) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_connect(|connection| connection.set_context(String::from("ada")));
        worker.on_close(move |connection| {
            names
                .send(connection.with_context(|user: &mut String| user.clone()))
                .unwrap();
        });
        worker
    });
    drop(connect(server.local_address()));
    assert_eq!(
        name.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .as_deref(),
        Some("ada")
    );
}
