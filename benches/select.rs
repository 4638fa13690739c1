//! `select!` over four MPSC channels (capacity 1024), one producer each,
//! one consumer selecting over the four receivers: rillet's `select!`
//! beside crossbeam-channel's. Throughput in messages received.

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

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = select_4_producers
}
criterion_main!(benches);
