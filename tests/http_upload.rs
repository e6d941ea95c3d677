//! Uploads over loopback: a large `multipart/form-data` body is streamed to temporary files
//! (`tmp_name`, `size`, `error`, `type`, `full_path`), removed after the callback unless moved;
//! `max_upload_size` answers 413 (beyond `max_package_size` too); `curl -F` as an independent
//! client; and a 512 MiB upload whose server, a child process, keeps its peak RSS bounded.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{HttpClient, start};
use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

fn upload_directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("wm-http-upload-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

fn entries(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The byte at `offset` of the test pattern.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// Describes every file; `/keep` moves `doc` to `kept` in the upload directory.
fn upload_server(directory: PathBuf, seen: Arc<Mutex<Vec<PathBuf>>>) -> workerman::RunningWorker {
    start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_upload_directory(&directory);
        worker.set_max_package_size(2 * 1024 * 1024);
        worker.set_max_upload_size(16 * 1024 * 1024);
        let kept = directory.join("kept");
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            let mut answer = format!("title={:?};", request.post("title"));
            for file in request.files() {
                let on_disk = file.tmp_name().map(|path| {
                    seen.lock().unwrap().push(path.to_path_buf());
                    let bytes = std::fs::read(path).unwrap();
                    let intact = bytes
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == pattern(i as u64));
                    (bytes.len(), intact)
                });
                answer += &format!(
                    "{} {} {} {} {} {:?};",
                    file.name(),
                    file.full_path(),
                    file.content_type(),
                    file.size(),
                    file.error(),
                    on_disk
                );
            }
            if request.path() == "/keep" {
                request.file("doc").unwrap().move_to(&kept).unwrap();
            }
            connection.send(answer);
        });
        worker
    })
}

fn multipart_head(path: &str, body_len: u64) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
         Content-Length: {body_len}\r\n\r\n"
    )
}

const FIELD: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nreport\r\n";
const FILE_HEAD: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; \
                         filename=\"dir/r.bin\"\r\nContent-Type: application/x-test\r\n\r\n";
const CLOSE: &str = "\r\n--XyZ--\r\n";

/// Sends a multipart body of one field and one `size`-byte file, in pieces.
fn send_upload(stream: &mut impl Write, path: &str, size: u64) {
    let body_len = (FIELD.len() + FILE_HEAD.len() + CLOSE.len()) as u64 + size;
    stream
        .write_all(multipart_head(path, body_len).as_bytes())
        .unwrap();
    stream.write_all(FIELD.as_bytes()).unwrap();
    stream.write_all(FILE_HEAD.as_bytes()).unwrap();
    let mut piece = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < size {
        let count = (size - sent).min(piece.len() as u64) as usize;
        for (i, byte) in piece[..count].iter_mut().enumerate() {
            *byte = pattern(sent + i as u64);
        }
        stream.write_all(&piece[..count]).unwrap();
        sent += count as u64;
    }
    stream.write_all(CLOSE.as_bytes()).unwrap();
}

#[test]
fn a_large_multipart_file_is_streamed_to_a_temporary_file_removed_after_the_callback() {
    let directory = upload_directory("stream");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = upload_server(directory.clone(), seen.clone());
    let mut client = HttpClient::connect(server.local_address());
    // 5 MiB: over the 1 MiB threshold and over max_package_size (2 MiB).
    let size = 5 * 1024 * 1024;
    send_upload(client.reader.get_mut(), "/", size);
    let response = client.response();
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(
        response.body_text(),
        format!(
            "title=Some(\"report\");doc dir/r.bin application/x-test {size} 0 Some(({size}, true));"
        )
    );
    let path = seen.lock().unwrap()[0].clone();
    assert!(path.starts_with(&directory), "{path:?}");
    assert!(
        support::wait_until(Duration::from_secs(5), || entries(&directory).is_empty()),
        "removed after the callback: {:?}",
        entries(&directory)
    );

    // The connection goes on; a moved file stays.
    send_upload(client.reader.get_mut(), "/keep", size);
    assert_eq!(client.response().status, 200);
    assert!(support::wait_until(Duration::from_secs(5), || entries(
        &directory
    ) == [
        "kept"
    ]));
    assert_eq!(
        std::fs::metadata(directory.join("kept")).unwrap().len(),
        size
    );

    // A small body is buffered as before: files in memory.
    send_upload(client.reader.get_mut(), "/", 10);
    assert_eq!(
        client.response().body_text(),
        "title=Some(\"report\");doc dir/r.bin application/x-test 10 0 None;"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn an_upload_over_max_upload_size_is_a_413_and_leaves_no_file() {
    let directory = upload_directory("limit");
    let server = upload_server(directory.clone(), Arc::default());
    // 17 MiB announced: over max_upload_size (16 MiB): refused from the head alone.
    let mut client = HttpClient::connect(server.local_address());
    client.write(multipart_head("/", 17 * 1024 * 1024).as_bytes());
    let response = client.response();
    assert_eq!(response.status, 413);
    assert!(client.closed());
    // Not multipart: max_package_size (2 MiB) still rules.
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\n\r\n");
    assert_eq!(client.response().status, 413);
    // Plain fields of a streamed body are bounded by max_package_size too.
    let mut client = HttpClient::connect(server.local_address());
    let field_head = "--XyZ\r\nContent-Disposition: form-data; name=\"big\"\r\n\r\n";
    client.write(multipart_head("/", 4 * 1024 * 1024).as_bytes());
    client.write(field_head.as_bytes());
    let mut refused = false;
    for _ in 0..16 {
        if client
            .reader
            .get_mut()
            .write_all(&[b'x'; 256 * 1024])
            .is_err()
        {
            refused = true;
            break;
        }
    }
    let response = client.response();
    assert_eq!(response.status, 413, "refused={refused}");
    assert!(entries(&directory).is_empty());
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn curl_form_upload_is_read_with_workermans_file_fields() {
    let curl = support::require_program("curl");
    let directory = upload_directory("curl");
    let server = upload_server(directory.clone(), Arc::default());
    let source = directory.join("source.bin");
    let size = 3 * 1024 * 1024 + 17;
    let bytes: Vec<u8> = (0..size).map(pattern).collect();
    std::fs::write(&source, &bytes).unwrap();
    let output = Command::new(curl)
        .args(["-sS", "--max-time", "60", "-F", "title=report"])
        .arg("-F")
        .arg(format!("doc=@{};type=application/x-test", source.display()))
        .arg("-F")
        .arg(format!("doc=@{};type=application/x-test", source.display()))
        .arg(format!("http://{}/", server.local_address()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = String::from_utf8_lossy(&output.stdout);
    let expected = format!("doc source.bin application/x-test {size} 0 Some(({size}, true));");
    assert!(body.starts_with("title=Some(\"report\");"), "{body}");
    assert_eq!(body.matches(&expected).count(), 2, "{body}");
    std::fs::remove_file(&source).unwrap();
    assert!(support::wait_until(Duration::from_secs(5), || entries(
        &directory
    )
    .is_empty()));
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

/// Kilobytes of a `/proc/<pid>/status` line (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The server of the RSS test, run in a child process (this test binary, re-run with
/// `WM_UPLOAD_CHILD` set): it prints its port (after the harness's `test ... `), then serves
/// until its stdin closes.
#[test]
fn upload_server_child_process() {
    let Ok(directory) = std::env::var("WM_UPLOAD_CHILD") else {
        return; // run as a test: nothing to do; the parent test runs it as a process
    };
    let buffered = std::env::var_os("WM_UPLOAD_BUFFERED").is_some();
    let server = start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_upload_directory(&directory);
        worker.set_max_upload_size(1024 * 1024 * 1024);
        if buffered {
            // The control: the old way, the whole body in memory.
            worker.set_upload_threshold(usize::MAX);
            worker.set_max_package_size(1024 * 1024 * 1024);
        }
        worker.on_message(|connection: &TcpConnection, request: Request| {
            let sizes: Vec<String> = request
                .files()
                .map(|f| format!("{} {}", f.size(), f.tmp_name().is_some()))
                .collect();
            connection.send(sizes.join(","));
        });
        worker
    });
    println!("PORT {}", server.local_address().port());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.stop();
}

/// Uploads `size` bytes to a server child process; its peak RSS growth in MiB (VmHWM after
/// the upload minus VmHWM after a first request) and the answer.
fn peak_rss_growth_for_an_upload(test: &str, size: u64, buffered: bool) -> (u64, String) {
    let directory = upload_directory(test);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "upload_server_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WM_UPLOAD_CHILD", &directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if buffered {
        command.env("WM_UPLOAD_BUFFERED", "1");
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .find_map(|line| line.ok()?.split("PORT ").nth(1)?.trim().parse().ok())
        .expect("the child prints its port");
    let pid = child.id();
    let mut client = HttpClient::connect(([127, 0, 0, 1], port).into());
    client.get("/warm-up");
    let baseline = status_kib(pid, "VmHWM");
    send_upload(client.reader.get_mut(), "/", size);
    client
        .reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let answer = client.response().body_text();
    let peak = status_kib(pid, "VmHWM");
    drop(child.stdin.take());
    let _ = child.wait();
    eprintln!("{test}: server peak RSS {baseline} kB before, {peak} kB after a {size}-byte upload");
    assert!(support::wait_until(Duration::from_secs(5), || entries(
        &directory
    )
    .is_empty()));
    let _ = std::fs::remove_dir_all(&directory);
    (peak.saturating_sub(baseline) / 1024, answer)
}

#[test]
fn a_512_mib_upload_keeps_the_server_process_memory_bounded() {
    let size = 512 * 1024 * 1024;
    let (grown_mib, answer) = peak_rss_growth_for_an_upload("rss", size, false);
    assert_eq!(answer, format!("{size} true"));
    assert!(
        grown_mib < 32,
        "the server's peak RSS grew by {grown_mib} MiB for 512 MiB"
    );
    // The probe sees buffering: the same server buffering a 128 MiB body grows by about that.
    let size = 128 * 1024 * 1024;
    let (grown_mib, answer) = peak_rss_growth_for_an_upload("rss-control", size, true);
    assert_eq!(answer, format!("{size} false"));
    assert!(
        grown_mib >= 100,
        "buffering 128 MiB grew the peak RSS by only {grown_mib} MiB"
    );
}
