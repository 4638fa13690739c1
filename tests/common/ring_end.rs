//! A test shared by the ring channels' test files (included with `#[path]`,
//! as `scale.rs`): `recv_many` across the end of the ring.

/// Defines `recv_many_takes_every_message_across_the_ring_end` for the
/// channel module `$kind` (whose `channel::<u64>(cap)` gives a sender with
/// `send` and a receiver with `recv_many` and `is_empty`).
///
/// `recv_many` takes every message there is, also across the end of the
/// ring, lap after lap: rings of 1 to 8 slots (not only powers of two),
/// runs that start at every slot and end before, at and past the end.
/// (Its run carries the slot's index and the lap from one message to the
/// next: a lap that did not advance at the end stopped the run there.)
macro_rules! recv_many_across_the_ring_end {
    ($kind:ident) => {
        #[test]
        fn recv_many_takes_every_message_across_the_ring_end() {
            for cap in [1, 2, 3, 5, 8] {
                let (tx, rx) = $kind::channel::<u64>(cap);
                let mut next = 0;
                let mut buf = Vec::new();
                for round in 0..(10 * cap as u64) {
                    let k = round % cap as u64 + 1;
                    for v in next..next + k {
                        tx.send(v).unwrap();
                    }
                    buf.clear();
                    let got = rx.recv_many(&mut buf, k as usize + 2);
                    let want: Vec<u64> = (next..next + k).collect();
                    if got.ok() != Some(k as usize) || buf != want || !rx.is_empty() {
                        // A receiver whose position went wrong may wait for
                        // ever (in its next call, or in its drop) for a
                        // message it took already: fail instead.
                        std::mem::forget(rx);
                        panic!("capacity {cap}, round {round}: {buf:?}, want {want:?}");
                    }
                    next += k;
                }
            }
        }
    };
}
