//! MPSC benches: rillet beside crossbeam-channel on the same work in every
//! group; each measured run checks what it received.
//!
//! `cargo bench --bench mpsc`; compare ratios within one run.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "common/lifecycle.rs"]
mod lifecycle;
use std::thread;
use std::time::{Duration, Instant};

/// `producers` threads send `iters` messages in all through the channel
/// `make` builds; this thread receives them. Timed to the last receive.
fn producers<S, R>(
    iters: u64,
    producers: u64,
    make: impl FnOnce() -> (S, R),
    send: impl Fn(&S, u64) + Send + Copy + 'static,
    recv_all: impl FnOnce(R) -> (u64, u64),
) -> Duration
where
    S: Clone + Send + 'static,
{
    let (tx, rx) = make();
    let per = (iters / producers).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    send(&tx, p * per + i);
                }
            })
        })
        .collect();
    drop(tx);
    let (count, sum) = recv_all(rx);
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    let total = per * producers;
    assert_eq!((count, sum), (total, total * (total - 1) / 2));
    elapsed
}

/// A channel of `CAP` slots.
fn rillet_make<const CAP: usize>() -> (rillet::mpsc::Sender<u64>, rillet::mpsc::Receiver<u64>) {
    rillet::mpsc::channel(CAP)
}
fn rillet_send(tx: &rillet::mpsc::Sender<u64>, v: u64) {
    tx.send(v).unwrap();
}
fn rillet_recv_all(rx: rillet::mpsc::Receiver<u64>) -> (u64, u64) {
    rx.iter().fold((0, 0), |(c, s), v| (c + 1, s + v))
}
fn cb_make<const CAP: usize>() -> (
    crossbeam_channel::Sender<u64>,
    crossbeam_channel::Receiver<u64>,
) {
    crossbeam_channel::bounded(CAP)
}
fn cb_send(tx: &crossbeam_channel::Sender<u64>, v: u64) {
    tx.send(v).unwrap();
}
fn cb_recv_all(rx: crossbeam_channel::Receiver<u64>) -> (u64, u64) {
    rx.iter().fold((0, 0), |(c, s), v| (c + 1, s + v))
}

/// A timeout long enough never to expire here.
const TIMEOUT: Duration = Duration::from_secs(60);

fn rillet_send_timeout(tx: &rillet::mpsc::Sender<u64>, v: u64) {
    tx.send_timeout(v, TIMEOUT).unwrap();
}
fn rillet_recv_timeout_all(rx: rillet::mpsc::Receiver<u64>) -> (u64, u64) {
    let (mut c, mut s) = (0, 0);
    while let Ok(v) = rx.recv_timeout(TIMEOUT) {
        (c, s) = (c + 1, s + v);
    }
    (c, s)
}
fn cb_send_timeout(tx: &crossbeam_channel::Sender<u64>, v: u64) {
    tx.send_timeout(v, TIMEOUT).unwrap();
}
fn cb_recv_timeout_all(rx: crossbeam_channel::Receiver<u64>) -> (u64, u64) {
    let (mut c, mut s) = (0, 0);
    while let Ok(v) = rx.recv_timeout(TIMEOUT) {
        (c, s) = (c + 1, s + v);
    }
    (c, s)
}

/// One library's side of a [`producers`] group.
struct Side<S, R> {
    make: fn() -> (S, R),
    send: fn(&S, u64),
    recv_all: fn(R) -> (u64, u64),
}

impl<S, R> Clone for Side<S, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, R> Copy for Side<S, R> {}

fn rillet_side<const CAP: usize>() -> Side<rillet::mpsc::Sender<u64>, rillet::mpsc::Receiver<u64>> {
    Side {
        make: rillet_make::<CAP>,
        send: rillet_send,
        recv_all: rillet_recv_all,
    }
}

fn cb_side<const CAP: usize>(
) -> Side<crossbeam_channel::Sender<u64>, crossbeam_channel::Receiver<u64>> {
    Side {
        make: cb_make::<CAP>,
        send: cb_send,
        recv_all: cb_recv_all,
    }
}

/// The group `name`: `p` producers and this thread's consumer
/// ([`producers`]), rillet beside crossbeam-channel.
fn producers_group<RS, RR, CS, CR>(
    c: &mut Criterion,
    name: &str,
    p: u64,
    rillet: Side<RS, RR>,
    crossbeam: Side<CS, CR>,
) where
    RS: Clone + Send + 'static,
    CS: Clone + Send + 'static,
{
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| producers(iters.max(p), p, rillet.make, rillet.send, rillet.recv_all))
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            producers(
                iters.max(p),
                p,
                crossbeam.make,
                crossbeam.send,
                crossbeam.recv_all,
            )
        })
    });
    g.finish();
}

fn mpsc_producers(c: &mut Criterion) {
    // One producer through a ring of 64: the consumer's batch wait (see
    // `Array::before_recv_wait`) at a size where it is a few lines.
    producers_group(
        c,
        "mpsc/cap64_1_producer",
        1,
        rillet_side::<64>(),
        cb_side::<64>(),
    );
    // Two producers with `send_timeout`, the consumer with `recv_timeout`.
    producers_group(
        c,
        "mpsc/cap1024_2_producers_timeouts",
        2,
        Side {
            send: rillet_send_timeout,
            recv_all: rillet_recv_timeout_all,
            ..rillet_side::<1024>()
        },
        Side {
            send: cb_send_timeout,
            recv_all: cb_recv_timeout_all,
            ..cb_side::<1024>()
        },
    );
    // Four producers through a ring of 16: they wait for room most of the
    // time (see `Array::before_send_wait`).
    producers_group(
        c,
        "mpsc/cap16_4_producers",
        4,
        rillet_side::<16>(),
        cb_side::<16>(),
    );
    for p in [2u64, 4, 8] {
        producers_group(
            c,
            &format!("mpsc/cap1024_{p}_producers"),
            p,
            rillet_side::<1024>(),
            cb_side::<1024>(),
        );
    }
}

/// Round trips through two rendezvous channels (rillet `mpsc::channel(0)`,
/// crossbeam `bounded(0)`).
fn mpsc_rendezvous(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpsc/rendezvous_pingpong");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            let (tx1, rx1) = rillet::mpsc::channel::<u64>(0);
            let (tx2, rx2) = rillet::mpsc::channel::<u64>(0);
            let h = thread::spawn(move || {
                for v in rx1.iter() {
                    tx2.send(v + 1).unwrap();
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                tx1.send(i).unwrap();
                assert_eq!(rx2.recv().unwrap(), i + 1);
            }
            let elapsed = start.elapsed();
            drop(tx1);
            h.join().unwrap();
            elapsed
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            let (tx1, rx1) = crossbeam_channel::bounded::<u64>(0);
            let (tx2, rx2) = crossbeam_channel::bounded::<u64>(0);
            let h = thread::spawn(move || {
                for v in rx1.iter() {
                    tx2.send(v + 1).unwrap();
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                tx1.send(i).unwrap();
                assert_eq!(rx2.recv().unwrap(), i + 1);
            }
            let elapsed = start.elapsed();
            drop(tx1);
            h.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

/// Batches: `BATCH_PRODUCERS` threads send their share of `iters` messages
/// with `send_many` in batches of `BATCH` into a channel of capacity `CAP`;
/// this thread receives with `recv_many`. Beside it, the same flow message
/// by message (rillet's own loop, and crossbeam, which has no batch API).
const BATCH: usize = 256;
const BATCH_PRODUCERS: u64 = 2;

fn rillet_batches<const CAP: usize>(iters: u64) -> Duration {
    let (tx, rx) = rillet::mpsc::channel::<u64>(CAP);
    let per = (iters / BATCH_PRODUCERS).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..BATCH_PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let (first, end) = (p * per, (p + 1) * per);
                let mut i = first;
                while i < end {
                    let next = (i + BATCH as u64).min(end);
                    assert_eq!(tx.send_many(i..next), Ok((next - i) as usize));
                    i = next;
                }
            })
        })
        .collect();
    drop(tx);
    let mut buf = Vec::with_capacity(BATCH);
    let (mut count, mut sum) = (0u64, 0u64);
    while let Ok(n) = rx.recv_many(&mut buf, BATCH) {
        count += n as u64;
        sum = buf.drain(..).fold(sum, |s, v| s + v);
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    let total = per * BATCH_PRODUCERS;
    assert_eq!((count, sum), (total, total * (total - 1) / 2));
    elapsed
}

/// The batches at capacity 1024, at 64, where a ring that is often
/// nearly full once made `send_many` send batches of one or two messages
/// (0.3-0.7x its loop of `send`), and at 0, the rendezvous channel, whose
/// `send_many` was a loop of `send` (a meeting per message) until it
/// handed a batch over at once.
fn mpsc_batches(c: &mut Criterion) {
    let p = BATCH_PRODUCERS;
    batches_group::<1024>(c, format!("mpsc/batches_of_{BATCH}_{p}_producers"));
    batches_group::<64>(c, format!("mpsc/batches_of_{BATCH}_{p}_producers_cap64"));
    batches_group::<0>(
        c,
        format!("mpsc/batches_of_{BATCH}_{p}_producers_rendezvous"),
    );
}

fn batches_group<const CAP: usize>(c: &mut Criterion, name: String) {
    let p = BATCH_PRODUCERS;
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| rillet_batches::<CAP>(iters.max(p)))
    });
    g.bench_function("rillet loop", |b| {
        b.iter_custom(|iters| {
            producers(
                iters.max(p),
                p,
                rillet_make::<CAP>,
                rillet_send,
                rillet_recv_all,
            )
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| producers(iters.max(p), p, cb_make::<CAP>, cb_send, cb_recv_all))
    });
    g.finish();
}

/// Make a capacity-1024 channel, send one message, receive it, drop both
/// handles: the cost of a channel per request (issue 11, part 3). One
/// iteration is one whole channel life.
fn mpsc_lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpsc/lifecycle_cap1024");
    g.throughput(Throughput::Elements(1));
    lifecycle::bench(
        &mut g,
        "rillet",
        || rillet::mpsc::channel::<u64>(1024),
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    );
    lifecycle::bench(
        &mut g,
        "crossbeam",
        || crossbeam_channel::bounded::<u64>(1024),
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    );
    lifecycle::bench(
        &mut g,
        "kanal",
        || kanal::bounded::<u64>(1024),
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    );
    g.finish();
}

/// A 64-byte message.
#[derive(Clone, Copy)]
struct Msg64([u64; 8]);

/// Two producers send 64-byte messages through a capacity-1024 channel
/// (issue 11, part 4): rillet, crossbeam and std's `sync_channel`.
fn mpsc_msg64(c: &mut Criterion) {
    fn run<S: Send + 'static>(
        iters: u64,
        (tx, rx): (S, impl FnMut() -> Option<Msg64>),
        send: impl Fn(&S, Msg64) + Send + Copy + 'static,
        clone: impl Fn(&S) -> S,
    ) -> Duration {
        let per = (iters / 2).max(1);
        let mut rx = rx;
        let start = Instant::now();
        let handles: Vec<_> = (0..2u64)
            .map(|p| {
                let tx = clone(&tx);
                thread::spawn(move || {
                    for i in 0..per {
                        send(&tx, Msg64([p * per + i; 8]));
                    }
                })
            })
            .collect();
        drop(tx);
        let (mut count, mut sum) = (0u64, 0u64);
        while let Some(m) = rx() {
            count += 1;
            sum += m.0[0] + m.0[7];
        }
        let elapsed = start.elapsed();
        for h in handles {
            h.join().unwrap();
        }
        let total = per * 2;
        assert_eq!((count, sum), (total, total * (total - 1)));
        elapsed
    }
    let mut g = c.benchmark_group("mpsc/cap1024_2_producers_msg64");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = rillet::mpsc::channel::<Msg64>(1024);
            run(
                iters,
                (tx, move || rx.recv().ok()),
                |t, m| t.send(m).unwrap(),
                Clone::clone,
            )
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::bounded::<Msg64>(1024);
            run(
                iters,
                (tx, move || rx.recv().ok()),
                |t, m| t.send(m).unwrap(),
                Clone::clone,
            )
        })
    });
    g.bench_function("std_sync_channel", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Msg64>(1024);
            run(
                iters,
                (tx, move || rx.recv().ok()),
                |t, m| t.send(m).unwrap(),
                Clone::clone,
            )
        })
    });
    g.finish();
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
    targets = mpsc_producers, mpsc_batches, mpsc_rendezvous, mpsc_lifecycle, mpsc_msg64
}
criterion_main!(benches);
