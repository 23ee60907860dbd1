//! Posting lists read from an index file on demand, kept in a byte-budgeted LRU.
//!
//! An IVF index opened "paged" ([`IvfIndex::from_file_paged`](super::IvfIndex::from_file_paged))
//! holds its centroids, list offsets and row numbers in RAM, but not its codes: a search
//! reads the lists it visits from the file (`pread`), after asking the OS to start all of
//! them at once (`posix_fadvise(WILLNEED)`), and keeps them in a [`ListCache`]. One cache
//! can serve many indexes (a collection's segments share one), so the budget bounds the
//! codes of all of them the cache keeps (lists a search in flight still holds after their
//! eviction come on top). Least recently used lists are evicted first; a list larger than
//! a shard of the budget is read for the search that needs it and not kept.
//!
//! A cache of a few MiB or more is sharded by list (one lock per shard, one shard per MiB
//! up to 16) so concurrent searches rarely wait on each other; each shard holds
//! `budget / shards` bytes and evicts its own least recently used lists.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most shards of a cache (each with its own lock and its share of the budget).
const MAX_SHARDS: usize = 16;
/// Budget per shard below which a cache has fewer shards (small budgets stay whole, so
/// a list up to the budget can be kept).
const MIN_SHARD_BYTES: usize = 1 << 20;

/// Key of a cached list: the index it belongs to (see [`ListCache::register`]) and the
/// list number.
type Key = (u64, u32);

#[derive(Debug, Default)]
struct Shard {
    /// List bytes and the tick of their last use.
    lists: HashMap<Key, (Arc<[u8]>, u64)>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, Key>,
    /// Bytes held.
    used: usize,
    tick: u64,
}

impl Shard {
    fn touch(&mut self, key: Key) -> Option<Arc<[u8]>> {
        self.tick += 1;
        let tick = self.tick;
        let (bytes, last) = self.lists.get_mut(&key)?;
        self.order.remove(last);
        *last = tick;
        self.order.insert(tick, key);
        Some(Arc::clone(bytes))
    }

    /// Inserts `bytes` under `key`, evicting the least recently used lists until they
    /// fit in `budget`; returns the lists evicted.
    fn insert(&mut self, key: Key, bytes: Arc<[u8]>, budget: usize) -> u64 {
        if self.lists.contains_key(&key) {
            return 0;
        }
        let mut evicted = 0;
        while self.used + bytes.len() > budget {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.lists.remove(&old) {
                self.used -= gone.len();
                evicted += 1;
            }
        }
        self.tick += 1;
        self.used += bytes.len();
        self.order.insert(self.tick, key);
        self.lists.insert(key, (bytes, self.tick));
        evicted
    }

    fn forget(&mut self, owner: u64) {
        let used = &mut self.used;
        let order = &mut self.order;
        self.lists.retain(|&(o, _), (bytes, tick)| {
            if o == owner {
                *used -= bytes.len();
                order.remove(tick);
                false
            } else {
                true
            }
        });
    }
}

/// What a [`ListCache`] has done since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListCacheStats {
    /// The byte budget.
    pub budget_bytes: u64,
    /// Bytes of lists held now.
    pub resident_bytes: u64,
    /// Lists held now.
    pub lists: u64,
    /// List reads answered from the cache.
    pub hits: u64,
    /// List reads that went to the file.
    pub misses: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Lists evicted to make room.
    pub evictions: u64,
    /// Reads that failed (the list was skipped by the search that needed it).
    pub read_errors: u64,
}

/// A byte-budgeted LRU of posting lists shared by paged IVF indexes. See the module docs.
#[derive(Debug)]
pub struct ListCache {
    budget: usize,
    shards: Vec<Mutex<Shard>>,
    next_owner: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_read: AtomicU64,
    evictions: AtomicU64,
    read_errors: AtomicU64,
}

impl ListCache {
    /// A cache holding at most `budget_bytes` of list codes (0 keeps nothing: every visit
    /// reads the file).
    pub fn new(budget_bytes: usize) -> Arc<ListCache> {
        let shards = (budget_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        Arc::new(ListCache {
            budget: budget_bytes,
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            next_owner: AtomicU64::new(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
        })
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> ListCacheStats {
        let (mut resident, mut lists) = (0u64, 0u64);
        for shard in &self.shards {
            let shard = shard.lock();
            resident += shard.used as u64;
            lists += shard.lists.len() as u64;
        }
        ListCacheStats {
            budget_bytes: self.budget as u64,
            resident_bytes: resident,
            lists,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            read_errors: self.read_errors.load(Ordering::Relaxed),
        }
    }

    /// A fresh owner number for an index's lists.
    pub(crate) fn register(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        // Lists of one index spread over the shards; owners shift the pattern.
        let h = (key.1 as u64).wrapping_add(key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    fn shard_budget(&self) -> usize {
        self.budget / self.shards.len()
    }

    /// Whether the list is held (without counting a hit or changing its age).
    pub(crate) fn contains(&self, owner: u64, list: u32) -> bool {
        self.shard((owner, list))
            .lock()
            .lists
            .contains_key(&(owner, list))
    }

    /// The list's bytes: from the cache, or from `read` (then kept if they fit).
    pub(crate) fn get_or_read(
        &self,
        owner: u64,
        list: u32,
        read: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> std::io::Result<Arc<[u8]>> {
        let key = (owner, list);
        if let Some(bytes) = self.shard(key).lock().touch(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        // Read outside the lock: two searches missing the same list may both read it.
        let bytes: Arc<[u8]> = match read() {
            Ok(bytes) => bytes.into(),
            Err(e) => {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.bytes_read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let budget = self.shard_budget();
        if bytes.len() <= budget {
            let evicted = self
                .shard(key)
                .lock()
                .insert(key, Arc::clone(&bytes), budget);
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// Drops every list of `owner` (an index going away).
    pub(crate) fn forget(&self, owner: u64) {
        for shard in &self.shards {
            shard.lock().forget(owner);
        }
    }
}

/// The codes of a paged index: the file they are read from and the cache they go to.
#[derive(Debug)]
pub(super) struct PagedCodes {
    file: File,
    /// Offset of the codes in the file.
    start: u64,
    owner: u64,
    cache: Arc<ListCache>,
}

impl PagedCodes {
    pub(super) fn new(file: File, start: u64, cache: Arc<ListCache>) -> PagedCodes {
        let owner = cache.register();
        PagedCodes {
            file,
            start,
            owner,
            cache,
        }
    }

    pub(super) fn cache(&self) -> &Arc<ListCache> {
        &self.cache
    }

    /// List `list`'s codes (`range` within the codes), from the cache or the file.
    pub(super) fn list(&self, list: usize, range: Range<usize>) -> std::io::Result<Arc<[u8]>> {
        self.cache.get_or_read(self.owner, list as u32, || {
            let mut bytes = vec![0u8; range.len()];
            read_exact_at(&self.file, &mut bytes, self.start + range.start as u64)?;
            Ok(bytes)
        })
    }

    /// Asks the OS to start reading list `list` unless the cache holds it.
    pub(super) fn prefetch(&self, list: usize, range: Range<usize>) {
        if range.is_empty() || self.cache.contains(self.owner, list as u32) {
            return;
        }
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a hint on an open descriptor; it changes no memory of ours and an
            // error is ignored.
            unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    (self.start + range.start as u64) as libc::off_t,
                    range.len() as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                );
            }
        }
    }
}

impl Drop for PagedCodes {
    fn drop(&mut self) {
        self.cache.forget(self.owner);
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(len: usize, fill: u8) -> impl FnOnce() -> std::io::Result<Vec<u8>> {
        move || Ok(vec![fill; len])
    }

    #[test]
    fn keeps_recent_lists_within_the_budget() {
        // 16 shards of 1 MiB; lists of 40 KiB: 25 fit per shard.
        let cache = ListCache::new(16 << 20);
        assert_eq!(cache.shards.len(), MAX_SHARDS);
        let owner = cache.register();
        for list in 0..2000u32 {
            let bytes = cache
                .get_or_read(owner, list, read(40 << 10, list as u8))
                .unwrap();
            assert_eq!(&bytes[..], &[list as u8; 40 << 10][..]);
            let stats = cache.stats();
            assert!(stats.resident_bytes <= cache.budget() as u64, "{stats:?}");
        }
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (0, 2000));
        assert_eq!(stats.bytes_read, 2000 * (40 << 10));
        assert_eq!(stats.lists + stats.evictions, 2000);
        assert!(stats.lists >= 16 * 20, "{stats:?}");
        // The most recent list is held: no read, and the right bytes.
        let again = cache
            .get_or_read(owner, 1999, || panic!("should be cached"))
            .unwrap();
        assert_eq!(&again[..], &[1999u32 as u8; 40 << 10][..]);
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn evicts_the_least_recently_used_list_of_a_shard() {
        // One shard of 100 bytes; lists of 40 bytes: two fit.
        let cache = ListCache::new(100);
        let owner = cache.register();
        let (a, b, c) = (3, 1, 2);
        cache.get_or_read(owner, a, read(40, 1)).unwrap();
        cache.get_or_read(owner, b, read(40, 2)).unwrap();
        // Use `a` again: `b` is now the oldest, so `c` evicts `b`.
        cache.get_or_read(owner, a, read(40, 1)).unwrap();
        cache.get_or_read(owner, c, read(40, 3)).unwrap();
        assert!(cache.contains(owner, a));
        assert!(!cache.contains(owner, b));
        assert!(cache.contains(owner, c));
        assert_eq!(cache.stats().evictions, 1);
    }

    #[test]
    fn oversized_lists_and_failed_reads_are_not_kept() {
        let cache = ListCache::new(10);
        let owner = cache.register();
        let big = cache.get_or_read(owner, 1, read(11, 7)).unwrap();
        assert_eq!(big.len(), 11);
        assert!(!cache.contains(owner, 1));
        let err = cache
            .get_or_read(owner, 2, || Err(std::io::Error::other("disk gone")))
            .unwrap_err();
        assert!(err.to_string().contains("disk gone"));
        assert!(!cache.contains(owner, 2));
        let stats = cache.stats();
        assert_eq!((stats.read_errors, stats.resident_bytes), (1, 0));
        // A zero budget keeps nothing.
        let none = ListCache::new(0);
        none.get_or_read(1, 1, read(1, 1)).unwrap();
        assert_eq!(none.stats().lists, 0);
    }

    #[test]
    fn forgetting_an_owner_frees_only_its_lists() {
        let cache = ListCache::new(1 << 20);
        let (x, y) = (cache.register(), cache.register());
        for list in 0..50 {
            cache.get_or_read(x, list, read(10, 1)).unwrap();
            cache.get_or_read(y, list, read(10, 2)).unwrap();
        }
        cache.forget(x);
        let stats = cache.stats();
        assert_eq!((stats.lists, stats.resident_bytes), (50, 500));
        assert!(!cache.contains(x, 3) && cache.contains(y, 3));
    }
}
