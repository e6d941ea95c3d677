//! A WebSocket client (Workerman's `AsyncTcpConnection('ws://…')`): joins the chat of
//! `examples/websocket_chat.rs`, says hello, prints what everyone says, sends the time every
//! five seconds, and reconnects a second after the connection drops.
//!
//! ```text
//! cargo run --example websocket_chat &      # the chat server (ws on port 8096)
//! cargo run --example ws_client             # or: WS_URL=ws://host:port/path cargo run --example ws_client
//! ```
//!
//! The PHP it ports:
//!
//! ```php
//! $worker = new Worker();
//! $worker->onWorkerStart = function () {
//!     $con = new AsyncTcpConnection('ws://127.0.0.1:8096');
//!     $con->websocketPingInterval = 25;
//!     $con->onConnect = fn($con) => $con->send('hello from ws_client');
//!     $con->onMessage = fn($con, $data) => print("$data\n");
//!     $con->onClose = fn($con) => $con->reconnect(1);
//!     $con->connect();
//!     Timer::add(5, fn() => $con->send(date('H:i:s')));
//! };
//! Worker::runAll();
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use workerman::connection::AsyncTcpConnection;
use workerman::{TcpConnection, Timer, Worker};

fn main() {
    let url = std::env::var("WS_URL").unwrap_or_else(|_| "ws://127.0.0.1:8096/".to_owned());
    let mut worker = Worker::without_listener();
    worker.set_name("ws_client");
    worker.on_worker_start(move |_| {
        let mut chat = AsyncTcpConnection::new(&url);
        chat.set_websocket_ping_interval(25.0);
        chat.on_websocket_connect(|connection: &TcpConnection, _response| {
            println!("connected to {}", connection.remote_address());
            connection.send("hello from ws_client");
        });
        chat.on_message(|_connection: &TcpConnection, text: String| {
            println!("{text}");
        });
        chat.on_error(|_connection: &TcpConnection, code, message| {
            eprintln!("error {code}: {message}");
        });
        chat.on_close(|connection: &TcpConnection| {
            println!("disconnected; reconnecting in 1 s");
            connection.reconnect(1.0);
        });
        chat.connect();

        // Sent while connected; queued while (re)connecting.
        let chat = chat.clone();
        Timer::add(5.0, move |_| {
            let seconds = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            let (hours, minutes, seconds) = (seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
            chat.send(format!(
                "the time is {hours:02}:{minutes:02}:{seconds:02} UTC"
            ));
        });
    });
    Worker::run_all();
}
