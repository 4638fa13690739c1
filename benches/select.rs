//! `select!` over four MPSC channels (capacity 1024), one producer each,
//! one consumer selecting over the four receivers: rillet's `select!`
//! beside crossbeam-channel's. Throughput in messages received.
//!
//! And a `select!`'s `send` case on a rendezvous channel (capacity 0)
//! meeting a receiver in a plain `recv`, one hand-off per iteration: the
//! selecting sender waits on its offer until the receiver claims it.
//!
//! And a one-case `select!` with `default(timeout)` receiving from one
//! producer (the timeout never expires).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::thread;
use std::time::{Duration, Instant};

const PRODUCERS: u64 = 4;

fn rillet_select(iters: u64) -> Duration {
    let per = (iters / PRODUCERS).max(1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..PRODUCERS)
        .map(|_| rillet::mpsc::channel::<u64>(1024))
        .unzip();
    let start = Instant::now();
    let handles: Vec<_> = txs
        .into_iter()
        .map(|tx| {
            thread::spawn(move || {
                for i in 0..per {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    let (mut count, mut sum, mut open) = (0u64, 0u64, [true; 4]);
    while open.iter().any(|&o| o) {
        let (k, m) = rillet::select! {
            recv(rxs[0]) -> m => (0, m),
            recv(rxs[1]) -> m => (1, m),
            recv(rxs[2]) -> m => (2, m),
            recv(rxs[3]) -> m => (3, m),
        };
        match m {
            Ok(v) => {
                count += 1;
                sum += v;
            }
            Err(_) => open[k] = false,
        }
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        (count, sum),
        (per * PRODUCERS, PRODUCERS * per * (per - 1) / 2)
    );
    elapsed
}

fn crossbeam_select(iters: u64) -> Duration {
    let per = (iters / PRODUCERS).max(1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..PRODUCERS)
        .map(|_| crossbeam_channel::bounded::<u64>(1024))
        .unzip();
    let start = Instant::now();
    let handles: Vec<_> = txs
        .into_iter()
        .map(|tx| {
            thread::spawn(move || {
                for i in 0..per {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    let (mut count, mut sum, mut open) = (0u64, 0u64, [true; 4]);
    while open.iter().any(|&o| o) {
        let (k, m) = crossbeam_channel::select! {
            recv(rxs[0]) -> m => (0, m),
            recv(rxs[1]) -> m => (1, m),
            recv(rxs[2]) -> m => (2, m),
            recv(rxs[3]) -> m => (3, m),
        };
        match m {
            Ok(v) => {
                count += 1;
                sum += v;
            }
            Err(_) => open[k] = false,
        }
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        (count, sum),
        (per * PRODUCERS, PRODUCERS * per * (per - 1) / 2)
    );
    elapsed
}

fn select_4_producers(c: &mut Criterion) {
    let mut g = c.benchmark_group("select/4_producers_4_channels_cap1024");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| rillet_select(iters.max(PRODUCERS)))
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| crossbeam_select(iters.max(PRODUCERS)))
    });
    g.finish();
}

/// `iters` hand-offs: this thread sends each through a one-case
/// `select!`, another receives with `recv`. Rillet's and crossbeam's
/// bodies are the same code over their own macro and channel.
macro_rules! select_send_to_recv {
    ($iters:expr, $channel:expr, $select:ident) => {{
        let iters = $iters;
        let (tx, rx) = $channel;
        let receiver = thread::spawn(move || {
            let mut sum = 0u64;
            for _ in 0..iters {
                sum += rx.recv().unwrap();
            }
            sum
        });
        let start = Instant::now();
        for i in 0..iters {
            $select::select! { send(tx, i) -> r => r.unwrap() }
        }
        let sum = receiver.join().unwrap();
        let elapsed = start.elapsed();
        assert_eq!(sum, iters * (iters - 1) / 2);
        elapsed
    }};
}

fn select_send_rendezvous(c: &mut Criterion) {
    let mut g = c.benchmark_group("select/send_case_to_recv_cap0");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            select_send_to_recv!(iters.max(2), rillet::mpsc::channel::<u64>(0), rillet)
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            select_send_to_recv!(
                iters.max(2),
                crossbeam_channel::bounded::<u64>(0),
                crossbeam_channel
            )
        })
    });
    g.finish();
}

/// `iters` messages from one producer, received through a one-case
/// `select!` with `default(timeout)` (a timeout that never expires here),
/// the loop of a consumer that also watches for a stall.
macro_rules! select_recv_with_timeout {
    ($iters:expr, $channel:expr, $select:ident) => {{
        let iters = $iters;
        let (tx, rx) = $channel;
        let producer = thread::spawn(move || {
            for i in 0..iters {
                tx.send(i).unwrap();
            }
        });
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..iters {
            $select::select! {
                recv(rx) -> m => sum += m.unwrap(),
                default(Duration::from_secs(60)) => panic!("no message in a minute"),
            }
        }
        let elapsed = start.elapsed();
        producer.join().unwrap();
        assert_eq!(sum, iters * (iters - 1) / 2);
        elapsed
    }};
}

fn select_recv_timeout(c: &mut Criterion) {
    let mut g = c.benchmark_group("select/recv_case_default_timeout_cap1024");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            select_recv_with_timeout!(iters.max(2), rillet::mpsc::channel::<u64>(1024), rillet)
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            select_recv_with_timeout!(
                iters.max(2),
                crossbeam_channel::bounded::<u64>(1024),
                crossbeam_channel
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
    targets = select_4_producers, select_send_rendezvous, select_recv_timeout
}
criterion_main!(benches);
