//! Model-based test for `rillet::broadcast`: random operation sequences on
//! one thread, over a changing set of senders and subscribers, every result
//! compared with a model that keeps one `VecDeque` and one pending lag count
//! per live subscriber. Messages count their live instances, so after every
//! step the test also checks that the channel holds exactly the messages
//! some subscriber has still to receive (no leak, no early drop), and at the
//! end that every instance (original or clone) was dropped exactly once.

use proptest::prelude::*;
use rillet::broadcast::{self, RecvError, RecvTimeoutError, TryRecvError};
use rillet::{Overflow, SendError, SendTimeoutError, TrySendError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A message that counts its live instances: +1 on creation and clone, -1
/// on drop. Every message gets a fresh `id`, so a duplicate or a reordering
/// cannot hide behind equal values.
#[derive(Debug)]
struct Msg {
    id: u32,
    live: Arc<AtomicUsize>,
}

impl Msg {
    fn new(id: u32, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Msg {
            id,
            live: live.clone(),
        }
    }
}

impl Clone for Msg {
    fn clone(&self) -> Self {
        Msg::new(self.id, &self.live)
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sender indices are taken modulo the number of live senders, subscriber
/// indices modulo the number of live subscribers; an op whose handle kind has
/// none alive is skipped.
#[derive(Debug, Clone)]
enum Op {
    TrySend(usize),
    SendZeroTimeout(usize),
    /// Blocking `send`, only run when it cannot wait.
    Send(usize),
    /// `send_many` of this many new messages.
    SendMany(usize, usize),
    TryRecv(usize),
    RecvZeroTimeout(usize),
    /// Blocking `recv`, only run when it cannot wait.
    Recv(usize),
    /// `recv_many(buf, max)`.
    RecvMany(usize, usize),
    /// `try_iter().take(n)`.
    TryIter(usize, usize),
    Subscribe(usize),
    CloneRx(usize),
    DropRx(usize),
    CloseTx(usize),
    CloseRx(usize),
    CloseWith(usize),
    CloneSender(usize),
    DropSender(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = 0usize..8;
    // Closing (and dropping the last handle of a side) ends what is
    // interesting to model: those ops are rare, so that most cases run a
    // few dozen steps on an open channel first.
    prop_oneof![
        40 => ix.clone().prop_map(Op::TrySend),
        8 => ix.clone().prop_map(Op::SendZeroTimeout),
        8 => ix.clone().prop_map(Op::Send),
        8 => (ix.clone(), 0usize..8).prop_map(|(i, k)| Op::SendMany(i, k)),
        40 => ix.clone().prop_map(Op::TryRecv),
        8 => ix.clone().prop_map(Op::RecvZeroTimeout),
        8 => ix.clone().prop_map(Op::Recv),
        8 => (ix.clone(), 0usize..8).prop_map(|(i, n)| Op::RecvMany(i, n)),
        4 => (ix.clone(), 0usize..6).prop_map(|(i, n)| Op::TryIter(i, n)),
        12 => ix.clone().prop_map(Op::Subscribe),
        10 => ix.clone().prop_map(Op::CloneRx),
        4 => ix.clone().prop_map(Op::DropRx),
        1 => ix.clone().prop_map(Op::CloseTx),
        1 => ix.clone().prop_map(Op::CloseRx),
        1 => ix.clone().prop_map(Op::CloseWith),
        4 => ix.clone().prop_map(Op::CloneSender),
        1 => ix.prop_map(Op::DropSender),
    ]
}

fn policy() -> impl Strategy<Value = Overflow> {
    prop_oneof![Just(Overflow::Block), Just(Overflow::DropOldest)]
}

/// One live subscriber: what it has still to receive, and how many messages
/// it lost to evictions since its last receive (reported as `Lagged` first).
#[derive(Debug, Clone, Default)]
struct Sub {
    q: VecDeque<u32>,
    lag: u64,
}

struct Model {
    subs: Vec<Sub>,
    cap: usize,
    policy: Overflow,
    closed: bool,
    dropped: u64,
}

impl Model {
    /// Messages the channel holds: every subscriber's queue is a suffix of
    /// what was sent, so the union of them is the longest one.
    fn held(&self) -> usize {
        self.subs.iter().map(|s| s.q.len()).max().unwrap_or(0)
    }

    /// The slowest live subscriber has `capacity` messages unread.
    fn full(&self) -> bool {
        self.held() == self.cap
    }

    /// Whether a blocking send would wait forever on this single thread.
    fn send_would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.full()
    }

    /// Whether a blocking receive by subscriber `i` would wait forever.
    fn recv_would_block(&self, i: usize) -> bool {
        let s = &self.subs[i];
        !self.closed && s.lag == 0 && s.q.is_empty()
    }

    /// Enqueues ignoring the close state; `Err(id)` only when full under
    /// Block. Under DropOldest every subscriber whose queue is full loses its
    /// oldest message (the same one for all: the queues are suffixes), which
    /// counts once in `dropped`.
    fn push(&mut self, id: u32) -> Result<(), u32> {
        if self.full() {
            match self.policy {
                Overflow::Block => return Err(id),
                Overflow::DropOldest => {
                    self.dropped += 1;
                    for s in &mut self.subs {
                        if s.q.len() == self.cap {
                            s.q.pop_front();
                            s.lag += 1;
                        }
                    }
                }
                Overflow::DropNewest => unreachable!("not a broadcast policy"),
            }
        }
        for s in &mut self.subs {
            s.q.push_back(id);
        }
        Ok(())
    }

    fn try_send(&mut self, id: u32) -> Result<(), TrySendError<u32>> {
        if self.closed {
            return Err(TrySendError::Closed(id));
        }
        self.push(id).map_err(TrySendError::Full)
    }

    fn try_recv(&mut self, i: usize) -> Result<u32, TryRecvError> {
        let s = &mut self.subs[i];
        if s.lag > 0 {
            return Err(TryRecvError::Lagged(std::mem::take(&mut s.lag)));
        }
        match s.q.pop_front() {
            Some(id) => Ok(id),
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }

    fn drop_sub(&mut self, i: usize) {
        self.subs.remove(i);
        if self.subs.is_empty() {
            self.closed = true; // the last subscriber closes the channel
        }
    }
}

fn ids(r: Result<Msg, TryRecvError>) -> Result<u32, TryRecvError> {
    r.map(|m| m.id)
}

fn send_ids(r: Result<(), TrySendError<Msg>>) -> Result<(), TrySendError<u32>> {
    r.map_err(|e| match e {
        TrySendError::Full(m) => TrySendError::Full(m.id),
        TrySendError::Closed(m) => TrySendError::Closed(m.id),
    })
}

fn check_state(
    txs: &[broadcast::Sender<Msg>],
    rxs: &[broadcast::Receiver<Msg>],
    m: &Model,
    live: &AtomicUsize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(rxs.len(), m.subs.len());
    for (rx, s) in rxs.iter().zip(&m.subs) {
        prop_assert_eq!(rx.len(), s.q.len());
        prop_assert_eq!(rx.is_empty(), s.q.is_empty());
        prop_assert_eq!(rx.is_full(), s.q.len() == m.cap);
        prop_assert_eq!(rx.dropped(), m.dropped);
        prop_assert_eq!(rx.is_closed(), m.closed);
        prop_assert_eq!(rx.receiver_count(), m.subs.len());
        prop_assert_eq!(rx.capacity(), m.cap);
        prop_assert_eq!(rx.overflow(), m.policy);
    }
    for tx in txs {
        prop_assert_eq!(tx.len(), m.held());
        prop_assert_eq!(tx.is_empty(), m.held() == 0);
        prop_assert_eq!(tx.is_full(), m.full());
        prop_assert_eq!(tx.dropped(), m.dropped);
        prop_assert_eq!(tx.is_closed(), m.closed);
        prop_assert_eq!(tx.receiver_count(), m.subs.len());
        prop_assert_eq!(tx.capacity(), m.cap);
        prop_assert_eq!(tx.overflow(), m.policy);
    }
    // The channel holds one instance per message still to be received by
    // someone: a passed or evicted message has been dropped at once.
    prop_assert_eq!(live.load(Ordering::Relaxed), m.held());
    Ok(())
}

fn run(cap: usize, policy: Overflow, ops: Vec<Op>, drain: bool) -> Result<(), TestCaseError> {
    let live = Arc::new(AtomicUsize::new(0));
    let mut next_id = 0u32;
    let mut new_msg = || {
        next_id += 1;
        Msg::new(next_id, &live)
    };
    let (tx, rx) = broadcast::Builder::new(cap).overflow(policy).build::<Msg>();
    let mut txs = vec![tx];
    let mut rxs = vec![rx];
    let mut m = Model {
        subs: vec![Sub::default()],
        cap,
        policy,
        closed: false,
        dropped: 0,
    };
    check_state(&txs, &rxs, &m, &live)?;
    for op in ops {
        // `None` when no handle of that kind is alive: the op is skipped.
        let tx_at = |i: usize| (!txs.is_empty()).then(|| i % txs.len());
        let rx_at = |i: usize| (!rxs.is_empty()).then(|| i % rxs.len());
        match op {
            Op::TrySend(i) => {
                let Some(i) = tx_at(i) else { continue };
                let msg = new_msg();
                let want = m.try_send(msg.id);
                prop_assert_eq!(send_ids(txs[i].try_send(msg)), want);
            }
            Op::SendZeroTimeout(i) => {
                let Some(i) = tx_at(i) else { continue };
                let msg = new_msg();
                let want = match m.try_send(msg.id) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(id)) => Err(SendTimeoutError::Timeout(id)),
                    Err(TrySendError::Closed(id)) => Err(SendTimeoutError::Closed(id)),
                };
                let got = txs[i]
                    .send_timeout(msg, Duration::ZERO)
                    .map_err(|e| match e {
                        SendTimeoutError::Timeout(m) => SendTimeoutError::Timeout(m.id),
                        SendTimeoutError::Closed(m) => SendTimeoutError::Closed(m.id),
                    });
                prop_assert_eq!(got, want);
            }
            Op::Send(i) => {
                let Some(i) = tx_at(i) else { continue };
                if m.send_would_block() {
                    continue; // would wait forever on one thread
                }
                let msg = new_msg();
                let want = match m.try_send(msg.id) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Closed(id)) => Err(SendError(id)),
                    Err(TrySendError::Full(_)) => unreachable!("checked above"),
                };
                prop_assert_eq!(
                    txs[i].send(msg).map_err(|SendError(m)| SendError(m.id)),
                    want
                );
            }
            Op::SendMany(i, k) => {
                let Some(i) = tx_at(i) else { continue };
                if policy == Overflow::Block && !m.closed && m.held() + k > cap {
                    continue; // would wait forever on one thread
                }
                let msgs: Vec<Msg> = (0..k).map(|_| new_msg()).collect();
                let sent: Vec<u32> = msgs.iter().map(|m| m.id).collect();
                let want = if m.closed {
                    // A loop of `send`: the first message fails and comes
                    // back; the rest are never taken from the iterator.
                    match sent.first() {
                        Some(&id) => Err(SendError(vec![id])),
                        None => Ok(0),
                    }
                } else {
                    for &id in &sent {
                        m.push(id).unwrap();
                    }
                    Ok(k)
                };
                let got = txs[i]
                    .send_many(msgs)
                    .map_err(|SendError(back)| SendError(back.iter().map(|m| m.id).collect()));
                prop_assert_eq!(got, want);
            }
            Op::TryRecv(i) => {
                let Some(i) = rx_at(i) else { continue };
                prop_assert_eq!(ids(rxs[i].try_recv()), m.try_recv(i));
            }
            Op::RecvZeroTimeout(i) => {
                let Some(i) = rx_at(i) else { continue };
                let want = m.try_recv(i).map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Closed => RecvTimeoutError::Closed,
                    TryRecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
                });
                let got = rxs[i].recv_timeout(Duration::ZERO).map(|m| m.id);
                prop_assert_eq!(got, want);
            }
            Op::Recv(i) => {
                let Some(i) = rx_at(i) else { continue };
                if m.recv_would_block(i) {
                    continue; // would wait forever on one thread
                }
                let want = m.try_recv(i).map_err(|e| match e {
                    TryRecvError::Closed => RecvError::Closed,
                    TryRecvError::Lagged(n) => RecvError::Lagged(n),
                    TryRecvError::Empty => unreachable!("checked above"),
                });
                prop_assert_eq!(rxs[i].recv().map(|m| m.id), want);
            }
            Op::RecvMany(i, max) => {
                let Some(i) = rx_at(i) else { continue };
                if max > 0 && m.recv_would_block(i) {
                    continue; // would wait forever on one thread
                }
                // A lag before the first message is the error; after the
                // first, on one thread, no new gap can open.
                let (want, expected) = if max == 0 {
                    (Ok(0), vec![7])
                } else {
                    match m.try_recv(i) {
                        Ok(first) => {
                            let q = &mut m.subs[i].q;
                            let rest = q.len().min(max - 1);
                            let mut all = vec![7, first];
                            all.extend(q.drain(..rest));
                            (Ok(rest + 1), all)
                        }
                        Err(TryRecvError::Closed) => (Err(RecvError::Closed), vec![7]),
                        Err(TryRecvError::Lagged(n)) => (Err(RecvError::Lagged(n)), vec![7]),
                        Err(TryRecvError::Empty) => unreachable!("checked above"),
                    }
                };
                let mut buf = vec![Msg::new(7, &live)];
                let got = rxs[i].recv_many(&mut buf, max);
                prop_assert_eq!(got, want);
                prop_assert_eq!(buf.iter().map(|m| m.id).collect::<Vec<_>>(), expected);
            }
            Op::TryIter(i, n) => {
                let Some(i) = rx_at(i) else { continue };
                let got: Vec<u32> = rxs[i].try_iter().take(n).map(|m| m.id).collect();
                // The iterator skips a lag gap (if it is asked for anything).
                if n > 0 {
                    m.subs[i].lag = 0;
                }
                let q = &mut m.subs[i].q;
                let k = q.len().min(n);
                prop_assert_eq!(got, q.drain(..k).collect::<Vec<_>>());
            }
            Op::Subscribe(i) => {
                let Some(i) = tx_at(i) else { continue };
                rxs.push(txs[i].subscribe());
                m.subs.push(Sub::default());
            }
            Op::CloneRx(i) => {
                let Some(i) = rx_at(i) else { continue };
                let clone = rxs[i].clone();
                rxs.push(clone);
                m.subs.push(m.subs[i].clone());
            }
            Op::DropRx(i) => {
                let Some(i) = rx_at(i) else { continue };
                drop(rxs.remove(i));
                m.drop_sub(i);
            }
            Op::CloseTx(i) => {
                let Some(i) = tx_at(i) else { continue };
                prop_assert_eq!(txs[i].close(), m.close());
            }
            Op::CloseRx(i) => {
                let Some(i) = rx_at(i) else { continue };
                prop_assert_eq!(rxs[i].close(), m.close());
            }
            Op::CloseWith(i) => {
                let Some(i) = tx_at(i) else { continue };
                if m.send_would_block() {
                    continue; // would wait for room forever
                }
                let sender = txs.remove(i);
                let msg = new_msg();
                let id = msg.id;
                let want = if m.closed {
                    Err(SendError(id))
                } else {
                    m.push(id).unwrap();
                    m.closed = true;
                    Ok(())
                };
                prop_assert_eq!(
                    sender
                        .close_with(msg)
                        .map_err(|SendError(m)| SendError(m.id)),
                    want
                );
            }
            Op::CloneSender(i) => {
                let Some(i) = tx_at(i) else { continue };
                let clone = txs[i].clone();
                txs.push(clone);
            }
            Op::DropSender(i) => {
                let Some(i) = tx_at(i) else { continue };
                drop(txs.remove(i));
                if txs.is_empty() {
                    m.closed = true; // the last sender closes the channel
                }
            }
        }
        check_state(&txs, &rxs, &m, &live)?;
    }

    // The end: no sender left, so the channel is closed. Each subscriber
    // drains what it has left (skipping a gap) and then sees Closed forever,
    // or (without `drain`) goes away with its messages still buffered.
    drop(txs);
    m.closed = true;
    for rx in &rxs {
        prop_assert!(rx.is_closed());
    }
    if drain {
        for (rx, s) in rxs.iter().zip(&mut m.subs) {
            let rest: Vec<u32> = rx.try_iter().map(|m| m.id).collect();
            prop_assert_eq!(rest, s.q.drain(..).collect::<Vec<_>>());
            prop_assert_eq!(ids(rx.try_recv()), Err(TryRecvError::Closed));
            prop_assert_eq!(
                rx.recv_timeout(Duration::ZERO).map(|m| m.id),
                Err(RecvTimeoutError::Closed)
            );
            prop_assert_eq!(rx.recv().map(|m| m.id), Err(RecvError::Closed));
            prop_assert_eq!(rx.recv_many(&mut Vec::new(), 4), Err(RecvError::Closed));
            prop_assert_eq!(rx.len(), 0);
            prop_assert_eq!(rx.dropped(), m.dropped);
        }
        // Everyone has received everything: nothing is held any more.
        prop_assert_eq!(live.load(Ordering::Relaxed), 0);
    }
    drop(rxs);
    // As many drops as instances ever made, originals and clones.
    prop_assert_eq!(live.load(Ordering::Relaxed), 0);
    Ok(())
}

/// Operations per case: Miri runs fewer, shorter cases.
const MAX_OPS: usize = if cfg!(miri) { 40 } else { 100 };

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn broadcast_matches_the_per_subscriber_model(
        cap in 1usize..=5,
        policy in policy(),
        ops in prop::collection::vec(op(), 0..MAX_OPS),
        drain in any::<bool>(),
    ) {
        run(cap, policy, ops, drain)?;
    }
}
