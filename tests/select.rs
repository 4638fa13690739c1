//! Integration tests for `select!`, `select_biased!`, `Select` and the
//! timer channels (public API only).

use rillet::select::{after, never, tick, SelectTimeoutError, TrySelectError};
use rillet::{
    broadcast, mpsc, select, select_biased, spsc, Overflow, RecvError, Select, SendError,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/scale.rs"]
mod scale;
use scale::n;

/// A send value whose evaluation panics.
fn boom() -> u32 {
    panic!("the value panics")
}

/// Long enough that a thread started before it has almost surely parked.
fn settle() {
    thread::sleep(Duration::from_millis(if cfg!(miri) { 200 } else { 30 }));
}

#[test]
fn recv_takes_the_ready_case() {
    let (tx1, rx1) = spsc::channel::<i32>(2);
    let (tx2, rx2) = mpsc::channel::<i32>(2);
    tx2.send(7).unwrap();
    let got = select! {
        recv(rx1) -> m => panic!("rx1 is empty: {m:?}"),
        recv(rx2) -> m => m,
    };
    assert_eq!(got, Ok(7));
    drop(tx1);
}

#[test]
fn default_runs_when_nothing_is_ready() {
    let (_tx, rx) = mpsc::channel::<i32>(1);
    let ran = select! {
        recv(rx) -> _ => panic!("empty"),
        default => true,
    };
    assert!(ran);
}

#[test]
fn default_with_timeout_waits_then_runs() {
    let (_tx, rx) = spsc::channel::<i32>(1);
    let start = Instant::now();
    let r = select! {
        recv(rx) -> _ => 1,
        default(Duration::from_millis(20)) => 2,
    };
    assert_eq!(r, 2);
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn default_with_timeout_returns_a_case_that_becomes_ready() {
    let (tx, rx) = mpsc::channel::<i32>(1);
    let h = thread::spawn(move || {
        settle();
        tx.send(5).unwrap();
    });
    let r = select! {
        recv(rx) -> m => m.unwrap(),
        default(Duration::from_secs(30)) => panic!("the send came"),
    };
    assert_eq!(r, 5);
    h.join().unwrap();
}

#[test]
fn a_parked_selector_is_woken_by_a_send_on_any_case() {
    for which in 0..3 {
        let (tx_a, rx_a) = spsc::channel::<u32>(1);
        let (tx_b, rx_b) = mpsc::channel::<u32>(1);
        let (tx_c, rx_c) = broadcast::channel::<u32>(1);
        let h = thread::spawn(move || {
            select! {
                recv(rx_a) -> m => (0, m.unwrap()),
                recv(rx_b) -> m => (1, m.unwrap()),
                recv(rx_c) -> m => (2, m.unwrap()),
            }
        });
        settle();
        match which {
            0 => tx_a.send(10).unwrap(),
            1 => tx_b.send(11).unwrap(),
            _ => tx_c.send(12).unwrap(),
        }
        assert_eq!(h.join().unwrap(), (which, 10 + which));
    }
}

#[test]
fn close_wakes_a_parked_selector() {
    // Each kind, closed by dropping the sender, by `close()` and by the
    // receiver side for a send case.
    let (tx, rx) = spsc::channel::<u8>(1);
    let (_tx2, rx2) = mpsc::channel::<u8>(1);
    let h = thread::spawn(move || {
        select! {
            recv(rx) -> m => m,
            recv(rx2) -> _ => panic!("nothing sent"),
        }
    });
    settle();
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));

    let (tx, rx) = mpsc::channel::<u8>(1);
    let tx2 = tx.clone();
    let h = thread::spawn(move || select! { recv(rx) -> m => m });
    settle();
    assert!(tx.close());
    assert_eq!(h.join().unwrap(), Err(RecvError));
    drop(tx2);

    let (tx, rx) = broadcast::channel::<u8>(1);
    let h = thread::spawn(move || select! { recv(rx) -> m => m });
    settle();
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(broadcast::RecvError::Closed));

    // A send case on a full channel, closed by the receiver.
    let (tx, rx) = mpsc::channel::<u8>(1);
    tx.send(1).unwrap();
    let h = thread::spawn(move || select! { send(tx, 2) -> r => r });
    settle();
    drop(rx);
    assert_eq!(h.join().unwrap(), Err(SendError(2)));

    // Rendezvous: a selecting receiver, then the last sender goes.
    let (tx, rx) = mpsc::channel::<u8>(0);
    let h = thread::spawn(move || select! { recv(rx) -> m => m });
    settle();
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));

    // Rendezvous: a selecting sender (waiting on its offer alone, with no
    // queue), then the receiver goes.
    let (tx, rx) = mpsc::channel::<u8>(0);
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>(1);
    let dropper = thread::spawn(move || {
        waiting_rx.recv().unwrap();
        settle();
        drop(rx);
    });
    let got = within_a_minute("a send case closed by the receiver", move || {
        waiting_tx.send(()).unwrap();
        select! { send(tx, 3) -> r => r }
    });
    assert_eq!(got, Err(SendError(3)));
    dropper.join().unwrap();
}

#[test]
fn a_closed_channel_is_ready() {
    let (tx, rx) = spsc::channel::<u8>(1);
    drop(rx);
    let r = select! {
        send(tx, 3) -> r => r,
        default => panic!("a closed channel is ready"),
    };
    assert_eq!(r, Err(SendError(3)));
}

/// `trials` selects (the dynamic `Select`) over the receivers of `chans`:
/// how often each case won.
fn select_wins(chans: &[(mpsc::Sender<u8>, mpsc::Receiver<u8>)], trials: usize) -> Vec<usize> {
    let mut counts = vec![0usize; chans.len()];
    for _ in 0..trials {
        let mut sel = Select::new();
        for (_, rx) in chans {
            sel.recv(rx);
        }
        let op = sel.select();
        let i = op.index();
        op.recv(&chans[i].1).unwrap();
        counts[i] += 1;
    }
    counts
}

#[test]
fn fairness_among_ready_cases() {
    // Go's TestSelectFairness: every ready case should win about equally
    // often; 4.5 standard deviations is a false alarm about once in 10^5.
    const CASES: usize = 4;
    let trials = if cfg!(miri) { 0 } else { 20_000 };
    let chans: Vec<_> = (0..CASES)
        .map(|_| mpsc::channel::<u8>(trials + 1))
        .collect();
    for (tx, _) in &chans {
        for _ in 0..trials {
            tx.send(0).unwrap();
        }
    }
    let counts = select_wins(&chans, trials);
    // And the macro, over the same channels.
    let mut macro_counts = vec![0usize; CASES];
    for _ in 0..trials / 2 {
        let i = select! {
            recv(chans[0].1) -> _ => 0,
            recv(chans[1].1) -> _ => 1,
            recv(chans[2].1) -> _ => 2,
            recv(chans[3].1) -> _ => 3,
        };
        macro_counts[i] += 1;
    }
    for (counts, n) in [(counts, trials), (macro_counts, trials / 2)] {
        if n == 0 {
            continue;
        }
        let p = 1.0 / CASES as f64;
        let sigma = (p * (1.0 - p) / n as f64).sqrt();
        for &c in &counts {
            let r = c as f64 / n as f64;
            assert!(
                (r - p).abs() <= 4.5 * sigma,
                "unfair select: {counts:?} over {n} trials"
            );
        }
    }
}

/// Fair also when only some cases are ready, wherever they sit (a select
/// that started at a random case and took the first ready one after it
/// would favour a ready case that follows a run of empty ones), for each
/// way the choice is made: two cases, up to 16, up to 64, and more.
#[test]
fn fairness_among_ready_cases_between_empty_ones() {
    let trials = if cfg!(miri) { 0 } else { 12_000 };
    for (cases, ready) in [
        (2, vec![0, 1]),
        (3, vec![0, 2]),
        (6, vec![1, 2, 5]),
        (16, vec![0, 9, 10, 15]),
        (40, vec![3, 4, 30, 39]),
        (80, vec![0, 70, 71]),
    ] {
        let chans: Vec<_> = (0..cases)
            .map(|_| mpsc::channel::<u8>(trials + 1))
            .collect();
        for &i in &ready {
            for _ in 0..trials {
                chans[i].0.send(0).unwrap();
            }
        }
        let counts = select_wins(&chans, trials);
        if trials == 0 {
            continue;
        }
        let p = 1.0 / ready.len() as f64;
        let sigma = (p * (1.0 - p) / trials as f64).sqrt();
        for (i, &c) in counts.iter().enumerate() {
            if !ready.contains(&i) {
                assert_eq!(c, 0, "case {i} was not ready");
                continue;
            }
            let r = c as f64 / trials as f64;
            assert!(
                (r - p).abs() <= 4.5 * sigma,
                "unfair select over {cases} cases, ready {ready:?}: {counts:?}"
            );
        }
    }
}

#[test]
fn biased_takes_the_first_ready_case() {
    let (tx1, rx1) = mpsc::channel::<u8>(4);
    let (tx2, rx2) = mpsc::channel::<u8>(4);
    for _ in 0..3 {
        tx1.send(1).unwrap();
        tx2.send(2).unwrap();
    }
    for _ in 0..3 {
        let got = select_biased! {
            recv(rx2) -> m => m.unwrap(),
            recv(rx1) -> m => m.unwrap(),
        };
        assert_eq!(got, 2);
    }
    let got = select_biased! {
        recv(rx2) -> m => m.unwrap(),
        recv(rx1) -> m => m.unwrap(),
    };
    assert_eq!(got, 1);
}

#[test]
fn the_same_channel_in_two_cases() {
    let (tx, rx) = mpsc::channel::<u8>(64);
    for i in 0..n(40) as u8 {
        tx.send(i).unwrap();
    }
    let mut seen = [0; 2];
    for i in 0..n(40) as u8 {
        let (case, m) = select! {
            recv(rx) -> m => (0, m),
            recv(rx) -> m => (1, m),
        };
        assert_eq!(m, Ok(i));
        seen[case] += 1;
    }
    if !cfg!(miri) {
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }
    // A parked select with one channel twice is woken once and returns.
    let h = thread::spawn(move || {
        select! {
            recv(rx) -> m => m,
            recv(rx) -> m => m,
        }
    });
    settle();
    tx.send(99).unwrap();
    assert_eq!(h.join().unwrap(), Ok(99));
}

#[test]
fn send_and_recv_on_one_channel() {
    let (tx, rx) = spsc::channel::<u8>(1);
    // Empty: only the send is ready.
    let r = select! {
        send(tx, 1) -> r => { r.unwrap(); "sent" },
        recv(rx) -> _ => "received",
    };
    assert_eq!(r, "sent");
    // Full: only the receive is ready.
    let r = select! {
        send(tx, 2) -> _ => "sent",
        recv(rx) -> m => { assert_eq!(m, Ok(1)); "received" },
    };
    assert_eq!(r, "received");
}

#[test]
fn a_send_value_is_evaluated_only_for_the_winner() {
    let (tx1, rx1) = mpsc::channel::<String>(1);
    let (tx2, _rx2) = mpsc::channel::<String>(1);
    tx2.send("full".into()).unwrap(); // tx2 is not ready
    let mut evaluated = Vec::new();
    let mut value = |s: &str| {
        evaluated.push(s.to_string());
        s.to_string()
    };
    select! {
        send(tx1, value("one")) -> r => r.unwrap(),
        send(tx2, value("two")) -> _ => panic!("tx2 is full"),
    }
    assert_eq!(evaluated, ["one"]);
    assert_eq!(rx1.recv().unwrap(), "one");
}

#[test]
fn a_panicking_send_value_leaves_the_channel_usable() {
    for cap in [0, 1, 4] {
        let (tx, rx) = mpsc::channel::<u32>(cap);
        // The receiver waits on its own thread (a rendezvous needs it).
        let h = thread::spawn(move || (rx.recv(), rx.recv(), rx));
        settle();
        let r = catch_unwind(AssertUnwindSafe(|| {
            select! {
                send(tx, boom()) -> _ => {},
            }
        }));
        assert!(r.is_err());
        // The channel takes and delivers the next messages normally.
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let (a, b, _rx) = h.join().unwrap();
        assert_eq!((a, b), (Ok(1), Ok(2)), "cap {cap}");
    }
    // Also on spsc and broadcast, checked through their receivers.
    let (tx, rx) = spsc::channel::<u32>(2);
    let r = catch_unwind(AssertUnwindSafe(|| {
        select! { send(tx, boom()) -> _ => {} }
    }));
    assert!(r.is_err());
    tx.send(3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [3]);
    let (tx, rx) = broadcast::channel::<u32>(2);
    let r = catch_unwind(AssertUnwindSafe(|| {
        select! { send(tx, boom()) -> _ => {} }
    }));
    assert!(r.is_err());
    tx.send(4).unwrap();
    assert_eq!(rx.try_recv(), Ok(4));
}

#[test]
fn broadcast_lag_is_the_case_result() {
    let (tx, rx) = broadcast::Builder::new(2)
        .overflow(Overflow::DropOldest)
        .build::<u32>();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    let r = select! { recv(rx) -> m => m };
    assert_eq!(r, Err(broadcast::RecvError::Lagged(3)));
    let r = select! { recv(rx) -> m => m };
    assert_eq!(r, Ok(3));
}

#[test]
fn dropping_policies_make_a_full_send_case_ready() {
    for policy in [Overflow::DropNewest, Overflow::DropOldest] {
        let (tx, rx) = mpsc::Builder::new(1).overflow(policy).build::<u32>();
        tx.send(1).unwrap();
        let r = select! {
            send(tx, 2) -> r => r,
            default => panic!("a dropping channel is always ready to send"),
        };
        assert_eq!(r, Ok(()));
        assert_eq!(tx.dropped(), 1);
        assert_eq!(
            rx.try_recv(),
            Ok(if policy == Overflow::DropNewest { 1 } else { 2 })
        );
    }
}

#[test]
fn rendezvous_selecting_receiver_meets_a_blocking_sender() {
    let (tx, rx) = mpsc::channel::<u32>(0);
    let h = thread::spawn(move || {
        for i in 0..n(50) as u32 {
            tx.send(i).unwrap();
        }
    });
    let never = never();
    for i in 0..n(50) as u32 {
        let m = select! {
            recv(rx) -> m => m.unwrap(),
            recv(never) -> _ => unreachable!(),
        };
        assert_eq!(m, i);
    }
    h.join().unwrap();
}

/// A rendezvous `send_many` whose batch waits in one packet: a selecting
/// receiver sees the channel ready and takes the batch's messages one by
/// one, in order, beside a `try_recv` and a `recv_timeout`; `send_many`
/// returns once the last is taken.
#[test]
fn rendezvous_selecting_receiver_takes_a_send_many_batch() {
    let total = n(200) as u32;
    let (tx, rx) = mpsc::channel::<u32>(0);
    let h = thread::spawn(move || {
        let mut i = 0;
        while i < total {
            let next = (i + 1 + i % 90).min(total);
            assert_eq!(tx.send_many(i..next), Ok((next - i) as usize));
            i = next;
        }
    });
    let never = never();
    let mut got = Vec::new();
    while got.len() < total as usize {
        match got.len() % 3 {
            0 => got.push(select! {
                recv(rx) -> m => m.unwrap(),
                recv(never) -> _ => unreachable!(),
            }),
            1 => {
                if let Ok(m) = rx.try_recv() {
                    got.push(m);
                }
            }
            _ => {
                if let Ok(m) = rx.recv_timeout(Duration::from_millis(1)) {
                    got.push(m);
                }
            }
        }
    }
    assert_eq!(got, (0..total).collect::<Vec<_>>());
    h.join().unwrap();
    assert!(rx.recv().is_err());
}

#[test]
fn rendezvous_selecting_sender_meets_a_blocking_receiver() {
    let (tx, rx) = mpsc::channel::<u32>(0);
    let h = thread::spawn(move || (0..n(50)).map(|_| rx.recv().unwrap()).collect::<Vec<_>>());
    let (other_tx, _other_rx) = mpsc::channel::<u32>(1);
    other_tx.send(0).unwrap(); // full: never ready
    for i in 0..n(50) as u32 {
        select! {
            send(tx, i) -> r => r.unwrap(),
            send(other_tx, i) -> _ => unreachable!(),
        }
    }
    assert_eq!(h.join().unwrap(), (0..n(50) as u32).collect::<Vec<_>>());
}

/// Runs `f` on a thread and fails (instead of hanging) if it does not end
/// within a minute.
fn within_a_minute<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done_tx, done_rx) = mpsc::channel(1);
    let h = thread::spawn(move || {
        let r = f();
        done_tx.send(()).unwrap();
        r
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what}: still waiting after a minute"));
    h.join().unwrap()
}

#[test]
fn rendezvous_selecting_sender_meets_a_receiver_that_always_has_another_case() {
    // The receiver's select never waits (a closed channel is always ready),
    // so it never offers: only the selecting sender's own offer makes its
    // rendezvous case ready, as in Go.
    let (tx, rx) = mpsc::channel::<u32>(0);
    let (closed_tx, closed_rx) = mpsc::channel::<u32>(1);
    drop(closed_tx);
    let sender = thread::spawn(move || {
        select! {
            send(tx, 7) -> r => r.unwrap(),
        }
    });
    let got = within_a_minute("the receiver", move || {
        for _ in 0..10_000_000u64 {
            select! {
                recv(closed_rx) -> m => assert_eq!(m, Err(RecvError)),
                recv(rx) -> m => return Some(m.unwrap()),
            }
        }
        None
    });
    assert_eq!(got, Some(7), "the selecting sender was never met");
    sender.join().unwrap();
}

#[test]
fn try_recv_meets_a_selecting_sender() {
    let (tx, rx) = mpsc::channel::<u32>(0);
    let sender = thread::spawn(move || {
        for i in 0..n(20) as u32 {
            select! {
                send(tx, i) -> r => r.unwrap(),
            }
        }
    });
    let got = within_a_minute("try_recv", move || {
        let mut got = Vec::new();
        while got.len() < n(20) {
            match rx.try_recv() {
                Ok(m) => got.push(m),
                Err(rillet::TryRecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        got
    });
    assert_eq!(got, (0..n(20) as u32).collect::<Vec<_>>());
    sender.join().unwrap();
}

#[test]
fn a_claimed_send_whose_value_panics_releases_the_receiver() {
    // The receiver polls with try_recv, which never offers: the sender's
    // select can only win by being claimed, so the panic proves the claim.
    // The receiver, waiting for the claimed message, must be released and
    // then meet the sender's next, plain send.
    let (tx, rx) = mpsc::channel::<u32>(0);
    let sender = thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| {
            select! {
                send(tx, boom()) -> _ => unreachable!("the value panicked"),
            }
        }));
        assert!(
            r.is_err(),
            "the send case was selected and its value panicked"
        );
        tx.send(5).unwrap();
    });
    let got = within_a_minute("the receiver", move || loop {
        match rx.try_recv() {
            Ok(m) => break m,
            Err(rillet::TryRecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(got, 5);
    sender.join().unwrap();
}

#[test]
fn a_dropped_selected_send_releases_the_receiver() {
    let (tx, rx) = mpsc::channel::<u32>(0);
    let sender = thread::spawn(move || {
        let mut sel = Select::new();
        sel.send(&tx);
        let op = sel.select(); // only a claim makes it ready
        drop(op);
        tx.send(6).unwrap();
    });
    let got = within_a_minute("the receiver", move || loop {
        match rx.try_recv() {
            Ok(m) => break m,
            Err(rillet::TryRecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(got, 6);
    sender.join().unwrap();
}

#[test]
fn a_select_on_both_ends_of_a_rendezvous_channel_does_not_meet_itself() {
    let (tx, rx) = mpsc::channel::<u32>(0);
    let r = within_a_minute("the select", move || {
        select! {
            send(tx, 1) -> r => Some(format!("send {r:?}")),
            recv(rx) -> m => Some(format!("recv {m:?}")),
            default(Duration::from_millis(50)) => None,
        }
    });
    assert_eq!(r, None, "one thread cannot meet itself");
}

/// Two selects, each sending on its own rendezvous channel and receiving
/// on the other's: in every round exactly one message crosses, whichever
/// way. Until 2026-12-06 a send case won on the receiver's offer alone:
/// both selects saw the other one waiting to receive, both chose their
/// send, and each then waited in a plain send for a receiver that was
/// itself sending (found by an independent test, on two CPUs, within a
/// few hundred rounds; the selects' timeouts no longer applied).
fn exchange_over_two_rendezvous_channels(dynamic: bool) {
    let rounds = n(20_000) as u64;
    let (a_tx, a_rx) = mpsc::channel::<u64>(0);
    let (b_tx, b_rx) = mpsc::channel::<u64>(0);
    // Each side counts what it sent and what it received.
    let side = move |tx: mpsc::Sender<u64>, rx: mpsc::Receiver<u64>| {
        move || {
            let (mut sent, mut got) = (0u64, 0u64);
            for i in 0..rounds {
                if dynamic {
                    let mut sel = Select::new();
                    let s = sel.send(&tx);
                    let r = sel.recv(&rx);
                    let op = sel
                        .select_timeout(Duration::from_secs(10))
                        .expect("the other side is there");
                    if op.index() == s {
                        op.send(&tx, i).unwrap();
                        sent += 1;
                    } else {
                        assert_eq!(op.index(), r);
                        op.recv(&rx).unwrap();
                        got += 1;
                    }
                } else {
                    select! {
                        send(tx, i) -> r => { r.unwrap(); sent += 1; }
                        recv(rx) -> m => { m.unwrap(); got += 1; }
                        default(Duration::from_secs(10)) => panic!("the other side is there"),
                    }
                }
            }
            (sent, got)
        }
    };
    let a = thread::spawn(side(a_tx, b_rx));
    let (a_sent, a_got) = within_a_minute("the exchange", side(b_tx, a_rx));
    let (b_sent, b_got) = a.join().unwrap();
    assert_eq!((a_sent, a_got), (b_got, b_sent));
    assert_eq!(a_sent + a_got, rounds);
}

#[test]
fn two_selects_exchange_over_two_rendezvous_channels() {
    exchange_over_two_rendezvous_channels(false);
}

#[test]
fn two_dynamic_selects_exchange_over_two_rendezvous_channels() {
    exchange_over_two_rendezvous_channels(true);
}

#[test]
fn a_claimed_sender_meets_close() {
    // The receiver (try_recv) claims the selecting sender; while the
    // sender evaluates its value, another sender closes the channel: the
    // selected send fails with its value and the waiting receiver sees
    // the close.
    let (tx, rx) = mpsc::channel::<u32>(0);
    let closer = tx.clone();
    let (claimed_tx, claimed_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        select! {
            send(tx, {
                claimed_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                3
            }) -> r => r,
        }
    });
    let receiver = thread::spawn(move || loop {
        match rx.try_recv() {
            Err(rillet::TryRecvError::Empty) => thread::yield_now(),
            other => break other,
        }
    });
    claimed_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sender was claimed");
    assert!(closer.close());
    go_tx.send(()).unwrap();
    assert_eq!(sender.join().unwrap(), Err(SendError(3)));
    assert_eq!(receiver.join().unwrap(), Err(rillet::TryRecvError::Closed));
}

#[test]
fn after_fires_once() {
    let start = Instant::now();
    let t = after(Duration::from_millis(10));
    let (_tx, rx) = mpsc::channel::<u8>(1);
    let at = select! {
        recv(rx) -> _ => panic!("nothing sent"),
        recv(t) -> at => at.unwrap(),
    };
    assert!(at >= start + Duration::from_millis(10));
    assert!(Instant::now() >= at);
    // Fired: never ready again.
    let r = select! {
        recv(t) -> _ => "fired twice",
        default(Duration::from_millis(20)) => "quiet",
    };
    assert_eq!(r, "quiet");
}

#[test]
fn tick_fires_repeatedly_and_keeps_its_phase() {
    let period = Duration::from_millis(5);
    let start = Instant::now();
    let t = tick(period);
    let mut last = start;
    let mut first = None;
    for k in 1..=3u32 {
        let at = select! { recv(t) -> at => at.unwrap() };
        let first = *first.get_or_insert(at);
        // Exactly on the period grid of the first tick.
        assert_eq!((at - first).as_nanos() % period.as_nanos(), 0);
        assert!(at > last);
        // Fires at multiples of the period from the start.
        let since = at - start;
        assert!(since >= period * k, "{since:?} < {:?}", period * k);
        last = at;
    }
    // A slow receiver: missed ticks are dropped, one is due now.
    thread::sleep(period * 4);
    let before = Instant::now();
    let at = t.recv().unwrap();
    assert!(at <= before);
    let next = t.recv().unwrap();
    assert!(next > before);
    // Still on the grid: the missed ticks were skipped, not shifted.
    let first = first.unwrap();
    assert_eq!((next - first).as_nanos() % period.as_nanos(), 0);
    assert_eq!((at - first).as_nanos() % period.as_nanos(), 0);
}

#[test]
#[should_panic(expected = "period of zero")]
fn tick_of_zero_panics() {
    let _ = tick(Duration::ZERO);
}

#[test]
fn dynamic_select_api() {
    let (tx1, rx1) = mpsc::channel::<u32>(1);
    let (tx2, rx2) = spsc::channel::<u32>(1);
    let mut sel = Select::new();
    let a = sel.recv(&rx1);
    let b = sel.recv(&rx2);
    assert_eq!((a, b), (0, 1));
    assert_eq!(sel.try_select().unwrap_err(), TrySelectError);
    assert_eq!(sel.try_ready(), Err(TrySelectError));
    assert_eq!(
        sel.select_timeout(Duration::from_millis(1)).unwrap_err(),
        SelectTimeoutError
    );
    assert_eq!(
        sel.ready_timeout(Duration::from_millis(1)),
        Err(SelectTimeoutError)
    );
    tx2.send(8).unwrap();
    assert_eq!(sel.ready(), b);
    let op = sel
        .select_deadline(Instant::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(op.index(), b);
    assert_eq!(op.recv(&rx2), Ok(8));
    // Send cases.
    let mut sel = Select::new();
    let s = sel.send(&tx1);
    let op = sel.select();
    assert_eq!(op.index(), s);
    op.send(&tx1, 4).unwrap();
    assert_eq!(rx1.recv(), Ok(4));
    // remove
    tx2.send(1).unwrap();
    let mut sel = Select::new();
    let a = sel.recv(&rx1);
    let b = sel.recv(&rx2);
    sel.remove(b);
    assert!(sel.try_ready().is_err());
    let _ = a;
}

#[test]
#[should_panic(expected = "not the one of the selected case")]
fn completing_with_another_handle_panics() {
    let (tx1, rx1) = mpsc::channel::<u32>(1);
    let (_tx2, rx2) = mpsc::channel::<u32>(1);
    tx1.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx1);
    sel.recv(&rx2);
    let op = sel.select();
    let _ = op.recv(&rx2);
}

#[test]
#[should_panic(expected = "no case")]
fn select_with_no_case_panics() {
    let _ = Select::new().select();
}

#[test]
#[should_panic(expected = "removed already")]
fn removing_twice_panics() {
    let (_tx, rx) = mpsc::channel::<u32>(1);
    let mut sel = Select::new();
    let i = sel.recv(&rx);
    sel.remove(i);
    sel.remove(i);
}

#[test]
fn bodies_can_break_and_return() {
    fn first_even(rx: &mpsc::Receiver<u32>) -> Option<u32> {
        loop {
            select! {
                recv(rx) -> m => match m {
                    Ok(v) if v % 2 == 0 => return Some(v),
                    Ok(_) => continue,
                    Err(_) => break,
                },
            }
        }
        None
    }
    let (tx, rx) = mpsc::channel(8);
    tx.send_many([1, 3, 4, 5]).unwrap();
    assert_eq!(first_even(&rx), Some(4));
    drop(tx);
    assert_eq!(first_even(&rx), None);
}

/// Issue: a waiter woken for case A that completes case B must pass A's
/// wake-up on. A selector parked on (recv B, send A) is the first waiter of
/// a full channel A; a plain sender parks on A after it. One receive frees
/// a slot in A (waking the selector), and B gets a message at once; the
/// biased selector takes B. Without the pass-on the plain sender would
/// sleep forever beside a free slot.
#[test]
fn a_select_that_completes_elsewhere_passes_the_wake_up_on() {
    for _ in 0..n(20) {
        let (tx_a, rx_a) = mpsc::channel::<u32>(1);
        let (tx_b, rx_b) = mpsc::channel::<u32>(1);
        tx_a.send(0).unwrap();
        let sel_tx = tx_a.clone();
        let selector = thread::spawn(move || {
            select_biased! {
                recv(rx_b) -> m => { m.unwrap(); "b" },
                send(sel_tx, 1) -> r => { r.unwrap(); "a" },
            }
        });
        settle();
        let plain_tx = tx_a.clone();
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let plain = thread::spawn(move || {
            plain_tx.send(2).unwrap();
            done2.store(true, Ordering::SeqCst);
        });
        settle();
        assert_eq!(rx_a.recv(), Ok(0));
        // (Fails if the selector already took A and left.)
        let _ = tx_b.send(9);
        // Whatever the selector took, the plain sender completes: A has
        // room for it (a hang here is the bug). One receive comes before
        // the join: a selector that chose send(A) but lost the room to the
        // plain sender waits for room (nothing is reserved).
        let mut got = vec![rx_a.recv().unwrap()];
        let took = selector.join().unwrap();
        if took == "a" {
            got.push(rx_a.recv().unwrap());
        }
        plain.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        got.sort();
        assert_eq!(got, if took == "a" { vec![1, 2] } else { vec![2] });
    }
}

/// Mixed plain and select senders and receivers over capacities 0, 1 and
/// N, with checksums: every message arrives exactly once.
#[test]
fn stress_mixed_plain_and_select() {
    let per_sender = n(20_000) as u64;
    for cap in [0usize, 1, 16] {
        let (tx1, rx1) = mpsc::channel::<u64>(cap);
        let (tx2, rx2) = mpsc::channel::<u64>(cap);
        let (stx, srx) = spsc::channel::<u64>(cap.max(1));
        let sum = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        // Two plain senders, two selecting senders.
        for s in 0..2u64 {
            let (tx1, tx2) = (tx1.clone(), tx2.clone());
            senders.push(thread::spawn(move || {
                for i in 0..per_sender {
                    let v = (s << 40) | i;
                    if i % 2 == 0 {
                        tx1.send(v).unwrap();
                    } else {
                        tx2.send(v).unwrap();
                    }
                }
            }));
        }
        for s in 2..4u64 {
            let (tx1, tx2) = (tx1.clone(), tx2.clone());
            senders.push(thread::spawn(move || {
                for i in 0..per_sender {
                    let v = (s << 40) | i;
                    select! {
                        send(tx1, v) -> r => r.unwrap(),
                        send(tx2, v) -> r => r.unwrap(),
                    }
                }
            }));
        }
        // The spsc sender feeds the same receiving loop through select.
        let spsc_sender = thread::spawn(move || {
            for i in 0..per_sender {
                let v = (4 << 40) | i;
                select! { send(stx, v) -> r => r.unwrap() }
            }
        });
        drop((tx1, tx2));
        let (s2, c2) = (sum.clone(), count.clone());
        let receiver = thread::spawn(move || {
            // A dynamic select, so that a closed case can be removed (a
            // closed channel is always ready).
            let mut sel = Select::new();
            let cases = [sel.recv(&rx1), sel.recv(&rx2), sel.recv(&srx)];
            let mut open = 3;
            let mut total = 0u64;
            let mut n = 0u64;
            while open > 0 {
                let op = sel.select();
                let i = op.index();
                let m = if i == cases[0] {
                    op.recv(&rx1).ok()
                } else if i == cases[1] {
                    op.recv(&rx2).ok()
                } else {
                    op.recv(&srx).ok()
                };
                match m {
                    Some(v) => {
                        total = total.wrapping_add(v);
                        n += 1;
                    }
                    None => {
                        sel.remove(i);
                        open -= 1;
                    }
                }
                // Mix plain receives in now and then.
                if n % 7 == 0 {
                    if let Ok(v) = rx1.try_recv() {
                        total = total.wrapping_add(v);
                        n += 1;
                    }
                }
            }
            s2.store(total, Ordering::SeqCst);
            c2.store(n, Ordering::SeqCst);
        });
        for h in senders {
            h.join().unwrap();
        }
        spsc_sender.join().unwrap();
        receiver.join().unwrap();
        let mut expect = 0u64;
        for s in 0..5u64 {
            for i in 0..per_sender {
                expect = expect.wrapping_add((s << 40) | i);
            }
        }
        assert_eq!(count.load(Ordering::SeqCst), 5 * per_sender, "cap {cap}");
        assert_eq!(sum.load(Ordering::SeqCst), expect, "cap {cap}");
    }
}

#[test]
fn a_select_on_one_cpu_makes_progress() {
    // Busy channels and many threads: the wait yields and parks rather
    // than spinning out the thread it waits for (run the suite under
    // `taskset -c 0` to exercise the one-CPU path).
    let (tx1, rx1) = mpsc::channel::<u32>(1);
    let (tx2, rx2) = mpsc::channel::<u32>(1);
    let producers: Vec<_> = [tx1, tx2]
        .into_iter()
        .map(|tx| {
            thread::spawn(move || {
                for i in 0..n(5_000) as u32 {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    let mut got = 0;
    let mut open = [true, true];
    while open[0] || open[1] {
        select! {
            recv(rx1) -> m => if m.is_ok() { got += 1 } else { open[0] = false },
            recv(rx2) -> m => if m.is_ok() { got += 1 } else { open[1] = false },
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(got, 2 * n(5_000));
}
