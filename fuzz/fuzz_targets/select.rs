//! Model-based fuzz target for `Select` and `select_biased!`: three
//! channels (spsc, mpsc and broadcast, small capacities) with a `VecDeque`
//! model each; arbitrary sends, closes and selects over any subset of the
//! six cases (a receive and a send per channel). Every select must pick a
//! case that the model says is ready (the first ready one when biased),
//! report "nothing ready" exactly when none is, and its completion must
//! give what the model predicts.
//!
//! Run: `cargo +nightly fuzz run select -- -max_total_time=30`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::{broadcast, mpsc, select_biased, spsc, Select};
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum Op {
    Send(u8, u16),
    Close(u8),
    /// A fair `Select::try_select` over the cases in the mask (bits 0-2:
    /// receive on channel 0-2; bits 3-5: send on channel 0-2).
    TrySelect(u8, u16),
    /// The same, biased.
    Biased(u8, u16),
    /// `select_biased!` with `default` over all six cases.
    Macro(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    caps: [u8; 3],
    ops: Vec<Op>,
}

struct Model {
    q: VecDeque<u16>,
    cap: usize,
    closed: bool,
}

impl Model {
    fn recv_ready(&self) -> bool {
        !self.q.is_empty() || self.closed
    }
    fn send_ready(&self) -> bool {
        self.closed || self.q.len() < self.cap
    }
    fn ready(&self, case: usize) -> bool {
        if case < 3 {
            self.recv_ready()
        } else {
            self.send_ready()
        }
    }
    /// The outcome of a receive: the message, or `None` when closed.
    fn recv(&mut self) -> Option<u16> {
        let m = self.q.pop_front();
        assert!(
            m.is_some() || self.closed,
            "recv on a model that was not ready"
        );
        m
    }
    /// The outcome of a send: `true` if it went in.
    fn send(&mut self, v: u16) -> bool {
        if self.closed {
            return false;
        }
        assert!(self.q.len() < self.cap);
        self.q.push_back(v);
        true
    }
}

struct Chans {
    s: (spsc::Sender<u16>, spsc::Receiver<u16>),
    m: (mpsc::Sender<u16>, mpsc::Receiver<u16>),
    b: (broadcast::Sender<u16>, broadcast::Receiver<u16>),
}

impl Chans {
    fn recv(&self, k: usize) -> Option<u16> {
        match k {
            0 => self.s.1.recv().ok(),
            1 => self.m.1.recv().ok(),
            _ => self.b.1.recv().ok(),
        }
    }
    fn send(&self, k: usize, v: u16) -> bool {
        match k {
            0 => self.s.0.send(v).is_ok(),
            1 => self.m.0.send(v).is_ok(),
            _ => self.b.0.send(v).is_ok(),
        }
    }
}

/// Completes `case` on the channels and the model; they must agree.
fn complete(c: &Chans, models: &mut [Model; 3], case: usize, v: u16) {
    if case < 3 {
        assert_eq!(c.recv(case), models[case].recv(), "recv on {case}");
    } else {
        let k = case - 3;
        assert_eq!(c.send(k, v), models[k].send(v), "send on {k}");
    }
}

fn select_over(c: &Chans, models: &mut [Model; 3], mask: u8, v: u16, biased: bool) {
    let mut sel = if biased {
        Select::new_biased()
    } else {
        Select::new()
    };
    let mut cases = Vec::new();
    for case in 0..6 {
        if mask & (1 << case) != 0 {
            let i = match case {
                0 => sel.recv(&c.s.1),
                1 => sel.recv(&c.m.1),
                2 => sel.recv(&c.b.1),
                3 => sel.send(&c.s.0),
                4 => sel.send(&c.m.0),
                _ => sel.send(&c.b.0),
            };
            assert_eq!(i, cases.len());
            cases.push(case);
        }
    }
    let ready: Vec<usize> = cases
        .iter()
        .copied()
        .filter(|&case| models[case % 3].ready(case))
        .collect();
    match sel.try_select() {
        Err(_) => assert!(ready.is_empty(), "nothing selected, model ready: {ready:?}"),
        Ok(op) => {
            let case = cases[op.index()];
            assert!(ready.contains(&case), "case {case} not ready in {ready:?}");
            if biased {
                assert_eq!(case, ready[0], "biased took a later case");
            }
            match case {
                0 => assert_eq!(op.recv(&c.s.1).ok(), models[0].recv()),
                1 => assert_eq!(op.recv(&c.m.1).ok(), models[1].recv()),
                2 => assert_eq!(op.recv(&c.b.1).ok(), models[2].recv()),
                3 => assert_eq!(op.send(&c.s.0, v).is_ok(), models[0].send(v)),
                4 => assert_eq!(op.send(&c.m.0, v).is_ok(), models[1].send(v)),
                _ => assert_eq!(op.send(&c.b.0, v).is_ok(), models[2].send(v)),
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let caps = input.caps.map(|c| usize::from(c % 4) + 1);
    let c = Chans {
        s: spsc::channel(caps[0]),
        m: mpsc::channel(caps[1]),
        b: broadcast::channel(caps[2]),
    };
    // A broadcast ring of capacity `cap` holds `cap` messages.
    let mut models = caps.map(|cap| Model {
        q: VecDeque::new(),
        cap,
        closed: false,
    });
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Send(k, v) => {
                let k = usize::from(k % 3);
                if models[k].send_ready() {
                    complete(&c, &mut models, 3 + k, v);
                }
            }
            Op::Close(k) => {
                let k = usize::from(k % 3);
                let closed = match k {
                    0 => c.s.0.close(),
                    1 => c.m.0.close(),
                    _ => c.b.0.close(),
                };
                assert_eq!(closed, !models[k].closed);
                models[k].closed = true;
            }
            Op::TrySelect(mask, v) => select_over(&c, &mut models, mask, v, false),
            Op::Biased(mask, v) => select_over(&c, &mut models, mask, v, true),
            Op::Macro(v) => {
                let ready: Vec<usize> = (0..6).filter(|&k| models[k % 3].ready(k)).collect();
                let (s, m, b) = (&c.s, &c.m, &c.b);
                let got = select_biased! {
                    recv(s.1) -> r => Some((0, r.ok(), true)),
                    recv(m.1) -> r => Some((1, r.ok(), true)),
                    recv(b.1) -> r => Some((2, r.ok(), true)),
                    send(s.0, v) -> r => Some((3, None, r.is_ok())),
                    send(m.0, v) -> r => Some((4, None, r.is_ok())),
                    send(b.0, v) -> r => Some((5, None, r.is_ok())),
                    default => None,
                };
                match got {
                    None => assert!(ready.is_empty()),
                    Some((case, received, sent)) => {
                        assert_eq!(case, ready[0]);
                        if case < 3 {
                            assert_eq!(received, models[case].recv());
                        } else {
                            assert_eq!(sent, models[case - 3].send(v));
                        }
                    }
                }
            }
        }
    }
});
