//! Lock-free, thread-blocking channels.
//!
//! rillet builds SPSC, MPSC and broadcast channels by hand on atomics and
//! ring buffers. Sending and receiving never take a lock; a thread that must
//! wait spins briefly, yields, then parks, and is woken exactly when it can
//! make progress.
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
//! # Kinds of channel
//!
//! - [`spsc`]: one sender, one receiver; the fastest. Both handles are
//!   `Send` but not `Sync`: one thread at a time on each side.
//! - [`mpsc`]: many senders (`Sender` is `Clone + Send + Sync`), one
//!   receiver. `mpsc::channel(0)` is a rendezvous channel, Go's unbuffered
//!   channel: a send completes only when the receiver takes the message.
//!
//! ```
//! use rillet::mpsc;
//!
//! let (tx, rx) = mpsc::channel(0); // rendezvous
//! let h = std::thread::spawn(move || tx.send(42).unwrap()); // returns once received
//! assert_eq!(rx.recv(), Ok(42));
//! h.join().unwrap();
//! ```
//!
//! - [`broadcast`]: many senders, many subscribers; every subscriber
//!   receives every message sent after it subscribed (`T: Clone`; the
//!   handles are `Send` when `T: Send + Sync`). `Sender::subscribe()` adds a
//!   subscriber; a cloned `Receiver` starts where its original is. Under
//!   `Overflow::Block` senders wait for the slowest subscriber; under
//!   `Overflow::DropOldest` they never wait, and a subscriber that fell
//!   behind is told how many messages it missed.
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
//! # Capacity and overflow
//!
//! Every channel is bounded and its capacity is exact. What a full channel
//! does with a new message is its [`Overflow`] policy:
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
//! # Closing
//!
//! Either side can close the channel with `close()`; exactly one call ever
//! returns `true`, and closing twice never panics. Receivers drain what is
//! buffered, then get an error forever. Dropping either side closes too.
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
//! `close_with(msg)` sends a final message and closes in one step: on an
//! N:1 channel, no other sender's message can land after it.
//!
//! ```
//! let (tx, rx) = rillet::mpsc::channel(4);
//! let worker = tx.clone();
//! worker.send("work").unwrap();
//! drop(worker);
//! tx.close_with("done").unwrap();
//! assert_eq!(rx.iter().collect::<Vec<_>>(), ["work", "done"]);
//! ```
//!
//! # Blocking, timeouts and batches
//!
//! `send`/`recv` wait; `try_send`/`try_recv` never do; `*_timeout` and
//! `*_deadline` wait up to a limit (`Duration::MAX` waits forever).
//! `send_many`/`recv_many` move a batch with one index update.
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
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod chan;
mod close;
mod counter;
mod error;
mod overflow;
mod park;
mod ring;
mod sync;

pub mod broadcast;
pub mod mpsc;
pub mod spsc;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use overflow::Overflow;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
