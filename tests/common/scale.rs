//! The loop-count scaling shared by the channel tests (included with
//! `#[path]`, so that a test binary takes only this from `common`).

/// Scales a loop count down under Miri.
pub const fn n(full: usize) -> usize {
    if cfg!(miri) {
        if full < 10 {
            full
        } else {
            10
        }
    } else {
        full
    }
}
