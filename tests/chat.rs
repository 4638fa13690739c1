//! Runs the chat example (`examples/chat.rs`) for real: the built binary,
//! real TCP clients on loopback (a port the OS picks), shutdown by closing
//! its stdin. Checks the wire protocol of DESIGN.md "The chat example's
//! wire protocol" line by line.
#![cfg(not(miri))] // processes and sockets

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::Duration;

/// Any single wait in this test: a hang fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

fn chat_binary() -> std::path::PathBuf {
    common::example_binary("chat")
}

/// The server process; killed if the test fails before it exits.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    /// Its stderr, line by line.
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(workers: usize) -> Server {
        let mut child = Command::new(chat_binary())
            .args(["--port", "0", "--workers", &workers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the chat example starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line {first:?} is not `listening on ..`"))
            .parse()
            .unwrap();
        assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
        let stdin = child.stdin.take();
        let (tx, stderr) = std::sync::mpsc::channel();
        let err = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in err.lines() {
                let _ = tx.send(line.unwrap());
            }
        });
        Server {
            child,
            stdin,
            addr,
            stderr,
        }
    }

    /// Waits for a line on stderr that says `what`.
    fn wait_for(&self, what: &str) {
        loop {
            let line = self
                .stderr
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no `{what}` on stderr"));
            if line == what {
                return;
            }
        }
    }

    /// EOF on stdin: the graceful shutdown starts.
    fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// The exit status and the rest of stderr.
    fn wait(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let err: Vec<_> = self.stderr.iter().collect();
        (status, err.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    id: u64,
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Client {
            id: 0,
            r: BufReader::new(s),
            w,
        };
        let welcome = c.line().expect("a welcome line");
        c.id = welcome
            .strip_prefix("welcome ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{welcome:?} is not `welcome <id>`"));
        c
    }

    fn send(&mut self, text: &str) {
        self.w.write_all(text.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }

    /// The next line, or `None` at EOF.
    fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = self.r.read_until(b'\n', &mut buf).expect("a line in time");
        if n == 0 {
            return None;
        }
        assert_eq!(buf.pop(), Some(b'\n'), "a line ends with \\n");
        Some(String::from_utf8(buf).expect("the server writes UTF-8"))
    }
}

/// What a client read: messages by sender, acks, and anything else.
#[derive(Default, Debug)]
struct Seen {
    messages: BTreeMap<u64, Vec<String>>,
    acks: Vec<(u64, u64)>,
    other: Vec<String>,
}

impl Seen {
    fn take(&mut self, line: String) {
        if let Some(ack) = line.strip_prefix("ack ") {
            let (seq, n) = ack.split_once(' ').expect("ack <seq> <n>");
            self.acks.push((seq.parse().unwrap(), n.parse().unwrap()));
        } else if let Some((id, text)) = line
            .split_once(": ")
            .and_then(|(id, t)| Some((id.parse::<u64>().ok()?, t)))
        {
            self.messages.entry(id).or_default().push(text.to_owned());
        } else {
            self.other.push(line);
        }
    }

    fn count(&self) -> usize {
        self.messages.values().map(Vec::len).sum::<usize>() + self.acks.len()
    }
}

/// Reads until `want` messages plus acks have arrived.
fn read_until(c: &mut Client, seen: &mut Seen, want: usize) {
    while seen.count() < want {
        let line = c.line().expect("the connection stays open");
        seen.take(line);
    }
}

#[test]
fn chat_server_end_to_end() {
    const N: usize = 40;
    let mut server = Server::start(2);
    let mut clients: Vec<_> = (0..3).map(|_| Client::connect(server.addr)).collect();
    let ids: Vec<u64> = clients.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 2, 3], "ids in connection order");

    // Everyone talks at once; everyone reads the others' messages in each
    // sender's order, never its own, and an ack per message it sent.
    let handles: Vec<_> = clients
        .drain(..)
        .map(|mut c| {
            thread::spawn(move || {
                let mut seen = Seen::default();
                for i in 1..=N {
                    c.send(&format!("m{i} from {}", c.id));
                }
                read_until(&mut c, &mut seen, 2 * N + N);
                (c, seen)
            })
        })
        .collect();
    for h in handles {
        let (c, seen) = h.join().unwrap();
        assert!(seen.other.is_empty(), "{:?}", seen.other);
        assert!(
            !seen.messages.contains_key(&c.id),
            "a message came back to its sender"
        );
        for (&from, texts) in &seen.messages {
            let want: Vec<_> = (1..=N).map(|i| format!("m{i} from {from}")).collect();
            assert_eq!(
                texts, &want,
                "client {} got {from}'s messages out of order",
                c.id
            );
        }
        let want: Vec<_> = (1..=N as u64).map(|s| (s, 2)).collect();
        assert_eq!(seen.acks, want, "client {}'s acks", c.id);
        clients.push(c);
    }
    clients.sort_by_key(|c| c.id);

    // Bad input: invalid UTF-8 gets an error, and the client stays.
    let mut bad = Client::connect(server.addr);
    bad.w.write_all(b"\xff\xfe oops\n").unwrap();
    assert_eq!(bad.line().as_deref(), Some("error invalid utf-8"));
    bad.send("still here");
    let from_bad = format!("{}: still here", bad.id);
    for c in &mut clients {
        assert_eq!(c.line(), Some(from_bad.clone()));
    }
    assert_eq!(
        bad.line().as_deref(),
        Some("ack 1 3"),
        "no sequence number for the error"
    );
    // A line over 64 KiB: an error, then that client is disconnected.
    let mut long = Client::connect(server.addr);
    let mut line = vec![b'x'; 64 * 1024 + 1];
    line.push(b'\n');
    long.w.write_all(&line).unwrap();
    assert_eq!(long.line().as_deref(), Some("error line too long"));
    let long_id = long.id;
    assert_eq!(long.line(), None, "disconnected after a line too long");
    drop(long);
    server.wait_for(&format!("chat: client {long_id} left"));
    // A client that disconnects in the middle of a line.
    let mut partial = Client::connect(server.addr);
    partial.w.write_all(b"half a mess").unwrap();
    let partial_id = partial.id;
    drop(partial);
    server.wait_for(&format!("chat: client {partial_id} left"));
    // A line of exactly 64 KiB is not too long.
    let full = "y".repeat(64 * 1024);
    bad.send(&full);
    for c in &mut clients {
        assert_eq!(c.line(), Some(format!("{}: {full}", bad.id)));
    }
    assert_eq!(bad.line().as_deref(), Some("ack 2 3"));
    // The others are still served, and only they get messages.
    clients[0].send("after");
    for c in clients[1..].iter_mut().chain([&mut bad]) {
        assert_eq!(c.line(), Some(format!("{}: after", ids[0])));
    }
    assert_eq!(
        clients[0].line(),
        Some(format!("ack {} 3", N + 1)),
        "gone clients are not counted"
    );

    // Shutdown while messages are in flight: every message the server read
    // is delivered and acknowledged, then `bye` is every client's last line.
    let mut sender = clients.remove(0);
    for i in 1..=200 {
        sender.send(&format!("late {i}"));
    }
    // The first late message reached the others: the server is reading
    // them now. Shut down.
    let first = clients[0].line();
    assert_eq!(first, Some(format!("{}: late 1", sender.id)));
    server.close_stdin();
    let drain = |c: &mut Client| {
        let mut lines = Vec::new();
        while let Some(l) = c.line() {
            lines.push(l);
        }
        assert_eq!(lines.last().map(String::as_str), Some("bye"), "{lines:?}");
        lines.pop();
        lines
    };
    let mut got = vec![vec![first.unwrap()]; 1];
    got[0].extend(drain(&mut clients[0]));
    got.push(drain(&mut clients[1]));
    got.push(drain(&mut bad));
    let acks = drain(&mut sender);
    // The clients close their ends (the server waits for that, briefly, so
    // as not to reset connections with unread input).
    let sender_id = sender.id;
    drop((clients, bad, sender));
    let (status, stderr) = server.wait();
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert!(
        stderr.contains("stopped, 1 thread(s) left"),
        "threads left behind; stderr: {stderr}"
    );
    // Every recipient got the same messages, in order, from late 1 on.
    let k = got[0].len();
    let want: Vec<_> = (1..=k).map(|i| format!("{sender_id}: late {i}")).collect();
    for g in &got {
        assert_eq!(g, &want, "the recipients disagree");
    }
    // And each of them was acknowledged, to all three.
    let want_acks: Vec<_> = (1..=k).map(|i| format!("ack {} 3", N + 1 + i)).collect();
    assert_eq!(acks, want_acks, "an acked message is a delivered one");
}

/// Ctrl-C (SIGINT) starts the same graceful shutdown as EOF on stdin: a
/// message read before it is delivered and acknowledged, each client gets
/// `bye` last, the process exits 0 with no thread left. Also when the
/// signal comes the moment the first line is out (before the fix the
/// handler was installed after that line, and such a signal killed the
/// process).
#[cfg(target_os = "linux")]
#[test]
fn chat_ctrl_c_shuts_down_gracefully() {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGINT: i32 = 2;
    let interrupt = |server: &Server| {
        let pid = i32::try_from(server.child.id()).unwrap();
        // SAFETY: kill(2) sends a signal to our own child; no memory is
        // involved.
        assert_eq!(unsafe { kill(pid, SIGINT) }, 0);
    };
    // At once, with no client.
    let mut server = Server::start(2);
    interrupt(&server);
    let (status, stderr) = server.wait();
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    // With two clients and a message on its way.
    let mut server = Server::start(2);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.send("before");
    assert_eq!(
        b.line().as_deref(),
        Some(format!("{}: before", a.id).as_str())
    );
    interrupt(&server);
    assert_eq!(a.line().as_deref(), Some("ack 1 1"));
    assert_eq!(a.line().as_deref(), Some("bye"));
    assert_eq!(a.line(), None);
    assert_eq!(b.line().as_deref(), Some("bye"));
    assert_eq!(b.line(), None);
    drop((a, b));
    let (status, stderr) = server.wait();
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert!(
        stderr.contains("stopped, 1 thread(s) left"),
        "threads left behind; stderr: {stderr}"
    );
}

#[test]
fn chat_refuses_bad_arguments() {
    let out = Command::new(chat_binary())
        .args(["--workers", "0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: chat"));
}
