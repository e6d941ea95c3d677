//! `examples/sse_postgres.rs` against a PostgreSQL cluster of its own (initdb in a temporary
//! directory, a free port, its Unix socket in that directory): `NOTIFY` reaches SSE subscribers.

#[path = "support/event_stream.rs"]
mod event_stream;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_stream::EventReader;
use support::process::example_binary;
use support::{connect, free_port, require_program, wait_until};

/// A program of PostgreSQL's: on `PATH`, or in Debian's versioned directory.
fn postgres_program(name: &str) -> PathBuf {
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        versions.sort();
        if let Some(found) = versions
            .iter()
            .rev()
            .map(|version| version.join("bin").join(name))
            .find(|path| path.exists())
        {
            return found;
        }
    }
    require_program(name)
}

/// A cluster of our own; dropping it stops the server and removes the directory.
struct Cluster {
    dir: PathBuf,
    port: u16,
    /// Root may not run PostgreSQL: then it runs as the `postgres` user.
    as_postgres: bool,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = postgres_program(program);
        if self.as_postgres {
            let mut command = Command::new(require_program("runuser"));
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn start() -> Cluster {
        // SAFETY: `geteuid` has no effects.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = std::env::temp_dir().join(format!("workerman-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Cluster {
            dir,
            port: free_port(),
            as_postgres,
        };
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&cluster.dir)
                .status()
                .unwrap();
            assert!(
                chown.success(),
                "chown to postgres failed (no postgres user? apt-get install postgresql)"
            );
        }
        let data = cluster.dir.join("data");
        let initdb = cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=''",
            cluster.port,
            cluster.dir.display()
        );
        let started = cluster
            .command("pg_ctl")
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(cluster.dir.join("server.log"))
            .arg("-D")
            .arg(&data)
            .arg("start")
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            started.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default()
        );
        cluster
    }

    fn config(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.display(),
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The example's master in the foreground; killed on drop if still running.
struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        // SAFETY: `kill` has no memory effects; the pid is our child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let stopped = wait_until(Duration::from_secs(10), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// An SSE subscriber, its events read by an independent event-stream parser.
type Subscriber = EventReader<BufReader<TcpStream>>;

/// Opens `GET /events` and reads the response head.
fn subscribe(address: SocketAddr) -> Subscriber {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    EventReader::new(reader)
}

#[test]
fn notify_reaches_every_sse_subscriber_through_the_fd_api() {
    let cluster = Cluster::start();
    let port = free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let example = Example(
        Command::new(example_binary("sse_postgres"))
            .arg("start")
            .env("PG_CONFIG", cluster.config())
            .env("PG_CHANNEL", "items")
            .env("SSE_PG_PORT", port.to_string())
            .env("SSE_PG_DIR", &cluster.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the example"),
    );
    assert!(
        wait_until(Duration::from_secs(15), || TcpStream::connect(address)
            .is_ok()),
        "the example never listened"
    );
    let mut subscribers: Vec<Subscriber> = (0..3).map(|_| subscribe(address)).collect();

    let mut notifier = postgres::Client::connect(&cluster.config(), postgres::NoTls)
        .expect("connect to our cluster");
    notifier
        .batch_execute("NOTIFY items, 'first'; NOTIFY other, 'not ours'")
        .unwrap();
    // Several in one transaction arrive together: all of them are delivered, in order.
    notifier
        .batch_execute(
            "BEGIN; SELECT pg_notify('items', 'second'); SELECT pg_notify('items', 'third'); \
             COMMIT",
        )
        .unwrap();
    for subscriber in &mut subscribers {
        for expected in ["first", "second", "third"] {
            let event = subscriber.next();
            assert_eq!(event.event_type, "items");
            assert_eq!(event.data, expected);
        }
    }
    // A later one too (the socket is watched for as long as the worker runs).
    std::thread::sleep(Duration::from_millis(200));
    notifier.batch_execute("NOTIFY items, 'later'").unwrap();
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.next().data, "later");
    }
    drop(example);
    drop(cluster);
}
