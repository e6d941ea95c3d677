//! The Autobahn test suite's client driver: runs every case of a `wstest -m fuzzingserver` against
//! our `ws://` client (`AsyncTcpConnection`), echoing each message with its own type, then asks
//! the suite to write its report. `tests/autobahn/run_client.sh` starts the suite and this.
//!
//! ```text
//! cargo run --release --example autobahn_client        # AUTOBAHN_URL=ws://127.0.0.1:9001 by default
//! ```

use std::rc::Rc;
use std::sync::mpsc;

use workerman::connection::AsyncTcpConnection;
use workerman::protocols::websocket::Message;
use workerman::{TcpConnection, Worker};

const AGENT: &str = "workerman-rs";

fn main() {
    let base = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let (done, finished) = mpsc::channel::<()>();
    // One worker on a thread of its own (no process model needed), stopped once the report is in.
    let running = Worker::spawn(move || {
        let base: Rc<str> = base.into();
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let mut count = AsyncTcpConnection::new(&format!("{base}/getCaseCount"));
            let base = base.clone();
            let give_up = done.clone();
            let done = done.clone();
            count.on_message(move |connection: &TcpConnection, text: String| {
                let total: u32 = text.trim().parse().unwrap_or(0);
                println!("{total} cases");
                connection.close();
                run_case(base.clone(), 1, total, done.clone());
            });
            let give_up = give_up.clone();
            count.on_error(move |_, code, message| {
                eprintln!("cannot reach the suite ({code}): {message}");
                let _ = give_up.send(());
            });
            count.connect();
        });
        worker
    })
    .expect("start the client worker");
    let _ = finished.recv();
    running.stop();
}

/// Runs case `case`, then the next one when it closes; after the last, the report.
fn run_case(base: Rc<str>, case: u32, total: u32, done: mpsc::Sender<()>) {
    if case > total {
        let mut report = AsyncTcpConnection::new(&format!("{base}/updateReports?agent={AGENT}"));
        report.on_close(move |_| {
            println!("report written");
            let _ = done.send(());
        });
        report.connect();
        return;
    }
    let mut echo = AsyncTcpConnection::new(&format!("{base}/runCase?case={case}&agent={AGENT}"));
    echo.set_max_package_size(64 << 20);
    echo.set_max_send_buffer_size(64 << 20);
    echo.set_websocket_deflate(true);
    echo.on_message(|connection: &TcpConnection, message: Message| {
        connection.send(message);
    });
    echo.on_close(move |_| {
        if case % 50 == 0 {
            println!("case {case} of {total}");
        }
        run_case(base.clone(), case + 1, total, done.clone());
    });
    echo.connect();
}
