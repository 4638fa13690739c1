//! Two ways to consume the watch store, in the style of Kubernetes
//! clients.
//!
//! [`KubeWatch`] is a watch interface as client-go has it: `stop()` plus a
//! result channel of `Added` / `Modified` / `Deleted` / `Error` events. A
//! pump thread `select!`s on the store's [`Watch`] and on a stop channel,
//! so `stop()` ends it at once; a loss (`Lagged`) becomes an `Error` event
//! in the result channel; after `stop()` (or when the store is gone) the
//! result channel closes.
//!
//! [`Registry`] is a client that hands one channel to many watches
//! (`Store::watch_into`, one per kind, all into one bounded `DropNewest`
//! channel, so the store never waits for the client) and keeps a cache of
//! every kind. A watch reports an error by losing an event: the channel
//! counts what it dropped (`dropped()`), and when that count moves the
//! registry restarts every watch: cancel them all (at once), discard what
//! the channel holds, clear the cache, and watch every kind again with
//! `initial_replay`, which rebuilds the cache from the current state with
//! no gap. The restart is the Kubernetes reflector's "relist".

use rillet::watch::{Event, EventType, Store, Watch, WatchHandle, WatchOptions};
use rillet::{mpsc, select, Overflow};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// What a [`KubeWatch`]'s result channel carries.
#[derive(Debug)]
pub enum WatchEvent<T> {
    Added(Event<T>),
    Modified(Event<T>),
    Deleted(Event<T>),
    /// The watch lost events; what it says.
    Error(String),
}

/// The watch interface: `stop()` and a result channel.
pub trait Interface<T> {
    /// Stops the watch; the result channel closes. Idempotent.
    fn stop(&self);
    fn result_chan(&self) -> &mpsc::Receiver<WatchEvent<T>>;
}

/// [`Interface`] over a watch of the embedded store.
pub struct KubeWatch<T> {
    results: mpsc::Receiver<WatchEvent<T>>,
    stop: mpsc::Sender<()>,
    pump: Option<JoinHandle<()>>,
}

impl<T: Send + Sync + 'static> KubeWatch<T> {
    /// Watches `kind` with `opts`; the result channel holds `buffer`
    /// events (the pump waits for room: the watch's own overflow policy
    /// decides what a slow client loses).
    pub fn start(store: &Store<T>, kind: &str, opts: WatchOptions, buffer: usize) -> Self {
        let watch = store.watch(kind, opts);
        let (tx, results) = mpsc::channel(buffer);
        let (stop, stopped) = mpsc::channel::<()>(1);
        let pump = thread::spawn(move || pump(&watch, &tx, &stopped));
        KubeWatch {
            results,
            stop,
            pump: Some(pump),
        }
    }
}

fn pump<T>(watch: &Watch<T>, tx: &mpsc::Sender<WatchEvent<T>>, stopped: &mpsc::Receiver<()>) {
    loop {
        let ev = select! {
            recv(watch) -> got => match got {
                Ok(ev) => match ev.event_type {
                    EventType::Create => WatchEvent::Added(ev),
                    EventType::Update => WatchEvent::Modified(ev),
                    EventType::Delete => WatchEvent::Deleted(ev),
                },
                Err(rillet::watch::WatchError::Lagged(n)) => {
                    WatchEvent::Error(format!("the watch lost {n} events"))
                }
                Err(rillet::watch::WatchError::Closed) => return,
                // (With the `etcd` feature: an entry that does not decode.)
                #[allow(unreachable_patterns)]
                Err(e) => WatchEvent::Error(e.to_string()),
            },
            recv(stopped) -> _ => return,
        };
        // Waits for room, unless stopped.
        select! {
            send(tx, ev) -> sent => if sent.is_err() { return },
            recv(stopped) -> _ => return,
        }
    }
}

impl<T> Interface<T> for KubeWatch<T> {
    fn stop(&self) {
        self.stop.close();
    }

    fn result_chan(&self) -> &mpsc::Receiver<WatchEvent<T>> {
        &self.results
    }
}

impl<T> Drop for KubeWatch<T> {
    fn drop(&mut self) {
        self.stop.close();
        if let Some(p) = self.pump.take() {
            let _ = p.join();
        }
    }
}

/// A client of several kinds through one channel, restarting every watch
/// when one loses an event.
pub struct Registry<T> {
    store: Store<T>,
    kinds: Vec<String>,
    tx: mpsc::Sender<Event<T>>,
    rx: mpsc::Receiver<Event<T>>,
    watches: Vec<WatchHandle<T>>,
    /// `rx.dropped()` when the watches last started.
    dropped_at_start: u64,
    cache: BTreeMap<(String, String), Arc<T>>,
    restarts: u32,
}

impl<T: Send + Sync + 'static> Registry<T> {
    /// Watches every kind in `kinds` through one channel of `capacity`.
    pub fn new(store: &Store<T>, kinds: &[&str], capacity: usize) -> Self {
        let (tx, rx) = mpsc::Builder::new(capacity)
            .overflow(Overflow::DropNewest)
            .build();
        let mut r = Registry {
            store: store.clone(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            tx,
            rx,
            watches: Vec::new(),
            dropped_at_start: 0,
            cache: BTreeMap::new(),
            restarts: 0,
        };
        r.start();
        r
    }

    /// Every watch from the current state (`initial_replay`). Each kind's
    /// replay goes into the channel before its `watch_into` returns, so
    /// the cache takes it before the next kind starts: one kind's entries
    /// must fit in the channel (a replay that overflows it is a loss like
    /// any other, and the registry would restart again).
    fn start(&mut self) {
        self.dropped_at_start = self.rx.dropped();
        for i in 0..self.kinds.len() {
            let opts = WatchOptions::new().initial_replay();
            let w = self.store.watch_into(&self.kinds[i], opts, self.tx.clone());
            self.watches.push(w);
            while let Ok(ev) = self.rx.try_recv() {
                self.apply(&ev);
            }
        }
    }

    /// Cancels every watch, forgets what they sent, starts them again.
    fn restart(&mut self) {
        for w in self.watches.drain(..) {
            w.cancel();
        }
        // Nothing arrives after the cancels: what is here is stale.
        self.rx.try_iter().for_each(drop);
        self.cache.clear();
        self.restarts += 1;
        self.start();
    }

    /// A watch lost an event since the last start.
    fn failed(&self) -> bool {
        self.rx.dropped() != self.dropped_at_start
    }

    /// Applies one event to the cache.
    fn apply(&mut self, ev: &Event<T>) {
        let key = (ev.kind.clone(), ev.name.clone());
        match ev.event_type {
            EventType::Delete => {
                self.cache.remove(&key);
            }
            _ => {
                self.cache.insert(key, ev.object.clone());
            }
        }
    }

    /// Follows the watches until `stop` closes; `slow` is called per event
    /// (a slow client, to show the restarts).
    pub fn run(&mut self, stop: &mpsc::Receiver<()>, mut slow: impl FnMut()) {
        loop {
            if self.failed() {
                self.restart();
            }
            select! {
                recv(self.rx) -> ev => {
                    let ev = ev.expect("the registry holds a sender");
                    self.apply(&ev);
                    slow();
                }
                recv(stop) -> _ => break,
            }
        }
        // Caught up: what is left, restarting until nothing was lost.
        loop {
            while let Ok(ev) = self.rx.try_recv() {
                self.apply(&ev);
            }
            if !self.failed() {
                return;
            }
            self.restart();
        }
    }

    pub fn cache(&self) -> &BTreeMap<(String, String), Arc<T>> {
        &self.cache
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}
