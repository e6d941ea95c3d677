//! `rediss://`: the Redis client over TLS to a real `redis-server` with `tls-port`, verified
//! against a test CA (made by rcgen at run time); refused against an unknown CA.

mod support;

use std::time::Duration;

use support::redis::{ClientWorker, RedisServer, WAIT, describe};
use support::tls::Pki;
use workerman::connection::SslContext;

fn tls_server(pki: &Pki) -> (RedisServer, u16) {
    let (cert, key) = pki.leaf("redis", &["localhost"]);
    let lines = [
        "tls-port {free_port}".to_owned(),
        format!("tls-cert-file {}", cert.display()),
        format!("tls-key-file {}", key.display()),
        format!("tls-ca-cert-file {}", pki.ca_file().display()),
        "tls-auth-clients no".to_owned(),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let server = RedisServer::with_config(&lines);
    let tls_port = server.extra_ports[0];
    (server, tls_port)
}

#[test]
fn rediss_set_and_get_through_tls() {
    support::require_program("redis-server");
    let pki = Pki::new("rediss");
    let (_server, tls_port) = tls_server(&pki);
    let ca = pki.ca_file();
    let client = ClientWorker::start(
        &format!("rediss://localhost:{tls_port}/2"),
        move |redis, _| {
            redis.set_ssl_context(SslContext::new().cafile(&ca));
            // A loaded machine (a debug build's handshake) must not time out before the test's
            // own wait does.
            redis.set_connect_timeout(WAIT);
            redis.set_reply_timeout(WAIT);
        },
    );
    client.run(|redis, events| {
        let set = events.clone();
        redis.set("tls-key", "over tls", move |result| {
            set.send(format!("set={}", describe(&result))).ok();
        });
        let get = events.clone();
        redis.get("tls-key", move |result| {
            get.send(format!("get={}", describe(&result))).ok();
        });
    });
    let first = client.next();
    let second = client.next();
    assert!(first.starts_with("set=ok:"), "{first}");
    assert!(second.contains("over tls"), "{second}");
}

#[test]
fn rediss_refuses_a_server_of_an_unknown_ca() {
    support::require_program("redis-server");
    let pki = Pki::new("rediss-refuse");
    let stranger = Pki::new("rediss-refuse-other");
    let (_server, tls_port) = tls_server(&pki);
    let ca = stranger.ca_file();
    let client = ClientWorker::start(
        &format!("rediss://localhost:{tls_port}"),
        move |redis, _| {
            redis.set_ssl_context(SslContext::new().cafile(&ca));
            redis.set_reply_timeout(Duration::from_secs(2));
        },
    );
    client.run(|redis, events| {
        let get = events.clone();
        redis.get("k", move |result| {
            get.send(format!("get={}", describe(&result))).ok();
        });
    });
    let result = client.next();
    assert!(
        result.starts_with("get=") && !result.contains("nil"),
        "{result}"
    );
    assert!(
        result.to_lowercase().contains("err") || result.contains("imeout"),
        "{result}"
    );
}
