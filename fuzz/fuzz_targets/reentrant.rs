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
//! or a receiver), or panic. Some messages panic in `Drop` when the channel
//! drops them (evicted, discarded, released); every operation runs inside
//! `catch_unwind`, and the panic hook stays silent only for these two
//! intentional panics (any other panic aborts, as libfuzzer-sys wants).
//!
//! What is checked, after every operation:
//! - spsc: an exact `VecDeque` model of loop-of-`send` semantics: a message
//!   the iterator sends while producing item `k` lands after item `k - 1`
//!   and before item `k`; a close it makes keeps the items yielded before
//!   it; every result, every received message, every message the channel
//!   drops, `len()` and `dropped()` must match the model.
//! - mpsc and broadcast: the iterator's own sends may land ahead of the
//!   batch being collected, so the model holds, per receiver, the *set* of
//!   messages it has still to receive, and checks: every received message
//!   is one of them (never received twice, never made up); per-sender FIFO
//!   (a message is never received, or evicted, while one that had to come
//!   before it is still held); every message the channel drops is one it
//!   held (evicted or discarded by the policy: counted in `dropped()`, and
//!   under DropOldest a lag for each broadcast subscriber that held it), one
//!   released with a receiver, or one of an unfinished batch of a panicking
//!   `send_many`; after a send, each receiver holds `min(cap, before + sent)`
//!   messages (exactly `before + sent` under Block); `len()`, `dropped()`,
//!   `is_closed()` and every `Lagged(n)` match. (Under broadcast
//!   DropOldest a subscriber always clones, and the last one to pass a
//!   message drops the original inside its receive: a panicking drop comes
//!   out of that receive, with the clone it made, and the model counts the
//!   message as passed by that subscriber, not received.)
//! - All kinds: the results of the iterator's own sends and closes; a
//!   message handed back in an error is the one sent (for `send_many`, a
//!   suffix of the items taken); no message is dropped twice (checked in
//!   `Drop`); an operation panics exactly when a message's `Drop` panicked
//!   or the iterator panicked; and at the end, with every handle dropped,
//!   every message made (clones included) has been dropped exactly once.
//!
//! A send under `Overflow::Block` on a full channel would wait forever on
//! one thread, so blocking sends (plain, re-entrant, and the items of a
//! `send_many`) are only issued when the model says they fit; a plan that
//! could wait is trimmed before the call (see `sanitize`).
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
    Panic,
}

// ---- messages ----

/// The payload of every panic this target raises on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boom {
    Iter,
    Drop,
}

/// What happened to messages, in order; read back after each operation.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Drop {
        id: u32,
        inst: u32,
        /// Dropped by this target (received, handed back, never sent),
        /// not by the channel.
        ours: bool,
        panicked: bool,
    },
    /// The iterator's `next` unwound.
    IterUnwind,
}

thread_local! {
    static LOG: RefCell<Vec<Ev>> = const { RefCell::new(Vec::new()) };
    /// One flag per instance made (originals and clones): dropped yet?
    static DROPPED: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

fn log(ev: Ev) {
    LOG.with(|l| l.borrow_mut().push(ev));
}

fn log_mark() -> usize {
    LOG.with(|l| l.borrow().len())
}

fn log_since(mark: usize) -> Vec<Ev> {
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
        log(Ev::Drop {
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

/// Logs `IterUnwind` if dropped while the iterator's `next` unwinds.
struct UnwindMarker;

impl Drop for UnwindMarker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log(Ev::IterUnwind);
        }
    }
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
    /// A forced `try_send` under Block whose room the model cannot know
    /// (mpsc/broadcast, while a batch is being collected).
    OkOrFull,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MKind {
    /// Not sent yet (an item of a plan).
    Unsent,
    Plain,
    /// An item of a `send_many`.
    Item,
    /// Sent by the iterator through the `send_many` handle itself.
    Reentrant,
}

#[derive(Debug, Clone, Copy)]
struct Info {
    /// The sending handle.
    stream: u32,
    /// Position in that handle's sends, in program order.
    seq: u64,
    /// The operation that sent it.
    call: u64,
    kind: MKind,
    /// The original instance (not a clone).
    inst0: u32,
}

/// `a` must be received before `b`: same sender, sent earlier, except an
/// item of a `send_many` and a message the iterator sent later through the
/// same handle during the same call (that one may overtake the batch).
fn must_precede(a: &Info, b: &Info) -> bool {
    a.stream == b.stream
        && a.seq < b.seq
        && !(a.call == b.call && a.kind == MKind::Item && b.kind == MKind::Reentrant)
}

/// One receiver: what it has still to receive (for spsc in order; for mpsc
/// and broadcast a set), and its pending lag (broadcast DropOldest).
#[derive(Debug, Clone, Default)]
struct Sub {
    q: VecDeque<u32>,
    lag: u64,
}

/// The `send_many` in progress.
#[derive(Debug, Default)]
struct CallRec {
    call: u64,
    stream: u32,
    /// The `send_many` handle's index.
    tx: usize,
    yielded: Vec<u32>,
    /// Messages the iterator sent, and whether the channel took them
    /// (`None`: the send panicked, so it took it).
    reentrant: Vec<(u32, Option<bool>)>,
    closed_during: bool,
    iter_panicked: bool,
    /// spsc: the item taken after a close, to come back in the error.
    back: Option<u32>,
}

/// What a single operation may do with the messages the channel drops.
#[derive(Default)]
struct Ctx {
    /// Taken from the iterator but never enqueued (a panicking batch).
    unsent: Vec<u32>,
    /// Released with a receiver: must all be dropped now.
    released: Vec<u32>,
    /// An eviction takes the oldest message (per-sender FIFO applies).
    consuming: bool,
    /// Passed by a broadcast subscriber: the original may go now if no
    /// subscriber holds it any more.
    passed: Vec<u32>,
    /// A clone a panicking broadcast receive made and dropped.
    lost_clone: Vec<u32>,
}

struct Model {
    kind: Kind,
    policy: Overflow,
    cap: usize,
    closed: bool,
    subs: Vec<Sub>,
    dropped: u64,
    /// By id; `infos[0]` is unused.
    infos: Vec<Info>,
    /// Next `seq` by stream.
    seqs: Vec<u64>,
    calls: u64,
    /// spsc: the channel's drops this operation must make.
    expect: Vec<u32>,
    call: Option<CallRec>,
    drops: Arc<AtomicUsize>,
}

impl Model {
    fn new_stream(&mut self) -> u32 {
        self.seqs.push(0);
        u32::try_from(self.seqs.len() - 1).unwrap()
    }

    fn new_call(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }

    fn new_msg(&mut self, bomb: bool) -> Msg {
        let id = u32::try_from(self.infos.len()).unwrap();
        let m = Msg::new(id, bomb, &self.drops);
        self.infos.push(Info {
            stream: u32::MAX,
            seq: 0,
            call: 0,
            kind: MKind::Unsent,
            inst0: m.inst,
        });
        m
    }

    /// Gives `id` its place in `stream`'s program order.
    fn stamp(&mut self, id: u32, stream: u32, call: u64, kind: MKind) {
        let s = &mut self.seqs[stream as usize];
        *s += 1;
        let info = &mut self.infos[id as usize];
        info.stream = stream;
        info.seq = *s;
        info.call = call;
        info.kind = kind;
    }

    fn held(&self) -> usize {
        self.subs.iter().map(|s| s.q.len()).max().unwrap_or(0)
    }

    /// Messages the channel holds: the union of what receivers still hold.
    fn union_len(&self) -> usize {
        let mut all: Vec<u32> = self.subs.iter().flat_map(|s| s.q.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    fn would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.held() >= self.cap
    }

    /// spsc: one `send` of `id`, applied to the model.
    fn spsc_offer(&mut self, id: u32) -> Exp {
        if self.closed {
            return Exp::Closed;
        }
        let q = &mut self.subs[0].q;
        if q.len() < self.cap {
            q.push_back(id);
            return Exp::Ok;
        }
        match self.policy {
            Overflow::Block => return Exp::Full,
            Overflow::DropNewest => self.expect.push(id),
            Overflow::DropOldest => {
                let old = q.pop_front().unwrap();
                self.expect.push(old);
                q.push_back(id);
            }
        }
        self.dropped += 1;
        Exp::Ok
    }

    /// What a send of `id` must return; spsc applies it.
    fn expect_send(&mut self, id: u32, maybe_full: bool) -> Exp {
        if self.kind == Kind::Spsc {
            self.spsc_offer(id)
        } else if self.closed {
            Exp::Closed
        } else if self.policy != Overflow::Block {
            Exp::Ok
        } else if maybe_full {
            Exp::OkOrFull
        } else if self.held() >= self.cap {
            Exp::Full
        } else {
            Exp::Ok
        }
    }

    /// mpsc/broadcast: every receiver gets the accepted messages; each
    /// then holds `min(cap, before + accepted)` once the policy has dropped
    /// what it drops (checked by `check_lens`).
    fn accept(&mut self, ids: &[u32]) {
        if self.kind != Kind::Spsc {
            for s in &mut self.subs {
                s.q.extend(ids.iter().copied());
            }
        }
    }

    fn check_lens(&self, before: &[usize], accepted: usize) {
        for (s, &b) in self.subs.iter().zip(before) {
            let want = if self.policy == Overflow::Block {
                b + accepted
            } else {
                (b + accepted).min(self.cap)
            };
            assert_eq!(
                s.q.len(),
                want,
                "a receiver that held {b} messages holds {} after {accepted} more were sent \
                 (capacity {}, {:?})",
                s.q.len(),
                self.cap,
                self.policy
            );
        }
    }

    /// Per-sender FIFO: `id` leaves receiver `i` (received or evicted)
    /// while nothing that must come before it is still held there.
    fn check_fifo(&self, i: usize, id: u32) {
        let b = &self.infos[id as usize];
        for &a in &self.subs[i].q {
            assert!(
                a == id || !must_precede(&self.infos[a as usize], b),
                "per-sender FIFO: message {id} ({b:?}) left receiver {i} before message {a} ({:?})",
                self.infos[a as usize]
            );
        }
    }

    /// Receiver `i` got `m`.
    fn received(&mut self, i: usize, m: &Msg) {
        let id = m.id;
        if self.kind == Kind::Spsc {
            assert_eq!(
                self.subs[i].q.front(),
                Some(&id),
                "spsc received {id}, the model's next is {:?}",
                self.subs[i].q.front()
            );
        }
        let pos = self.subs[i].q.iter().position(|&x| x == id);
        let Some(pos) = pos else {
            panic!(
                "receiver {i} got message {id} ({:?}), which it did not hold: never sent, \
                 received twice, or evicted",
                self.infos[id as usize]
            );
        };
        self.check_fifo(i, id);
        self.subs[i].q.remove(pos);
        if m.inst == self.infos[id as usize].inst0 {
            // The original moves out only to the last subscriber to pass it.
            for (j, s) in self.subs.iter().enumerate() {
                assert!(
                    !s.q.contains(&id),
                    "receiver {i} got the original of message {id} while receiver {j} still \
                     holds it"
                );
            }
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

    /// Accounts for what the channel dropped during an operation.
    fn settle(&mut self, evs: &[Ev], mut ctx: Ctx) {
        let mut dropped_by_chan: Vec<(u32, u32)> = Vec::new();
        for ev in evs {
            if let Ev::Drop {
                id,
                inst,
                ours: false,
                ..
            } = *ev
            {
                dropped_by_chan.push((id, inst));
            }
        }
        if self.kind == Kind::Spsc {
            let mut got: Vec<u32> = dropped_by_chan.iter().map(|&(id, _)| id).collect();
            let mut want = std::mem::take(&mut self.expect);
            want.extend(ctx.unsent.iter().chain(&ctx.released).copied());
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "spsc: the messages the channel dropped");
            return;
        }
        for (id, inst) in dropped_by_chan {
            if inst != self.infos[id as usize].inst0 {
                let p = ctx.lost_clone.iter().position(|&x| x == id);
                let p = p.unwrap_or_else(|| panic!("the channel dropped a clone of message {id}"));
                ctx.lost_clone.swap_remove(p);
                continue;
            }
            if let Some(p) = ctx.released.iter().position(|&x| x == id) {
                ctx.released.swap_remove(p);
                continue;
            }
            let holders: Vec<usize> = (0..self.subs.len())
                .filter(|&i| self.subs[i].q.contains(&id))
                .collect();
            if !holders.is_empty() {
                assert!(
                    self.policy != Overflow::Block,
                    "a Block channel dropped message {id}, which a receiver still held"
                );
                for i in holders {
                    if ctx.consuming {
                        self.check_fifo(i, id);
                    }
                    let s = &mut self.subs[i];
                    let pos = s.q.iter().position(|&x| x == id).unwrap();
                    s.q.remove(pos);
                    if self.kind == Kind::Broadcast {
                        s.lag += 1;
                    }
                }
                self.dropped += 1;
            } else if let Some(p) = ctx.unsent.iter().position(|&x| x == id) {
                ctx.unsent.swap_remove(p);
            } else if let Some(p) = ctx.passed.iter().position(|&x| x == id) {
                ctx.passed.swap_remove(p);
            } else {
                panic!(
                    "the channel dropped message {id} ({:?}), which it did not hold",
                    self.infos[id as usize]
                );
            }
        }
        assert!(
            ctx.released.is_empty(),
            "messages {:?} were not dropped with their receiver",
            ctx.released
        );
    }
}

/// An operation panicked exactly when a message's drop or the iterator
/// panicked.
fn check_panic(r: Option<Boom>, evs: &[Ev], iter_panicked: bool) {
    let drop_panicked = evs
        .iter()
        .any(|e| matches!(e, Ev::Drop { panicked: true, .. }));
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
    Send {
        tx: usize,
        bomb: bool,
        blocking: bool,
        /// Under Block, a `try_send` issued where the channel may be full
        /// (a close or panic follows in the same item).
        maybe_full: bool,
    },
    CloseTx(usize),
    CloseRx(usize),
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
    /// The stream of each sender, by index.
    streams: &'a [u32],
    items: VecDeque<PlanItem>,
}

impl ReIter<'_> {
    fn act(&self, a: Act) {
        match a {
            Act::Send {
                tx,
                bomb,
                blocking,
                maybe_full,
            } => {
                let (msg, exp) = {
                    let mut m = self.model.borrow_mut();
                    let msg = m.new_msg(bomb);
                    let call = m.call.as_ref().unwrap();
                    let (stream, same, cur) = (self.streams[tx], tx == call.tx, call.call);
                    if same {
                        m.stamp(msg.id, stream, cur, MKind::Reentrant);
                    } else {
                        let c = m.new_call();
                        m.stamp(msg.id, stream, c, MKind::Plain);
                    }
                    let exp = m.expect_send(msg.id, maybe_full);
                    assert!(
                        !(blocking && exp == Exp::Full),
                        "harness: a blocking re-entrant send on a full channel"
                    );
                    m.call.as_mut().unwrap().reentrant.push((msg.id, None));
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
                assert!(
                    got == exp || (exp == Exp::OkOrFull && got != Exp::Closed),
                    "re-entrant send of {id}: got {got:?}, the model says {exp:?}"
                );
                let mut m = self.model.borrow_mut();
                let rec = m.call.as_mut().unwrap();
                rec.reentrant.last_mut().unwrap().1 = Some(got == Exp::Ok);
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
            Act::Panic => {
                self.model.borrow_mut().call.as_mut().unwrap().iter_panicked = true;
                panic::panic_any(Boom::Iter);
            }
        }
    }

    fn begin_close(&self) -> bool {
        let mut m = self.model.borrow_mut();
        m.call.as_mut().unwrap().closed_during = true;
        !std::mem::replace(&mut m.closed, true)
    }
}

impl Iterator for ReIter<'_> {
    type Item = Msg;

    fn next(&mut self) -> Option<Msg> {
        let PlanItem { mut msg, actions } = self.items.pop_front()?;
        let marker = UnwindMarker;
        for a in actions {
            self.act(a);
        }
        drop(marker);
        let mut m = self.model.borrow_mut();
        let rec = m.call.as_ref().unwrap();
        let (stream, call) = (rec.stream, rec.call);
        m.stamp(msg.id, stream, call, MKind::Item);
        m.call.as_mut().unwrap().yielded.push(msg.id);
        if m.kind == Kind::Spsc {
            // A loop of `send`: the item goes in now.
            match m.spsc_offer(msg.id) {
                Exp::Ok => {}
                Exp::Closed => {
                    let rec = m.call.as_mut().unwrap();
                    assert!(
                        rec.back.is_none(),
                        "spsc send_many took another item after one failed on close"
                    );
                    rec.back = Some(msg.id);
                }
                e => panic!("harness: a send_many item would wait ({e:?})"),
            }
        }
        msg.ours = false;
        Some(msg)
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
                maybe_full: false,
            },
            Action::CloseTx(v) => Act::CloseTx(via(v)),
            Action::CloseRx(i) => Act::CloseRx(pick(nrx, i)?),
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
        let term = acts.iter().position(|a| !matches!(a, Act::Send { .. }));
        let mut kept = Vec::new();
        for (j, mut a) in acts.into_iter().enumerate() {
            if term.is_some_and(|t| j >= t) {
                kept.push(a);
                continue;
            }
            if let Act::Send {
                blocking,
                maybe_full,
                ..
            } = &mut a
            {
                if c < m.cap {
                    c += 1;
                } else if term.is_some() {
                    *blocking = false;
                    *maybe_full = true;
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
        let m = self.model.borrow();
        for (i, s) in m.subs.iter().enumerate() {
            assert!(
                s.q.len() <= m.cap,
                "receiver {i} holds {} messages, over the capacity {}",
                s.q.len(),
                m.cap
            );
        }
        for (i, rx) in self.rxs.iter().enumerate() {
            let (len, dropped, closed) = rx.introspect();
            assert_eq!(len, m.subs[i].q.len(), "receiver {i}: len()");
            assert_eq!(dropped, m.dropped, "receiver {i}: dropped()");
            assert_eq!(closed, m.closed, "receiver {i}: is_closed()");
        }
        let union = m.union_len();
        for (i, tx) in self.txs.iter().enumerate() {
            let (len, dropped, closed) = tx.introspect();
            assert_eq!(len, union, "sender {i}: len()");
            assert_eq!(dropped, m.dropped, "sender {i}: dropped()");
            assert_eq!(closed, m.closed, "sender {i}: is_closed()");
        }
    }

    fn send(&mut self, streams: &[u32], i: usize, bomb: bool, blocking: bool) {
        let (msg, exp, before) = {
            let mut m = self.model.borrow_mut();
            let blocking_ok = blocking && !m.would_block();
            let msg = m.new_msg(bomb);
            let call = m.new_call();
            m.stamp(msg.id, streams[i], call, MKind::Plain);
            let before = m.subs.iter().map(|s| s.q.len()).collect::<Vec<_>>();
            let exp = m.expect_send(msg.id, false);
            (msg, (exp, blocking_ok), before)
        };
        let (exp, blocking) = exp;
        let id = msg.id;
        let mark = log_mark();
        let r = catch(|| {
            if blocking {
                self.txs[i].send(msg)
            } else {
                self.txs[i].try_send(msg)
            }
        });
        let evs = log_since(mark);
        check_panic(r.as_ref().err().copied(), &evs, false);
        let got = match r {
            Ok(Ok(())) | Err(_) => Exp::Ok, // a drop panic: the send went through
            Ok(Err((e, back))) => {
                assert_eq!(back.id, id, "a failed send hands its own message back");
                ours(back);
                e
            }
        };
        assert_eq!(got, exp, "send of {id}");
        let mut m = self.model.borrow_mut();
        let accepted: Vec<u32> = if got == Exp::Ok { vec![id] } else { vec![] };
        m.accept(&accepted);
        let consuming = m.policy == Overflow::DropOldest;
        m.settle(
            &evs,
            Ctx {
                consuming,
                ..Ctx::default()
            },
        );
        if m.kind != Kind::Spsc {
            m.check_lens(&before, accepted.len());
        }
    }

    fn send_many(&mut self, streams: &[u32], i: usize, items: &[Item]) {
        let (plan, before) = {
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
            let call = m.new_call();
            m.call = Some(CallRec {
                call,
                stream: streams[i],
                tx: i,
                ..CallRec::default()
            });
            let before = m.subs.iter().map(|s| s.q.len()).collect::<Vec<_>>();
            (plan, before)
        };
        let mark = log_mark();
        let iter = ReIter {
            model: &self.model,
            txs: &self.txs,
            rxs: &self.rxs,
            streams,
            items: plan,
        };
        let r = catch(|| self.txs[i].send_many(iter));
        let evs = log_since(mark);
        let mut m = self.model.borrow_mut();
        let rec = m.call.take().unwrap();
        check_panic(r.as_ref().err().copied(), &evs, rec.iter_panicked);
        let mut back_ids = Vec::new();
        match r {
            Ok(Ok(n)) => {
                assert_eq!(n, rec.yielded.len(), "send_many's count");
                assert!(
                    !rec.closed_during,
                    "send_many returned Ok though its iterator closed the channel"
                );
            }
            Ok(Err(back)) => {
                back_ids = back.iter().map(|b| b.id).collect();
                back.into_iter().for_each(ours);
                assert!(m.closed, "send_many failed on an open channel");
                assert!(
                    !back_ids.is_empty() && rec.yielded.ends_with(&back_ids),
                    "send_many handed back {back_ids:?}: not a suffix of the items taken {:?}",
                    rec.yielded
                );
                if m.kind == Kind::Spsc {
                    assert_eq!(
                        back_ids,
                        rec.back.into_iter().collect::<Vec<_>>(),
                        "spsc send_many hands back the item taken after the close"
                    );
                }
            }
            Err(_) => {}
        }
        // Which items of the batch never went in (mpsc: those the channel
        // dropped while unwinding; broadcast: the whole batch, taken before
        // any claim, if the iterator unwound).
        let mut unsent = Vec::new();
        match m.kind {
            Kind::Spsc => {}
            Kind::Mpsc => {
                let panic_at = evs
                    .iter()
                    .position(|e| matches!(e, Ev::IterUnwind | Ev::Drop { panicked: true, .. }));
                if let Some(p) = panic_at {
                    for e in &evs[p + 1..] {
                        if let Ev::Drop {
                            id, ours: false, ..
                        } = *e
                        {
                            if rec.yielded.contains(&id) {
                                unsent.push(id);
                            }
                        }
                    }
                }
            }
            Kind::Broadcast => {
                if evs.iter().any(|e| matches!(e, Ev::IterUnwind)) {
                    unsent = rec.yielded.clone();
                }
            }
        }
        let mut accepted: Vec<u32> = rec
            .reentrant
            .iter()
            .filter(|(_, took)| took.unwrap_or(true))
            .map(|&(id, _)| id)
            .collect();
        accepted.extend(
            rec.yielded
                .iter()
                .filter(|id| !back_ids.contains(id) && !unsent.contains(id)),
        );
        m.accept(&accepted);
        let consuming = m.policy == Overflow::DropOldest;
        m.settle(
            &evs,
            Ctx {
                unsent,
                consuming,
                ..Ctx::default()
            },
        );
        if m.kind != Kind::Spsc {
            m.check_lens(&before, accepted.len());
        }
    }

    fn close_with(&mut self, streams: &mut Vec<u32>, i: usize, bomb: bool) {
        let (msg, exp, before) = {
            let mut m = self.model.borrow_mut();
            if m.would_block() {
                return; // would wait for room forever
            }
            let msg = m.new_msg(bomb);
            let call = m.new_call();
            m.stamp(msg.id, streams[i], call, MKind::Plain);
            let before = m.subs.iter().map(|s| s.q.len()).collect::<Vec<_>>();
            let exp = if m.closed {
                Exp::Closed
            } else {
                if m.kind == Kind::Spsc {
                    // The final message always goes in, evicting the oldest
                    // on a full ring (Block waited for room above).
                    if m.subs[0].q.len() >= m.cap {
                        let old = m.subs[0].q.pop_front().unwrap();
                        m.expect.push(old);
                        m.dropped += 1;
                    }
                    m.subs[0].q.push_back(msg.id);
                }
                m.closed = true;
                Exp::Ok
            };
            (msg, exp, before)
        };
        let id = msg.id;
        let tx = self.txs.remove(i);
        streams.remove(i);
        let mark = log_mark();
        let r = catch(|| tx.close_with(msg));
        let evs = log_since(mark);
        check_panic(r.as_ref().err().copied(), &evs, false);
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
        let accepted: Vec<u32> = if got == Exp::Ok { vec![id] } else { vec![] };
        m.accept(&accepted);
        m.settle(
            &evs,
            Ctx {
                consuming: true,
                ..Ctx::default()
            },
        );
        if m.kind != Kind::Spsc {
            m.check_lens(&before, accepted.len());
        }
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
        let evs = log_since(mark);
        check_panic(r.as_ref().err().copied(), &evs, false);
        let mut m = self.model.borrow_mut();
        let mut ctx = Ctx::default();
        let got = buf.len();
        for msg in buf {
            m.received(i, &msg);
            ctx.passed.push(msg.id);
            ours(msg);
        }
        match r {
            Err(_) => {
                // Only broadcast drops a message on receive: under
                // DropOldest the last subscriber to pass a message drops
                // the original, and if that drop panics the receive does
                // (with the clone it made).
                assert_eq!(m.kind, Kind::Broadcast, "a receive panicked");
                let id = evs
                    .iter()
                    .find_map(|e| match *e {
                        Ev::Drop {
                            id, panicked: true, ..
                        } => Some(id),
                        _ => None,
                    })
                    .unwrap();
                assert!(
                    m.subs[i].q.contains(&id),
                    "receiver {i} passed message {id}, which it did not hold"
                );
                m.check_fifo(i, id);
                m.subs[i].q.retain(|&x| x != id);
                ctx.passed.push(id);
                ctx.lost_clone.push(id);
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
        m.settle(&evs, ctx);
    }

    fn drop_tx(&mut self, streams: &mut Vec<u32>, i: usize) {
        let tx = self.txs.remove(i);
        streams.remove(i);
        let mark = log_mark();
        let r = catch(|| drop(tx));
        let evs = log_since(mark);
        check_panic(r.err(), &evs, false);
        let mut m = self.model.borrow_mut();
        if self.txs.is_empty() {
            m.closed = true;
        }
        m.settle(&evs, Ctx::default());
    }

    fn drop_rx(&mut self, i: usize) {
        let rx = self.rxs.remove(i);
        let released = {
            let mut m = self.model.borrow_mut();
            let sub = m.subs.remove(i);
            if m.subs.is_empty() || m.kind != Kind::Broadcast {
                m.closed = true;
            }
            let released: Vec<u32> = sub
                .q
                .iter()
                .copied()
                .filter(|id| !m.subs.iter().any(|s| s.q.contains(id)))
                .collect();
            released
        };
        let mark = log_mark();
        let r = catch(|| drop(rx));
        let evs = log_since(mark);
        check_panic(r.err(), &evs, false);
        self.model.borrow_mut().settle(
            &evs,
            Ctx {
                released,
                ..Ctx::default()
            },
        );
    }

    fn close(&mut self, tx: Option<usize>, rx: Option<usize>) {
        let want = !std::mem::replace(&mut self.model.borrow_mut().closed, true);
        let got = match (tx, rx) {
            (Some(i), _) => self.txs[i].close(),
            (_, Some(i)) => self.rxs[i].close(),
            _ => unreachable!(),
        };
        assert_eq!(got, want, "close");
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
        infos: Vec::new(),
        seqs: Vec::new(),
        calls: 0,
        expect: Vec::new(),
        call: None,
        drops: drops.clone(),
    };
    // Id 0 is never used.
    ours(model.new_msg(false));
    let mut streams = vec![model.new_stream()];
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
                w.send(&streams, i, *bomb, matches!(op, Op::Send { .. }));
            }
            Op::SendMany { tx, items } => {
                let Some(i) = pick(ntx, *tx) else { continue };
                w.send_many(&streams, i, items);
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
                w.close_with(&mut streams, i, *bomb);
            }
            Op::CloneTx(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                if let Some(c) = w.txs[i].try_clone() {
                    w.txs.push(c);
                    streams.push(w.model.borrow_mut().new_stream());
                }
            }
            Op::DropTx(t) => {
                let Some(i) = pick(ntx, *t) else { continue };
                w.drop_tx(&mut streams, i);
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
        w.drop_tx(&mut streams, 0);
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
