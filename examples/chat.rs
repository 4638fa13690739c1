//! A TCP chat server on `std::net`, built on rillet's channels. It speaks
//! the line protocol of DESIGN.md "The chat example's wire protocol":
//!
//! ```text
//! cargo run --example chat -- --port 7000 [--workers 4]   # then: nc 127.0.0.1 7000
//! ```
//!
//! - The first line of stdout is `listening on 127.0.0.1:<port>` (`--port
//!   0`: the OS picks the port).
//! - On connect a client gets `welcome <id>`. Every UTF-8 line it sends is
//!   a message with a per-sender sequence number (1, 2, ...); every other
//!   connected client gets `<id>: <text>`, never the sender, in the order
//!   the sender sent them. Once every recipient has it written to its
//!   socket, the sender gets `ack <seq> <n>` (n recipients).
//! - A line that is not UTF-8 gets `error invalid utf-8` (and takes no
//!   sequence number); a line over 64 KiB gets `error line too long` and
//!   its client is disconnected. Neither touches anyone else.
//! - EOF on stdin or Ctrl-C shuts down gracefully: stop accepting, deliver
//!   and acknowledge every message already read, send `bye` to each
//!   client, close every connection, exit 0 with no thread left (the last
//!   line on stderr says how many threads are left: 1, the main thread).
//!   stderr also says when a client has left (`chat: client <id> left`:
//!   from then on nothing is sent to it).
//!
//! How it is built, thread by thread:
//! - the acceptor polls the listener and `select!`s on the shutdown
//!   channel between polls;
//! - each client has a reader (socket lines into jobs) and a writer (its
//!   outbox, a rillet `mpsc` channel, onto its socket). A writer waits only
//!   for its socket, never for a channel, so no cycle of full channels can
//!   wedge the server;
//! - `--workers N` handler threads (default 4) do the fan-out: that caps
//!   handler concurrency while any number of clients can connect. A
//!   client's jobs all go to one worker (`id % N`), which keeps its
//!   messages and acks in order; the worker hands the message to every
//!   recipient's outbox, waits for their writers' receipts (a channel with
//!   room for all of them, so a writer never blocks on it), then queues
//!   the ack;
//! - a client that leaves (EOF, a read error, an over-long line) sends a
//!   `Leave` job behind its messages: its acks still go out, then its
//!   outbox closes and its writer closes the socket;
//! - shutdown sets a flag that readers see within `POLL` (their sockets'
//!   read timeout): each stops taking lines and drops its token of the
//!   `reading` channel, which closes when the last one goes. Then the job
//!   channels close (workers drain them), then `close_with(Bye)` on every
//!   outbox: `bye` is the last line each client gets, and its writer ends
//!   the stream. A reader that stopped reads on and discards until the
//!   client closes (at most `LINGER`): a socket closed with unread input is
//!   reset, and a reset can destroy lines the client has not read yet.
//!
//! Decisions the protocol leaves open: a client whose writes block for 10 s
//! counts as gone (its messages still count as not received, never as
//! lost); a line's text is everything before its `\n` (a `\r` is kept);
//! a partial line at EOF is dropped; clients that connect after a message
//! was handed out do not get it.

use rillet::{mpsc, select};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The longest line accepted, without its `\n`.
const MAX_LINE: usize = 64 * 1024;
/// A client whose socket takes longer than this to accept a write is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines waiting for one client's writer.
const OUTBOX: usize = 1024;
/// Jobs waiting for one worker.
const JOBS: usize = 256;
/// How often a blocked reader looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(50);
/// How long a reader discards input after its last line, waiting for the
/// client to close.
const LINGER: Duration = Duration::from_secs(5);

/// What a client's writer puts on its socket.
enum Out {
    Line(String),
    /// A message for this client; the writer reports on `receipt` whether
    /// it was written.
    Deliver {
        line: Arc<str>,
        receipt: mpsc::Sender<bool>,
    },
    /// The last line, at shutdown.
    Bye,
}

/// What a worker handles.
enum Job {
    Message {
        from: Arc<Client>,
        seq: u64,
        text: String,
    },
    /// The client has gone: after its messages (same worker, in order).
    Leave(Arc<Client>),
}

struct Client {
    id: u64,
    outbox: mpsc::Sender<Out>,
}

struct Server {
    clients: Mutex<BTreeMap<u64, Arc<Client>>>,
    /// One job channel per worker.
    jobs: Vec<mpsc::Sender<Job>>,
    stopping: AtomicBool,
    /// A token per reader still taking lines: the channel closes when the
    /// last one goes.
    reading: Mutex<Option<mpsc::Sender<()>>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl Server {
    fn job(&self, client: &Client, job: Job) -> bool {
        self.jobs[(client.id % self.jobs.len() as u64) as usize]
            .send(job)
            .is_ok()
    }
}

fn main() {
    let mut port = 7000u16;
    let mut workers = 4usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value.as_deref().map(str::parse::<usize>)) {
            ("--port", Some(Ok(p))) if p <= u16::MAX as usize => port = p as u16,
            ("--workers", Some(Ok(n))) if n > 0 => workers = n,
            _ => {
                eprintln!("usage: chat [--port P (0: any)] [--workers N (at least 1)]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("chat: cannot listen on 127.0.0.1:{port}: {e}");
        std::process::exit(1);
    });
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    // Before the first line: a Ctrl-C that comes as soon as a client has
    // read it must start the graceful shutdown, not kill the process.
    let shutdown = shutdown_signal::install();
    println!("listening on {addr}");
    io::stdout().flush().ok();

    let (job_txs, job_rxs): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| mpsc::channel::<Job>(JOBS)).unzip();
    let (reading_tx, reading) = mpsc::channel::<()>(1);
    let server = Arc::new(Server {
        clients: Mutex::new(BTreeMap::new()),
        jobs: job_txs,
        stopping: AtomicBool::new(false),
        reading: Mutex::new(Some(reading_tx)),
        readers: Mutex::new(Vec::new()),
        writers: Mutex::new(Vec::new()),
    });
    let worker_threads: Vec<_> = job_rxs
        .into_iter()
        .map(|rx| {
            let server = server.clone();
            thread::spawn(move || work(&server, rx))
        })
        .collect();
    let (stop_tx, stop_rx) = mpsc::channel::<()>(1);
    let acceptor = {
        let server = server.clone();
        thread::spawn(move || accept(&server, listener, stop_rx))
    };

    shutdown.wait();

    // 1. Stop accepting.
    stop_tx.close();
    acceptor.join().expect("the acceptor does not panic");
    // 2. Stop every reader after the lines it has read.
    server.stopping.store(true, Ordering::SeqCst);
    drop(server.reading.lock().unwrap().take());
    let _ = reading.recv(); // closed: no reader takes lines any more
                            // 3. Deliver and acknowledge every message read.
    for tx in &server.jobs {
        tx.close();
    }
    for h in worker_threads {
        h.join().expect("a worker does not panic");
    }
    // 4. `bye` as each client's last line, then close every connection.
    let clients = std::mem::take(&mut *server.clients.lock().unwrap());
    for c in clients.into_values() {
        let _ = c.outbox.clone().close_with(Out::Bye);
    }
    for h in std::mem::take(&mut *server.writers.lock().unwrap()) {
        h.join().expect("a writer does not panic");
    }
    for h in std::mem::take(&mut *server.readers.lock().unwrap()) {
        h.join().expect("a reader does not panic");
    }
    drop(server);
    eprintln!("chat: stopped, {} thread(s) left", threads_left());
}

fn accept(server: &Arc<Server>, listener: TcpListener, stop: mpsc::Receiver<()>) {
    listener
        .set_nonblocking(true)
        .expect("a listener can be non-blocking");
    let mut next_id = 1u64;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = join(server, stream, next_id) {
                    eprintln!("chat: client {next_id} could not join: {e}");
                }
                next_id += 1;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("chat: accept: {e}"),
        }
        select! {
            recv(stop) -> _ => return,
            default(Duration::from_millis(10)) => {}
        }
    }
}

/// Registers a new client: its welcome, its writer, its reader.
fn join(server: &Arc<Server>, stream: TcpStream, id: u64) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(POLL))?;
    let token = server
        .reading
        .lock()
        .unwrap()
        .clone()
        .expect("the acceptor stops before the readers do");
    let (outbox, lines) = mpsc::channel::<Out>(OUTBOX);
    let client = Arc::new(Client { id, outbox });
    let out = stream.try_clone()?;
    {
        // Under the lock: a worker that hands out a message after the
        // client could read its welcome sees the client registered.
        let mut clients = server.clients.lock().unwrap();
        client
            .outbox
            .send(Out::Line(format!("welcome {id}")))
            .expect("nobody closed a new outbox");
        clients.insert(id, client.clone());
    }
    server
        .writers
        .lock()
        .unwrap()
        .push(thread::spawn(move || write(out, lines)));
    let s = server.clone();
    server
        .readers
        .lock()
        .unwrap()
        .push(thread::spawn(move || read(&s, &client, stream, token)));
    Ok(())
}

/// One line read, or why there is none.
enum Line {
    Text(Vec<u8>),
    TooLong,
    /// EOF or a broken connection (a partial line is dropped).
    End,
    /// The server is shutting down.
    Stop,
}

/// Reads up to `\n`, keeping at most `MAX_LINE` bytes of a line; looks at
/// `stopping` whenever the socket's read timeout passes.
fn read_line(r: &mut impl BufRead, stopping: &AtomicBool) -> Line {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok([]) => return Line::End,
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                if stopping.load(Ordering::SeqCst) {
                    return Line::Stop;
                }
                continue;
            }
            Err(_) => return Line::End,
        };
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE {
            return Line::TooLong;
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take + usize::from(done));
        if done {
            return Line::Text(line);
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A client's reader. `token` goes when it stops taking lines.
fn read(server: &Server, client: &Arc<Client>, stream: TcpStream, token: mpsc::Sender<()>) {
    let mut r = BufReader::new(stream);
    let mut seq = 0;
    loop {
        match read_line(&mut r, &server.stopping) {
            Line::Text(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    seq += 1;
                    let job = Job::Message {
                        from: client.clone(),
                        seq,
                        text,
                    };
                    if !server.job(client, job) {
                        break; // shutting down
                    }
                }
                Err(_) => {
                    let _ = client
                        .outbox
                        .send(Out::Line("error invalid utf-8".to_owned()));
                }
            },
            Line::TooLong => {
                let _ = client
                    .outbox
                    .send(Out::Line("error line too long".to_owned()));
                server.job(client, Job::Leave(client.clone()));
                break;
            }
            Line::End => {
                server.job(client, Job::Leave(client.clone()));
                return;
            }
            // The client stays to get its acks and its `bye`.
            Line::Stop => break,
        }
    }
    drop(token);
    linger(r.get_ref());
}

/// Discards input until the client closes, for at most `LINGER`.
fn linger(mut stream: &TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A client's writer: its outbox onto its socket. After a failed write the
/// client is gone: the rest is drained, each delivery reported unwritten.
fn write(mut stream: TcpStream, lines: mpsc::Receiver<Out>) {
    let mut alive = true;
    let mut put = |stream: &mut TcpStream, text: &str| {
        alive = alive && writeln!(stream, "{text}").is_ok();
        alive
    };
    for out in lines.iter() {
        match out {
            Out::Line(text) => {
                put(&mut stream, &text);
            }
            Out::Deliver { line, receipt } => {
                let written = put(&mut stream, &line);
                // The receipt channel has room for every recipient.
                let _ = receipt.try_send(written);
            }
            Out::Bye => {
                put(&mut stream, "bye");
            }
        }
    }
    // End of stream for the client; the socket closes when the reader's
    // handle goes too.
    let _ = stream.shutdown(Shutdown::Write);
}

fn work(server: &Server, jobs: mpsc::Receiver<Job>) {
    for job in jobs.iter() {
        match job {
            Job::Message { from, seq, text } => {
                let line: Arc<str> = format!("{}: {text}", from.id).into();
                let recipients: Vec<_> = server
                    .clients
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|c| c.id != from.id)
                    .cloned()
                    .collect();
                let (receipt, receipts) = mpsc::channel::<bool>(recipients.len().max(1));
                let mut handed = 0;
                for c in &recipients {
                    let out = Out::Deliver {
                        line: line.clone(),
                        receipt: receipt.clone(),
                    };
                    // Fails only if that client has left.
                    if c.outbox.send(out).is_ok() {
                        handed += 1;
                    }
                }
                drop(receipt);
                let received = receipts.iter().take(handed).filter(|&w| w).count();
                let _ = from.outbox.send(Out::Line(format!("ack {seq} {received}")));
            }
            Job::Leave(client) => {
                server.clients.lock().unwrap().remove(&client.id);
                client.outbox.close();
                eprintln!("chat: client {} left", client.id);
            }
        }
    }
}

/// Threads of this process (Linux: `/proc/self/task`).
fn threads_left() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Waits for EOF on stdin or Ctrl-C, on this thread (no thread is left
/// blocked on stdin): `poll(2)` on stdin and on a pipe that the SIGINT
/// handler writes to.
#[cfg(target_os = "linux")]
mod shutdown_signal {
    use std::os::raw::{c_int, c_short, c_void};
    use std::sync::atomic::{AtomicI32, Ordering};

    #[repr(C)]
    struct PollFd {
        fd: c_int,
        events: c_short,
        revents: c_short,
    }

    extern "C" {
        fn pipe(fds: *mut c_int) -> c_int;
        fn signal(sig: c_int, handler: usize) -> usize;
        fn poll(fds: *mut PollFd, n: u64, timeout: c_int) -> c_int;
        fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
        fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    }

    const SIGINT: c_int = 2;
    const POLLIN: c_short = 1;
    const POLLHUP: c_short = 0x10;
    const POLLERR: c_short = 0x8;
    static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_sigint(_: c_int) {
        let fd = WAKE_FD.load(Ordering::Relaxed);
        let byte = 1u8;
        // SAFETY: `write` is async-signal-safe; `byte` outlives the call.
        unsafe { write(fd, (&byte as *const u8).cast(), 1) };
    }

    /// The SIGINT handler, installed; [`Installed::wait`] waits for it or
    /// for EOF on stdin.
    pub struct Installed {
        /// The read end of the pipe the handler writes to.
        wake: c_int,
    }

    pub fn install() -> Installed {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors `pipe` writes.
        if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
            panic!("chat: pipe: {}", std::io::Error::last_os_error());
        }
        WAKE_FD.store(fds[1], Ordering::Relaxed);
        // SAFETY: the handler only calls the async-signal-safe `write`.
        unsafe { signal(SIGINT, on_sigint as extern "C" fn(c_int) as usize) };
        Installed { wake: fds[0] }
    }

    impl Installed {
        pub fn wait(self) {
            wait_on(self.wake);
        }
    }

    fn wait_on(wake: c_int) {
        let mut buf = [0u8; 4096];
        loop {
            let mut polled = [
                PollFd {
                    fd: 0,
                    events: POLLIN,
                    revents: 0,
                },
                PollFd {
                    fd: wake,
                    events: POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `polled` is an array of two valid `pollfd`s.
            if unsafe { poll(polled.as_mut_ptr(), 2, -1) } < 0 {
                continue; // EINTR: the handler ran; the pipe tells
            }
            if polled[1].revents != 0 {
                return; // Ctrl-C
            }
            if polled[0].revents & (POLLIN | POLLHUP | POLLERR) != 0 {
                // SAFETY: `buf` is valid for `buf.len()` bytes.
                let n = unsafe { read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    return; // EOF (or stdin unusable)
                }
            }
        }
    }
}

/// Elsewhere: EOF on stdin only.
#[cfg(not(target_os = "linux"))]
mod shutdown_signal {
    pub struct Installed;

    pub fn install() -> Installed {
        Installed
    }

    impl Installed {
        pub fn wait(self) {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        }
    }
}
