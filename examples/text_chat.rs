//! A chat over the text protocol: every line a client sends goes to every connected client.
//!
//! ```text
//! cargo run --example text_chat
//! nc 127.0.0.1 8082     # in two or more terminals, then type
//! ```

use workerman::{TcpConnection, Worker};

fn main() {
    let mut worker = Worker::new("text://0.0.0.0:8082");
    worker.set_name("text_chat");
    let everyone = worker.clone();
    worker.on_connect(|connection: &TcpConnection| {
        connection.send(format!("welcome, you are user {}", connection.id()));
    });
    worker.on_message(move |connection: &TcpConnection, line: String| {
        let message = format!("user {}: {line}", connection.id());
        for client in everyone.connections() {
            client.send(message.as_str());
        }
    });
    let everyone = worker.clone();
    worker.on_close(move |connection: &TcpConnection| {
        let message = format!("user {} left", connection.id());
        for client in everyone.connections() {
            client.send(message.as_str());
        }
    });
    Worker::run_all();
}
