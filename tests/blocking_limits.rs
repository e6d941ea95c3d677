//! The blocking pool's bound (its own test binary: the pool's settings are process-wide).

mod support;

use std::time::Duration;

use support::{LineClient, start};
use workerman::{BlockingError, TcpConnection, Worker};

#[test]
fn past_the_bound_a_submit_is_refused_at_once_and_counted() {
    Worker::set_blocking_threads(2);
    Worker::set_blocking_queue_size(4);
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            if line == "stats" {
                connection.send(format!("refused {}", Worker::statistics().blocking_refused));
                return;
            }
            let (mut accepted, mut refused) = (0, 0);
            for _ in 0..10 {
                let reply = connection.clone();
                let submitted = Worker::spawn_blocking(
                    || std::thread::sleep(Duration::from_millis(100)),
                    move |result: Result<(), BlockingError>| {
                        reply.send(if result.is_ok() { "ran" } else { "failed" });
                    },
                );
                match submitted {
                    Ok(()) => accepted += 1,
                    Err(error) => {
                        assert_eq!(error, BlockingError::QueueFull { limit: 4 });
                        refused += 1;
                    }
                }
            }
            connection.send(format!("accepted {accepted} refused {refused}"));
        });
        worker
    });
    let mut client = LineClient::connect(server.local_address());
    client.send("go\n");
    assert_eq!(client.line(), "accepted 4 refused 6\n");
    // Only the four accepted jobs call back, two at a time (two threads).
    for _ in 0..4 {
        assert_eq!(client.line(), "ran\n");
    }
    client.send("stats\n");
    assert_eq!(client.line(), "refused 6\n");
    // With the jobs done, there is room again.
    client.send("go\n");
    assert_eq!(client.line(), "accepted 4 refused 6\n");
    for _ in 0..4 {
        assert_eq!(client.line(), "ran\n");
    }
    client.send("stats\n");
    assert_eq!(client.line(), "refused 12\n");
    server.stop();
}
