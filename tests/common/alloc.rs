//! A capacity the system cannot allocate (shared by the channel kinds'
//! tests, included with `#[path]`).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Builds a channel whose ring the system should refuse (terabytes, on
/// the 23 GB development machine, whose kernel refuses an allocation that
/// obviously exceeds its memory): the construction must panic with a
/// message (until 2026-12-06 SPSC and broadcast aborted the process, as
/// `handle_alloc_error` and `collect` do). On a system that hands the
/// memory out anyway (it is never touched), the channel is built and
/// dropped, and that is fine too.
pub fn refused_or_built<C>(kind: &str, build: impl FnOnce() -> C) {
    match catch_unwind(AssertUnwindSafe(build)) {
        Ok(chan) => drop(chan),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            assert!(
                msg.starts_with(kind) && msg.contains("could not be allocated"),
                "{kind}: unexpected panic message {msg:?}"
            );
        }
    }
}
