//! The hub's catch-up after an outage of the embedded relay (`examples/sse_cluster`, `COUNT=2`,
//! no broker), when the relay answers late: the streams' history requests wait in the link
//! longer than the request timeout, and the streams must still catch up once it answers, with
//! one history request per topic and position in each process rather than one per stream.
//!
//! The relay is held busy by stopping the master (`SIGSTOP`) before killing the relay: the
//! workers re-attach at once (the kernel queues their connections on the relay's listening
//! socket, which the master holds), send their catch-up requests, and nobody answers them until
//! the master is continued and starts the new relay. For fresh streams, the relay itself is
//! stopped while they open: their position requests wait in the link past the timeout.

#[path = "support/event_stream.rs"]
mod event_stream;
#[path = "support/hub_client.rs"]
mod hub_client;
mod support;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::thread;
use std::time::Duration;

use hub_client::{Stream, publish};
use support::process::{TestDir, alive, kill_hard, start_example};

/// How many streams each test opens (over both processes).
const STREAMS: usize = 200;

struct Node {
    dir: TestDir,
    port: u16,
    child: Child,
}

impl Node {
    fn start(name: &str) -> Node {
        let dir = TestDir::new(name);
        let port = support::free_port();
        let child = start_example(
            "sse_cluster",
            &dir,
            &format!("http://127.0.0.1:{port}"),
            2,
            &[],
        );
        let node = Node { dir, port, child };
        assert!(
            support::wait_until(Duration::from_secs(20), || node.workers().len() == 2
                && TcpStream::connect(node.address()).is_ok()),
            "{name}: 2 workers did not start"
        );
        node
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn master(&self) -> i32 {
        self.child.id() as i32
    }

    fn workers(&self) -> Vec<i32> {
        std::fs::read_dir(&*self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()?
                    .strip_prefix("worker-")?
                    .parse()
                    .ok()
            })
            .filter(|&pid| alive(pid))
            .collect()
    }

    /// The relay: the one process of the node that is neither the master nor a worker.
    fn relay(&self) -> Vec<i32> {
        let workers: HashSet<i32> = self.workers().into_iter().collect();
        self.dir
            .processes()
            .into_iter()
            .filter(|pid| *pid != self.master() && !workers.contains(pid))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("demo.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.master(), libc::SIGCONT);
            kill_hard(self.master());
        }
        let _ = self.child.wait();
    }
}

fn signal(pid: i32, signal: libc::c_int) {
    // SAFETY: `kill` only sends a signal; the pid is a process this test started.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}

#[test]
fn streams_catch_up_after_the_relay_answers_later_than_the_request_timeout() {
    let node = Node::start("channel-catch-up-late");
    let mut streams: Vec<Stream> = (0..STREAMS)
        .map(|_| Stream::open_ok(node.address(), "/events?topic=news", None))
        .collect();
    for stream in &mut streams {
        stream.events.last_event_id();
    }
    let first = publish(node.address(), "news", "first");
    for stream in &mut streams {
        assert_eq!(stream.next().last_event_id, first);
    }
    let relay = node.relay();
    assert_eq!(relay.len(), 1, "one relay process: {relay:?}");

    // The relay goes away while nobody can start another: every worker re-attaches to the
    // listening socket and its catch-up waits there, unanswered, past the request timeout (5 s).
    signal(node.master(), libc::SIGSTOP);
    kill_hard(relay[0]);
    assert!(
        support::wait_until(Duration::from_secs(5), || !alive(relay[0])),
        "the relay did not end"
    );
    thread::sleep(Duration::from_secs(8));
    signal(node.master(), libc::SIGCONT);

    // The new relay answers: its history does not reach back to the old epoch, so every stream
    // is told of the gap, then goes on live. None of them was closed.
    for (index, stream) in streams.iter_mut().enumerate() {
        // A stream the hub closed ends here ("the stream ended"), and the log is printed.
        let event = stream.next();
        assert_eq!(event.event_type, "reset", "stream {index}: {event:?}");
        assert!(event.data.contains("\"reason\":\"gap\""), "{event:?}");
    }
    let after = publish(node.address(), "news", "after");
    for (index, stream) in streams.iter_mut().enumerate() {
        let event = stream.next();
        assert_eq!(
            (event.data.as_str(), event.last_event_id.as_str()),
            ("after", after.as_str()),
            "stream {index}"
        );
    }
    // The log says what happened, with counts: one history request per process for all its
    // streams, asked again after the timeout.
    let log = node.log();
    let catch_ups: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("catch up with"))
        .collect();
    assert!(
        (1..=2).contains(&catch_ups.len()),
        "one catch-up per process with streams:\n{log}"
    );
    let streams_caught_up: usize = catch_ups
        .iter()
        .map(|line| {
            assert!(line.ends_with("catch up with 1 history requests"), "{line}");
            line.split("back: ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|count| count.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no count in {line:?}"))
        })
        .sum();
    assert_eq!(streams_caught_up, STREAMS, "{log}");
    assert!(log.contains("asking again in"), "{log}");
    assert!(!log.contains("streams closed"), "{log}");
}

#[test]
fn fresh_streams_get_their_position_when_the_relay_answers_later_than_the_request_timeout() {
    let node = Node::start("channel-fresh-late");
    // Through the relay once, so it runs and every process is attached.
    publish(node.address(), "news", "first");
    let relay = node.relay();
    assert_eq!(relay.len(), 1, "one relay process: {relay:?}");

    // The relay is held busy: the fresh streams' position requests wait past the request
    // timeout (5 s).
    signal(relay[0], libc::SIGSTOP);
    let mut streams: Vec<Stream> = (0..STREAMS)
        .map(|_| Stream::open_ok(node.address(), "/events?topic=news", None))
        .collect();
    thread::sleep(Duration::from_secs(8));
    signal(relay[0], libc::SIGCONT);

    // Each stream gets its position (a stream the hub closed ends here), then live events.
    for stream in &mut streams {
        stream.events.last_event_id();
    }
    let after = publish(node.address(), "news", "after");
    for (index, stream) in streams.iter_mut().enumerate() {
        let event = stream.next();
        assert_eq!(
            (event.data.as_str(), event.last_event_id.as_str()),
            ("after", after.as_str()),
            "stream {index}"
        );
    }
    let log = node.log();
    assert!(log.contains("fresh streams (attempt 2 of 3)"), "{log}");
    assert!(!log.contains("closed"), "{log}");
}

/// A stop ends the workers first and the relay after them: no worker sees its relay go away
/// (nor says the channel is down) while it is still running.
#[test]
fn a_stop_ends_the_relay_after_the_workers() {
    let mut node = Node::start("channel-stop-order");
    let mut streams: Vec<Stream> = (0..20)
        .map(|_| Stream::open_ok(node.address(), "/events?topic=news", None))
        .collect();
    for stream in &mut streams {
        stream.events.last_event_id();
    }
    let first = publish(node.address(), "news", "first");
    for stream in &mut streams {
        assert_eq!(stream.next().last_event_id, first);
    }
    let relay = node.relay();
    assert_eq!(relay.len(), 1, "one relay process: {relay:?}");
    let workers = node.workers();
    signal(node.master(), libc::SIGINT);
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            matches!(node.child.try_wait(), Ok(Some(_)))
        }),
        "the master did not exit"
    );
    assert!(!alive(relay[0]), "the relay outlived its master");
    assert!(
        workers.iter().all(|pid| !alive(*pid)),
        "a worker outlived its master"
    );
    let log = node.log();
    assert!(log.contains("has been stopped"), "{log}");
    for line in ["the channel relay went away", "the channel is down"] {
        assert!(
            !log.contains(line),
            "the log says \"{line}\" on a stop:\n{log}"
        );
    }
}
