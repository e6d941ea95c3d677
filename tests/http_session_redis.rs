//! HTTP sessions in a real `redis-server` (`RedisSessionHandler`): a session set in one request
//! is read back in the next (the request waits for its `GET`), stored as
//! `redis_session_<id>` with the lifetime as its TTL; `regenerate` and `flush` delete the old
//! key; pipelined requests keep their order while each waits for its read; Redis down answers
//! 503 within the reply timeout; a connection closed while its read is pending gets nothing
//! delivered.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::{HttpClient, HttpResponse, start};
use workerman::protocols::http::{RedisSessionHandler, Request, SessionConfig};
use workerman::{TcpConnection, Worker};

const LIFETIME: u64 = 600;

/// `/count` increments a counter; `/read` only reads; `/login` regenerates; `/logout` flushes.
fn session_server(url: String, prefix: &'static str) -> workerman::RunningWorker {
    start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        let handler = RedisSessionHandler::new(&url)
            .prefix(prefix)
            .reply_timeout(Duration::from_millis(500));
        worker.set_session(SessionConfig::new(handler).lifetime(Duration::from_secs(LIFETIME)));
        worker.on_message(|connection: &TcpConnection, request: Request| {
            let session = request.session();
            match request.path() {
                "/count" => {
                    let count: u32 = session
                        .get("count")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    session.set("count", (count + 1).to_string());
                    connection.send(format!("{} {}", count + 1, session.id()));
                }
                "/read" => {
                    let count = session.get("count").unwrap_or_default();
                    connection.send(format!("{count} {}", session.id()));
                }
                "/login" => {
                    session.regenerate(true);
                    session.set("user", "ada");
                    connection.send(session.id());
                }
                "/logout" => {
                    session.flush();
                    connection.send("bye");
                }
                _ => {
                    connection.send("?");
                }
            };
        });
        worker
    })
}

fn request(path: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{cookie}\r\n")
}

fn get(client: &mut HttpClient, path: &str, cookie: Option<&str>) -> HttpResponse {
    client.write(request(path, cookie).as_bytes());
    client.response()
}

/// `PHPSID=<id>` from the response's `Set-Cookie`, and the id.
fn session_cookie(response: &HttpResponse) -> (String, String) {
    let set_cookie = response.header("set-cookie").expect("a Set-Cookie");
    let pair = set_cookie.split(';').next().unwrap().to_string();
    let id = pair.strip_prefix("PHPSID=").expect("PHPSID").to_string();
    (pair, id)
}

/// Waits until `redis-cli args` prints `expected` (a session is saved after `on_message`
/// returns, so just after the response the write may still be on its way).
fn settled(redis: &RedisServer, args: &[&str], expected: &str) -> String {
    support::wait_until(Duration::from_secs(5), || redis.cli(args) == expected);
    redis.cli(args)
}

#[test]
fn a_session_is_stored_in_redis_under_the_prefix_with_the_lifetime_and_read_back() {
    let redis = RedisServer::start();
    let server = session_server(redis.url(), "redis_session_");
    let mut client = HttpClient::connect(server.local_address());

    let first = get(&mut client, "/count", None);
    assert_eq!(first.status, 200);
    let (cookie, id) = session_cookie(&first);
    assert_eq!(first.body_text(), format!("1 {id}"));
    let key = format!("redis_session_{id}");
    assert_eq!(settled(&redis, &["EXISTS", &key], "1"), "1");
    let ttl: u64 = redis.cli(&["TTL", &key]).parse().unwrap();
    assert!(
        (LIFETIME - 10..=LIFETIME).contains(&ttl),
        "TTL {ttl}, lifetime {LIFETIME}"
    );

    // Read back in the next requests, on this connection and on a new one.
    let second = get(&mut client, "/count", Some(&cookie));
    assert_eq!(second.body_text(), format!("2 {id}"));
    assert!(second.header("set-cookie").is_none(), "a known session");
    let mut other = HttpClient::connect(server.local_address());
    support::wait_until(Duration::from_secs(5), || {
        get(&mut other, "/read", Some(&cookie)).body_text() == format!("2 {id}")
    });
    assert_eq!(
        get(&mut other, "/read", Some(&cookie)).body_text(),
        format!("2 {id}")
    );
    // A read changes nothing, so nothing is written: the key keeps its data.
    assert_eq!(redis.cli(&["DBSIZE"]), "1");

    // An unknown (valid-form) id reads as an empty session, and that id is kept.
    let unknown = "0123456789abcdef0123456789abcdef";
    let fresh = get(&mut client, "/count", Some(&format!("PHPSID={unknown}")));
    assert_eq!(fresh.body_text(), format!("1 {unknown}"));
    // An id of the wrong form is never used as a key: a new session instead.
    let hostile = get(&mut client, "/read", Some("PHPSID=../../etc/passwd"));
    assert_eq!(hostile.status, 200);
    let (_, new_id) = session_cookie(&hostile);
    assert_ne!(new_id, "../../etc/passwd");
    drop(server);
}

#[test]
fn the_prefix_is_a_setting_and_regenerate_and_flush_delete_the_old_key() {
    let redis = RedisServer::start();
    let server = session_server(redis.url(), "app:sess:");
    let mut client = HttpClient::connect(server.local_address());

    let (cookie, id) = session_cookie(&get(&mut client, "/count", None));
    let old_key = format!("app:sess:{id}");
    assert_eq!(settled(&redis, &["EXISTS", &old_key], "1"), "1");

    let login = get(&mut client, "/login", Some(&cookie));
    assert_eq!(login.status, 200);
    let (new_cookie, new_id) = session_cookie(&login);
    assert_eq!(login.body_text(), new_id);
    assert_ne!(new_id, id);
    let new_key = format!("app:sess:{new_id}");
    assert_eq!(settled(&redis, &["EXISTS", &old_key], "0"), "0");
    assert_eq!(settled(&redis, &["EXISTS", &new_key], "1"), "1");
    // The regenerated session kept the data and added to it.
    assert_eq!(
        get(&mut client, "/read", Some(&new_cookie)).body_text(),
        format!("1 {new_id}")
    );

    let logout = get(&mut client, "/logout", Some(&new_cookie));
    assert_eq!(logout.body_text(), "bye");
    assert_eq!(settled(&redis, &["DBSIZE"], "0"), "0");
    assert_eq!(
        get(&mut client, "/read", Some(&new_cookie)).body_text(),
        format!(" {new_id}")
    );
    drop(server);
}

#[test]
fn pipelined_requests_with_a_session_keep_their_order_while_each_waits_for_its_read() {
    let redis = RedisServer::start();
    let server = session_server(redis.url(), "redis_session_");
    let mut client = HttpClient::connect(server.local_address());
    let (cookie, id) = session_cookie(&get(&mut client, "/count", None));
    settled(&redis, &["EXISTS", &format!("redis_session_{id}")], "1");

    // Redis holds every command for 300 ms: the first read is pending while the rest arrive.
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "300", "ALL"]), "OK");
    let mut batch = String::new();
    for path in ["/count", "/read", "/count", "/nothing", "/count", "/read"] {
        batch.push_str(&request(path, Some(&cookie)));
    }
    // One without a cookie in the middle goes in its turn too (it needs no read).
    batch.insert_str(0, &request("/read", None));
    let sent = Instant::now();
    client.write(batch.as_bytes());
    let bodies: Vec<String> = (0..7).map(|_| client.response().body_text()).collect();
    assert!(
        sent.elapsed() >= Duration::from_millis(200),
        "the reads waited for the paused Redis"
    );
    assert!(bodies[0].starts_with(' '), "{bodies:?}");
    assert_eq!(
        bodies[1..],
        [
            format!("2 {id}"),
            format!("2 {id}"),
            format!("3 {id}"),
            "?".to_string(),
            format!("4 {id}"),
            format!("4 {id}"),
        ],
        "in order, each seeing the one before"
    );
    drop(server);
}

#[test]
fn redis_down_answers_a_request_with_a_session_503_within_the_reply_timeout() {
    let mut redis = RedisServer::start();
    let server = session_server(redis.url(), "redis_session_");
    let mut client = HttpClient::connect(server.local_address());
    let (cookie, id) = session_cookie(&get(&mut client, "/count", None));
    settled(&redis, &["EXISTS", &format!("redis_session_{id}")], "1");

    redis.kill9();
    let asked = Instant::now();
    let answer = get(&mut client, "/count", Some(&cookie));
    let waited = asked.elapsed();
    assert_eq!(answer.status, 503, "{}", answer.body_text());
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(
        waited < Duration::from_secs(4),
        "answered within the 500 ms reply timeout (with margin): {waited:?}"
    );
    assert!(client.closed(), "the connection closes after the 503");

    // A request without a session cookie needs no read: still answered.
    let mut fresh = HttpClient::connect(server.local_address());
    assert_eq!(get(&mut fresh, "/read", None).status, 200);

    // Redis back (empty: nothing was saved): the session reads again, as empty.
    redis.restart();
    let mut again = HttpClient::connect(server.local_address());
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            let mut probe = HttpClient::connect(server.local_address());
            get(&mut probe, "/read", Some(&cookie)).status == 200
        }),
        "sessions read again once Redis is back"
    );
    assert_eq!(
        get(&mut again, "/count", Some(&cookie)).body_text(),
        format!("1 {id}")
    );
    drop(server);
}

#[test]
fn a_connection_closed_while_its_read_is_pending_gets_nothing_delivered() {
    let redis = RedisServer::start();
    let server = session_server(redis.url(), "redis_session_");
    let mut client = HttpClient::connect(server.local_address());
    let (cookie, id) = session_cookie(&get(&mut client, "/count", None));
    settled(&redis, &["EXISTS", &format!("redis_session_{id}")], "1");

    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "700", "ALL"]), "OK");
    let paused = Instant::now();
    for _ in 0..5 {
        let mut stream = support::connect(server.local_address());
        stream
            .write_all(request("/count", Some(&cookie)).as_bytes())
            .unwrap();
        drop(stream);
    }
    std::thread::sleep(Duration::from_millis(700).saturating_sub(paused.elapsed()));

    // The worker is alive, and none of the five `/count`s ran: the count is still 1.
    let mut after = HttpClient::connect(server.local_address());
    assert_eq!(
        get(&mut after, "/read", Some(&cookie)).body_text(),
        format!("1 {id}")
    );
    assert_eq!(
        get(&mut after, "/count", Some(&cookie)).body_text(),
        format!("2 {id}")
    );
    drop(server);
}
