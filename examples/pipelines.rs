//! Four channel patterns from real pipelines, each checking its own
//! promise (a broken one panics, and the process exits non-zero):
//!
//! ```text
//! cargo run --release --example pipelines
//! ```
//!
//! 1. **Batching consumer**: producers send into one `mpsc` channel; the
//!    consumer takes up to 64 messages per `recv_many` (one head update per
//!    batch) until every producer has gone. Nothing lost, nothing twice.
//! 2. **Cache invalidation**: one `broadcast` channel, several caches; each
//!    cache drops the keys it is told about, and ends when the channel
//!    closes. Every cache ends with exactly the keys nobody invalidated.
//! 3. **`select!` with a timeout**: waiting for a slow reply gives up after
//!    a timeout, and a second wait still gets the reply.
//! 4. **Timeout by closing a channel**: a watchdog closes a `done` channel;
//!    a closed channel is ready in every `select!`, so every worker stops
//!    at once, whatever it was waiting for.

use rillet::{broadcast, mpsc, select};
use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    batching();
    cache_invalidation();
    select_with_timeout();
    timeout_by_closing();
    println!("pipelines: all four patterns kept their promises");
}

/// Producers into one channel; a consumer that takes batches.
fn batching() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 50_000;
    let (tx, rx) = mpsc::channel::<u64>(256);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    tx.send(p * EACH + i).unwrap();
                }
            })
        })
        .collect();
    // The consumer ends when the last sender goes: drop ours.
    drop(tx);
    let mut seen = vec![false; (PRODUCERS * EACH) as usize];
    let (mut batches, mut largest) = (0, 0);
    let mut buf = Vec::with_capacity(64);
    while let Ok(n) = rx.recv_many(&mut buf, 64) {
        batches += 1;
        largest = largest.max(n);
        for m in buf.drain(..) {
            assert!(!seen[m as usize], "message {m} arrived twice");
            seen[m as usize] = true;
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!(seen.iter().all(|&s| s), "a message was lost");
    println!(
        "batching: {PRODUCERS} producers, {} messages in {batches} batches (largest {largest}), none lost or repeated",
        PRODUCERS * EACH
    );
}

/// Broadcast invalidations to several caches.
fn cache_invalidation() {
    const CACHES: usize = 3;
    let keys: Vec<String> = (0..100).map(|i| format!("user:{i}")).collect();
    let (tx, first) = broadcast::channel::<String>(64);
    let mut subscribers = vec![first];
    subscribers.extend((1..CACHES).map(|_| tx.subscribe()));
    let caches: Vec<_> = subscribers
        .into_iter()
        .map(|rx| {
            let mut cache: HashMap<String, u64> = keys.iter().cloned().zip(0..).collect();
            thread::spawn(move || {
                // Every invalidation, until the channel closes.
                for key in rx.iter() {
                    cache.remove(&key);
                }
                cache
            })
        })
        .collect();
    // Invalidate every third key, then close: the caches end.
    let invalidated: Vec<_> = keys.iter().step_by(3).cloned().collect();
    for key in &invalidated {
        tx.send(key.clone()).unwrap();
    }
    assert!(tx.close(), "the first close closes");
    for c in caches {
        let cache = c.join().unwrap();
        let mut left: Vec<_> = cache.into_keys().collect();
        left.sort();
        let mut want: Vec<_> = keys
            .iter()
            .filter(|k| !invalidated.contains(k))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(
            left, want,
            "a cache kept an invalidated key or lost another"
        );
    }
    println!(
        "cache invalidation: {} keys invalidated in {CACHES} caches through one broadcast channel",
        invalidated.len()
    );
}

/// `select!` with a timeout, then again with a longer one.
fn select_with_timeout() {
    let (tx, rx) = mpsc::channel::<&str>(1);
    let slow = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        tx.send("reply").unwrap();
    });
    let start = Instant::now();
    let first = select! {
        recv(rx) -> msg => Some(msg.unwrap()),
        default(Duration::from_millis(20)) => None,
    };
    assert_eq!(first, None, "the reply cannot come before 200 ms");
    let waited = start.elapsed();
    let second = select! {
        recv(rx) -> msg => Some(msg.unwrap()),
        default(Duration::from_secs(30)) => None,
    };
    assert_eq!(second, Some("reply"), "the second wait gets the reply");
    slow.join().unwrap();
    println!(
        "select with a timeout: gave up after {} ms, then got the reply",
        waited.as_millis()
    );
}

/// A watchdog closes `done`; every worker's `select!` sees it at once.
fn timeout_by_closing() {
    const WORKERS: usize = 3;
    let (jobs_tx, jobs_rx) = broadcast::channel::<u64>(16);
    let (done_tx, done_rx) = broadcast::channel::<()>(1);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let jobs = jobs_tx.subscribe();
            let done = done_tx.subscribe();
            thread::spawn(move || {
                let mut handled = 0u64;
                loop {
                    select! {
                        recv(jobs) -> job => {
                            if job.is_ok() {
                                handled += 1;
                            }
                        }
                        // Closed: ready at once, in every worker.
                        recv(done) -> _ => return handled,
                    }
                }
            })
        })
        .collect();
    drop(jobs_rx);
    // A trickle of jobs that would go on for a long time: the feeder
    // watches `done` too.
    let done = done_rx;
    let feeder = thread::spawn(move || {
        for i in 0..1_000_000u64 {
            select! {
                send(jobs_tx, i) -> res => if res.is_err() { break },
                recv(done) -> _ => break,
            }
            thread::sleep(Duration::from_millis(1));
        }
        jobs_tx
    });
    thread::sleep(Duration::from_millis(50));
    // The watchdog: one close stops them all.
    assert!(done_tx.close());
    let handled: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let jobs_tx = feeder.join().unwrap();
    jobs_tx.close();
    println!(
        "timeout by closing: {WORKERS} workers stopped by one close (jobs handled: {handled:?})"
    );
}
