//! Broadcast benches: one sender thread, `k` subscriber threads that each
//! receive every message, for rillet `broadcast` beside the alternatives a
//! user would reach for:
//!
//! - `crossbeam`: crossbeam-channel as fan-out, one `bounded(1024)` channel
//!   per subscriber; the sender sends a copy into each.
//! - `bus`: `bus::Bus::new(1024)`, one `add_rx()` per subscriber.
//! - `tokio`: `tokio::sync::broadcast`, subscribers in `blocking_recv()`.
//!   Its sender never waits: when the ring is full it overwrites the oldest
//!   message and a slow subscriber gets `Lagged`. So that every subscriber
//!   receives everything, as in the other rows, its capacity is `N` (the
//!   whole run fits; tokio rounds up to a power of two) instead of 1024; a
//!   1024 ring would lose messages. Its sender therefore never feels
//!   back-pressure. A `Lagged` would fail the run.
//!
//! rillet runs with capacity 1024 and `Overflow::Block` (the sender waits for
//! the slowest subscriber), like crossbeam and bus.
//!
//! One iteration is one run of `N` messages: the threads are created and
//! meet at a barrier, then the time runs from the sender's first send until
//! the last subscriber has received its `N`-th message. Every subscriber
//! counts and sums what it received and the run asserts both, so no
//! implementation can skip work. Throughput is messages sent per second
//! (each one is delivered `k` times).
//!
//! `cargo bench --bench broadcast`; ratios between rows of one run are what
//! counts on a shared machine.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Messages per run.
const N: u64 = 100_000;
/// Capacity of every bounded ring (all but tokio's, see the module docs).
const CAP: usize = 1024;

/// One run: a sender thread sends `0..n` through `send`, `subs` subscriber
/// threads each receive `n` messages through `recv`. Returns the time from
/// the first send to the last subscriber's last receive.
fn fanout<S, R>(
    n: u64,
    subs: usize,
    make: impl FnOnce(usize, u64) -> (S, Vec<R>),
    send: impl Fn(&mut S, u64) + Send + 'static,
    recv: impl Fn(&mut R) -> u64 + Send + Copy + 'static,
) -> Duration
where
    S: Send + 'static,
    R: Send + 'static,
{
    let (mut tx, rxs) = make(subs, n);
    assert_eq!(rxs.len(), subs);
    let barrier = Arc::new(Barrier::new(subs + 1));
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
                (Instant::now(), sum)
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
    let mut end = start;
    for h in receivers {
        let (done, sum) = h.join().unwrap();
        assert_eq!(sum, n * (n - 1) / 2, "a subscriber missed messages");
        end = end.max(done);
    }
    end - start
}

// ---- rillet: one broadcast channel, capacity 1024, Block ----

type RilletTx = rillet::broadcast::Sender<u64>;
type RilletRx = rillet::broadcast::Receiver<u64>;

fn rillet_make(subs: usize, _n: u64) -> (RilletTx, Vec<RilletRx>) {
    let (tx, rx) = rillet::broadcast::Builder::new(CAP)
        .overflow(rillet::Overflow::Block)
        .build();
    let mut rxs = vec![rx];
    rxs.extend((1..subs).map(|_| tx.subscribe()));
    (tx, rxs)
}
fn rillet_send(tx: &mut RilletTx, v: u64) {
    tx.send(v).unwrap();
}
fn rillet_recv(rx: &mut RilletRx) -> u64 {
    rx.recv().unwrap()
}

// ---- crossbeam-channel fan-out: one bounded(1024) per subscriber ----

type CbTx = Vec<crossbeam_channel::Sender<u64>>;
type CbRx = crossbeam_channel::Receiver<u64>;

fn cb_make(subs: usize, _n: u64) -> (CbTx, Vec<CbRx>) {
    (0..subs).map(|_| crossbeam_channel::bounded(CAP)).unzip()
}
fn cb_send(txs: &mut CbTx, v: u64) {
    for tx in txs.iter() {
        tx.send(v).unwrap();
    }
}
fn cb_recv(rx: &mut CbRx) -> u64 {
    rx.recv().unwrap()
}

// ---- bus: Bus::new(1024), one reader per subscriber ----

type BusTx = bus::Bus<u64>;
type BusRx = bus::BusReader<u64>;

fn bus_make(subs: usize, _n: u64) -> (BusTx, Vec<BusRx>) {
    let mut bus = bus::Bus::new(CAP);
    let rxs = (0..subs).map(|_| bus.add_rx()).collect();
    (bus, rxs)
}
fn bus_send(tx: &mut BusTx, v: u64) {
    tx.broadcast(v);
}
fn bus_recv(rx: &mut BusRx) -> u64 {
    rx.recv().unwrap()
}

// ---- tokio::sync::broadcast: capacity N (it never blocks the sender) ----

type TokioTx = tokio::sync::broadcast::Sender<u64>;
type TokioRx = tokio::sync::broadcast::Receiver<u64>;

fn tokio_make(subs: usize, n: u64) -> (TokioTx, Vec<TokioRx>) {
    // Capacity n, not 1024: tokio's sender overwrites instead of waiting,
    // and a smaller ring would make the subscribers lose messages.
    let (tx, rx) = tokio::sync::broadcast::channel(n as usize);
    let mut rxs = vec![rx];
    rxs.extend((1..subs).map(|_| tx.subscribe()));
    (tx, rxs)
}
fn tokio_send(tx: &mut TokioTx, v: u64) {
    tx.send(v).unwrap();
}
fn tokio_recv(rx: &mut TokioRx) -> u64 {
    match rx.blocking_recv() {
        Ok(v) => v,
        Err(e) => panic!("tokio subscriber: {e}"),
    }
}

fn fanout_group(c: &mut Criterion, subs: usize) {
    let mut g = c.benchmark_group(format!("broadcast_fanout_{subs}"));
    g.throughput(Throughput::Elements(N));
    // One iteration is a whole run of N messages (milliseconds).
    g.sampling_mode(SamplingMode::Flat);
    let run = |iters: u64, one: &dyn Fn() -> Duration| (0..iters).map(|_| one()).sum::<Duration>();
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            run(iters, &|| {
                fanout(N, subs, rillet_make, rillet_send, rillet_recv)
            })
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| run(iters, &|| fanout(N, subs, cb_make, cb_send, cb_recv)))
    });
    g.bench_function("bus", |b| {
        b.iter_custom(|iters| run(iters, &|| fanout(N, subs, bus_make, bus_send, bus_recv)))
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            run(iters, &|| {
                fanout(N, subs, tokio_make, tokio_send, tokio_recv)
            })
        })
    });
    g.finish();
}

/// Batches: the sender sends `0..N` with `send_many` in batches of
/// `BATCH`; each of `subs` subscribers receives with `recv_many`. Timed
/// from the first send to the last subscriber's last receive.
const BATCH: usize = 256;

fn rillet_batches(subs: usize) -> Duration {
    let (tx, rxs) = rillet_make(subs, N);
    let barrier = Arc::new(Barrier::new(subs + 1));
    let receivers: Vec<_> = rxs
        .into_iter()
        .map(|rx| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut buf = Vec::with_capacity(BATCH);
                let (mut got, mut sum) = (0u64, 0u64);
                while got < N {
                    buf.clear();
                    got += rx.recv_many(&mut buf, BATCH).unwrap() as u64;
                    sum = buf.iter().fold(sum, |s, v| s.wrapping_add(*v));
                }
                (Instant::now(), sum)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut i = 0;
    while i < N {
        let next = (i + BATCH as u64).min(N);
        tx.send_many(i..next).unwrap();
        i = next;
    }
    let mut end = start;
    for h in receivers {
        let (done, sum) = h.join().unwrap();
        assert_eq!(sum, N * (N - 1) / 2, "a subscriber missed messages");
        end = end.max(done);
    }
    end - start
}

fn broadcast_batches_4(c: &mut Criterion) {
    let subs = 4;
    let mut g = c.benchmark_group(format!("broadcast_batches_of_{BATCH}_{subs}"));
    g.throughput(Throughput::Elements(N));
    g.sampling_mode(SamplingMode::Flat);
    let run = |iters: u64, one: &dyn Fn() -> Duration| (0..iters).map(|_| one()).sum::<Duration>();
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| run(iters, &|| rillet_batches(subs)))
    });
    g.bench_function("rillet loop", |b| {
        b.iter_custom(|iters| {
            run(iters, &|| {
                fanout(N, subs, rillet_make, rillet_send, rillet_recv)
            })
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| run(iters, &|| fanout(N, subs, cb_make, cb_send, cb_recv)))
    });
    g.finish();
}

fn broadcast_fanout_4(c: &mut Criterion) {
    fanout_group(c, 4);
}

fn broadcast_fanout_1(c: &mut Criterion) {
    fanout_group(c, 1);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = broadcast_fanout_4, broadcast_fanout_1, broadcast_batches_4
}
criterion_main!(benches);
