//! Fuzz target for `send_many` with re-entrant iterators and panicking
//! drops, on every channel kind (spsc, mpsc, broadcast) and every overflow
//! policy each supports, on one thread.
//!
//! The input picks a kind, a policy, a capacity (1..=8) and a list of
//! operations: `send`/`try_send`, `recv`/`try_recv`/`recv_many`, closes,
//! `close_with`, cloning and dropping handles, and `send_many` of a list of
//! items, where each item carries actions that the iterator performs *while
//! producing that item*: send another message on the same channel (through
//! the same handle or another sender), close the channel (through a sender
//! or a receiver), receive (`try_recv`), read every handle's `len()`,
//! `dropped()` and `is_closed()`, or panic. The iterator's `size_hint` promises a
//! fuzzer-chosen number of its remaining items (from none to all), so the
//! kinds take several items before they enqueue them (an SPSC run, an MPSC
//! or broadcast batch) and a re-entrant call finds them pending. Some
//! messages panic in `Drop` when the channel drops them (evicted,
//! discarded, released); every operation runs inside `catch_unwind`, and
//! the panic hook stays silent only for these two intentional panics (any
//! other panic aborts, as libfuzzer-sys wants).
//!
//! Every kind is checked, after every operation, against the same exact
//! model of loop-of-`send` semantics: a `VecDeque` per receiver (per
//! broadcast subscriber) of the messages it has still to receive, in
//! order. `send_many` is modelled as a loop of `send` over the iterator:
//! - a message the iterator sends on the channel while producing item `k`
//!   lands after item `k - 1` and before item `k`;
//! - a close it makes (through a sender or a receiver) keeps the items
//!   yielded before it; the item being produced comes back in
//!   `Err(SendError(vec![item]))`, and the iterator is not asked for
//!   another item (also on a channel closed before the call: one item is
//!   taken and comes back);
//! - a receive or `len()` it makes finds the items yielded before it;
//! - if it panics, the items it yielded before have been sent;
//! - a message the policy drops (evicted under DropOldest, discarded under
//!   DropNewest) is dropped before the iterator is asked for the next item
//!   (checked on every entry into the iterator and after each of its
//!   actions).
//!
//! Checked exactly: the order of every received message on every
//! receiver; the result of every call (`send`/`try_send`, the iterator's
//! own sends and closes, `send_many`'s `Ok` count and the contents of its
//! `Err`, receives, `Lagged(n)`, `close`, `close_with`); which messages the
//! channel drops, in every operation; `len()` of every handle (a broadcast
//! sender: the messages some subscriber still holds), `dropped()` and
//! `is_closed()`; a message handed back in an error is the one sent; no
//! message is dropped twice (checked in `Drop`); an operation panics
//! exactly when a message's `Drop` panicked or the iterator panicked; and
//! at the end, with every handle dropped, every message made (clones
//! included) has been dropped exactly once.
//!
//! Kind-specific: broadcast has no DropNewest (Block instead); it is full
//! when some subscriber holds `capacity` messages, a DropOldest eviction
//! takes the oldest held message from every subscriber that holds it (a
//! lag for each, reported as `Lagged(n)` by its next receive), and a
//! dropped subscriber releases the messages no other one holds. A
//! broadcast subscriber receives a clone while another subscriber still
//! holds the message, and the last one to pass it gets the original or
//! (as a concurrent pass may) a clone, the channel then dropping the
//! original inside that receive: a panicking drop comes out of that
//! receive, with the clone it made, and the model counts the message as
//! passed by that subscriber, not received. `close_with` always enqueues
//! its message, evicting the oldest on a full channel under the dropping
//! policies.
//!
//! A send under `Overflow::Block` on a full channel would wait forever on
//! one thread, so blocking sends (plain, re-entrant, and the items of a
//! `send_many`) are only issued when the model says they fit; a plan that
//! could wait is trimmed before the call (see `sanitize`). So the iterator
//! never meets the documented limits of the loop-of-`send` equivalence: a
//! close it makes finds room for every pending item. It drops no handle
//! (the top level does). (A broadcast subscriber's receive inside the iterator is skipped
//! when its next message panics in the channel's drop: the model keeps
//! that case to top-level receives.)
//!
//! Run: `cargo +nightly fuzz run reentrant -- -max_total_time=120`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::{broadcast, mpsc, spsc, Overflow, SendError, TryRecvError, TrySendError};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const MAX_OPS: usize = 96;
const MAX_ITEMS: usize = 12;
const MAX_ACTIONS: usize = 4;

// ---- input ----

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spsc,
    Mpsc,
    Broadcast,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    Block,
    DropNewest,
    DropOldest,
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    policy: Policy,
    capacity: u8,
    /// Drain every receiver before the handles are dropped at the end
    /// (otherwise buffered messages go with the receivers).
    drain: bool,
    ops: Vec<Op>,
}

/// Sender and receiver indices are taken modulo the number of live
/// handles; an op is skipped when no handle of its kind is alive.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Blocking `send`: a `try_send` when the model says it would wait.
    Send {
        tx: u8,
        bomb: bool,
    },
    TrySend {
        tx: u8,
        bomb: bool,
    },
    SendMany {
        tx: u8,
        /// The iterator's `size_hint` promises `min(hint, remaining)`
        /// items.
        hint: u8,
        items: Vec<Item>,
    },
    TryRecv(u8),
    /// Blocking `recv`, skipped when it would wait.
    Recv(u8),
    RecvMany(u8, u8),
    CloseTx(u8),
    CloseRx(u8),
    CloseWith {
        tx: u8,
        bomb: bool,
    },
    /// mpsc and broadcast only.
    CloneTx(u8),
    DropTx(u8),
    /// broadcast only.
    Subscribe(u8),
    /// broadcast only.
    CloneRx(u8),
    DropRx(u8),
}

/// One item of a `send_many`: `bomb` makes the message panic when the
/// channel drops it; `actions` run inside the iterator's `next` before it
/// returns the item.
#[derive(Arbitrary, Debug)]
struct Item {
    bomb: bool,
    actions: Vec<Action>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Action {
    /// Send a message through the `send_many` handle itself (`None`) or
    /// through sender `i` (the same one for spsc).
    Send {
        via: Option<u8>,
        bomb: bool,
        blocking: bool,
    },
    CloseTx(Option<u8>),
    CloseRx(u8),
    /// `try_recv` on receiver `i` (a broadcast subscriber skips it when its
    /// next message would panic in the channel's drop).
    TryRecv(u8),
    /// `len()`, `dropped()` and `is_closed()` of every handle.
    Look,
    Panic,
}

// ---- messages ----

/// The payload of every panic this target raises on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boom {
    Iter,
    Drop,
}

/// A message instance was dropped; the log is read back after each
/// operation (and, during a `send_many`, inside its iterator).
#[derive(Debug, Clone, Copy)]
struct Dropped {
    id: u32,
    inst: u32,
    /// Dropped by this target (received, handed back, never sent), not by
    /// the channel.
    ours: bool,
    panicked: bool,
}

thread_local! {
    static LOG: RefCell<Vec<Dropped>> = const { RefCell::new(Vec::new()) };
    /// One flag per instance made (originals and clones): dropped yet?
    static DROPPED: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

fn log(ev: Dropped) {
    LOG.with(|l| l.borrow_mut().push(ev));
}

fn log_mark() -> usize {
    LOG.with(|l| l.borrow().len())
}

fn log_since(mark: usize) -> Vec<Dropped> {
    LOG.with(|l| l.borrow()[mark..].to_vec())
}

fn new_inst() -> u32 {
    DROPPED.with(|d| {
        let mut d = d.borrow_mut();
        d.push(false);
        u32::try_from(d.len() - 1).unwrap()
    })
}

/// A message: unique `id` (shared by its clones), unique `inst` per
/// instance, and a shared drop counter.
#[derive(Debug)]
struct Msg {
    id: u32,
    inst: u32,
    bomb: bool,
    ours: bool,
    drops: Arc<AtomicUsize>,
}

impl Msg {
    fn new(id: u32, bomb: bool, drops: &Arc<AtomicUsize>) -> Self {
        Msg {
            id,
            inst: new_inst(),
            bomb,
            ours: false,
            drops: drops.clone(),
        }
    }
}

impl Clone for Msg {
    fn clone(&self) -> Self {
        Msg::new(self.id, self.bomb, &self.drops)
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        let again =
            DROPPED.with(|d| std::mem::replace(&mut d.borrow_mut()[self.inst as usize], true));
        assert!(
            !again,
            "message {} (instance {}) dropped twice",
            self.id, self.inst
        );
        self.drops.fetch_add(1, Ordering::Relaxed);
        let panics = self.bomb && !self.ours && !std::thread::panicking();
        log(Dropped {
            id: self.id,
            inst: self.inst,
            ours: self.ours,
            panicked: panics,
        });
        if panics {
            panic::panic_any(Boom::Drop);
        }
    }
}

/// Drops a message this target owns (it never panics).
fn ours(mut m: Msg) {
    m.ours = true;
}

/// Runs `f`; an intentional panic comes back as `Err` (any other panic has
/// already aborted in the hook).
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Boom> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| match p.downcast::<Boom>() {
        Ok(b) => *b,
        Err(p) => panic::resume_unwind(p),
    })
}

// ---- handles of any kind ----

enum AnyTx {
    S(spsc::Sender<Msg>),
    M(mpsc::Sender<Msg>),
    B(broadcast::Sender<Msg>),
}

enum AnyRx {
    S(spsc::Receiver<Msg>),
    M(mpsc::Receiver<Msg>),
    B(broadcast::Receiver<Msg>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exp {
    Ok,
    Full,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvFail {
    Empty,
    Closed,
    Lagged(u64),
}

fn from_try(r: Result<(), TrySendError<Msg>>) -> Result<(), (Exp, Msg)> {
    r.map_err(|e| match e {
        TrySendError::Full(m) => (Exp::Full, m),
        TrySendError::Closed(m) => (Exp::Closed, m),
    })
}

fn from_send(r: Result<(), SendError<Msg>>) -> Result<(), (Exp, Msg)> {
    r.map_err(|SendError(m)| (Exp::Closed, m))
}

fn from_bcast(e: broadcast::TryRecvError) -> RecvFail {
    match e {
        broadcast::TryRecvError::Empty => RecvFail::Empty,
        broadcast::TryRecvError::Closed => RecvFail::Closed,
        broadcast::TryRecvError::Lagged(n) => RecvFail::Lagged(n),
    }
}

fn from_bcast_recv(e: broadcast::RecvError) -> RecvFail {
    match e {
        broadcast::RecvError::Closed => RecvFail::Closed,
        broadcast::RecvError::Lagged(n) => RecvFail::Lagged(n),
    }
}

fn from_plain(e: TryRecvError) -> RecvFail {
    match e {
        TryRecvError::Empty => RecvFail::Empty,
        TryRecvError::Closed => RecvFail::Closed,
    }
}

impl AnyTx {
    fn send(&self, m: Msg) -> Result<(), (Exp, Msg)> {
        match self {
            AnyTx::S(t) => from_send(t.send(m)),
            AnyTx::M(t) => from_send(t.send(m)),
            AnyTx::B(t) => from_send(t.send(m)),
        }
    }

    fn try_send(&self, m: Msg) -> Result<(), (Exp, Msg)> {
        match self {
            AnyTx::S(t) => from_try(t.try_send(m)),
            AnyTx::M(t) => from_try(t.try_send(m)),
            AnyTx::B(t) => from_try(t.try_send(m)),
        }
    }

    fn send_many(&self, it: ReIter<'_>) -> Result<usize, Vec<Msg>> {
        let r = match self {
            AnyTx::S(t) => t.send_many(it),
            AnyTx::M(t) => t.send_many(it),
            AnyTx::B(t) => t.send_many(it),
        };
        r.map_err(|SendError(v)| v)
    }

    fn close(&self) -> bool {
        match self {
            AnyTx::S(t) => t.close(),
            AnyTx::M(t) => t.close(),
            AnyTx::B(t) => t.close(),
        }
    }

    fn close_with(self, m: Msg) -> Result<(), Msg> {
        let r = match self {
            AnyTx::S(t) => t.close_with(m),
            AnyTx::M(t) => t.close_with(m),
            AnyTx::B(t) => t.close_with(m),
        };
        r.map_err(|SendError(m)| m)
    }

    fn try_clone(&self) -> Option<AnyTx> {
        match self {
            AnyTx::S(_) => None,
            AnyTx::M(t) => Some(AnyTx::M(t.clone())),
            AnyTx::B(t) => Some(AnyTx::B(t.clone())),
        }
    }

    fn subscribe(&self) -> Option<AnyRx> {
        match self {
            AnyTx::B(t) => Some(AnyRx::B(t.subscribe())),
            _ => None,
        }
    }

    fn introspect(&self) -> (usize, u64, bool) {
        match self {
            AnyTx::S(t) => (t.len(), t.dropped(), t.is_closed()),
            AnyTx::M(t) => (t.len(), t.dropped(), t.is_closed()),
            AnyTx::B(t) => (t.len(), t.dropped(), t.is_closed()),
        }
    }
}

impl AnyRx {
    fn try_recv(&self) -> Result<Msg, RecvFail> {
        match self {
            AnyRx::S(r) => r.try_recv().map_err(from_plain),
            AnyRx::M(r) => r.try_recv().map_err(from_plain),
            AnyRx::B(r) => r.try_recv().map_err(from_bcast),
        }
    }

    fn recv(&self) -> Result<Msg, RecvFail> {
        match self {
            AnyRx::S(r) => r.recv().map_err(|_| RecvFail::Closed),
            AnyRx::M(r) => r.recv().map_err(|_| RecvFail::Closed),
            AnyRx::B(r) => r.recv().map_err(from_bcast_recv),
        }
    }

    fn recv_many(&self, buf: &mut Vec<Msg>, max: usize) -> Result<usize, RecvFail> {
        match self {
            AnyRx::S(r) => r.recv_many(buf, max).map_err(|_| RecvFail::Closed),
            AnyRx::M(r) => r.recv_many(buf, max).map_err(|_| RecvFail::Closed),
            AnyRx::B(r) => r.recv_many(buf, max).map_err(from_bcast_recv),
        }
    }

    fn close(&self) -> bool {
        match self {
            AnyRx::S(r) => r.close(),
            AnyRx::M(r) => r.close(),
            AnyRx::B(r) => r.close(),
        }
    }

    fn try_clone(&self) -> Option<AnyRx> {
        match self {
            AnyRx::B(r) => Some(AnyRx::B(r.clone())),
            _ => None,
        }
    }

    fn introspect(&self) -> (usize, u64, bool) {
        match self {
            AnyRx::S(r) => (r.len(), r.dropped(), r.is_closed()),
            AnyRx::M(r) => (r.len(), r.dropped(), r.is_closed()),
            AnyRx::B(r) => (r.len(), r.dropped(), r.is_closed()),
        }
    }
}

// ---- the model ----

/// One receiver: what it has still to receive, in order, and its pending
/// lag (broadcast DropOldest).
#[derive(Debug, Clone, Default)]
struct Sub {
    q: VecDeque<u32>,
    lag: u64,
}

/// The `send_many` in progress.
#[derive(Debug, Default)]
struct CallRec {
    /// The log's length when the call began.
    mark: usize,
    /// The items the iterator handed out, in order.
    yielded: Vec<u32>,
    iter_panicked: bool,
    /// The item that found the channel closed: it comes back in the error,
    /// and the iterator is asked for nothing more.
    back: Option<u32>,
}

struct Model {
    kind: Kind,
    policy: Overflow,
    cap: usize,
    closed: bool,
    subs: Vec<Sub>,
    dropped: u64,
    /// The original instance of every message, by id (`inst0[0]` unused).
    inst0: Vec<u32>,
    /// Whether each message panics when the channel drops it, by id.
    bombs: Vec<bool>,
    /// The originals the channel must drop in the current operation (so
    /// far, inside a `send_many`'s iterator).
    expect: Vec<u32>,
    call: Option<CallRec>,
    drops: Arc<AtomicUsize>,
}

impl Model {
    fn new_msg(&mut self, bomb: bool) -> Msg {
        let id = u32::try_from(self.inst0.len()).unwrap();
        let m = Msg::new(id, bomb, &self.drops);
        self.inst0.push(m.inst);
        self.bombs.push(bomb);
        m
    }

    /// Messages the channel holds: for a broadcast channel, those some
    /// subscriber has still to receive (each one's queue is a suffix of
    /// the longest).
    fn held(&self) -> usize {
        self.subs.iter().map(|s| s.q.len()).max().unwrap_or(0)
    }

    /// The union of what receivers still hold (a broadcast sender's
    /// `len()`).
    fn union_len(&self) -> usize {
        let mut all: Vec<u32> = self.subs.iter().flat_map(|s| s.q.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    fn would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.held() >= self.cap
    }

    /// Evicts the oldest message held (from every receiver that holds it:
    /// a lag for each broadcast subscriber), counted in `dropped()`.
    fn evict_oldest(&mut self) {
        let old = self
            .subs
            .iter()
            .max_by_key(|s| s.q.len())
            .and_then(|s| s.q.front().copied())
            .expect("evicting from an empty channel");
        for s in &mut self.subs {
            if s.q.front() == Some(&old) {
                s.q.pop_front();
                if self.kind == Kind::Broadcast {
                    s.lag += 1;
                }
            }
        }
        self.expect.push(old);
        self.dropped += 1;
    }

    fn enqueue(&mut self, id: u32) {
        for s in &mut self.subs {
            s.q.push_back(id);
        }
    }

    /// One `send` (or `try_send`) of `id`, applied to the model: its
    /// result.
    fn offer(&mut self, id: u32) -> Exp {
        if self.closed {
            return Exp::Closed;
        }
        if self.held() >= self.cap {
            match self.policy {
                Overflow::Block => return Exp::Full,
                Overflow::DropNewest => {
                    self.expect.push(id);
                    self.dropped += 1;
                    return Exp::Ok;
                }
                Overflow::DropOldest => self.evict_oldest(),
            }
        }
        self.enqueue(id);
        Exp::Ok
    }

    /// The messages the channel dropped since `mark` (original or clone),
    /// sorted.
    fn chan_drops(&self, mark: usize) -> Vec<(u32, bool)> {
        let mut got: Vec<(u32, bool)> = log_since(mark)
            .iter()
            .filter(|d| !d.ours)
            .map(|d| (d.id, d.inst != self.inst0[d.id as usize]))
            .collect();
        got.sort_unstable();
        got
    }

    /// Inside a `send_many`: the channel has dropped exactly what the loop
    /// of `send` had dropped by now.
    fn check_drops_so_far(&self, mark: usize, when: &str) {
        let mut want: Vec<(u32, bool)> = self.expect.iter().map(|&id| (id, false)).collect();
        want.sort_unstable();
        assert_eq!(
            self.chan_drops(mark),
            want,
            "the messages the channel dropped by {when} (message, clone?)"
        );
    }

    /// The end of an operation: the channel dropped exactly the originals
    /// `expect` holds and the instances in `extra` (message, clone?).
    fn settle(&mut self, mark: usize, extra: Vec<(u32, bool)>) {
        let mut want: Vec<(u32, bool)> = std::mem::take(&mut self.expect)
            .into_iter()
            .map(|id| (id, false))
            .chain(extra)
            .collect();
        want.sort_unstable();
        assert_eq!(
            self.chan_drops(mark),
            want,
            "the messages the channel dropped (message, clone?)"
        );
    }

    /// Receiver `i` got `m`, which must be the next it holds. Returns the
    /// original the channel must have dropped in the receive (a broadcast
    /// subscriber that got a clone of a message no other one holds).
    fn received(&mut self, i: usize, m: &Msg) -> Option<u32> {
        let id = m.id;
        let next = self.subs[i].q.pop_front();
        assert_eq!(
            next,
            Some(id),
            "receiver {i} got message {id}, the model's next is {next:?}"
        );
        let holder = self.subs.iter().position(|s| s.q.contains(&id));
        if m.inst == self.inst0[id as usize] {
            // The original moves out only to the last subscriber to pass it.
            assert_eq!(
                holder, None,
                "receiver {i} got the original of message {id} while another receiver still \
                 holds it"
            );
            None
        } else {
            assert_eq!(self.kind, Kind::Broadcast, "receiver {i} got a clone");
            holder.is_none().then_some(id)
        }
    }

    fn expect_recv(&self, i: usize) -> Result<(), RecvFail> {
        let s = &self.subs[i];
        if s.lag > 0 {
            Err(RecvFail::Lagged(s.lag))
        } else if !s.q.is_empty() {
            Ok(())
        } else if self.closed {
            Err(RecvFail::Closed)
        } else {
            Err(RecvFail::Empty)
        }
    }
}

/// An operation panicked exactly when a message's drop or the iterator
/// panicked.
fn check_panic(r: Option<Boom>, mark: usize, iter_panicked: bool) {
    let drop_panicked = log_since(mark).iter().any(|d| d.panicked);
    match r {
        None => assert!(
            !drop_panicked && !iter_panicked,
            "an intentional panic did not come out of the operation"
        ),
        Some(Boom::Drop) => assert!(drop_panicked && !iter_panicked),
        Some(Boom::Iter) => assert!(iter_panicked && !drop_panicked),
    }
}

// ---- the re-entrant iterator ----

#[derive(Debug, Clone, Copy)]
enum Act {
    /// `blocking: false` under Block where the model says the channel is
    /// full: a `try_send`, kept only because a close or panic follows in
    /// the same item.
    Send {
        tx: usize,
        bomb: bool,
        blocking: bool,
    },
    CloseTx(usize),
    CloseRx(usize),
    TryRecv(usize),
    Look,
    Panic,
}

struct PlanItem {
    msg: Msg,
    actions: Vec<Act>,
}

struct ReIter<'a> {
    model: &'a RefCell<Model>,
    txs: &'a [AnyTx],
    rxs: &'a [AnyRx],
    items: VecDeque<PlanItem>,
    /// `size_hint` promises `min(hint, items.len())`.
    hint: usize,
}

impl ReIter<'_> {
    fn act(&self, a: Act) {
        match a {
            Act::Send { tx, bomb, blocking } => {
                let (msg, exp) = {
                    let mut m = self.model.borrow_mut();
                    let msg = m.new_msg(bomb);
                    let exp = m.offer(msg.id);
                    assert!(
                        !(blocking && exp == Exp::Full),
                        "harness: a blocking re-entrant send on a full channel"
                    );
                    (msg, exp)
                };
                let id = msg.id;
                let r = if blocking {
                    self.txs[tx].send(msg)
                } else {
                    self.txs[tx].try_send(msg)
                };
                let got = match r {
                    Ok(()) => Exp::Ok,
                    Err((e, back)) => {
                        assert_eq!(back.id, id, "a failed send hands its own message back");
                        ours(back);
                        e
                    }
                };
                assert_eq!(got, exp, "re-entrant send of {id}");
            }
            Act::CloseTx(i) => {
                let want = self.begin_close();
                assert_eq!(
                    self.txs[i].close(),
                    want,
                    "re-entrant close through a sender"
                );
            }
            Act::CloseRx(i) => {
                let want = self.begin_close();
                assert_eq!(
                    self.rxs[i].close(),
                    want,
                    "re-entrant close through a receiver"
                );
            }
            Act::TryRecv(i) => {
                let exp = {
                    let m = self.model.borrow();
                    let next = m.subs[i].q.front().copied();
                    if m.kind == Kind::Broadcast && next.is_some_and(|id| m.bombs[id as usize]) {
                        // Its last pass may drop the original, panicking
                        // inside this receive: kept to the top level.
                        return;
                    }
                    m.expect_recv(i)
                };
                // A loop of `send` has sent the items yielded so far: the
                // receive finds them.
                let r = self.rxs[i].try_recv();
                let mut m = self.model.borrow_mut();
                match r {
                    Ok(msg) => {
                        assert_eq!(exp, Ok(()), "receiver {i}: try_recv inside the iterator");
                        if let Some(id) = m.received(i, &msg) {
                            m.expect.push(id);
                        }
                        ours(msg);
                    }
                    Err(e) => {
                        assert_eq!(Err(e), exp, "receiver {i}: try_recv inside the iterator");
                        m.subs[i].lag = 0;
                    }
                }
            }
            Act::Look => check_handles(&self.model.borrow(), self.txs, self.rxs),
            Act::Panic => {
                self.model.borrow_mut().call.as_mut().unwrap().iter_panicked = true;
                panic::panic_any(Boom::Iter);
            }
        }
    }

    fn begin_close(&self) -> bool {
        !std::mem::replace(&mut self.model.borrow_mut().closed, true)
    }

    fn check_drops(&self, when: &str) {
        let m = self.model.borrow();
        m.check_drops_so_far(m.call.as_ref().unwrap().mark, when);
    }
}

impl Iterator for ReIter<'_> {
    type Item = Msg;

    fn next(&mut self) -> Option<Msg> {
        {
            let m = self.model.borrow();
            let rec = m.call.as_ref().unwrap();
            assert!(
                rec.back.is_none(),
                "send_many asked its iterator for more after item {:?} found the channel \
                 closed",
                rec.back
            );
        }
        // What the previous items' sends dropped is dropped by now.
        self.check_drops("the iterator's next");
        let PlanItem { mut msg, actions } = self.items.pop_front()?;
        for a in actions {
            self.act(a);
            self.check_drops("the end of an action of the iterator");
        }
        // A loop of `send`: the item goes in now.
        let mut m = self.model.borrow_mut();
        let exp = m.offer(msg.id);
        let rec = m.call.as_mut().unwrap();
        rec.yielded.push(msg.id);
        match exp {
            Exp::Ok => {}
            Exp::Closed => rec.back = Some(msg.id),
            Exp::Full => panic!("harness: a send_many item would wait"),
        }
        msg.ours = false;
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.items.len();
        (self.hint.min(n), Some(n))
    }
}

impl Drop for ReIter<'_> {
    fn drop(&mut self) {
        // Items never taken are this target's own.
        for item in self.items.drain(..) {
            ours(item.msg);
        }
    }
}

/// Maps a `send_many`'s items to a plan and trims it so that nothing
/// waits forever on this one thread: under Block, every message that may
/// be enqueued before the iterator's first close or panic must fit. A
/// send that might not fit is kept only if a close or panic follows in the
/// same item (and then as a `try_send`), an item that might not fit ends
/// the plan.
fn sanitize(m: &Model, items: &[Item], ti: usize, ntx: usize, nrx: usize) -> Vec<(bool, Vec<Act>)> {
    let via = |v: Option<u8>| match v {
        Some(j) if m.kind != Kind::Spsc => usize::from(j) % ntx,
        _ => ti,
    };
    let map = |a: &Action| -> Option<Act> {
        Some(match *a {
            Action::Send {
                via: v,
                bomb,
                blocking,
            } => Act::Send {
                tx: via(v),
                bomb,
                blocking,
            },
            Action::CloseTx(v) => Act::CloseTx(via(v)),
            Action::CloseRx(i) => Act::CloseRx(pick(nrx, i)?),
            Action::TryRecv(i) => Act::TryRecv(pick(nrx, i)?),
            Action::Look => Act::Look,
            Action::Panic => Act::Panic,
        })
    };
    let mut free = m.policy != Overflow::Block || m.closed;
    let mut c = m.held();
    let mut out = Vec::new();
    for item in items.iter().take(MAX_ITEMS) {
        let acts: Vec<Act> = item
            .actions
            .iter()
            .take(MAX_ACTIONS)
            .filter_map(map)
            .collect();
        if free {
            out.push((item.bomb, acts));
            continue;
        }
        let term = acts
            .iter()
            .position(|a| matches!(a, Act::CloseTx(_) | Act::CloseRx(_) | Act::Panic));
        let mut kept = Vec::new();
        for (j, mut a) in acts.into_iter().enumerate() {
            if term.is_some_and(|t| j >= t) {
                kept.push(a);
                continue;
            }
            if let Act::Send { blocking, .. } = &mut a {
                if c < m.cap {
                    c += 1;
                } else if term.is_some() {
                    *blocking = false;
                } else {
                    continue;
                }
            }
            kept.push(a);
        }
        if term.is_some() {
            free = true;
        } else if c < m.cap {
            c += 1;
        } else {
            break;
        }
        out.push((item.bomb, kept));
    }
    out
}

/// `len()`, `dropped()` and `is_closed()` of every handle, against the
/// model (also from inside a `send_many`'s iterator: a loop of `send` has
/// sent the items yielded so far).
fn check_handles(m: &Model, txs: &[AnyTx], rxs: &[AnyRx]) {
    for (i, s) in m.subs.iter().enumerate() {
        assert!(
            s.q.len() <= m.cap,
            "receiver {i} holds {} messages, over the capacity {}",
            s.q.len(),
            m.cap
        );
    }
    let held = m.held();
    assert_eq!(
        m.union_len(),
        held,
        "model: a receiver's queue is not a suffix of the longest one"
    );
    for (i, rx) in rxs.iter().enumerate() {
        let (len, dropped, closed) = rx.introspect();
        assert_eq!(len, m.subs[i].q.len(), "receiver {i}: len()");
        assert_eq!(dropped, m.dropped, "receiver {i}: dropped()");
        assert_eq!(closed, m.closed, "receiver {i}: is_closed()");
    }
    for (i, tx) in txs.iter().enumerate() {
        let (len, dropped, closed) = tx.introspect();
        assert_eq!(len, held, "sender {i}: len()");
        assert_eq!(dropped, m.dropped, "sender {i}: dropped()");
        assert_eq!(closed, m.closed, "sender {i}: is_closed()");
    }
}

fn pick(len: usize, i: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

// ---- the run ----

struct World {
    model: RefCell<Model>,
    txs: Vec<AnyTx>,
    rxs: Vec<AnyRx>,
}

impl World {
    /// `len()`, `dropped()` and `is_closed()` of every handle.
    fn check_handles(&self) {
        check_handles(&self.model.borrow(), &self.txs, &self.rxs);
    }

    fn send(&mut self, i: usize, bomb: bool, blocking: bool) {
        let (msg, exp, blocking) = {
            let mut m = self.model.borrow_mut();
            let blocking = blocking && !m.would_block();
            let msg = m.new_msg(bomb);
            let exp = m.offer(msg.id);
            (msg, exp, blocking)
        };
        let id = msg.id;
        let mark = log_mark();
        let r = catch(|| {
            if blocking {
                self.txs[i].send(msg)
            } else {
                self.txs[i].try_send(msg)
            }
        });
        check_panic(r.as_ref().err().copied(), mark, false);
        let got = match r {
            Ok(Ok(())) | Err(_) => Exp::Ok, // a drop panic: the send went through
            Ok(Err((e, back))) => {
                assert_eq!(back.id, id, "a failed send hands its own message back");
                ours(back);
                e
            }
        };
        assert_eq!(got, exp, "send of {id}");
        self.model.borrow_mut().settle(mark, Vec::new());
    }

    fn send_many(&mut self, i: usize, hint: u8, items: &[Item]) {
        let mark = log_mark();
        let plan = {
            let mut m = self.model.borrow_mut();
            let plan = sanitize(&m, items, i, self.txs.len(), self.rxs.len());
            let plan: VecDeque<PlanItem> = plan
                .into_iter()
                .map(|(bomb, actions)| {
                    let mut msg = m.new_msg(bomb);
                    msg.ours = true; // until the iterator hands it out
                    PlanItem { msg, actions }
                })
                .collect();
            m.call = Some(CallRec {
                mark,
                ..CallRec::default()
            });
            plan
        };
        let iter = ReIter {
            model: &self.model,
            txs: &self.txs,
            rxs: &self.rxs,
            items: plan,
            hint: usize::from(hint),
        };
        let r = catch(|| self.txs[i].send_many(iter));
        let mut m = self.model.borrow_mut();
        let rec = m.call.take().unwrap();
        check_panic(r.as_ref().err().copied(), mark, rec.iter_panicked);
        match r {
            Ok(Ok(n)) => {
                assert_eq!(
                    rec.back, None,
                    "send_many returned Ok though item {:?} found the channel closed",
                    rec.back
                );
                assert_eq!(n, rec.yielded.len(), "send_many's count");
            }
            Ok(Err(back)) => {
                let back_ids: Vec<u32> = back.iter().map(|b| b.id).collect();
                back.into_iter().for_each(ours);
                assert_eq!(
                    back_ids,
                    rec.back.into_iter().collect::<Vec<_>>(),
                    "send_many hands back the item that found the channel closed (items taken: \
                     {:?})",
                    rec.yielded
                );
            }
            Err(_) => assert_eq!(
                rec.back, None,
                "send_many panicked after item {:?} found the channel closed",
                rec.back
            ),
        }
        m.settle(mark, Vec::new());
    }

    fn close_with(&mut self, i: usize, bomb: bool) {
        let (msg, exp) = {
            let mut m = self.model.borrow_mut();
            if m.would_block() {
                return; // would wait for room forever
            }
            let msg = m.new_msg(bomb);
            let exp = if m.closed {
                Exp::Closed
            } else {
                // The final message always goes in, evicting the oldest on
                // a full channel (Block waited for room above).
                if m.held() >= m.cap {
                    m.evict_oldest();
                }
                m.enqueue(msg.id);
                m.closed = true;
                Exp::Ok
            };
            (msg, exp)
        };
        let id = msg.id;
        let tx = self.txs.remove(i);
        let mark = log_mark();
        let r = catch(|| tx.close_with(msg));
        check_panic(r.as_ref().err().copied(), mark, false);
        let got = match r {
            Ok(Ok(())) | Err(_) => Exp::Ok,
            Ok(Err(back)) => {
                assert_eq!(back.id, id, "close_with hands its own message back");
                ours(back);
                Exp::Closed
            }
        };
        assert_eq!(got, exp, "close_with of {id}");
        let mut m = self.model.borrow_mut();
        if self.txs.is_empty() {
            m.closed = true;
        }
        m.settle(mark, Vec::new());
    }

    /// `how`: 0 `try_recv`, 1 `recv`, 2 `recv_many(max % 12)`.
    fn recv(&mut self, i: usize, how: u8, max: u8) {
        let (exp, held) = {
            let m = self.model.borrow();
            (m.expect_recv(i), m.subs[i].q.len())
        };
        let max = usize::from(max % 12);
        if exp == Err(RecvFail::Empty) && (how == 1 || (how == 2 && max > 0)) {
            return; // would wait forever
        }
        let mark = log_mark();
        let mut buf = Vec::new();
        let r = catch(|| match how {
            0 | 1 => {
                let r = if how == 0 {
                    self.rxs[i].try_recv()
                } else {
                    self.rxs[i].recv()
                };
                r.map(|msg| buf.push(msg)).map(|()| 1)
            }
            _ => self.rxs[i].recv_many(&mut buf, max),
        });
        check_panic(r.as_ref().err().copied(), mark, false);
        let mut m = self.model.borrow_mut();
        let mut extra = Vec::new();
        let got = buf.len();
        for msg in buf {
            extra.extend(m.received(i, &msg).map(|id| (id, false)));
            ours(msg);
        }
        match r {
            Err(_) => {
                // Only broadcast drops a message on receive: the last
                // subscriber to pass a message may clone it and drop the
                // original, and if that drop panics the receive does
                // (with the clone it made, dropped while unwinding).
                assert_eq!(m.kind, Kind::Broadcast, "a receive panicked");
                let id = log_since(mark)
                    .iter()
                    .find_map(|d| d.panicked.then_some(d.id))
                    .unwrap();
                let next = m.subs[i].q.pop_front();
                assert_eq!(
                    next,
                    Some(id),
                    "receiver {i} passed message {id}, the model's next is {next:?}"
                );
                assert!(
                    m.subs.iter().all(|s| !s.q.contains(&id)),
                    "receiver {i} dropped message {id}, which another receiver still holds"
                );
                extra.push((id, false));
                extra.push((id, true));
            }
            Ok(r) => {
                assert_eq!(
                    r.unwrap_or(0),
                    got,
                    "receiver {i}: the count and the buffer"
                );
                if how == 2 && max == 0 {
                    assert_eq!(r, Ok(0), "recv_many(0) returns at once");
                } else {
                    match exp {
                        Ok(()) => {
                            let k = if how == 2 { held.min(max) } else { 1 };
                            assert_eq!(r, Ok(k), "receiver {i} ({how}, max {max})");
                        }
                        Err(e) => {
                            assert_eq!(r, Err(e), "receiver {i} ({how}, max {max})");
                            m.subs[i].lag = 0;
                        }
                    }
                }
            }
        }
        m.settle(mark, extra);
    }

    fn drop_tx(&mut self, i: usize) {
        let tx = self.txs.remove(i);
        let mark = log_mark();
        let r = catch(|| drop(tx));
        check_panic(r.err(), mark, false);
        let mut m = self.model.borrow_mut();
        if self.txs.is_empty() {
            m.closed = true;
        }
        m.settle(mark, Vec::new());
    }

    fn drop_rx(&mut self, i: usize) {
        let rx = self.rxs.remove(i);
        let released = {
            let mut m = self.model.borrow_mut();
            let sub = m.subs.remove(i);
            if m.subs.is_empty() || m.kind != Kind::Broadcast {
                m.closed = true;
            }
            // Released with the receiver: what no other one holds.
            let released: Vec<(u32, bool)> = sub
                .q
                .iter()
                .copied()
                .filter(|id| !m.subs.iter().any(|s| s.q.contains(id)))
                .map(|id| (id, false))
                .collect();
            released
        };
        let mark = log_mark();
        let r = catch(|| drop(rx));
        check_panic(r.err(), mark, false);
        self.model.borrow_mut().settle(mark, released);
    }

    fn close(&mut self, tx: Option<usize>, rx: Option<usize>) {
        let want = !std::mem::replace(&mut self.model.borrow_mut().closed, true);
        let mark = log_mark();
        let got = match (tx, rx) {
            (Some(i), _) => self.txs[i].close(),
            (_, Some(i)) => self.rxs[i].close(),
            _ => unreachable!(),
        };
        assert_eq!(got, want, "close");
        self.model.borrow_mut().settle(mark, Vec::new());
    }
}

fn run(input: Input) {
    LOG.with(|l| l.borrow_mut().clear());
    DROPPED.with(|d| d.borrow_mut().clear());
    let kind = input.kind;
    let cap = 1 + usize::from(input.capacity % 8);
    // broadcast has no DropNewest (its builder panics): Block instead.
    let policy = match (input.policy, kind) {
        (Policy::Block, _) => Overflow::Block,
        (Policy::DropNewest, Kind::Broadcast) => Overflow::Block,
        (Policy::DropNewest, _) => Overflow::DropNewest,
        (Policy::DropOldest, _) => Overflow::DropOldest,
    };
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = match kind {
        Kind::Spsc => {
            let (t, r) = spsc::Builder::new(cap).overflow(policy).build::<Msg>();
            (AnyTx::S(t), AnyRx::S(r))
        }
        Kind::Mpsc => {
            let (t, r) = mpsc::Builder::new(cap).overflow(policy).build::<Msg>();
            (AnyTx::M(t), AnyRx::M(r))
        }
        Kind::Broadcast => {
            let (t, r) = broadcast::Builder::new(cap).overflow(policy).build::<Msg>();
            (AnyTx::B(t), AnyRx::B(r))
        }
    };
    let mut model = Model {
        kind,
        policy,
        cap,
        closed: false,
        subs: vec![Sub::default()],
        dropped: 0,
        inst0: Vec::new(),
        bombs: Vec::new(),
        expect: Vec::new(),
        call: None,
        drops: drops.clone(),
    };
    // Id 0 is never used.
    ours(model.new_msg(false));
    let mut w = World {
        model: RefCell::new(model),
        txs: vec![tx],
        rxs: vec![rx],
    };

    for op in input.ops.iter().take(MAX_OPS) {
        let ntx = w.txs.len();
        let nrx = w.rxs.len();
        match op {
            Op::Send { tx, bomb } | Op::TrySend { tx, bomb } => {
                let Some(i) = pick(ntx, *tx) else { continue };
                w.send(i, *bomb, matches!(op, Op::Send { .. }));
            }
            Op::SendMany { tx, hint, items } => {
                let Some(i) = pick(ntx, *tx) else { continue };
                w.send_many(i, *hint, items);
            }
            Op::TryRecv(r) | Op::Recv(r) => {
                let Some(i) = pick(nrx, *r) else { continue };
                w.recv(i, u8::from(matches!(op, Op::Recv(_))), 0);
            }
            Op::RecvMany(r, max) => {
                let Some(i) = pick(nrx, *r) else { continue };
                w.recv(i, 2, *max);
            }
            Op::CloseTx(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                w.close(Some(i), None);
            }
            Op::CloseRx(r) => {
                let Some(i) = pick(nrx, *r) else { continue };
                w.close(None, Some(i));
            }
            Op::CloseWith { tx, bomb } => {
                let Some(i) = pick(ntx, *tx) else { continue };
                w.close_with(i, *bomb);
            }
            Op::CloneTx(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                if let Some(c) = w.txs[i].try_clone() {
                    w.txs.push(c);
                }
            }
            Op::DropTx(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                w.drop_tx(i);
            }
            Op::Subscribe(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                if let Some(rx) = w.txs[i].subscribe() {
                    w.rxs.push(rx);
                    w.model.borrow_mut().subs.push(Sub::default());
                }
            }
            Op::CloneRx(r) => {
                let Some(i) = pick(nrx, *r) else { continue };
                if let Some(rx) = w.rxs[i].try_clone() {
                    w.rxs.push(rx);
                    let mut m = w.model.borrow_mut();
                    let s = m.subs[i].clone();
                    m.subs.push(s);
                }
            }
            Op::DropRx(r) => {
                let Some(i) = pick(nrx, *r) else { continue };
                w.drop_rx(i);
            }
        }
        w.check_handles();
    }

    // The end: drain (or not), drop every handle, count the drops.
    if input.drain {
        for i in 0..w.rxs.len() {
            loop {
                let exp = w.model.borrow().expect_recv(i);
                w.recv(i, 0, 0);
                if let Err(RecvFail::Empty | RecvFail::Closed) = exp {
                    break;
                }
            }
            let m = w.model.borrow();
            assert!(m.subs[i].q.is_empty());
        }
        w.check_handles();
    }
    while !w.txs.is_empty() {
        w.drop_tx(0);
        w.check_handles();
    }
    while !w.rxs.is_empty() {
        w.drop_rx(0);
        w.check_handles();
    }
    let made = DROPPED.with(|d| d.borrow().len());
    assert_eq!(
        drops.load(Ordering::Relaxed),
        made,
        "every message made (clones included) is dropped exactly once"
    );
    assert!(DROPPED.with(|d| d.borrow().iter().all(|&x| x)));
}

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic; let the intentional ones
        // unwind (silently) to the `catch_unwind` around each operation.
        let abort = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Boom>().is_none() {
                abort(info);
            }
        }));
    },
    |input: Input| run(input)
);
