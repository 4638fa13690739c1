//! loom models of `select`: registration on several queues, the pass-on of
//! a wake-up, select racing a send and a close, two selectors on one
//! channel, and a selecting sender meeting a selecting receiver on a
//! rendezvous channel. On the real `rillet` code built with `--cfg loom`
//! (where the fair choice is deterministic: the first ready case).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test select`

#![cfg(loom)]

mod common;

use common::{model, model_bound_1};
use loom::thread;
use rillet::{mpsc, select, select_biased, spsc, RecvError, SendError};

/// A selector waits on two queues (recv on B, send on a full A). The
/// consumer frees a slot of A (a wake-up on A's send queue) and then sends
/// on B; a plain sender is also waiting for room in A. Whichever case the
/// selector completes, the plain sender must get A's room: if the selector
/// was woken through A and completed B, it passes A's wake-up on (without
/// the pass-on, loom reports the plain sender parked forever).
#[test]
fn woken_by_one_queue_completing_the_other_passes_the_wake_up_on() {
    model_bound_1(|| {
        let (tx_a, rx_a) = mpsc::channel::<u32>(1);
        let (tx_b, rx_b) = mpsc::channel::<u32>(1);
        tx_a.send(0).unwrap();
        let sel_tx = tx_a.clone();
        let selector = thread::spawn(move || {
            select_biased! {
                recv(rx_b) -> m => { m.unwrap(); false },
                send(sel_tx, 1) -> r => { r.unwrap(); true },
            }
        });
        let plain = thread::spawn(move || tx_a.send(2).unwrap());
        assert_eq!(rx_a.recv(), Ok(0));
        let _ = tx_b.send(9); // fails if the selector already left
                              // One receive before the join: a selector that chose send(A) but
                              // lost the room to the plain sender waits for room (nothing is
                              // reserved), and this makes it.
        let mut got = vec![rx_a.recv().unwrap()];
        let took_a = selector.join().unwrap();
        if took_a {
            got.push(rx_a.recv().unwrap());
        }
        plain.join().unwrap();
        got.sort();
        assert_eq!(got, if took_a { vec![1, 2] } else { vec![2] });
    });
}

/// A select over two receivers registers while a send on either races it:
/// no lost wake-up, the message is received once.
#[test]
fn registration_racing_a_send() {
    model(|| {
        let (tx1, rx1) = spsc::channel::<u32>(1);
        let (tx2, rx2) = mpsc::channel::<u32>(1);
        let sender = thread::spawn(move || {
            tx2.send(7).unwrap();
            tx2
        });
        let got = select! {
            recv(rx1) -> m => m.map(|v| v + 100),
            recv(rx2) -> m => m,
        };
        assert_eq!(got, Ok(7));
        drop(sender.join().unwrap());
        drop(tx1);
    });
}

/// Two selecting senders on one full channel (each with a second case that
/// is never ready): one receive frees one slot, then another; both sends
/// complete, each message once.
///
/// Above the CI's bound (3 preemptions) loom fails this model inside its
/// own `join` (`assertion failed: state.notified`): a sender's wake-up
/// reaches this thread after its receives, which std keeps as a token for
/// the next `park` and loom cannot take while the thread is blocked in
/// `join` (see `Flagged::join`). With flagged joins it passes at bound 3
/// (15 minutes explored, no failure), but they made it 176 -> 499 s at
/// bound 2 (and leaving the threads unjoined, 822 s), so it keeps the
/// plain joins at the CI's bound (2), under which no schedule brings
/// that wake-up late.
#[test]
fn two_selectors_on_one_channel() {
    model(|| {
        let (tx, rx) = mpsc::channel::<u32>(1);
        tx.send(0).unwrap();
        let (_never_tx, never_rx) = spsc::channel::<u32>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            select! { send(tx, 1) -> r => r.unwrap() }
        });
        let b = thread::spawn(move || {
            select! {
                send(tx2, 2) -> r => r.unwrap(),
                recv(never_rx) -> _ => unreachable!(),
            }
        });
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// A select racing the close of one of its channels: it returns the
/// `Closed` result of that case (a closed channel is ready), never hangs.
#[test]
fn select_racing_close() {
    model(|| {
        let (tx1, rx1) = mpsc::channel::<u32>(1);
        let (_tx2, rx2) = spsc::channel::<u32>(1);
        let closer = thread::spawn(move || assert!(tx1.close()));
        let got = select! {
            recv(rx1) -> m => m,
            recv(rx2) -> _ => unreachable!(),
        };
        assert_eq!(got, Err(RecvError));
        closer.join().unwrap();
    });
}

/// A send case racing the receiver's drop: `Err` with the value back.
#[test]
fn send_case_racing_receiver_drop() {
    model(|| {
        let (tx, rx) = mpsc::channel::<u32>(1);
        tx.send(0).unwrap();
        let dropper = thread::spawn(move || drop(rx));
        let got = select! { send(tx, 1) -> r => r };
        assert_eq!(got, Err(SendError(1)));
        dropper.join().unwrap();
    });
}

/// Capacity 0: a send case waiting on its offer alone (a select that
/// completes its case registers on no queue) racing the receiver's drop:
/// the close wakes it, `Err` with the value back.
#[test]
fn rendezvous_send_case_racing_receiver_drop() {
    model(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let dropper = thread::spawn(move || drop(rx));
        let got = select! { send(tx, 1) -> r => r };
        assert_eq!(got, Err(SendError(1)));
        dropper.join().unwrap();
    });
}

/// Capacity 0: a selecting receiver (whose offer a sender claims) meets a
/// selecting sender (which waits for that offer), and a plain sender races
/// them; both messages arrive once.
#[test]
fn selecting_sender_meets_selecting_receiver_on_capacity_0() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let tx2 = tx.clone();
        let selecting = thread::spawn(move || {
            select! { send(tx, 1) -> r => r.unwrap() }
        });
        let plain = thread::spawn(move || tx2.send(2).unwrap());
        let mut got = [0; 2];
        for g in &mut got {
            *g = select! { recv(rx) -> m => m.unwrap() };
        }
        got.sort();
        assert_eq!(got, [1, 2]);
        selecting.join().unwrap();
        plain.join().unwrap();
    });
}

/// Capacity 0, two selects that each send on their own channel and
/// receive on the other's (one round): exactly one message crosses. A
/// send case claims the receiver it saw offering before it wins (until
/// 2026-12-06 it won on the offer alone, and both selects could send and
/// then wait forever for a receiver that was sending too); and a select
/// whose send case the other claimed keeps that case when it reserves it.
#[test]
fn two_selects_exchange_over_two_rendezvous_channels() {
    model_bound_1(|| {
        let (a_tx, a_rx) = mpsc::channel::<u32>(0);
        let (b_tx, b_rx) = mpsc::channel::<u32>(0);
        // `true`: this side sent; `false`: it received.
        let other = thread::spawn(move || {
            let sent = select! {
                send(b_tx, 2) -> r => {
                    r.unwrap();
                    true
                }
                recv(a_rx) -> m => {
                    assert_eq!(m, Ok(1));
                    false
                }
            };
            (sent, b_tx, a_rx)
        });
        let sent = select! {
            send(a_tx, 1) -> r => {
                r.unwrap();
                true
            }
            recv(b_rx) -> m => {
                assert_eq!(m, Ok(2));
                false
            }
        };
        let (they_sent, b_tx, a_rx) = other.join().unwrap();
        assert_ne!(sent, they_sent, "one message crosses");
        drop((a_tx, b_rx, b_tx, a_rx));
    });
}

/// Capacity 0: an offer claimed by a sender races the channel's close.
#[test]
fn rendezvous_offer_racing_close_with() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let tx2 = tx.clone();
        let last = thread::spawn(move || tx.close_with(1));
        let other = thread::spawn(move || tx2.send(2));
        let mut got = Vec::new();
        while let Ok(v) = select! { recv(rx) -> m => m } {
            got.push(v);
        }
        let last = last.join().unwrap();
        let other = other.join().unwrap();
        // The final message is received last; the other arrives before it
        // or fails with its value.
        assert_eq!(last, Ok(()));
        assert_eq!(got.last(), Some(&1));
        match other {
            Ok(()) => assert_eq!(got, [2, 1]),
            Err(SendError(2)) => assert_eq!(got, [1]),
            Err(e) => panic!("{e:?}"),
        }
    });
}

/// Capacity 0: a selecting sender and a plain receive, in either order: the
/// receiver's offer is claimed by the sender, or the receiver claims the
/// sender's select offer and waits for the value (the two-phase hand-over).
#[test]
fn a_plain_receive_claims_a_selecting_sender() {
    model(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let selecting = thread::spawn(move || {
            select! { send(tx, 1) -> r => r }
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(selecting.join().unwrap(), Ok(()));
    });
}

/// Capacity 0: a selected send that is dropped without sending (after the
/// receiver claimed it, or after it saw the receiver's offer) releases the
/// receiver, which then meets the sender's plain send.
#[test]
fn a_dropped_claimed_send_releases_the_receiver() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let selecting = thread::spawn(move || {
            let mut sel = rillet::Select::new();
            sel.send(&tx);
            drop(sel.select());
            tx.send(2)
        });
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(selecting.join().unwrap(), Ok(()));
    });
}

/// Capacity 0: a close races the two-phase hand-over: the selected send
/// succeeds exactly when the receiver gets its message.
#[test]
fn a_claimed_send_racing_close() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<u32>(0);
        let closer = tx.clone();
        let selecting = thread::spawn(move || {
            select! { send(tx, 3) -> r => r }
        });
        let closing = thread::spawn(move || closer.close());
        let got = rx.recv();
        let sent = selecting.join().unwrap();
        assert!(closing.join().unwrap());
        match got {
            Ok(m) => assert_eq!((m, sent), (3, Ok(()))),
            Err(RecvError) => assert_eq!(sent, Err(SendError(3))),
        }
    });
}
