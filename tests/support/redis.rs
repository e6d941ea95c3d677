//! A real `redis-server` per test, on a free loopback port, and a client worker to drive a
//! `workerman::redis::Client` from the test thread.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use workerman::redis::Client;
use workerman::{RunningWorker, Timer, Worker};

use super::require_program;

/// How long a test waits for any one thing the client reports.
pub const WAIT: Duration = Duration::from_secs(10);

/// A `redis-server` started for one test (`--save '' --appendonly no`), stopped on drop.
pub struct RedisServer {
    pub port: u16,
    /// The ports that stand for `{free_port}` in the config lines, in order.
    pub extra_ports: Vec<u16>,
    child: Option<Child>,
    directory: PathBuf,
    config: Vec<String>,
}

/// How many times a server whose port was taken between choosing it and binding it (another
/// test chose the same free port) is started again on fresh ports.
const PORT_RETRIES: usize = 5;

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server with the default configuration.
    pub fn start() -> RedisServer {
        RedisServer::with_config(&[])
    }

    /// A server whose config file holds these lines (`rename-command HELLO ""`, ACL users...).
    /// Each `{free_port}` in them becomes a free port of its own (see `extra_ports`).
    pub fn with_config(lines: &[&str]) -> RedisServer {
        let mut attempt = 0;
        loop {
            let port = free_port();
            let directory =
                std::env::temp_dir().join(format!("workerman-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&directory).unwrap();
            let mut extra_ports = Vec::new();
            let config = lines
                .iter()
                .map(|line| {
                    let mut line = line.to_string();
                    while line.contains("{free_port}") {
                        let extra = free_port();
                        extra_ports.push(extra);
                        line = line.replacen("{free_port}", &extra.to_string(), 1);
                    }
                    line
                })
                .collect();
            let mut server = RedisServer {
                port,
                extra_ports,
                child: None,
                directory,
                config,
            };
            match server.launch() {
                Ok(()) => return server,
                Err(log) if log.contains("in use") && attempt < PORT_RETRIES => attempt += 1,
                Err(log) => panic!("redis-server did not come up on port {port}:\n{log}"),
            }
        }
    }

    /// The Unix socket this server also listens on.
    pub fn unix_socket(&self) -> PathBuf {
        self.directory.join("redis.sock")
    }

    fn log_file(&self) -> PathBuf {
        self.directory.join("redis.log")
    }

    /// Starts the process and waits until it answers `PING`; `Err` holds its log when it exited
    /// or stayed silent.
    fn launch(&mut self) -> Result<(), String> {
        let program = require_program("redis-server");
        let config = self.directory.join("redis.conf");
        let mut text = String::new();
        for line in &self.config {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&config, text).unwrap();
        let child = Command::new(program)
            .arg(&config)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.directory)
            .arg("--unixsocket")
            .arg(self.unix_socket())
            .args(["--unixsocketperm", "700", "--loglevel", "warning"])
            .arg("--logfile")
            .arg(self.log_file())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(Duration::from_secs(1))).ok();
                let mut answer = [0u8; 64];
                if stream.write_all(b"PING\r\n").is_ok() {
                    if let Ok(count) = stream.read(&mut answer) {
                        // PONG, or NOAUTH on a server that wants a password: up either way.
                        if count > 0 {
                            return Ok(());
                        }
                    }
                }
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| child.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= deadline {
                self.kill9();
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (no shutdown: its clients see the connection drop).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts it again on the same port (an empty dataset: nothing is saved).
    pub fn restart(&mut self) {
        self.kill9();
        if let Err(log) = self.launch() {
            panic!(
                "redis-server did not come back on port {}:\n{log}",
                self.port
            );
        }
    }

    /// Runs `redis-cli -p PORT args...` and returns its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let program = require_program("redis-cli");
        let output = Command::new(program)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
        std::fs::remove_dir_all(&self.directory).ok();
    }
}

type Job = Box<dyn FnOnce(&Client, &Sender<String>) + Send>;

/// A worker thread holding one `Client`; jobs sent from the test run on its reactor, and the
/// callbacks report back through `events`.
pub struct ClientWorker {
    worker: Option<RunningWorker>,
    jobs: Sender<Job>,
    pub events: Receiver<String>,
    pub report: Sender<String>,
}

impl ClientWorker {
    /// A worker whose `on_worker_start` makes `Client::new(url)` and passes it to `configure`.
    pub fn start(
        url: &str,
        configure: impl Fn(&Client, &Sender<String>) + Send + 'static,
    ) -> ClientWorker {
        let (jobs, job_receiver) = mpsc::channel::<Job>();
        let (report, events) = mpsc::channel();
        let url = url.to_owned();
        let events_sender = report.clone();
        let job_receiver = std::sync::Mutex::new(Some(job_receiver));
        let worker = super::start(move || {
            let mut worker = Worker::without_listener();
            let receiver = job_receiver.lock().unwrap().take();
            let events = events_sender.clone();
            let receiver = std::cell::RefCell::new(receiver);
            worker.on_worker_start(move |_| {
                let client = Client::new(&url);
                configure(&client, &events);
                let receiver = receiver.borrow_mut().take().expect("started once");
                let events = events.clone();
                Timer::add(0.005, move |_| {
                    while let Ok(job) = receiver.try_recv() {
                        job(&client, &events);
                    }
                });
            });
            worker
        });
        ClientWorker {
            worker: Some(worker),
            jobs,
            events,
            report,
        }
    }

    /// Runs `job` on the worker's reactor with its client.
    pub fn run(&self, job: impl FnOnce(&Client, &Sender<String>) + Send + 'static) {
        self.jobs.send(Box::new(job)).expect("the worker runs");
    }

    /// The next event reported, within [`WAIT`].
    pub fn next(&self) -> String {
        self.events
            .recv_timeout(WAIT)
            .expect("the client reports within the wait")
    }

    /// Events until one equals `wanted` (returned are those before it).
    pub fn until(&self, wanted: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let event = self.next();
            if event == wanted {
                return before;
            }
            before.push(event);
        }
    }

    /// Runs one command and returns its result as text: `ok:<value>` or `err:<error>`.
    pub fn call(&self, command: &[&str]) -> String {
        let command: Vec<String> = command.iter().map(|part| part.to_string()).collect();
        self.run(move |client, events| {
            let events = events.clone();
            client.command(command, move |result| {
                events.send(describe(&result)).ok();
            });
        });
        self.next()
    }
}

impl Drop for ClientWorker {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
    }
}

/// A result as one line: `ok:<value>` (the value's Display) or `err:<kind>:<message>`.
pub fn describe(result: &Result<workerman::redis::Value, workerman::redis::Error>) -> String {
    match result {
        Ok(value) => format!("ok:{value}"),
        Err(error) if error.is_server() => format!("err:server:{error}"),
        Err(error) if error.is_timeout() => "err:timeout".to_owned(),
        Err(error) => format!("err:connection:{error}"),
    }
}

/// A TCP proxy in front of a Redis server that holds each `SUBSCRIBE` command for `delay`
/// before passing it on (every other byte goes straight through, both ways): it widens the
/// time between asking for a subscription and its taking effect. Stops accepting on drop.
pub struct SlowSubscribeProxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowSubscribeProxy {
    pub fn start(upstream: u16, delay: Duration) -> SlowSubscribeProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(mut server_reader), Ok(mut client_writer)) =
                    (server.try_clone(), client.try_clone())
                else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_reader, &mut client_writer);
                    let _ = client_writer.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || forward_commands(client, server, delay));
            }
        });
        SlowSubscribeProxy { port, stop }
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowSubscribeProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Client to server, one RESP command at a time; a `SUBSCRIBE` waits `delay` first.
fn forward_commands(mut client: TcpStream, mut server: TcpStream, delay: Duration) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some((length, subscribe)) = one_command(&buffer) {
            if subscribe {
                std::thread::sleep(delay);
            }
            if server.write_all(&buffer[..length]).is_err() {
                return;
            }
            buffer.drain(..length);
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = server.shutdown(std::net::Shutdown::Both);
                return;
            }
            Ok(count) => buffer.extend_from_slice(&chunk[..count]),
        }
    }
}

/// The length of the first whole command (`*N` then N bulk strings) in `bytes`, and whether it
/// is a `SUBSCRIBE`; `None` until it is whole.
fn one_command(bytes: &[u8]) -> Option<(usize, bool)> {
    fn line(bytes: &[u8], from: usize) -> Option<(&[u8], usize)> {
        let end = bytes[from..].windows(2).position(|pair| pair == b"\r\n")? + from;
        Some((&bytes[from..end], end + 2))
    }
    let (head, mut at) = line(bytes, 0)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut subscribe = false;
    for index in 0..count {
        let (size, next) = line(bytes, at)?;
        let size: usize = std::str::from_utf8(size.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if bytes.len() < next + size + 2 {
            return None;
        }
        if index == 0 {
            subscribe = bytes[next..next + size].eq_ignore_ascii_case(b"SUBSCRIBE");
        }
        at = next + size + 2;
    }
    Some((at, subscribe))
}
