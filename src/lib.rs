//! Lock-free, thread-blocking channels.
//!
//! rillet builds SPSC, MPSC and broadcast channels by hand on atomics and
//! ring buffers. Sending and receiving never take a lock; a thread that must
//! wait spins briefly, yields, then parks, and is woken exactly when it can
//! make progress. Every channel is bounded and its capacity is exact;
//! closing is explicit and once-only; senders that must never block choose
//! an overflow policy under which every loss is counted.
//!
//! # Hello, world
//!
//! ```
//! use rillet::spsc;
//!
//! let (tx, rx) = spsc::channel(16);
//! std::thread::spawn(move || tx.send("hello").unwrap());
//! assert_eq!(rx.recv(), Ok("hello"));
//! ```
//!
//! # Choosing a kind
//!
//! | kind | senders | receivers | use it for |
//! | --- | --- | --- | --- |
//! | [`spsc`] | one | one | a pipeline stage feeding the next; the fastest |
//! | [`mpsc`] | many (`Clone`) | one | work from many threads into one; `mpsc::channel(0)` is a rendezvous |
//! | [`broadcast`] | many (`Clone`) | many: each gets every message | events, cache invalidation, fan-out |
//!
//! All three have the same methods (`send`, `try_send`, `send_timeout`,
//! `send_deadline`, `send_many`, `close`, `close_with`; `recv`, `try_recv`,
//! `recv_timeout`, `recv_deadline`, `recv_many`, `iter`, `try_iter`; `len`,
//! `is_empty`, `is_full`, `capacity`, `is_closed`, `dropped`, `overflow`)
//! and the same error types, re-exported here. Broadcast receives have their
//! own errors ([`broadcast::RecvError`] ...), with a `Lagged(n)` variant.
//!
//! # Waiting on several channels: `select!`
//!
//! [`select!`] (crossbeam-channel's syntax) waits for the first of several
//! operations on any mix of kinds, with `default` or a timeout; among
//! ready cases it picks one at random, [`select_biased!`] the first.
//! [`Select`] does the same for a set of cases built at run time, and
//! [`select::after`], [`select::tick`] and [`select::never`] are timer
//! channels for it. A closed channel is ready, so closing one wakes every
//! select on it. See the [`select`](mod@select) module for the decisions.
//!
//! ```
//! use rillet::{broadcast, mpsc, select, select::after};
//! use std::time::Duration;
//!
//! let (jobs_tx, jobs) = mpsc::channel::<u32>(8);
//! let (stop_tx, stop) = broadcast::channel::<()>(1);
//! jobs_tx.send(1).unwrap();
//! let timeout = after(Duration::from_secs(5));
//! let mut done = Vec::new();
//! loop {
//!     select! {
//!         recv(jobs) -> job => { done.push(job.unwrap()); stop_tx.send(()).unwrap(); }
//!         recv(stop) -> _ => break,
//!         recv(timeout) -> _ => panic!("took too long"),
//!     }
//! }
//! assert_eq!(done, [1]);
//! ```
//!
//! # Sharing handles across threads
//!
//! Every method takes `&self`, as in std. The roles are in the types: a
//! handle that only one thread may use at a time is `Send` but not `Sync`
//! (both SPSC handles and every `Receiver`); `mpsc::Sender` and
//! `broadcast::Sender` are `Send + Sync` and `Clone`. Move a handle into the
//! thread that uses it, or clone a sender for each thread.
//!
//! ```
//! use rillet::mpsc;
//!
//! let (tx, rx) = mpsc::channel(64);
//! let workers: Vec<_> = (0..4)
//!     .map(|id| {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || tx.send(id * 10).unwrap())
//!     })
//!     .collect();
//! drop(tx); // the channel closes when the last sender is gone
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 10, 20, 30]);
//! for w in workers {
//!     w.join().unwrap();
//! }
//! ```
//!
//! A broadcast subscriber is added with [`broadcast::Sender::subscribe`]
//! (it sees what is sent after the call) or by cloning a
//! [`broadcast::Receiver`] (the clone starts where the original is).
//! Broadcast messages are cloned for each subscriber, so `T: Clone`, and
//! the handles are `Send` only when `T: Send + Sync`.
//!
//! ```
//! use rillet::{broadcast, Overflow};
//!
//! let (tx, rx) = broadcast::Builder::new(2).overflow(Overflow::DropOldest).build();
//! let early = tx.subscribe();
//! tx.send(1).unwrap();
//! assert_eq!(early.recv(), Ok(1));
//! tx.send(2).unwrap();
//! tx.send(3).unwrap();
//! assert_eq!(rx.recv(), Err(broadcast::RecvError::Lagged(1))); // 1 was evicted
//! assert_eq!(rx.recv(), Ok(2));
//! assert_eq!(early.try_iter().collect::<Vec<_>>(), [2, 3]);
//! ```
//!
//! # Iteration
//!
//! `rx.iter()` (or `for msg in &rx`) blocks for each message and ends when
//! the channel is closed and drained; `rx.try_iter()` yields what is there
//! now; `for msg in rx` consumes the receiver.
//!
//! ```
//! let (tx, rx) = rillet::spsc::channel(4);
//! std::thread::spawn(move || {
//!     for word in ["a", "b", "c"] {
//!         tx.send(word).unwrap();
//!     }
//! }); // tx dropped: closed
//! let words: Vec<&str> = rx.iter().collect();
//! assert_eq!(words, ["a", "b", "c"]);
//! ```
//!
//! # Closing, and the "done" message
//!
//! Either side can close the channel with `close()`; exactly one call ever
//! returns `true` (the one that closed it), and closing twice never panics.
//! Receivers drain what is buffered, then get an error forever; every send
//! fails from the close on, handing its message back. Dropping the last
//! sender, or the receiver (the last subscriber), closes too. Threads
//! blocked in a send or receive wake at once.
//!
//! ```
//! use rillet::{spsc, RecvError, SendError};
//!
//! let (tx, rx) = spsc::channel(4);
//! tx.send(1).unwrap();
//! assert!(rx.close());
//! assert!(!tx.close());
//! assert_eq!(tx.send(2), Err(SendError(2)));
//! assert_eq!(rx.recv(), Ok(1));
//! assert_eq!(rx.recv(), Err(RecvError));
//! ```
//!
//! `close_with(msg)` sends a final message and closes in one step: no
//! other message can land after it, so a receiver that drains the channel
//! sees it last, even on an N:1 channel. It always goes in: it waits for
//! room under `Block` and evicts the oldest message on a full dropping
//! channel.
//!
//! ```
//! let (tx, rx) = rillet::mpsc::channel(4);
//! let worker = tx.clone();
//! worker.send("work").unwrap();
//! tx.close_with("done").unwrap();
//! assert!(worker.send("late").is_err());
//! assert_eq!(rx.iter().collect::<Vec<_>>(), ["work", "done"]);
//! ```
//!
//! Messages still buffered when the receiver is dropped (the last
//! subscriber, for broadcast) are dropped with it, at once, as in std;
//! otherwise with the last handle. Each message is dropped exactly once.
//!
//! # Capacity and overflow
//!
//! The capacity is exact: `capacity()` is what was asked for, and never
//! more messages are buffered. What a full channel does with a new message
//! is its [`Overflow`] policy: `Block` (the default) waits, `DropNewest`
//! discards the new message, `DropOldest` evicts the oldest one; both
//! dropping policies count every loss in `dropped()`.
//!
//! ```
//! use rillet::{spsc, Overflow};
//!
//! let (tx, rx) = spsc::Builder::new(2).overflow(Overflow::DropNewest).build();
//! for i in 0..4 {
//!     tx.send(i).unwrap(); // never waits
//! }
//! assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1]);
//! assert_eq!(rx.dropped(), 2); // every loss is counted
//! ```
//!
//! `spsc` and `broadcast` need a capacity of at least 1; `mpsc::channel(0)`
//! is a rendezvous channel (a send completes when the receiver takes the
//! message). Broadcast supports `Block` and `DropOldest`. Bad
//! configurations panic at construction with a message that says why.
//!
//! # Blocking, timeouts and batches
//!
//! `send`/`recv` wait; `try_send`/`try_recv` never do; `*_timeout` and
//! `*_deadline` wait up to a limit (`Duration::MAX` waits forever). The
//! operation is tried before the time is checked, so a zero timeout still
//! takes a queued message, and a closed, drained channel reports that
//! rather than a timeout. `send_many`/`recv_many` move a batch with one
//! index update.
//!
//! ```
//! use std::time::Duration;
//! use rillet::RecvTimeoutError;
//!
//! let (tx, rx) = rillet::spsc::channel::<u32>(8);
//! assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
//! tx.send_many([1, 2, 3]).unwrap();
//! let mut batch = Vec::new();
//! assert_eq!(rx.recv_many(&mut batch, 8), Ok(3));
//! assert_eq!(batch, [1, 2, 3]);
//! ```
//!
//! # A watch store on top
//!
//! [`watch::Store`] is a typed key/value store, grouped by kind, whose
//! watchers receive every create, update and delete as an
//! [`Event`](watch::Event) (shared by every watcher, never cloned per
//! watcher) through this crate's channels: each watcher has its own buffer
//! and overflow policy, losses arrive in band as
//! [`WatchError::Lagged`](watch::WatchError), and a [`Watch`](watch::Watch)
//! is a receiver in [`select!`].
//!
//! ```
//! use rillet::watch::{EventType, Store, WatchOptions};
//!
//! let store: Store<u32> = Store::new();
//! store.set("users", "alice", 1);
//! let w = store.watch("users", WatchOptions::new().initial_replay());
//! store.set("users", "alice", 1); // equal: no event
//! store.set("users", "alice", 2);
//! let seen: Vec<_> = w.try_iter().map(|ev| (ev.event_type, *ev.object)).collect();
//! assert_eq!(seen, [(EventType::Create, 1), (EventType::Update, 2)]);
//! ```
//!
//! # Guarantees worth knowing
//!
//! - Nothing is lost silently: a failed send hands its message back, a
//!   policy that discards counts it, a lagging broadcast subscriber is told
//!   how many it missed.
//! - `try_recv` never waits for a sender that has claimed a slot but not
//!   finished writing it: it reports `Empty`.
//! - A message's `Drop` or `Clone`, or an iterator given to `send_many`,
//!   may panic or call into the same channel: the channel stays consistent
//!   (each kind's module docs say exactly what such a call sees).
//!   `send_many` is a loop of `send` in every kind: a message the iterator
//!   sends while producing item `i` lands between items `i - 1` and `i`;
//!   a close it makes keeps the items it yielded before; a receive,
//!   `len()` or select it makes on the same channel finds the items it
//!   yielded before (the batch or run not yet enqueued is sent first); if
//!   it panics, what it yielded has been sent; and an iterator that may
//!   wait for its next item (one whose `size_hint` promises none, as a
//!   channel's `iter()`) is asked for it only once what it gave is sent,
//!   so `tx.send_many(upstream.iter())` forwards each message at once.
//! - Nothing spins forever: on an oversubscribed or single CPU, waiting
//!   threads yield, then park.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

// First: its macros are used by the modules below.
#[macro_use]
mod sync;
#[macro_use]
mod chan;
mod close;
mod counter;
mod error;
mod handoff;
#[cfg(loom)]
#[doc(hidden)]
pub use counter::{loom_kept, loom_last_by_load};
#[cfg(loom)]
#[doc(hidden)]
pub use handoff::loom_accept;
mod overflow;
mod pad;
mod park;
mod ring;

pub mod broadcast;
pub mod mpsc;
pub mod select;
pub mod spsc;
pub mod watch;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use overflow::Overflow;
pub use select::{Select, SelectedOperation};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
