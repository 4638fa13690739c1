//! Soak test: every channel kind, policy, close and batch path, across
//! threads, round after round, with checksums and drop counters.
//!
//! ```text
//! cargo run --release --example soak -- --messages 1000000 [--seconds 60] [--seed 1]
//! ```
//!
//! `--messages N` (default 10 000 000) is how many messages to send
//! successfully in all; `--seconds S` stops starting new rounds after `S`
//! seconds. Each round runs one scenario on fresh threads, cycling through:
//! spsc, mpsc with 2-4 producers and broadcast with 1-2 senders and 2-3
//! subscribers, each under every overflow policy it supports, and the mpsc
//! rendezvous channel (capacity 0). A round picks at random a capacity, how
//! it ends (senders dropped, `close` from the senders, `close_with` a final
//! message, `close` from a receiver part-way, or the receiver dropped with
//! messages still buffered), and each thread mixes `send`, `try_send`,
//! `send_timeout`, `send_deadline` and `send_many` batches, or `recv`,
//! `try_recv`, `recv_timeout`, `recv_deadline` and `recv_many` batches.
//!
//! Every message carries its producer, a sequence number and a checksum of
//! both; every instance is counted when made (or cloned) and when dropped,
//! and a drop the channel makes (not a receiver's, not a failed send's) is
//! counted with its checksum. Each round checks:
//! - every message received is intact (checksum), arrives in its
//!   producer's order, and never twice;
//! - under `Block`, each producer's messages sent `Ok` are received exactly
//!   once, with no gap; under the dropping policies, received + dropped by
//!   the channel = sent `Ok`, in count and in checksum, and what the channel
//!   dropped is exactly `dropped()` (plus what a dropped receiver still
//!   held, which must go at once);
//! - broadcast: each subscriber that stays receives every message sent but
//!   those it is told it missed: received + `Lagged` totals = sent, and the
//!   gaps it sees are exactly the lags reported (count and checksum); under
//!   `Block` nothing is missed; `dropped()` lies between the largest lag
//!   and the sum of lags;
//! - a `close_with` message is the last one received; exactly one closing
//!   call wins;
//! - at the end of the round, with every handle gone, every message made
//!   (clones included) has been dropped exactly once: nothing leaked,
//!   nothing dropped twice.
//!
//! Any failure panics with a message saying what was lost, repeated or
//! leaked, names the round (its scenario, and the seed that replays it with
//! `--seed`), and ends the process with exit code 101. A watchdog ends it
//! with exit code 3 if no message moves for 60 s: a lost wake-up, or a lost
//! message that left a thread waiting. A progress line is printed about
//! every second, and a summary line at the end.

use rillet::{
    broadcast, mpsc, spsc, Overflow, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

// ---- messages and their tally ----

/// A message: who sent it, its place in that producer's sequence, and a
/// checksum of both. `claimed` is set by whoever takes charge of it (the
/// receiver, or a sender it came back to); a drop of an unclaimed message is
/// one the channel made.
#[derive(Debug)]
struct Msg {
    producer: u32,
    seq: u64,
    check: u64,
    /// The final message of a `close_with`.
    last: bool,
    claimed: bool,
}

/// The checksum of message `seq` of `producer` (splitmix64).
fn mix(producer: u32, seq: u64) -> u64 {
    let mut z = seq
        .wrapping_add(u64::from(producer) << 40)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Msg {
    fn new(producer: u32, seq: u64) -> Self {
        tally(|t| t.made += 1);
        Msg {
            producer,
            seq,
            check: mix(producer, seq),
            last: false,
            claimed: false,
        }
    }

    /// Takes charge of the message: its drop is not the channel's.
    fn claim(mut self) {
        self.claimed = true;
    }
}

impl Clone for Msg {
    fn clone(&self) -> Self {
        tally(|t| t.made += 1);
        Msg {
            claimed: false,
            ..*self
        }
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        let (claimed, check) = (self.claimed, self.check);
        tally(|t| {
            t.drops += 1;
            if !claimed {
                t.chan_drops += 1;
                t.chan_sum = t.chan_sum.wrapping_add(check);
            }
        });
    }
}

/// Instances made and dropped, and the drops the channel made (count and
/// checksum). Kept per thread (no shared counter on the hot path) and
/// added up when the thread is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    made: u64,
    drops: u64,
    chan_drops: u64,
    chan_sum: u64,
}

impl Tally {
    const ZERO: Tally = Tally {
        made: 0,
        drops: 0,
        chan_drops: 0,
        chan_sum: 0,
    };

    fn add(&mut self, o: Tally) {
        self.made += o.made;
        self.drops += o.drops;
        self.chan_drops += o.chan_drops;
        self.chan_sum = self.chan_sum.wrapping_add(o.chan_sum);
    }
}

thread_local! {
    static TALLY: Cell<Tally> = const { Cell::new(Tally::ZERO) };
}

/// The round's total, from every thread that has finished.
static ROUND_TALLY: Mutex<Tally> = Mutex::new(Tally::ZERO);

fn tally(f: impl FnOnce(&mut Tally)) {
    TALLY.with(|c| {
        let mut t = c.get();
        f(&mut t);
        c.set(t);
    });
}

fn local_tally() -> Tally {
    TALLY.with(|c| c.get())
}

/// Adds this thread's tally to the round's.
fn flush() {
    let t = TALLY.with(|c| c.replace(Tally::ZERO));
    ROUND_TALLY.lock().unwrap().add(t);
}

/// Runs a thread's work and then flushes its tally; `f` owns the thread's
/// handles, so they (and what they drop) are gone by then.
fn worker<R>(f: impl FnOnce() -> R) -> R {
    let r = f();
    flush();
    r
}

// ---- progress and the watchdog ----

/// Messages sent `Ok` so far (producers add in steps).
static SENT: AtomicU64 = AtomicU64::new(0);
/// Messages received so far (consumers add in steps).
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static ROUND: Mutex<String> = Mutex::new(String::new());
static DONE: AtomicBool = AtomicBool::new(false);
const STALL: Duration = Duration::from_secs(60);

fn monitor(start: Instant) {
    let mut seen = (0, 0);
    let mut moved = Instant::now();
    let (mut printed, mut printed_sent) = (Instant::now(), 0);
    while !DONE.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
        let now = (
            SENT.load(Ordering::Relaxed),
            RECEIVED.load(Ordering::Relaxed),
        );
        if now != seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() > STALL {
            eprintln!(
                "soak: FAILED: no message moved for {} s in {}: a lost wake-up, or a lost \
                 message that left a thread waiting",
                STALL.as_secs(),
                ROUND.lock().unwrap()
            );
            std::process::exit(3);
        }
        if printed.elapsed() >= Duration::from_secs(1) {
            let rate = (now.0 - printed_sent) as f64 / printed.elapsed().as_secs_f64();
            println!(
                "soak: {:6.1} s  {:>11} messages  {:6.2} M msg/s  {}",
                start.elapsed().as_secs_f64(),
                now.0,
                rate / 1e6,
                ROUND.lock().unwrap()
            );
            (printed, printed_sent) = (Instant::now(), now.0);
        }
    }
}

// ---- a small random number generator (xorshift64*) ----

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(mix(0x5eed, seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// A short timeout, sometimes zero.
    fn timeout(&mut self) -> Duration {
        match self.below(4) {
            0 => Duration::ZERO,
            _ => Duration::from_micros(self.below(200)),
        }
    }
}

/// Lets the other threads run (the machine may have fewer CPUs than
/// threads).
fn pause(spins: &mut u32) {
    *spins += 1;
    if *spins < 16 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

// ---- one interface over the kinds ----

trait Tx: Send {
    fn send(&self, m: Msg) -> Result<(), SendError<Msg>>;
    fn try_send(&self, m: Msg) -> Result<(), TrySendError<Msg>>;
    fn send_timeout(&self, m: Msg, d: Duration) -> Result<(), SendTimeoutError<Msg>>;
    fn send_deadline(&self, m: Msg, d: Instant) -> Result<(), SendTimeoutError<Msg>>;
    fn send_many<I: IntoIterator<Item = Msg>>(&self, it: I) -> Result<usize, SendError<Vec<Msg>>>;
    fn close(&self) -> bool;
    fn close_with(self, m: Msg) -> Result<(), SendError<Msg>>;
}

macro_rules! impl_tx {
    ($($t:ty),*) => {$(
        impl Tx for $t {
            fn send(&self, m: Msg) -> Result<(), SendError<Msg>> {
                <$t>::send(self, m)
            }
            fn try_send(&self, m: Msg) -> Result<(), TrySendError<Msg>> {
                <$t>::try_send(self, m)
            }
            fn send_timeout(&self, m: Msg, d: Duration) -> Result<(), SendTimeoutError<Msg>> {
                <$t>::send_timeout(self, m, d)
            }
            fn send_deadline(&self, m: Msg, d: Instant) -> Result<(), SendTimeoutError<Msg>> {
                <$t>::send_deadline(self, m, d)
            }
            fn send_many<I: IntoIterator<Item = Msg>>(
                &self,
                it: I,
            ) -> Result<usize, SendError<Vec<Msg>>> {
                <$t>::send_many(self, it)
            }
            fn close(&self) -> bool {
                <$t>::close(self)
            }
            fn close_with(self, m: Msg) -> Result<(), SendError<Msg>> {
                <$t>::close_with(self, m)
            }
        }
    )*};
}

impl_tx!(spsc::Sender<Msg>, mpsc::Sender<Msg>, broadcast::Sender<Msg>);

/// The receiver of spsc and mpsc (broadcast has its own receive errors).
trait Rx: Send {
    fn recv(&self) -> Result<Msg, RecvError>;
    fn try_recv(&self) -> Result<Msg, TryRecvError>;
    fn recv_timeout(&self, d: Duration) -> Result<Msg, RecvTimeoutError>;
    fn recv_deadline(&self, d: Instant) -> Result<Msg, RecvTimeoutError>;
    fn recv_many(&self, buf: &mut Vec<Msg>, max: usize) -> Result<usize, RecvError>;
    fn close(&self) -> bool;
    fn len(&self) -> usize;
    fn dropped(&self) -> u64;
}

macro_rules! impl_rx {
    ($($t:ty),*) => {$(
        impl Rx for $t {
            fn recv(&self) -> Result<Msg, RecvError> {
                <$t>::recv(self)
            }
            fn try_recv(&self) -> Result<Msg, TryRecvError> {
                <$t>::try_recv(self)
            }
            fn recv_timeout(&self, d: Duration) -> Result<Msg, RecvTimeoutError> {
                <$t>::recv_timeout(self, d)
            }
            fn recv_deadline(&self, d: Instant) -> Result<Msg, RecvTimeoutError> {
                <$t>::recv_deadline(self, d)
            }
            fn recv_many(&self, buf: &mut Vec<Msg>, max: usize) -> Result<usize, RecvError> {
                <$t>::recv_many(self, buf, max)
            }
            fn close(&self) -> bool {
                <$t>::close(self)
            }
            fn len(&self) -> usize {
                <$t>::len(self)
            }
            fn dropped(&self) -> u64 {
                <$t>::dropped(self)
            }
        }
    )*};
}

impl_rx!(spsc::Receiver<Msg>, mpsc::Receiver<Msg>);

// ---- rounds ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spsc,
    Mpsc,
    Rendezvous,
    Broadcast,
}

/// How a round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The senders finish and are dropped: the last one closes.
    DropSenders,
    /// Every sender calls `close` when done.
    CloseTx,
    /// Producer 0 ends with `close_with`; the others are dropped.
    CloseWith,
    /// A receiver calls `close` after this many messages, and drains.
    RxClose(u64),
    /// (spsc, mpsc) The receiver closes after this many messages, waits
    /// for the producers to stop, and is dropped with what it still holds.
    /// (broadcast) One subscriber leaves after this many messages.
    RxDrop(u64),
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    index: u64,
    kind: Kind,
    policy: Overflow,
    cap: usize,
    producers: usize,
    subscribers: usize,
    /// Messages each producer tries to send.
    quota: u64,
    ending: Ending,
    seed: u64,
}

/// The scenarios, in the order rounds cycle through them.
const SCENARIOS: [(Kind, Overflow); 9] = [
    (Kind::Spsc, Overflow::Block),
    (Kind::Mpsc, Overflow::Block),
    (Kind::Broadcast, Overflow::Block),
    (Kind::Spsc, Overflow::DropNewest),
    (Kind::Mpsc, Overflow::DropNewest),
    (Kind::Rendezvous, Overflow::Block),
    (Kind::Spsc, Overflow::DropOldest),
    (Kind::Mpsc, Overflow::DropOldest),
    (Kind::Broadcast, Overflow::DropOldest),
];

impl Plan {
    fn describe(&self) -> String {
        let kind = match self.kind {
            Kind::Spsc => "spsc",
            Kind::Mpsc => "mpsc",
            Kind::Rendezvous => "mpsc rendezvous",
            Kind::Broadcast => "broadcast",
        };
        format!(
            "round {}: {kind} {:?} cap {}, {} producer(s) x {}, {} receiver(s), ends {:?}",
            self.index,
            self.policy,
            self.cap,
            self.producers,
            self.quota,
            self.subscribers,
            self.ending
        )
    }
}

fn plan(index: u64, seed: u64, budget: u64) -> Plan {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x1000_0001));
    let (kind, policy) = SCENARIOS[(index % SCENARIOS.len() as u64) as usize];
    let cap = match kind {
        Kind::Rendezvous => 0,
        _ => rng.pick(&[1, 2, 7, 64, 1000]),
    };
    let producers = match kind {
        Kind::Spsc => 1,
        Kind::Mpsc | Kind::Rendezvous => 2 + rng.below(3) as usize,
        Kind::Broadcast => 1 + rng.below(2) as usize,
    };
    let subscribers = match kind {
        Kind::Broadcast => 2 + rng.below(2) as usize,
        _ => 1,
    };
    // Rendezvous moves a message per meeting: fewer of them.
    let budget = match kind {
        Kind::Rendezvous => (budget / 8).max(1),
        _ => budget,
    };
    let quota = (budget / producers as u64).max(1);
    let total = quota * producers as u64;
    let ending = match rng.below(5) {
        0 => Ending::DropSenders,
        1 => Ending::CloseTx,
        2 => Ending::CloseWith,
        3 => Ending::RxClose(rng.below(total)),
        _ => Ending::RxDrop(rng.below(total)),
    };
    Plan {
        index,
        kind,
        policy,
        cap,
        producers,
        subscribers,
        quota,
        ending,
        seed: rng.next(),
    }
}

/// What a producer sent.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    /// Messages sent `Ok` (a prefix of the producer's sequence: a producer
    /// stops at the first `Closed`).
    n: u64,
    sum: u64,
    /// How many of its `close` calls returned `true` (0 or 1), and
    /// whether its `close_with` went through.
    closed: u64,
    final_ok: bool,
    /// How many of `n` the progress line knows about.
    reported: u64,
}

impl Sent {
    fn ok(&mut self, p: u32, seq: u64) {
        self.n += 1;
        self.sum = self.sum.wrapping_add(mix(p, seq));
        if self.n - self.reported >= 4096 {
            self.report();
        }
    }

    fn report(&mut self) {
        SENT.fetch_add(self.n - self.reported, Ordering::Relaxed);
        self.reported = self.n;
    }
}

/// Sends `m` by `how` (0 `send`, 1 `try_send`, 2 `send_timeout`, 3
/// `send_deadline`), retrying on `Full` or `Timeout`; `Err` hands the
/// message back on `Closed`.
fn deliver<T: Tx>(tx: &T, mut m: Msg, how: u64, rng: &mut Rng) -> Result<(), Msg> {
    let mut spins = 0;
    loop {
        m = match how {
            1 if spins < 32 => match tx.try_send(m) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(b)) => b,
                Err(TrySendError::Closed(b)) => return Err(b),
            },
            2 | 3 => {
                let r = if how == 2 {
                    tx.send_timeout(m, rng.timeout())
                } else {
                    tx.send_deadline(m, Instant::now() + rng.timeout())
                };
                match r {
                    Ok(()) => return Ok(()),
                    Err(SendTimeoutError::Timeout(b)) => b,
                    Err(SendTimeoutError::Closed(b)) => return Err(b),
                }
            }
            _ => return tx.send(m).map_err(|SendError(b)| b),
        };
        pause(&mut spins);
    }
}

/// What the threads of a spsc/mpsc round tell each other.
#[derive(Default)]
struct Shared {
    /// Producers done sending.
    done: AtomicUsize,
    /// `RxDrop`: the receiver is gone (the producers keep their senders
    /// until then, so that the receiver's drop, not the channel's, must
    /// drop what it held).
    rx_gone: AtomicBool,
}

/// One producer: `quota` messages by a random mix of single sends and
/// batches, then the round's ending.
fn produce<T: Tx>(tx: T, p: u32, plan: &Plan, shared: &Shared) -> Sent {
    let mut rng = Rng::new(plan.seed ^ (u64::from(p) << 32));
    let mut s = Sent::default();
    let mut seq = 0;
    let mut closed = false;
    while seq < plan.quota && !closed {
        let how = rng.below(16);
        if how < 6 {
            let k = (1 + rng.below(64)).min(plan.quota - seq);
            let taken = Cell::new(0);
            let r = tx.send_many((seq..seq + k).map(|q| {
                taken.set(taken.get() + 1);
                Msg::new(p, q)
            }));
            let taken = taken.get();
            match r {
                Ok(n) => {
                    assert_eq!(n as u64, taken, "send_many's count");
                    assert_eq!(taken, k, "send_many returned Ok before taking every item");
                    for q in seq..seq + k {
                        s.ok(p, q);
                    }
                    seq += k;
                }
                Err(SendError(back)) => {
                    // The messages taken but not enqueued, a suffix of them.
                    let went = taken - back.len() as u64;
                    for (i, b) in back.into_iter().enumerate() {
                        assert_eq!(
                            (b.producer, b.seq),
                            (p, seq + went + i as u64),
                            "send_many handed back the wrong message"
                        );
                        b.claim();
                    }
                    for q in seq..seq + went {
                        s.ok(p, q);
                    }
                    seq += went;
                    closed = true;
                }
            }
        } else {
            match deliver(&tx, Msg::new(p, seq), (how - 6) % 4, &mut rng) {
                Ok(()) => {
                    s.ok(p, seq);
                    seq += 1;
                }
                Err(b) => {
                    assert_eq!(
                        (b.producer, b.seq),
                        (p, seq),
                        "a send handed back another message"
                    );
                    b.claim();
                    closed = true;
                }
            }
        }
    }
    let last = shared.done.fetch_add(1, Ordering::AcqRel) + 1 == plan.producers;
    match plan.ending {
        Ending::RxDrop(_) if plan.kind != Kind::Broadcast => {
            // The last one closes (a receiver waiting for more wakes up),
            // then they all wait, senders alive, for the receiver to go.
            if last {
                s.closed = u64::from(tx.close());
            }
            while !shared.rx_gone.load(Ordering::Acquire) {
                thread::sleep(Duration::from_micros(100));
            }
        }
        Ending::CloseTx => s.closed = u64::from(tx.close()),
        Ending::CloseWith if p == 0 => {
            let mut m = Msg::new(p, seq);
            m.last = true;
            match tx.close_with(m) {
                Ok(()) => {
                    s.ok(p, seq);
                    s.final_ok = true;
                }
                Err(SendError(b)) => b.claim(),
            }
        }
        _ => {}
    }
    s.report();
    s
}

/// What one receiver got.
#[derive(Debug, Default)]
struct Got {
    n: u64,
    sum: u64,
    /// Next sequence number expected from each producer.
    next: Vec<u64>,
    /// Broadcast: the messages it was told it missed, and the checksum of
    /// the gaps it saw.
    lagged: u64,
    gap_n: u64,
    gap_sum: u64,
    /// Whether it saw the final message of a `close_with` (then nothing
    /// may follow).
    saw_last: bool,
    closed: u64,
    /// Messages still held when the receiver was dropped.
    leftover: u64,
    /// Left the round early (broadcast `RxDrop`).
    left: bool,
    reported: u64,
}

impl Got {
    fn new(producers: usize) -> Self {
        Got {
            next: vec![0; producers],
            ..Got::default()
        }
    }

    /// Checks one received message and takes charge of it.
    fn take(&mut self, m: Msg, plan: &Plan, who: &str) {
        assert_eq!(
            m.check,
            mix(m.producer, m.seq),
            "{who}: corrupted message {m:?}"
        );
        assert!(
            !self.saw_last,
            "{who}: message {m:?} arrived after the close_with message"
        );
        let p = m.producer as usize;
        let want = self.next[p];
        if plan.policy == Overflow::Block {
            assert!(
                m.seq == want,
                "{who}: from producer {p} expected message {want}, got {}: {}",
                m.seq,
                if m.seq < want {
                    "a message received twice (or out of order)"
                } else {
                    "a message lost under Block"
                }
            );
        } else {
            assert!(
                m.seq >= want,
                "{who}: from producer {p} got message {} after {}: received twice or out of order",
                m.seq,
                want - 1
            );
            if plan.kind == Kind::Broadcast {
                for q in want..m.seq {
                    self.gap_n += 1;
                    self.gap_sum = self.gap_sum.wrapping_add(mix(m.producer, q));
                }
            }
        }
        self.next[p] = m.seq + 1;
        self.saw_last = m.last;
        self.n += 1;
        self.sum = self.sum.wrapping_add(m.check);
        if self.n - self.reported >= 4096 {
            self.report();
        }
        m.claim();
    }

    fn report(&mut self) {
        RECEIVED.fetch_add(self.n - self.reported, Ordering::Relaxed);
        self.reported = self.n;
    }
}

/// One receive attempt.
enum Step {
    One(Msg),
    /// `recv_many` filled the buffer.
    Batch,
    /// Nothing yet (`Empty`, `Timeout`).
    Idle,
    Lagged(u64),
    Closed,
}

/// The spsc/mpsc consumer: receives by a random mix until `Closed`, or
/// ends as the round says. Returns the receiver, so that `dropped()` is
/// read once every producer is done, or, if it dropped the receiver, what
/// `dropped()` said just before.
fn consume<R: Rx>(rx: R, plan: &Plan, shared: &Shared) -> (Got, Result<R, u64>) {
    let mut rng = Rng::new(plan.seed ^ 0xC0);
    let mut got = Got::new(plan.producers);
    let mut buf = Vec::with_capacity(64);
    let mut spins = 0;
    let mut closed_by_us = false;
    loop {
        match plan.ending {
            Ending::RxClose(k) if got.n >= k && !closed_by_us => {
                closed_by_us = true;
                got.closed = u64::from(rx.close());
            }
            Ending::RxDrop(k)
                if got.n >= k || shared.done.load(Ordering::Acquire) == plan.producers =>
            {
                break;
            }
            _ => {}
        }
        // After a few idle polls in a row, a blocking receive: a consumer
        // that only polls while its producers are parked mostly measures
        // the scheduler.
        let op = if spins >= 8 {
            rng.below(5)
        } else {
            rng.below(8)
        };
        let step = match op {
            0..=2 => match rx.recv_many(&mut buf, 1 + rng.below(64) as usize) {
                Ok(n) => {
                    assert!(n > 0 && n == buf.len(), "recv_many's count");
                    Step::Batch
                }
                Err(RecvError) => Step::Closed,
            },
            3 | 4 => rx.recv().map_or(Step::Closed, Step::One),
            5 => match rx.try_recv() {
                Ok(m) => Step::One(m),
                Err(TryRecvError::Empty) => Step::Idle,
                Err(TryRecvError::Closed) => Step::Closed,
            },
            n => {
                let r = if n == 6 {
                    rx.recv_timeout(rng.timeout())
                } else {
                    rx.recv_deadline(Instant::now() + rng.timeout())
                };
                match r {
                    Ok(m) => Step::One(m),
                    Err(RecvTimeoutError::Timeout) => Step::Idle,
                    Err(RecvTimeoutError::Closed) => Step::Closed,
                }
            }
        };
        match step {
            Step::One(m) => {
                spins = 0;
                got.take(m, plan, "receiver");
            }
            Step::Batch => {
                spins = 0;
                buf.drain(..).for_each(|m| got.take(m, plan, "receiver"));
            }
            Step::Idle => pause(&mut spins),
            Step::Lagged(_) => unreachable!(),
            Step::Closed => break,
        }
    }
    got.report();
    if let Ending::RxDrop(_) = plan.ending {
        // Close, let the producers stop (they keep their senders), and drop
        // the receiver with what it still holds.
        got.closed = u64::from(rx.close());
        while shared.done.load(Ordering::Acquire) < plan.producers {
            thread::yield_now();
        }
        // Every producer is done: both are final.
        let (len, dropped) = (rx.len() as u64, rx.dropped());
        let before = local_tally();
        drop(rx);
        let after = local_tally();
        shared.rx_gone.store(true, Ordering::Release);
        assert_eq!(
            (
                after.drops - before.drops,
                after.chan_drops - before.chan_drops
            ),
            (len, len),
            "dropping the receiver (a sender still alive) must drop the {len} messages it held, \
             at once"
        );
        got.leftover = len;
        return (got, Err(dropped));
    }
    (got, Ok(rx))
}

/// A broadcast subscriber: receives until `Closed` (or leaves early),
/// counting lags. Returns the receiver unless it left.
fn subscribe(
    rx: broadcast::Receiver<Msg>,
    id: usize,
    plan: &Plan,
) -> (Got, Option<broadcast::Receiver<Msg>>) {
    use broadcast::{RecvError, RecvTimeoutError, TryRecvError};
    let mut rng = Rng::new(plan.seed ^ (0x5B << 8) ^ id as u64);
    let mut got = Got::new(plan.producers);
    let mut buf = Vec::with_capacity(64);
    let mut spins = 0;
    let mut closed_by_us = false;
    let who = format!("subscriber {id}");
    loop {
        match plan.ending {
            Ending::RxClose(k) if id == 0 && got.n >= k && !closed_by_us => {
                closed_by_us = true;
                got.closed = u64::from(rx.close());
            }
            Ending::RxDrop(k) if id == 1 && got.n >= k => {
                got.left = true;
                got.report();
                return (got, None);
            }
            _ => {}
        }
        // After a few idle polls in a row, a blocking receive: a consumer
        // that only polls while its producers are parked mostly measures
        // the scheduler.
        let op = if spins >= 8 {
            rng.below(5)
        } else {
            rng.below(8)
        };
        let step = match op {
            0..=2 => match rx.recv_many(&mut buf, 1 + rng.below(64) as usize) {
                Ok(n) => {
                    assert!(n > 0 && n == buf.len(), "{who}: recv_many's count");
                    Step::Batch
                }
                Err(RecvError::Lagged(n)) => Step::Lagged(n),
                Err(RecvError::Closed) => Step::Closed,
            },
            3 | 4 => match rx.recv() {
                Ok(m) => Step::One(m),
                Err(RecvError::Lagged(n)) => Step::Lagged(n),
                Err(RecvError::Closed) => Step::Closed,
            },
            5 => match rx.try_recv() {
                Ok(m) => Step::One(m),
                Err(TryRecvError::Lagged(n)) => Step::Lagged(n),
                Err(TryRecvError::Empty) => Step::Idle,
                Err(TryRecvError::Closed) => Step::Closed,
            },
            n => {
                let r = if n == 6 {
                    rx.recv_timeout(rng.timeout())
                } else {
                    rx.recv_deadline(Instant::now() + rng.timeout())
                };
                match r {
                    Ok(m) => Step::One(m),
                    Err(RecvTimeoutError::Lagged(n)) => Step::Lagged(n),
                    Err(RecvTimeoutError::Timeout) => Step::Idle,
                    Err(RecvTimeoutError::Closed) => Step::Closed,
                }
            }
        };
        match step {
            Step::One(m) => {
                spins = 0;
                got.take(m, plan, &who);
            }
            Step::Batch => {
                spins = 0;
                buf.drain(..).for_each(|m| got.take(m, plan, &who));
            }
            Step::Idle => pause(&mut spins),
            Step::Lagged(n) => {
                assert!(
                    plan.policy == Overflow::DropOldest && n > 0,
                    "{who}: told it lagged by {n} under {:?}",
                    plan.policy
                );
                got.lagged += n;
            }
            Step::Closed => break,
        }
    }
    got.report();
    (got, Some(rx))
}

/// What a round did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    sent: u64,
    received: u64,
    dropped: u64,
    lagged: u64,
}

fn check_round_common(plan: &Plan, sent: &[Sent], closes: u64) -> (u64, u64) {
    let n: u64 = sent.iter().map(|s| s.n).sum();
    let sum = sent.iter().fold(0u64, |a, s| a.wrapping_add(s.sum));
    let closes = closes
        + sent
            .iter()
            .map(|s| s.closed + u64::from(s.final_ok))
            .sum::<u64>();
    assert!(
        closes <= 1,
        "{closes} closing calls returned true (at most one may)"
    );
    if matches!(plan.ending, Ending::CloseTx | Ending::CloseWith) {
        assert_eq!(closes, 1, "exactly one closing call wins");
    }
    if plan.ending == Ending::CloseWith {
        assert!(sent[0].final_ok, "close_with on an open channel failed");
    }
    (n, sum)
}

/// The round's tally, once every thread is done: made == dropped.
fn take_round_tally() -> Tally {
    flush();
    let t = std::mem::replace(&mut *ROUND_TALLY.lock().unwrap(), Tally::ZERO);
    assert!(
        t.made == t.drops,
        "{} message instances made, {} dropped: {}",
        t.made,
        t.drops,
        if t.made > t.drops {
            "a leak"
        } else {
            "a double drop"
        }
    );
    t
}

fn round_point_to_point<T: Tx, R: Rx>(plan: &Plan, txs: Vec<T>, rx: R) -> Outcome {
    let shared = Shared::default();
    let (sent, (got, rx)) = thread::scope(|s| {
        let producers: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(p, tx)| {
                let shared = &shared;
                s.spawn(move || worker(|| produce(tx, p as u32, plan, shared)))
            })
            .collect();
        let consumer = s.spawn(|| worker(|| consume(rx, plan, &shared)));
        let sent: Vec<Sent> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        (sent, consumer.join().unwrap())
    });
    let (n, sum) = check_round_common(plan, &sent, got.closed);
    // Every producer is done: `dropped()` is final.
    let dropped = match rx {
        Ok(rx) => rx.dropped(),
        Err(dropped) => dropped,
    };
    let t = take_round_tally();
    assert_eq!(
        got.n + t.chan_drops,
        n,
        "sent {n} messages Ok; received {}, the channel dropped {}: {} lost or repeated",
        got.n,
        t.chan_drops,
        n as i64 - (got.n + t.chan_drops) as i64
    );
    assert_eq!(
        got.sum.wrapping_add(t.chan_sum),
        sum,
        "checksum: what was received and what the channel dropped are not what was sent"
    );
    assert_eq!(
        t.chan_drops,
        dropped + got.leftover,
        "the channel dropped {} messages: dropped() says {dropped}, the receiver held {} when \
         dropped",
        t.chan_drops,
        got.leftover
    );
    if plan.policy == Overflow::Block {
        assert_eq!(dropped, 0, "dropped() under Block");
    }
    if got.leftover == 0 && !matches!(plan.ending, Ending::RxDrop(_)) {
        for (p, s) in sent.iter().enumerate() {
            if plan.policy == Overflow::Block {
                assert_eq!(
                    got.next[p], s.n,
                    "producer {p} sent {} Ok, the receiver got up to {}",
                    s.n, got.next[p]
                );
            }
        }
    }
    if sent[0].final_ok && got.leftover == 0 {
        assert!(got.saw_last, "the close_with message was not received last");
    }
    Outcome {
        sent: n,
        received: got.n,
        dropped,
        lagged: 0,
    }
}

fn round_broadcast(plan: &Plan) -> Outcome {
    let (tx, rx) = broadcast::Builder::new(plan.cap)
        .overflow(plan.policy)
        .build::<Msg>();
    let mut rxs = vec![rx];
    for _ in 1..plan.subscribers {
        rxs.push(tx.subscribe());
    }
    let txs: Vec<_> = (0..plan.producers).map(|_| tx.clone()).collect();
    drop(tx);
    let shared = Shared::default();
    let (sent, gots) = thread::scope(|s| {
        let producers: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(p, tx)| {
                let shared = &shared;
                s.spawn(move || worker(|| produce(tx, p as u32, plan, shared)))
            })
            .collect();
        let subs: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| s.spawn(move || worker(|| subscribe(rx, i, plan))))
            .collect();
        let sent: Vec<Sent> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        let gots: Vec<_> = subs.into_iter().map(|h| h.join().unwrap()).collect();
        (sent, gots)
    });
    let closes = gots.iter().map(|(g, _)| g.closed).sum();
    let (n, sum) = check_round_common(plan, &sent, closes);
    let dropped = gots
        .iter()
        .find_map(|(_, rx)| rx.as_ref().map(|rx| rx.dropped()))
        .expect("a subscriber stays to the end");
    let mut lag_max = 0;
    let mut lag_sum = 0;
    let mut received = 0;
    for (i, (g, _)) in gots.iter().enumerate() {
        received += g.n;
        lag_sum += g.lagged;
        if g.left {
            continue;
        }
        // Messages missed at the end of a producer's sequence are gaps too.
        let (mut gap_n, mut gap_sum) = (g.gap_n, g.gap_sum);
        for (p, s) in sent.iter().enumerate() {
            assert!(
                g.next[p] <= s.n,
                "subscriber {i} got message {} of producer {p}, which sent {}",
                g.next[p] - 1,
                s.n
            );
            for q in g.next[p]..s.n {
                gap_n += 1;
                gap_sum = gap_sum.wrapping_add(mix(p as u32, q));
            }
        }
        assert_eq!(
            (g.n + g.lagged, g.lagged),
            (n, gap_n),
            "subscriber {i}: received {} + told it missed {} must be the {n} sent, and the gaps \
             it saw ({gap_n}) what it was told",
            g.n,
            g.lagged
        );
        assert_eq!(
            g.sum.wrapping_add(gap_sum),
            sum,
            "subscriber {i}: checksum of received + missed is not that of what was sent"
        );
        if sent[0].final_ok {
            assert!(
                g.saw_last,
                "subscriber {i}: the close_with message was not last"
            );
        }
        lag_max = lag_max.max(g.lagged);
    }
    assert!(
        dropped >= lag_max,
        "dropped() = {dropped}, but a subscriber missed {lag_max}"
    );
    if !gots.iter().any(|(g, _)| g.left) {
        assert!(
            dropped <= lag_sum,
            "dropped() = {dropped}, but the subscribers missed {lag_sum} in all"
        );
    }
    drop(gots);
    take_round_tally();
    Outcome {
        sent: n,
        received,
        dropped,
        lagged: lag_sum,
    }
}

fn run_round(plan: &Plan) -> Outcome {
    match plan.kind {
        Kind::Spsc => {
            let (tx, rx) = spsc::Builder::new(plan.cap)
                .overflow(plan.policy)
                .build::<Msg>();
            round_point_to_point(plan, vec![tx], rx)
        }
        Kind::Mpsc | Kind::Rendezvous => {
            let (tx, rx) = mpsc::Builder::new(plan.cap)
                .overflow(plan.policy)
                .build::<Msg>();
            let txs = (0..plan.producers).map(|_| tx.clone()).collect();
            drop(tx);
            round_point_to_point(plan, txs, rx)
        }
        Kind::Broadcast => round_broadcast(plan),
    }
}

// ---- main ----

struct Args {
    messages: u64,
    seconds: Option<f64>,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        messages: 10_000_000,
        seconds: None,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| panic!("soak: {flag} needs a value"))
                .replace('_', "")
        };
        match flag.as_str() {
            "--messages" => a.messages = value().parse().expect("soak: --messages N"),
            "--seconds" => a.seconds = Some(value().parse().expect("soak: --seconds S")),
            "--seed" => a.seed = value().parse().expect("soak: --seed N"),
            _ => panic!("soak: unknown argument {flag} (use --messages N, --seconds S, --seed N)"),
        }
    }
    a
}

fn main() {
    let args = args();
    let seed = args.seed;
    let start = Instant::now();
    let budget = (args.messages / (2 * SCENARIOS.len() as u64)).clamp(1_000, 400_000);
    println!(
        "soak: {} messages, rounds of about {budget}{}, seed {}",
        args.messages,
        args.seconds
            .map(|s| format!(", at most {s} s"))
            .unwrap_or_default(),
        args.seed
    );
    // A failure says which round (and so which scenario and seed) it was,
    // and ends the process at once: the other threads of the round may be
    // waiting for the one that failed.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let round = ROUND.try_lock().map(|r| r.clone()).unwrap_or_default();
        eprintln!("soak: FAILED in {round} (seed {seed})");
        std::process::exit(101);
    }));
    let mon = thread::spawn(move || monitor(start));
    let mut total = Outcome::default();
    let mut rounds = 0u64;
    let mut by_kind = [0u64; 4];
    while total.sent < args.messages {
        if args
            .seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let plan = plan(rounds, args.seed, budget.min(args.messages - total.sent));
        *ROUND.lock().unwrap() = plan.describe();
        let o = run_round(&plan);
        total.sent += o.sent;
        total.received += o.received;
        total.dropped += o.dropped;
        total.lagged += o.lagged;
        by_kind[plan.kind as usize] += o.sent;
        rounds += 1;
    }
    DONE.store(true, Ordering::Relaxed);
    mon.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "soak: OK: {} messages in {rounds} rounds, {secs:.1} s ({:.2} M msg/s); spsc {}, mpsc {}, \
         rendezvous {}, broadcast {}; received {} (broadcast: per subscriber), dropped by policy \
         {}, missed by lagging subscribers {}",
        total.sent,
        total.sent as f64 / secs / 1e6,
        by_kind[0],
        by_kind[1],
        by_kind[2],
        by_kind[3],
        total.received,
        total.dropped,
        total.lagged
    );
}
