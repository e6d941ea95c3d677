//! Exhaustion: `max_connections` refuses the excess cleanly; running out of file descriptors
//! makes the worker log, back off (not spin), and serve again once descriptors free up.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{HttpClient, LineClient, start};
use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

#[test]
fn max_connections_refuses_the_excess_and_recovers() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_max_connections(3);
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker
    });
    let mut held: Vec<LineClient> = (0..3)
        .map(|index| {
            let mut client = LineClient::connect(server.local_address());
            client.send(&format!("{index}\n"));
            assert_eq!(client.line(), format!("{index}\n"));
            client
        })
        .collect();
    let mut excess = LineClient::connect(server.local_address());
    assert!(excess.closed(), "the fourth connection is closed at once");
    drop(held.pop());
    assert!(support::wait_until(Duration::from_secs(2), || {
        let mut client = LineClient::connect(server.local_address());
        client.send("again\n");
        let mut line = String::new();
        client.reader.read_line(&mut line).is_ok() && line == "again\n"
    }));
}

#[test]
fn max_connections_on_http_answers_503() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_max_connections(1);
        worker.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send("ok");
        });
        worker
    });
    let mut first = HttpClient::connect(server.local_address());
    assert_eq!(first.get("/").status, 200);
    let mut second = HttpClient::connect(server.local_address());
    let refused = second.response();
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(
        first.get("/").status,
        200,
        "the held connection is unharmed"
    );
}

/// The child side of `running_out_of_descriptors_backs_off_and_recovers`: a worker in a process
/// limited to 48 file descriptors. Run only by that test (`--ignored --exact`).
#[test]
#[ignore = "the child process of running_out_of_descriptors_backs_off_and_recovers"]
fn descriptor_limited_child_server() {
    if std::env::var_os("WORKERMAN_FD_CHILD").is_none() {
        return;
    }
    struct StderrLogger;
    impl log::Log for StderrLogger {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            eprintln!("{} {}", record.level(), record.args());
        }
        fn flush(&self) {}
    }
    log::set_logger(&StderrLogger).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let limit = libc::rlimit {
        rlim_cur: 48,
        rlim_max: 48,
    };
    // SAFETY: setrlimit only reads the struct we pass; lowering our own limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker
    });
    println!("{}", server.local_address());
    std::thread::sleep(Duration::from_secs(20));
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; after the ")" they are the 12th and 13th.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "descriptor_limited_child_server",
            "--nocapture",
        ])
        .env("WORKERMAN_FD_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let _guard = Kill(child);
    let address: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the child exited early"
        );
        if let Ok(address) = line.trim().parse() {
            break address;
        }
    };
    let (log_lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_lines.send(line);
        }
    });

    // More connections than the child has descriptors: the kernel queues the rest.
    let mut clients: Vec<std::net::TcpStream> =
        (0..80).map(|_| support::connect(address)).collect();
    for (index, client) in clients.iter_mut().enumerate() {
        client.write_all(format!("{index}\n").as_bytes()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    let mut served = vec![false; clients.len()];
    for (index, client) in clients.iter_mut().enumerate() {
        let mut reply = [0u8; 8];
        served[index] = client.read(&mut reply).is_ok_and(|count| count > 0);
    }
    let first_round = served.iter().filter(|&&s| s).count();
    assert!(
        first_round > 10 && first_round < 80,
        "{first_round} served before the limit"
    );
    let warning = logged
        .recv_timeout(Duration::from_secs(2))
        .expect("the worker logs running out of descriptors");
    assert!(warning.contains("pausing accepts"), "{warning}");

    // Stuck at the limit, the worker must not spin: measure its CPU over half a second.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(500));
    let spent = cpu_ticks(pid) - before;
    assert!(
        spent <= 10,
        "{spent} ticks (1/100 s) of CPU in 0.5 s while out of descriptors"
    );

    // Free the served connections: the waiting ones are accepted and answered.
    let mut waiting = Vec::new();
    for (index, client) in clients.into_iter().enumerate() {
        if !served[index] {
            waiting.push((index, client));
        }
    }
    for (index, mut client) in waiting {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\n") {
            assert!(
                client.read(&mut byte).unwrap() > 0,
                "connection {index} closed"
            );
            reply.push(byte[0]);
        }
        assert_eq!(reply, format!("{index}\n").into_bytes());
    }
}
