//! Integration tests for the watch store (public API only): one test per
//! guarantee of DESIGN.md "watch" and issue 12.

use rillet::watch::{Event, EventType, Store, WatchError, WatchOptions, WatchStore};
use rillet::{mpsc, select, Overflow};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Scales a count down under Miri.
const fn n(full: u64) -> u64 {
    if cfg!(miri) {
        if full < 10 {
            full
        } else {
            10
        }
    } else {
        full
    }
}

/// A watch that loses nothing (it blocks writers instead).
fn lossless() -> WatchOptions {
    WatchOptions::new().overflow(Overflow::Block)
}

fn assert_send<T: Send>() {}

#[test]
fn handles_are_send_and_sync_where_they_should_be() {
    fn assert_sync<T: Sync>() {}
    assert_send::<Store<String>>();
    assert_sync::<Store<String>>();
    assert_send::<rillet::watch::Watch<String>>();
    assert_send::<rillet::watch::WatchHandle<String>>();
    assert_send::<Event<String>>();
}

#[test]
fn set_get_delete_list_and_revision() {
    let store: Store<u32> = Store::new();
    assert_eq!(store.revision(), 0);
    assert_eq!(store.set("users", "bob", 2), Some(EventType::Create));
    assert_eq!(store.set("users", "alice", 1), Some(EventType::Create));
    assert_eq!(store.set("users", "alice", 3), Some(EventType::Update));
    assert_eq!(store.set("groups", "admins", 9), Some(EventType::Create));
    assert_eq!(store.revision(), 4);
    assert_eq!(store.get("users", "alice").as_deref(), Some(&3));
    assert_eq!(store.get("users", "carol"), None);
    assert_eq!(store.get("nope", "alice"), None);
    let list: Vec<_> = store
        .list("users")
        .into_iter()
        .map(|(n, v)| (n, *v))
        .collect();
    assert_eq!(list, [("alice".to_string(), 3), ("bob".to_string(), 2)]);
    assert_eq!(store.delete("users", "alice").as_deref(), Some(&3));
    assert_eq!(store.delete("users", "alice"), None);
    assert_eq!(store.revision(), 5, "a delete of nothing is no change");
    assert!(store.list("nope").is_empty());
}

#[test]
fn the_trait_gives_the_same_answers() {
    let store: Store<u32> = Store::new();
    fn via<S: WatchStore<u32>>(s: &S) -> Result<(u64, usize), S::Error> {
        s.set("k", "a", 1)?;
        s.set("k", "b", 2)?;
        s.delete("k", "b")?;
        let w = s.watch("k", WatchOptions::new().initial_replay())?;
        let replayed = w.try_iter().count();
        Ok((s.revision()?, replayed + s.list("k")?.len()))
    }
    assert_eq!(via(&store), Ok((3, 2)));
    assert_eq!(
        WatchStore::get(&store, "k", "a").unwrap().as_deref(),
        Some(&1)
    );
}

#[test]
fn events_carry_kind_name_type_object_and_revision() {
    let store: Store<String> = Store::new();
    let w = store.watch("users", WatchOptions::new());
    store.set("users", "alice", "v1".into());
    store.set("users", "alice", "v2".into());
    store.set("other", "alice", "x".into());
    store.delete("users", "alice");
    let evs: Vec<_> = w.try_iter().collect();
    let got: Vec<_> = evs
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                e.name.clone(),
                e.event_type,
                (*e.object).clone(),
                e.revision,
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            (s("users"), s("alice"), EventType::Create, s("v1"), 1),
            (s("users"), s("alice"), EventType::Update, s("v2"), 2),
            // The delete carries the previous value; the other kind's
            // change (revision 3) never shows up.
            (s("users"), s("alice"), EventType::Delete, s("v2"), 4),
        ]
    );
}

#[test]
fn a_kind_emptied_by_deletes_keeps_its_watchers() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new());
    store.set("k", "a", 1);
    store.delete("k", "a"); // the kind has no entry left
    store.set("k", "b", 2);
    let got: Vec<_> = w
        .try_iter()
        .map(|e| (e.name.clone(), e.event_type))
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            (s("a"), EventType::Create),
            (s("a"), EventType::Delete),
            (s("b"), EventType::Create),
        ]
    );
    // A kind's last watcher going, and then its last entry: a new watcher
    // of the kind starts afresh and sees the next change.
    assert!(w.cancel());
    store.delete("k", "b");
    assert!(store.list("k").is_empty());
    let w2 = store.watch("k", WatchOptions::new().initial_replay());
    store.set("k", "c", 3);
    assert_eq!(w2.try_recv().unwrap().unwrap().name, "c");
    assert_eq!(w2.try_recv(), Ok(None));
}

#[test]
fn one_event_is_shared_by_every_watcher() {
    let store: Store<u64> = Store::new();
    let a = store.watch("k", WatchOptions::new());
    let b = store.watch("k", WatchOptions::new());
    store.set("k", "x", 7);
    let (ea, eb) = (a.recv().unwrap(), b.recv().unwrap());
    assert!(std::ptr::eq(&*ea, &*eb), "the same event, not a copy");
    assert!(Arc::ptr_eq(&ea.object, &store.get("k", "x").unwrap()));
}

/// A value whose drops are counted.
#[derive(Debug)]
struct Counted(u64, Arc<AtomicUsize>);

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// The store keeps the memory of its latest events (their husks, freed on
/// a writer's thread later), not their objects: a value drops when its
/// last holder lets go, as with an `Arc`.
#[test]
fn a_value_drops_with_the_last_event_that_holds_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let store: Store<Counted> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(8));
    store.set("k", "a", Counted(1, drops.clone()));
    // The entry lets go of 1; its event still holds it.
    store.set("k", "a", Counted(2, drops.clone()));
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    let first = w.recv().unwrap();
    assert_eq!(first.object.0, 1);
    drop(first);
    assert_eq!(drops.load(Ordering::Relaxed), 1, "1 went with its event");
    let second = w.recv().unwrap();
    store.delete("k", "a");
    drop(second);
    assert_eq!(drops.load(Ordering::Relaxed), 1, "2 is in the delete event");
    let deleted = w.recv().unwrap();
    assert_eq!(
        (deleted.event_type, deleted.object.0),
        (EventType::Delete, 2)
    );
    drop(deleted);
    assert_eq!(drops.load(Ordering::Relaxed), 2, "2 went with the delete");
    drop((w, store));
}

/// Events held past the store's memory of them (more changes than its
/// largest buffer pushed their husks out), and past the store itself,
/// stay whole, and each is freed once by its last holder (Miri checks the
/// frees).
#[test]
fn events_outlive_the_stores_memory_of_them_and_the_store() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(4));
    let other = store.watch("k", WatchOptions::new().buffer(2));
    let mut held = Vec::new();
    for v in 0..12 {
        store.set("k", &format!("n{v}"), v);
        held.push(w.recv().unwrap());
        // The other watcher takes some and drops them at once.
        if v % 2 == 0 {
            while let Ok(Some(_)) = other.try_recv() {}
        }
    }
    drop(store);
    drop(other);
    for (v, ev) in held.iter().enumerate() {
        assert_eq!(
            (ev.name.as_str(), *ev.object),
            (format!("n{v}").as_str(), v as u64)
        );
    }
    assert_eq!(w.recv(), Err(WatchError::Closed));
    drop(w);
    drop(held);
}

/// A writer reuses the memory of events its watchers are done with (the
/// store's memory of its latest events: as many as its largest buffer,
/// 2 here): every event still carries its own kind, name, type, object
/// and revision, names longer and shorter than the last included, and a
/// writer thread that ends frees what it kept (Miri checks the frees).
#[test]
fn reused_event_memory_carries_each_events_own_fields() {
    let store: Store<u64> = Store::new();
    let w = store.watch("a-kind", WatchOptions::new().buffer(2));
    let other = store.watch("b", WatchOptions::new().buffer(1));
    let writer = {
        let store = store.clone();
        thread::spawn(move || {
            let mut seen = Vec::new();
            for v in 0..n(40) {
                let name = "x".repeat(1 + (v as usize * 7) % 23);
                store.set("a-kind", &name, v);
                let ev = w.recv().unwrap();
                assert_eq!(
                    (
                        ev.kind.as_str(),
                        ev.name.as_str(),
                        ev.event_type,
                        *ev.object
                    ),
                    ("a-kind", name.as_str(), EventType::Create, v),
                    "event {v}"
                );
                assert_eq!(ev.revision, store.revision());
                seen.push(ev.revision);
                drop(ev);
                assert_eq!(store.delete("a-kind", &name).as_deref(), Some(&v));
                let ev = w.recv().unwrap();
                assert_eq!(
                    (ev.event_type, ev.name.as_str()),
                    (EventType::Delete, name.as_str())
                );
                store.set("b", "y", v);
                let ev = other.recv().unwrap();
                assert_eq!(
                    (ev.kind.as_str(), ev.name.as_str(), *ev.object),
                    ("b", "y", v)
                );
            }
            assert!(seen.windows(2).all(|p| p[0] < p[1]));
        })
    };
    writer.join().unwrap();
    assert_eq!(store.list("b").len(), 1);
}

/// A value the last event drops while a `Weak` to it is held is dropped
/// as an `Arc`'s would be: the weak reference no longer upgrades (the
/// store reuses the memory of an event's value only when nothing else
/// can reach it).
#[test]
fn a_weak_reference_to_an_object_sees_it_go() {
    let drops = Arc::new(AtomicUsize::new(0));
    let store: Store<Counted> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(1));
    store.set("k", "a", Counted(1, drops.clone()));
    let ev = w.recv().unwrap();
    store.delete("k", "a");
    let weak = Arc::downgrade(&ev.object);
    drop(ev);
    // The delete event holds it still.
    assert!(weak.upgrade().is_some());
    let deleted = w.recv().unwrap();
    drop(deleted);
    assert!(weak.upgrade().is_none());
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    // More changes push the events out of the store's memory and reuse
    // what they can.
    for v in 2..n(20) {
        store.set("k", "a", Counted(v, drops.clone()));
        assert_eq!(w.recv().unwrap().object.0, v);
    }
    drop((w, store));
    assert_eq!(drops.load(Ordering::Relaxed) as u64, n(20) - 1);
}

/// Stores of values of different sizes, written on one thread: each
/// value is built in memory of its own size (the thread's spare is
/// reused only for a value of the same size and alignment).
#[test]
fn stores_of_different_value_types_on_one_thread() {
    let small: Store<u8> = Store::new();
    let large: Store<String> = Store::new();
    let ws = small.watch("k", WatchOptions::new().buffer(1));
    let wl = large.watch("k", WatchOptions::new().buffer(1));
    for v in 0..n(30) {
        small.set("k", "a", v as u8);
        large.set("k", "a", format!("value {v}"));
        assert_eq!(*ws.recv().unwrap().object, v as u8);
        assert_eq!(*wl.recv().unwrap().object, format!("value {v}"));
        if v % 3 == 0 {
            small.delete("k", "a");
            large.delete("k", "a");
            assert_eq!(ws.recv().unwrap().event_type, EventType::Delete);
            assert_eq!(*wl.recv().unwrap().object, format!("value {v}"));
        }
    }
}

#[test]
fn equal_values_make_no_event() {
    let store: Store<u32> = Store::new();
    let w = store.watch("k", WatchOptions::new());
    assert_eq!(store.set("k", "a", 1), Some(EventType::Create));
    assert_eq!(store.set("k", "a", 1), None);
    assert_eq!(store.revision(), 1);
    assert_eq!(w.try_iter().count(), 1);

    #[derive(Debug)]
    struct Pod {
        phase: &'static str,
        heartbeat: u64,
    }
    let pods = Store::builder()
        .compare(|a: &Pod, b: &Pod| a.phase == b.phase)
        .build();
    let w = pods.watch("pods", WatchOptions::new());
    let pod = |phase, heartbeat| Pod { phase, heartbeat };
    assert_eq!(pods.set("pods", "p", pod("up", 1)), Some(EventType::Create));
    assert_eq!(pods.set("pods", "p", pod("up", 2)), None);
    assert_eq!(pods.get("pods", "p").unwrap().heartbeat, 1, "kept");
    assert_eq!(
        pods.set("pods", "p", pod("down", 3)),
        Some(EventType::Update)
    );
    let phases: Vec<_> = w.try_iter().map(|e| e.object.phase).collect();
    assert_eq!(phases, ["up", "down"]);
}

#[test]
fn event_type_filters() {
    let store: Store<u32> = Store::new();
    let creates = store.watch("k", WatchOptions::new().event_types([EventType::Create]));
    let changes = store.watch(
        "k",
        WatchOptions::new().event_types([EventType::Update, EventType::Delete]),
    );
    store.set("k", "a", 1);
    store.set("k", "a", 2);
    store.delete("k", "a");
    let types =
        |w: &rillet::watch::Watch<u32>| w.try_iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert_eq!(types(&creates), [EventType::Create]);
    assert_eq!(types(&changes), [EventType::Update, EventType::Delete]);
    assert_eq!(
        creates.missed() + changes.missed(),
        0,
        "filtered is not lost"
    );
}

#[test]
fn many_writers_revision_order_and_per_key_write_order() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", lossless());
    let writers = 4u64;
    let per = n(2_000);
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..per {
                    // Each writer has its own key and a shared one.
                    store.set("k", &format!("own{t}"), i);
                    store.set("k", "shared", t * per + i);
                }
            })
        })
        .collect();
    let total = writers * per * 2;
    let mut last_rev = 0;
    let mut own_last: BTreeMap<String, u64> = BTreeMap::new();
    let mut shared_last_by_writer = vec![None::<u64>; writers as usize];
    for _ in 0..total {
        let ev = w.recv().unwrap();
        assert!(ev.revision > last_rev, "revisions strictly increase");
        last_rev = ev.revision;
        let v = *ev.object;
        if ev.name == "shared" {
            let t = (v / per) as usize;
            if let Some(prev) = shared_last_by_writer[t] {
                assert!(v > prev, "one writer's writes of a key arrive in order");
            }
            shared_last_by_writer[t] = Some(v);
        } else if let Some(prev) = own_last.insert(ev.name.clone(), v) {
            assert_eq!(
                v,
                prev + 1,
                "a key's writes arrive in write order, none missing"
            );
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(last_rev, store.revision());
    assert_eq!(w.try_recv(), Ok(None));
}

/// Applies an event to a rebuilt state; checks per-key revisions increase.
fn apply(state: &mut BTreeMap<String, (u64, u64)>, ev: &Event<u64>) {
    match ev.event_type {
        EventType::Create | EventType::Update => {
            if let Some((rev, _)) = state.get(&ev.name) {
                assert!(ev.revision > *rev, "a key's revisions increase");
            }
            state.insert(ev.name.clone(), (ev.revision, *ev.object));
        }
        EventType::Delete => {
            let (rev, _) = state.remove(&ev.name).expect("a delete of a known key");
            assert!(ev.revision > rev);
        }
    }
}

fn final_state(store: &Store<u64>) -> BTreeMap<String, u64> {
    store.list("k").into_iter().map(|(n, v)| (n, *v)).collect()
}

fn values(state: &BTreeMap<String, (u64, u64)>) -> BTreeMap<String, u64> {
    state.iter().map(|(k, (_, v))| (k.clone(), *v)).collect()
}

/// Writers that set and delete keys `0..keys` of kind "k".
fn spawn_writers(
    store: &Store<u64>,
    writers: u64,
    per: u64,
    keys: u64,
) -> Vec<thread::JoinHandle<()>> {
    (0..writers)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for i in 0..per {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("key{}", x % keys);
                    if x % 5 == 0 {
                        store.delete("k", &key);
                    } else {
                        store.set("k", &key, t * 1_000_000 + i);
                    }
                }
            })
        })
        .collect()
}

#[test]
fn initial_replay_races_writers_without_gap_or_duplicate() {
    for round in 0..if cfg!(miri) { 3 } else { 20 } {
        let store: Store<u64> = Store::new();
        for k in 0..10 {
            store.set("k", &format!("key{k}"), k);
        }
        let writers = spawn_writers(&store, 3, n(300), 16);
        if round % 2 == 1 {
            thread::yield_now();
        }
        let w = store.watch("k", lossless().initial_replay());
        let reader = thread::spawn(move || {
            let mut state = BTreeMap::new();
            for ev in &w {
                apply(&mut state, &ev);
            }
            assert_eq!(w.missed(), 0);
            state
        });
        for h in writers {
            h.join().unwrap();
        }
        let expected = final_state(&store);
        drop(store); // ends the watch: the reader's iteration finishes
        let state = reader.join().unwrap();
        assert_eq!(values(&state), expected, "replay + events = list()");
    }
}

#[test]
fn drop_newest_reports_the_loss_in_band() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(4));
    let other = store.watch("k", WatchOptions::new().buffer(64));
    for i in 0..10 {
        store.set("k", "a", i); // never waits for the slow watcher
    }
    for i in 0..4 {
        assert_eq!(*w.recv().unwrap().object, i);
    }
    // The 6 newest were dropped: reported before anything else, even
    // though nothing came after them.
    assert_eq!(w.recv(), Err(WatchError::Lagged(6)));
    assert_eq!(w.try_recv(), Ok(None));
    store.set("k", "a", 10);
    assert_eq!(*w.recv().unwrap().object, 10);
    assert_eq!(w.missed(), 6);
    // The other watcher lost nothing.
    assert_eq!(other.try_iter().count(), 11);
    assert_eq!(other.missed(), 0);
}

#[test]
fn drop_newest_gap_in_the_middle() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(2));
    for i in 0..5 {
        store.set("k", "a", i);
    }
    assert_eq!(*w.recv().unwrap().object, 0);
    assert_eq!(*w.recv().unwrap().object, 1);
    store.set("k", "a", 5);
    assert_eq!(
        w.recv(),
        Err(WatchError::Lagged(3)),
        "before the next event"
    );
    assert_eq!(*w.recv().unwrap().object, 5);
    assert_eq!(w.missed(), 3);
}

#[test]
fn drop_oldest_reports_the_loss_in_band() {
    let store: Store<u64> = Store::new();
    let w = store.watch(
        "k",
        WatchOptions::new().buffer(3).overflow(Overflow::DropOldest),
    );
    for i in 0..10 {
        store.set("k", "a", i);
    }
    assert_eq!(w.recv(), Err(WatchError::Lagged(7)));
    let rest: Vec<_> = w.try_iter().map(|e| *e.object).collect();
    assert_eq!(rest, [7, 8, 9]);
    assert_eq!(w.missed(), 7);
}

#[test]
fn block_makes_writers_wait_for_that_watcher_only() {
    let store: Store<u64> = Store::new();
    let slow = store.watch("k", WatchOptions::new().buffer(2).overflow(Overflow::Block));
    let fast = store.watch("k", WatchOptions::new().buffer(64));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        thread::spawn(move || {
            for i in 0..5 {
                store.set("k", "a", i);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // The writer cannot finish before the slow watcher takes events (a
    // correct store never finishes early; this sleep only gives a wrong one
    // the chance to).
    thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 20 }));
    assert!(
        !done.load(Ordering::SeqCst),
        "Block: the writer waits for room"
    );
    let got: Vec<_> = (0..5).map(|_| *slow.recv().unwrap().object).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    writer.join().unwrap();
    assert_eq!(fast.try_iter().count(), 5);
    assert_eq!(slow.missed(), 0);
}

#[test]
fn resync_on_lag_converges_without_resubscribing() {
    let store: Store<u64> = Store::new();
    for k in 0..8 {
        store.set("k", &format!("key{k}"), k);
    }
    let w = store.watch(
        "k",
        WatchOptions::new()
            .buffer(2)
            .initial_replay()
            .resync_on_lag(),
    );
    let writers = spawn_writers(&store, 3, n(500), 12);
    let reader = thread::spawn(move || {
        let mut state = BTreeMap::new();
        let mut lags = 0;
        loop {
            match w.recv() {
                Ok(ev) => {
                    // A replay follows a cleared state: a Create never
                    // repeats a key the watcher holds.
                    assert!(
                        ev.event_type != EventType::Create || !state.contains_key(&ev.name),
                        "a duplicate create of {}",
                        ev.name
                    );
                    match ev.event_type {
                        EventType::Delete => {
                            state.remove(&ev.name);
                        }
                        _ => {
                            state.insert(ev.name.clone(), (ev.revision, *ev.object));
                        }
                    }
                }
                Err(WatchError::Lagged(_)) => {
                    // A fresh replay follows: rebuild from it.
                    lags += 1;
                    state.clear();
                }
                Err(WatchError::Closed) => return (state, lags),
                // (Built with the `etcd` feature: never from this store.)
                #[allow(unreachable_patterns)]
                Err(e) => panic!("{e}"),
            }
        }
    });
    for h in writers {
        h.join().unwrap();
    }
    let expected = final_state(&store);
    drop(store);
    let (state, _lags) = reader.join().unwrap();
    assert_eq!(values(&state), expected, "converged to list()");
}

#[test]
fn resync_replaces_a_stale_buffer() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(2).resync_on_lag());
    store.set("k", "a", 1);
    store.set("k", "b", 2);
    store.set("k", "c", 3); // dropped
    store.delete("k", "a");
    assert_eq!(w.recv().unwrap().name, "a");
    assert_eq!(w.recv().unwrap().name, "b");
    assert_eq!(w.recv(), Err(WatchError::Lagged(2)));
    let replay: Vec<_> = w
        .try_iter()
        .map(|e| (e.name.clone(), e.event_type))
        .collect();
    assert_eq!(
        replay,
        [
            ("b".to_string(), EventType::Create),
            ("c".to_string(), EventType::Create)
        ]
    );
    store.set("k", "d", 4);
    assert_eq!(
        w.recv().unwrap().name,
        "d",
        "live events continue after the replay"
    );
    assert_eq!(w.missed(), 2);
}

/// `resync_on_lag` under `DropOldest`: the loss shows as a gap in the
/// numbers of the newest events kept; after the replay, live events go on
/// numbered from the count of events offered, with no second `Lagged`.
#[test]
fn resync_under_drop_oldest_continues_without_a_second_lag() {
    let store: Store<u64> = Store::new();
    let w = store.watch(
        "k",
        WatchOptions::new()
            .buffer(2)
            .overflow(Overflow::DropOldest)
            .resync_on_lag(),
    );
    for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
        store.set("k", name, i as u64);
    }
    // The two oldest were evicted: c and d are kept.
    assert_eq!(w.recv(), Err(WatchError::Lagged(2)));
    let replay: Vec<_> = w.try_iter().map(|e| e.name.clone()).collect();
    assert_eq!(
        replay,
        ["a", "b", "c", "d"],
        "the replay of the current state"
    );
    for round in 0..3u64 {
        store.set("k", "e", round);
        let ev = w.recv().expect("live events continue after the replay");
        assert_eq!((ev.name.as_str(), *ev.object), ("e", round));
    }
    assert_eq!(w.try_recv(), Ok(None));
    assert_eq!(w.missed(), 2);
}

/// A loss found after the last store handle went (at the tail, as the
/// channel closes) is still followed by the replay: the watcher converges to
/// the store's final state, then the watch ends.
#[test]
fn resync_after_the_store_is_gone_still_replays() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(2).resync_on_lag());
    store.set("k", "a", 1);
    store.set("k", "b", 2);
    store.set("k", "c", 3); // dropped
    store.delete("k", "a"); // dropped
    drop(store);
    assert_eq!(w.recv().unwrap().name, "a");
    assert_eq!(w.recv().unwrap().name, "b");
    assert_eq!(w.recv(), Err(WatchError::Lagged(2)));
    let replay: Vec<_> = w.iter().map(|e| (e.name.clone(), *e.object)).collect();
    assert_eq!(replay, [("b".to_string(), 2), ("c".to_string(), 3)]);
    assert_eq!(w.recv(), Err(WatchError::Closed));
}

#[test]
fn cancel_is_idempotent_and_drops_what_is_buffered() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new());
    store.set("k", "a", 1);
    store.set("k", "b", 2);
    assert!(w.cancel());
    assert!(!w.cancel());
    assert_eq!(
        w.recv(),
        Err(WatchError::Closed),
        "not even buffered events"
    );
    store.set("k", "c", 3);
    assert_eq!(w.try_recv(), Err(WatchError::Closed));
    assert_eq!(w.iter().count(), 0);
    // The buffered events were dropped: the store holds the only other
    // reference to b's value.
    assert_eq!(Arc::strong_count(&store.get("k", "b").unwrap()), 2);
}

#[test]
fn dropping_a_block_watcher_unregisters_it() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(1).overflow(Overflow::Block));
    drop(w);
    // A registered Block watcher with a full buffer would make these wait
    // forever.
    for i in 0..5 {
        store.set("k", "a", i);
    }
}

#[test]
fn cancel_stops_a_writer_blocked_on_that_watcher() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(1).overflow(Overflow::Block));
    let writer = {
        let store = store.clone();
        thread::spawn(move || {
            for i in 0..3 {
                store.set("k", "a", i);
            }
        })
    };
    thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 10 }));
    assert!(w.cancel()); // the writer is (almost surely) blocked on us
    writer.join().unwrap();
    assert_eq!(store.get("k", "a").as_deref(), Some(&2));
}

#[test]
fn watch_into_fans_in_and_a_blocked_one_cancels_at_once() {
    let store: Store<u64> = Store::new();
    let (tx, rx) = mpsc::channel::<Event<u64>>(1);
    let a = store.watch_into("a", WatchOptions::new(), tx.clone());
    let b = store.watch_into("b", WatchOptions::new().initial_replay(), tx);
    store.set("a", "x", 1);
    assert_eq!(rx.recv().unwrap().kind, "a");
    store.set("b", "y", 2);
    assert_eq!(rx.recv().unwrap().kind, "b");
    // Fill the target, then block a writer on it.
    store.set("a", "x", 3);
    let writer = {
        let store = store.clone();
        thread::spawn(move || store.set("a", "x", 4))
    };
    thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 10 }));
    let canceller = thread::spawn(move || assert!(a.cancel()));
    canceller.join().unwrap();
    assert_eq!(writer.join().unwrap(), Some(EventType::Update));
    assert_eq!(*rx.recv().unwrap().object, 3);
    store.set("a", "x", 5); // cancelled: not delivered
    store.set("b", "y", 6);
    assert_eq!(rx.recv().unwrap().kind, "b");
    assert!(b.cancel());
    assert!(!b.cancel());
}

#[test]
fn dropping_every_store_handle_ends_every_watch() {
    let store: Store<u64> = Store::new();
    let store2 = store.clone();
    let w1 = store.watch("k", WatchOptions::new());
    let w2 = store.watch("j", WatchOptions::new());
    let (tx, rx) = mpsc::channel(8);
    let h = store.watch_into("k", WatchOptions::new(), tx);
    store.set("k", "a", 1);
    let it = thread::spawn(move || w2.iter().count());
    drop(store);
    store2.set("k", "b", 2); // one handle left: still live
    drop(store2);
    assert_eq!(w1.iter().count(), 2, "what was delivered, then the end");
    assert_eq!(it.join().unwrap(), 0);
    assert_eq!(rx.iter().count(), 2, "the fan-in channel closes too");
    assert!(h.cancel(), "cancelling an ended watch is harmless");
}

#[test]
fn a_panicking_compare_leaves_the_store_usable() {
    let store = Store::builder()
        .compare(|a: &u64, b: &u64| {
            assert!(*b != 13, "unlucky");
            a == b
        })
        .build();
    let w = store.watch("k", WatchOptions::new());
    store.set("k", "a", 1);
    let r = catch_unwind(AssertUnwindSafe(|| store.set("k", "a", 13)));
    assert!(r.is_err());
    assert_eq!(store.get("k", "a").as_deref(), Some(&1), "unchanged");
    assert_eq!(
        store.set("k", "a", 2),
        Some(EventType::Update),
        "not wedged"
    );
    let got: Vec<_> = w.try_iter().map(|e| *e.object).collect();
    assert_eq!(got, [1, 2]);
    assert_eq!(store.revision(), 2);
}

/// A value whose drop panics when it is 13 (and not already unwinding).
#[derive(Debug, PartialEq)]
struct Bomb(u64);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 == 13 && !thread::panicking() {
            panic!("boom");
        }
    }
}

#[test]
fn a_panicking_drop_leaves_the_store_usable() {
    let store: Store<Bomb> = Store::new();
    let w = store.watch(
        "k",
        WatchOptions::new().buffer(1).overflow(Overflow::DropOldest),
    );
    store.set("k", "a", Bomb(13));
    // Replacing the value evicts the watcher's event holding the bomb: the
    // last reference goes inside the delivery.
    let r = catch_unwind(AssertUnwindSafe(|| store.set("k", "a", Bomb(1))));
    assert!(r.is_err(), "the drop's panic reaches the writer");
    assert_eq!(
        store.get("k", "a").as_deref(),
        Some(&Bomb(1)),
        "the change was made"
    );
    assert_eq!(
        store.set("k", "a", Bomb(2)),
        Some(EventType::Update),
        "not wedged"
    );
    assert_eq!(w.recv(), Err(WatchError::Lagged(2)));
    assert_eq!(w.recv().unwrap().object.0, 2);
}

/// A value whose drop panics, dropped by the last event that holds it (the
/// watcher's drop of that event drops the value in place, and the store
/// keeps the event's memory): the panic reaches the watcher's drop, the
/// event's memory is still freed once (Miri checks), and the store goes on.
#[test]
fn a_panicking_drop_in_the_last_event_leaves_the_store_usable() {
    let store: Store<Bomb> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(4));
    store.set("k", "a", Bomb(13));
    store.delete("k", "a");
    let created = w.recv().unwrap();
    drop(created); // the delete event still holds the bomb
    let deleted = w.recv().unwrap();
    assert_eq!(deleted.event_type, EventType::Delete);
    let r = catch_unwind(AssertUnwindSafe(|| drop(deleted)));
    assert!(
        r.is_err(),
        "the value's panic reaches the last event's drop"
    );
    // More changes push the event's memory out of the store's memory.
    for v in 0..n(10) {
        store.set("k", "a", Bomb(v));
        assert_eq!(w.recv().unwrap().object.0, v);
    }
    assert_eq!(store.get("k", "a").as_deref(), Some(&Bomb(n(10) - 1)));
}

#[test]
fn a_watch_works_in_select() {
    let store: Store<u64> = Store::new();
    let w = store.watch("k", WatchOptions::new().buffer(1));
    let (_tx, rx) = mpsc::channel::<u64>(1);
    let writer = {
        let store = store.clone();
        thread::spawn(move || store.set("k", "a", 1))
    };
    let got = select! {
        recv(rx) -> _ => panic!("nothing was sent"),
        recv(w) -> ev => ev.unwrap(),
    };
    assert_eq!(*got.object, 1);
    writer.join().unwrap();
    // A loss at the tail is ready too, and so is the end.
    store.set("k", "a", 2);
    store.set("k", "a", 3);
    assert_eq!(*w.recv().unwrap().object, 2);
    select! {
        recv(w) -> ev => assert_eq!(ev.unwrap_err(), WatchError::Lagged(1)),
        default(Duration::from_secs(10)) => panic!("a loss is ready"),
    }
    drop(store);
    select! {
        recv(w) -> ev => assert_eq!(ev.unwrap_err(), WatchError::Closed),
        default(Duration::from_secs(10)) => panic!("the end is ready"),
    }
}

#[test]
#[should_panic(expected = "the kind name is empty")]
fn an_empty_kind_panics_in_watch() {
    let store: Store<u8> = Store::new();
    let _ = store.watch("", WatchOptions::new());
}

#[test]
fn an_empty_kind_panics_everywhere() {
    let store: Store<u8> = Store::new();
    let calls: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            let _ = store.set("", "a", 1);
        }),
        Box::new(|| drop(store.get("", "a"))),
        Box::new(|| drop(store.delete("", "a"))),
        Box::new(|| drop(store.list(""))),
        Box::new(|| {
            let (tx, _rx) = mpsc::channel(1);
            drop(store.watch_into("", WatchOptions::new(), tx))
        }),
    ];
    for call in calls {
        let err = catch_unwind(AssertUnwindSafe(call)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("the kind name is empty"), "{msg}");
    }
    assert_eq!(store.revision(), 0);
}

#[test]
#[should_panic(expected = "at least 1 event")]
fn a_buffer_of_zero_is_refused() {
    let _ = WatchOptions::new().buffer(0);
}

/// A buffer whose size overflows the address space is refused by `watch`
/// with a message naming the watch (until 2026-12-06 the message came
/// from the SPSC channel underneath).
#[test]
#[should_panic(expected = "Store::watch: a buffer of 18446744073709551615 events is too large")]
fn a_buffer_too_large_to_allocate_is_refused_by_watch() {
    let store: Store<u8> = Store::new();
    let _ = store.watch("k", WatchOptions::new().buffer(usize::MAX));
}

/// A buffer that fits but that the system cannot provide (terabytes):
/// a panic with a message, not an aborted process (see the channel
/// kinds' tests); or, on a system that hands it out, a working watch.
#[test]
#[cfg_attr(miri, ignore = "allocates terabytes")]
fn a_buffer_the_system_cannot_allocate_panics_with_a_message() {
    let store: Store<u8> = Store::new();
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.watch("k", WatchOptions::new().buffer(1 << 40))
    }));
    if let Err(payload) = got {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        assert!(msg.contains("could not be allocated"), "{msg:?}");
    }
    // The store is still usable.
    store.set("k", "a", 1);
    assert_eq!(store.get("k", "a").as_deref(), Some(&1));
}

#[test]
#[should_panic(expected = "a watcher needs at least one")]
fn no_event_types_is_refused() {
    let _ = WatchOptions::new().event_types([]);
}

#[test]
#[should_panic(expected = "do not set buffer, overflow or resync_on_lag")]
fn watch_into_refuses_options_of_its_own_channel() {
    let store: Store<u8> = Store::new();
    let (tx, _rx) = mpsc::channel(1);
    let _ = store.watch_into("k", WatchOptions::new().buffer(4), tx);
}

#[test]
fn errors_display() {
    assert_eq!(WatchError::Closed.to_string(), "the watch has ended");
    assert_eq!(
        WatchError::Lagged(2).to_string(),
        "the watcher lagged: 2 events were lost"
    );
}
