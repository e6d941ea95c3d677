//! `workerman::redis::Client` against a real `redis-server` (each test starts its own on a free
//! port): every command family, RESP3 types, pipelining order, server errors, `HELLO` refused
//! (RESP2), an ACL user, a database in the URL, a Unix socket.

mod support;

use std::sync::mpsc::Sender;

use support::redis::{ClientWorker, RedisServer, describe};
use workerman::redis::{Client, Value};

/// Reports a command's result as `name=<result>`.
fn report(
    events: &Sender<String>,
    name: &'static str,
) -> impl FnOnce(Result<Value, workerman::redis::Error>) + 'static {
    let events = events.clone();
    move |result| {
        events.send(format!("{name}={}", describe(&result))).ok();
    }
}

fn collect(client: &ClientWorker, count: usize) -> Vec<String> {
    (0..count).map(|_| client.next()).collect()
}

#[test]
fn strings_keys_and_expiry() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    client.run(|redis: &Client, events| {
        redis.set("k", "v", report(events, "set"));
        redis.get("k", report(events, "get"));
        redis.get("missing", report(events, "get-missing"));
        redis.append("k", "w", report(events, "append"));
        redis.strlen("k", report(events, "strlen"));
        redis.setnx("k", "x", report(events, "setnx"));
        redis.getset("k", "new", report(events, "getset"));
        redis.mset([("a", "1"), ("b", "2")], report(events, "mset"));
        redis.mget(["a", "b", "nope"], report(events, "mget"));
        redis.incr("n", report(events, "incr"));
        redis.incrby("n", 10, report(events, "incrby"));
        redis.decr("n", report(events, "decr"));
        redis.decrby("n", 5, report(events, "decrby"));
        redis.exists(["a", "b", "nope"], report(events, "exists"));
        redis.expire("a", 100, report(events, "expire"));
        redis.ttl("a", report(events, "ttl"));
        redis.persist("a", report(events, "persist"));
        redis.ttl("a", report(events, "ttl-after"));
        redis.setex("e", 50, "v", report(events, "setex"));
        redis.pttl("e", report(events, "pttl"));
        redis.key_type("e", report(events, "type"));
        redis.getdel("e", report(events, "getdel"));
        redis.del(["a", "b", "e"], report(events, "del"));
        redis.ping(report(events, "ping"));
    });
    let results = collect(&client, 24);
    let pttl = results[19].clone();
    let expected = [
        "set=ok:OK",
        "get=ok:v",
        "get-missing=ok:(nil)",
        "append=ok:2",
        "strlen=ok:2",
        "setnx=ok:0",
        "getset=ok:vw",
        "mset=ok:OK",
        "mget=ok:[1, 2, (nil)]",
        "incr=ok:1",
        "incrby=ok:11",
        "decr=ok:10",
        "decrby=ok:5",
        "exists=ok:2",
        "expire=ok:1",
        "ttl=ok:100",
        "persist=ok:1",
        "ttl-after=ok:-1",
        "setex=ok:OK",
        &pttl,
        "type=ok:string",
        "getdel=ok:v",
        "del=ok:2",
        "ping=ok:PONG",
    ];
    assert_eq!(results, expected);
    let millis: i64 = pttl.trim_start_matches("pttl=ok:").parse().unwrap();
    assert!((40_000..=50_000).contains(&millis), "{pttl}");
}

#[test]
fn hashes_lists_sets_and_sorted_sets_in_resp3_types() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    client.run(|redis: &Client, events| {
        redis.hset("h", "f1", "v1", report(events, "hset"));
        redis.hmset("h", [("f2", "v2"), ("n", "5")], report(events, "hmset"));
        redis.hget("h", "f2", report(events, "hget"));
        redis.hmget("h", ["f1", "zz"], report(events, "hmget"));
        redis.hincrby("h", "n", 2, report(events, "hincrby"));
        redis.hexists("h", "f1", report(events, "hexists"));
        redis.hlen("h", report(events, "hlen"));
        redis.hkeys("h", report(events, "hkeys"));
        redis.hdel("h", ["f1"], report(events, "hdel"));
        let events_map = events.clone();
        redis.hgetall("h", move |result| {
            let value = result.unwrap();
            let is_map = matches!(value, Value::Map(_));
            let pairs: Vec<String> = value
                .into_pairs()
                .unwrap()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            events_map
                .send(format!("hgetall map={is_map} {pairs:?}"))
                .ok();
        });
        redis.rpush("l", ["a", "b"], report(events, "rpush"));
        redis.lpush("l", ["z"], report(events, "lpush"));
        redis.lrange("l", 0, -1, report(events, "lrange"));
        redis.llen("l", report(events, "llen"));
        redis.lpop("l", report(events, "lpop"));
        redis.rpop("l", report(events, "rpop"));
        redis.sadd("s", ["x", "y", "x"], report(events, "sadd"));
        redis.sismember("s", "x", report(events, "sismember"));
        redis.scard("s", report(events, "scard"));
        redis.srem("s", ["y"], report(events, "srem"));
        let events_set = events.clone();
        redis.smembers("s", move |result| {
            let value = result.unwrap();
            events_set
                .send(format!(
                    "smembers set={} {value}",
                    matches!(value, Value::Set(_))
                ))
                .ok();
        });
        redis.zadd("z", 1.5, "a", report(events, "zadd"));
        redis.zadd("z", 3.0, "b", report(events, "zadd2"));
        redis.zincrby("z", 1.0, "a", report(events, "zincrby"));
        let events_score = events.clone();
        redis.zscore("z", "a", move |result| {
            let value = result.unwrap();
            events_score
                .send(format!(
                    "zscore double={} {:?}",
                    matches!(value, Value::Double(_)),
                    value.as_f64()
                ))
                .ok();
        });
        redis.zrange("z", 0, -1, report(events, "zrange"));
        redis.zrangebyscore("z", "(2.5", "+inf", report(events, "zrangebyscore"));
        redis.zrank("z", "b", report(events, "zrank"));
        redis.zrem("z", ["a"], report(events, "zrem"));
        redis.zcard("z", report(events, "zcard"));
        redis.command(["XADD", "st", "1-1", "f", "v"], report(events, "xadd"));
        redis.command(["XRANGE", "st", "-", "+"], report(events, "xrange"));
    });
    let results = collect(&client, 32);
    assert_eq!(
        results,
        [
            "hset=ok:1",
            "hmset=ok:2",
            "hget=ok:v2",
            "hmget=ok:[v1, (nil)]",
            "hincrby=ok:7",
            "hexists=ok:1",
            "hlen=ok:3",
            "hkeys=ok:[f1, f2, n]",
            "hdel=ok:1",
            "hgetall map=true [\"f2=v2\", \"n=7\"]",
            "rpush=ok:2",
            "lpush=ok:3",
            "lrange=ok:[z, a, b]",
            "llen=ok:3",
            "lpop=ok:z",
            "rpop=ok:b",
            "sadd=ok:2",
            "sismember=ok:1",
            "scard=ok:2",
            "srem=ok:1",
            "smembers set=true [x]",
            "zadd=ok:1",
            "zadd2=ok:1",
            "zincrby=ok:2.5",
            "zscore double=true Some(2.5)",
            "zrange=ok:[a, b]",
            "zrangebyscore=ok:[b]",
            "zrank=ok:1",
            "zrem=ok:1",
            "zcard=ok:1",
            "xadd=ok:1-1",
            "xrange=ok:[[1-1, [f, v]]]",
        ]
    );
}

#[test]
fn server_errors_carry_their_kind_and_the_connection_goes_on() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    client.call(&["SET", "s", "text"]);
    client.run(|redis: &Client, events| {
        let events = events.clone();
        redis.lpush("s", ["x"], move |result| {
            let error = result.unwrap_err();
            events
                .send(format!(
                    "{} {:?} {} {}",
                    error.is_server(),
                    error.kind(),
                    error.is_connection(),
                    error
                ))
                .ok();
        });
    });
    assert_eq!(
        client.next(),
        "true Some(\"WRONGTYPE\") false redis: WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert!(
        client
            .call(&["NOSUCHCOMMAND"])
            .starts_with("err:server:redis: ERR unknown command")
    );
    assert_eq!(client.call(&["GET", "s"]), "ok:text");
}

#[test]
fn pipelined_callbacks_run_in_command_order() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    const COUNT: usize = 2000;
    client.run(|redis: &Client, events| {
        for index in 0..COUNT {
            let events = events.clone();
            // Mixed commands and sizes, all in flight at once on one connection.
            if index % 3 == 0 {
                redis.incr("counter", move |result| {
                    events.send(format!("{index}:{}", describe(&result))).ok();
                });
            } else {
                let value = "x".repeat(index);
                redis.set(format!("k{index}"), value, move |result| {
                    events.send(format!("{index}:{}", describe(&result))).ok();
                });
            }
        }
    });
    let mut increments = 0;
    for index in 0..COUNT {
        let event = client.next();
        let expected = if index % 3 == 0 {
            increments += 1;
            format!("{index}:ok:{increments}")
        } else {
            format!("{index}:ok:OK")
        };
        assert_eq!(event, expected);
    }
    assert_eq!(server.cli(&["STRLEN", "k1999"]), "1999");
}

#[test]
fn resp3_is_negotiated_with_hello() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |redis, _| {
        redis.set_client_name("resp3-test")
    });
    let info = client.call(&["CLIENT", "INFO"]);
    assert!(info.contains("resp=3"), "{info}");
    assert!(info.contains("name=resp3-test"), "{info}");
}

#[test]
fn a_server_that_refuses_hello_gets_resp2() {
    let server = RedisServer::with_config(&["rename-command HELLO \"\""]);
    let client = ClientWorker::start(&server.url(), |redis, _| {
        redis.set_client_name("resp2-test")
    });
    let info = client.call(&["CLIENT", "INFO"]);
    assert!(info.contains("resp=2"), "{info}");
    assert!(info.contains("name=resp2-test"), "{info}");
    client.call(&["HSET", "h", "a", "1", "b", "2"]);
    client.run(|redis: &Client, events| {
        let events = events.clone();
        redis.hgetall("h", move |result| {
            let value = result.unwrap();
            let flat = matches!(value, Value::Array(_));
            let pairs = value.into_pairs().unwrap().len();
            events.send(format!("flat={flat} pairs={pairs}")).ok();
        });
    });
    assert_eq!(client.next(), "flat=true pairs=2");
    assert_eq!(client.call(&["GET", "missing"]), "ok:(nil)");
    assert_eq!(client.call(&["ZADD", "z", "1.5", "m"]), "ok:1");
    assert_eq!(client.call(&["ZSCORE", "z", "m"]), "ok:1.5");
}

const ACL: &[&str] = &["user default off", "user alice on >wonderland ~* &* +@all"];

#[test]
fn an_acl_user_authenticates_in_hello() {
    let server = RedisServer::with_config(ACL);
    let url = format!("redis://alice:wonderland@127.0.0.1:{}", server.port);
    let client = ClientWorker::start(&url, |_, _| {});
    assert_eq!(client.call(&["ACL", "WHOAMI"]), "ok:alice");
    assert!(client.call(&["CLIENT", "INFO"]).contains("resp=3"));
}

#[test]
fn an_acl_user_authenticates_with_auth_on_resp2() {
    let mut config = ACL.to_vec();
    config.push("rename-command HELLO \"\"");
    let server = RedisServer::with_config(&config);
    let url = format!("redis://alice:wonderland@127.0.0.1:{}/3", server.port);
    let client = ClientWorker::start(&url, |_, _| {});
    assert_eq!(client.call(&["ACL", "WHOAMI"]), "ok:alice");
    let info = client.call(&["CLIENT", "INFO"]);
    assert!(info.contains("resp=2") && info.contains("db=3"), "{info}");
}

#[test]
fn a_wrong_password_fails_the_queued_commands() {
    let server = RedisServer::with_config(ACL);
    let url = format!("redis://alice:nope@127.0.0.1:{}", server.port);
    let client = ClientWorker::start(&url, |_, _| {});
    let answer = client.call(&["PING"]);
    assert!(
        answer.starts_with("err:server:redis: WRONGPASS"),
        "{answer}"
    );
}

#[test]
fn the_database_in_the_url_is_selected() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&format!("{}/5", server.url()), |_, _| {});
    assert_eq!(client.call(&["SET", "in5", "yes"]), "ok:OK");
    assert_eq!(server.cli(&["-n", "5", "GET", "in5"]), "yes");
    assert_eq!(server.cli(&["GET", "in5"]), "");
}

#[test]
fn a_unix_socket_path() {
    let server = RedisServer::start();
    let url = format!("unix://{}", server.unix_socket().display());
    let client = ClientWorker::start(&url, |_, _| {});
    assert_eq!(client.call(&["SET", "via", "unix"]), "ok:OK");
    assert_eq!(server.cli(&["GET", "via"]), "unix");
}

#[test]
fn a_panicking_callback_costs_only_itself() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    client.run(|redis: &Client, events| {
        redis.ping(|_| panic!("a callback that panics"));
        redis.ping(report(events, "after"));
    });
    assert_eq!(client.next(), "after=ok:PONG");
}

#[test]
fn commands_that_would_take_over_the_connection_are_refused() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    for command in [&["SUBSCRIBE", "c"][..], &["hello", "3"], &["MONITOR"]] {
        let answer = client.call(command);
        assert!(answer.starts_with("err:server:redis: ERR"), "{answer}");
    }
    assert_eq!(client.call(&["PING"]), "ok:PONG");
}

#[test]
fn a_closed_client_answers_every_callback() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    assert_eq!(client.call(&["PING"]), "ok:PONG");
    client.run(|redis: &Client, events| {
        redis.command(["BLPOP", "nothing", "0"], report(events, "blocked"));
        redis.close();
        redis.get("k", report(events, "after"));
    });
    let mut answers = collect(&client, 2);
    answers.sort();
    assert!(
        answers[0].starts_with("after=err:connection"),
        "{answers:?}"
    );
    assert!(
        answers[1].starts_with("blocked=err:connection"),
        "{answers:?}"
    );
    assert!(support::wait_until(
        std::time::Duration::from_secs(5),
        || { server.cli(&["CLIENT", "LIST"]).lines().count() == 1 }
    ));
}

#[test]
fn large_replies_arrive_whole_over_many_reads() {
    let server = RedisServer::start();
    let client = ClientWorker::start(&server.url(), |_, _| {});
    client.run(|redis: &Client, events| {
        let elements: Vec<String> = (0..100_000)
            .map(|index| format!("element-{index}"))
            .collect();
        redis.rpush("big", &elements, report(events, "rpush"));
        let events_list = events.clone();
        redis.lrange("big", 0, -1, move |result| {
            let items = result.unwrap().into_array().unwrap();
            let last = items
                .last()
                .and_then(|item| item.as_str().map(str::to_owned));
            events_list
                .send(format!("lrange {} {last:?}", items.len()))
                .ok();
        });
        redis.set("blob", vec![b'z'; 8 << 20], report(events, "set"));
        let events_blob = events.clone();
        redis.get("blob", move |result| {
            let value = result.unwrap();
            let bytes = value.as_bytes().unwrap();
            events_blob
                .send(format!(
                    "get {} {}",
                    bytes.len(),
                    bytes.iter().all(|&b| b == b'z')
                ))
                .ok();
        });
    });
    assert_eq!(
        collect(&client, 4),
        [
            "rpush=ok:100000",
            "lrange 100000 Some(\"element-99999\")",
            "set=ok:OK",
            "get 8388608 true",
        ]
    );
}
