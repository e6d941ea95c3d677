//! One `examples/channel_demo` server (a "node"): started in the foreground with its own
//! directory, port and environment; what each of its processes received, read from the
//! `seen-<pid>` files it writes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use super::process::{TestDir, start_example};

pub struct Node {
    pub dir: TestDir,
    pub port: u16,
    pub count: usize,
    child: Child,
}

impl Node {
    /// Starts `channel_demo` with `COUNT=count` and `extra` environment, and waits until every
    /// process's channel answered (its `ready-<pid>` file).
    pub fn start(name: &str, count: usize, extra: &[(&str, &str)]) -> Node {
        let dir = TestDir::new(name);
        let port = super::free_port();
        let child = start_example(
            "channel_demo",
            &dir,
            &format!("127.0.0.1:{port}"),
            count,
            extra,
        );
        let node = Node {
            dir,
            port,
            count,
            child,
        };
        node.wait_for(Duration::from_secs(20), "every process ready", || {
            node.ready_pids().len() == count
        });
        node
    }

    /// The worker processes that said they are ready.
    pub fn ready_pids(&self) -> Vec<i32> {
        self.files("ready-").into_keys().collect()
    }

    /// `prefix<pid>` files of the directory, by pid, with their text.
    fn files(&self, prefix: &str) -> BTreeMap<i32, String> {
        let mut found = BTreeMap::new();
        for entry in std::fs::read_dir(&*self.dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix).and_then(|pid| pid.parse().ok()) {
                found.insert(
                    pid,
                    std::fs::read_to_string(entry.path()).unwrap_or_default(),
                );
            }
        }
        found
    }

    /// What each ready process received: its `<id> <data>` lines, in order.
    pub fn seen(&self) -> BTreeMap<i32, Vec<String>> {
        let ready = self.ready_pids();
        let mut seen: BTreeMap<i32, Vec<String>> =
            ready.iter().map(|pid| (*pid, Vec::new())).collect();
        for (pid, text) in self.files("seen-") {
            seen.insert(pid, text.lines().map(str::to_owned).collect());
        }
        seen
    }

    /// Whether every ready process logged that its channel went down and then came up again.
    pub fn every_process_saw_down_then_up(&self) -> bool {
        let log = std::fs::read_to_string(self.dir.join("demo.log")).unwrap_or_default();
        self.ready_pids().iter().all(|pid| {
            let down = log.find(&format!("channel_demo[{pid}]: channel down"));
            let up = log.rfind(&format!("channel_demo[{pid}]: channel up"));
            matches!((down, up), (Some(down), Some(up)) if up > down)
        })
    }

    /// The master's pid.
    pub fn master(&self) -> i32 {
        self.child.id() as i32
    }

    /// Polls `done` every 20 ms until it holds; fails the test naming `what` after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?} (seen: {:?})",
                self.seen().values().map(Vec::len).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `POST /publish` with `data`: `Ok((id, publisher pid))` or `Err((status, body))`.
    pub fn publish(&self, data: &str) -> Result<(String, i32), (u16, String)> {
        let (status, body) = http(self.port, "POST", "/publish", data);
        if status != 200 {
            return Err((status, body));
        }
        let (id, pid) = body.split_once(' ').expect("<id> <pid>");
        Ok((id.to_owned(), pid.trim().parse().expect("a pid")))
    }

    /// `GET /history?after=..`: the `<id> <data>` lines, or `["gap"]`.
    /// The newest kept id of the demo event, or "none".
    #[allow(dead_code)]
    pub fn last_id(&self) -> String {
        let (status, body) = http(self.port, "GET", "/last_id", "");
        assert_eq!(status, 200, "last_id: {body}");
        body.trim().to_owned()
    }

    pub fn history(&self, after: &str, limit: usize) -> Vec<String> {
        let (status, body) = http(
            self.port,
            "GET",
            &format!("/history?after={after}&limit={limit}"),
            "",
        );
        assert_eq!(status, 200, "history: {body}");
        body.lines().map(str::to_owned).collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request; the status and body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to channel_demo");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Checks that every process saw exactly `expected` (as a set), each once, all in one order
/// with increasing ids; returns that order.
pub fn one_order(seen: &BTreeMap<i32, Vec<String>>, expected: usize) -> Vec<String> {
    let mut orders = seen.values();
    let first = orders.next().expect("some process").clone();
    assert_eq!(first.len(), expected, "events seen: {first:?}");
    for other in orders {
        assert_eq!(*other, first, "two processes saw different orders");
    }
    let ids: Vec<(u64, u64)> = first
        .iter()
        .map(|line| {
            let id = line.split(' ').next().unwrap();
            let (a, b) = id.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids not increasing: {first:?}"
    );
    first
}
