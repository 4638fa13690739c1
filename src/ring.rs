//! Helpers shared by the ring-based channels.

/// Drops every item `next` yields until it yields `None` (and `next`
/// keeps yielding `None` after that). If one drop, or `next` itself,
/// panics, unwinding goes on with the rest, so none is leaked; a second
/// panic aborts, as in any drop.
pub(crate) fn drop_each<T>(next: impl FnMut() -> Option<T>) {
    struct Rest<T, N: FnMut() -> Option<T>>(N);
    impl<T, N: FnMut() -> Option<T>> Rest<T, N> {
        fn run(&mut self) {
            while let Some(item) = (self.0)() {
                drop(item);
            }
        }
    }
    impl<T, N: FnMut() -> Option<T>> Drop for Rest<T, N> {
        // After a normal run `next` yields `None` at once; while
        // unwinding from a panicking drop, this drops the rest.
        fn drop(&mut self) {
            self.run();
        }
    }
    Rest(next).run();
}

/// Drops the message at every position from `first` up to `end`
/// (advancing with `next`) through `drop_at`, which moves it out and
/// drops it; a panicking drop does not stop the rest ([`drop_each`]).
/// Used by a channel's `Drop`, when no other handle exists, and by a
/// leaving broadcast subscriber (which passes its unread messages).
pub(crate) fn drop_positions<P: Copy + PartialEq>(
    first: P,
    end: P,
    next: impl Fn(P) -> P,
    drop_at: impl Fn(P),
) {
    let mut pos = first;
    drop_each(|| {
        (pos != end).then(|| {
            let at = pos;
            pos = next(at);
            drop_at(at);
        })
    });
}
