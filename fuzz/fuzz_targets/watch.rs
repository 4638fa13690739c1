//! Model-based fuzz target for `rillet::watch`: an arbitrary sequence of
//! operations on one thread (set/delete/get/list over 2 kinds x 4 names x 3
//! values, watches with random options, receives, cancels, store handle
//! clones and drops, `watch_into` channels) is applied to a real store and
//! to a model, and every answer must match.
//!
//! The model (the same specification as `tests/watch_model.rs`):
//! - the store is a `BTreeMap` of (kind, name) to (value, revision of the
//!   last change); an equal `set` is no change; every change takes the next
//!   revision and is offered to every live watcher of its kind whose type
//!   filter takes it;
//! - a `Watch` is a bounded queue of (sequence number, event) under its
//!   policy (`DropNewest` or `DropOldest`, never `Block`: one thread), plus
//!   its replay, the event held back after a reported gap, the count of
//!   events offered and the next sequence number expected; a receive
//!   returns the replay first, then the held-back event, then either the
//!   queue's head or `Lagged(gap)` when its number skips ahead (or when
//!   events were offered but the queue is empty: a loss at the tail);
//!   `resync_on_lag` replaces the queue with a fresh replay after a lag
//!   (also after the store has ended: the replay is its final state);
//! - a `watch_into` channel is a bounded `DropNewest` queue shared by the
//!   watches sending into it, closed when its receiver closes or when every
//!   sender is gone (ours, and those of live registrations);
//! - dropping the last store handle ends every watch: what was delivered
//!   comes out, then `Closed`.
//!
//! After every operation the revision, each channel's `len`, `dropped`
//! and `is_closed`, each watch's `missed` and each handle's
//! `is_cancelled` must match. At the end every store handle and every
//! sender we keep is dropped and every watch and channel is drained to
//! `Closed` against the model.
//!
//! Run: `cargo +nightly fuzz run watch -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::watch::{Event, EventType, Store, Watch, WatchError, WatchHandle, WatchOptions};
use rillet::{mpsc, Overflow, TryRecvError};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

#[path = "../../tests/common/watcher_model.rs"]
mod watcher_model;
use watcher_model::WatcherModel;

const KINDS: [&str; 2] = ["a", "b"];
/// Sorted, so the model's index order is the store's name order.
const NAMES: [&str; 4] = ["w", "x", "y", "z"];
/// The "large" watch buffer: more than `MAX_OPS` changes, never fills.
const LARGE: usize = 1024;
const MAX_OPS: usize = 512;

/// An event as the model sees it: kind and name (indices into `KINDS` and
/// `NAMES`), type, value, revision.
type Ev = (usize, usize, EventType, u8, u64);
/// (kind, name) -> (value, revision of the entry's last change).
type State = BTreeMap<(usize, usize), (u8, u64)>;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    /// Not set: `DropNewest`.
    Default,
    DropNewest,
    DropOldest,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum How {
    TryRecv,
    RecvZeroTimeout,
    /// Blocking `recv`, only run when the model says it cannot wait.
    Recv,
}

/// Indices are taken modulo the number of live items; an op is skipped
/// when there is none (store ops once every store handle is dropped).
/// `types` is a mask of Create=1, Update=2, Delete=4 (0: not set, all).
#[derive(Arbitrary, Debug)]
enum Op {
    Set(u8, u8, u8, u8),
    Delete(u8, u8, u8),
    Get(u8, u8, u8),
    List(u8, u8),
    /// store, kind, replay, buffer (0: default 128, 1..=4, 5: large),
    /// policy, resync, types
    Watch(u8, u8, bool, u8, Policy, bool, u8),
    /// watch, how many receives, how
    Recv(u8, u8, How),
    /// watch, at most this many events (`try_iter` steps over lags)
    TryIter(u8, u8),
    /// watch, then drop it
    Cancel(u8, bool),
    CloneStore(u8),
    DropStore(u8),
    /// store, kind, replay, types, target: an existing channel that we
    /// still hold a sender of, or (`None`) a new `DropNewest` channel of
    /// capacity 1..=8
    WatchInto(u8, u8, bool, u8, Option<u8>, u8),
    /// channel, how many `try_recv`s
    DrainInto(u8, u8),
    CloseInto(u8),
    DropIntoSender(u8),
    /// handle, then drop it
    CancelInto(u8, bool),
}

fn bit(t: EventType) -> u8 {
    match t {
        EventType::Create => 1,
        EventType::Update => 2,
        EventType::Delete => 4,
    }
}

/// The options' type filter and the mask the model uses for it.
fn with_types(opts: WatchOptions, types: u8) -> (WatchOptions, u8) {
    let mask = types % 8;
    if mask == 0 {
        return (opts, 7); // not set: every type
    }
    let list = [EventType::Create, EventType::Update, EventType::Delete];
    let opts = opts.event_types(list.into_iter().filter(|t| mask & bit(*t) != 0));
    (opts, mask)
}

fn ev_of(e: &Event<u8>) -> Ev {
    let k = KINDS.iter().position(|k| *k == e.kind).expect("known kind");
    let n = NAMES.iter().position(|n| *n == e.name).expect("known name");
    (k, n, e.event_type, *e.object, e.revision)
}

/// The kind's entries as replayed `Create` events, in name order.
fn snapshot(state: &State, kind: usize, mask: u8) -> VecDeque<Ev> {
    if mask & bit(EventType::Create) == 0 {
        return VecDeque::new();
    }
    state
        .range((kind, 0)..(kind + 1, 0))
        .map(|(&(k, n), &(v, r))| (k, n, EventType::Create, v, r))
        .collect()
}

/// What a `Watch` must receive: its filters, then the shared model of its
/// channel.
struct MWatch {
    kind: usize,
    mask: u8,
    m: WatcherModel<Ev>,
}

impl MWatch {
    fn offer(&mut self, ev: Ev) {
        if ev.0 == self.kind && self.mask & bit(ev.2) != 0 {
            self.m.offer(ev);
        }
    }

    /// What one `try_recv` returns; `ended`: every store handle is gone.
    fn recv(&mut self, state: &State, ended: bool) -> Result<Option<Ev>, WatchError> {
        let (kind, mask) = (self.kind, self.mask);
        self.m.recv(ended, || snapshot(state, kind, mask))
    }
}

/// A `watch_into` registration.
struct MInto {
    chan: usize,
    kind: usize,
    mask: u8,
    cancelled: bool,
}

/// A `watch_into` target channel (`DropNewest`) and its model.
struct Chan {
    rx: mpsc::Receiver<Event<u8>>,
    /// Our own sender, to give further watches (dropped by `DropIntoSender`).
    tx: Option<mpsc::Sender<Event<u8>>>,
    cap: usize,
    q: VecDeque<Ev>,
    rx_closed: bool,
    dropped: u64,
}

impl Chan {
    fn push(&mut self, ev: Ev) {
        if self.q.len() == self.cap {
            self.dropped += 1;
        } else {
            self.q.push_back(ev);
        }
    }
}

/// The real handles next to their models.
struct World {
    stores: Vec<Store<u8>>,
    state: State,
    revision: u64,
    watches: Vec<(Watch<u8>, MWatch)>,
    handles: Vec<(WatchHandle<u8>, MInto)>,
    chans: Vec<Chan>,
}

impl World {
    fn ended(&self) -> bool {
        self.stores.is_empty()
    }

    /// Channel `i` is open: its receiver did not close it, and a sender is
    /// left (ours, or one held by a live registration).
    fn open(&self, i: usize) -> bool {
        let c = &self.chans[i];
        !c.rx_closed
            && (c.tx.is_some()
                || !self.ended()
                    && self
                        .handles
                        .iter()
                        .any(|(_, h)| h.chan == i && !h.cancelled))
    }

    fn store(&self, i: u8) -> Option<&Store<u8>> {
        (!self.stores.is_empty()).then(|| &self.stores[usize::from(i) % self.stores.len()])
    }

    /// A change at the next revision, offered to every watcher.
    fn change(&mut self, ev: Ev) {
        assert_eq!(ev.4, self.revision + 1);
        self.revision = ev.4;
        for (_, m) in &mut self.watches {
            m.offer(ev);
        }
        let targets: Vec<usize> = self
            .handles
            .iter()
            .filter(|(_, h)| !h.cancelled && h.kind == ev.0 && h.mask & bit(ev.2) != 0)
            .map(|(_, h)| h.chan)
            .collect();
        for i in targets {
            if self.open(i) {
                self.chans[i].push(ev);
            }
        }
    }

    /// Checks run after every operation.
    fn check(&self) {
        for s in &self.stores {
            assert_eq!(s.revision(), self.revision);
        }
        for (i, c) in self.chans.iter().enumerate() {
            assert_eq!(c.rx.len(), c.q.len());
            assert_eq!(c.rx.dropped(), c.dropped);
            assert_eq!(c.rx.is_closed(), !self.open(i));
        }
        for (w, m) in &self.watches {
            assert_eq!(w.missed(), m.m.missed);
        }
        for (h, m) in &self.handles {
            assert_eq!(h.is_cancelled(), m.cancelled);
        }
    }

    fn apply(&mut self, op: &Op) {
        let ended = self.ended();
        match *op {
            Op::Set(s, k, n, v) => {
                let Some(store) = self.store(s) else { return };
                let (k, n, v) = (usize::from(k) % 2, usize::from(n) % 4, v % 3);
                let want = match self.state.get(&(k, n)) {
                    Some(&(old, _)) if old == v => None,
                    Some(_) => Some(EventType::Update),
                    None => Some(EventType::Create),
                };
                assert_eq!(store.set(KINDS[k], NAMES[n], v), want);
                if let Some(t) = want {
                    self.state.insert((k, n), (v, self.revision + 1));
                    self.change((k, n, t, v, self.revision + 1));
                }
            }
            Op::Delete(s, k, n) => {
                let Some(store) = self.store(s) else { return };
                let (k, n) = (usize::from(k) % 2, usize::from(n) % 4);
                let got = store.delete(KINDS[k], NAMES[n]).map(|v| *v);
                let old = self.state.remove(&(k, n)).map(|(v, _)| v);
                assert_eq!(got, old);
                if let Some(v) = old {
                    self.change((k, n, EventType::Delete, v, self.revision + 1));
                }
            }
            Op::Get(s, k, n) => {
                let Some(store) = self.store(s) else { return };
                let (k, n) = (usize::from(k) % 2, usize::from(n) % 4);
                let got = store.get(KINDS[k], NAMES[n]).map(|v| *v);
                assert_eq!(got, self.state.get(&(k, n)).map(|e| e.0));
            }
            Op::List(s, k) => {
                let Some(store) = self.store(s) else { return };
                self.check_list(store, usize::from(k) % 2);
            }
            Op::Watch(s, k, replay, buffer, policy, resync, types) => {
                let Some(store) = self.store(s) else { return };
                let k = usize::from(k) % 2;
                let (mut opts, mask) = with_types(WatchOptions::new(), types);
                let cap = match buffer % 6 {
                    0 => 128, // not set: the default
                    5 => LARGE,
                    b => usize::from(b),
                };
                if buffer % 6 != 0 {
                    opts = opts.buffer(cap);
                }
                opts = match policy {
                    Policy::Default => opts,
                    Policy::DropNewest => opts.overflow(Overflow::DropNewest),
                    Policy::DropOldest => opts.overflow(Overflow::DropOldest),
                };
                if replay {
                    opts = opts.initial_replay();
                }
                if resync {
                    opts = opts.resync_on_lag();
                }
                let w = store.watch(KINDS[k], opts);
                assert_eq!(w.kind(), KINDS[k]);
                let m = MWatch {
                    kind: k,
                    mask,
                    m: WatcherModel::new(
                        cap,
                        matches!(policy, Policy::DropOldest),
                        resync,
                        if replay {
                            snapshot(&self.state, k, mask)
                        } else {
                            VecDeque::new()
                        },
                    ),
                };
                self.watches.push((w, m));
            }
            Op::Recv(i, times, how) => {
                if self.watches.is_empty() {
                    return;
                }
                let len = self.watches.len();
                let (w, m) = &mut self.watches[usize::from(i) % len];
                for _ in 0..times % 8 + 1 {
                    let want = m.recv(&self.state, ended);
                    let got = match how {
                        How::TryRecv => w.try_recv(),
                        How::RecvZeroTimeout => w.recv_timeout(Duration::ZERO),
                        How::Recv if want != Ok(None) => w.recv().map(Some),
                        How::Recv => w.try_recv(), // would wait forever
                    };
                    assert_eq!(got.map(|o| o.as_ref().map(ev_of)), want);
                }
            }
            Op::TryIter(i, max) => {
                if self.watches.is_empty() {
                    return;
                }
                let len = self.watches.len();
                let (w, m) = &mut self.watches[usize::from(i) % len];
                let max = usize::from(max % 8);
                let got: Vec<Ev> = w.try_iter().take(max).map(|e| ev_of(&e)).collect();
                let mut want = Vec::new();
                while want.len() < max {
                    match m.recv(&self.state, ended) {
                        Ok(Some(ev)) => want.push(ev),
                        Err(WatchError::Lagged(_)) => {}
                        Ok(None) | Err(WatchError::Closed) => break,
                    }
                }
                assert_eq!(got, want);
            }
            Op::Cancel(i, drop_it) => {
                if self.watches.is_empty() {
                    return;
                }
                let i = usize::from(i) % self.watches.len();
                let (w, m) = &mut self.watches[i];
                assert_eq!(w.cancel(), !m.m.cancelled);
                m.m.cancelled = true;
                if drop_it {
                    self.watches.remove(i);
                }
            }
            Op::CloneStore(s) => {
                let Some(store) = self.store(s) else { return };
                let clone = store.clone();
                self.stores.push(clone);
            }
            Op::DropStore(s) => {
                if self.stores.is_empty() {
                    return;
                }
                // The last one ends every watch.
                let i = usize::from(s) % self.stores.len();
                drop(self.stores.remove(i));
            }
            Op::WatchInto(s, k, replay, types, target, capacity) => {
                if self.store(s).is_none() {
                    return;
                }
                let k = usize::from(k) % 2;
                let chan = match target {
                    Some(c) if !self.chans.is_empty() => {
                        let c = usize::from(c) % self.chans.len();
                        if self.chans[c].tx.is_none() {
                            return; // no sender left to give it
                        }
                        c
                    }
                    _ => {
                        let cap = usize::from(capacity % 8) + 1;
                        let (tx, rx) = mpsc::Builder::new(cap)
                            .overflow(Overflow::DropNewest)
                            .build();
                        self.chans.push(Chan {
                            rx,
                            tx: Some(tx),
                            cap,
                            q: VecDeque::new(),
                            rx_closed: false,
                            dropped: 0,
                        });
                        self.chans.len() - 1
                    }
                };
                let (mut opts, mask) = with_types(WatchOptions::new(), types);
                if replay {
                    opts = opts.initial_replay();
                    // Sent before `watch_into` returns (none if closed).
                    if !self.chans[chan].rx_closed {
                        for ev in snapshot(&self.state, k, mask) {
                            self.chans[chan].push(ev);
                        }
                    }
                }
                let tx = self.chans[chan].tx.clone().unwrap();
                let h = self.store(s).unwrap().watch_into(KINDS[k], opts, tx);
                let m = MInto {
                    chan,
                    kind: k,
                    mask,
                    cancelled: false,
                };
                self.handles.push((h, m));
            }
            Op::DrainInto(c, times) => {
                if self.chans.is_empty() {
                    return;
                }
                let c = usize::from(c) % self.chans.len();
                let open = self.open(c);
                let chan = &mut self.chans[c];
                for _ in 0..times % 8 + 1 {
                    let want = match chan.q.pop_front() {
                        Some(ev) => Ok(ev),
                        None if open => Err(TryRecvError::Empty),
                        None => Err(TryRecvError::Closed),
                    };
                    assert_eq!(chan.rx.try_recv().map(|e| ev_of(&e)), want);
                }
            }
            Op::CloseInto(c) => {
                if self.chans.is_empty() {
                    return;
                }
                let c = usize::from(c) % self.chans.len();
                assert_eq!(self.chans[c].rx.close(), self.open(c));
                self.chans[c].rx_closed = true;
            }
            Op::DropIntoSender(c) => {
                if self.chans.is_empty() {
                    return;
                }
                let c = usize::from(c) % self.chans.len();
                self.chans[c].tx = None;
            }
            Op::CancelInto(i, drop_it) => {
                if self.handles.is_empty() {
                    return;
                }
                let i = usize::from(i) % self.handles.len();
                let (h, m) = &mut self.handles[i];
                assert_eq!(h.cancel(), !m.cancelled);
                m.cancelled = true;
                if drop_it {
                    self.handles.remove(i);
                }
            }
        }
    }

    fn check_list(&self, store: &Store<u8>, k: usize) {
        let got: Vec<(String, u8)> = (store.list(KINDS[k]).into_iter())
            .map(|(n, v)| (n, *v))
            .collect();
        let want: Vec<(String, u8)> = (snapshot(&self.state, k, 7).into_iter())
            .map(|(_, n, _, v, _)| (NAMES[n].to_string(), v))
            .collect();
        assert_eq!(got, want);
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World {
        stores: vec![Store::new()],
        state: State::new(),
        revision: 0,
        watches: Vec::new(),
        handles: Vec::new(),
        chans: Vec::new(),
    };
    for op in ops.iter().take(MAX_OPS) {
        world.apply(op);
        world.check();
    }
    if let Some(store) = world.stores.first() {
        for k in 0..KINDS.len() {
            world.check_list(store, k);
        }
    }

    // The end: every store handle and every sender of ours goes; every
    // watch and every channel drains to what the model says, then Closed.
    world.stores.clear();
    for c in &mut world.chans {
        c.tx = None;
    }
    world.check();
    let World {
        state,
        watches,
        handles,
        chans,
        ..
    } = world;
    for (w, mut m) in watches {
        loop {
            let want = m.recv(&state, true);
            assert_eq!(w.try_recv().map(|o| o.as_ref().map(ev_of)), want);
            if want == Err(WatchError::Closed) {
                break;
            }
        }
        assert_eq!(w.missed(), m.m.missed);
    }
    for mut c in chans {
        while let Some(ev) = c.q.pop_front() {
            assert_eq!(c.rx.try_recv().map(|e| ev_of(&e)), Ok(ev));
        }
        assert_eq!(
            c.rx.try_recv().map(|e| ev_of(&e)),
            Err(TryRecvError::Closed)
        );
        assert_eq!(c.rx.dropped(), c.dropped);
    }
    for (h, m) in handles {
        assert_eq!(h.cancel(), !m.cancelled);
    }
});
