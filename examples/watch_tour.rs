//! A walk through the watch store, one feature per step; each step checks
//! what it shows (a broken promise panics, and the process exits non-zero):
//!
//! ```text
//! cargo run --example watch_tour
//! ```
//!
//! 1. event-type filters: a watcher of deletes sees only deletes;
//! 2. initial replay: the current entries (sorted by name), then changes;
//! 3. buffer size: a small buffer overflows, and the loss is reported in
//!    band (`Lagged(n)`) and counted by `missed()`;
//! 4. several watchers on one kind, each on its own thread;
//! 5. a fan-out helper that calls several handlers per event;
//! 6. the "sync state" pattern: a map rebuilt from the replay plus the
//!    events, equal to the store's own `list()` while writers race it.

use rillet::watch::{Event, EventType, Store, WatchError, WatchOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Debug, Clone, PartialEq)]
struct Pod {
    node: String,
    ready: bool,
}

fn pod(node: &str, ready: bool) -> Pod {
    Pod {
        node: node.to_owned(),
        ready,
    }
}

fn main() {
    filters();
    replay();
    buffer_size();
    several_watchers();
    fan_out();
    sync_state();
    println!("watch tour: every step kept its promise");
}

fn filters() {
    let store: Store<Pod> = Store::new();
    let deletes = store.watch("pods", WatchOptions::new().event_types([EventType::Delete]));
    store.set("pods", "web-1", pod("n1", false));
    store.set("pods", "web-1", pod("n1", true));
    store.set("pods", "web-1", pod("n1", true)); // equal: no event at all
    store.delete("pods", "web-1");
    let seen: Vec<_> = deletes
        .try_iter()
        .map(|ev| (ev.event_type, ev.name.clone(), ev.object.ready))
        .collect();
    assert_eq!(seen, [(EventType::Delete, "web-1".to_string(), true)]);
    println!("1. filters: a delete-only watcher saw {seen:?} (the previous value rides along)");
}

fn replay() {
    let store: Store<Pod> = Store::new();
    store.set("pods", "web-2", pod("n2", true));
    store.set("pods", "web-1", pod("n1", true));
    let w = store.watch("pods", WatchOptions::new().initial_replay());
    store.set("pods", "web-3", pod("n1", false));
    let seen: Vec<_> = w
        .try_iter()
        .map(|ev| format!("{:?} {}", ev.event_type, ev.name))
        .collect();
    assert_eq!(seen, ["Create web-1", "Create web-2", "Create web-3"]);
    println!("2. initial replay: {seen:?} (the replay sorted by name, then the change)");
}

fn buffer_size() {
    let store: Store<u32> = Store::new();
    let w = store.watch("counters", WatchOptions::new().buffer(4));
    for i in 0..10 {
        store.set("counters", &format!("c{i}"), i);
    }
    let mut got = Vec::new();
    let mut lagged = None;
    loop {
        match w.try_recv() {
            Ok(Some(ev)) => got.push(ev.name.clone()),
            Ok(None) => break,
            Err(WatchError::Lagged(n)) => lagged = Some(n),
            Err(WatchError::Closed) => unreachable!("the store is alive"),
            // (With the `etcd` feature: an entry that does not decode;
            // never from the embedded store.)
            #[allow(unreachable_patterns)]
            Err(e) => unreachable!("{e}"),
        }
    }
    // The default overflow policy keeps the oldest 4 and drops the rest.
    assert_eq!(got, ["c0", "c1", "c2", "c3"]);
    assert_eq!((lagged, w.missed()), (Some(6), 6));
    println!(
        "3. buffer size: a buffer of {} kept {got:?}, then reported Lagged(6); missed() = {}",
        WatchOptions::new().buffer(4).buffer_size(),
        w.missed()
    );
}

fn several_watchers() {
    let store: Store<u64> = Store::new();
    let watchers: Vec<_> = (0..3)
        .map(|_| {
            let w = store.watch("jobs", WatchOptions::new().buffer(1024));
            // Each watcher on its own thread; it ends with the store.
            thread::spawn(move || w.iter().map(|ev| *ev.object).sum::<u64>())
        })
        .collect();
    for i in 1..=100 {
        store.set("jobs", &format!("job-{}", i % 10), i);
    }
    drop(store); // the last handle: every watch ends
    let sums: Vec<u64> = watchers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, [5050; 3]);
    println!("4. several watchers: three threads each saw every change (sums {sums:?})");
}

/// One of the handlers [`dispatch`] calls.
type EventHandler<'a, T> = dyn Fn(&Event<T>) + 'a;

/// Calls every handler with every event of `w`, until the watch ends.
fn dispatch<T>(w: &rillet::watch::Watch<T>, handlers: &[&EventHandler<T>]) {
    for ev in w.iter() {
        for h in handlers {
            h(&ev);
        }
    }
}

fn fan_out() {
    let store: Store<Pod> = Store::new();
    let w = store.watch("pods", WatchOptions::new());
    let log = Mutex::new(Vec::new());
    let not_ready = Mutex::new(0);
    let worker = {
        let store = store.clone();
        thread::spawn(move || {
            store.set("pods", "a", pod("n1", false));
            store.set("pods", "b", pod("n2", true));
            store.set("pods", "a", pod("n1", true));
        })
    };
    worker.join().unwrap();
    drop(store);
    let logger = |ev: &Event<Pod>| {
        log.lock()
            .unwrap()
            .push(format!("{:?} {}", ev.event_type, ev.name))
    };
    let counter = |ev: &Event<Pod>| {
        if !ev.object.ready {
            *not_ready.lock().unwrap() += 1;
        }
    };
    dispatch(&w, &[&logger, &counter]);
    let log = log.into_inner().unwrap();
    assert_eq!(log, ["Create a", "Create b", "Update a"]);
    assert_eq!(not_ready.into_inner().unwrap(), 1);
    println!("5. fan-out: two handlers per event: log {log:?}, one not-ready pod counted");
}

fn sync_state() {
    let store: Store<u64> = Store::new();
    for i in 0..50 {
        store.set("keys", &format!("k{i}"), 0);
    }
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..2_000u64 {
                    let key = format!("k{}", (i * 7 + w) % 60);
                    if i % 5 == 0 {
                        store.delete("keys", &key);
                    } else {
                        store.set("keys", &key, w * 10_000 + i);
                    }
                }
            })
        })
        .collect();
    // Subscribes while the writers run: replay, then every change, with no
    // gap and no duplicate.
    let w = store.watch("keys", WatchOptions::new().initial_replay().buffer(1 << 16));
    let state: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    for h in writers {
        h.join().unwrap();
    }
    let want: BTreeMap<String, u64> = store
        .list("keys")
        .into_iter()
        .map(|(k, v)| (k, *v))
        .collect();
    drop(store);
    let mut events = 0;
    for ev in w.iter() {
        events += 1;
        let mut s = state.lock().unwrap();
        match ev.event_type {
            EventType::Delete => s.remove(&ev.name),
            _ => s.insert(ev.name.clone(), *ev.object),
        };
    }
    assert_eq!(w.missed(), 0, "a buffer of 65,536 holds every event here");
    let got = state.lock().unwrap().clone();
    assert_eq!(got, want, "the rebuilt state equals list()");
    println!(
        "6. sync state: {} keys rebuilt from the replay plus {events} events, equal to list()",
        got.len()
    );
}
