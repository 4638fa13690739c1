//! Padding that keeps a hot field off its neighbours' cache lines without
//! raising the alignment of the struct that holds it.
//!
//! `crossbeam_utils::CachePadded` aligns its value to 128 bytes, so a
//! channel made of such fields needs a 128-aligned allocation. The
//! allocator serves that with `posix_memalign`, which splits small
//! fragments off the block it finds; the next large request (the slot
//! array of the next channel) then consolidates them: measured, that was
//! the largest cost of making a channel (a third of making, using once and
//! dropping an SPSC channel of capacity 1024). [`Spaced`] puts 128 bytes of
//! padding *before* its value instead: in a `#[repr(C)]` struct whose hot
//! fields are each `Spaced`, any two of them are at least 128 bytes apart
//! (never on one line, nor on one 128-byte pair that the adjacent-line
//! prefetcher pulls together), and the first is 128 bytes past whatever
//! precedes the allocation. The price is at most 127 bytes more per field
//! than `CachePadded` and a value that may start anywhere in a line.

use std::mem::MaybeUninit;
use std::ops::Deref;

/// Bytes of padding before the value: the adjacent-line prefetcher of
/// x86_64 pulls pairs of 64-byte lines.
const PAD: usize = 128;

/// `T` with [`PAD`] bytes before it (see the module docs). Use it for every
/// hot field of a `#[repr(C)]` struct, and end the struct with a
/// [`SpacedEnd`].
#[repr(C)]
pub(crate) struct Spaced<T> {
    /// Never read or written: left uninitialized, so that making a channel
    /// does not clear it.
    _before: MaybeUninit<[u8; PAD]>,
    value: T,
}

impl<T> Spaced<T> {
    pub(crate) const fn new(value: T) -> Self {
        Spaced {
            _before: MaybeUninit::uninit(),
            value,
        }
    }
}

impl<T> Deref for Spaced<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Spaced<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// 128 bytes of padding alone: at the end of a struct of [`Spaced`] fields,
/// so that whatever the allocator places after it is 128 bytes away from
/// its last field, or after a hot field that read-mostly fields follow.
#[repr(C)]
pub(crate) struct SpacedEnd(MaybeUninit<[u8; PAD]>);

impl SpacedEnd {
    pub(crate) const fn new() -> Self {
        SpacedEnd(MaybeUninit::uninit())
    }
}
