//! Tensor bytes made on first use (an Orbax array, decompressed from its zstd chunks), kept in a
//! process-wide cache of at most [`LAZY_BUDGET`] bytes: past it the least recently used are
//! dropped (and made again if asked for again), so zooming across a 140 GB compressed checkpoint
//! holds what is being looked at, not everything ever looked at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

/// Most bytes the cache of made tensors holds (the most recent one is kept even if larger).
pub const LAZY_BUDGET: u64 = 4 << 30;

type Slot = Mutex<Option<Result<Bytes, String>>>;

/// A loader's recipe for a tensor's bytes, run when something first reads them (by whichever
/// thread asks first; others asking at the same time wait for it), the result cached.
pub struct LazyBytes {
    len: u64,
    key: u64,
    slot: Arc<Slot>,
    #[allow(clippy::type_complexity)]
    load: Box<dyn Fn() -> Result<Bytes, String> + Send + Sync>,
}

/// A tensor's bytes while something reads them: borrowed from a map or the model, or a share of
/// bytes made on first use (which stay alive while this does, even if the cache drops them).
pub enum TensorBytes<'a> {
    /// Bytes the tensor holds.
    Borrowed(&'a [u8]),
    /// Bytes made on first use.
    Shared(Bytes),
}

impl std::ops::Deref for TensorBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            TensorBytes::Borrowed(b) => b,
            TensorBytes::Shared(b) => b,
        }
    }
}

/// The cache's bookkeeping: each made tensor's slot, size and last use.
#[derive(Default)]
struct Lru {
    entries: HashMap<usize, (Weak<Slot>, u64, u64)>,
    total: u64,
    tick: u64,
}

fn lru() -> MutexGuard<'static, Lru> {
    static LRU: std::sync::OnceLock<Mutex<Lru>> = std::sync::OnceLock::new();
    LRU.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Result<Bytes, String>>> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A key for [`LazyBytes::new`] from whatever identifies what the bytes are made of.
pub fn key_of(what: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut h);
    h.finish()
}

impl LazyBytes {
    /// Bytes of length `len` that `load` produces; `key` identifies what it reads (the stored
    /// chunks), so caches can tell tensors apart without reading them.
    pub fn new(
        len: u64,
        key: u64,
        load: impl Fn() -> Result<Bytes, String> + Send + Sync + 'static,
    ) -> Self {
        LazyBytes {
            len,
            key,
            slot: Arc::new(Mutex::new(None)),
            load: Box::new(load),
        }
    }

    fn produce(&self) -> Result<Bytes, String> {
        let b = (self.load)()?;
        if b.len() as u64 != self.len {
            return Err(format!(
                "{} bytes where {} were expected",
                b.len(),
                self.len
            ));
        }
        Ok(b)
    }

    /// The bytes, made now if they are not cached, and cached (an error is kept too).
    pub fn get(&self) -> Result<Bytes, String> {
        let id = Arc::as_ptr(&self.slot) as usize;
        let made = {
            let mut slot = lock(&self.slot);
            if let Some(r) = slot.as_ref() {
                let r = r.clone();
                drop(slot);
                let mut l = lru();
                l.tick += 1;
                let tick = l.tick;
                if let Some(e) = l.entries.get_mut(&id) {
                    e.2 = tick;
                }
                return r;
            }
            let r = self.produce();
            *slot = Some(r.clone());
            r
        };
        if made.is_ok() {
            self.admit(id);
        }
        made
    }

    /// Records newly made bytes and drops the least recently used others past the budget.
    fn admit(&self, id: usize) {
        let victims = {
            let mut l = lru();
            l.tick += 1;
            let tick = l.tick;
            l.entries
                .insert(id, (Arc::downgrade(&self.slot), self.len, tick));
            l.total += self.len;
            evict(&mut l, id, LAZY_BUDGET)
        };
        // Outside the cache's lock: a victim's slot may be held by a thread making it.
        for weak in victims {
            if let Some(slot) = weak.upgrade() {
                let mut s = lock(&slot);
                if matches!(*s, Some(Ok(_))) {
                    *s = None;
                }
            }
        }
    }

    /// The bytes if cached, else made now and not cached (for one pass over many tensors, which
    /// would otherwise push the tensors being looked at out of the cache).
    pub fn get_or_produce(&self) -> Result<Bytes, String> {
        if let Some(r) = lock(&self.slot).as_ref() {
            return r.clone();
        }
        self.produce()
    }

    /// Whether the bytes are cached now (or failed to be made).
    pub fn is_ready(&self) -> bool {
        lock(&self.slot).is_some()
    }

    /// Whether making the bytes failed (known only once tried).
    pub fn failed(&self) -> Option<String> {
        match lock(&self.slot).as_ref() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// The byte length the bytes will have.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no bytes to produce.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What identifies the stored data behind these bytes.
    pub fn key(&self) -> u64 {
        self.key
    }
}

/// Takes the least recently used entries other than `keep` out of `l` until it holds at most
/// `budget` bytes; returns their slots, to be emptied.
fn evict(l: &mut Lru, keep: usize, budget: u64) -> Vec<Weak<Slot>> {
    let mut victims = Vec::new();
    if l.total <= budget {
        return victims;
    }
    let mut order: Vec<(u64, usize)> = l
        .entries
        .iter()
        .filter(|(k, _)| **k != keep)
        .map(|(k, e)| (e.2, *k))
        .collect();
    order.sort_unstable();
    for (_, k) in order {
        if l.total <= budget {
            break;
        }
        if let Some((weak, len, _)) = l.entries.remove(&k) {
            l.total -= len;
            victims.push(weak);
        }
    }
    victims
}

impl Drop for LazyBytes {
    fn drop(&mut self) {
        let id = Arc::as_ptr(&self.slot) as usize;
        let mut l = lru();
        if let Some((_, len, _)) = l.entries.remove(&id) {
            l.total -= len;
        }
    }
}

impl std::fmt::Debug for LazyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyBytes")
            .field("len", &self.len)
            .field("ready", &self.is_ready())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn made_once_then_cached_and_a_failure_kept() {
        let runs = Arc::new(AtomicUsize::new(0));
        let lazy = |len: u64| {
            let runs = runs.clone();
            LazyBytes::new(len, 0, move || {
                runs.fetch_add(1, Ordering::Relaxed);
                Ok(Bytes::from(vec![7u8; len as usize]))
            })
        };
        let a = lazy(16);
        assert!(!a.is_ready());
        assert_eq!(&a.get().unwrap()[..], &[7u8; 16]);
        assert_eq!(a.get().unwrap().len(), 16);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        // A pass that does not cache leaves the cache as it was.
        let b = lazy(8);
        assert_eq!(b.get_or_produce().unwrap().len(), 8);
        assert!(!b.is_ready());
        let short = LazyBytes::new(LAZY_BUDGET + 1, 0, || Ok(Bytes::new()));
        assert!(short.get().is_err(), "a wrong length is an error");
        assert!(a.is_ready(), "a failure takes no room");
        let wrong = LazyBytes::new(4, 0, || Err("gone".into()));
        assert_eq!(wrong.get().unwrap_err(), "gone");
        assert_eq!(wrong.failed().as_deref(), Some("gone"));
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_newest_stays() {
        let slots: Vec<Arc<Slot>> = (0..4).map(|_| Arc::new(Mutex::new(None))).collect();
        let mut l = Lru::default();
        for (i, s) in slots.iter().enumerate() {
            // Sizes 10, 20, 30, 40; used in the order 2, 0, 3, 1.
            let tick = [2u64, 4, 1, 3][i];
            l.entries
                .insert(i, (Arc::downgrade(s), 10 * (i as u64 + 1), tick));
            l.total += 10 * (i as u64 + 1);
        }
        assert!(evict(&mut l, 1, 100).is_empty());
        // Down to 60 bytes: slot 2 (oldest) goes, then slot 0; slot 1, the newest, stays.
        let gone = evict(&mut l, 1, 60);
        let gone: Vec<usize> = gone
            .iter()
            .map(|w| {
                slots
                    .iter()
                    .position(|s| Arc::ptr_eq(s, &w.upgrade().unwrap()))
                    .unwrap()
            })
            .collect();
        assert_eq!(gone, [2, 0]);
        assert_eq!(l.total, 60);
        // Kept even when it alone is past the budget.
        evict(&mut l, 1, 5);
        assert_eq!(l.entries.keys().copied().collect::<Vec<_>>(), [1]);
    }
}
