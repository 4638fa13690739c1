//! SPSC benches: rillet beside crossbeam-channel `bounded` and rtrb, on the
//! same work in every group. Each measured run checks what it received.
//!
//! rtrb cannot block, so its sides busy-wait (with a spin hint), as in rtrb's
//! own two-thread benches.
//!
//! `cargo bench --bench spsc`; ratios between rows of one run are what
//! counts on a shared machine.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]
// Each library's send and receive reach the helpers as closures, not as
// the functions themselves: a function item is called through a shim that
// LLVM left out of line for rillet (whose fast path is the larger), so
// every message paid a call and the two threads' pacing changed. Until
// 2026-12-06, capacity 1024, u64: rillet 114-140 M msg/s against rtrb's
// 120-330 that way, 341 against 317 with closures (`versus`, which calls
// `send` directly, showed rillet ahead all along).
#![allow(clippy::redundant_closure)]

#[path = "common/lifecycle.rs"]
mod lifecycle;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// A message type with a checkable value.
trait Msg: Send + 'static {
    fn new(i: u64) -> Self;
    fn value(&self) -> u64;
}

impl Msg for u64 {
    fn new(i: u64) -> Self {
        i
    }
    fn value(&self) -> u64 {
        *self
    }
}

#[derive(Clone, Copy)]
struct Msg64([u64; 8]);

impl Msg for Msg64 {
    fn new(i: u64) -> Self {
        Msg64([i; 8])
    }
    fn value(&self) -> u64 {
        black_box(self).0[7]
    }
}

/// Cross-thread throughput: a producer thread sends `iters` messages, this
/// thread receives them; timed from a barrier to the last receive.
fn throughput<T: Msg, S, R>(
    iters: u64,
    make: impl FnOnce() -> (S, R),
    send: impl Fn(&mut S, T) + Send + 'static,
    recv: impl Fn(&mut R) -> T,
) -> Duration
where
    S: Send + 'static,
{
    let (mut tx, mut rx) = make();
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let h = thread::spawn(move || {
        b.wait();
        for i in 0..iters {
            send(&mut tx, T::new(i));
        }
    });
    barrier.wait();
    let start = Instant::now();
    let mut sum = 0u64;
    for _ in 0..iters {
        sum = sum.wrapping_add(recv(&mut rx).value());
    }
    let elapsed = start.elapsed();
    h.join().unwrap();
    assert_eq!(sum, iters.wrapping_mul(iters.wrapping_sub(1)) / 2);
    elapsed
}

#[inline(always)]
fn rillet_send<T>(tx: &mut rillet::spsc::Sender<T>, v: T) {
    tx.send(v).ok().unwrap();
}
#[inline(always)]
fn rillet_recv<T>(rx: &mut rillet::spsc::Receiver<T>) -> T {
    rx.recv().unwrap()
}
#[inline(always)]
fn cb_send<T>(tx: &mut crossbeam_channel::Sender<T>, v: T) {
    tx.send(v).ok().unwrap();
}
#[inline(always)]
fn cb_recv<T>(rx: &mut crossbeam_channel::Receiver<T>) -> T {
    rx.recv().unwrap()
}
#[inline(always)]
fn rtrb_send<T>(tx: &mut rtrb::Producer<T>, mut v: T) {
    loop {
        match tx.push(v) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                v = back;
                std::hint::spin_loop();
            }
        }
    }
}
#[inline(always)]
fn rtrb_recv<T>(rx: &mut rtrb::Consumer<T>) -> T {
    loop {
        if let Ok(v) = rx.pop() {
            return v;
        }
        std::hint::spin_loop();
    }
}

fn throughput_group<T: Msg>(g: &mut Group<'_>, cap: usize) {
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            throughput::<T, _, _>(
                iters,
                || rillet::spsc::channel(cap),
                |tx, v| rillet_send(tx, v),
                |rx| rillet_recv(rx),
            )
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            throughput::<T, _, _>(
                iters,
                || crossbeam_channel::bounded(cap),
                |tx, v| cb_send(tx, v),
                |rx| cb_recv(rx),
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            throughput::<T, _, _>(
                iters,
                || rtrb::RingBuffer::new(cap),
                |tx, v| rtrb_send(tx, v),
                |rx| rtrb_recv(rx),
            )
        })
    });
}

fn spsc_throughput(c: &mut Criterion) {
    throughput_group::<u64>(&mut c.benchmark_group("spsc/cap1024_u64"), 1024);
    throughput_group::<Msg64>(&mut c.benchmark_group("spsc/cap1024_msg64"), 1024);
    throughput_group::<u64>(&mut c.benchmark_group("spsc/cap1_u64"), 1);
    // The largest ring that keeps its indices and slots on one line.
    throughput_group::<u64>(&mut c.benchmark_group("spsc/cap4_u64"), 4);
    // A mid-size ring: each blocked side's slack is two lines of u64.
    throughput_group::<u64>(&mut c.benchmark_group("spsc/cap64_u64"), 64);
}

/// Two channel pairs: there and back.
type TwoPairs<S1, R1, S2, R2> = ((S1, R1), (S2, R2));

/// Round trips through two capacity-1 channels; one iteration = one round
/// trip.
fn pingpong<S1, R1, S2, R2>(
    iters: u64,
    make: impl FnOnce() -> TwoPairs<S1, R1, S2, R2>,
    send1: impl Fn(&mut S1, u64),
    recv1: impl Fn(&mut R1) -> u64 + Send + 'static,
    send2: impl Fn(&mut S2, u64) + Send + 'static,
    recv2: impl Fn(&mut R2) -> u64,
) -> Duration
where
    R1: Send + 'static,
    S2: Send + 'static,
{
    let ((mut tx1, mut rx1), (mut tx2, mut rx2)) = make();
    let h = thread::spawn(move || {
        for _ in 0..iters {
            let v = recv1(&mut rx1);
            send2(&mut tx2, v + 1);
        }
    });
    let start = Instant::now();
    for i in 0..iters {
        send1(&mut tx1, i);
        assert_eq!(recv2(&mut rx2), i + 1);
    }
    let elapsed = start.elapsed();
    h.join().unwrap();
    elapsed
}

fn spsc_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/pingpong_cap1");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            pingpong(
                iters,
                || (rillet::spsc::channel(1), rillet::spsc::channel(1)),
                |tx, v| rillet_send(tx, v),
                |rx| rillet_recv(rx),
                |tx, v| rillet_send(tx, v),
                |rx| rillet_recv(rx),
            )
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            pingpong(
                iters,
                || (crossbeam_channel::bounded(1), crossbeam_channel::bounded(1)),
                |tx, v| cb_send(tx, v),
                |rx| cb_recv(rx),
                |tx, v| cb_send(tx, v),
                |rx| cb_recv(rx),
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            pingpong(
                iters,
                || (rtrb::RingBuffer::new(1), rtrb::RingBuffer::new(1)),
                |tx, v| rtrb_send(tx, v),
                |rx| rtrb_recv(rx),
                |tx, v| rtrb_send(tx, v),
                |rx| rtrb_recv(rx),
            )
        })
    });
    g.finish();
}

/// One thread sends N then receives N through a capacity-N channel.
fn spsc_fill_drain(c: &mut Criterion) {
    const N: u64 = 4096;
    let mut g = c.benchmark_group("spsc/one_thread_fill_drain_4096");
    g.throughput(Throughput::Elements(2 * N));
    {
        let (tx, rx) = rillet::spsc::channel::<u64>(N as usize);
        g.bench_function("rillet", |b| {
            b.iter(|| {
                for i in 0..N {
                    tx.send(i).unwrap();
                }
                let mut sum = 0;
                for _ in 0..N {
                    sum += rx.recv().unwrap();
                }
                assert_eq!(sum, N * (N - 1) / 2);
            })
        });
    }
    {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(N as usize);
        g.bench_function("crossbeam", |b| {
            b.iter(|| {
                for i in 0..N {
                    tx.send(i).unwrap();
                }
                let mut sum = 0;
                for _ in 0..N {
                    sum += rx.recv().unwrap();
                }
                assert_eq!(sum, N * (N - 1) / 2);
            })
        });
    }
    {
        let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(N as usize);
        g.bench_function("rtrb", |b| {
            b.iter(|| {
                for i in 0..N {
                    tx.push(i).unwrap();
                }
                let mut sum = 0;
                for _ in 0..N {
                    sum += rx.pop().unwrap();
                }
                assert_eq!(sum, N * (N - 1) / 2);
            })
        });
    }
    g.finish();
}

/// Batches of 256 through a channel of capacity `cap` across threads:
/// `send_many`/`recv_many` against the per-message loop (rillet and
/// crossbeam). Capacity 64 as well: there a batch is larger than the ring,
/// and `recv_many` once freed its run only at its end (the sender waited
/// for the whole ring to be read).
fn spsc_batches(c: &mut Criterion) {
    batches_group(c, 1024);
    batches_group(c, 64);
}

fn batches_group(c: &mut Criterion, cap: usize) {
    const BATCH: u64 = 256;
    let mut g = c.benchmark_group(format!("spsc/batches_256_cap{cap}"));
    g.throughput(Throughput::Elements(BATCH));
    let check = |sum: u64, n: u64| assert_eq!(sum, n * (n - 1) / 2);
    g.bench_function("rillet_send_many_recv_many", |b| {
        b.iter_custom(|iters| {
            let n = iters * BATCH;
            let (tx, rx) = rillet::spsc::channel::<u64>(cap);
            let h = thread::spawn(move || {
                let mut i = 0;
                while i < n {
                    tx.send_many(i..i + BATCH).unwrap();
                    i += BATCH;
                }
            });
            let start = Instant::now();
            let mut buf = Vec::with_capacity(BATCH as usize);
            let (mut got, mut sum) = (0u64, 0u64);
            while got < n {
                buf.clear();
                got += rx.recv_many(&mut buf, BATCH as usize).unwrap() as u64;
                sum = buf.iter().fold(sum, |s, v| s.wrapping_add(*v));
            }
            let elapsed = start.elapsed();
            h.join().unwrap();
            check(sum, n);
            elapsed
        })
    });
    // A loop of `send` against `recv_many` in calls of 64: runs cut at
    // their `max` with a few messages left behind (see
    // `spsc::Receiver::recv_many`).
    g.bench_function("rillet_send_loop_recv_many_64", |b| {
        b.iter_custom(|iters| {
            let n = iters * BATCH;
            let (tx, rx) = rillet::spsc::channel::<u64>(cap);
            let h = thread::spawn(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            });
            let start = Instant::now();
            let mut buf = Vec::with_capacity(64);
            let (mut got, mut sum) = (0u64, 0u64);
            while got < n {
                buf.clear();
                got += rx.recv_many(&mut buf, 64).unwrap() as u64;
                sum = buf.iter().fold(sum, |s, v| s.wrapping_add(*v));
            }
            let elapsed = start.elapsed();
            h.join().unwrap();
            check(sum, n);
            elapsed
        })
    });
    g.bench_function("rillet_loop", |b| {
        b.iter_custom(|iters| {
            let n = iters * BATCH;
            throughput::<u64, _, _>(
                n,
                || rillet::spsc::channel(cap),
                |tx, v| rillet_send(tx, v),
                |rx| rillet_recv(rx),
            )
        })
    });
    g.bench_function("crossbeam_loop", |b| {
        b.iter_custom(|iters| {
            let n = iters * BATCH;
            throughput::<u64, _, _>(
                n,
                || crossbeam_channel::bounded(cap),
                |tx, v| cb_send(tx, v),
                |rx| cb_recv(rx),
            )
        })
    });
    g.finish();
}

/// Make a capacity-1024 channel, send one message, receive it, drop both
/// handles (issue 11, part 3). One iteration is one whole channel life.
fn spsc_lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/lifecycle_cap1024");
    g.throughput(Throughput::Elements(1));
    lifecycle::bench(
        &mut g,
        "rillet",
        || rillet::spsc::channel::<u64>(1024),
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
        "rtrb",
        || rtrb::RingBuffer::<u64>::new(1024),
        |tx, v| tx.push(v).unwrap(),
        |rx| rx.pop().unwrap(),
    );
    g.finish();
}

/// One thread sends 2,000,000 u64 into a channel of that capacity, then
/// receives them (issue 11, part 2): a ring far bigger than the caches.
/// A fresh channel per iteration, as in `versus` (first touch included).
fn spsc_big_ring(c: &mut Criterion) {
    const N: u64 = 2_000_000;
    let mut g = c.benchmark_group("spsc/one_thread_fill_drain_2M");
    g.throughput(Throughput::Elements(2 * N));
    g.sample_size(10);
    g.bench_function("rillet", |b| {
        b.iter(|| {
            let (tx, rx) = rillet::spsc::channel::<u64>(N as usize);
            for i in 0..N {
                tx.send(i).unwrap();
            }
            let sum = (0..N).map(|_| rx.recv().unwrap()).sum::<u64>();
            assert_eq!(sum, N * (N - 1) / 2);
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(N as usize);
            for i in 0..N {
                tx.send(i).unwrap();
            }
            let sum = (0..N).map(|_| rx.recv().unwrap()).sum::<u64>();
            assert_eq!(sum, N * (N - 1) / 2);
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter(|| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(N as usize);
            for i in 0..N {
                tx.push(i).unwrap();
            }
            let sum = (0..N).map(|_| rx.pop().unwrap()).sum::<u64>();
            assert_eq!(sum, N * (N - 1) / 2);
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
    targets = spsc_throughput, spsc_pingpong, spsc_fill_drain, spsc_batches, spsc_lifecycle, spsc_big_ring
}
criterion_main!(benches);
