//! Workerman's manual's examples, ported from its text (resource/doc/en of workerman-manual), as
//! regression tests over real sockets: the TCP proxy built with `pipe` (`connection/pipe.md`),
//! the JsonNL protocol (`protocols/how-protocols.md`), JsonInt (`protocols/example.md`) and
//! MyTextProtocol (the README's custom protocol), with Workerman's package rules: `input`
//! returning 0 waits for more, and an invalid or oversized package closes the connection with
//! an `Error package. package_length=..` log line.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use support::{connect, start};
use workerman::protocols::{Encode, EncodeOutgoing, Input, Protocol};
use workerman::{AsyncTcpConnection, TcpConnection, Worker};

/// The log lines at warning level or above, captured for the `Error package` assertions.
struct Captured;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOGGER: Captured = Captured;

impl log::Log for Captured {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut lines = LINES
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
}

fn logged(part: &str) -> bool {
    let lines = LINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    lines.iter().any(|line| line.contains(part))
}

// ---------------------------------------------------------------------------------------------
// connection/pipe.md: "Example: TCP Proxy"

#[test]
fn the_manuals_tcp_proxy_pipes_both_ways_and_closes_the_upstream_with_the_client() {
    let (upstream_events, upstream_event) = mpsc::channel();
    // Stands in for the manual's local port 80: answers each read with "echo: " and the bytes.
    let backend = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            let mut answer = b"echo: ".to_vec();
            answer.extend_from_slice(&data);
            connection.send(answer);
        });
        let closed = upstream_events.clone();
        worker.on_close(move |_| closed.send("upstream closed").unwrap());
        worker
    });
    let backend_address = backend.local_address();
    let proxy = start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        // After the TCP connection is established
        worker.on_connect(move |connection: &TcpConnection| {
            // Establish an asynchronous connection to the local port 80
            let connection_to_80 = AsyncTcpConnection::new(&format!("tcp://{backend_address}"));
            // Set the data from the current client connection to be directed to the connection
            // on port 80
            connection.pipe(&connection_to_80);
            // Set the data returned from the 80 port connection to be directed to the client
            // connection
            connection_to_80.pipe(connection);
            // Execute the asynchronous connection
            connection_to_80.connect();
        });
        worker
    });
    let mut client = connect(proxy.local_address());
    // Sent at once: it may arrive before the upstream is connected, and waits for it.
    client.write_all(b"hello").unwrap();
    let mut answer = [0u8; 11];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"echo: hello");
    client.write_all(b"again").unwrap();
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"echo: again");
    drop(client);
    assert_eq!(
        upstream_event.recv_timeout(Duration::from_secs(5)),
        Ok("upstream closed")
    );
    proxy.stop();
    backend.stop();
}

// ---------------------------------------------------------------------------------------------
// protocols/how-protocols.md: JsonNL, "json_encode($buffer)."\n"", and
// `$connection->send(array('code'=>0, 'msg'=>'ok'))`

struct JsonNL;

impl Protocol for JsonNL {
    type Message = Value;
    fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
        // Get the position of the newline character "\n"; without one, return 0 to wait
        match buffer.iter().position(|&byte| byte == b'\n') {
            None => Input::Package(0),
            Some(position) => Input::Package(position + 1),
        }
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Value {
        // Remove the newline character and convert it back to an array
        serde_json::from_slice(package.trim_ascii()).unwrap_or(Value::Null)
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(&serde_json::to_vec(&String::from_utf8_lossy(data)).unwrap());
        out.push(b'\n');
    }
    fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
        Some(self)
    }
}

impl Encode for JsonNL {
    type Outgoing = Value;
    fn encode_message(&self, message: Value, _connection: &TcpConnection, out: &mut Vec<u8>) {
        // json_encode, plus a newline to mark the end of the request
        out.extend_from_slice(message.to_string().as_bytes());
        out.push(b'\n');
    }
}

#[test]
fn the_manuals_json_nl_protocol_sends_arrays_and_waits_on_zero() {
    let (received, data) = mpsc::channel();
    let server = start(move || {
        let mut json_worker = Worker::with_protocol("tcp://127.0.0.1:0", JsonNL);
        json_worker.on_message(move |connection: &TcpConnection, data: Value| {
            // $data contains the data sent by the client, already processed by JsonNL::decode
            received.send(data).unwrap();
            // Data sent is packed by JsonNL's encode before being sent to the client
            connection.send_message(json!({"code": 0, "msg": "ok"}));
        });
        json_worker
    });
    let stream = connect(server.local_address());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // The request arrives in two pieces: `input` returns 0 for the first, which waits.
    writer.write_all(br#"{"type":"message","#).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    writer
        .write_all(br#""content":"hello"}"#.as_slice())
        .unwrap();
    writer.write_all(b"\n").unwrap();
    assert_eq!(
        data.recv_timeout(Duration::from_secs(5)).unwrap(),
        json!({"type": "message", "content": "hello"})
    );
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"code": 0, "msg": "ok"})
    );
    assert!(line.ends_with('\n'));
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// protocols/example.md, "Example Two": JsonInt, a 4-byte network-order total length + JSON

struct JsonInt;

impl Protocol for JsonInt {
    type Message = Value;
    fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
        // Less than 4 bytes: the packet length is unknown, return 0 to wait for more data
        let Some(head) = buffer.first_chunk::<4>() else {
            return Input::Package(0);
        };
        // The first 4 bytes are the entire data packet length
        Input::Package(u32::from_be_bytes(*head) as usize)
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Value {
        // Remove the first 4 bytes to get the body JSON data
        serde_json::from_slice(&package[4..]).unwrap_or(Value::Null)
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(&(4 + data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
    fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
        Some(self)
    }
}

impl Encode for JsonInt {
    type Outgoing = Value;
    fn encode_message(&self, message: Value, connection: &TcpConnection, out: &mut Vec<u8>) {
        // JSON encode to get the body, then the length of the whole packet before it
        self.encode(message.to_string().as_bytes(), connection, out);
    }
}

fn json_int(value: &Value) -> Vec<u8> {
    let body = value.to_string();
    let mut packet = (4 + body.len() as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(body.as_bytes());
    packet
}

#[test]
fn the_manuals_json_int_protocol_round_trips_typed_messages() {
    let server = start(|| {
        let mut worker = Worker::with_protocol("tcp://127.0.0.1:0", JsonInt);
        worker.on_message(|connection: &TcpConnection, data: Value| {
            let reply = json!({"type": "reply", "content": data["content"]});
            assert!(connection.send_message(reply).is_accepted());
            // A type the protocol does not send is refused, and nothing goes out.
            assert!(!connection.send_message(42u32).is_accepted());
        });
        worker
    });
    let mut client = connect(server.local_address());
    let packet = json_int(&json!({"type": "message", "content": "hello all"}));
    // Byte by byte: each short buffer makes `input` return 0.
    for byte in &packet {
        client.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let mut head = [0u8; 4];
    client.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(head) as usize - 4];
    client.read_exact(&mut body).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"type": "reply", "content": "hello all"})
    );
    server.stop();
}

#[test]
fn an_oversized_package_closes_the_connection_with_workermans_log_line() {
    capture_logs();
    let server = start(|| {
        let mut worker = Worker::with_protocol("tcp://127.0.0.1:0", JsonInt);
        worker.set_max_package_size(1024);
        worker.on_message(|_connection: &TcpConnection, _data: Value| {});
        worker
    });
    let mut client = connect(server.local_address());
    client.write_all(&4096u32.to_be_bytes()).unwrap();
    assert!(support::peer_closes(&mut client));
    assert!(support::wait_until(Duration::from_secs(5), || logged(
        "Error package. package_length=4096"
    )));
    server.stop();
}

/// A protocol that never finds a package: Workerman buffers its input without bound; here the
/// buffer stops at `max_package_size` and the connection closes.
struct NeverWhole;

impl Protocol for NeverWhole {
    type Message = Vec<u8>;
    fn input(&self, _buffer: &[u8], _connection: &TcpConnection) -> Input {
        Input::Package(0)
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Vec<u8> {
        package.to_vec()
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(data);
    }
}

#[test]
fn a_protocol_that_keeps_waiting_buffers_at_most_max_package_size() {
    capture_logs();
    let server = start(|| {
        let mut worker = Worker::with_protocol("tcp://127.0.0.1:0", NeverWhole);
        worker.set_max_package_size(64 * 1024);
        worker.on_message(|_connection: &TcpConnection, _data: Vec<u8>| {});
        worker
    });
    let mut client = connect(server.local_address());
    // Under the limit it waits (the connection stays open)...
    client.write_all(&[b'x'; 1000]).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8];
    assert!(
        client.read(&mut byte).is_err(),
        "closed while under the limit"
    );
    // ...at the limit it closes.
    let _ = client.write_all(&[b'x'; 64 * 1024]);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(support::peer_closes(&mut client));
    assert!(support::wait_until(Duration::from_secs(5), || logged(
        "Error package. package_length=0"
    )));
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// README: "Custom protocol", Protocols/MyTextProtocol.php (Text + "\n")

struct MyTextProtocol;

impl Protocol for MyTextProtocol {
    type Message = String;
    fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
        // Find the position of the first occurrence of "\n"
        match buffer.iter().position(|&byte| byte == b'\n') {
            // Not a complete package. Return 0 because the length of package can not be
            // calculated
            None => Input::Package(0),
            // Return length of the package
            Some(position) => Input::Package(position + 1),
        }
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
        String::from_utf8_lossy(package).trim().to_owned()
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(data);
        out.push(b'\n');
    }
}

#[test]
fn the_readmes_my_text_protocol_worker_answers_each_line() {
    let (lines, line) = mpsc::channel();
    let server = start(move || {
        // #### MyTextProtocol worker ####
        let mut text_worker = Worker::with_protocol("tcp://127.0.0.1:0", MyTextProtocol);
        text_worker.on_message(move |connection: &TcpConnection, data: String| {
            lines.send(data).unwrap();
            // send data to client
            connection.send("hello world ");
        });
        text_worker
    });
    let stream = connect(server.local_address());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    writer.write_all(b"first li").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    writer.write_all(b"ne\nsecond\n").unwrap();
    for expected in ["first line", "second"] {
        assert_eq!(line.recv_timeout(Duration::from_secs(5)).unwrap(), expected);
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        assert_eq!(answer, "hello world \n");
    }
    server.stop();
}
