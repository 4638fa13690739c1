//! Model-based test: random operation sequences on one thread, every result
//! compared with a `VecDeque` that applies the overflow policy.

use proptest::prelude::*;
use rillet::{
    spsc, Overflow, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    TrySend(u16),
    SendZeroTimeout(u16),
    TryRecv,
    RecvZeroTimeout,
    SendMany(Vec<u16>),
    RecvMany(usize),
    CloseTx,
    CloseRx,
    CloseWith(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u16>().prop_map(Op::TrySend),
        2 => any::<u16>().prop_map(Op::SendZeroTimeout),
        5 => Just(Op::TryRecv),
        2 => Just(Op::RecvZeroTimeout),
        2 => prop::collection::vec(any::<u16>(), 0..12).prop_map(Op::SendMany),
        2 => (0usize..10).prop_map(Op::RecvMany),
        1 => Just(Op::CloseTx),
        1 => Just(Op::CloseRx),
        1 => any::<u16>().prop_map(Op::CloseWith),
    ]
}

fn policy() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Block),
        Just(Overflow::DropNewest),
        Just(Overflow::DropOldest)
    ]
}

struct Model {
    q: VecDeque<u16>,
    cap: usize,
    policy: Overflow,
    closed: bool,
    dropped: u64,
}

impl Model {
    fn full(&self) -> bool {
        self.q.len() == self.cap
    }

    /// Enqueue ignoring the close state; `Err(v)` only when full under Block.
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

fn run(cap: usize, policy: Overflow, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (tx, rx) = spsc::Builder::new(cap).overflow(policy).build::<u16>();
    let mut tx = Some(tx);
    let mut m = Model {
        q: VecDeque::new(),
        cap,
        policy,
        closed: false,
        dropped: 0,
    };
    for op in ops {
        match op {
            Op::TrySend(v) => {
                if let Some(tx) = &tx {
                    prop_assert_eq!(tx.try_send(v), m.try_send(v));
                }
            }
            Op::SendZeroTimeout(v) => {
                if let Some(tx) = &tx {
                    let want = match m.try_send(v) {
                        Ok(()) => Ok(()),
                        Err(TrySendError::Full(v)) => Err(SendTimeoutError::Timeout(v)),
                        Err(TrySendError::Closed(v)) => Err(SendTimeoutError::Closed(v)),
                    };
                    prop_assert_eq!(tx.send_timeout(v, Duration::ZERO), want);
                }
            }
            Op::TryRecv => prop_assert_eq!(rx.try_recv(), m.try_recv()),
            Op::RecvZeroTimeout => {
                let want = m.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Closed => RecvTimeoutError::Closed,
                });
                prop_assert_eq!(rx.recv_timeout(Duration::ZERO), want);
            }
            Op::SendMany(vs) => {
                let Some(tx) = &tx else { continue };
                if policy == Overflow::Block && !m.closed && m.q.len() + vs.len() > cap {
                    continue; // would block forever on one thread
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
                prop_assert_eq!(tx.send_many(vs), want);
            }
            Op::RecvMany(max) => {
                if max > 0 && m.q.is_empty() && !m.closed {
                    continue; // would block forever on one thread
                }
                let mut buf = vec![7u16];
                let want = if max == 0 {
                    Ok(0)
                } else if m.q.is_empty() {
                    Err(RecvError)
                } else {
                    let k = m.q.len().min(max);
                    Ok(k)
                };
                let expected: Vec<u16> = match want {
                    Ok(k) => std::iter::once(7).chain(m.q.drain(..k)).collect(),
                    Err(_) => vec![7],
                };
                prop_assert_eq!(rx.recv_many(&mut buf, max), want);
                prop_assert_eq!(buf, expected);
            }
            Op::CloseTx => {
                if let Some(tx) = &tx {
                    prop_assert_eq!(tx.close(), m.close());
                }
            }
            Op::CloseRx => prop_assert_eq!(rx.close(), m.close()),
            Op::CloseWith(v) => {
                let Some(sender) = tx.take() else { continue };
                if policy == Overflow::Block && !m.closed && m.full() {
                    tx = Some(sender);
                    continue; // would wait for room forever
                }
                let want = if m.closed {
                    Err(SendError(v))
                } else {
                    m.push_final(v).unwrap();
                    m.closed = true;
                    Ok(())
                };
                prop_assert_eq!(sender.close_with(v), want);
            }
        }
        prop_assert_eq!(rx.len(), m.q.len());
        prop_assert_eq!(rx.is_empty(), m.q.is_empty());
        prop_assert_eq!(rx.is_full(), m.full());
        prop_assert_eq!(rx.dropped(), m.dropped);
        prop_assert_eq!(rx.is_closed(), m.closed);
        if let Some(tx) = &tx {
            prop_assert_eq!(tx.len(), m.q.len());
            prop_assert_eq!(tx.is_closed(), m.closed);
        }
    }
    // Drain: what is left comes out in order, then Closed.
    drop(tx);
    m.closed = true;
    let rest: Vec<u16> = rx.try_iter().collect();
    prop_assert_eq!(rest, m.q.drain(..).collect::<Vec<_>>());
    prop_assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn spsc_matches_the_vecdeque_model(
        cap in 1usize..6,
        policy in policy(),
        ops in prop::collection::vec(op(), 0..80),
    ) {
        run(cap, policy, ops)?;
    }
}
