//! Certificate rotation on `reload`, driven as a user drives it: `examples/process_demo.rs` over
//! https (`DEMO_TLS_CERT` / `DEMO_TLS_KEY`, a master and 2 worker processes) started with
//! `start -d`. A rotated certificate is served after `reload`; certificate files broken before a
//! `reload` leave the last good certificate served and one error line in the log; `start` with
//! broken files fails with one line naming the file before anything listens.
//!
//! Every wait is bounded; the test directory's guard kills every process the test started.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use support::process::{TestDir, alive, example_binary, output_within};
use support::tls::{Pki, exchange, tls_connect};
use support::{free_port, wait_until};

const COMMAND_LIMIT: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(10);

struct Demo {
    dir: TestDir,
    port: u16,
    cert: PathBuf,
    key: PathBuf,
}

impl Demo {
    fn new(test: &str) -> Demo {
        let dir = TestDir::new(&format!("tls-reload-{test}"));
        let (cert, key) = (dir.join("served.pem"), dir.join("served.key"));
        Demo {
            dir,
            port: free_port(),
            cert,
            key,
        }
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn run(&self, arguments: &[&str]) -> Output {
        let mut command = Command::new(example_binary("process_demo"));
        command
            .args(arguments)
            .env("DEMO_DIR", &*self.dir)
            .env("DEMO_PORT", self.port.to_string())
            .env("DEMO_TLS_CERT", &self.cert)
            .env("DEMO_TLS_KEY", &self.key);
        output_within(
            &mut command,
            COMMAND_LIMIT,
            &format!("`process_demo {}`", arguments.join(" ")),
        )
    }

    /// Puts `(cert, key)` where the demo reads its certificate.
    fn install(&self, (cert, key): &(PathBuf, PathBuf)) {
        std::fs::copy(cert, &self.cert).unwrap();
        std::fs::copy(key, &self.key).unwrap();
    }

    fn worker_pids(&self) -> Vec<Option<i32>> {
        (0..2)
            .map(|id| {
                std::fs::read_to_string(self.dir.join(format!("worker-{id}.pid")))
                    .ok()
                    .and_then(|pid| pid.trim().parse().ok())
                    .filter(|&pid| alive(pid))
            })
            .collect()
    }

    /// `reload`, then waits until both workers were replaced.
    fn reload(&self) {
        let before = self.worker_pids();
        let output = self.run(&["reload"]);
        assert!(output.status.success(), "{}", text(&output.stdout));
        assert!(
            wait_until(WAIT, || {
                let now = self.worker_pids();
                now.iter().all(Option::is_some)
                    && now.iter().zip(&before).all(|(now, before)| now != before)
            }),
            "the workers were not replaced: {before:?} -> {:?}",
            self.worker_pids()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("demo.log")).unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn der(cert: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// One https request on a new connection: the leaf certificate the server showed, after a
/// complete answer.
fn served_certificate(pki: &Pki, address: SocketAddr) -> Vec<u8> {
    let mut stream = tls_connect(address, "localhost", pki.client_config(None));
    let answer = exchange(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .expect("an https answer");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"), "{}", text(&answer));
    stream.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

/// Several connections (each may reach either worker) all see `expected`.
fn every_worker_serves(pki: &Pki, demo: &Demo, expected: &[u8], what: &str) {
    for _ in 0..8 {
        assert!(
            served_certificate(pki, demo.address()) == expected,
            "{what}"
        );
    }
}

#[test]
fn reload_serves_a_rotated_certificate_and_keeps_the_last_good_one_when_the_files_break() {
    let pki = Pki::new("reload");
    let first = pki.leaf("first", &["localhost"]);
    let second = pki.leaf("second", &["localhost"]);
    let demo = Demo::new("rotate");
    demo.install(&first);
    let output = demo.run(&["start", "-d"]);
    assert!(
        output.status.success(),
        "start -d: {}",
        text(&output.stdout)
    );
    assert!(wait_until(WAIT, || demo
        .worker_pids()
        .iter()
        .all(Option::is_some)));
    every_worker_serves(&pki, &demo, &der(&first.0), "the first certificate");

    // Rotation: new files, `reload`, the new certificate.
    demo.install(&second);
    demo.reload();
    every_worker_serves(&pki, &demo, &der(&second.0), "the rotated certificate");

    // Broken files (a truncated certificate, then a key of another certificate): the workers are
    // replaced, the last good certificate is still served, one line names the file.
    std::fs::write(&demo.cert, b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    demo.reload();
    every_worker_serves(&pki, &demo, &der(&second.0), "the last good certificate");
    std::fs::copy(&second.0, &demo.cert).unwrap();
    std::fs::copy(&first.1, &demo.key).unwrap();
    demo.reload();
    every_worker_serves(&pki, &demo, &der(&second.0), "the last good certificate");
    let log = demo.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("] reload: "))
        .collect();
    assert_eq!(errors.len(), 2, "{log}");
    assert!(
        errors[0].contains(&demo.cert.display().to_string()),
        "{log}"
    );
    assert!(errors[1].contains(&demo.key.display().to_string()), "{log}");
    assert!(
        errors
            .iter()
            .all(|line| line.contains("still serving the certificate loaded before")),
        "{log}"
    );

    // Mended files: the next reload serves them again.
    demo.install(&first);
    demo.reload();
    every_worker_serves(&pki, &demo, &der(&first.0), "the mended files");
    let stop = demo.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop.stdout));
    assert!(wait_until(WAIT, || demo.dir.processes().is_empty()));
}

#[test]
fn start_with_a_broken_certificate_file_fails_in_one_line_before_listening() {
    let pki = Pki::new("reload-start");
    let good = pki.leaf("good", &["localhost"]);
    let demo = Demo::new("start");
    demo.install(&good);
    std::fs::write(&demo.cert, b"not a certificate\n").unwrap();
    let output = demo.run(&["start", "-d"]);
    assert!(!output.status.success(), "start -d succeeded");
    let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
    let lines: Vec<&str> = shown
        .lines()
        .filter(|line| line.contains(&demo.cert.display().to_string()))
        .collect();
    assert_eq!(lines.len(), 1, "{shown}");
    assert!(lines[0].contains("ssl local_cert"), "{shown}");
    assert!(
        TcpStream::connect(demo.address()).is_err(),
        "something listens"
    );
    assert!(demo.dir.processes().is_empty(), "a process is left");
}
