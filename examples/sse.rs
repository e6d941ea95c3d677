//! The seed: Workerman's Server-Sent Events example, ported line by line.
//!
//! ```text
//! cargo run --release --example sse
//! curl -N -H 'Accept: text/event-stream' http://127.0.0.1:8080/
//! ```
//! Or in a browser's console on any page:
//! `new EventSource('http://127.0.0.1:8080').addEventListener('message', e => console.log(e.data))`
//! (the browser sends `Accept: text/event-stream`; `hello` arrives every 2 seconds).

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

fn main() {
    let mut worker = Worker::new("http://0.0.0.0:8080");
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
