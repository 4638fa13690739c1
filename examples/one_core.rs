//! The one-CPU floor: how close rillet's hand-offs come to the cheapest
//! switch between two threads that Linux offers, next to crossbeam-channel.
//!
//! ```text
//! taskset -c 0 cargo run --release --example one_core
//! ```
//!
//! On one CPU every message of a capacity-1 channel, and every round trip of
//! a ping-pong, needs two context switches (sender to receiver and back).
//! The "floor" column does only that: two threads hand a turn back and forth
//! through one atomic, each calling `sched_yield` until it is its turn, with
//! no channel at all. No channel built on these primitives can beat it, so
//! the best ratio any channel can reach against crossbeam on a given machine
//! is `floor / crossbeam`.
//!
//! Set `VERSUS_RUNS` to change the number of runs per cell (default 5).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn runs() -> usize {
    std::env::var("VERSUS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// Two threads take turns through one counter: the cost of two switches.
fn floor(n: u64) -> Duration {
    let turn = Arc::new(AtomicU64::new(0));
    let other = turn.clone();
    let h = thread::spawn(move || {
        for i in 0..n {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                thread::yield_now();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..n {
        while turn.load(Ordering::Acquire) != 2 * i {
            thread::yield_now();
        }
        turn.store(2 * i + 1, Ordering::Release);
    }
    h.join().unwrap();
    start.elapsed()
}

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

fn rillet_cap1(n: u64) -> Duration {
    let (tx, rx) = rillet::spsc::channel::<u64>(1);
    let h = thread::spawn(move || rx.iter().fold(0u64, |a, v| a.wrapping_add(v)));
    let start = Instant::now();
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    black_box(h.join().unwrap());
    start.elapsed()
}

fn crossbeam_cap1(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(1);
    let h = thread::spawn(move || rx.iter().fold(0u64, |a, v| a.wrapping_add(v)));
    let start = Instant::now();
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    black_box(h.join().unwrap());
    start.elapsed()
}

type Bench = (u64, fn(u64) -> Duration);

/// Median rate (millions per second) of each bench, the benches taking
/// turns run by run so that all of them see the same phases of the machine.
fn measure(benches: &[Bench]) -> Vec<f64> {
    let mut rates = vec![Vec::new(); benches.len()];
    for _ in 0..runs() {
        for (i, &(n, f)) in benches.iter().enumerate() {
            rates[i].push(n as f64 / f(n).as_secs_f64() / 1e6);
        }
    }
    rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect()
}

fn main() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    if cpus != 1 {
        println!(
            "note: this process may run on {cpus} CPUs; the floor is a one-CPU \
             figure (run under `taskset -c 0`)\n"
        );
    }
    println!(
        "one CPU: millions per second, median of {} runs (higher is better)\n",
        runs()
    );
    println!(
        "{:<34} {:>8} {:>10} {:>8} {:>8}  {:>8}  {:>10}",
        "scenario", "rillet", "crossbeam", "floor", "ratio", "best", "of floor"
    );
    let rows: [(&str, [Bench; 3]); 2] = [
        (
            "ping-pong cap 1 [round trips/s]",
            [
                (100_000, rillet_pingpong),
                (30_000, crossbeam_pingpong),
                (100_000, floor),
            ],
        ),
        (
            "spsc cap 1, u64 [msg/s]",
            [
                (100_000, rillet_cap1),
                (30_000, crossbeam_cap1),
                (100_000, floor),
            ],
        ),
    ];
    for (name, benches) in rows {
        let r = measure(&benches);
        println!(
            "{:<34} {:>8.3} {:>10.3} {:>8.3} {:>7.2}x {:>7.2}x {:>9.0}%",
            name,
            r[0],
            r[1],
            r[2],
            r[0] / r[1],
            r[2] / r[1],
            100.0 * r[0] / r[2],
        );
    }
    println!(
        "\nratio = rillet / crossbeam; best = floor / crossbeam, the most any channel \
         could reach here; of floor = rillet / floor."
    );
}
