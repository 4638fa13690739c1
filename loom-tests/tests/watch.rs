//! loom models of the watch store's protocol: a subscription (with replay)
//! racing writes, a cancel racing a writer blocked on that watcher, the
//! in-band report of a loss at the tail (the published count of events
//! offered against what the channel holds), one event's references,
//! taken in one add for its watchers, dropped on several threads, and the
//! husk that keeps an event's memory after its watchers let go
//! (`counter::Kept`: dropped or reclaimed, directly and through the
//! store). On the
//! real `rillet` code built with `--cfg loom` (the store's lock is the loom spin lock of `sync.rs`,
//! its channels are the loom-built mpsc).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test watch`

#![cfg(loom)]

mod common;

use common::{model, model_bound_1};
use loom::thread;
use rillet::watch::{EventType, Store, WatchError, WatchOptions};
use rillet::Overflow;

/// A watcher subscribes with `initial_replay` while a writer changes the
/// kind: the replay plus the live events rebuild the final state, with no
/// gap and no duplicate. (The writer may find no watcher in the store's
/// count, read before its lock, and the watch registered by the time it
/// locks: the interleavings include it building the event under the
/// lock.)
#[test]
fn subscribe_with_replay_racing_writes() {
    model(|| {
        let store: Store<u32> = Store::new();
        store.set("k", "a", 1);
        let writer = {
            let store = store.clone();
            thread::spawn(move || {
                store.set("k", "a", 2);
                store.delete("k", "a");
            })
        };
        let _ = store.revision();
        let w = store.watch("k", WatchOptions::new().initial_replay());
        writer.join().unwrap();
        drop(store);
        let mut state = None;
        let mut last_rev = 0;
        for ev in &w {
            assert!(ev.revision > last_rev || ev.event_type == EventType::Create);
            last_rev = ev.revision;
            match ev.event_type {
                EventType::Create => {
                    assert_eq!(state, None, "a duplicate create");
                    state = Some(*ev.object);
                }
                EventType::Update => {
                    assert!(state.is_some(), "an update of a missing entry: a gap");
                    state = Some(*ev.object);
                }
                EventType::Delete => {
                    assert!(state.is_some(), "a delete of a missing entry: a gap");
                    state = None;
                }
            }
        }
        assert_eq!(state, None);
        assert_eq!(w.missed(), 0);
    });
}

/// A writer blocked on a full `Block` watcher (holding the store's write
/// order) is released at once by that watcher's cancel from another thread.
#[test]
fn cancel_releases_a_writer_blocked_on_the_watcher() {
    model_bound_1(|| {
        let store: Store<u32> = Store::new();
        let w = store.watch("k", WatchOptions::new().buffer(1).overflow(Overflow::Block));
        store.set("k", "a", 1); // fills the buffer
        let writer = {
            let store = store.clone();
            thread::spawn(move || store.set("k", "a", 2))
        };
        let _ = store.revision();
        assert!(w.cancel());
        assert_eq!(writer.join().unwrap(), Some(EventType::Update));
        assert_eq!(w.recv(), Err(WatchError::Closed));
        assert_eq!(store.get("k", "a").as_deref(), Some(&2));
    });
}

/// `DropNewest` with a buffer of one: a writer's events race the watcher's
/// receives. Every event is received or reported lost, in band, and the
/// losses at the tail are reported too (the count of offered events is
/// published after each offer and read before the channel's last look).
#[test]
fn a_loss_at_the_tail_is_reported() {
    model(|| {
        let store: Store<u32> = Store::new();
        let w = store.watch("k", WatchOptions::new().buffer(1));
        let writer = {
            let store = store.clone();
            thread::spawn(move || {
                store.set("k", "a", 1);
                store.set("k", "a", 2);
            })
        };
        let mut received = Vec::new();
        let mut lost = 0;
        // A look at the revision and a try_recv while the writer runs, then
        // everything after it. (loom explores the writer's interleavings
        // from the first load here; without it, it ran one execution.)
        let _ = store.revision();
        match w.try_recv() {
            Ok(Some(ev)) => received.push(*ev.object),
            Ok(None) => {}
            Err(WatchError::Lagged(n)) => lost += n,
            Err(WatchError::Closed) => unreachable!(),
        }
        writer.join().unwrap();
        drop(store);
        loop {
            match w.recv() {
                Ok(ev) => received.push(*ev.object),
                Err(WatchError::Lagged(n)) => lost += n,
                Err(WatchError::Closed) => break,
            }
        }
        assert_eq!(
            received.len() as u64 + lost,
            2,
            "{received:?} + {lost} lost"
        );
        assert_eq!(w.missed(), lost);
        assert!(received.windows(2).all(|p| p[0] < p[1]));
    });
}

/// A value that loom counts: loom reports one that is never dropped (a
/// leaked event) and fails on one dropped twice. The field is never read:
/// it is held for its drop.
#[derive(Debug)]
struct Tracked(#[allow(dead_code)] loom::sync::Arc<()>);

impl PartialEq for Tracked {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

/// One event goes to two watchers with references taken in one add
/// (`ChanRef::share`); one watcher's thread receives and drops its copy
/// while the main thread receives and drops the other's and the store
/// (with its entry): the event, and the value it holds, is freed exactly
/// once, by whichever drop is last.
#[test]
fn an_event_shared_by_two_watchers_is_freed_once() {
    model_bound_1(|| {
        let store: Store<Tracked> = Store::new();
        let w1 = store.watch("k", WatchOptions::new().buffer(1));
        let w2 = store.watch("k", WatchOptions::new().buffer(1));
        store.set("k", "a", Tracked(loom::sync::Arc::new(())));
        let other = thread::spawn(move || {
            let ev = w1.try_recv().unwrap().unwrap();
            assert_eq!(ev.name, "a");
        });
        let ev = w2.try_recv().unwrap().unwrap();
        drop(store);
        drop(ev);
        other.join().unwrap();
    });
}

/// The husk of a kept event (`counter::Kept`): two counted references and
/// the husk let go on three threads in every order, the husk through
/// `let_go`. The value is spent once (its user-visible part dropped when
/// the last counted reference goes, whether or not the husk still holds
/// the allocation) and its rest dropped once, by whichever party lets go
/// last; neither twice, neither never (loom also reports the probe's
/// `Arc`s leaked).
fn kept_value_let_go_on_three_threads(let_go: fn(rillet::loom_kept::ProbeHusk)) {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    model(move || {
        let spent = Arc::new(AtomicUsize::new(0));
        let rest = Arc::new(AtomicUsize::new(0));
        let (r, husk) = rillet::loom_kept::kept(spent.clone(), rest.clone());
        let r2 = r.clone();
        let a = thread::spawn(move || drop(r2));
        let b = thread::spawn(move || let_go(husk));
        drop(r);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(spent.load(Ordering::Relaxed), 1, "spent once");
        assert_eq!(rest.load(Ordering::Relaxed), 1, "the rest dropped once");
    });
}

/// The husk dropped.
#[test]
fn a_kept_value_is_spent_once_and_freed_once() {
    kept_value_let_go_on_three_threads(drop);
}

/// The husk let go through `Husk::reclaim` (a writer keeps the memory of
/// an event its watchers are done with for its next event): the rest is
/// taken by the husk only when it is last.
#[test]
fn a_reclaimed_husk_takes_the_rest_once() {
    kept_value_let_go_on_three_threads(|husk| {
        rillet::loom_kept::reclaim(husk);
    });
}

/// The store keeps the husks of its latest events (as many as its largest
/// watcher buffer: 1 here) and drops the one the next change pushes out,
/// on the writer's thread, while a watcher's thread may still hold that
/// event: the event's object (a `Tracked`) is dropped exactly once, when
/// its last holder lets go, and nothing leaks.
#[test]
fn a_husk_pushed_out_while_a_watcher_holds_its_event() {
    model_bound_1(|| {
        let store: Store<Tracked> = Store::new();
        let w = store.watch("k", WatchOptions::new().buffer(1));
        store.set("k", "a", Tracked(loom::sync::Arc::new(())));
        let watcher = thread::spawn(move || {
            let ev = w.try_recv().unwrap().unwrap();
            assert_eq!(ev.name, "a");
            drop(ev);
            w
        });
        // Replaces the entry (its value's last holder may now be the
        // event) and pushes the first event's husk out.
        store.set("k", "a", Tracked(loom::sync::Arc::new(())));
        let w = watcher.join().unwrap();
        drop(store);
        drop(w);
    });
}
