//! One channel's whole life as a bench function (issue 11, part 3): make a
//! channel, send one message, receive it, drop both handles. Shared by the
//! spsc and mpsc benches, so that every implementation runs the same loop.

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;

/// Adds `name` to `g`: one iteration is one channel life.
pub fn bench<S, R>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    make: impl Fn() -> (S, R),
    send: impl Fn(&mut S, u64),
    recv: impl Fn(&mut R) -> u64,
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let (mut tx, mut rx) = make();
            send(&mut tx, 7);
            assert_eq!(recv(&mut rx), 7);
        })
    });
}
