//! The watch store's event flow, shared by `benches/watch.rs` and the
//! `versus` example: 4 writer threads update keys of one kind (the keys
//! exist before the clock starts, so every write is an `Update`), 8
//! watcher threads receive with mixed filters: 4 take every event type, 2
//! take `Update` only, 2 take `Create` and `Delete` (so nothing here, but
//! the store must check them). Every write is delivered to exactly 6
//! watchers; nothing is lost (every watcher blocks its writers when its
//! buffer of 1024 is full).
//!
//! rillet's `watch::Store` runs beside a baseline written here: a
//! `Mutex<HashMap>` plus one crossbeam-channel per watcher, the same flow
//! (compare with the old value, one `Arc` event shared by the watchers it
//! goes to, sent under the lock in revision order).

#![allow(dead_code)]

use rillet::watch::{EventType, Store, WatchOptions};
use rillet::Overflow;
use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const WRITERS: usize = 4;
pub const WATCHERS: usize = 8;
pub const KEYS_PER_WRITER: u64 = 64;
/// Deliveries per write.
pub const DELIVERED_PER_WRITE: u64 = 6;

/// What one run measured.
pub struct Flow {
    pub elapsed: Duration,
    /// Events received by all watchers.
    pub delivered: u64,
    /// Every write's latency, in nanoseconds (sorted).
    pub latencies: Vec<u64>,
}

impl Flow {
    pub fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Duration::from_nanos(self.latencies[i])
    }
}

pub fn filter(w: usize) -> Vec<EventType> {
    match w {
        0..=3 => vec![EventType::Create, EventType::Update, EventType::Delete],
        4 | 5 => vec![EventType::Update],
        _ => vec![EventType::Create, EventType::Delete],
    }
}

fn key(writer: usize, i: u64) -> String {
    format!("w{writer}-{}", i % KEYS_PER_WRITER)
}

/// Runs the writers (each `writes` updates) once every watcher is ready;
/// `set` is one write, `finish` ends the watchers once the writers are done.
fn drive(
    writes: u64,
    set: impl Fn(usize, &str, u64) + Sync,
    watchers: Vec<thread::JoinHandle<u64>>,
    ready: &Barrier,
    finish: impl FnOnce(),
) -> Flow {
    let mut latencies = Vec::with_capacity((writes * WRITERS as u64) as usize);
    ready.wait();
    let start = Instant::now();
    thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let set = &set;
                s.spawn(move || {
                    // The writer's keys, made once: until 2026-12-06 each
                    // write formatted its key inside its timed span, 8-10%
                    // of the flow's samples (rillet's), the same work for
                    // both stores and part of neither.
                    let keys: Vec<String> = (0..KEYS_PER_WRITER).map(|i| key(w, i)).collect();
                    let mut lat = Vec::with_capacity(writes as usize);
                    for i in 0..writes {
                        let k = &keys[(i % KEYS_PER_WRITER) as usize];
                        let t = Instant::now();
                        set(w, k, i + 1);
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
    // The writers' handles go before `finish` ends the watches.
    drop(set);
    finish();
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

/// rillet's watch store.
pub fn rillet(writes: u64) -> Flow {
    let store: Store<u64> = Store::new();
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            store.set("k", &key(w, i), 0);
        }
    }
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    let watchers = (0..WATCHERS)
        .map(|w| {
            let watch = store.watch(
                "k",
                WatchOptions::new()
                    .event_types(filter(w))
                    .buffer(1024)
                    .overflow(Overflow::Block),
            );
            let ready = ready.clone();
            thread::spawn(move || {
                ready.wait();
                let mut n = 0u64;
                for ev in &watch {
                    std::hint::black_box(&ev.object);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let s2 = store.clone();
    drive(
        writes,
        // `move`: the closure owns its handle, so that dropping it in
        // `drive` leaves `store` the last one.
        move |_, k, v| {
            s2.set("k", k, v);
        },
        watchers,
        &ready,
        move || drop(store),
    )
}

/// The baseline's event: shared by the watchers it goes to.
struct BaseEvent {
    name: String,
    event_type: EventType,
    object: Arc<u64>,
    revision: u64,
}

struct Baseline {
    map: HashMap<String, Arc<u64>>,
    revision: u64,
    watchers: Vec<(Vec<EventType>, crossbeam_channel::Sender<Arc<BaseEvent>>)>,
}

impl Baseline {
    fn set(&mut self, name: &str, value: u64) {
        let event_type = match self.map.get(name) {
            Some(old) if **old == value => return,
            Some(_) => EventType::Update,
            None => EventType::Create,
        };
        let object = Arc::new(value);
        self.map.insert(name.to_owned(), object.clone());
        self.revision += 1;
        let ev = Arc::new(BaseEvent {
            name: name.to_owned(),
            event_type,
            object,
            revision: self.revision,
        });
        for (types, tx) in &self.watchers {
            if types.contains(&event_type) {
                tx.send(ev.clone()).unwrap();
            }
        }
    }
}

/// `Mutex<HashMap>` plus one crossbeam-channel per watcher.
pub fn baseline(writes: u64) -> Flow {
    let mut base = Baseline {
        map: HashMap::new(),
        revision: 0,
        watchers: Vec::new(),
    };
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            base.set(&key(w, i), 0);
        }
    }
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    let watchers = (0..WATCHERS)
        .map(|w| {
            let (tx, rx) = crossbeam_channel::bounded::<Arc<BaseEvent>>(1024);
            base.watchers.push((filter(w), tx));
            let ready = ready.clone();
            thread::spawn(move || {
                ready.wait();
                let mut n = 0u64;
                for ev in rx {
                    std::hint::black_box((&ev.name, ev.event_type, &ev.object, ev.revision));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let base = Mutex::new(base);
    let flow = drive(
        writes,
        |_, k, v| base.lock().unwrap().set(k, v),
        watchers,
        &ready,
        || base.lock().unwrap().watchers.clear(),
    );
    flow
}
