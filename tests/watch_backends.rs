//! The watch store's guarantees, one test body for every backend: the
//! embedded `Store` always, and (feature `etcd`) `EtcdStore` against a real
//! etcd server that each test starts. The bodies only use the `WatchStore`
//! trait and `Watch`, so a program can move between them.
//!
//! etcd delivers asynchronously (a feeder thread follows the server's
//! stream), so the bodies wait for events with a generous deadline and
//! mark the end of a run with a sentinel entry; nothing here depends on
//! timing. Where the embedded store promises more (losses are certain
//! when a buffer is full at the moment of a write), `sync` says so.

use rillet::watch::{Event, EventType, Store, Watch, WatchError, WatchOptions, WatchStore};
use rillet::Overflow;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "etcd")]
#[path = "common/etcd_server.rs"]
mod etcd_server;

/// Long enough for any event on a loaded 2-core machine; only a hang
/// takes this long.
const PATIENCE: Duration = Duration::from_secs(30);

/// A store any body can use.
trait Backend: WatchStore<u32, Error = Self::E> + Clone + Send + Sync + 'static {
    type E: Debug;
}
impl<S> Backend for S
where
    S: WatchStore<u32> + Clone + Send + Sync + 'static,
    S::Error: Debug,
{
    type E = S::Error;
}

/// The next item, or a panic if nothing comes within `PATIENCE`.
fn next<T>(w: &Watch<T>) -> Result<Event<T>, WatchError> {
    match w.recv_timeout(PATIENCE) {
        Ok(Some(ev)) => Ok(ev),
        Ok(None) => panic!("no event within {} s", PATIENCE.as_secs()),
        Err(e) => Err(e),
    }
}

/// Events until (and without) the sentinel entry `~end` (set last by the
/// body), skipping nothing: a `Lagged` or `Invalid` panics.
fn until_end(w: &Watch<u32>) -> Vec<Event<u32>> {
    let mut out = Vec::new();
    loop {
        let ev = next(w).expect("no loss expected");
        if ev.name == "~end" {
            return out;
        }
        out.push(ev);
    }
}

fn revisions_strictly_increase_and_writes_keep_their_order<S: Backend>(store: S, _sync: bool) {
    let w = store
        .watch(
            "k",
            WatchOptions::new().buffer(1024).overflow(Overflow::Block),
        )
        .unwrap();
    const WRITERS: u32 = 4;
    const WRITES: u32 = if cfg!(miri) { 5 } else { 40 };
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    // Writer t owns keys "t-0".."t-2"; every value differs.
                    let name = format!("{t}-{}", i % 3);
                    assert!(s.set("k", &name, t * 1000 + i).unwrap().is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    store.set("k", "~end", 0).unwrap();
    let evs = until_end(&w);
    assert_eq!(evs.len() as u32, WRITERS * WRITES);
    for pair in evs.windows(2) {
        assert!(pair[0].revision < pair[1].revision, "revisions go up");
    }
    let mut per_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for ev in &evs {
        per_key.entry(ev.name.clone()).or_default().push(*ev.object);
    }
    for (name, values) in per_key {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(values, sorted, "{name}: one key's events in write order");
    }
    assert!(store.revision().unwrap() >= evs.last().unwrap().revision);
}

fn deletes_carry_the_old_value_and_other_kinds_never_show<S: Backend>(store: S, _sync: bool) {
    let w = store.watch("users", WatchOptions::new()).unwrap();
    assert_eq!(
        store.set("users", "alice", 7).unwrap(),
        Some(EventType::Create)
    );
    store.set("groups", "alice", 8).unwrap();
    assert_eq!(
        store.set("users", "alice", 9).unwrap(),
        Some(EventType::Update)
    );
    assert_eq!(store.delete("users", "alice").unwrap().as_deref(), Some(&9));
    assert_eq!(store.delete("users", "alice").unwrap(), None);
    assert_eq!(store.get("users", "alice").unwrap(), None);
    assert_eq!(store.get("groups", "alice").unwrap().as_deref(), Some(&8));
    store.set("users", "~end", 0).unwrap();
    let seen: Vec<_> = until_end(&w)
        .iter()
        .map(|ev| (ev.kind.clone(), ev.name.clone(), ev.event_type, *ev.object))
        .collect();
    let users = || "users".to_string();
    let alice = || "alice".to_string();
    assert_eq!(
        seen,
        [
            (users(), alice(), EventType::Create, 7),
            (users(), alice(), EventType::Update, 9),
            (users(), alice(), EventType::Delete, 9),
        ]
    );
}

fn an_equal_value_is_no_change<S: Backend>(store: S, _sync: bool) {
    let w = store.watch("k", WatchOptions::new()).unwrap();
    assert_eq!(store.set("k", "a", 1).unwrap(), Some(EventType::Create));
    let rev = store.revision().unwrap();
    assert_eq!(store.set("k", "a", 1).unwrap(), None);
    assert_eq!(store.revision().unwrap(), rev, "no change, no revision");
    assert_eq!(store.set("k", "a", 2).unwrap(), Some(EventType::Update));
    store.set("k", "~end", 0).unwrap();
    let values: Vec<_> = until_end(&w).iter().map(|ev| *ev.object).collect();
    assert_eq!(values, [1, 2]);
}

fn event_type_filters_apply<S: Backend>(store: S, _sync: bool) {
    let w = store
        .watch(
            "k",
            WatchOptions::new().event_types([EventType::Delete, EventType::Update]),
        )
        .unwrap();
    store.set("k", "a", 1).unwrap();
    store.set("k", "a", 2).unwrap();
    store.delete("k", "a").unwrap();
    store.set("k", "~end", 0).unwrap();
    store.set("k", "~end", 1).unwrap(); // an Update: the filter lets it through
    let types: Vec<_> = until_end(&w).iter().map(|ev| ev.event_type).collect();
    assert_eq!(types, [EventType::Update, EventType::Delete]);
}

/// Writers race a watcher that subscribes with `initial_replay`: replay
/// plus events rebuild exactly `list()`, per-key revisions going up.
fn initial_replay_has_no_gap_and_no_duplicate<S: Backend>(store: S, _sync: bool) {
    const WRITES: u32 = if cfg!(miri) { 10 } else { 150 };
    for i in 0..20 {
        store.set("k", &format!("n{i:02}"), i).unwrap();
    }
    let writers: Vec<_> = (0..2u32)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    let name = format!("n{:02}", (i * 7 + t) % 25);
                    if i % 5 == 4 {
                        s.delete("k", &name).unwrap();
                    } else {
                        s.set("k", &name, 100_000 * (t + 1) + i).unwrap();
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 0 } else { 2 }));
    let w = store
        .watch(
            "k",
            WatchOptions::new()
                .initial_replay()
                .buffer(4096)
                .overflow(Overflow::Block),
        )
        .unwrap();
    for t in writers {
        t.join().unwrap();
    }
    store.set("k", "~end", 0).unwrap();
    let mut state: BTreeMap<String, (u32, u64)> = BTreeMap::new();
    let mut last_rev: BTreeMap<String, u64> = BTreeMap::new();
    for ev in until_end(&w) {
        if let Some(&r) = last_rev.get(&ev.name) {
            assert!(
                ev.revision > r,
                "{}: revision {} after {r}",
                ev.name,
                ev.revision
            );
        }
        last_rev.insert(ev.name.clone(), ev.revision);
        match ev.event_type {
            EventType::Create => {
                assert!(
                    state
                        .insert(ev.name.clone(), (*ev.object, ev.revision))
                        .is_none(),
                    "{}: created twice (a duplicate)",
                    ev.name
                );
            }
            EventType::Update => {
                assert!(
                    state
                        .insert(ev.name.clone(), (*ev.object, ev.revision))
                        .is_some(),
                    "{}: updated before it was created (a gap)",
                    ev.name
                );
            }
            EventType::Delete => {
                assert!(
                    state.remove(&ev.name).is_some(),
                    "{}: deleted but never seen (a gap)",
                    ev.name
                );
            }
        }
    }
    let rebuilt: Vec<(String, u32)> = state.into_iter().map(|(n, (v, _))| (n, v)).collect();
    let listed: Vec<(String, u32)> = store
        .list("k")
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != "~end")
        .map(|(n, v)| (n, *v))
        .collect();
    assert_eq!(rebuilt, listed);
}

/// A watcher that does not read while 30 changes happen, under each
/// overflow policy: every loss is reported in band before the next event
/// and counted; `Block` loses nothing. (`sync`: the embedded store
/// delivers during `set`, so its losses are certain.)
fn a_slow_watcher_under_each_policy<S: Backend>(store: S, sync: bool) {
    const N: u32 = 30;
    for policy in [Overflow::DropNewest, Overflow::DropOldest, Overflow::Block] {
        let kind = format!("{policy:?}").to_lowercase();
        let w = store
            .watch(&kind, WatchOptions::new().buffer(4).overflow(policy))
            .unwrap();
        let mut writer = Some({
            let s = store.clone();
            let kind = kind.clone();
            std::thread::spawn(move || {
                for i in 1..=N {
                    s.set(&kind, "a", i).unwrap();
                }
            })
        });
        if policy != Overflow::Block {
            // Block would stop this writer (embedded store) until we read.
            writer.take().unwrap().join().unwrap();
        }
        let (mut got, mut lagged) = (Vec::new(), 0);
        let mut pending_gap = false;
        while (got.len() as u64 + lagged) < u64::from(N) {
            match next(&w) {
                Ok(ev) => {
                    if let Some(&prev) = got.last() {
                        let gap = *ev.object - prev - 1;
                        assert_eq!(
                            gap > 0,
                            pending_gap,
                            "{policy:?}: a gap is reported just before it"
                        );
                    }
                    pending_gap = false;
                    got.push(*ev.object);
                }
                Err(WatchError::Lagged(n)) => {
                    lagged += n;
                    pending_gap = true;
                }
                Err(e) => panic!("{policy:?}: {e}"),
            }
        }
        assert_eq!(
            got.len() as u64 + lagged,
            u64::from(N),
            "{policy:?}: every change received or counted"
        );
        assert_eq!(w.missed(), lagged);
        match policy {
            Overflow::Block => assert_eq!(lagged, 0),
            _ if sync => assert!(lagged > 0, "{policy:?}: a full buffer of 4 lost some of 30"),
            _ => {}
        }
        if policy == Overflow::DropOldest && sync {
            assert_eq!(
                got,
                (N - 3..=N).collect::<Vec<_>>(),
                "DropOldest keeps the newest"
            );
        }
        if let Some(writer) = writer {
            writer.join().unwrap();
        }
    }
}

/// `resync_on_lag`: after each `Lagged`, a replay of the current state
/// follows; rebuilding from it converges to `list()` without
/// re-subscribing.
fn resync_on_lag_converges<S: Backend>(store: S, sync: bool) {
    let w = store
        .watch("k", WatchOptions::new().buffer(2).resync_on_lag())
        .unwrap();
    for i in 0..40u32 {
        store.set("k", &format!("n{}", i % 10), i).unwrap();
    }
    store.delete("k", "n3").unwrap();
    store.set("k", "~end", 0).unwrap();
    let mut state: BTreeMap<String, u32> = BTreeMap::new();
    let mut lags = 0;
    let mut ended = false;
    // Until the sentinel was seen and then a quiet moment (a resync after
    // it replays it again).
    loop {
        let item = if ended {
            match w.recv_timeout(Duration::from_millis(200)) {
                Ok(None) => break,
                Ok(Some(ev)) => Ok(ev),
                Err(e) => Err(e),
            }
        } else {
            next(&w)
        };
        match item {
            Ok(ev) => {
                if ev.name == "~end" {
                    ended = true;
                    continue;
                }
                match ev.event_type {
                    EventType::Delete => state.remove(&ev.name),
                    _ => state.insert(ev.name.clone(), *ev.object),
                };
            }
            Err(WatchError::Lagged(_)) => {
                // The replay that follows is the whole state.
                lags += 1;
                state.clear();
                ended = false;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let listed: BTreeMap<String, u32> = store
        .list("k")
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != "~end")
        .map(|(n, v)| (n, *v))
        .collect();
    assert_eq!(state, listed);
    if sync {
        assert!(lags > 0, "a buffer of 2 lost some of 42 changes");
    }
}

fn cancel_is_idempotent_and_final<S: Backend>(store: S, _sync: bool) {
    let w = store.watch("k", WatchOptions::new()).unwrap();
    store.set("k", "a", 1).unwrap();
    store.set("k", "~end", 0).unwrap();
    assert_eq!(until_end(&w).len(), 1);
    store.set("k", "b", 2).unwrap();
    assert!(w.cancel());
    assert!(!w.cancel());
    store.set("k", "c", 3).unwrap();
    assert_eq!(
        w.recv(),
        Err(WatchError::Closed),
        "nothing after cancel, not even buffered events"
    );
    assert_eq!(w.try_recv(), Err(WatchError::Closed));
}

fn dropping_every_handle_ends_every_watch<S: Backend>(store: S, _sync: bool) {
    let w = store.watch("k", WatchOptions::new()).unwrap();
    let other = store.clone();
    store.set("k", "a", 1).unwrap();
    store.set("k", "~end", 0).unwrap();
    assert_eq!(until_end(&w).len(), 1);
    drop(store);
    drop(other);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match w.recv_timeout(Duration::from_millis(100)) {
            Err(WatchError::Closed) => break,
            Ok(None) => assert!(Instant::now() < deadline, "the watch did not end"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn a_watch_is_a_select_case<S: Backend>(store: S, _sync: bool) {
    let w = store.watch("jobs", WatchOptions::new()).unwrap();
    let (_tx, rx) = rillet::mpsc::channel::<u8>(1);
    let writer = {
        let s = store.clone();
        std::thread::spawn(move || s.set("jobs", "build", 5).unwrap())
    };
    rillet::select! {
        recv(w) -> ev => assert_eq!(*ev.unwrap().object, 5),
        recv(rx) -> _ => unreachable!(),
        default(PATIENCE) => panic!("no event"),
    }
    writer.join().unwrap();
}

fn an_empty_kind_is_refused<S: Backend>(store: S, _sync: bool) {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.set("", "a", 1);
    }))
    .expect_err("an empty kind panics");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("kind name is empty"), "{msg}");
}

/// Keeps the `Arc` import honest: `get` returns shared values.
fn values_are_shared<S: Backend>(store: S, _sync: bool) {
    store.set("k", "a", 3).unwrap();
    let v: Arc<u32> = store.get("k", "a").unwrap().unwrap();
    assert_eq!(*v, 3);
    assert_eq!(
        store.list("k").unwrap(),
        vec![("a".to_string(), Arc::new(3))]
    );
}

macro_rules! for_each_backend {
    ($($body:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $body() {
                    super::$body(rillet::watch::Store::<u32>::new(), true);
                }
            )*
        }

        #[cfg(feature = "etcd")]
        mod etcd {
            use super::etcd_server::EtcdServer;
            use rillet::watch::etcd::EtcdStore;
            $(
                #[test]
                fn $body() {
                    let server = EtcdServer::start();
                    let store = EtcdStore::<u32>::connect([server.endpoint()], "/rillet-test/")
                        .expect("connect to the test's etcd");
                    super::$body(store, false);
                    drop(server);
                }
            )*
        }
    };
}

for_each_backend!(
    revisions_strictly_increase_and_writes_keep_their_order,
    deletes_carry_the_old_value_and_other_kinds_never_show,
    an_equal_value_is_no_change,
    event_type_filters_apply,
    initial_replay_has_no_gap_and_no_duplicate,
    a_slow_watcher_under_each_policy,
    resync_on_lag_converges,
    cancel_is_idempotent_and_final,
    dropping_every_handle_ends_every_watch,
    a_watch_is_a_select_case,
    an_empty_kind_is_refused,
    values_are_shared,
);

/// The embedded store is a `Store`: keep the import used without etcd.
#[allow(dead_code)]
fn _embedded_is_a_backend(s: Store<u32>) -> impl Backend {
    s
}
