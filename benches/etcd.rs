//! The watch store on etcd (feature `etcd`: `cargo bench --features etcd
//! --bench etcd`) beside the same flow through the embedded store: 4
//! writer threads update keys of one kind, 8 watchers with mixed filters
//! (as in `common/watch_flow.rs`: 4 take everything, 2 `Update` only, 2
//! `Create`/`Delete`), so every write is delivered to 6 of them. The
//! throughput is in events delivered; before the groups run, one run of
//! each prints events/s and `set` latency (median, p99). The bench starts
//! its own etcd (Debian's `etcd-server`) on ports the OS picks, with its
//! data in a temporary directory (fsync on, as etcd runs by default).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rillet::watch::etcd::EtcdStore;
use rillet::watch::{Store, WatchOptions, WatchStore};
use rillet::Overflow;
use std::fmt::Debug;
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../tests/common/etcd_server.rs"]
mod etcd_server;
#[path = "common/watch_flow.rs"]
mod watch_flow;

use watch_flow::{filter, DELIVERED_PER_WRITE, WATCHERS, WRITERS};

/// Fewer keys than the embedded flow's 64 per writer: each etcd key is a
/// round trip to create.
const KEYS_PER_WRITER: u64 = 16;

struct Flow {
    elapsed: Duration,
    delivered: u64,
    latencies: Vec<u64>,
}

impl Flow {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Duration::from_nanos(self.latencies[i])
    }
}

/// One run: `writes` updates per writer, then `~end` is updated and
/// deleted (every watcher's filter takes one of the two) so that each
/// watcher knows it has everything, whatever the backend's delivery delay.
fn flow<S>(store: &S, kind: &str, writes: u64) -> Flow
where
    S: WatchStore<u64> + Clone + Send + Sync + 'static,
    S::Error: Debug,
{
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            store.set(kind, &format!("w{w}-{i}"), 0).unwrap();
        }
    }
    store.set(kind, "~end", 0).unwrap();
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|w| {
            let watch = store
                .watch(
                    kind,
                    WatchOptions::new()
                        .event_types(filter(w))
                        .buffer(1024)
                        .overflow(Overflow::Block),
                )
                .unwrap();
            let ready = ready.clone();
            thread::spawn(move || {
                ready.wait();
                let mut n = 0u64;
                loop {
                    let ev = watch.recv().expect("no loss under Block");
                    if ev.name == "~end" {
                        return n;
                    }
                    std::hint::black_box(&ev.object);
                    n += 1;
                }
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    let mut latencies = Vec::new();
    thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(writes as usize);
                    for i in 0..writes {
                        let name = format!("w{w}-{}", i % KEYS_PER_WRITER);
                        let t = Instant::now();
                        // Every value differs from the last: an Update.
                        store
                            .set(kind, &name, start.elapsed().as_nanos() as u64 + i + 1)
                            .unwrap();
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        for h in handles {
            latencies.extend(h.join().unwrap());
        }
    });
    store.set(kind, "~end", 1).unwrap();
    store.delete(kind, "~end").unwrap();
    let delivered: u64 = watchers.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = start.elapsed();
    assert_eq!(delivered, writes * WRITERS as u64 * DELIVERED_PER_WRITE);
    latencies.sort_unstable();
    Flow {
        elapsed,
        delivered,
        latencies,
    }
}

/// The server and a store on it, for the whole bench run.
fn etcd() -> &'static (etcd_server::EtcdServer, EtcdStore<u64>) {
    static SERVER: OnceLock<(etcd_server::EtcdServer, EtcdStore<u64>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = etcd_server::EtcdServer::start();
        let store = EtcdStore::connect([server.endpoint()], "/bench/").expect("connect");
        (server, store)
    })
}

/// A fresh kind per run: each run's watchers start clean.
fn next_kind() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("k{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn report(name: &str, f: &Flow) {
    eprintln!(
        "{name:>9}: {:>10.0} events/s, set p50 {:>8.1?}, p99 {:>8.1?} ({} writes)",
        f.delivered as f64 / f.elapsed.as_secs_f64(),
        f.percentile(0.5),
        f.percentile(0.99),
        f.latencies.len()
    );
}

fn etcd_flow(c: &mut Criterion) {
    let (_, remote) = etcd();
    report("embedded", &flow(&Store::<u64>::new(), "k", 20_000));
    report("etcd", &flow(remote, &next_kind(), 250));

    let mut g = c.benchmark_group("watch_etcd/4_writers_8_watchers_delivered");
    g.throughput(Throughput::Elements(1));
    // One iteration = one delivered event.
    let per_run = |iters: u64| (iters / (WRITERS as u64 * DELIVERED_PER_WRITE)).max(1);
    g.bench_function("embedded", |b| {
        b.iter_custom(|iters| {
            let f = flow(&Store::<u64>::new(), "k", per_run(iters));
            f.elapsed.mul_f64(iters as f64 / f.delivered as f64)
        })
    });
    g.bench_function("etcd", |b| {
        b.iter_custom(|iters| {
            let f = flow(remote, &next_kind(), per_run(iters).min(2_000));
            f.elapsed.mul_f64(iters as f64 / f.delivered as f64)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = etcd_flow
}
criterion_main!(benches);
