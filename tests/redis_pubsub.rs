//! Pub/sub through `workerman::redis::Client` against a real `redis-server`: messages published
//! with `redis-cli`, patterns, shard channels, unsubscribing, commands on the same client while
//! subscribed, on RESP3 (one connection, push frames) and RESP2 (a second connection).

mod support;

use std::time::Duration;

use support::redis::{ClientWorker, RedisServer, describe};
use workerman::redis::Client;

/// Subscribes to `news` and `news.*` and `orders:{eu}` (shard), reporting each message.
fn subscribe_all(redis: &Client, events: &std::sync::mpsc::Sender<String>) {
    let sender = events.clone();
    redis.subscribe(["news", "other"], move |channel, message| {
        sender
            .send(format!(
                "message {channel} {}",
                String::from_utf8_lossy(message)
            ))
            .ok();
    });
    let sender = events.clone();
    redis.psubscribe(["news.*"], move |pattern, channel, message| {
        sender
            .send(format!(
                "pmessage {pattern} {channel} {}",
                String::from_utf8_lossy(message)
            ))
            .ok();
    });
    let sender = events.clone();
    redis.ssubscribe(["orders:{eu}"], move |channel, message| {
        sender
            .send(format!(
                "smessage {channel} {}",
                String::from_utf8_lossy(message)
            ))
            .ok();
    });
}

/// Waits until the server counts `count` subscriptions of each kind for our client.
fn wait_subscribed(server: &RedisServer, channel: &str, pattern: bool, shard: bool) {
    let subscribed = support::wait_until(Duration::from_secs(10), || {
        server.cli(&["PUBSUB", "NUMSUB", channel]).ends_with('1')
            && (!pattern || server.cli(&["PUBSUB", "NUMPAT"]) == "1")
            && (!shard
                || server
                    .cli(&["PUBSUB", "SHARDNUMSUB", "orders:{eu}"])
                    .ends_with('1'))
    });
    assert!(subscribed, "the client subscribed within 10 s");
}

fn pubsub_round(server: &RedisServer, client: &ClientWorker) {
    client.run(subscribe_all);
    wait_subscribed(server, "news", true, true);
    assert_eq!(server.cli(&["PUBLISH", "news", "hello world"]), "1");
    assert_eq!(client.next(), "message news hello world");
    assert_eq!(server.cli(&["PUBLISH", "news.sport", "goal"]), "1");
    assert_eq!(client.next(), "pmessage news.* news.sport goal");
    assert_eq!(server.cli(&["SPUBLISH", "orders:{eu}", "o1"]), "1");
    assert_eq!(client.next(), "smessage orders:{eu} o1");
    // Commands go on while subscribed, and so does publishing from the client itself.
    assert_eq!(client.call(&["SET", "k", "v"]), "ok:OK");
    assert_eq!(client.call(&["GET", "k"]), "ok:v");
    client.run(|redis: &Client, events| {
        let events = events.clone();
        redis.publish("other", "from the client", move |result| {
            events.send(format!("published {}", describe(&result))).ok();
        });
    });
    let mut got = vec![client.next(), client.next()];
    got.sort();
    assert_eq!(got, ["message other from the client", "published ok:1"]);
    // Unsubscribed: nothing more arrives from there.
    client.run(|redis: &Client, _| {
        redis.unsubscribe(["news"]);
        redis.punsubscribe(Vec::<String>::new());
        redis.sunsubscribe(["orders:{eu}"]);
    });
    let gone = support::wait_until(Duration::from_secs(10), || {
        server.cli(&["PUBSUB", "NUMSUB", "news"]).ends_with('0')
            && server.cli(&["PUBSUB", "NUMPAT"]) == "0"
    });
    assert!(gone, "unsubscribed within 10 s");
    assert_eq!(server.cli(&["PUBLISH", "news", "unheard"]), "0");
    assert_eq!(server.cli(&["PUBLISH", "news.x", "unheard"]), "0");
    assert_eq!(server.cli(&["PUBLISH", "other", "still"]), "1");
    assert_eq!(client.next(), "message other still");
}

#[test]
fn pubsub_on_resp3_shares_one_connection() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    pubsub_round(&server, &client);
    // One connection: the commands and the subscriptions on it.
    assert_eq!(
        server
            .cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|l| !l.contains("cmd=client"))
            .count(),
        1
    );
}

#[test]
fn pubsub_on_resp2_uses_a_second_connection() {
    let server = RedisServer::with_config(&["rename-command HELLO \"\""]);
    let client = ClientWorker::start(&server.url(), |_, _| {});
    pubsub_round(&server, &client);
    let list = server.cli(&["CLIENT", "LIST"]);
    let ours: Vec<&str> = list.lines().filter(|l| !l.contains("cmd=client")).collect();
    assert_eq!(ours.len(), 2, "{list}");
    assert!(ours.iter().all(|line| line.contains("resp=2")), "{list}");
}

#[test]
fn subscribing_before_the_connection_is_up() {
    let server = RedisServer::start();
    // Subscribed in the same callback that made the client: sent once the handshake is done.
    let client = ClientWorker::start(&server.url(), |redis, events| {
        let events = events.clone();
        redis.subscribe(["early"], move |_, message| {
            events
                .send(String::from_utf8_lossy(message).into_owned())
                .ok();
        });
    });
    wait_subscribed(&server, "early", false, false);
    server.cli(&["PUBLISH", "early", "bird"]);
    assert_eq!(client.next(), "bird");
}

#[test]
fn binary_messages_arrive_intact() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |redis, events| {
        let events = events.clone();
        redis.subscribe(["bin"], move |_, message| {
            events.send(format!("{message:?}")).ok();
        });
    });
    wait_subscribed(&server, "bin", false, false);
    client.run(|redis: &Client, _| {
        redis.publish("bin", [0u8, 255, 13, 10, 36], |_| {});
    });
    assert_eq!(client.next(), "[0, 255, 13, 10, 36]");
}

/// The Redis connection is read before other sockets that are ready in the same turn: here an
/// HTTP request that arrived first, while the worker was busy (a deliberate stall), and a
/// message published just after it.
#[test]
fn the_redis_socket_is_read_before_other_ready_sockets() {
    use std::io::Write;
    use workerman::protocols::http::Request;
    use workerman::{TcpConnection, Worker};

    let server = RedisServer::start();
    let url = server.url();
    let (events, order) = std::sync::mpsc::channel::<String>();
    let worker = support::start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        let sender = events.clone();
        worker.on_worker_start(move |_| {
            let redis = Client::new(&url);
            let sender = sender.clone();
            redis.subscribe(["first"], move |_, _| {
                sender.send("redis".into()).ok();
            });
        });
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            connection.send("ok");
            match request.path() {
                // Busy for a while: what arrives meanwhile is ready together at the next poll.
                "/stall" => std::thread::sleep(Duration::from_millis(1000)),
                "/warm" => {}
                path => {
                    events.send(format!("http {path}")).ok();
                }
            }
        });
        worker
    });
    let address = worker.local_address();
    wait_subscribed(&server, "first", false, false);
    let mut stall = support::HttpClient::connect(address);
    let mut other = support::HttpClient::connect(address);
    assert_eq!(other.get("/warm").status, 200);
    stall.write(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n");
    let _ = support::read_response(&mut stall.reader, false);
    // While the worker sleeps: the request first, then the message.
    other.write(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    other.reader.get_mut().flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.cli(&["PUBLISH", "first", "m"]), "1");
    let first = order.recv_timeout(Duration::from_secs(10)).unwrap();
    let second = order.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("redis", "http /x"));
    worker.stop();
}

/// `on_subscribed` says when Redis confirmed a `SUBSCRIBE` (here held 300 ms by a proxy), and
/// `is_subscribed` is false before, true after, false while the connection is lost and true
/// again once the subscription is restored (said again by `on_subscribed`).
fn confirmation_round(server: &mut RedisServer) {
    let proxy = support::redis::SlowSubscribeProxy::start(server.port, Duration::from_millis(300));
    let client = ClientWorker::start(&proxy.url(), |redis, events| {
        let events = events.clone();
        redis.on_subscribed(move |channel| {
            events.send(format!("subscribed {channel}")).ok();
        });
    });
    client.run(|redis: &Client, events| {
        redis.subscribe(["news"], |_, _| {});
        events
            .send(format!("asked {}", redis.is_subscribed("news")))
            .ok();
    });
    assert_eq!(client.next(), "asked false");
    let started = std::time::Instant::now();
    assert_eq!(client.next(), "subscribed news");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let state = |client: &ClientWorker| {
        client.run(|redis: &Client, events| {
            events
                .send(format!("state {}", redis.is_subscribed("news")))
                .ok();
        });
        client.next()
    };
    assert_eq!(state(&client), "state true");
    assert_eq!(
        server.cli(&["PUBSUB", "NUMSUB", "news"]).lines().last(),
        Some("1")
    );
    server.kill9();
    assert!(
        support::wait_until(Duration::from_secs(5), || state(&client) == "state false"),
        "not subscribed once the connection is gone"
    );
    server.restart();
    client.until("subscribed news");
    assert_eq!(state(&client), "state true");
    client.run(|redis: &Client, _| redis.unsubscribe(["news"]));
    assert_eq!(state(&client), "state false");
}

#[test]
fn subscriptions_say_when_redis_confirmed_them_on_resp3() {
    confirmation_round(&mut RedisServer::start());
}

#[test]
fn subscriptions_say_when_redis_confirmed_them_on_resp2() {
    confirmation_round(&mut RedisServer::with_config(&[
        "rename-command HELLO \"\"",
    ]));
}
