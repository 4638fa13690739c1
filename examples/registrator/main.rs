//! Kubernetes-style clients of the watch store (`registrator.rs` has them
//! and their decisions), each checking its promise (a broken one panics:
//! the process exits non-zero):
//!
//! ```text
//! cargo run --example registrator
//! ```
//!
//! 1. `KubeWatch`: `stop()` plus a result channel; a watch that falls
//!    behind reports an `Error` event in the channel, and `stop()` closes
//!    the channel at once, even with events waiting.
//! 2. `Registry`: three kinds through one channel (`watch_into`), a client
//!    that stalls while busy writers run: the channel overflows, every
//!    watch restarts (relist), and the cache ends equal to the store.

mod registrator;

use registrator::{Interface, KubeWatch, Registry, WatchEvent};
use rillet::mpsc;
use rillet::watch::{Store, WatchOptions};
use std::collections::BTreeMap;
use std::thread;

fn main() {
    kube_watch();
    registry();
    println!("registrator: both clients kept their promises");
}

fn kube_watch() {
    let store: Store<u32> = Store::new();
    // Nobody reads yet: at most 1 event in the result channel, 1 in the
    // pump's hand and 4 in the watch's buffer; the rest of 11 is lost.
    let w = KubeWatch::start(&store, "pods", WatchOptions::new().buffer(4), 1);
    for i in 0..10 {
        store.set("pods", &format!("p{i}"), i);
    }
    store.set("pods", "p0", 100);
    // Every change arrives or is counted in an `Error`, exactly once; what
    // arrives is in revision order. (How many get through depends on how
    // soon the pump ran: a gap may be at the end or in the middle.)
    let (mut revisions, mut lost, mut errors) = (Vec::new(), 0u64, 0);
    while revisions.len() as u64 + lost < 11 {
        match w.result_chan().recv().expect("the watch runs") {
            WatchEvent::Added(ev) | WatchEvent::Modified(ev) => revisions.push(ev.revision),
            WatchEvent::Deleted(ev) => panic!("nothing was deleted, yet {} was", ev.name),
            WatchEvent::Error(e) => {
                errors += 1;
                lost += e
                    .strip_prefix("the watch lost ")
                    .and_then(|n| n.strip_suffix(" events"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("an error that says what was lost: {e}"));
            }
        }
    }
    assert!(
        errors > 0,
        "11 changes through 6 places: a loss is reported"
    );
    assert!(revisions.windows(2).all(|p| p[0] < p[1]), "{revisions:?}");
    assert!(
        revisions.len() <= 6,
        "more delivered than there is room for"
    );
    store.set("pods", "p1", 101);
    w.stop();
    w.stop(); // idempotent
              // Closed: at most what the pump had already queued, then the end.
    let after: Vec<_> = w.result_chan().iter().collect();
    assert!(after.len() <= 1, "{after:?}");
    println!(
        "1. kube watch: {} events and {errors} Error event(s) counting the other {lost}; \
         stop() closed the result channel",
        revisions.len()
    );
}

fn registry() {
    const KINDS: [&str; 3] = ["services", "endpoints", "nodes"];
    let store: Store<u64> = Store::new();
    let (stop_tx, stop) = mpsc::channel::<()>(1);
    // Closed once every writer is done.
    let (writers_done_tx, writers_done) = mpsc::channel::<()>(1);
    let client = {
        let store = store.clone();
        thread::spawn(move || {
            let mut r = Registry::new(&store, &KINDS, 64);
            let mut first = true;
            // A client that stalls on its first event until the writers are
            // done: its channel of 64 overflows, whatever the timing.
            r.run(&stop, || {
                if std::mem::take(&mut first) {
                    let _ = writers_done.recv();
                }
            });
            (r.cache().clone(), r.restarts())
        })
    };
    let writers: Vec<_> = KINDS
        .iter()
        .enumerate()
        .map(|(w, kind)| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..5_000u64 {
                    let name = format!("{kind}-{}", i % 40);
                    if i % 7 == 3 {
                        store.delete(kind, &name);
                    } else {
                        store.set(kind, &name, w as u64 * 1_000_000 + i);
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    writers_done_tx.close();
    stop_tx.close();
    let (cache, restarts) = client.join().unwrap();
    let want: BTreeMap<(String, String), u64> = KINDS
        .iter()
        .flat_map(|kind| {
            store
                .list(kind)
                .into_iter()
                .map(move |(name, v)| ((kind.to_string(), name), *v))
        })
        .collect();
    let got: BTreeMap<(String, String), u64> = cache.into_iter().map(|(k, v)| (k, *v)).collect();
    assert!(
        restarts > 0,
        "the slow client never lost an event: no restart shown"
    );
    assert_eq!(got, want, "the cache equals the store");
    println!(
        "2. registry: 3 kinds through one channel, {restarts} restart(s) of every watch, cache of {} entries equal to the store",
        got.len()
    );
}
