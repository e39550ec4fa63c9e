//! Which bytes lie in a read-only file mapping, and handing such pages back to the kernel once read.
//!
//! `load::map_file` wraps every mapping in `Mapped`, which registers its address range while
//! alive; [`is_file_mapped`] asks the registry, and [`release_mapped`] drops the page-table entries
//! of mapped bytes a pass has finished with (never heap memory, where the same advice would zero
//! the pages).

/// Address ranges of the live file mappings made by `load::map_file`.
static MAPPED: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// A file mapping that registers its address range while alive (see [`is_file_mapped`]).
pub(crate) struct Mapped(memmap2::Mmap);

impl Mapped {
    pub(crate) fn new(map: memmap2::Mmap) -> Self {
        if let Ok(mut m) = MAPPED.lock() {
            m.push((map.as_ptr() as usize, map.len()));
        }
        Mapped(map)
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let key = (self.0.as_ptr() as usize, self.0.len());
        if let Ok(mut m) = MAPPED.lock()
            && let Some(i) = m.iter().position(|&r| r == key)
        {
            m.swap_remove(i);
        }
    }
}

/// Whether `bytes` lie entirely inside a live read-only file mapping made by `load::map_file` (and not
/// on the heap): such pages may be handed back to the kernel and will read the same again.
pub fn is_file_mapped(bytes: &[u8]) -> bool {
    let (a, n) = (bytes.as_ptr() as usize, bytes.len());
    MAPPED.lock().is_ok_and(|m| {
        m.iter()
            .any(|&(start, len)| a >= start && a.saturating_add(n) <= start.saturating_add(len))
    })
}

/// Tells the kernel this process no longer needs the pages of `range`, when it lies in a file
/// mapping ([`is_file_mapped`]; anything else is left alone): `MADV_DONTNEED` on a read-only file
/// mapping drops the page-table entries and keeps the page cache, and a later read faults the same
/// bytes back in. Passes over a whole model call it after each large tensor, so resident memory
/// holds what is being read, not everything read so far. No-op off Unix.
pub fn release_mapped(range: &[u8]) {
    if is_file_mapped(range) {
        advise_dont_need(range);
    }
}

#[cfg(unix)]
fn advise_dont_need(range: &[u8]) {
    // SAFETY: `page_size` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as usize } else { 4096 };
    // Only whole pages inside the range: a neighbour's partly used page is left alone.
    let begin = (range.as_ptr() as usize).div_ceil(page) * page;
    let end = (range.as_ptr() as usize + range.len()) / page * page;
    if end <= begin {
        return;
    }
    // SAFETY: [begin, end) lies inside `range`, which is part of a live read-only file mapping
    // (`load::map_file`); MADV_DONTNEED on such a mapping only drops page-table entries, and any
    // later read of these bytes faults the same file contents back in. Heap memory (where the
    // advice would zero the pages) never gets here: [`release_mapped`] checked [`is_file_mapped`].
    unsafe {
        libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_DONTNEED);
    }
}

#[cfg(not(unix))]
fn advise_dont_need(_range: &[u8]) {}
