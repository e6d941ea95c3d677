//! The seed over https: Workerman's Server-Sent Events example on a TLS port.
//!
//! ```text
//! cargo run --release --example sse_tls
//! curl -N --cacert /tmp/workerman-sse-tls/localhost.pem -H 'Accept: text/event-stream' https://localhost:8443/
//! ```
//! `LISTEN` sets the address (default `https://0.0.0.0:8443`); `TLS_CERT` and `TLS_KEY` name
//! the PEM certificate chain and key. Without them it makes a self-signed certificate for
//! `localhost` and `127.0.0.1` at start (with rcgen, which only the examples and tests use, so
//! the library gains no dependency) and prints where it wrote it: pass that file to `curl
//! --cacert`, or trust it in a browser, and open `https://localhost:8443/`.

use std::path::PathBuf;

use workerman::connection::SslContext;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// `TLS_CERT` / `TLS_KEY`, or a fresh self-signed pair written under the temp directory.
fn certificate_files() -> (PathBuf, PathBuf) {
    if let (Some(cert), Some(key)) = (std::env::var_os("TLS_CERT"), std::env::var_os("TLS_KEY")) {
        return (cert.into(), key.into());
    }
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("a self-signed certificate");
    let dir = std::env::temp_dir().join("workerman-sse-tls");
    std::fs::create_dir_all(&dir).expect("a directory for the certificate");
    let (cert, key) = (dir.join("localhost.pem"), dir.join("localhost.key"));
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write the key");
    println!(
        "sse_tls: no TLS_CERT/TLS_KEY: self-signed certificate for localhost written to {} (key {})",
        cert.display(),
        key.display()
    );
    (cert, key)
}

fn main() {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "https://0.0.0.0:8443".to_owned());
    let (cert, key) = certificate_files();
    let mut worker = Worker::new(&listen);
    worker.set_ssl_context(SslContext::new().local_cert(cert).local_pk(key));
    worker.on_message(|connection: &TcpConnection, request: Request| {
        // An Accept header of text/event-stream marks an SSE request
        if request.header("accept") == Some("text/event-stream") {
            // First send a response with the Content-Type: text/event-stream header
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            // Push data to the client every 2 seconds
            let connection = connection.clone();
            Timer::add(2.0, move |timer_id| {
                // Delete the timer once the connection is closed, or timers pile up and leak
                if connection.status() != TcpConnection::STATUS_ESTABLISHED {
                    Timer::del(timer_id);
                    return;
                }
                // Send a `message` event carrying `hello`; the id may be omitted
                connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
            });
            return;
        }
        connection.send("ok");
    });
    Worker::run_all();
}
