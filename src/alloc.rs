//! The process-wide memory allocator: dlmalloc behind one lock, kept safe across fork().
//!
//! Why not the C library's: a `run` is three short-lived processes that each allocate a
//! few hundred kilobytes and exit. musl's allocator maps a fresh group of pages whenever a
//! size class fills and unmaps it as soon as it empties, so a single `run` made ~100
//! mmap/munmap calls, and each munmap of a process that has run on both CPUs waits for a
//! TLB shootdown on the other. dlmalloc keeps freed memory for reuse and gives it back only
//! in large pieces (or when asked: `trim`), and it needs no start-up work.
//!
//! fork(): the monitor is forked from the CLI, which may have other threads. A child
//! forked while another thread held the heap's lock would block on its first allocation,
//! so the lock is taken around fork() (pthread_atfork). The runtime's raw clone() skips
//! those handlers; its child never allocates (see berth-runtime's spawn/mod.rs).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;

use dlmalloc::Dlmalloc;

pub struct Allocator {
    heap: UnsafeCell<Dlmalloc>,
    lock: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: `heap` is only touched with `lock` held.
unsafe impl Sync for Allocator {}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator {
    heap: UnsafeCell::new(Dlmalloc::new()),
    lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
};

impl Allocator {
    fn with_heap<T>(&self, f: impl FnOnce(&mut Dlmalloc) -> T) -> T {
        // SAFETY: a statically initialised mutex guards the heap; the guarded section
        // neither panics nor re-enters the allocator.
        unsafe {
            libc::pthread_mutex_lock(self.lock.get());
            let out = f(&mut *self.heap.get());
            libc::pthread_mutex_unlock(self.lock.get());
            out
        }
    }
}

// SAFETY: every method hands its request to dlmalloc, which meets GlobalAlloc's contract,
// under the one lock (`with_heap`), so no two threads use the heap at once.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout contract is dlmalloc's.
        self.with_heap(|h| unsafe { h.malloc(layout.size(), layout.align()) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        self.with_heap(|h| unsafe { h.calloc(layout.size(), layout.align()) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this heap with this layout.
        self.with_heap(|h| unsafe { h.free(ptr, layout.size(), layout.align()) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        self.with_heap(|h| unsafe { h.realloc(ptr, layout.size(), layout.align(), new_size) })
    }
}

/// Gives free memory at the top of the heap back to the system: for the monitor, which
/// idles for the container's whole life after a burst of start-up work.
pub fn trim() {
    // SAFETY: trimming only releases memory no allocation uses.
    ALLOCATOR.with_heap(|h| unsafe { h.trim(0) });
}

extern "C" fn lock_for_fork() {
    // SAFETY: see `with_heap`.
    unsafe { libc::pthread_mutex_lock(ALLOCATOR.lock.get()) };
}

extern "C" fn unlock_after_fork() {
    // SAFETY: the forking thread took the lock in `lock_for_fork`, and in the child it is
    // that same thread.
    unsafe { libc::pthread_mutex_unlock(ALLOCATOR.lock.get()) };
}

/// Registers the fork handlers before `main` (and before any test harness thread), so
/// no fork can happen without them.
#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_FORK_HANDLERS: extern "C" fn() = register_fork_handlers;

extern "C" fn register_fork_handlers() {
    // SAFETY: plain registration of handlers that only lock and unlock our mutex.
    unsafe {
        libc::pthread_atfork(
            Some(lock_for_fork),
            Some(unlock_after_fork),
            Some(unlock_after_fork),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_child_forked_while_another_thread_allocates_can_allocate() {
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut keep = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    keep.push(vec![0u8; 1 + keep.len() % 4096]);
                    if keep.len() > 256 {
                        keep.clear();
                    }
                }
            })
        };
        for _ in 0..300 {
            // SAFETY: the child only allocates, frees and exits.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let v: Vec<String> = (0..64).map(|i| i.to_string()).collect();
                // SAFETY: _exit in the forked child runs nothing of the parent's (no destructors, no atexit).
                unsafe { libc::_exit(if v.len() == 64 { 0 } else { 1 }) };
            }
            // A child stuck on the heap's lock never exits: give it two seconds.
            let mut status = 0;
            let mut waited = 0;
            // SAFETY: waitpid on the child forked above, with a live status int.
            while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0 {
                if waited == 2000 {
                    // SAFETY: the child forked above is not reaped yet, so its pid is still ours.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    // SAFETY: as above; waitpid reaps it, filling a live status int.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                    stop.store(true, Ordering::Relaxed);
                    panic!("a forked child hung on its first allocation");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                waited += 1;
            }
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
    }
}
