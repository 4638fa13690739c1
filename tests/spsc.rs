//! Integration tests for `rillet::spsc` (public API only).

use rillet::{
    spsc, Overflow, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/scale.rs"]
mod scale;
use scale::n;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A message that counts its drops (and can be told to panic when dropped).
#[derive(Debug)]
struct Counted {
    id: usize,
    drops: Arc<AtomicUsize>,
    panic_on_drop: bool,
}

impl Counted {
    fn new(id: usize, drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            id,
            drops: drops.clone(),
            panic_on_drop: false,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop && !thread::panicking() {
            panic!("Counted({}) panics in drop", self.id);
        }
    }
}

// ---------------------------------------------------------------- basics

#[test]
fn send_then_recv_in_order() {
    let (tx, rx) = spsc::channel(4);
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    for i in 0..4 {
        assert_eq!(rx.recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn capacity_is_exact_for_non_powers_of_two() {
    for cap in [1, 2, 3, 5, 7, 100, 1000] {
        let (tx, rx) = spsc::channel(cap);
        assert_eq!(tx.capacity(), cap);
        assert_eq!(rx.capacity(), cap);
        for i in 0..cap {
            tx.try_send(i).unwrap();
        }
        assert!(tx.is_full());
        assert_eq!(tx.try_send(cap), Err(TrySendError::Full(cap)));
        assert_eq!(tx.len(), cap);
        assert_eq!(rx.recv(), Ok(0));
        assert!(!tx.is_full());
        tx.try_send(cap).unwrap();
        assert_eq!(tx.try_send(cap + 1), Err(TrySendError::Full(cap + 1)));
    }
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_panics_with_a_reason() {
    let _ = spsc::channel::<u8>(0);
}

#[test]
#[should_panic(expected = "too large")]
fn absurd_capacity_panics_with_a_reason() {
    let _ = spsc::channel::<u64>(usize::MAX / 2);
}

/// A capacity within the limits whose ring the system cannot provide: a
/// panic with a message, not an aborted process.
#[test]
#[cfg_attr(miri, ignore = "allocates terabytes")]
fn a_capacity_the_system_cannot_allocate_panics_with_a_message() {
    alloc::refused_or_built("spsc::channel", || spsc::channel::<[u64; 8]>(1 << 36));
}

#[test]
fn builder_infers_type_and_sets_policy() {
    let (tx, rx) = spsc::Builder::new(3).overflow(Overflow::DropNewest).build();
    tx.send(1u8).unwrap();
    assert_eq!(tx.overflow(), Overflow::DropNewest);
    assert_eq!(rx.overflow(), Overflow::DropNewest);
    assert_eq!(rx.recv(), Ok(1u8));
}

#[test]
fn len_is_empty_is_full() {
    let (tx, rx) = spsc::channel(2);
    assert!(tx.is_empty() && rx.is_empty());
    assert_eq!(rx.len(), 0);
    tx.send(1).unwrap();
    assert_eq!((tx.len(), rx.len()), (1, 1));
    assert!(!rx.is_full());
    tx.send(2).unwrap();
    assert!(rx.is_full() && tx.is_full());
    rx.recv().unwrap();
    rx.recv().unwrap();
    assert!(rx.is_empty());
}

#[test]
fn zero_sized_messages() {
    let (tx, rx) = spsc::channel(3);
    for _ in 0..3 {
        tx.try_send(()).unwrap();
    }
    assert_eq!(tx.try_send(()), Err(TrySendError::Full(())));
    assert_eq!(rx.len(), 3);
    for _ in 0..3 {
        assert_eq!(rx.recv(), Ok(()));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn large_messages_cross_threads_intact() {
    let count = n(200);
    let (tx, rx) = spsc::channel::<[u64; 512]>(2);
    let h = thread::spawn(move || {
        for i in 0..count as u64 {
            tx.send([i; 512]).unwrap();
        }
    });
    for i in 0..count as u64 {
        let m = rx.recv().unwrap();
        assert!(m.iter().all(|&x| x == i));
    }
    h.join().unwrap();
    assert_eq!(rx.recv(), Err(RecvError));
}

/// A receiver far behind its sender prefetches the message a few hundred
/// bytes on (messages of 32 bytes or more): a full ring of each such size
/// drained by `recv` and `try_recv` (which pass through the prefetch),
/// every message intact and in order, including across the ring's wrap.
#[test]
fn a_receiver_far_behind_reads_every_message_intact() {
    fn run<const W: usize>() {
        let (tx, rx) = spsc::channel::<[u64; W]>(256);
        // Two laps under Miri (the second already reads a ring written
        // over): 17 s of the Miri job with three.
        for lap in 0..if cfg!(miri) { 2 } else { 3u64 } {
            for i in 0..256 {
                tx.send([lap * 1000 + i; W]).unwrap();
            }
            for i in 0..256 {
                let m = if i % 2 == 0 {
                    rx.recv().unwrap()
                } else {
                    rx.try_recv().unwrap()
                };
                assert!(m.iter().all(|&x| x == lap * 1000 + i), "size {}", W * 8);
            }
        }
        assert!(rx.try_recv().is_err());
    }
    run::<4>();
    run::<8>();
    run::<16>();
    run::<9>();
}

/// A ring of up to 4 slots keeps its indices and its slots on one cache
/// line when the messages fit in 48 bytes together (each aligned to 16 at
/// most), and in the usual places otherwise: every capacity and size on
/// either side of those limits, across threads, in order, with many
/// channels alive at once (so at many addresses, which decide where the
/// line falls), and buffered messages dropped with the channel.
#[test]
fn tiny_rings_carry_every_message_size() {
    fn stream<T: Send + PartialEq + std::fmt::Debug + 'static>(make: fn(u64) -> T) {
        for cap in 1..=5 {
            let count = n(1_000) as u64;
            // Under Miri 2 channels, not 8: this test alone took 48 s of
            // the Miri job (the addresses matter to the layout on real
            // hardware, not to what Miri checks).
            let chans = if cfg!(miri) { 2 } else { 8 };
            let pairs: Vec<_> = (0..chans).map(|_| spsc::channel::<T>(cap)).collect();
            let (txs, rxs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
            let h = thread::spawn(move || {
                for i in 0..count {
                    for tx in &txs {
                        tx.send(make(i)).unwrap();
                    }
                }
            });
            for i in 0..count {
                for rx in &rxs {
                    assert_eq!(rx.recv(), Ok(make(i)), "capacity {cap}");
                }
            }
            h.join().unwrap();
            for rx in &rxs {
                assert_eq!(rx.recv(), Err(RecvError));
            }
        }
    }
    stream(|i| i as u8);
    stream(|i| i); // 4 slots fit
    stream(|i| u128::from(i) << 64 | u128::from(i)); // aligned to 16; 2 fit
    stream(|i| [i; 3]); // 24 bytes: 2 fit
    stream(|i| [i; 6]); // 48 bytes: 1 fits
    stream(|i| [i as u8; 49]); // one byte too many
    stream(|_| ());

    for cap in 1..=5 {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::channel(cap);
        for i in 0..cap {
            tx.send(Counted::new(i, &drops)).unwrap();
        }
        let rejected = tx.try_send(Counted::new(cap, &drops));
        assert!(matches!(&rejected, Err(e) if e.is_full()), "capacity {cap}");
        drop(rejected);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the rejected one");
        assert_eq!((tx.len(), rx.len()), (cap, cap));
        assert_eq!(rx.recv().unwrap().id, 0);
        tx.send(Counted::new(cap + 1, &drops)).unwrap();
        drop(tx);
        drop(rx);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            cap + 2,
            "the buffered ones go with the channel"
        );
    }
}

// ---------------------------------------------------------------- close

#[test]
fn exactly_one_close_returns_true() {
    let (tx, rx) = spsc::channel::<u8>(1);
    assert!(tx.close());
    assert!(!tx.close());
    assert!(!rx.close());
    assert!(!rx.close());

    let (tx, rx) = spsc::channel::<u8>(1);
    assert!(rx.close());
    assert!(!tx.close());
    assert!(!rx.close());
}

#[test]
fn concurrent_closes_from_both_sides_exactly_one_wins() {
    for _ in 0..n(500) {
        let (tx, rx) = spsc::channel::<u8>(1);
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let h = thread::spawn(move || {
            b.wait();
            tx.close()
        });
        barrier.wait();
        let mine = rx.close();
        let theirs = h.join().unwrap();
        assert!(mine ^ theirs, "exactly one close returns true");
    }
}

#[test]
fn n_threads_closing_at_once_exactly_one_wins() {
    // SPSC handles are `Send + !Sync`; threads share them behind mutexes.
    use std::sync::Mutex;
    const THREADS: usize = 8;
    for _ in 0..n(100) {
        let (tx, rx) = spsc::channel::<u8>(1);
        let (tx, rx) = (Arc::new(Mutex::new(tx)), Arc::new(Mutex::new(rx)));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (tx, rx, barrier) = (tx.clone(), rx.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        tx.lock().unwrap().close()
                    } else {
                        rx.lock().unwrap().close()
                    }
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(wins, 1);
    }
}

#[test]
fn closed_while_buffered_then_drained_then_closed_forever() {
    let (tx, rx) = spsc::channel(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(tx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.recv_timeout(ms(10)), Ok(2));
    for _ in 0..3 {
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv_timeout(ms(1)), Err(RecvTimeoutError::Closed));
    }
}

#[test]
fn every_send_fails_after_close_and_hands_the_message_back() {
    let (tx, rx) = spsc::channel(4);
    assert!(rx.close());
    assert_eq!(tx.send(1), Err(SendError(1)));
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    assert_eq!(tx.send_timeout(3, ms(1)), Err(SendTimeoutError::Closed(3)));
    assert_eq!(
        tx.send_deadline(4, Instant::now()),
        Err(SendTimeoutError::Closed(4))
    );
    assert_eq!(tx.send_many(vec![5, 6]), Err(SendError(vec![5])));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn receiver_close_keeps_buffered_messages_for_draining() {
    let (tx, rx) = spsc::channel(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(rx.close());
    assert_eq!(tx.send(3), Err(SendError(3)));
    assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn close_with_delivers_the_final_message_last() {
    let (tx, rx) = spsc::channel(2);
    tx.send("a").unwrap();
    tx.send("b").unwrap();
    let h = thread::spawn(move || tx.close_with("done")); // waits for room
    assert_eq!(rx.recv(), Ok("a"));
    h.join().unwrap().unwrap();
    assert!(rx.is_closed());
    assert!(!rx.close(), "close_with was the closing call");
    assert_eq!(rx.iter().collect::<Vec<_>>(), ["b", "done"]);
}

#[test]
fn close_with_after_close_hands_the_message_back() {
    let (tx, rx) = spsc::channel(2);
    assert!(rx.close());
    assert_eq!(tx.close_with(7), Err(SendError(7)));
}

#[test]
fn close_with_under_drop_oldest_evicts() {
    let (tx, rx) = spsc::Builder::new(2).overflow(Overflow::DropOldest).build();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    tx.close_with(3).unwrap();
    assert_eq!(rx.dropped(), 1);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn dropping_the_sender_closes() {
    let (tx, rx) = spsc::channel(2);
    tx.send(1).unwrap();
    drop(tx);
    assert!(rx.is_closed());
    assert!(!rx.close());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_the_receiver_closes() {
    let (tx, rx) = spsc::channel(2);
    drop(rx);
    assert!(tx.is_closed());
    assert!(!tx.close());
    assert_eq!(tx.send(1), Err(SendError(1)));
}

// ---------------------------------------------------------------- wake-ups

#[test]
fn parked_receiver_is_woken_by_sender_drop() {
    let (tx, rx) = spsc::channel::<u8>(1);
    let h = thread::spawn(move || rx.recv());
    thread::sleep(ms(50));
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));
}

#[test]
fn parked_receiver_is_woken_by_sender_close() {
    let (tx, rx) = spsc::channel::<u8>(1);
    let h = thread::spawn(move || rx.recv());
    thread::sleep(ms(50));
    assert!(tx.close());
    assert_eq!(h.join().unwrap(), Err(RecvError));
}

#[test]
fn parked_receiver_is_woken_by_a_message() {
    let (tx, rx) = spsc::channel::<u8>(1);
    let h = thread::spawn(move || rx.recv());
    thread::sleep(ms(50));
    tx.send(9).unwrap();
    assert_eq!(h.join().unwrap(), Ok(9));
}

#[test]
fn parked_sender_is_woken_by_receiver_close() {
    let (tx, rx) = spsc::channel(1);
    tx.send(1).unwrap();
    let h = thread::spawn(move || tx.send(2));
    thread::sleep(ms(50));
    assert!(rx.close());
    assert_eq!(h.join().unwrap(), Err(SendError(2)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn parked_sender_is_woken_by_receiver_drop() {
    let (tx, rx) = spsc::channel(1);
    tx.send(1).unwrap();
    let h = thread::spawn(move || tx.send(2));
    thread::sleep(ms(50));
    drop(rx);
    assert_eq!(h.join().unwrap(), Err(SendError(2)));
}

#[test]
fn parked_sender_is_woken_by_room() {
    let (tx, rx) = spsc::channel(1);
    tx.send(1).unwrap();
    let h = thread::spawn(move || tx.send(2));
    thread::sleep(ms(50));
    assert_eq!(rx.recv(), Ok(1));
    h.join().unwrap().unwrap();
    assert_eq!(rx.recv(), Ok(2));
}

// ---------------------------------------------------------------- timeouts

#[test]
fn zero_timeout_still_takes_a_queued_message() {
    let (tx, rx) = spsc::channel(1);
    tx.send(5).unwrap();
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(5));
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send_timeout(6, Duration::ZERO).unwrap();
    assert_eq!(
        tx.send_timeout(7, Duration::ZERO),
        Err(SendTimeoutError::Timeout(7))
    );
    assert_eq!(rx.recv_deadline(Instant::now()), Ok(6));
}

#[test]
fn timeouts_expire_and_hand_the_message_back() {
    let (tx, rx) = spsc::channel(1);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(ms(20)), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= ms(20));
    tx.send(1).unwrap();
    let start = Instant::now();
    assert_eq!(
        tx.send_timeout(2, ms(20)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert!(start.elapsed() >= ms(20));
    assert_eq!(
        tx.send_deadline(3, Instant::now() + ms(5)),
        Err(SendTimeoutError::Timeout(3))
    );
}

#[test]
fn closed_and_drained_reports_closed_not_timeout() {
    let (tx, rx) = spsc::channel::<u8>(1);
    drop(tx);
    assert_eq!(rx.recv_timeout(ms(10)), Err(RecvTimeoutError::Closed));
    assert_eq!(
        rx.recv_deadline(Instant::now()),
        Err(RecvTimeoutError::Closed)
    );
}

#[test]
fn duration_max_waits_without_panicking() {
    let (tx, rx) = spsc::channel(1);
    let h = thread::spawn(move || {
        thread::sleep(ms(30));
        tx.send(1).unwrap();
        tx.send_timeout(2, Duration::MAX).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(2));
    h.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Closed)
    );
}

#[test]
fn timed_recv_is_woken_by_close() {
    let (tx, rx) = spsc::channel::<u8>(1);
    let h = thread::spawn(move || rx.recv_timeout(Duration::from_secs(60)));
    thread::sleep(ms(30));
    tx.close();
    assert_eq!(h.join().unwrap(), Err(RecvTimeoutError::Closed));
}

// ---------------------------------------------------------------- overflow

#[test]
fn drop_newest_discards_and_counts_incoming() {
    let (tx, rx) = spsc::Builder::new(3).overflow(Overflow::DropNewest).build();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(tx.try_send(10), Ok(()));
    assert_eq!(rx.dropped(), 8);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn drop_oldest_evicts_and_counts_the_oldest() {
    let (tx, rx) = spsc::Builder::new(3).overflow(Overflow::DropOldest).build();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(tx.try_send(10), Ok(()));
    assert_eq!(tx.dropped(), 8);
    assert_eq!(rx.len(), 3);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [8, 9, 10]);
}

#[test]
fn overflow_drops_each_message_exactly_once() {
    for policy in [Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::Builder::new(2).overflow(policy).build();
        for i in 0..10 {
            tx.send(Counted::new(i, &drops)).unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 8, "{policy:?}");
        assert_eq!(tx.dropped(), 8);
        let got = rx.recv().unwrap();
        assert_eq!(got.id, if policy == Overflow::DropNewest { 0 } else { 8 });
        drop(got);
        drop((tx, rx));
        assert_eq!(drops.load(Ordering::SeqCst), 10, "{policy:?}");
    }
}

#[test]
fn drop_oldest_under_concurrency_receives_or_evicts_each_message_once() {
    let total = n(100_000);
    for cap in [1, 2, 5] {
        let (tx, rx) = spsc::Builder::new(cap)
            .overflow(Overflow::DropOldest)
            .build();
        let h = thread::spawn(move || {
            for i in 0..total {
                tx.send(i).unwrap();
            }
            tx.dropped()
        });
        let mut received = 0;
        let mut last = None;
        for v in rx.iter() {
            assert!(last.map_or(true, |l| v > l), "order kept");
            last = Some(v);
            received += 1;
        }
        let dropped = h.join().unwrap();
        assert_eq!(received + dropped as usize, total, "cap {cap}");
        assert_eq!(last, Some(total - 1), "the newest survives");
    }
}

// ---------------------------------------------------------------- drops

#[test]
fn buffered_messages_are_dropped_once_when_the_last_handle_goes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(8);
    for i in 0..5 {
        tx.send(Counted::new(i, &drops)).unwrap();
    }
    drop(rx.recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(tx);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "closing drops nothing");
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn rejected_messages_come_back_and_are_dropped_by_the_caller() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(1);
    tx.send(Counted::new(0, &drops)).unwrap();
    let back = tx
        .try_send(Counted::new(1, &drops))
        .unwrap_err()
        .into_inner();
    assert_eq!(back.id, 1);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(back);
    rx.close();
    let back = tx.send(Counted::new(2, &drops)).unwrap_err().0;
    assert_eq!(back.id, 2);
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

/// A send whose ring is full (or closed) takes its slow path, which gets
/// the message through a spill slot (`ring::Spill`) and answers with what
/// the slot holds then: under every policy, each message ends up sent,
/// handed back or discarded, and is dropped exactly once.
#[test]
fn full_and_closed_sends_drop_each_message_once() {
    for cap in [2, 8] {
        for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
            let drops = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = spsc::Builder::new(cap).overflow(overflow).build();
            let made = cap + 4;
            for i in 0..made {
                if let Err(e) = tx.try_send(Counted::new(i, &drops)) {
                    assert_eq!(overflow, Overflow::Block, "only Block refuses");
                    assert!(e.is_full());
                    assert_eq!(e.into_inner().id, i);
                }
            }
            let mut got = Vec::new();
            while let Ok(m) = rx.try_recv() {
                got.push(m.id);
            }
            let first = if overflow == Overflow::DropOldest {
                4
            } else {
                0
            };
            assert_eq!(
                got,
                (first..first + cap).collect::<Vec<_>>(),
                "{overflow:?}"
            );
            assert_eq!(drops.load(Ordering::SeqCst), made, "{overflow:?}");
            rx.close();
            let back = tx.send(Counted::new(made, &drops)).unwrap_err().0;
            assert_eq!(back.id, made);
            drop(back);
            drop((tx, rx));
            assert_eq!(drops.load(Ordering::SeqCst), made + 1, "{overflow:?}");
        }
    }
}

#[test]
fn panicking_drop_of_buffered_messages_drops_the_rest_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(4);
    for i in 0..4 {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 1;
        tx.send(m).unwrap();
    }
    drop(tx);
    let result = catch_unwind(AssertUnwindSafe(move || drop(rx)));
    assert!(result.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn panicking_drop_of_an_evicted_message_leaves_the_channel_usable() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::Builder::new(1).overflow(Overflow::DropOldest).build();
    let mut first = Counted::new(0, &drops);
    first.panic_on_drop = true;
    tx.send(first).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| tx.send(Counted::new(1, &drops))));
    assert!(result.is_err(), "the evicted message's drop panicked");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(rx.recv().unwrap().id, 1, "the new message was enqueued");
    tx.send(Counted::new(2, &drops)).unwrap();
    assert_eq!(rx.recv().unwrap().id, 2);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn panicking_drop_of_a_received_message_is_the_callers() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(2);
    let mut m = Counted::new(0, &drops);
    m.panic_on_drop = true;
    tx.send(m).unwrap();
    tx.send(Counted::new(1, &drops)).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| drop(rx.recv().unwrap()))).is_err());
    assert_eq!(rx.recv().unwrap().id, 1);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------- batches

#[test]
fn send_many_and_recv_many_move_batches() {
    let (tx, rx) = spsc::channel(8);
    assert_eq!(tx.send_many(0..5), Ok(5));
    let mut buf = vec![100];
    assert_eq!(rx.recv_many(&mut buf, 3), Ok(3));
    assert_eq!(buf, [100, 0, 1, 2]);
    assert_eq!(rx.recv_many(&mut buf, 10), Ok(2));
    assert_eq!(buf, [100, 0, 1, 2, 3, 4]);
    assert_eq!(rx.recv_many(&mut buf, 0), Ok(0));
}

/// A `recv_many` cut at its `max` with fewer than a batch left (an eighth
/// of this ring) makes the next call pause for more: with the sender idle
/// (here, this very thread) that call still takes the leftovers, at once
/// and in order, round after round; from then on the runs are copied in
/// one or two pieces, across the ring's end too (12 rounds at least, also
/// under Miri: more than the 1024 slots).
#[test]
fn recv_many_takes_the_leftovers_of_a_run_cut_at_max() {
    let (tx, rx) = spsc::channel::<usize>(1024);
    let mut buf = Vec::new();
    let mut next = 0;
    for round in 0..n(50).max(12) {
        let sent = 100 + round % 20;
        assert_eq!(tx.send_many(next..next + sent), Ok(sent));
        // 64 and then the rest: fewer than 128 are left after the first.
        assert_eq!(rx.recv_many(&mut buf, 64), Ok(64));
        assert_eq!(rx.recv_many(&mut buf, 64), Ok(sent - 64));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        next += sent;
    }
    assert_eq!(buf, (0..next).collect::<Vec<_>>());
}

/// The same against a sender on another thread: calls of 64 into a ring
/// of 1024 leave a few behind, and the pauses after them lose nothing.
#[test]
fn recv_many_cut_at_max_against_a_sending_thread_loses_nothing() {
    let total = n(200_000);
    let (tx, rx) = spsc::channel::<usize>(1024);
    let h = thread::spawn(move || {
        for i in 0..total {
            tx.send(i).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut calls = 0;
    while let Ok(k) = rx.recv_many(&mut buf, 64) {
        assert!((1..=64).contains(&k));
        calls += 1;
    }
    h.join().unwrap();
    assert_eq!(buf, (0..total).collect::<Vec<_>>());
    assert!(calls >= total / 64);
}

#[test]
fn recv_many_waits_for_at_least_one() {
    let (tx, rx) = spsc::channel(4);
    let h = thread::spawn(move || {
        thread::sleep(ms(30));
        tx.send(1).unwrap();
    });
    let mut buf = Vec::new();
    assert_eq!(rx.recv_many(&mut buf, 4), Ok(1));
    h.join().unwrap();
    assert_eq!(rx.recv_many(&mut buf, 4), Err(RecvError));
}

#[test]
fn send_many_larger_than_capacity_blocks_like_a_loop() {
    let total = n(50_000);
    let (tx, rx) = spsc::channel(7);
    let h = thread::spawn(move || tx.send_many(0..total));
    let mut buf = Vec::new();
    while let Ok(_k) = rx.recv_many(&mut buf, 5) {}
    assert_eq!(h.join().unwrap(), Ok(total));
    assert_eq!(buf, (0..total).collect::<Vec<_>>());
}

#[test]
fn send_many_applies_the_policy_per_message() {
    let (tx, rx) = spsc::Builder::new(3).overflow(Overflow::DropNewest).build();
    assert_eq!(tx.send_many(0..10), Ok(10));
    assert_eq!(tx.dropped(), 7);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);

    let (tx, rx) = spsc::Builder::new(3).overflow(Overflow::DropOldest).build();
    assert_eq!(tx.send_many(0..10), Ok(10));
    assert_eq!(tx.dropped(), 7);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [7, 8, 9]);
}

/// `send_many` on a full `DropNewest` ring drops each message as `send`
/// would (counted, then dropped), also when a drop panics: the panic comes
/// out, the items after it stay in the iterator, and the ring is untouched.
#[test]
fn send_many_on_a_full_drop_newest_ring_drops_each_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::Builder::new(2).overflow(Overflow::DropNewest).build();
    let sent = tx.send_many((0..40).map(|i| Counted::new(i, &drops)));
    assert_eq!(sent.ok(), Some(40));
    assert_eq!((tx.dropped(), drops.load(Ordering::SeqCst)), (38, 38));

    let mut batch = (40..50).map(|i| {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 43;
        m
    });
    let r = catch_unwind(AssertUnwindSafe(|| tx.send_many(&mut batch)));
    assert!(r.is_err(), "the panicking drop comes out");
    assert_eq!((tx.dropped(), drops.load(Ordering::SeqCst)), (42, 42));
    assert_eq!(batch.next().map(|m| m.id), Some(44));
    let ids: Vec<_> = rx.try_iter().map(|m| m.id).collect();
    assert_eq!(ids, [0, 1]);
    let sent = tx.send_many((50..55).map(|i| Counted::new(i, &drops)));
    assert_eq!(sent.ok(), Some(5));
    assert_eq!(tx.dropped(), 45);
    assert_eq!(rx.try_iter().map(|m| m.id).collect::<Vec<_>>(), [50, 51]);
}

#[test]
fn send_many_leaves_unpulled_items_in_the_iterator() {
    let (tx, rx) = spsc::channel(2);
    rx.close();
    let mut items = vec![1, 2, 3].into_iter();
    assert_eq!(tx.send_many(items.by_ref()), Err(SendError(vec![1])));
    assert_eq!(items.collect::<Vec<_>>(), [2, 3]);
}

// ---------------------------------------------------------------- iterators

#[test]
fn iterators() {
    let (tx, rx) = spsc::channel(8);
    tx.send_many(0..3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    tx.send_many(3..6).unwrap();
    drop(tx);
    let mut seen = Vec::new();
    for v in &rx {
        seen.push(v);
        if v == 4 {
            break;
        }
    }
    seen.extend(rx);
    assert_eq!(seen, [3, 4, 5]);
}

// ---------------------------------------------------------------- stress

#[test]
fn two_threads_keep_order_at_every_small_capacity() {
    let total = n(100_000);
    for cap in [1, 2, 3, 7, 64] {
        let (tx, rx) = spsc::channel(cap);
        let h = thread::spawn(move || {
            for i in 0..total {
                tx.send(i).unwrap();
            }
        });
        for i in 0..total {
            assert_eq!(rx.recv(), Ok(i));
        }
        h.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

#[test]
fn receiver_close_racing_sends_loses_nothing() {
    // Every send that returned Ok is received; every other one was handed
    // back. Exercises the cutoff / take-back protocol.
    for round in 0..n(600) {
        // Small rings make the sender park; large ones keep it publishing
        // while the close is in progress.
        let (tx, rx) = spsc::channel(if round % 2 == 0 { 4 } else { 4096 });
        let started = Arc::new(Barrier::new(2));
        let go = started.clone();
        let h = thread::spawn(move || {
            go.wait();
            let mut ok = 0usize;
            let mut i = 0usize;
            loop {
                match tx.send(i) {
                    Ok(()) => ok += 1,
                    Err(SendError(v)) => {
                        assert_eq!(v, i);
                        break;
                    }
                }
                i += 1;
            }
            ok
        });
        started.wait();
        let mut received = 0usize;
        for _ in 0..(round % 17) {
            if rx.recv().is_ok() {
                received += 1;
            }
        }
        rx.close();
        while let Ok(v) = rx.recv() {
            assert_eq!(v, received);
            received += 1;
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        let ok = h.join().unwrap();
        assert_eq!(ok, received, "round {round}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "closed forever");
    }
}

#[test]
fn receiver_close_racing_send_many_loses_nothing() {
    for round in 0..n(600) {
        let (tx, rx) = spsc::channel(if round % 2 == 0 { 8 } else { 4096 });
        let started = Arc::new(Barrier::new(2));
        let go = started.clone();
        let h = thread::spawn(move || {
            go.wait();
            let mut ok = 0usize;
            let mut next = 0usize;
            loop {
                match tx.send_many(next..next + 5) {
                    Ok(k) => {
                        ok += k;
                        next += k;
                    }
                    Err(SendError(back)) => {
                        // `back` is the tail of this batch that was not enqueued.
                        assert!(!back.is_empty());
                        assert_eq!(back, (back[0]..back[0] + back.len()).collect::<Vec<_>>());
                        return ok + (back[0] - next);
                    }
                }
            }
        });
        started.wait();
        let mut received = 0usize;
        for _ in 0..(round % 23) {
            if rx.recv().is_ok() {
                received += 1;
            }
        }
        rx.close();
        while let Ok(v) = rx.recv() {
            assert_eq!(v, received);
            received += 1;
        }
        let ok = h.join().unwrap();
        assert_eq!(ok, received, "round {round}");
    }
}

#[test]
fn sender_drop_racing_a_parked_receiver_never_hangs() {
    for _ in 0..n(300) {
        let (tx, rx) = spsc::channel::<u8>(1);
        let h = thread::spawn(move || rx.recv());
        drop(tx);
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
}

// ------------------------------------------------- re-entrancy and panics

/// A re-entrant iterator: `send_many` behaves like a loop of `send`, so a
/// message the iterator sends while it produces item `i` lands before `i`.
/// (Before the fix the inner send overwrote unpublished slots and moved the
/// tail backwards: lost, repeated and double-dropped messages.)
#[test]
fn send_many_with_a_reentrant_iterator_is_a_loop_of_send() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(16);
    let items = (0..4).map(|i| {
        tx.send(Counted::new(100 + i, &drops)).unwrap();
        Counted::new(i, &drops)
    });
    assert_eq!(tx.send_many(items).map_err(|_| ()), Ok(4));
    let got: Vec<usize> = rx.try_iter().map(|m| m.id).collect();
    assert_eq!(got, [100, 0, 101, 1, 102, 2, 103, 3]);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 8);
}

/// The same across threads on a small ring, so that the inner sends use up
/// the room the outer loop counted on and both wait for the receiver.
#[test]
fn reentrant_send_many_on_a_small_ring_keeps_loop_order() {
    let total = n(20_000);
    for cap in [1, 2, 3, 8] {
        let (tx, rx) = spsc::channel(cap);
        let h = thread::spawn(move || {
            let tx = &tx;
            let items = (0..total).inspect(|&i| {
                if i % 3 == 0 {
                    tx.send(usize::MAX - i).unwrap();
                }
            });
            tx.send_many(items).map_err(|_| ())
        });
        let mut expected = Vec::new();
        for i in 0..total {
            if i % 3 == 0 {
                expected.push(usize::MAX - i);
            }
            expected.push(i);
        }
        let got: Vec<usize> = rx.iter().collect();
        assert_eq!(h.join().unwrap(), Ok(total));
        assert!(
            got == expected,
            "cap {cap}: order differs from a loop of send"
        );
    }
}

/// The iterator closes the channel (through the receiver) while producing
/// item 3: items 0..3 were sent before the close, item 3 after it.
#[test]
fn send_many_whose_iterator_closes_the_channel() {
    let (tx, rx) = spsc::channel(8);
    let mut items = (0..5).inspect(|&i| {
        if i == 3 {
            assert!(rx.close());
        }
    });
    assert_eq!(tx.send_many(items.by_ref()), Err(SendError(vec![3])));
    assert_eq!(items.next(), Some(4), "unpulled items stay in the iterator");
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
}

/// A panicking iterator: what it yielded before the panic was sent, as by a
/// loop of `send`, and the sender stays usable.
#[test]
fn send_many_whose_iterator_panics_keeps_what_it_yielded() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(8);
    let result = catch_unwind(AssertUnwindSafe(|| {
        tx.send_many((0..5).map(|i| {
            if i == 3 {
                panic!("the iterator panics");
            }
            Counted::new(i, &drops)
        }))
    }));
    assert!(result.is_err());
    tx.send(Counted::new(9, &drops)).unwrap();
    let got: Vec<usize> = rx.try_iter().map(|m| m.id).collect();
    assert_eq!(got, [0, 1, 2, 9]);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

/// An iterator that receives on the same channel while `send_many` runs
/// finds what a loop of `send` had sent by then. Every third item it makes
/// one call, so that each call finds two items waiting in the unpublished run:
/// `try_recv`, `recv`, a zero-timeout receive, `recv_many`, a `select!`
/// with a default, `len()`. (Before the fix the run was invisible to
/// them: the first `try_recv` found nothing.)
#[test]
fn send_many_whose_iterator_receives_sees_what_a_loop_sent() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let (tx, rx) = spsc::Builder::new(16).overflow(overflow).build();
        let mut received = Vec::new();
        let items = (0..20u32).inspect(|&i| {
            if i % 3 != 2 {
                return;
            }
            // A loop of `send` has sent `0..i` by now. Checked at once,
            // before a later `recv` could wait for what is missing.
            let before = received.len();
            let op = i / 3;
            match op {
                0 => received.extend(rx.try_recv().ok()),
                1 => received.extend(rx.recv().ok()),
                2 => received.extend(rx.recv_timeout(Duration::ZERO).ok()),
                3 => {
                    rx.recv_many(&mut received, 100).unwrap();
                }
                4 => received.extend(rillet::select! {
                    recv(rx) -> m => m.ok(),
                    default => None,
                }),
                _ => {
                    let len = rx.len();
                    assert_eq!(len, i as usize - before, "{overflow:?}: len() at item {i}");
                    return;
                }
            }
            let want: Vec<u32> = if op == 3 {
                (before as u32..i).collect()
            } else {
                vec![before as u32]
            };
            assert_eq!(
                received[before..],
                want,
                "{overflow:?}: call {op} at item {i}"
            );
        });
        assert_eq!(tx.send_many(items), Ok(20), "{overflow:?}");
        received.extend(rx.try_iter());
        assert_eq!(received, (0..20).collect::<Vec<_>>(), "{overflow:?}");
        assert_eq!(rx.dropped(), 0, "{overflow:?}");
    }
}

/// Forwarding with `send_many(upstream.iter())`: an iterator that promises
/// no more items (`size_hint`) gets the run published before it is asked
/// for the next one, which it may wait for. (Before the fix the run waited
/// for the ring to fill or the iterator to end.)
#[test]
fn send_many_forwards_each_item_of_a_waiting_iterator() {
    let (up_tx, up_rx) = spsc::channel::<u32>(8);
    let (tx, rx) = spsc::channel(8);
    let h = thread::spawn(move || tx.send_many(up_rx.iter()));
    let items = n(100);
    for i in 0..items as u32 {
        up_tx.send(i).unwrap();
        // A run that held it back would hang here (the timeout only turns
        // a hang into a failure).
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(i));
    }
    drop(up_tx);
    assert_eq!(h.join().unwrap(), Ok(items));
}

/// A message whose drop sends on the same channel: a discarded message's
/// drop (evicted under `DropOldest`, the new one under `DropNewest`) runs
/// after the send that discarded it has completed, whichever call sent it.
/// (The slow paths of a send run on a copy of the handle: a drop run before
/// the copy was written back would find the handle stale, and its send
/// would be undone.)
#[test]
fn discarded_message_whose_drop_sends_on_the_same_channel() {
    struct Echo(u32);
    thread_local! {
        static TX: std::cell::RefCell<Option<spsc::Sender<Echo>>> =
            const { std::cell::RefCell::new(None) };
    }
    impl Drop for Echo {
        fn drop(&mut self) {
            if self.0 < 3 {
                let next = Echo(self.0 + 10);
                TX.with(|tx| {
                    if let Some(tx) = tx.borrow().as_ref() {
                        let _ = tx.send(next);
                    }
                });
            }
        }
    }
    type Send = fn(&spsc::Sender<Echo>, Echo) -> bool;
    let calls: [(&str, Send); 4] = [
        ("send", |tx, m| tx.send(m).is_ok()),
        ("try_send", |tx, m| tx.try_send(m).is_ok()),
        ("send_timeout", |tx, m| {
            tx.send_timeout(m, ms(5_000)).is_ok()
        }),
        ("send_deadline", |tx, m| {
            tx.send_deadline(m, Instant::now() + ms(5_000)).is_ok()
        }),
    ];
    for (name, call) in calls {
        let (tx, rx) = spsc::Builder::new(1).overflow(Overflow::DropOldest).build();
        TX.with(|cell| *cell.borrow_mut() = Some(tx));
        let send = |m| TX.with(|tx| call(tx.borrow().as_ref().unwrap(), m));
        assert!(send(Echo(1)), "{name}");
        assert!(send(Echo(5)), "{name}"); // evicts 1, whose drop sends 11, which evicts 5
        assert_eq!(
            rx.try_recv().map(|m| m.0).ok(),
            Some(11),
            "DropOldest {name}"
        );
        assert_eq!(rx.dropped(), 2, "DropOldest {name}");
        assert!(send(Echo(6)), "{name}"); // the handle's indices are right
        assert_eq!(
            rx.try_recv().map(|m| m.0).ok(),
            Some(6),
            "DropOldest {name}"
        );
        TX.with(|cell| cell.borrow_mut().take());
        assert_eq!(
            rx.try_recv().map(|m| m.0).err(),
            Some(TryRecvError::Closed),
            "DropOldest {name}"
        );

        let (tx, rx) = spsc::Builder::new(2).overflow(Overflow::DropNewest).build();
        TX.with(|cell| *cell.borrow_mut() = Some(tx));
        assert!(send(Echo(5)), "{name}");
        assert!(send(Echo(7)), "{name}");
        assert!(send(Echo(1)), "{name}"); // discarded; its drop sends 11, discarded too
        assert_eq!(rx.dropped(), 2, "DropNewest {name}");
        assert_eq!(
            rx.try_recv().map(|m| m.0).ok(),
            Some(5),
            "DropNewest {name}"
        );
        assert!(send(Echo(8)), "{name}");
        let rest: Vec<u32> = rx.try_iter().map(|m| m.0).collect();
        assert_eq!(rest, [7, 8], "DropNewest {name}");
        TX.with(|cell| cell.borrow_mut().take());
    }
}

/// `close_with` on a full `DropNewest` channel evicts the oldest message so
/// that the final one goes in. Before the fix it dropped the final message
/// between starting and finishing the close: a panicking drop left the close
/// half done (`recv` timed out instead of reporting `Closed`).
#[test]
fn close_with_whose_eviction_panics_still_completes_the_close() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::Builder::new(1).overflow(overflow).build();
        let mut old = Counted::new(0, &drops);
        old.panic_on_drop = true;
        tx.send(old).unwrap();
        let mut last = Counted::new(1, &drops);
        last.panic_on_drop = true;
        let result = catch_unwind(AssertUnwindSafe(move || tx.close_with(last)));
        assert!(
            result.is_err(),
            "{overflow:?}: the evicted message's drop panicked"
        );
        assert!(!rx.close(), "{overflow:?}: close_with was the closing call");
        let mut got = rx.recv_timeout(ms(5_000)).expect("the final message");
        got.panic_on_drop = false;
        assert_eq!(
            got.id, 1,
            "{overflow:?}: the final message, not the evicted one"
        );
        assert_eq!(rx.dropped(), 1);
        assert_eq!(
            rx.recv_timeout(ms(5_000)).err(),
            Some(RecvTimeoutError::Closed)
        );
        drop(got);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn close_with_on_a_full_drop_newest_channel_evicts_the_oldest() {
    let (tx, rx) = spsc::Builder::new(2).overflow(Overflow::DropNewest).build();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    tx.close_with(3).unwrap();
    assert_eq!(rx.dropped(), 1);
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2, 3]);
}

/// Under `DropOldest` an eviction happens only for a send that succeeds: a
/// send that fails on a racing close leaves the buffer as it was, so the
/// last `capacity` messages sent successfully are all received.
#[test]
fn drop_oldest_send_racing_close_evicts_only_for_a_successful_send() {
    for round in 0..n(2_000) {
        let cap = 1 + round % 3;
        let (tx, rx) = spsc::Builder::new(cap)
            .overflow(Overflow::DropOldest)
            .build();
        let started = Arc::new(Barrier::new(2));
        let go = started.clone();
        let h = thread::spawn(move || {
            go.wait();
            let mut i = 0usize;
            while tx.send(i).is_ok() {
                i += 1;
            }
            i // messages 0..i were sent
        });
        started.wait();
        let mut rest: Vec<usize> = (0..round % 7).filter_map(|_| rx.try_recv().ok()).collect();
        rx.close();
        rest.extend(rx.iter());
        let sent = h.join().unwrap();
        for m in sent.saturating_sub(cap)..sent {
            assert!(
                rest.contains(&m),
                "round {round}, cap {cap}: message {m} of the last {cap} sent was lost (sent {sent}, received {rest:?})"
            );
        }
    }
}

/// Dropping the receiver drops the buffered messages at once (as std and
/// crossbeam do), not when the sender goes.
#[test]
fn dropping_the_receiver_drops_buffered_messages_at_once() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::Builder::new(4).overflow(overflow).build();
        for i in 0..3 {
            tx.send(Counted::new(i, &drops)).unwrap();
        }
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "{overflow:?}");
        assert!(tx.send(Counted::new(9, &drops)).is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        drop(tx);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }
}

#[test]
fn dropping_the_receiver_with_a_panicking_message_drops_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = spsc::channel(4);
    for i in 0..4 {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 1;
        tx.send(m).unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    assert!(tx.is_closed());
    drop(tx);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}
