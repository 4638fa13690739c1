//! The direct hand-off of the SPSC and MPSC rings, which a `Block` channel uses only when the
//! process may run on one CPU. This binary pins itself to one CPU before it
//! makes its first channel (rillet reads the CPU count once, when the first
//! channel is made), so it has a single test that runs every scenario in
//! turn. Where pinning is not possible (Miri, a system without
//! `sched_setaffinity`), it says so and runs the same scenarios on the
//! ordinary path.

use rillet::{spsc, SendError, SendTimeoutError, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[path = "common/scale.rs"]
mod scale;
use scale::n;

/// Pins the calling thread (and the threads it spawns later) to CPU 0.
#[cfg(all(target_os = "linux", not(miri)))]
fn pin_to_one_cpu() -> bool {
    // A `cpu_set_t` of 1024 bits with only CPU 0 set.
    let mut set = [0u64; 16];
    set[0] = 1;
    extern "C" {
        fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
    }
    // SAFETY: `set` is a valid, initialized `cpu_set_t`-sized buffer that
    // outlives the call; pid 0 is the calling thread.
    let rc = unsafe { sched_setaffinity(0, std::mem::size_of_val(&set), set.as_ptr()) };
    rc == 0 && thread::available_parallelism().is_ok_and(|n| n.get() == 1)
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn pin_to_one_cpu() -> bool {
    false
}

/// A message that counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn direct_hand_off_on_one_cpu() {
    let pinned = pin_to_one_cpu();
    if !pinned {
        eprintln!("could not pin to one CPU: the scenarios run without the hand-off");
    }
    stream_keeps_order();
    timed_sends_are_received_exactly_when_they_report_ok();
    close_while_offers_are_out_loses_nothing();
    receiver_drop_while_an_offer_is_out_drops_each_message_once();
    send_many_and_recv_many_around_offers();
    mpsc_producers_share_the_offer();
    mpsc_close_by_a_producer_while_an_offer_is_out();
    mpsc_receiver_close_while_several_offers_are_out();
    mpsc_blocked_producers_take_turns(pinned);
    timed_receives_get_each_message_exactly_once();
    a_send_after_the_senders_close_is_refused();
    mpsc_close_with_after_given_messages_is_last();
    a_receiver_moved_to_another_thread_is_woken_there();
    a_waiting_rendezvous_receiver_is_reachable_by_a_polling_sender(pinned);
    recv_many_moves_runs_across_the_ring_end();
}

/// On one CPU an SPSC `recv_many` moves each part of its run with at most
/// two copies of contiguous slots (`spsc::move_run`): runs of lengths from
/// one to the capacity, starting all around the ring, so that they end
/// before, at and across the ring's end, keep their order, and every
/// message (owning heap memory) is dropped exactly once, also those the
/// receiver leaves in the ring.
fn recv_many_moves_runs_across_the_ring_end() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut made = 0;
    for cap in [1, 3, 5, 8] {
        let (tx, rx) = spsc::channel::<(String, Tracked)>(cap);
        let (mut next, mut expect, mut queued) = (0usize, 0usize, 0usize);
        let mut buf = Vec::new();
        for round in 0..n(6 * cap + 8) {
            // A varying fill and take move the run's start around the ring.
            let room = cap - queued;
            let fill = if room == 0 { 0 } else { 1 + round % room };
            for _ in 0..fill {
                tx.send((next.to_string(), Tracked(drops.clone()))).unwrap();
                next += 1;
            }
            made += fill;
            queued += fill;
            let max = 1 + round % (cap + 2);
            buf.clear();
            let got = rx.recv_many(&mut buf, max).unwrap();
            assert_eq!(got, max.min(queued), "capacity {cap}, round {round}");
            for (text, _) in buf.drain(..) {
                assert_eq!(text, expect.to_string(), "capacity {cap}, round {round}");
                expect += 1;
            }
            queued -= got;
        }
        // What is still in the ring goes with the handles.
        drop((tx, rx));
    }
    assert_eq!(drops.load(Ordering::Relaxed), made);
}

/// A receiver waiting in a rendezvous `recv` (or a select) can be reached
/// by a sender that polls (`try_send`, a select with a default), yielding
/// between tries: on one
/// CPU each yield runs the receiver, which must become claimable on its
/// first turn. It used to yield back 64 times before registering, so the
/// poller's tries all failed (and a poller that did not yield spun through
/// 64 time slices, 90 ms, before its `try_send` could succeed). Counted in
/// tries, not time; only when pinned (elsewhere a yield need not run the
/// receiver), and in the best of the rounds: another process on the same
/// CPU (a loom run beside the tests) can take a round's yields, while that
/// bug made every round take at least 64 tries.
fn a_waiting_rendezvous_receiver_is_reachable_by_a_polling_sender(pinned: bool) {
    for selecting in [false, true] {
        let mut fewest = usize::MAX;
        for _ in 0..n(5) {
            let (tx, rx) = rillet::mpsc::channel::<usize>(0);
            let receiver = thread::spawn(move || {
                if selecting {
                    rillet::select! { recv(rx) -> m => m.unwrap() }
                } else {
                    rx.recv().unwrap()
                }
            });
            // The poller: `try_send`, or a select's send case with a
            // default (every other round).
            let mut tries = 0;
            loop {
                let sent = if tries % 2 == 0 {
                    match tx.try_send(7) {
                        Ok(()) => true,
                        Err(e) => {
                            assert!(matches!(e, rillet::TrySendError::Full(7)), "{e:?}");
                            false
                        }
                    }
                } else {
                    rillet::select! {
                        send(tx, 7) -> r => { r.unwrap(); true },
                        default => false,
                    }
                };
                if sent {
                    break;
                }
                tries += 1;
                thread::yield_now();
            }
            assert_eq!(receiver.join().unwrap(), 7);
            fewest = fewest.min(tries);
        }
        if pinned {
            assert!(
                fewest < 16,
                "the receiver became claimable only after {fewest} tries at best (select: {selecting})"
            );
        }
    }
}

/// A sending closure and a receiving one (`None`: closed; `Some(None)`:
/// timed out), over either kind.
type Send1 = Box<dyn Fn(usize) + Send>;
type Recv1 = Box<dyn Fn() -> Option<Option<usize>>>;

/// The accepting direction: a receiver that waits with short timeouts on
/// an empty capacity-1 ring, while the sender sends (many of its sends find
/// the receiver accepting and give it the message directly): every message
/// arrives exactly once, in order, whether a receive got it from its cell,
/// from the ring, or at the end of a timed-out wait.
fn timed_receives_get_each_message_exactly_once() {
    let total = n(20_000);
    for spsc in [true, false] {
        let (tx, rx): (Send1, Recv1) = if spsc {
            let (tx, rx) = spsc::channel(1);
            (
                Box::new(move |v| tx.send(v).unwrap()),
                Box::new(move || match rx.recv_timeout(Duration::from_micros(20)) {
                    Ok(v) => Some(Some(v)),
                    Err(rillet::RecvTimeoutError::Timeout) => Some(None),
                    Err(rillet::RecvTimeoutError::Closed) => None,
                }),
            )
        } else {
            let (tx, rx) = rillet::mpsc::channel(1);
            (
                Box::new(move |v| tx.send(v).unwrap()),
                Box::new(move || match rx.recv_timeout(Duration::from_micros(20)) {
                    Ok(v) => Some(Some(v)),
                    Err(rillet::RecvTimeoutError::Timeout) => Some(None),
                    Err(rillet::RecvTimeoutError::Closed) => None,
                }),
            )
        };
        let sender = thread::spawn(move || {
            for i in 0..total {
                tx(i);
                if i % 7 == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while let Some(got) = rx() {
            if let Some(v) = got {
                assert_eq!(v, next, "spsc: {spsc}");
                next += 1;
            }
        }
        assert_eq!(next, total, "spsc: {spsc}");
        sender.join().unwrap();
    }
}

/// A sender that closes the channel and then sends gets its message back,
/// also while the receiver waits (accepting) on the empty ring; the
/// receiver sees the end and never the message.
fn a_send_after_the_senders_close_is_refused() {
    for _ in 0..n(200) {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || rx.recv());
        thread::yield_now();
        assert!(tx.close());
        assert_eq!(tx.send(1), Err(SendError(1)));
        assert_eq!(h.join().unwrap(), Err(rillet::RecvError));
    }
}

/// Joins `h`, panicking if it has not finished within a minute: a thread
/// that waits for a wake-up that went elsewhere would otherwise hang the
/// test binary (a bound on liveness, not a measure of speed).
fn join_or_report_lost_wake_up<R>(h: thread::JoinHandle<R>) -> R {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !h.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver was never woken: its wake-up went to another thread"
        );
        thread::sleep(Duration::from_millis(1));
    }
    h.join().unwrap()
}

/// The accepting receiver's cell names its thread for the sender's
/// wake-up, and names the new one when the receiving handle has moved: a
/// receiver that accepted a message on one thread, then waits (accepting,
/// then parked) on another, is woken there. (The cell writes the thread
/// only when it changed: a cell that kept the first thread would wake the
/// finished one, and the second would sleep for good.)
fn a_receiver_moved_to_another_thread_is_woken_there() {
    // The same steps for both kinds (their handles' types differ).
    macro_rules! receive_on_two_threads {
        ($channel:expr) => {{
            let (tx, rx) = ($channel)(1);
            let first = thread::spawn(move || (rx.recv(), rx));
            // Long enough for it to find the ring empty, accept and park.
            thread::sleep(Duration::from_millis(2));
            tx.send(0).unwrap();
            let (got, rx) = first.join().unwrap();
            assert_eq!(got, Ok(0));
            let second = thread::spawn(move || rx.recv());
            thread::sleep(Duration::from_millis(2));
            tx.send(1).unwrap();
            assert_eq!(join_or_report_lost_wake_up(second), Ok(1));
        }};
    }
    for _ in 0..n(20) {
        receive_on_two_threads!(spsc::channel::<usize>);
        receive_on_two_threads!(rillet::mpsc::channel::<usize>);
    }
}

/// MPSC: one producer streams while another ends with `close_with`; the
/// consumer (often accepting on an empty ring) sees the final message
/// last, after every message whose send reported `Ok`.
fn mpsc_close_with_after_given_messages_is_last() {
    for _ in 0..n(50) {
        let (tx, rx) = rillet::mpsc::channel::<usize>(1);
        let tx2 = tx.clone();
        let streamer = thread::spawn(move || {
            let mut sent = 0;
            for i in 0..200 {
                if tx.send(i).is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        });
        let closer = thread::spawn(move || {
            thread::yield_now();
            tx2.close_with(usize::MAX).unwrap();
        });
        let got: Vec<usize> = rx.iter().collect();
        let sent = streamer.join().unwrap();
        closer.join().unwrap();
        assert_eq!(got.last(), Some(&usize::MAX));
        assert_eq!(got.len(), sent + 1);
        assert!(got[..sent].iter().copied().eq(0..sent));
    }
}

/// MPSC, capacity 1, three producers: each blocked producer parks its
/// message in a hand-off cell of its own; each producer's messages arrive
/// once and in its order.
fn mpsc_producers_share_the_offer() {
    let per = n(20_000);
    let (tx, rx) = rillet::mpsc::channel(1);
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    tx.send((p, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0; 3];
    for (p, i) in rx.iter() {
        assert_eq!(i, next[p], "producer {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, [per; 3]);
    for h in producers {
        h.join().unwrap();
    }
}

/// MPSC: another producer closes the channel while one producer's message
/// may be on offer: every send that reported `Ok` is received.
fn mpsc_close_by_a_producer_while_an_offer_is_out() {
    for round in 0..n(300) {
        let (tx, rx) = rillet::mpsc::channel(1);
        let closer = tx.clone();
        let h = thread::spawn(move || {
            let mut ok = 0;
            while tx.send(ok).is_ok() {
                ok += 1;
            }
            ok
        });
        let mut received = 0;
        for _ in 0..round % 5 {
            assert_eq!(rx.recv(), Ok(received));
            received += 1;
        }
        if round % 2 == 0 {
            thread::sleep(Duration::from_micros(300));
        }
        let c = thread::spawn(move || closer.close());
        while let Ok(v) = rx.recv() {
            assert_eq!(v, received);
            received += 1;
        }
        assert!(c.join().unwrap());
        assert_eq!(h.join().unwrap(), received, "round {round}");
    }
}

/// MPSC, capacity 1, more producers than hand-off cells (8): the consumer
/// closes while several of them have a message on offer (each blocked
/// producer holds a cell, on one CPU they all run while we sleep). Each
/// producer's failed send has its own message back, and exactly the
/// messages of its `Ok` sends are received, in its order.
fn mpsc_receiver_close_while_several_offers_are_out() {
    const PRODUCERS: usize = 10;
    for round in 0..n(100) {
        let (tx, rx) = rillet::mpsc::channel(1);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut ok = 0;
                    loop {
                        match tx.send((p, ok)) {
                            Ok(()) => ok += 1,
                            Err(SendError(v)) => {
                                assert_eq!(v, (p, ok), "the failed send's own message");
                                return ok;
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0; PRODUCERS];
        let mut take = |(p, i): (usize, usize)| {
            assert_eq!(i, next[p], "producer {p} out of order");
            next[p] += 1;
        };
        for _ in 0..round % 7 {
            take(rx.recv().unwrap());
        }
        if round % 3 != 0 {
            thread::sleep(Duration::from_micros(300));
        }
        assert!(rx.close());
        // `recv`, not `try_iter`: a send that claimed its slot before the
        // close may still be writing it (`try_recv` answers `Empty` then).
        while let Ok(m) = rx.recv() {
            take(m);
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        for (p, h) in producers.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), next[p], "round {round}, producer {p}");
        }
    }
}

/// MPSC, capacity 1, four producers that always have a message to send
/// and a consumer that pauses between receives: on one CPU every producer
/// blocks with its message in a hand-off cell, and the consumer takes the
/// offers in turn. It used to look at the first cell first, where the
/// producer it had just served offered again: that producer sent every
/// message, the others none. (Counted only when pinned: elsewhere the
/// producers wait the usual way, which is not this test's subject.)
fn mpsc_blocked_producers_take_turns(pinned: bool) {
    const PRODUCERS: usize = 4;
    let total = n(400).max(4 * PRODUCERS);
    let (tx, rx) = rillet::mpsc::channel(1);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || while tx.send(p).is_ok() {})
        })
        .collect();
    drop(tx);
    let mut got = [0; PRODUCERS];
    for _ in 0..total {
        got[rx.recv().unwrap()] += 1;
        // Every producer runs meanwhile (on one CPU: we are not runnable).
        thread::sleep(Duration::from_micros(50));
    }
    drop(rx);
    for h in producers {
        h.join().unwrap();
    }
    if pinned {
        for (p, &count) in got.iter().enumerate() {
            assert!(
                count >= total / (2 * PRODUCERS),
                "producer {p} sent {count} of {total} messages: {got:?}"
            );
        }
    }
}

/// Capacity 1 and 2: every message arrives once, in order.
fn stream_keeps_order() {
    for cap in [1, 2] {
        let total = n(100_000);
        let (tx, rx) = spsc::channel(cap);
        let h = thread::spawn(move || {
            for i in 0..total {
                tx.send(i).unwrap();
            }
        });
        for i in 0..total {
            assert_eq!(rx.recv(), Ok(i), "cap {cap}");
        }
        assert!(rx.recv().is_err());
        h.join().unwrap();
    }
}

/// `send_timeout` on a full ring races the receiver that takes its offer:
/// exactly the messages reported sent arrive, in order.
fn timed_sends_are_received_exactly_when_they_report_ok() {
    let total = n(20_000);
    let (tx, rx) = spsc::channel(1);
    let h = thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..total {
            match tx.send_timeout(i, Duration::from_micros(i as u64 % 3)) {
                Ok(()) => sent.push(i),
                Err(SendTimeoutError::Timeout(v)) => assert_eq!(v, i),
                Err(SendTimeoutError::Closed(_)) => unreachable!("the receiver is alive"),
            }
        }
        sent
    });
    let received: Vec<usize> = rx.iter().collect();
    assert_eq!(received, h.join().unwrap());
}

/// The receiver closes after `k` messages while the sender blocks with its
/// next message on offer: every `Ok` send is drained after the close, the
/// first failed send has its message back, and nothing is received twice.
fn close_while_offers_are_out_loses_nothing() {
    for round in 0..n(400) {
        let (tx, rx) = spsc::channel(1);
        let h = thread::spawn(move || {
            let mut ok = 0;
            loop {
                match tx.send(ok) {
                    Ok(()) => ok += 1,
                    Err(SendError(v)) => {
                        assert_eq!(v, ok);
                        return ok;
                    }
                }
            }
        });
        let mut received = 0;
        for _ in 0..round % 7 {
            assert_eq!(rx.recv(), Ok(received));
            received += 1;
        }
        if round % 2 == 0 {
            // Let the sender fill the ring and put its next message on
            // offer (on one CPU it runs only while we wait).
            thread::sleep(Duration::from_micros(300));
        }
        assert!(rx.close());
        for v in rx.try_iter() {
            assert_eq!(v, received);
            received += 1;
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(h.join().unwrap(), received, "round {round}");
    }
}

/// The receiver is dropped while the sender's message is on offer: every
/// message is dropped exactly once.
fn receiver_drop_while_an_offer_is_out_drops_each_message_once() {
    for round in 0..n(300) {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::channel(1);
        let d = drops.clone();
        let h = thread::spawn(move || {
            let mut made = 0;
            loop {
                made += 1;
                if tx.send(Tracked(d.clone())).is_err() {
                    return made;
                }
            }
        });
        for _ in 0..round % 5 {
            drop(rx.recv().unwrap());
        }
        if round % 2 == 0 {
            thread::sleep(Duration::from_micros(300));
        }
        drop(rx);
        let made = h.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), made, "round {round}");
    }
}

/// `send_many` (which publishes in batches) and `recv_many` (which frees
/// several slots at once) around offers: order holds.
fn send_many_and_recv_many_around_offers() {
    let total = n(50_000);
    let (tx, rx) = spsc::channel(3);
    let h = thread::spawn(move || {
        let mut next = 0;
        while next < total {
            let k = (next % 5 + 1).min(total - next);
            if next % 2 == 0 {
                tx.send_many(next..next + k).unwrap();
            } else {
                for i in next..next + k {
                    tx.send(i).unwrap();
                }
            }
            next += k;
        }
    });
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while got.len() < total {
        buf.clear();
        let k = got.len() % 4 + 1;
        rx.recv_many(&mut buf, k).unwrap();
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, (0..total).collect::<Vec<_>>());
    h.join().unwrap();
}
