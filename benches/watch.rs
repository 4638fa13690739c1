//! The watch store's event flow (see `common/watch_flow.rs`): 4 writers, 8
//! watchers with mixed filters, every write delivered to 6 of them. rillet's
//! `watch::Store` beside a `Mutex<HashMap>` plus a crossbeam-channel per
//! watcher. Throughput in events delivered; the `versus` example prints
//! the write latencies (median, p99).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

#[path = "common/watch_flow.rs"]
mod watch_flow;

use watch_flow::{DELIVERED_PER_WRITE, WRITERS};

fn writes_for(iters: u64) -> u64 {
    (iters / (WRITERS as u64 * DELIVERED_PER_WRITE)).max(1)
}

fn watch_flow(c: &mut Criterion) {
    let mut g = c.benchmark_group("watch/4_writers_8_watchers_delivered");
    g.throughput(Throughput::Elements(1));
    // One iteration = one delivered event.
    g.bench_function("rillet", |b| {
        b.iter_custom(|iters| {
            let w = writes_for(iters);
            let f = watch_flow::rillet(w);
            f.elapsed.mul_f64(iters as f64 / f.delivered as f64)
        })
    });
    g.bench_function("mutex_hashmap_crossbeam", |b| {
        b.iter_custom(|iters| {
            let w = writes_for(iters);
            let f = watch_flow::baseline(w);
            f.elapsed.mul_f64(iters as f64 / f.delivered as f64)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = watch_flow
}
criterion_main!(benches);
