//! `hello` for every request: the HTTP benchmark target.
//!
//! ```text
//! cargo run --release --example http_hello
//! wrk -t2 -c100 -d10s http://127.0.0.1:8081/
//! ```

use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

fn main() {
    let mut worker = Worker::new("http://0.0.0.0:8081");
    worker.on_message(|connection: &TcpConnection, _request: Request| {
        connection.send("hello");
    });
    Worker::run_all();
}
