//! Side-by-side throughput of rillet and crossbeam-channel (and rtrb for SPSC).
//!
//! `cargo run --release --example versus` prints one row per scenario: the
//! median over several runs of millions of messages per second for each
//! implementation, with the runs' range (min-max) beside it, and the ratio
//! rillet / crossbeam-channel (for ping-pong, round trips per second; for
//! the lifecycle rows, channels made, used once and dropped per second: so
//! higher is better everywhere). The last columns are the best other peer
//! of the row (rtrb, kanal, std) and rillet's ratio to it; in the batches
//! row, that column is rillet itself sending one message per call, to show
//! what `send_many`/`recv_many` gain. The MPSC 64-byte row has std
//! beside it; on one CPU a second row, with kanal (that row's best peer
//! there), follows it. Every run checks what it received
//! before its time counts. Each implementation runs once, unmeasured,
//! before a row's runs (the first runs of a process pay for page faults
//! and the CPU's frequency ramp); then the implementations take turns, run
//! after run, so that the machine's drift reaches every column alike.
//!
//! Each loop builds its messages in place (`make` and `check` are generic,
//! so the compiler sees them), as a program that sends what it computes
//! does. Until 2026-12-05 they were function pointers: a 64-byte message
//! was then stored word by word into the caller's frame and copied into
//! the channel with 16-byte loads, which stall on those stores. That
//! stall, paid by every implementation, hid what each does with a message
//! it can see: SPSC 64-byte row, one CPU, through the pointer rillet 86,
//! rtrb 83, crossbeam-channel 37 M msg/s; built in place, with the same
//! rillet, 76, 155 and 31 (rillet kept the message in memory for its slow
//! path: see `ring::Spill`).
//!
//! A second table compares broadcast: one sender, `k` subscriber threads that
//! each receive every message, rillet `broadcast` beside crossbeam-channel
//! used as fan-out (one `bounded(1024)` channel per subscriber), `bus` and
//! `tokio::sync::broadcast` (subscribers in `blocking_recv`), in messages
//! sent per second and the ratios of rillet to each.
//!
//! The ping-pong row shows a "floor": two threads handing a turn back and
//! forth through one atomic, no channel at all. On one CPU they yield
//! until it is their turn: the least a round trip costs there (two context
//! switches), so under `taskset -c 0` `floor / crossbeam` is the best
//! ratio any channel could reach. It is not a floor for the capacity-1
//! throughput rows: with a direct hand-off (rillet, kanal) a pair of
//! switches moves more than one message, and those rows show kanal beside
//! rillet. On two CPUs they spin (a thread that yields in a loop is slower
//! there than one that spins): a round trip is two transfers of the one
//! line between the CPUs. A round trip through two channels needs at
//! least four: each message's line goes to its receiver, and comes back
//! to its sender before the next message (the receiver wrote that the
//! slot is free), so about half the floor is what a channel can reach.
//!
//! Set `VERSUS_RUNS` to change the number of runs per cell (default 5),
//! `VERSUS_SCALE` to scale the message counts (default 1.0) and
//! `VERSUS_ONLY` to run only the rows whose name contains it.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

#[path = "../benches/common/watch_flow.rs"]
mod watch_flow;

fn runs() -> usize {
    std::env::var("VERSUS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn scaled(n: u64) -> u64 {
    let scale: f64 = std::env::var("VERSUS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as u64).max(1)
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[rates.len() / 2]
}

/// The median of a cell's runs and their spread.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(rates: Vec<f64>) -> Stats {
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    Stats {
        median: median(rates),
        min,
        max,
    }
}

/// `x` with three significant digits (so that 0.0123 does not print as
/// 0.01 while 205.3 stays 205).
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A cell: the median in millions per second, then the runs' range.
fn cell(s: Stats) -> String {
    format!(
        "{} ({}-{})",
        sig(s.median / 1e6),
        sig(s.min / 1e6),
        sig(s.max / 1e6)
    )
}

/// One implementation on one scenario: the operation count, and the run
/// that performs that many operations and returns the elapsed time.
type Bench = (u64, Box<dyn Fn(u64) -> Duration>);

struct Scenario {
    name: &'static str,
    unit: &'static str,
    rillet: Bench,
    crossbeam: Bench,
    other: Option<(&'static str, Bench)>,
}

/// Median rates over `runs()` rounds, each round running every
/// implementation of the scenario in turn: this shared 2-core machine's
/// speed drifts from second to second, and interleaving lets every column
/// see the same drift, so the ratios stay comparable.
fn measure(s: Scenario) -> Row {
    let mut benches = vec![&s.rillet, &s.crossbeam];
    if let Some((_, b)) = &s.other {
        benches.push(b);
    }
    // Warm-up, not measured: the first runs of a process pay for page
    // faults and the CPU's frequency ramp (once, the first row ran at half
    // the speed of the same code measured later).
    for (n, f) in &benches {
        f((*n / 4).max(1));
    }
    let mut rates = vec![Vec::new(); benches.len()];
    for _ in 0..runs() {
        for (rates, (n, f)) in rates.iter_mut().zip(&benches) {
            rates.push(*n as f64 / f(*n).as_secs_f64());
        }
    }
    let mut cells = rates.into_iter().map(stats);
    Row {
        name: s.name,
        unit: s.unit,
        rillet: cells.next().unwrap(),
        crossbeam: cells.next().unwrap(),
        other: s.other.map(|(name, _)| (name, cells.next().unwrap())),
    }
}

#[derive(Clone, Copy)]
struct Msg64([u64; 8]);

fn msg64(i: u64) -> Msg64 {
    Msg64([i; 8])
}

// ---- throughput: one producer thread, consumer on this thread ----

fn rillet_spsc<T: Send + 'static>(
    cap: usize,
    n: u64,
    make: impl Fn(u64) -> T + Send + 'static,
    check: impl Fn(&T) -> u64,
) -> Duration {
    let (tx, rx) = rillet::spsc::channel(cap);
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            tx.send(make(i)).unwrap();
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(check(&rx.recv().unwrap()));
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

fn crossbeam_spsc<T: Send + 'static>(
    cap: usize,
    n: u64,
    make: impl Fn(u64) -> T + Send + 'static,
    check: impl Fn(&T) -> u64,
) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded(cap);
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            tx.send(make(i)).unwrap();
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(check(&rx.recv().unwrap()));
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

/// rillet's MPSC channel with one producer: `rillet_spsc`'s loop.
fn rillet_mpsc_one(cap: usize, n: u64) -> Duration {
    let (tx, rx) = rillet::mpsc::channel(cap);
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(rx.recv().unwrap());
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

fn kanal_spsc(cap: usize, n: u64) -> Duration {
    let (tx, rx) = kanal::bounded::<u64>(cap);
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(rx.recv().unwrap());
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

/// `true` when this process may run on one CPU only (`taskset -c 0`).
fn one_cpu() -> bool {
    thread::available_parallelism().map_or(1, |n| n.get()) == 1
}

/// What rtrb's sides do while they cannot go on: rtrb cannot block, so they
/// busy-wait, as rtrb's own two-thread benches do; on one CPU they yield
/// instead (a spinning side would only burn its time slice, and the column
/// would take many minutes).
fn rtrb_wait(one_cpu: bool) {
    if one_cpu {
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// rtrb cannot block: both sides busy-wait (see [`rtrb_wait`]).
fn rtrb_spsc<T: Send + 'static>(
    cap: usize,
    n: u64,
    make: impl Fn(u64) -> T + Send + 'static,
    check: impl Fn(&T) -> u64,
) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::new(cap);
    let one = one_cpu();
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            let mut v = make(i);
            loop {
                match tx.push(v) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(back)) => {
                        v = back;
                        rtrb_wait(one);
                    }
                }
            }
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        let v = loop {
            match rx.pop() {
                Ok(v) => break v,
                Err(_) => rtrb_wait(one),
            }
        };
        sum = sum.wrapping_add(check(&v));
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

// ---- ping-pong: round trips through two capacity-1 channels ----

fn rillet_pingpong(n: u64) -> Duration {
    let (tx1, rx1) = rillet::spsc::channel::<u64>(1);
    let (tx2, rx2) = rillet::spsc::channel::<u64>(1);
    let h = thread::spawn(move || {
        for v in rx1.iter() {
            tx2.send(v + 1).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        tx1.send(i).unwrap();
        assert_eq!(rx2.recv().unwrap(), i + 1);
    }
    let d = start.elapsed();
    drop(tx1);
    h.join().unwrap();
    d
}

/// The floor of every hand-off row, with no channel at all: two threads
/// take turns through one counter, each yielding until it is its turn. A
/// round trip here is the least a capacity-1 message or a ping-pong round
/// trip can cost; on one CPU (`taskset -c 0`) it is two context switches.
fn yield_floor(n: u64) -> Duration {
    turn_floor(n, |_| thread::yield_now())
}

/// The floor of a round trip on two CPUs: the same turn-taking, each
/// thread spinning on the counter while the other, on the other CPU,
/// writes it. A round trip is then two transfers of one cache line
/// between the CPUs, the least any two-thread exchange costs. (It yields
/// once every 64 polls, a few microseconds, in case both threads share a
/// CPU for a while: a turn takes one or two polls otherwise.)
fn spin_floor(n: u64) -> Duration {
    turn_floor(n, |polls| {
        if polls % 64 == 63 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    })
}

/// Two threads take turns through one counter, calling `wait` (with the
/// number of polls so far) until it is their turn; the time of `n` round
/// trips.
fn turn_floor(n: u64, wait: fn(u32)) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let turn = Arc::new(AtomicU64::new(0));
    let other = turn.clone();
    let until = move |turn: &AtomicU64, value: u64| {
        let mut polls = 0u32;
        while turn.load(Ordering::Acquire) != value {
            wait(polls);
            polls = polls.wrapping_add(1);
        }
    };
    let h = thread::spawn(move || {
        for i in 0..n {
            until(&other, 2 * i + 1);
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..n {
        until(&turn, 2 * i);
        turn.store(2 * i + 1, Ordering::Release);
    }
    h.join().unwrap();
    start.elapsed()
}

fn crossbeam_pingpong(n: u64) -> Duration {
    let (tx1, rx1) = crossbeam_channel::bounded::<u64>(1);
    let (tx2, rx2) = crossbeam_channel::bounded::<u64>(1);
    let h = thread::spawn(move || {
        for v in rx1.iter() {
            tx2.send(v + 1).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        tx1.send(i).unwrap();
        assert_eq!(rx2.recv().unwrap(), i + 1);
    }
    let d = start.elapsed();
    drop(tx1);
    h.join().unwrap();
    d
}

// ---- one thread: send N, then receive N (capacity N) ----

fn rillet_fill_drain(n: u64) -> Duration {
    let (tx, rx) = rillet::spsc::channel::<u64>(n as usize);
    let start = Instant::now();
    for round in 0..10 {
        for i in 0..n {
            tx.send(i + round).unwrap();
        }
        for i in 0..n {
            assert_eq!(rx.recv().unwrap(), i + round);
        }
    }
    start.elapsed() / 10
}

fn crossbeam_fill_drain(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(n as usize);
    let start = Instant::now();
    for round in 0..10 {
        for i in 0..n {
            tx.send(i + round).unwrap();
        }
        for i in 0..n {
            assert_eq!(rx.recv().unwrap(), i + round);
        }
    }
    start.elapsed() / 10
}

// ---- one thread, a big ring: make it, fill it, drain it, drop it ----

fn rillet_big_ring(n: u64) -> Duration {
    let start = Instant::now();
    let (tx, rx) = rillet::spsc::channel::<u64>(n as usize);
    for i in 0..n {
        tx.send(i).unwrap();
    }
    for i in 0..n {
        assert_eq!(rx.recv().unwrap(), i);
    }
    drop((tx, rx));
    start.elapsed()
}

fn crossbeam_big_ring(n: u64) -> Duration {
    let start = Instant::now();
    let (tx, rx) = crossbeam_channel::bounded::<u64>(n as usize);
    for i in 0..n {
        tx.send(i).unwrap();
    }
    for i in 0..n {
        assert_eq!(rx.recv().unwrap(), i);
    }
    drop((tx, rx));
    start.elapsed()
}

fn rtrb_big_ring(n: u64) -> Duration {
    let start = Instant::now();
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(n as usize);
    for i in 0..n {
        tx.push(i).unwrap();
    }
    for i in 0..n {
        assert_eq!(rx.pop().unwrap(), i);
    }
    drop((tx, rx));
    start.elapsed()
}

// ---- channel lifecycle: make a channel (capacity 1024), send one, receive
// it, drop both handles; `n` times on one thread ----

/// Makes a channel with `make`, sends one message, receives it, drops
/// both handles; `n` times.
fn lifecycle<S: Put<u64>, R: Take<u64>>(n: u64, make: impl Fn() -> (S, R)) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let (tx, rx) = make();
        tx.put(i);
        assert_eq!(rx.take(), Some(i));
    }
    start.elapsed()
}

fn rillet_lifecycle_spsc(n: u64) -> Duration {
    lifecycle(n, || rillet::spsc::channel(1024))
}

fn rillet_lifecycle_mpsc(n: u64) -> Duration {
    lifecycle(n, || rillet::mpsc::channel(1024))
}

fn crossbeam_lifecycle(n: u64) -> Duration {
    lifecycle(n, || crossbeam_channel::bounded(1024))
}

fn rtrb_lifecycle(n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(1024);
        tx.push(i).unwrap();
        assert_eq!(rx.pop().unwrap(), i);
    }
    start.elapsed()
}

fn kanal_lifecycle(n: u64) -> Duration {
    lifecycle(n, || kanal::bounded(1024))
}

// ---- batches: send_many / recv_many against a per-message loop ----

const BATCH: usize = 256;

fn rillet_batched(n: u64) -> Duration {
    let (tx, rx) = rillet::spsc::channel::<u64>(1024);
    let start = Instant::now();
    let h = thread::spawn(move || {
        let mut i = 0;
        while i < n {
            let end = (i + BATCH as u64).min(n);
            tx.send_many(i..end).unwrap();
            i = end;
        }
    });
    let mut buf = Vec::with_capacity(BATCH);
    let mut sum = 0u64;
    let mut got = 0;
    while got < n {
        buf.clear();
        got += rx.recv_many(&mut buf, BATCH).unwrap() as u64;
        sum = buf.iter().fold(sum, |s, v| s.wrapping_add(*v));
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

fn crossbeam_batched(n: u64) -> Duration {
    // crossbeam has no batch API: the same work as a loop.
    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut buf = Vec::with_capacity(BATCH);
    let mut sum = 0u64;
    let mut got = 0;
    while got < n {
        buf.clear();
        buf.push(rx.recv().unwrap());
        buf.extend(rx.try_iter().take(BATCH - 1));
        got += buf.len() as u64;
        sum = buf.iter().fold(sum, |s, v| s.wrapping_add(*v));
    }
    let d = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    d
}

// ---- MPSC: P producer threads, consumer on this thread ----

/// `producers` threads into one channel of capacity 1024, the consumer on
/// this thread until every sender is gone; `make` builds the channel, so
/// that every implementation runs the same loop.
fn mpsc_run<M, S, R>(
    producers: u64,
    n: u64,
    msg: impl Fn(u64) -> M + Send + Copy + 'static,
    check: impl Fn(&M) -> u64,
    make: impl FnOnce() -> (S, R),
) -> Duration
where
    M: Send + 'static,
    S: Put<M> + Clone + Send + 'static,
    R: Take<M>,
{
    let (tx, rx) = make();
    let per = n / producers;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    tx.put(msg(p * per + i));
                }
            })
        })
        .collect();
    drop(tx);
    let mut sum = 0u64;
    while let Some(m) = rx.take() {
        sum = sum.wrapping_add(check(&m));
    }
    let d = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    let total = per * producers;
    assert_eq!(sum, total * (total - 1) / 2);
    d
}

/// A sending handle of any of the compared channels.
trait Put<M> {
    fn put(&self, m: M);
}

/// A receiving handle of any of the compared channels.
trait Take<M> {
    /// `None` once every sender is gone.
    fn take(&self) -> Option<M>;
}

macro_rules! put_take {
    ($($tx:ty, $rx:ty);* $(;)?) => {$(
        impl<M> Put<M> for $tx {
            fn put(&self, m: M) {
                assert!(self.send(m).is_ok());
            }
        }

        impl<M> Take<M> for $rx {
            fn take(&self) -> Option<M> {
                self.recv().ok()
            }
        }
    )*};
}

put_take! {
    rillet::spsc::Sender<M>, rillet::spsc::Receiver<M>;
    rillet::mpsc::Sender<M>, rillet::mpsc::Receiver<M>;
    crossbeam_channel::Sender<M>, crossbeam_channel::Receiver<M>;
    std::sync::mpsc::SyncSender<M>, std::sync::mpsc::Receiver<M>;
    kanal::Sender<M>, kanal::Receiver<M>;
}

/// Messages of one run of the u64 MPSC rows (2, 4 and 8 producers). A run
/// of 4,000,000 (60 ms for rillet) was shorter than the time the threads
/// take to spread over the CPUs: rillet's rate with 4 producers rose with
/// the run's length (2 M messages 63-64 M msg/s, 20 M 68-71, 60 M 72,
/// one run each in a probe of this loop) while crossbeam-channel's stayed
/// at 28-35; `versus`, 4 producers, 4 M: 1.56-1.78x, 12 M: 1.95-2.53x.
const MPSC_MESSAGES: u64 = 12_000_000;

fn rillet_mpsc(producers: u64, n: u64) -> Duration {
    mpsc_run(producers, n, |i| i, |v| *v, || rillet::mpsc::channel(1024))
}

fn crossbeam_mpsc(producers: u64, n: u64) -> Duration {
    mpsc_run(
        producers,
        n,
        |i| i,
        |v| *v,
        || crossbeam_channel::bounded(1024),
    )
}

fn kanal_mpsc(producers: u64, n: u64) -> Duration {
    mpsc_run(producers, n, |i| i, |v| *v, || kanal::bounded(1024))
}

/// MPSC with 64-byte messages.
fn mpsc64<S: Put<Msg64> + Clone + Send + 'static, R: Take<Msg64>>(
    producers: u64,
    n: u64,
    make: impl FnOnce() -> (S, R),
) -> Duration {
    mpsc_run(producers, n, msg64, |m| black_box(m).0[7], make)
}

/// The row of two producers sending 64-byte messages into a channel of
/// capacity 1024, with `peer` beside rillet and crossbeam-channel.
fn mpsc64_row(
    name: &'static str,
    peer: &'static str,
    run: Box<dyn Fn(u64) -> Duration>,
) -> Scenario {
    Scenario {
        name,
        unit: "M msg/s",
        rillet: (
            scaled(2_000_000),
            Box::new(|n| mpsc64(2, n, || rillet::mpsc::channel::<Msg64>(1024))),
        ),
        crossbeam: (
            scaled(2_000_000),
            Box::new(|n| mpsc64(2, n, || crossbeam_channel::bounded::<Msg64>(1024))),
        ),
        other: Some((peer, (scaled(2_000_000), run))),
    }
}

/// Four producers, each on its own MPSC channel (capacity 1024); this
/// thread selects over the four receivers until every channel is closed.
fn rillet_select4(n: u64) -> Duration {
    let per = n / 4;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| rillet::mpsc::channel::<u64>(1024)).unzip();
    let start = Instant::now();
    let handles: Vec<_> = txs
        .into_iter()
        .map(|tx| thread::spawn(move || (0..per).for_each(|i| tx.send(i).unwrap())))
        .collect();
    let (mut sum, mut open) = (0u64, [true; 4]);
    while open.iter().any(|&o| o) {
        let (k, m) = rillet::select! {
            recv(rxs[0]) -> m => (0, m),
            recv(rxs[1]) -> m => (1, m),
            recv(rxs[2]) -> m => (2, m),
            recv(rxs[3]) -> m => (3, m),
        };
        match m {
            Ok(v) => sum = sum.wrapping_add(v),
            Err(_) => open[k] = false,
        }
    }
    let d = start.elapsed();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(sum, 4 * (per * per.saturating_sub(1) / 2));
    d
}

fn crossbeam_select4(n: u64) -> Duration {
    let per = n / 4;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..4)
        .map(|_| crossbeam_channel::bounded::<u64>(1024))
        .unzip();
    let start = Instant::now();
    let handles: Vec<_> = txs
        .into_iter()
        .map(|tx| thread::spawn(move || (0..per).for_each(|i| tx.send(i).unwrap())))
        .collect();
    let (mut sum, mut open) = (0u64, [true; 4]);
    while open.iter().any(|&o| o) {
        let (k, m) = crossbeam_channel::select! {
            recv(rxs[0]) -> m => (0, m),
            recv(rxs[1]) -> m => (1, m),
            recv(rxs[2]) -> m => (2, m),
            recv(rxs[3]) -> m => (3, m),
        };
        match m {
            Ok(v) => sum = sum.wrapping_add(v),
            Err(_) => open[k] = false,
        }
    }
    let d = start.elapsed();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(sum, 4 * (per * per.saturating_sub(1) / 2));
    d
}

fn rillet_rendezvous_pingpong(n: u64) -> Duration {
    let (tx1, rx1) = rillet::mpsc::channel::<u64>(0);
    let (tx2, rx2) = rillet::mpsc::channel::<u64>(0);
    let h = thread::spawn(move || {
        for v in rx1.iter() {
            tx2.send(v + 1).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        tx1.send(i).unwrap();
        assert_eq!(rx2.recv().unwrap(), i + 1);
    }
    let d = start.elapsed();
    drop(tx1);
    h.join().unwrap();
    d
}

fn crossbeam_rendezvous_pingpong(n: u64) -> Duration {
    let (tx1, rx1) = crossbeam_channel::bounded::<u64>(0);
    let (tx2, rx2) = crossbeam_channel::bounded::<u64>(0);
    let h = thread::spawn(move || {
        for v in rx1.iter() {
            tx2.send(v + 1).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        tx1.send(i).unwrap();
        assert_eq!(rx2.recv().unwrap(), i + 1);
    }
    let d = start.elapsed();
    drop(tx1);
    h.join().unwrap();
    d
}

// ---- broadcast: one sender thread, k subscriber threads, each receives all ----

/// One run: a sender thread sends `0..n` through `send`, every subscriber
/// thread receives `n` messages through `recv` and checks their sum. Timed
/// from the first send to the last subscriber's last receive.
fn fanout<S: Send + 'static, R: Send + 'static>(
    n: u64,
    subs: usize,
    make: fn(usize, u64) -> (S, Vec<R>),
    send: fn(&mut S, u64),
    recv: fn(&mut R) -> u64,
) -> Duration {
    let (mut tx, rxs) = make(subs, n);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(subs + 1));
    let receivers: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut sum = 0u64;
                for _ in 0..n {
                    sum = sum.wrapping_add(recv(&mut rx));
                }
                assert_eq!(sum, n * (n - 1) / 2);
                Instant::now()
            })
        })
        .collect();
    let sender = thread::spawn(move || {
        barrier.wait();
        let start = Instant::now();
        for i in 0..n {
            send(&mut tx, i);
        }
        start
    });
    let start = sender.join().unwrap();
    let end = receivers.into_iter().map(|h| h.join().unwrap()).max();
    end.unwrap() - start
}

/// rillet: one channel, capacity 1024, `Overflow::Block` (the default).
fn rillet_bcast_make(
    subs: usize,
    _n: u64,
) -> (
    rillet::broadcast::Sender<u64>,
    Vec<rillet::broadcast::Receiver<u64>>,
) {
    let (tx, rx) = rillet::broadcast::channel(1024);
    let mut rxs = vec![rx];
    rxs.extend((1..subs).map(|_| tx.subscribe()));
    (tx, rxs)
}

/// crossbeam-channel as fan-out: one `bounded(1024)` per subscriber.
fn crossbeam_fanout_make(
    subs: usize,
    _n: u64,
) -> (
    Vec<crossbeam_channel::Sender<u64>>,
    Vec<crossbeam_channel::Receiver<u64>>,
) {
    (0..subs).map(|_| crossbeam_channel::bounded(1024)).unzip()
}

fn bus_make(subs: usize, _n: u64) -> (bus::Bus<u64>, Vec<bus::BusReader<u64>>) {
    let mut bus = bus::Bus::new(1024);
    let rxs = (0..subs).map(|_| bus.add_rx()).collect();
    (bus, rxs)
}

/// tokio's sender never waits: on a full ring it overwrites the oldest
/// message and slow subscribers get `Lagged`. Capacity `n` (the whole run)
/// so that every subscriber receives everything, as in the other columns.
fn tokio_make(
    subs: usize,
    n: u64,
) -> (
    tokio::sync::broadcast::Sender<u64>,
    Vec<tokio::sync::broadcast::Receiver<u64>>,
) {
    let (tx, rx) = tokio::sync::broadcast::channel(n as usize);
    let mut rxs = vec![rx];
    rxs.extend((1..subs).map(|_| tx.subscribe()));
    (tx, rxs)
}

fn rillet_bcast(subs: usize, n: u64) -> Duration {
    fanout(
        n,
        subs,
        rillet_bcast_make,
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    )
}

fn crossbeam_fanout(subs: usize, n: u64) -> Duration {
    fanout(
        n,
        subs,
        crossbeam_fanout_make,
        |txs, v| txs.iter().for_each(|tx| tx.send(v).unwrap()),
        |rx| rx.recv().unwrap(),
    )
}

fn bus_bcast(subs: usize, n: u64) -> Duration {
    fanout(
        n,
        subs,
        bus_make,
        |tx, v| tx.broadcast(v),
        |rx| rx.recv().unwrap(),
    )
}

fn tokio_bcast(subs: usize, n: u64) -> Duration {
    fanout(
        n,
        subs,
        tokio_make,
        |tx, v| {
            tx.send(v).unwrap();
        },
        |rx| match rx.blocking_recv() {
            Ok(v) => v,
            Err(e) => panic!("tokio subscriber: {e}"),
        },
    )
}

struct BroadcastRow {
    name: &'static str,
    rillet: Stats,
    crossbeam: Stats,
    bus: Stats,
    tokio: Stats,
}

/// Median rates of the four over `runs()` rounds. Unlike `rate`, each round
/// runs all four in turn: with more threads than cores these runs swing
/// with the machine's state, and interleaving lets every column see the
/// same swings.
fn broadcast_row(name: &'static str, subs: usize, n: u64) -> BroadcastRow {
    let impls: [fn(usize, u64) -> Duration; 4] =
        [rillet_bcast, crossbeam_fanout, bus_bcast, tokio_bcast];
    for f in impls {
        f(subs, (n / 4).max(1)); // warm-up, not measured
    }
    let mut rates: [Vec<f64>; 4] = Default::default();
    for _ in 0..runs() {
        for (rates, f) in rates.iter_mut().zip(impls) {
            rates.push(n as f64 / f(subs, n).as_secs_f64());
        }
    }
    let [rillet, crossbeam, bus, tokio] = rates.map(stats);
    BroadcastRow {
        name,
        rillet,
        crossbeam,
        bus,
        tokio,
    }
}

fn print_broadcast_row(r: &BroadcastRow) {
    println!(
        "{:<NAME$} {:<CELL$} {:<CELL$} {:>6}x  {:<CELL$} {:>6}x  {:<CELL$} {:>6}x",
        format!("{} [M msg/s]", r.name),
        cell(r.rillet),
        cell(r.crossbeam),
        sig(r.rillet.median / r.crossbeam.median),
        cell(r.bus),
        sig(r.rillet.median / r.bus.median),
        cell(r.tokio),
        sig(r.rillet.median / r.tokio.median),
    );
}

struct Row {
    name: &'static str,
    unit: &'static str,
    rillet: Stats,
    crossbeam: Stats,
    other: Option<(&'static str, Stats)>,
}

/// Width of the scenario column.
const NAME: usize = 46;
/// Width of a rate column: median (min-max).
const CELL: usize = 22;

/// The watch store's flow (`benches/common/watch_flow.rs`): events
/// delivered per second and the write latency, rillet's `watch::Store`
/// beside a `Mutex<HashMap>` with a crossbeam-channel per watcher, runs
/// interleaved; medians of the runs' rates and of their latency
/// percentiles.
const WATCH_ROW: &str = "watch: 4 writers, 8 watchers [M events/s]";

fn watch_row(writes: u64) {
    let (mut rates, mut p50, mut p99) = (
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
    );
    for _ in 0..runs() {
        for (i, f) in [
            watch_flow::rillet as fn(u64) -> watch_flow::Flow,
            watch_flow::baseline,
        ]
        .iter()
        .enumerate()
        {
            let flow = f(writes);
            rates[i].push(flow.delivered as f64 / flow.elapsed.as_secs_f64());
            p50[i].push(flow.percentile(0.5).as_secs_f64() * 1e6);
            p99[i].push(flow.percentile(0.99).as_secs_f64() * 1e6);
        }
    }
    let [r, b] = rates.map(stats);
    let [r50, b50] = p50.map(median);
    let [r99, b99] = p99.map(median);
    println!(
        "{:<NAME$} {:<CELL$} {:<CELL$} {:>6}x  set p50 {r50:.1}/{b50:.1} us, p99 {r99:.1}/{b99:.1} us",
        WATCH_ROW,
        cell(r),
        cell(b),
        sig(r.median / b.median),
    );
    println!(
        "{:<NAME$} (crossbeam column: a Mutex<HashMap> with a crossbeam-channel per watcher; \
         set latencies rillet/that baseline, medians of the runs' percentiles)",
        ""
    );
}

fn print_row(r: &Row) {
    let other = match r.other {
        Some((name, v)) => format!(
            "{:<CELL$} {:>6}x  {name}",
            cell(v),
            sig(r.rillet.median / v.median)
        ),
        None => String::new(),
    };
    println!(
        "{:<NAME$} {:<CELL$} {:<CELL$} {:>6}x  {}",
        format!("{} [{}]", r.name, r.unit),
        cell(r.rillet),
        cell(r.crossbeam),
        sig(r.rillet.median / r.crossbeam.median),
        other
    );
}

fn main() {
    println!(
        "rillet vs crossbeam-channel: each cell is the median of {} runs, in millions per second \
         (higher is better), with the runs' range in parentheses; \"ratio\" is rillet's median \
         over that column's. The last columns are the best other peer of the row and rillet's \
         ratio to it.\n",
        runs()
    );
    println!(
        "{:<NAME$} {:<CELL$} {:<CELL$} {:>7}  {:<CELL$} {:>7}  which peer",
        "scenario", "rillet", "crossbeam", "ratio", "peer", "ratio"
    );
    // The yield hand-off is a floor only on one CPU: on several, a thread
    // that yields in a loop is slower than one that spins (`spin_floor`).
    let one_cpu = one_cpu();
    let scenarios: Vec<Scenario> = vec![
        Scenario {
            name: "spsc cap 1024, u64",
            unit: "M msg/s",
            rillet: (
                scaled(20_000_000),
                Box::new(|n| rillet_spsc(1024, n, |i| i, |v| *v)),
            ),
            crossbeam: (
                scaled(20_000_000),
                Box::new(|n| crossbeam_spsc(1024, n, |i| i, |v| *v)),
            ),
            other: Some((
                "rtrb",
                (
                    scaled(20_000_000),
                    Box::new(|n| rtrb_spsc(1024, n, |i| i, |v| *v)),
                ),
            )),
        },
        Scenario {
            name: "spsc cap 1024, 64-byte message",
            unit: "M msg/s",
            rillet: (
                scaled(2_000_000),
                Box::new(|n| rillet_spsc(1024, n, msg64, |m| black_box(m).0[7])),
            ),
            crossbeam: (
                scaled(2_000_000),
                Box::new(|n| crossbeam_spsc(1024, n, msg64, |m| black_box(m).0[7])),
            ),
            other: Some((
                "rtrb",
                (
                    scaled(2_000_000),
                    Box::new(|n| rtrb_spsc(1024, n, msg64, |m| black_box(m).0[7])),
                ),
            )),
        },
        Scenario {
            name: "spsc cap 1, u64",
            unit: "M msg/s",
            rillet: (
                scaled(150_000),
                Box::new(|n| rillet_spsc(1, n, |i| i, |v| *v)),
            ),
            crossbeam: (
                scaled(150_000),
                Box::new(|n| crossbeam_spsc(1, n, |i| i, |v| *v)),
            ),
            // kanal hands a message straight to a parked receiver: the one
            // to beat on one CPU.
            other: Some(("kanal", (scaled(150_000), Box::new(|n| kanal_spsc(1, n))))),
        },
        Scenario {
            name: "mpsc cap 1, 1 producer, u64",
            unit: "M msg/s",
            rillet: (scaled(150_000), Box::new(|n| rillet_mpsc_one(1, n))),
            crossbeam: (
                scaled(150_000),
                Box::new(|n| crossbeam_spsc(1, n, |i| i, |v| *v)),
            ),
            other: Some(("kanal", (scaled(150_000), Box::new(|n| kanal_spsc(1, n))))),
        },
        Scenario {
            name: "ping-pong cap 1",
            unit: "M round trips/s",
            rillet: (scaled(50_000), Box::new(rillet_pingpong)),
            crossbeam: (scaled(50_000), Box::new(crossbeam_pingpong)),
            other: Some(if one_cpu {
                ("floor", (scaled(50_000), Box::new(yield_floor)))
            } else {
                ("floor", (scaled(50_000), Box::new(spin_floor)))
            }),
        },
        Scenario {
            name: "one thread: send N then recv N",
            unit: "M msg/s",
            rillet: (scaled(100_000), Box::new(rillet_fill_drain)),
            crossbeam: (scaled(100_000), Box::new(crossbeam_fill_drain)),
            other: None,
        },
        Scenario {
            name: "one thread: 2M into cap 2M",
            unit: "M msg/s",
            rillet: (scaled(2_000_000), Box::new(rillet_big_ring)),
            crossbeam: (scaled(2_000_000), Box::new(crossbeam_big_ring)),
            other: Some(("rtrb", (scaled(2_000_000), Box::new(rtrb_big_ring)))),
        },
        Scenario {
            name: "lifecycle spsc cap 1024",
            unit: "M channels/s",
            rillet: (scaled(100_000), Box::new(rillet_lifecycle_spsc)),
            crossbeam: (scaled(100_000), Box::new(crossbeam_lifecycle)),
            other: Some(("rtrb", (scaled(100_000), Box::new(rtrb_lifecycle)))),
        },
        Scenario {
            name: "lifecycle mpsc cap 1024",
            unit: "M channels/s",
            rillet: (scaled(100_000), Box::new(rillet_lifecycle_mpsc)),
            crossbeam: (scaled(100_000), Box::new(crossbeam_lifecycle)),
            other: Some(("kanal", (scaled(100_000), Box::new(kanal_lifecycle)))),
        },
        Scenario {
            name: "spsc cap 1024, batches of 256",
            unit: "M msg/s",
            rillet: (scaled(4_000_000), Box::new(rillet_batched)),
            crossbeam: (scaled(4_000_000), Box::new(crossbeam_batched)),
            other: Some((
                "rillet, one message per call",
                (
                    scaled(20_000_000),
                    Box::new(|n| rillet_spsc(1024, n, |i| i, |v| *v)),
                ),
            )),
        },
        Scenario {
            name: "mpsc cap 1024, 2 producers",
            unit: "M msg/s",
            rillet: (scaled(MPSC_MESSAGES), Box::new(|n| rillet_mpsc(2, n))),
            crossbeam: (scaled(MPSC_MESSAGES), Box::new(|n| crossbeam_mpsc(2, n))),
            other: None,
        },
        mpsc64_row(
            "mpsc cap 1024, 2 prod., 64-byte",
            "std",
            Box::new(|n| mpsc64(2, n, || std::sync::mpsc::sync_channel::<Msg64>(1024))),
        ),
        // On one CPU kanal is the best peer of the 64-byte row (two CPUs:
        // 5-7 M msg/s, far behind std): its own row, so that the ratio to
        // std stays in the row above.
        mpsc64_row(
            "mpsc 2 prod., 64-byte (one CPU)",
            "kanal",
            Box::new(|n| mpsc64(2, n, || kanal::bounded::<Msg64>(1024))),
        ),
        Scenario {
            name: "mpsc cap 1024, 4 producers",
            unit: "M msg/s",
            rillet: (scaled(MPSC_MESSAGES), Box::new(|n| rillet_mpsc(4, n))),
            crossbeam: (scaled(MPSC_MESSAGES), Box::new(|n| crossbeam_mpsc(4, n))),
            other: Some((
                "kanal",
                (scaled(MPSC_MESSAGES), Box::new(|n| kanal_mpsc(4, n))),
            )),
        },
        // A small ring: its producers wait for room most of the time.
        Scenario {
            name: "mpsc cap 16, 4 producers",
            unit: "M msg/s",
            rillet: (
                scaled(1_000_000),
                Box::new(|n| mpsc_run(4, n, |i| i, |v| *v, || rillet::mpsc::channel(16))),
            ),
            crossbeam: (
                scaled(1_000_000),
                Box::new(|n| mpsc_run(4, n, |i| i, |v| *v, || crossbeam_channel::bounded(16))),
            ),
            other: Some((
                "kanal",
                (
                    scaled(1_000_000),
                    Box::new(|n| mpsc_run(4, n, |i| i, |v| *v, || kanal::bounded(16))),
                ),
            )),
        },
        Scenario {
            name: "mpsc cap 1024, 8 producers",
            unit: "M msg/s",
            rillet: (scaled(MPSC_MESSAGES), Box::new(|n| rillet_mpsc(8, n))),
            crossbeam: (scaled(MPSC_MESSAGES), Box::new(|n| crossbeam_mpsc(8, n))),
            other: None,
        },
        Scenario {
            name: "select over 4 mpsc, 4 producers",
            unit: "M msg/s",
            rillet: (scaled(2_000_000), Box::new(rillet_select4)),
            crossbeam: (scaled(2_000_000), Box::new(crossbeam_select4)),
            other: None,
        },
        Scenario {
            name: "rendezvous ping-pong (cap 0)",
            unit: "M round trips/s",
            rillet: (scaled(20_000), Box::new(rillet_rendezvous_pingpong)),
            crossbeam: (scaled(20_000), Box::new(crossbeam_rendezvous_pingpong)),
            other: None,
        },
    ];
    let only = std::env::var("VERSUS_ONLY").unwrap_or_default();
    for scenario in scenarios {
        if scenario.name.contains("(one CPU)") && !one_cpu {
            continue;
        }
        if scenario.name.contains(only.as_str()) {
            print_row(&measure(scenario));
        }
    }
    if WATCH_ROW.contains(only.as_str()) {
        watch_row(scaled(20_000));
    }
    if !only.is_empty() && !"broadcast".contains(only.as_str()) {
        return;
    }

    println!(
        "\nbroadcast: one sender, every subscriber receives every message; millions of \
         messages sent per second.\ncrossbeam = one bounded(1024) channel per subscriber; \
         tokio's capacity is the run's message count (1,000,000 at scale 1: its sender overwrites \
         instead of waiting, so a smaller one would lose messages).\n"
    );
    println!(
        "{:<NAME$} {:<CELL$} {:<CELL$} {:>7}  {:<CELL$} {:>7}  {:<CELL$} {:>7}",
        "scenario", "rillet", "crossbeam", "ratio", "bus", "ratio", "tokio", "ratio"
    );
    print_broadcast_row(&broadcast_row(
        "broadcast 1->4 cap 1024 u64",
        4,
        scaled(1_000_000),
    ));
    print_broadcast_row(&broadcast_row(
        "broadcast 1->1 cap 1024 u64",
        1,
        scaled(1_000_000),
    ));
}
