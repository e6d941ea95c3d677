//! `workerman::redis::Client` when things go wrong: `kill -9` of the server mid-subscription and
//! a restart on the same port, commands while Redis is down (queued, answered, or refused at
//! the bound), the reconnect backoff, a server that never answers (timeouts), and fake servers
//! that send garbage or a 1 GiB bulk header (a clean close, an error in the callback).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::redis::{ClientWorker, RedisServer, describe, free_port};
use workerman::redis::Client;

#[test]
fn kill_9_mid_subscription_then_a_restart_on_the_same_port() {
    let mut server = RedisServer::start();
    let client = ClientWorker::start(&format!("{}/2", server.url()), |redis, events| {
        redis.set_reply_timeout(Duration::from_secs(10));
        let sender = events.clone();
        redis.subscribe(["c"], move |_, message| {
            sender
                .send(format!("message {}", String::from_utf8_lossy(message)))
                .ok();
        });
        let sender = events.clone();
        redis.on_reconnect(move |_| {
            sender.send("reconnected".into()).ok();
        });
    });
    assert!(support::wait_until(Duration::from_secs(10), || server
        .cli(&["PUBSUB", "NUMSUB", "c"])
        .ends_with('1')));
    server.cli(&["PUBLISH", "c", "before"]);
    assert_eq!(client.next(), "message before");

    // A command in flight when the server dies is answered with a connection error.
    client.run(|redis: &Client, events| {
        let events = events.clone();
        redis.command(["BLPOP", "never", "0"], move |result| {
            events.send(format!("blpop {}", describe(&result))).ok();
        });
    });
    std::thread::sleep(Duration::from_millis(200));
    server.kill9();
    let lost = client.next();
    assert!(lost.starts_with("blpop err:connection"), "{lost}");

    // Commands while it is down are queued...
    client.run(|redis: &Client, events| {
        for index in 0..3 {
            let events = events.clone();
            redis.set(format!("during{index}"), "queued", move |result| {
                events
                    .send(format!("set{index} {}", describe(&result)))
                    .ok();
            });
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    // ...and answered once it is back, in order, on the same database.
    // (The hook runs once the handshake is done and the queue sent, before the answers.)
    let events: Vec<String> = (0..4).map(|_| client.next()).collect();
    let sets: Vec<&String> = events.iter().filter(|e| e.starts_with("set")).collect();
    assert_eq!(
        sets,
        ["set0 ok:OK", "set1 ok:OK", "set2 ok:OK"],
        "{events:?}"
    );
    assert!(events.contains(&"reconnected".to_owned()), "{events:?}");
    assert_eq!(server.cli(&["-n", "2", "GET", "during2"]), "queued");
    // Re-subscribed: messages arrive again.
    assert_eq!(server.cli(&["PUBSUB", "NUMSUB", "c"]), "c\n1");
    server.cli(&["PUBLISH", "c", "after"]);
    assert_eq!(client.next(), "message after");
}

#[test]
fn kill_9_on_resp2_restores_the_subscriber_connection() {
    let mut server = RedisServer::with_config(&["rename-command HELLO \"\""]);
    let client = ClientWorker::start(&server.url(), |redis, events| {
        let sender = events.clone();
        redis.psubscribe(["p.*"], move |_, channel, message| {
            sender
                .send(format!("{channel} {}", String::from_utf8_lossy(message)))
                .ok();
        });
    });
    assert!(support::wait_until(Duration::from_secs(10), || server
        .cli(&["PUBSUB", "NUMPAT"])
        == "1"));
    server.kill9();
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    assert!(support::wait_until(Duration::from_secs(10), || server
        .cli(&["PUBSUB", "NUMPAT"])
        == "1"));
    server.cli(&["PUBLISH", "p.x", "again"]);
    assert_eq!(client.next(), "p.x again");
    assert_eq!(client.call(&["PING"]), "ok:PONG");
}

#[test]
fn while_redis_is_down_commands_time_out_and_the_queue_is_bounded() {
    let port = free_port();
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |redis, _| {
        redis.set_reply_timeout(Duration::from_millis(400));
        redis.set_max_queue(3);
    });
    let started = Instant::now();
    client.run(|redis: &Client, events| {
        for index in 0..4 {
            let events = events.clone();
            redis.get("k", move |result| {
                events.send(format!("{index} {}", describe(&result))).ok();
            });
        }
    });
    let refused = client.next();
    assert!(
        refused.starts_with("3 err:connection") && refused.contains("queued already"),
        "{refused}"
    );
    let mut rest = vec![client.next(), client.next(), client.next()];
    rest.sort();
    assert_eq!(rest, ["0 err:timeout", "1 err:timeout", "2 err:timeout"]);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn reconnects_back_off_from_the_first_quick_retry() {
    // A server that accepts and closes at once: each attempt fails its handshake.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, accepts) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if accepted.send(Instant::now()).is_err() {
                return;
            }
            drop(stream);
        }
    });
    let _client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |_, _| {});
    let first = accepts.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = accepts.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        second - first < Duration::from_millis(300),
        "first retry after {:?}",
        second - first
    );
    // Over the next two seconds: 100, 200, 400, 800 ms... a handful of attempts, not a loop.
    let window = Instant::now() + Duration::from_secs(2);
    let mut count = 0;
    while let Ok(at) = accepts.recv_timeout(window.saturating_duration_since(Instant::now())) {
        if at > window {
            break;
        }
        count += 1;
    }
    assert!((2..=8).contains(&count), "{count} attempts in 2 s");
}

/// A fake Redis on a free port: answers `HELLO` with `hello_reply`, then each later read with
/// the next of `replies` (then stays silent); reports "closed" when the client hangs up.
fn fake_server(
    hello_reply: &'static [u8],
    replies: Vec<&'static [u8]>,
) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (report, reports) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut replies = replies.into_iter();
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => {
                    report.send("closed".to_owned()).ok();
                    return;
                }
                Ok(count) => {
                    let reply = if buffer[..count].windows(5).any(|w| w == b"HELLO") {
                        Some(hello_reply)
                    } else {
                        replies.next()
                    };
                    if let Some(reply) = reply {
                        let _ = stream.write_all(reply);
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                    report.send("closed".to_owned()).ok();
                    return;
                }
                Err(_) => {
                    report.send("read timed out".to_owned()).ok();
                    return;
                }
            }
        }
    });
    (port, reports)
}

const HELLO_REPLY: &[u8] = b"%1\r\n+server\r\n+fake\r\n";

#[test]
fn a_server_that_never_answers_times_out() {
    let (port, _reports) = fake_server(HELLO_REPLY, vec![]);
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |redis, _| {
        redis.set_reply_timeout(Duration::from_millis(300));
    });
    let started = Instant::now();
    assert_eq!(client.call(&["GET", "k"]), "err:timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_server_that_accepts_and_never_answers_hello_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |redis, _| {
        redis.set_reply_timeout(Duration::from_millis(300));
    });
    let started = Instant::now();
    assert_eq!(client.call(&["GET", "k"]), "err:timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(client);
    holder.join().unwrap();
}

#[test]
fn garbage_closes_the_connection_with_an_error_in_the_callback() {
    let (port, reports) = fake_server(HELLO_REPLY, vec![b"this is not RESP\r\n"]);
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |_, _| {});
    let answer = client.call(&["GET", "k"]);
    assert!(answer.starts_with("err:connection"), "{answer}");
    assert_eq!(
        reports.recv_timeout(Duration::from_secs(5)).unwrap(),
        "closed"
    );
}

#[test]
fn a_1_gib_bulk_header_closes_the_connection_at_once() {
    let (port, reports) = fake_server(HELLO_REPLY, vec![b"$1073741824\r\n"]);
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |redis, _| {
        // Long enough that a client waiting for the body would report a timeout instead.
        redis.set_reply_timeout(Duration::from_secs(8));
    });
    let started = Instant::now();
    let answer = client.call(&["GET", "k"]);
    assert!(answer.starts_with("err:connection"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        reports.recv_timeout(Duration::from_secs(5)).unwrap(),
        "closed"
    );
}

#[test]
fn a_reply_over_a_smaller_limit_and_a_deep_nesting_are_refused() {
    let (port, reports) = fake_server(HELLO_REPLY, vec![b"$100\r\n"]);
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |redis, _| {
        redis.set_max_reply_size(64);
    });
    assert!(client.call(&["GET", "k"]).starts_with("err:connection"));
    assert_eq!(
        reports.recv_timeout(Duration::from_secs(5)).unwrap(),
        "closed"
    );

    let deep: &'static [u8] = Box::leak(b"*1\r\n".repeat(100_000).into_boxed_slice());
    let (port, reports) = fake_server(HELLO_REPLY, vec![deep]);
    let client = ClientWorker::start(&format!("redis://127.0.0.1:{port}"), |_, _| {});
    assert!(client.call(&["GET", "k"]).starts_with("err:connection"));
    assert_eq!(
        reports.recv_timeout(Duration::from_secs(5)).unwrap(),
        "closed"
    );
}
