//! A `udp://` echo server: each datagram comes back to its sender, and each sender keeps its own
//! peer (its id stays the same until it has been quiet for 60 s).
//!
//! ```text
//! cargo run --example udp_echo
//! nc -u 127.0.0.1 9292     # type lines; each comes back with your peer's id
//! ```

use workerman::{TcpConnection, Worker};

fn main() {
    let mut worker = Worker::new("udp://0.0.0.0:9292");
    worker.on_connect(|connection: &TcpConnection| {
        println!(
            "new peer {} from {}",
            connection.id(),
            connection.remote_address()
        );
    });
    worker.on_message(|connection: &TcpConnection, datagram: Vec<u8>| {
        let mut reply = format!("peer {}: ", connection.id()).into_bytes();
        reply.extend_from_slice(&datagram);
        connection.send(reply);
    });
    worker.on_close(|connection: &TcpConnection| println!("peer {} gone", connection.id()));
    Worker::run_all();
}
