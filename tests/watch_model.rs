//! Model-based test for the watch store: random operations on one thread,
//! every answer compared with a `BTreeMap` model plus, per watcher, the
//! events it must receive: a bounded queue applying its overflow policy,
//! with every loss reported as `Lagged(n)` where it happened.

use proptest::prelude::*;
use rillet::watch::{EventType, Store, Watch, WatchError, WatchOptions};
use rillet::Overflow;
use std::collections::{BTreeMap, VecDeque};

#[path = "common/watcher_model.rs"]
mod watcher_model;
use watcher_model::WatcherModel;

const KINDS: [&str; 2] = ["a", "b"];
const NAMES: [&str; 4] = ["w", "x", "y", "z"];

#[derive(Debug, Clone)]
enum Op {
    Set(usize, usize, u8),
    Delete(usize, usize),
    /// kind, replay, buffer (0: large), DropOldest, resync, types mask
    Watch(usize, bool, usize, bool, bool, u8),
    /// watcher, how many receives
    Recv(usize, usize),
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..2usize, 0..4usize, 0..3u8).prop_map(|(k, n, v)| Op::Set(k, n, v)),
        3 => (0..2usize, 0..4usize).prop_map(|(k, n)| Op::Delete(k, n)),
        2 => (0..2usize, any::<bool>(), 0..4usize, any::<bool>(), any::<bool>(), 1..8u8)
            .prop_map(|(k, r, b, o, s, t)| Op::Watch(k, r, b, o, s, t)),
        4 => (0..8usize, 1..6usize).prop_map(|(w, n)| Op::Recv(w, n)),
        1 => (0..8usize).prop_map(Op::Cancel),
    ]
}

/// An event as the model sees it: name, type, value, revision.
type Ev = (String, EventType, u8, u64);

fn types_of(mask: u8) -> Vec<EventType> {
    [EventType::Create, EventType::Update, EventType::Delete]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| t)
        .collect()
}

/// What a `Watch` must receive: its filters, then the shared model of its
/// channel (`tests/common/watcher_model.rs`).
struct ModelWatcher {
    kind: usize,
    types: Vec<EventType>,
    m: WatcherModel<Ev>,
}

impl ModelWatcher {
    fn offer(&mut self, ev: &Ev) {
        if self.types.contains(&ev.1) {
            self.m.offer(ev.clone());
        }
    }

    /// What one `try_recv` returns; `ended`: the store is gone (a resync
    /// then replays the final state).
    fn recv(
        &mut self,
        state: &BTreeMap<(usize, String), (u8, u64)>,
        ended: bool,
    ) -> Result<Option<Ev>, WatchError> {
        let (kind, types) = (self.kind, &self.types);
        self.m.recv(ended, || snapshot(state, kind, types))
    }
}

fn snapshot(
    state: &BTreeMap<(usize, String), (u8, u64)>,
    kind: usize,
    types: &[EventType],
) -> VecDeque<Ev> {
    if !types.contains(&EventType::Create) {
        return VecDeque::new();
    }
    state
        .iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|((_, n), (v, r))| (n.clone(), EventType::Create, *v, *r))
        .collect()
}

fn run(ops: Vec<Op>) {
    let store: Store<u8> = Store::new();
    let mut state: BTreeMap<(usize, String), (u8, u64)> = BTreeMap::new();
    let mut revision = 0u64;
    let mut watches: Vec<(Watch<u8>, ModelWatcher)> = Vec::new();
    for op in ops {
        match op {
            Op::Set(k, n, v) => {
                let key = (k, NAMES[n].to_string());
                let expect = match state.get(&key) {
                    Some((old, _)) if *old == v => None,
                    Some(_) => Some(EventType::Update),
                    None => Some(EventType::Create),
                };
                assert_eq!(store.set(KINDS[k], NAMES[n], v), expect);
                if let Some(t) = expect {
                    revision += 1;
                    state.insert(key, (v, revision));
                    let ev = (NAMES[n].to_string(), t, v, revision);
                    for (_, m) in watches.iter_mut().filter(|(_, m)| m.kind == k) {
                        m.offer(&ev);
                    }
                }
            }
            Op::Delete(k, n) => {
                let key = (k, NAMES[n].to_string());
                let old = state.remove(&key);
                assert_eq!(
                    store.delete(KINDS[k], NAMES[n]).map(|v| *v),
                    old.map(|o| o.0)
                );
                if let Some((v, _)) = old {
                    revision += 1;
                    let ev = (NAMES[n].to_string(), EventType::Delete, v, revision);
                    for (_, m) in watches.iter_mut().filter(|(_, m)| m.kind == k) {
                        m.offer(&ev);
                    }
                }
            }
            Op::Watch(k, replay, b, oldest, resync, mask) => {
                let cap = if b == 0 { 1024 } else { b };
                let mut opts = WatchOptions::new()
                    .event_types(types_of(mask))
                    .buffer(cap)
                    .overflow(if oldest {
                        Overflow::DropOldest
                    } else {
                        Overflow::DropNewest
                    });
                if replay {
                    opts = opts.initial_replay();
                }
                if resync {
                    opts = opts.resync_on_lag();
                }
                let types = types_of(mask);
                let m = ModelWatcher {
                    kind: k,
                    m: WatcherModel::new(
                        cap,
                        oldest,
                        resync,
                        if replay {
                            snapshot(&state, k, &types)
                        } else {
                            VecDeque::new()
                        },
                    ),
                    types,
                };
                watches.push((store.watch(KINDS[k], opts), m));
            }
            Op::Recv(i, times) => {
                if watches.is_empty() {
                    continue;
                }
                let len = watches.len();
                let (w, m) = &mut watches[i % len];
                for _ in 0..times {
                    let got = w.try_recv().map(|o| {
                        o.map(|e| {
                            assert_eq!(e.kind, KINDS[m.kind]);
                            (e.name.clone(), e.event_type, *e.object, e.revision)
                        })
                    });
                    assert_eq!(got, m.recv(&state, false));
                }
                assert_eq!(w.missed(), m.m.missed);
            }
            Op::Cancel(i) => {
                if watches.is_empty() {
                    continue;
                }
                let len = watches.len();
                let (w, m) = &mut watches[i % len];
                assert_eq!(w.cancel(), !m.m.cancelled);
                m.m.cancelled = true;
            }
        }
        assert_eq!(store.revision(), revision);
    }
    for (k, kind) in KINDS.iter().enumerate() {
        let listed: Vec<_> = store.list(kind).into_iter().map(|(n, v)| (n, *v)).collect();
        let model: Vec<_> = state
            .iter()
            .filter(|((kk, _), _)| *kk == k)
            .map(|((_, n), (v, _))| (n.clone(), *v))
            .collect();
        assert_eq!(listed, model);
    }
    // Every watcher drains to what the model says, then ends with the store.
    drop(store);
    for (w, mut m) in watches {
        loop {
            let got = w
                .try_recv()
                .map(|o| o.map(|e| (e.name.clone(), e.event_type, *e.object, e.revision)));
            match m.recv(&state, true) {
                // Drained (the store is gone), or cancelled: the end.
                Ok(None) | Err(WatchError::Closed) => {
                    assert_eq!(got, Err(WatchError::Closed));
                    break;
                }
                expect => assert_eq!(got, expect),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 512 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_matches_its_model(ops in prop::collection::vec(op(), 0..120)) {
        run(ops);
    }
}
