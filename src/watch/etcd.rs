//! The watch store on an etcd v3 cluster (feature `etcd`): the same method
//! names, [`WatchOptions`], [`Watch`], [`Event`] and [`EventType`] as the
//! embedded [`Store`](super::Store), for programs whose writers and
//! watchers live in several processes or on several machines.
//!
//! ```no_run
//! use rillet::watch::etcd::{EtcdStore, StoreError};
//! use rillet::watch::WatchOptions;
//!
//! # fn main() -> Result<(), StoreError> {
//! let store: EtcdStore<u32> = EtcdStore::connect(["127.0.0.1:2379"], "/app/")?;
//! store.set("users", "alice", 1)?;
//! let w = store.watch("users", WatchOptions::new().initial_replay())?;
//! let ev = w.recv().unwrap();
//! assert_eq!((ev.name.as_str(), *ev.object), ("alice", 1));
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! An entry `kind/name` is the etcd key `{prefix}{kind}/{name}`; its value
//! is `T` encoded as JSON (serde_json). Revisions are etcd's: an event's
//! revision is the change's `mod_revision`, and [`EtcdStore::revision`] is
//! the cluster's current revision (it also counts changes outside the
//! prefix, so it is increasing but not dense).
//!
//! - `set` is one transaction: if the stored bytes equal the new value's
//!   encoding, nothing is written and it returns `None`; otherwise it puts
//!   the value and asks for the previous one (present: `Update`; absent:
//!   `Create`). So equality is equality of the JSON encodings: equal values
//!   of a type whose `Serialize` is deterministic (every type without a
//!   `HashMap` inside) are suppressed, as `PartialEq` suppresses them in
//!   the embedded store.
//! - A [`Watch`] is fed by a thread of its own, which reads an etcd watch
//!   stream of the kind's key prefix on the store's runtime and offers each
//!   event into the watch's channel (its `buffer` and `overflow` policy,
//!   numbered per watcher exactly as the embedded store does, so losses are
//!   reported in band as `Lagged(n)` and counted by `missed()`).
//!   `Overflow::Block` makes the feeder wait for room (etcd keeps the
//!   history meanwhile); writers never wait for a watcher here, since they
//!   may be other processes.
//! - `initial_replay` reads the kind at the cluster's revision R (paged,
//!   all pages at R) and watches from R + 1: no gap, no duplicate. Without
//!   it, the watch starts at the revision after the current one, read
//!   before `watch` returns: every change made after `watch` returns is
//!   seen.
//! - If the stream breaks (the connection drops, the server restarts), the
//!   feeder opens a new one from the revision after the last event it
//!   offered, retrying every 50 ms to 1 s until it succeeds, the watch is
//!   cancelled or the store is dropped: nothing is lost, nothing comes
//!   twice.
//! - If etcd compacted the revision the feeder needs, the watch reports
//!   `Lagged(n)`, where `n` is the number of revisions compacted away (an
//!   upper bound of this kind's lost events: etcd does not say how many
//!   were of this kind), and goes on from the oldest revision etcd kept.
//!   With `resync_on_lag`, a fresh replay follows, as in the embedded store.
//! - A value that does not decode as `T` (another program wrote it) comes
//!   in band, in revision order, as `Err(WatchError::Invalid { .. })`; the
//!   watch goes on. In `get`, `delete` and `list` it is
//!   [`StoreError::Decode`].
//! - The public API blocks. The async client runs on a small tokio runtime
//!   the store owns (one worker thread). Every request has a deadline
//!   (`connect` 5 s, others 10 s): an unreachable cluster gives
//!   [`StoreError::Unavailable`], never a hang.
//! - Dropping every `EtcdStore` handle ends every watch (its feeder stops;
//!   the watch receives what was already delivered, then `Closed`).
//! - `watch_into` sends into a caller's channel as the embedded store's
//!   does; an `Invalid` entry or a compaction's loss cannot travel in a
//!   plain `Event` channel, so there they go to stderr.
//! - Not offered here: a compare function (equality is the encoding's);
//!   kind names may not contain `/` (a watch of kind `a` would see kind
//!   `a/b`).

use super::store::TrySend;
use super::watcher::{Feed, Local, Msg, Watch, WatchHandle};
use super::{check_kind, Event, EventType, WatchError, WatchOptions, WatchStore};
use crate::select::SelectSend;
use crate::sync::{AtomicU64, Ordering};
use crate::{mpsc, spsc};
use etcd_client as ec;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;
use tokio::sync::watch as twatch;

/// How long `connect` may take, and any other request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys per page when reading a whole kind.
const PAGE: i64 = 1000;
/// The feeder's wait before it reopens a broken stream (doubling up to
/// the second value).
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Why an etcd store operation failed.
///
/// ```
/// use rillet::watch::etcd::StoreError;
///
/// let e = StoreError::Unavailable {
///     endpoints: "127.0.0.1:1".into(),
///     op: "connect",
///     key: "/app/".into(),
///     reason: "connection refused".into(),
/// };
/// assert_eq!(e.to_string(), "etcd at 127.0.0.1:1: connect /app/ failed: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The cluster could not be reached, or a request failed or ran past
    /// its deadline.
    Unavailable {
        /// The endpoints the store was given, comma-separated.
        endpoints: String,
        /// The operation (`connect`, `set`, `get`, `delete`, `list`,
        /// `revision`, `watch`).
        op: &'static str,
        /// The key or prefix it was about.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// A value could not be encoded as JSON.
    Encode {
        /// The key it was for.
        key: String,
        /// What the encoder said.
        reason: String,
    },
    /// A stored value does not decode as `T` (another program wrote it).
    Decode {
        /// The key it was read from.
        key: String,
        /// What the decoder said.
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable {
                endpoints,
                op,
                key,
                reason,
            } => write!(f, "etcd at {endpoints}: {op} {key} failed: {reason}"),
            StoreError::Encode { key, reason } => {
                write!(f, "the value for {key} does not encode as JSON: {reason}")
            }
            StoreError::Decode { key, reason } => {
                write!(f, "the value of {key} does not decode: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// A watch store on an etcd v3 cluster: see the [module docs](self).
/// Cloning gives another handle to the same connection; dropping the last
/// one ends every watch.
pub struct EtcdStore<T> {
    handle: Arc<Handle>,
    _values: PhantomData<fn(T) -> T>,
}

/// The store handles' shared part: its drop (the last handle's) stops
/// every feeder.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.stop.send_replace(true);
    }
}

/// The connection: what handles and feeders share.
struct Inner {
    /// `Some` until dropped (then shut down without blocking).
    rt: Option<tokio::runtime::Runtime>,
    client: ec::Client,
    prefix: String,
    endpoints: String,
    /// Set when the last store handle goes.
    stop: twatch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Not `drop`: that blocks, and panics inside an async context.
            rt.shutdown_background();
        }
    }
}

impl Inner {
    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as Inner")
    }

    fn unavailable(&self, op: &'static str, key: &str, reason: impl fmt::Display) -> StoreError {
        StoreError::Unavailable {
            endpoints: self.endpoints.clone(),
            op,
            key: key.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Runs one request on the runtime, with the request deadline.
    fn call<R, F>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(ec::Client) -> F,
    ) -> Result<R, StoreError>
    where
        F: Future<Output = Result<R, ec::Error>>,
    {
        let fut = f(self.client.clone());
        match self
            .rt()
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.unavailable(op, key, e)),
            Err(_) => Err(self.unavailable(
                op,
                key,
                format_args!("no answer in {} s", REQUEST_TIMEOUT.as_secs()),
            )),
        }
    }

    fn kind_prefix(&self, kind: &str) -> String {
        format!("{}{kind}/", self.prefix)
    }

    /// Every entry of `kind` at one revision (paged; every page read at
    /// the first page's revision), and that revision.
    fn range_all(
        &self,
        op: &'static str,
        kind: &str,
    ) -> Result<(Vec<ec::KeyValue>, i64), StoreError> {
        let prefix = self.kind_prefix(kind);
        // The end of the prefix range: '/' + 1 is '0'.
        let end = format!("{}{kind}0", self.prefix);
        let mut kvs = Vec::new();
        let mut from = prefix.clone().into_bytes();
        let mut revision = 0;
        loop {
            let mut opts = ec::GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let key = from.clone();
            let mut resp =
                self.call(
                    op,
                    &prefix,
                    |mut c| async move { c.get(key, Some(opts)).await },
                )?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let more = resp.more();
            let page = resp.take_kvs();
            if let Some(last) = page.last() {
                from = last.key().to_vec();
                from.push(0);
            }
            let done = !more || page.is_empty();
            kvs.extend(page);
            if done {
                return Ok((kvs, revision));
            }
        }
    }
}

/// Decodes a stored value.
fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// Panics on a kind name the key layout cannot hold.
fn check_etcd_kind(kind: &str, method: &str) {
    check_kind(kind, method);
    assert!(
        !kind.contains('/'),
        "rillet::watch::{method}: the kind name {kind:?} contains '/'; keys are \
         {{prefix}}{{kind}}/{{name}}, so a watch of one kind would see the other"
    );
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> EtcdStore<T> {
    /// Connects to the cluster at `endpoints` (`host:port` or
    /// `http://host:port`), with every key under `prefix`. Checks that the
    /// cluster answers: an unreachable one gives
    /// [`StoreError::Unavailable`] within 5 seconds.
    ///
    /// ```
    /// use rillet::watch::etcd::{EtcdStore, StoreError};
    ///
    /// // Port 1 on this host: nothing listens there.
    /// let err = EtcdStore::<u8>::connect(["127.0.0.1:1"], "/app/").err().unwrap();
    /// assert!(matches!(err, StoreError::Unavailable { op: "connect", .. }), "{err}");
    /// ```
    pub fn connect<E: AsRef<str>>(
        endpoints: impl AsRef<[E]>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        let endpoints: Vec<String> = endpoints
            .as_ref()
            .iter()
            .map(|e| e.as_ref().to_owned())
            .collect();
        let joined = endpoints.join(",");
        let fail = |reason: String| StoreError::Unavailable {
            endpoints: joined.clone(),
            op: "connect",
            key: prefix.to_owned(),
            reason,
        };
        if endpoints.is_empty() {
            return Err(fail("no endpoint given".into()));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rillet-etcd")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the client runtime: {e}")))?;
        let options = ec::ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let probe_key = prefix.to_owned();
        let connected = rt.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, async {
                let mut client = ec::Client::connect(&endpoints, Some(options)).await?;
                // The client connects lazily: ask for something, so that
                // an unreachable cluster shows here.
                let probe = ec::GetOptions::new().with_prefix().with_count_only();
                client.get(probe_key, Some(probe)).await?;
                Ok::<_, ec::Error>(client)
            })
            .await
        });
        let client = match connected {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) => {
                rt.shutdown_background();
                return Err(fail(format!(
                    "no answer in {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let (stop, _) = twatch::channel(false);
        Ok(EtcdStore {
            handle: Arc::new(Handle {
                inner: Arc::new(Inner {
                    rt: Some(rt),
                    client,
                    prefix: prefix.to_owned(),
                    endpoints: joined,
                    stop,
                }),
            }),
            _values: PhantomData,
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}/{name}", self.inner().prefix)
    }

    /// Sets `kind/name` to `value`: `Some(Create)` or `Some(Update)`, or
    /// `None` (no write, no event) when the stored value's encoding is
    /// the same. One transaction.
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`.
    pub fn set(&self, kind: &str, name: &str, value: T) -> Result<Option<EventType>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::set");
        let key = self.key(kind, name);
        let bytes = serde_json::to_vec(&value).map_err(|e| StoreError::Encode {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let txn = ec::Txn::new()
            .when([ec::Compare::value(
                key.clone(),
                ec::CompareOp::Equal,
                bytes.clone(),
            )])
            .or_else([ec::TxnOp::put(
                key.clone(),
                bytes,
                Some(ec::PutOptions::new().with_prev_key()),
            )]);
        let resp = self
            .inner()
            .call("set", &key, |mut c| async move { c.txn(txn).await })?;
        if resp.succeeded() {
            return Ok(None);
        }
        match resp.op_responses().into_iter().next() {
            Some(ec::TxnOpResponse::Put(put)) => Ok(Some(if put.prev_key().is_some() {
                EventType::Update
            } else {
                EventType::Create
            })),
            _ => Err(self
                .inner()
                .unavailable("set", &key, "the transaction's answer has no put")),
        }
    }

    /// The current value of `kind/name`.
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`.
    pub fn get(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::get");
        let key = self.key(kind, name);
        let k = key.clone();
        let resp = self
            .inner()
            .call("get", &key, |mut c| async move { c.get(k, None).await })?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(Arc::new(decode(kv.key(), kv.value())?))),
            None => Ok(None),
        }
    }

    /// Removes `kind/name`; returns the value it had.
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`.
    pub fn delete(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::delete");
        let key = self.key(kind, name);
        let k = key.clone();
        let resp = self.inner().call("delete", &key, |mut c| async move {
            c.delete(k, Some(ec::DeleteOptions::new().with_prev_key()))
                .await
        })?;
        match resp.prev_kvs().first() {
            Some(kv) => Ok(Some(Arc::new(decode(kv.key(), kv.value())?))),
            None => Ok(None),
        }
    }

    /// The entries of `kind`, sorted by name (read at one revision).
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`.
    pub fn list(&self, kind: &str) -> Result<Vec<(String, Arc<T>)>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::list");
        let prefix_len = self.inner().kind_prefix(kind).len();
        let (kvs, _) = self.inner().range_all("list", kind)?;
        kvs.iter()
            .map(|kv| {
                let name = String::from_utf8_lossy(&kv.key()[prefix_len..]).into_owned();
                Ok((name, Arc::new(decode(kv.key(), kv.value())?)))
            })
            .collect()
    }

    /// The cluster's current revision (etcd's: it counts changes outside
    /// the prefix too).
    pub fn revision(&self) -> Result<u64, StoreError> {
        let prefix = self.inner().prefix.clone();
        let p = prefix.clone();
        let resp = self.inner().call("revision", &prefix, |mut c| async move {
            let opts = ec::GetOptions::new().with_prefix().with_count_only();
            c.get(p, Some(opts)).await
        })?;
        Ok(resp.header().map_or(0, |h| h.revision()) as u64)
    }

    /// Watches `kind`: the same [`Watch`] as the embedded store's, fed by
    /// a thread that follows etcd (see the [module docs](self)).
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`, or if the buffer
    /// (`WatchOptions::buffer`) is too large to allocate.
    pub fn watch(&self, kind: &str, opts: WatchOptions) -> Result<Watch<T>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::watch");
        super::check_buffer::<(u64, Msg<T>)>(opts.buffer, "etcd::EtcdStore::watch");
        let (replay, start) = self.start(kind, &opts)?;
        let (tx, rx) = spsc::Builder::new(opts.buffer)
            .overflow(opts.overflow)
            .build::<(u64, Msg<T>)>();
        let offered = Arc::new(AtomicU64::new(0));
        let target = Target::Own {
            tx,
            offered: offered.clone(),
        };
        let (feed, cancel_tx) = self.spawn_feeder("watch", kind, &opts, target, start)?;
        Ok(Watch::new(
            Arc::new(feed),
            0,
            kind,
            opts,
            rx,
            cancel_tx,
            offered,
            // A compaction can lose the newest events (`deliver`).
            true,
            Local::new(replay.into()),
        ))
    }

    /// Watches `kind`, sending its events into `tx`, as the embedded
    /// store's [`watch_into`](super::Store::watch_into) does: the
    /// channel's own capacity and policy apply, a replay is sent before
    /// this returns, and the handle cancels the watch (also when dropped;
    /// once `cancel` returns, nothing more is sent). A plain `Event`
    /// channel cannot carry `Invalid` or a compaction's loss: those are
    /// reported on stderr and skipped (use [`watch`](Self::watch) to have
    /// them in band).
    ///
    /// # Panics
    ///
    /// If `kind` is empty or contains `/`, or `opts` sets `buffer`,
    /// `overflow` or `resync_on_lag` (they belong to a [`Watch`]'s own
    /// channel).
    pub fn watch_into(
        &self,
        kind: &str,
        opts: WatchOptions,
        tx: mpsc::Sender<Event<T>>,
    ) -> Result<WatchHandle<T>, StoreError> {
        check_etcd_kind(kind, "etcd::EtcdStore::watch_into");
        assert!(
            !opts.channel_set && !opts.resync,
            "EtcdStore::watch_into: the target channel's own capacity and overflow policy \
             apply, and a plain Event channel cannot carry Lagged; do not set buffer, overflow \
             or resync_on_lag (use EtcdStore::watch for those)"
        );
        let (replay, start) = self.start(kind, &opts)?;
        for item in replay {
            match item.into_result() {
                Ok(ev) => {
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
                Err(e) => eprintln!(
                    "rillet::watch::etcd: watch_into skips an entry: {e} (a plain Event \
                     channel cannot carry the error)"
                ),
            }
        }
        let (feed, cancel_tx) =
            self.spawn_feeder("watch_into", kind, &opts, Target::Into(tx), start)?;
        Ok(WatchHandle::new(Arc::new(feed), 0, cancel_tx))
    }

    /// A watch's replay (if asked for) and the revision its stream starts
    /// from.
    fn start(&self, kind: &str, opts: &WatchOptions) -> Result<(Vec<Msg<T>>, i64), StoreError> {
        if opts.replay {
            let (msgs, revision) = snapshot::<T>(self.inner(), kind, opts)?;
            Ok((msgs, revision + 1))
        } else {
            Ok((Vec::new(), self.revision()? as i64 + 1))
        }
    }

    /// Starts the thread that feeds `target` from revision `start`.
    fn spawn_feeder(
        &self,
        op: &'static str,
        kind: &str,
        opts: &WatchOptions,
        target: Target<T>,
        start: i64,
    ) -> Result<(EtcdFeed<T>, mpsc::Sender<()>), StoreError> {
        let inner = self.inner().clone();
        let (cancel_tx, cancel_rx) = mpsc::channel::<()>(1);
        let (poke_tx, poke_rx) = mpsc::channel::<()>(1);
        let (ctl_tx, ctl_rx) = tmpsc::unbounded_channel();
        let feeder = Feeder {
            inner: inner.clone(),
            kind: kind.to_owned(),
            kind_prefix: inner.kind_prefix(kind),
            opts: opts.clone(),
            target,
            cancel: cancel_rx,
            poke: poke_rx,
            ctl: ctl_rx,
            stop: inner.stop.subscribe(),
            next: start,
        };
        let thread = std::thread::Builder::new()
            .name(format!("rillet-etcd-watch-{kind}"))
            .spawn(move || feeder.run())
            .map_err(|e| {
                inner.unavailable(op, kind, format_args!("cannot start its thread: {e}"))
            })?;
        let feed = EtcdFeed {
            inner,
            ctl: ctl_tx,
            poke: poke_tx,
            thread: std::sync::Mutex::new(Some(thread)),
            _values: PhantomData,
        };
        Ok((feed, cancel_tx))
    }
}

/// The kind's entries as replay items (`Create` events, sorted by name, or
/// `Invalid` for a value that does not decode), and the revision read.
fn snapshot<T: DeserializeOwned>(
    inner: &Inner,
    kind: &str,
    opts: &WatchOptions,
) -> Result<(Vec<Msg<T>>, i64), StoreError> {
    let (kvs, revision) = inner.range_all("watch", kind)?;
    if !opts.wants(EventType::Create) {
        return Ok((Vec::new(), revision));
    }
    let prefix_len = inner.kind_prefix(kind).len();
    let msgs = kvs
        .iter()
        .map(|kv| {
            item(
                kind,
                kv.key(),
                prefix_len,
                EventType::Create,
                Some(kv.value()),
                kv.mod_revision(),
            )
        })
        .collect();
    Ok((msgs, revision))
}

/// One replay or live item: the event, or `Invalid` if the value does not
/// decode (or, for a delete, etcd did not give the previous value).
fn item<T: DeserializeOwned>(
    kind: &str,
    key: &[u8],
    prefix_len: usize,
    event_type: EventType,
    value: Option<&[u8]>,
    revision: i64,
) -> Msg<T> {
    let invalid = |error: String| {
        Msg::Error(Box::new(WatchError::Invalid {
            key: String::from_utf8_lossy(key).into_owned(),
            revision: revision as u64,
            error,
        }))
    };
    let Some(bytes) = value else {
        return invalid("etcd sent the delete without the previous value".into());
    };
    match decode::<T>(key, bytes) {
        Ok(v) => {
            let name = String::from_utf8_lossy(&key[prefix_len..]);
            Msg::Event(Event::new(
                kind,
                &name,
                event_type,
                Arc::new(v),
                revision as u64,
            ))
        }
        Err(StoreError::Decode { reason, .. }) => invalid(reason),
        Err(e) => invalid(e.to_string()),
    }
}

/// A request from the watch to its feeder.
enum Ctl {
    /// Stop offering and acknowledge (a resync is about to read the kind).
    Pause(std::sync::mpsc::SyncSender<()>),
    /// Go on from this revision (after the resync's read).
    Resume(i64),
    /// The watch was cancelled.
    Stop,
}

/// The watch's side of its feeder.
struct EtcdFeed<T> {
    inner: Arc<Inner>,
    ctl: tmpsc::UnboundedSender<Ctl>,
    /// Wakes a feeder that waits for room in the channel (`Block`), so
    /// that it sees a `Pause`.
    poke: mpsc::Sender<()>,
    /// The feeder, joined by `remove`.
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    _values: PhantomData<fn(T) -> T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Feed<T> for EtcdFeed<T> {
    /// Stops the feeder and waits for it (it wakes at once: it waits for
    /// the stream or a control request, or for room in a channel while
    /// selecting on the cancel, which the caller closed first), so that
    /// nothing is sent after a cancel returns.
    fn remove(&self, _id: u64) {
        let _ = self.ctl.send(Ctl::Stop);
        self.poke.close();
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    fn resync(
        &self,
        kind: &str,
        opts: &WatchOptions,
        offered: &AtomicU64,
        install: &mut dyn FnMut(Vec<Msg<T>>, u64),
    ) {
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        let paused = self.ctl.send(Ctl::Pause(ack_tx)).is_ok() && {
            let _ = self.poke.try_send(());
            ack_rx.recv().is_ok()
        };
        // Paused (or the feeder is gone): nothing is offered now. Read the
        // kind until it works, or until the store is dropped and a read
        // fails (then the watch ends without a replay).
        let mut delay = RETRY_FIRST;
        let (replay, revision) = loop {
            match snapshot::<T>(&self.inner, kind, opts) {
                Ok(found) => break found,
                Err(_) if *self.inner.stop.borrow() => break (Vec::new(), 0),
                Err(_) => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        };
        install(replay, offered.load(Ordering::Acquire));
        if paused {
            let _ = self.ctl.send(Ctl::Resume(revision + 1));
        }
    }
}

/// What the feeder's wait found.
enum Step {
    Response(ec::WatchResponse),
    Ctl(Option<Ctl>),
    Broken,
    Stop,
}

/// How an offer went.
enum Offer {
    Done,
    /// The watch is gone (cancelled, or its receiver dropped).
    Gone,
    /// Woken while waiting for room: look at the control requests.
    Poked,
}

/// Where a feeder's events go.
enum Target<T> {
    /// A [`Watch`]'s own channel, numbered as the embedded store numbers
    /// them (`offered`: see `deliver`).
    Own {
        tx: spsc::Sender<(u64, Msg<T>)>,
        offered: Arc<AtomicU64>,
    },
    /// A caller's channel (`watch_into`).
    Into(mpsc::Sender<Event<T>>),
}

/// The thread that follows one etcd watch stream and offers its events.
struct Feeder<T> {
    inner: Arc<Inner>,
    kind: String,
    kind_prefix: String,
    opts: WatchOptions,
    target: Target<T>,
    cancel: mpsc::Receiver<()>,
    poke: mpsc::Receiver<()>,
    ctl: tmpsc::UnboundedReceiver<Ctl>,
    stop: twatch::Receiver<bool>,
    /// The revision the next stream starts from: the one after the last
    /// event offered.
    next: i64,
}

impl<T: DeserializeOwned> Feeder<T> {
    fn run(mut self) {
        let mut stream: Option<ec::WatchStream> = None;
        let mut retry = None;
        loop {
            let rt = self.inner.clone();
            let step = rt.rt().block_on(self.wait(&mut stream, &mut retry));
            match step {
                Step::Stop | Step::Ctl(None | Some(Ctl::Stop)) => return,
                Step::Ctl(Some(Ctl::Resume(_))) => {}
                Step::Ctl(Some(Ctl::Pause(ack))) => {
                    stream = None;
                    if !self.paused(ack) {
                        return;
                    }
                }
                Step::Broken => {
                    stream = None;
                    retry = Some(retry.map_or(RETRY_FIRST, |d: Duration| (d * 2).min(RETRY_MAX)));
                }
                Step::Response(resp) => {
                    retry = None;
                    if resp.compact_revision() > 0 {
                        // Our start revision was compacted away.
                        let lost = (resp.compact_revision() - self.next).max(1) as u64;
                        match &self.target {
                            Target::Own { offered, .. } => {
                                let seq = offered.load(Ordering::Relaxed);
                                offered.store(seq + lost, Ordering::Release);
                            }
                            Target::Into(_) => eprintln!(
                                "rillet::watch::etcd: watch_into of {}: etcd compacted {lost} \
                                 revisions before it could read them; a plain Event channel \
                                 cannot report the loss in band",
                                self.kind_prefix
                            ),
                        }
                        self.next = resp.compact_revision();
                        stream = None;
                        continue;
                    }
                    if resp.canceled() {
                        stream = None;
                        retry = Some(RETRY_FIRST);
                        continue;
                    }
                    for ev in resp.events() {
                        match self.deliver(ev) {
                            Offer::Done => {}
                            Offer::Gone => return,
                            Offer::Poked => {
                                // A pause for a resync: the rest of this
                                // response is older than the read to come.
                                stream = None;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Waits for the next response, a control request or the store's end;
    /// (re)opens the stream first if it has none.
    async fn wait(
        &mut self,
        stream: &mut Option<ec::WatchStream>,
        retry: &mut Option<Duration>,
    ) -> Step {
        if stream.is_none() {
            if let Some(delay) = retry.take() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    c = self.ctl.recv() => return Step::Ctl(c),
                    _ = self.stop.wait_for(|s| *s) => return Step::Stop,
                }
                *retry = Some(delay);
            }
            let mut client = self.inner.client.clone();
            let opts = ec::WatchOptions::new()
                .with_prefix()
                .with_prev_key()
                .with_start_revision(self.next);
            let open = tokio::time::timeout(
                REQUEST_TIMEOUT,
                client.watch(self.kind_prefix.clone(), Some(opts)),
            );
            tokio::select! {
                r = open => match r {
                    Ok(Ok(s)) => *stream = Some(s),
                    _ => return Step::Broken,
                },
                c = self.ctl.recv() => return Step::Ctl(c),
                _ = self.stop.wait_for(|s| *s) => return Step::Stop,
            }
        }
        let s = stream.as_mut().expect("opened above");
        tokio::select! {
            m = s.message() => match m {
                Ok(Some(resp)) => Step::Response(resp),
                _ => Step::Broken,
            },
            c = self.ctl.recv() => Step::Ctl(c),
            _ = self.stop.wait_for(|s| *s) => Step::Stop,
        }
    }

    /// Paused for a resync: acknowledges, then waits for `Resume`. `false`
    /// if the watch or the store ended meanwhile.
    fn paused(&mut self, ack: std::sync::mpsc::SyncSender<()>) -> bool {
        while self.poke.try_recv().is_ok() {}
        let _ = ack.send(());
        loop {
            let inner = self.inner.clone();
            let got = inner.rt().block_on(async {
                tokio::select! {
                    c = self.ctl.recv() => c,
                    _ = self.stop.wait_for(|s| *s) => None,
                }
            });
            match got {
                Some(Ctl::Resume(revision)) => {
                    self.next = revision;
                    return true;
                }
                Some(Ctl::Pause(ack)) => {
                    let _ = ack.send(());
                }
                Some(Ctl::Stop) | None => return false,
            }
        }
    }

    /// Offers one etcd event (if the watch's filter takes it).
    fn deliver(&mut self, ev: &ec::Event) -> Offer {
        let Some(kv) = ev.kv() else {
            return Offer::Done;
        };
        let revision = kv.mod_revision();
        let (event_type, value) = match ev.event_type() {
            ec::EventType::Put if kv.create_revision() == kv.mod_revision() => {
                (EventType::Create, Some(kv.value()))
            }
            ec::EventType::Put => (EventType::Update, Some(kv.value())),
            ec::EventType::Delete => (EventType::Delete, ev.prev_kv().map(|p| p.value())),
        };
        if !self.opts.wants(event_type) {
            self.next = revision + 1;
            return Offer::Done;
        }
        let mut msg = item(
            &self.kind,
            kv.key(),
            self.kind_prefix.len(),
            event_type,
            value,
            revision,
        );
        match &self.target {
            Target::Own { tx, offered } => loop {
                let seq = offered.load(Ordering::Relaxed);
                match self.offer(tx, (seq, msg)) {
                    Ok(true) => {
                        // Release: as in the embedded store, a watch that
                        // reads `offered` and then finds its channel empty
                        // knows the rest were dropped.
                        offered.store(seq + 1, Ordering::Release);
                        self.next = revision + 1;
                        return Offer::Done;
                    }
                    Ok(false) => return Offer::Gone,
                    Err((_, back)) => {
                        if !self.ctl.is_empty() {
                            return Offer::Poked;
                        }
                        // A stale poke: offer again.
                        msg = back;
                    }
                }
            },
            Target::Into(tx) => {
                self.next = revision + 1;
                let ev = match msg.into_result() {
                    Ok(ev) => ev,
                    Err(e) => {
                        eprintln!(
                            "rillet::watch::etcd: watch_into skips an entry: {e} (a plain \
                             Event channel cannot carry the error)"
                        );
                        return Offer::Done;
                    }
                };
                // No resync (refused for watch_into), so no pause: a poke
                // only comes with the cancel.
                match self.offer(tx, ev) {
                    Ok(true) => Offer::Done,
                    Ok(false) | Err(_) => Offer::Gone,
                }
            }
        }
    }

    /// Sends as the channel's policy says: `Ok(false)` if the watch is
    /// gone, `Err(msg)` if poked while waiting for room.
    fn offer<M, S>(&self, tx: &S, msg: M) -> Result<bool, M>
    where
        S: TrySend<M> + SelectSend<Msg = M>,
    {
        match tx.try_send(msg) {
            Ok(()) => Ok(true),
            Err(crate::TrySendError::Closed(_)) => Ok(false),
            Err(crate::TrySendError::Full(item)) => crate::select! {
                send(tx, item) -> r => Ok(r.is_ok()),
                recv(self.cancel) -> _ => Ok(false),
                recv(self.poke) -> p => match p {
                    // The send case did not win: its value was not taken.
                    Ok(()) => Err(item),
                    Err(_) => Ok(false),
                },
            },
        }
    }
}

impl<T> Clone for EtcdStore<T> {
    fn clone(&self) -> Self {
        EtcdStore {
            handle: self.handle.clone(),
            _values: PhantomData,
        }
    }
}

impl<T> fmt::Debug for EtcdStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.handle.inner.endpoints)
            .field("prefix", &self.handle.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> WatchStore<T> for EtcdStore<T> {
    type Error = StoreError;

    fn set(&self, kind: &str, name: &str, value: T) -> Result<Option<EventType>, StoreError> {
        EtcdStore::set(self, kind, name, value)
    }
    fn get(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, StoreError> {
        EtcdStore::get(self, kind, name)
    }
    fn delete(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, StoreError> {
        EtcdStore::delete(self, kind, name)
    }
    fn list(&self, kind: &str) -> Result<Vec<(String, Arc<T>)>, StoreError> {
        EtcdStore::list(self, kind)
    }
    fn revision(&self) -> Result<u64, StoreError> {
        EtcdStore::revision(self)
    }
    fn watch(&self, kind: &str, opts: WatchOptions) -> Result<Watch<T>, StoreError> {
        EtcdStore::watch(self, kind, opts)
    }
}
