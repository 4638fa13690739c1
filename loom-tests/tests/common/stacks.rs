//! Coroutine stacks kept for reuse across loom's executions.
//!
//! loom runs each model thread as a coroutine of the `generator` crate,
//! which maps a fresh stack for it (`mmap`), protects its guard page
//! (`mprotect`) and unmaps it when the thread ends (`munmap`): three system
//! calls and the page faults of a fresh mapping for every thread of every
//! one of a model's hundreds of thousands of executions. On this project's
//! CI machines that was half of a model's time, in the kernel (the
//! broadcast `Block` model: 34 s of user time and 31 s of system time
//! without this file, 28 s and 1 s with it; the SPSC file's 26 models run
//! two at a time: 26 s without, 9 s with).
//!
//! This file defines `mmap` and `munmap` in the test binary, which take
//! precedence over the C library's for every call the binary makes (ELF
//! symbol interposition; the C library's own internal calls, for example
//! `malloc`'s and `pthread_create`'s, are bound inside it and never come
//! here). A mapping asked for with `MAP_STACK` is remembered; when it is
//! unmapped whole, it is kept instead, and the next request of the same
//! length and protection gets it back, already faulted in and with its
//! guard page still protected (the owner's `mprotect` of that page is then
//! a no-op). Everything else, and everything past the tables' fixed sizes,
//! goes to the C library's functions unchanged. The models' results do
//! not depend on this: it changes where a coroutine's stack is, not what
//! runs on it (a reused stack holds the last owner's bytes, as any stack
//! does; `generator` writes what it reads).
//!
//! Only on x86-64 Linux with glibc, the CI machines; elsewhere the C
//! library's functions are used directly.

#![cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]

use std::ffi::{c_char, c_int, c_long, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

const MAP_STACK: c_int = 0x20000;
const MAP_FAILED: *mut c_void = !0usize as *mut c_void;
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

type MmapFn = unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, c_int, c_long) -> *mut c_void;
type MunmapFn = unsafe extern "C" fn(*mut c_void, usize) -> c_int;

/// A stack mapping: its address, length and protection.
#[derive(Clone, Copy, PartialEq)]
struct Mapping {
    addr: usize,
    len: usize,
    prot: c_int,
}

const EMPTY: Mapping = Mapping {
    addr: 0,
    len: 0,
    prot: 0,
};

/// Stack mappings handed out (`live`) and kept for reuse (`free`). A few
/// per model thread, and a few models at a time under `cargo test`.
struct Tables {
    live: [Mapping; 256],
    free: [Mapping; 64],
}

static TABLES: Mutex<Tables> = Mutex::new(Tables {
    live: [EMPTY; 256],
    free: [EMPTY; 64],
});

static REAL_MMAP: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
static REAL_MUNMAP: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The next definition of `name` after this binary's: the C library's.
fn real(cache: &AtomicPtr<c_void>, name: &'static [u8]) -> *mut c_void {
    let mut f = cache.load(Ordering::Acquire);
    if f.is_null() {
        // SAFETY: `name` is a NUL-terminated symbol name, and RTLD_NEXT
        // asks the dynamic linker for the definition after this object's.
        f = unsafe { dlsym(RTLD_NEXT, name.as_ptr().cast()) };
        assert!(
            !f.is_null(),
            "dlsym found no C library definition to forward to"
        );
        cache.store(f, Ordering::Release);
    }
    f
}

fn tables() -> std::sync::MutexGuard<'static, Tables> {
    // A panic never happens while the lock is held (only array accesses
    // within bounds), but do not let a poisoned lock stop the forwarding.
    TABLES.lock().unwrap_or_else(|e| e.into_inner())
}

/// `mmap(2)`, with stack mappings reused (see the module's comment).
///
/// # Safety
/// As the C library's `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: c_long,
) -> *mut c_void {
    let stack = flags & MAP_STACK != 0 && addr.is_null() && fd == -1;
    if stack {
        let mut t = tables();
        if let Some(i) = t.free.iter().position(|m| m.len == len && m.prot == prot) {
            let m = std::mem::replace(&mut t.free[i], EMPTY);
            if let Some(slot) = t.live.iter_mut().find(|m| m.len == 0) {
                *slot = m;
                return m.addr as *mut c_void;
            }
            // No room to remember it: give it back to the system and map
            // anew below, unremembered.
            drop(t);
            // SAFETY: `m` is a whole mapping this file kept and no one uses.
            unsafe { munmap_real(m.addr as *mut c_void, m.len) };
        }
    }
    // SAFETY: the C library's `mmap`, called with the caller's arguments.
    let p = unsafe {
        std::mem::transmute::<*mut c_void, MmapFn>(real(&REAL_MMAP, b"mmap\0"))(
            addr, len, prot, flags, fd, offset,
        )
    };
    if stack && p != MAP_FAILED {
        let mut t = tables();
        if let Some(slot) = t.live.iter_mut().find(|m| m.len == 0) {
            *slot = Mapping {
                addr: p as usize,
                len,
                prot,
            };
        }
    }
    p
}

/// `munmap(2)`: a whole stack mapping from [`mmap`] is kept for reuse.
///
/// # Safety
/// As the C library's `munmap`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    {
        let mut t = tables();
        let whole = |m: &Mapping| m.len != 0 && m.addr == addr as usize && m.len == len;
        if let Some(i) = t.live.iter().position(whole) {
            let m = std::mem::replace(&mut t.live[i], EMPTY);
            if let Some(slot) = t.free.iter_mut().find(|m| m.len == 0) {
                *slot = m;
                return 0;
            }
        } else {
            // Part of a remembered mapping: forget it (it is no longer
            // whole), and unmap as asked.
            let (start, end) = (addr as usize, (addr as usize).saturating_add(len));
            for m in t.live.iter_mut() {
                if m.len != 0 && m.addr < end && start < m.addr + m.len {
                    *m = EMPTY;
                }
            }
        }
    }
    // SAFETY: the caller's arguments, as for the C library's `munmap`.
    unsafe { munmap_real(addr, len) }
}

/// # Safety
/// As the C library's `munmap`.
unsafe fn munmap_real(addr: *mut c_void, len: usize) -> c_int {
    // SAFETY: the C library's `munmap`, with the caller's arguments.
    unsafe {
        std::mem::transmute::<*mut c_void, MunmapFn>(real(&REAL_MUNMAP, b"munmap\0"))(addr, len)
    }
}
