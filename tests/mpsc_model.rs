//! Model-based test for `rillet::mpsc`: random operation sequences on one
//! thread, over a changing set of cloned senders, every result compared with
//! a `VecDeque` that applies the overflow policy. Capacity 0 (rendezvous) is
//! included: with a single thread nobody is ever waiting on the other side.

use proptest::prelude::*;
use rillet::{
    mpsc, Overflow, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use std::collections::VecDeque;
use std::time::Duration;

/// Sender indices are taken modulo the number of live senders.
#[derive(Debug, Clone)]
enum Op {
    TrySend(usize, u16),
    SendZeroTimeout(usize, u16),
    /// Blocking `send`, only run when it cannot wait.
    Send(usize, u16),
    TryRecv,
    RecvZeroTimeout,
    /// Blocking `recv`, only run when it cannot wait.
    Recv,
    SendMany(usize, Vec<u16>),
    RecvMany(usize),
    /// `try_iter().take(n)`.
    TryIter(usize),
    CloseTx(usize),
    CloseRx,
    CloseWith(usize, u16),
    CloneSender(usize),
    DropSender(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = 0usize..8;
    prop_oneof![
        6 => (ix.clone(), any::<u16>()).prop_map(|(i, v)| Op::TrySend(i, v)),
        2 => (ix.clone(), any::<u16>()).prop_map(|(i, v)| Op::SendZeroTimeout(i, v)),
        2 => (ix.clone(), any::<u16>()).prop_map(|(i, v)| Op::Send(i, v)),
        5 => Just(Op::TryRecv),
        2 => Just(Op::RecvZeroTimeout),
        1 => Just(Op::Recv),
        2 => (ix.clone(), prop::collection::vec(any::<u16>(), 0..12))
            .prop_map(|(i, vs)| Op::SendMany(i, vs)),
        2 => (0usize..10).prop_map(Op::RecvMany),
        1 => (0usize..6).prop_map(Op::TryIter),
        1 => ix.clone().prop_map(Op::CloseTx),
        1 => Just(Op::CloseRx),
        1 => (ix.clone(), any::<u16>()).prop_map(|(i, v)| Op::CloseWith(i, v)),
        2 => ix.clone().prop_map(Op::CloneSender),
        1 => ix.prop_map(Op::DropSender),
    ]
}

fn policy() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Block),
        Just(Overflow::DropNewest),
        Just(Overflow::DropOldest)
    ]
}

/// A capacity in `0..6` and a policy; a rendezvous channel (capacity 0)
/// only accepts `Block`.
fn config() -> impl Strategy<Value = (usize, Overflow)> {
    (0usize..6, policy()).prop_map(|(cap, policy)| {
        if cap == 0 {
            (0, Overflow::Block)
        } else {
            (cap, policy)
        }
    })
}

struct Model {
    q: VecDeque<u16>,
    cap: usize,
    policy: Overflow,
    closed: bool,
    dropped: u64,
}

impl Model {
    /// Also `true` at capacity 0: a rendezvous channel is always "full".
    fn full(&self) -> bool {
        self.q.len() == self.cap
    }

    /// Whether a blocking send would wait forever on this single thread.
    fn send_would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.full()
    }

    /// Enqueue ignoring the close state; `Err(v)` only when full under Block
    /// (always, at capacity 0: no receiver is ever waiting).
    fn push(&mut self, v: u16) -> Result<(), u16> {
        if !self.full() {
            self.q.push_back(v);
            return Ok(());
        }
        match self.policy {
            Overflow::Block => Err(v),
            Overflow::DropNewest => {
                self.dropped += 1;
                Ok(())
            }
            Overflow::DropOldest => {
                self.q.pop_front();
                self.q.push_back(v);
                self.dropped += 1;
                Ok(())
            }
        }
    }

    /// `close_with`'s final message always goes in: on a full ring under a
    /// dropping policy the oldest buffered message is evicted for it.
    fn push_final(&mut self, v: u16) -> Result<(), u16> {
        if self.full() && self.policy != Overflow::Block {
            self.q.pop_front();
            self.dropped += 1;
        }
        self.push(v)
    }

    fn try_send(&mut self, v: u16) -> Result<(), TrySendError<u16>> {
        if self.closed {
            return Err(TrySendError::Closed(v));
        }
        self.push(v).map_err(TrySendError::Full)
    }

    fn try_recv(&mut self) -> Result<u16, TryRecvError> {
        match self.q.pop_front() {
            Some(v) => Ok(v),
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }
}

fn check_state(
    rx: &mpsc::Receiver<u16>,
    txs: &[mpsc::Sender<u16>],
    m: &Model,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(rx.len(), m.q.len());
    prop_assert_eq!(rx.is_empty(), m.q.is_empty());
    prop_assert_eq!(rx.is_full(), m.full());
    prop_assert_eq!(rx.dropped(), m.dropped);
    prop_assert_eq!(rx.is_closed(), m.closed);
    prop_assert_eq!(rx.capacity(), m.cap);
    prop_assert_eq!(rx.overflow(), m.policy);
    for tx in txs {
        prop_assert_eq!(tx.len(), m.q.len());
        prop_assert_eq!(tx.is_empty(), m.q.is_empty());
        prop_assert_eq!(tx.is_full(), m.full());
        prop_assert_eq!(tx.dropped(), m.dropped);
        prop_assert_eq!(tx.is_closed(), m.closed);
        prop_assert_eq!(tx.capacity(), m.cap);
        prop_assert_eq!(tx.overflow(), m.policy);
    }
    Ok(())
}

fn run(cap: usize, policy: Overflow, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::Builder::new(cap).overflow(policy).build::<u16>();
    let mut txs = vec![tx];
    let mut m = Model {
        q: VecDeque::new(),
        cap,
        policy,
        closed: false,
        dropped: 0,
    };
    check_state(&rx, &txs, &m)?;
    for op in ops {
        // `None` when no sender is alive: sender ops are skipped then.
        let pick = |i: usize| (!txs.is_empty()).then(|| i % txs.len());
        match op {
            Op::TrySend(i, v) => {
                let Some(i) = pick(i) else { continue };
                prop_assert_eq!(txs[i].try_send(v), m.try_send(v));
            }
            Op::SendZeroTimeout(i, v) => {
                let Some(i) = pick(i) else { continue };
                let want = match m.try_send(v) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(v)) => Err(SendTimeoutError::Timeout(v)),
                    Err(TrySendError::Closed(v)) => Err(SendTimeoutError::Closed(v)),
                };
                prop_assert_eq!(txs[i].send_timeout(v, Duration::ZERO), want);
            }
            Op::Send(i, v) => {
                let Some(i) = pick(i) else { continue };
                if m.send_would_block() {
                    continue; // would wait forever on one thread
                }
                let want = match m.try_send(v) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Closed(v)) => Err(SendError(v)),
                    Err(TrySendError::Full(_)) => unreachable!("checked above"),
                };
                prop_assert_eq!(txs[i].send(v), want);
            }
            Op::TryRecv => prop_assert_eq!(rx.try_recv(), m.try_recv()),
            Op::RecvZeroTimeout => {
                let want = m.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Closed => RecvTimeoutError::Closed,
                });
                prop_assert_eq!(rx.recv_timeout(Duration::ZERO), want);
            }
            Op::Recv => {
                if m.q.is_empty() && !m.closed {
                    continue; // would wait forever on one thread
                }
                let want = m.try_recv().map_err(|_| RecvError);
                prop_assert_eq!(rx.recv(), want);
            }
            Op::SendMany(i, vs) => {
                let Some(i) = pick(i) else { continue };
                if policy == Overflow::Block && !m.closed && m.q.len() + vs.len() > cap {
                    continue; // would wait forever on one thread (always at cap 0)
                }
                let want = if m.closed {
                    match vs.first() {
                        Some(&v) => Err(SendError(vec![v])),
                        None => Ok(0),
                    }
                } else {
                    for &v in &vs {
                        m.push(v).unwrap();
                    }
                    Ok(vs.len())
                };
                prop_assert_eq!(txs[i].send_many(vs), want);
            }
            Op::RecvMany(max) => {
                if max > 0 && m.q.is_empty() && !m.closed {
                    continue; // would wait forever on one thread
                }
                let mut buf = vec![7u16];
                let want = if max == 0 {
                    Ok(0)
                } else if m.q.is_empty() {
                    Err(RecvError)
                } else {
                    Ok(m.q.len().min(max))
                };
                let expected: Vec<u16> = match want {
                    Ok(k) => std::iter::once(7).chain(m.q.drain(..k)).collect(),
                    Err(_) => vec![7],
                };
                prop_assert_eq!(rx.recv_many(&mut buf, max), want);
                prop_assert_eq!(buf, expected);
            }
            Op::TryIter(n) => {
                let got: Vec<u16> = rx.try_iter().take(n).collect();
                let k = m.q.len().min(n);
                prop_assert_eq!(got, m.q.drain(..k).collect::<Vec<_>>());
            }
            Op::CloseTx(i) => {
                let Some(i) = pick(i) else { continue };
                prop_assert_eq!(txs[i].close(), m.close());
            }
            Op::CloseRx => prop_assert_eq!(rx.close(), m.close()),
            Op::CloseWith(i, v) => {
                let Some(i) = pick(i) else { continue };
                if m.send_would_block() {
                    continue; // would wait for room (or a receiver) forever
                }
                let sender = txs.remove(i);
                let want = if m.closed {
                    Err(SendError(v))
                } else {
                    m.push_final(v).unwrap();
                    m.closed = true;
                    Ok(())
                };
                prop_assert_eq!(sender.close_with(v), want);
            }
            Op::CloneSender(i) => {
                let Some(i) = pick(i) else { continue };
                let clone = txs[i].clone();
                txs.push(clone);
            }
            Op::DropSender(i) => {
                let Some(i) = pick(i) else { continue };
                drop(txs.remove(i));
                if txs.is_empty() {
                    m.closed = true; // the last sender closes the channel
                }
            }
        }
        check_state(&rx, &txs, &m)?;
    }
    // Drain: what is left comes out in order, then Closed forever.
    drop(txs);
    m.closed = true;
    prop_assert!(rx.is_closed());
    let rest: Vec<u16> = rx.try_iter().collect();
    prop_assert_eq!(rest, m.q.drain(..).collect::<Vec<_>>());
    prop_assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    prop_assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Closed)
    );
    prop_assert_eq!(rx.recv(), Err(RecvError));
    prop_assert_eq!(rx.recv_many(&mut Vec::new(), 4), Err(RecvError));
    prop_assert_eq!(rx.len(), 0);
    prop_assert_eq!(rx.dropped(), m.dropped);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mpsc_matches_the_vecdeque_model(
        (cap, policy) in config(),
        ops in prop::collection::vec(op(), 0..80),
    ) {
        run(cap, policy, ops)?;
    }
}
