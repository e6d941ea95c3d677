//! A WebSocket echo server: every message comes back as it came (text as text, binary as binary).
//! It is the server the Autobahn test suite's `fuzzingclient` expects (docs/porting.md, WebSocket).
//!
//! ```text
//! cargo run --release --example websocket_echo            # ws://127.0.0.1:9001
//! wstest -m fuzzingclient -s fuzzingclient.json           # Autobahn, against it
//! TLS_CERT=cert.pem TLS_KEY=key.pem cargo run --release --example websocket_echo  # wss://
//! ```

use workerman::connection::SslContext;
use workerman::protocols::websocket::Message;
use workerman::{TcpConnection, Worker};

fn main() {
    let mut worker = Worker::new("websocket://0.0.0.0:9001");
    worker.set_name("websocket_echo");
    // wss:// when given a certificate and its key (tests/autobahn/run.sh tls).
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        worker.set_transport("ssl");
        worker.set_ssl_context(SslContext::new().local_cert(cert).local_pk(key));
    }
    // Autobahn's largest messages are 16 MiB (section 9).
    worker.set_max_package_size(64 * 1024 * 1024);
    worker.set_max_send_buffer_size(64 * 1024 * 1024);
    // permessage-deflate, for the suite's cases 12.* and 13.*.
    worker.set_websocket_deflate(true);
    worker.on_message(|connection: &TcpConnection, message: Message| {
        connection.send(message);
    });
    Worker::run_all();
}
