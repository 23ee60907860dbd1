//! A fixed-capacity buffer that one writer appends to while readers read what it holds,
//! with no lock between them: what lets the growing segment take new rows under the
//! collection state's *read* lock, so a write never makes searches wait.
//!
//! Elements are written into spare capacity (memory no reader looks at) and then counted
//! in `len`, with release ordering; a reader loads the count with acquire ordering and
//! reads only below it. The allocation never moves while the buffer is shared: growing it
//! takes `&mut self`.

use parking_lot::{Mutex, MutexGuard};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// See the module doc.
pub(crate) struct AppendBuf<T> {
    /// Start of an allocation of `cap` elements made by a `Vec<T>`.
    ptr: NonNull<T>,
    cap: usize,
    /// Elements written (initialised). Only an [`Appender`] raises it.
    len: AtomicUsize,
    /// Held by the one [`Appender`] that may write at a time.
    appending: Mutex<()>,
    _owns: PhantomData<T>,
}

// SAFETY: the buffer owns its elements like a `Vec<T>` does; shared access hands out
// `&T` (needs `T: Sync`) and moves `T`s in from the appending thread (needs `T: Send`).
unsafe impl<T: Send> Send for AppendBuf<T> {}
// SAFETY: as above; concurrent appends are serialised by `appending`, and readers only
// read elements below a `len` published after they were written.
unsafe impl<T: Send + Sync> Sync for AppendBuf<T> {}

impl<T> AppendBuf<T> {
    /// An empty buffer with room for at least `cap` elements.
    pub fn with_capacity(cap: usize) -> Self {
        Self::from_vec(Vec::with_capacity(cap))
    }

    fn from_vec(v: Vec<T>) -> Self {
        let mut v = ManuallyDrop::new(v);
        AppendBuf {
            // A `Vec`'s pointer is never null (dangling when nothing is allocated).
            ptr: NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            cap: v.capacity(),
            len: AtomicUsize::new(v.len()),
            appending: Mutex::new(()),
            _owns: PhantomData,
        }
    }

    /// The elements, as the `Vec` they were allocated by.
    pub fn into_vec(self) -> Vec<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `ptr` and `cap` come from a `Vec<T>` (`from_vec`), and its first `len`
        // elements are initialised; `this` is never dropped, so the allocation has one
        // owner again.
        unsafe { Vec::from_raw_parts(this.ptr.as_ptr(), this.len(), this.cap) }
    }

    /// Elements written so far.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Elements that still fit without growing the allocation.
    pub fn spare(&self) -> usize {
        self.cap - self.len()
    }

    /// The first `n` elements (fewer if fewer were written).
    pub fn prefix(&self, n: usize) -> &[T] {
        let n = n.min(self.len());
        // SAFETY: the first `len` elements are initialised and never written again while
        // the buffer is shared (appends go past `len`; `&mut` access excludes readers).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), n) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let n = *self.len.get_mut();
        // SAFETY: as in `prefix`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), n) }
    }

    /// Room for `additional` more elements, reallocating (and moving the elements) if
    /// needed: possible only while nobody else holds the buffer.
    pub fn reserve(&mut self, additional: usize) {
        if self.spare() < additional {
            let mut v = std::mem::replace(self, Self::with_capacity(0)).into_vec();
            v.reserve(additional);
            *self = Self::from_vec(v);
        }
    }

    /// Writes zero bytes over the first `n` elements of spare capacity, so the pages
    /// behind them are mapped before any reader or writer needs them. Nothing is added.
    pub fn touch_spare(&mut self, n: usize) {
        let start = *self.len.get_mut();
        let n = n.min(self.cap - start);
        let bytes = n * std::mem::size_of::<T>();
        let first = self.ptr.as_ptr().wrapping_add(start) as *mut u8;
        // One byte per page, volatile: plain stores to memory nothing reads before it is
        // freed may be optimised away, and the point is the page fault. (The last byte
        // too: stepping from an unaligned start can miss the last page.)
        let last = bytes.checked_sub(1);
        for offset in (0..bytes).step_by(page_size()).chain(last) {
            // SAFETY: `offset < bytes`, so the byte lies in spare capacity of the
            // allocation (never read: `len` is unchanged); `&mut self` excludes every
            // other access.
            unsafe { std::ptr::write_volatile(first.add(offset), 0) }
        }
    }

    /// Gives the memory pages that lie wholly in spare capacity back to the OS: they read
    /// as zero and are mapped again when written. For pages mapped ahead of rows that did
    /// not come ([`Self::touch_spare`]). Takes the append lock, so no append runs meanwhile;
    /// readers never read spare capacity. Returns the bytes released (Linux; 0 elsewhere).
    ///
    /// At most `budget` bytes, the highest `skip` bytes below the allocation's last page
    /// boundary left alone (both multiples of the page size, so steps of `budget` meet
    /// without a gap): a large reserve is released in steps (`None` once the step lies
    /// wholly below the spare capacity: nothing is left to release).
    pub fn release_spare(&self, skip: usize, budget: usize) -> Option<usize> {
        let _held = self.appending.lock();
        let size = std::mem::size_of::<T>();
        let page = page_size();
        debug_assert!(skip.is_multiple_of(page) && budget.is_multiple_of(page));
        let len = self.len.load(Ordering::Relaxed);
        let base = self.ptr.as_ptr() as usize;
        let start = base + len * size;
        let end = (base + self.cap * size) / page * page;
        let top = end.checked_sub(skip).filter(|&top| top > start)?;
        Some(release_pages(start.max(top.saturating_sub(budget)), top))
    }

    /// Pages of spare capacity resident in memory (Linux; for tests).
    #[cfg(all(test, target_os = "linux"))]
    pub fn resident_spare_pages(&self) -> usize {
        let size = std::mem::size_of::<T>();
        let base = self.ptr.as_ptr() as usize;
        let page = page_size();
        let start = (base + self.len() * size).next_multiple_of(page);
        let end = (base + self.cap * size) / page * page;
        if end <= start {
            return 0;
        }
        let mut flags = vec![0u8; (end - start) / page];
        // SAFETY: `start..end` is page-aligned and inside this buffer's allocation;
        // `flags` has one byte per page of it, which is what mincore writes.
        let rc =
            unsafe { libc::mincore(start as *mut libc::c_void, end - start, flags.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore failed");
        flags.iter().filter(|&&f| f & 1 == 1).count()
    }

    /// The right to append, exclusive while held.
    pub fn appender(&self) -> Appender<'_, T> {
        Appender {
            _held: self.appending.lock(),
            buf: self,
        }
    }
}

fn page_size() -> usize {
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(not(unix))]
    let size = 4096;
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Releases the whole pages inside `start..end` (addresses); returns their bytes.
fn release_pages(start: usize, end: usize) -> usize {
    let page = page_size();
    let (start, end) = (start.next_multiple_of(page), end / page * page);
    if end <= start {
        return 0;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `start..end` is page-aligned and lies in spare capacity of an allocation
        // this buffer owns, which nobody reads (readers stop at `len`) or writes (the
        // caller holds the append lock) meanwhile; MADV_DONTNEED on it only makes those
        // bytes read as zero later, and spare capacity holds no value.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            return end - start;
        }
    }
    0
}

impl<T> Drop for AppendBuf<T> {
    fn drop(&mut self) {
        // SAFETY: as in `into_vec`; the buffer is not used again.
        drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), *self.len.get_mut(), self.cap) });
    }
}

impl<T: fmt::Debug> fmt::Debug for AppendBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendBuf")
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish()
    }
}

/// Appends to an [`AppendBuf`] while others read it (see [`AppendBuf::appender`]).
pub(crate) struct Appender<'a, T> {
    _held: MutexGuard<'a, ()>,
    buf: &'a AppendBuf<T>,
}

impl<T> Appender<'_, T> {
    /// Appends `value`; gives it back when the allocation is full (it never moves while
    /// shared: see [`AppendBuf::reserve`]).
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let len = self.buf.len.load(Ordering::Relaxed);
        if len == self.buf.cap {
            return Err(value);
        }
        // SAFETY: `len < cap`, so the slot is inside the allocation, in spare capacity
        // no reader reads (readers stop at `len`); this appender is the only writer
        // (`_held`). The slot is counted only after it is written.
        unsafe { self.buf.ptr.as_ptr().add(len).write(value) };
        self.buf.len.store(len + 1, Ordering::Release);
        Ok(())
    }
}

impl<T: Copy> Appender<'_, T> {
    /// Appends all of `values`, or nothing (returns `false`) when they do not fit.
    pub fn extend_from_slice(&mut self, values: &[T]) -> bool {
        let len = self.buf.len.load(Ordering::Relaxed);
        if self.buf.cap - len < values.len() {
            return false;
        }
        // SAFETY: as in `push`, for `values.len()` slots, all inside the allocation; the
        // source is a live slice that cannot overlap spare capacity no one references.
        unsafe {
            std::ptr::copy_nonoverlapping(
                values.as_ptr(),
                self.buf.ptr.as_ptr().add(len),
                values.len(),
            )
        };
        self.buf.len.store(len + values.len(), Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn appends_until_full_then_gives_values_back() {
        let mut buf = AppendBuf::with_capacity(3);
        let cap = buf.spare();
        {
            let mut app = buf.appender();
            for i in 0..cap {
                app.push(i.to_string()).unwrap();
            }
            assert_eq!(app.push("x".into()), Err("x".to_string()));
        }
        assert_eq!(buf.len(), cap);
        assert_eq!(buf.prefix(2), ["0", "1"]);
        buf.reserve(2);
        assert!(buf.spare() >= 2);
        buf.appender().push("after".into()).unwrap();
        assert_eq!(buf.prefix(usize::MAX).last().unwrap(), "after");
        buf.as_mut_slice()[0] = "zero".into();
        let v = buf.into_vec();
        assert_eq!(v.len(), cap + 1);
        assert_eq!(v[0], "zero");
    }

    #[test]
    fn a_slice_that_does_not_fit_is_not_written() {
        let mut buf = AppendBuf::with_capacity(4);
        buf.touch_spare(100);
        assert_eq!(buf.len(), 0);
        let cap = buf.spare();
        assert!(!buf.appender().extend_from_slice(&vec![1u32; cap + 1]));
        assert_eq!(buf.len(), 0);
        assert!(buf.appender().extend_from_slice(&vec![1u32; cap]));
        assert_eq!(buf.prefix(cap), vec![1u32; cap]);
    }

    /// Spare pages mapped ahead are given back; the elements and what is appended later
    /// are unaffected.
    #[test]
    #[cfg(target_os = "linux")]
    fn released_spare_pages_leave_memory_and_come_back_on_write() {
        let n = 1 << 20;
        let mut buf = AppendBuf::<u32>::with_capacity(n);
        buf.touch_spare(n);
        assert!(buf.appender().extend_from_slice(&[7; 1000]));
        let pages = buf.resident_spare_pages();
        assert!(pages > 900, "{pages} pages resident after touching");
        // In steps of 1 MiB (4 MiB in all), from the top.
        let mut released = 0;
        let mut skip = 0;
        while let Some(bytes) = buf.release_spare(skip, 1 << 20) {
            released += bytes;
            skip += 1 << 20;
        }
        assert!(skip >= 4 << 20);
        // All but the partial pages at either end (the allocation need not be aligned).
        assert!(released >= (n - 2 * 1024) * 4, "{released} bytes released");
        assert!(buf.resident_spare_pages() < 2);
        assert_eq!(buf.prefix(1000), [7; 1000]);
        assert!(buf.appender().extend_from_slice(&[9; 5000]));
        assert_eq!(buf.prefix(6000)[5999], 9);
        assert_eq!(buf.into_vec().len(), 6000);
    }

    /// Readers see a prefix that only grows, every element of it fully written, while
    /// the writer appends.
    #[test]
    fn readers_see_whole_elements_while_one_appends() {
        const N: usize = 20_000;
        let buf = Arc::new(AppendBuf::<[u64; 4]>::with_capacity(N));
        let reader = {
            let buf = buf.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < N {
                    let now = buf.prefix(N);
                    assert!(now.len() >= seen);
                    for (i, e) in now.iter().enumerate().skip(seen.saturating_sub(1)) {
                        assert_eq!(*e, [i as u64; 4]);
                    }
                    seen = now.len();
                }
            })
        };
        for i in 0..N {
            buf.appender().push([i as u64; 4]).unwrap();
        }
        reader.join().unwrap();
    }
}
