//! Chunked datasets: the chunk index (a v1 B-tree for the layout message v3 that h5py writes by
//! default; a single chunk, an implicit index or a fixed array for the v4 that `libver="latest"`
//! writes) and the filter pipeline (deflate, shuffle, Fletcher-32), assembled into the dataset's
//! row-major bytes.
//!
//! Such a dataset is not a slice of the map: it is inflated when the file is opened, within a bound
//! that a valid file always meets (deflate expands at most 1032-fold: the chunked datasets of a
//! file cannot declare more bytes in all than 1032 times the file, plus a megabyte for chunks that
//! were never written and read as zeros). Extensible-array and v2-B-tree indexes (datasets that can grow) and other
//! filters (LZF, szip, Blosc…) are reported by name, not guessed at.

use std::io::Read;

use super::{File, H5, get, uint, undefined};

/// How a chunked dataset's chunks are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::load) enum ChunkIndex {
    /// A v1 B-tree of chunks (layout message v3), at this address.
    BTree(u64),
    /// The whole dataset is one chunk; a filtered one has its stored size and filter mask.
    Single {
        addr: u64,
        filtered: Option<(u64, u32)>,
    },
    /// Unfiltered chunks back to back in row-major order from this address.
    Implicit(u64),
    /// A fixed array whose header is at this address.
    FixedArray(u64),
}

/// A filter of the pipeline, in the order the writer applied them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::load) enum Filter {
    Deflate,
    /// Byte shuffle of elements of this many bytes.
    Shuffle(usize),
    Fletcher32,
}

/// A chunked dataset's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::load) struct Chunked {
    /// Chunk dimensions in elements, outermost first (the dataset's rank).
    pub chunk: Vec<u64>,
    /// Where the chunks are.
    pub index: ChunkIndex,
    /// The filter pipeline (empty: none).
    pub filters: Vec<Filter>,
}

/// Chunks of one dataset at most (a 1 TB dataset in 1 MB chunks).
const MAX_CHUNKS: u64 = 1 << 20;

/// One stored chunk: its first element's coordinates, where its bytes are, and which filters were
/// skipped for it (bit i: filter i).
struct Stored {
    offsets: Vec<u64>,
    at: usize,
    size: usize,
    mask: u32,
}

/// The chunk layout of a layout message (`d`) of version 3 or 4, class 2.
pub(super) fn layout(file: &File<'_>, d: &[u8], version: u64) -> H5<Result<Chunked, String>> {
    if version == 3 {
        let dims = uint(d, 2, 1)? as usize;
        let addr = file.off_in(d, 3)?;
        // `dims` sizes of 4 bytes, the last one the element size.
        let sizes = (0..dims)
            .map(|i| uint(d, 3 + file.so + 4 * i, 4))
            .collect::<H5<Vec<u64>>>()?;
        let chunk = sizes
            .split_last()
            .map(|(_, c)| c.to_vec())
            .unwrap_or_default();
        return Ok(Ok(Chunked {
            chunk,
            index: ChunkIndex::BTree(addr),
            filters: Vec::new(),
        }));
    }
    let flags = uint(d, 2, 1)?;
    let dims = uint(d, 3, 1)? as usize;
    let width = uint(d, 4, 1)? as usize;
    if !(1..=8).contains(&width) {
        return Err(format!("chunk dimensions of {width} bytes"));
    }
    let sizes = (0..dims)
        .map(|i| uint(d, 5 + width * i, width))
        .collect::<H5<Vec<u64>>>()?;
    let chunk = sizes
        .split_last()
        .map(|(_, c)| c.to_vec())
        .unwrap_or_default();
    let mut p = 5 + width * dims;
    let kind = uint(d, p, 1)?;
    p += 1;
    let index = match kind {
        1 => {
            let filtered = if flags & 2 != 0 {
                let size = uint(d, p, file.sl)?;
                let mask = uint(d, p + file.sl, 4)? as u32;
                p += file.sl + 4;
                Some((size, mask))
            } else {
                None
            };
            ChunkIndex::Single {
                addr: file.off_in(d, p)?,
                filtered,
            }
        }
        2 => ChunkIndex::Implicit(file.off_in(d, p)?),
        3 => ChunkIndex::FixedArray(file.off_in(d, p + 1)?),
        4 => {
            return Ok(Err(
                "chunks indexed by an extensible array (a resizable dataset)".into(),
            ));
        }
        5 => {
            return Ok(Err(
                "chunks indexed by a v2 B-tree (a resizable dataset)".into()
            ));
        }
        k => return Ok(Err(format!("chunk index type {k}"))),
    };
    Ok(Ok(Chunked {
        chunk,
        index,
        filters: Vec::new(),
    }))
}

/// The filter pipeline message; `Err` names a filter modelmap does not undo.
pub(super) fn pipeline(d: &[u8]) -> H5<Result<Vec<Filter>, String>> {
    let version = uint(d, 0, 1)?;
    let n = uint(d, 1, 1)? as usize;
    let mut p = match version {
        1 => 8,
        2 => 2,
        v => return Err(format!("filter pipeline message v{v}")),
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let id = uint(d, p, 2)?;
        p += 2;
        let name_len = if version == 1 || id >= 256 {
            p += 2;
            uint(d, p - 2, 2)? as usize
        } else {
            0
        };
        let _flags = uint(d, p, 2)?;
        let values = uint(d, p + 2, 2)? as usize;
        p += 4;
        let name = get(d, p, name_len)?;
        let name = String::from_utf8_lossy(
            &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())],
        )
        .into_owned();
        p += if version == 1 {
            name_len.next_multiple_of(8)
        } else {
            name_len
        };
        let first = uint(d, p, 4).ok();
        p += 4 * values;
        if version == 1 && values % 2 == 1 {
            p += 4;
        }
        out.push(match id {
            1 => Filter::Deflate,
            2 => match first {
                Some(size @ 1..=1024) => Filter::Shuffle(size as usize),
                _ => return Ok(Err("a shuffle filter without its element size".into())),
            },
            3 => Filter::Fletcher32,
            _ => {
                let known = match id {
                    4 => "szip",
                    5 => "n-bit",
                    6 => "scale-offset",
                    32000 => "LZF",
                    32001 => "Blosc",
                    32004 => "LZ4",
                    32008 => "bitshuffle",
                    32015 => "Zstandard",
                    _ => "",
                };
                let what = match (known, name.is_empty()) {
                    ("", true) => format!("filter {id}"),
                    ("", false) => format!("filter {id} ({name})"),
                    (k, _) => format!("the {k} filter ({id})"),
                };
                return Ok(Err(format!("{what} is not one modelmap decodes")));
            }
        });
    }
    Ok(Ok(out))
}

impl File<'_> {
    /// The row-major bytes of a chunked dataset of `dims` elements of `elem` bytes.
    pub(in crate::load) fn read_chunked(
        &self,
        dims: &[u64],
        elem: u64,
        c: &Chunked,
    ) -> H5<Vec<u8>> {
        let rank = dims.len();
        if c.chunk.len() != rank || c.chunk.contains(&0) {
            return Err(format!(
                "chunks of {:?} for a dataset of {rank} dimensions",
                c.chunk
            ));
        }
        let total = dims
            .iter()
            .try_fold(elem, |a, &d| a.checked_mul(d))
            .ok_or("a dataset whose size overflows")?;
        // The bound is for the whole file: many datasets cannot each claim it.
        let bound = (self.buf.len() as u64).saturating_mul(1032) + (1 << 20);
        let assembled = self.assembled.get().saturating_add(total);
        if assembled > bound {
            return Err(format!(
                "{total} bytes declared (with the other chunked datasets, {assembled}), more \
                 than a {}-byte file can hold even compressed",
                self.buf.len()
            ));
        }
        self.assembled.set(assembled);
        let chunk_bytes = c
            .chunk
            .iter()
            .try_fold(elem, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= bound)
            .ok_or("chunks whose size overflows")? as usize;
        // Chunks along each dimension, and in all.
        let grid: Vec<u64> = dims
            .iter()
            .zip(&c.chunk)
            .map(|(&d, &k)| d.div_ceil(k))
            .collect();
        let count = grid
            .iter()
            .try_fold(1u64, |a, &g| a.checked_mul(g))
            .filter(|&n| n <= MAX_CHUNKS)
            .ok_or("more chunks than modelmap reads")?;
        let mut out = vec![0u8; total as usize];
        if total == 0 {
            return Ok(out);
        }
        let stored = self.chunk_list(c, &grid, count, chunk_bytes)?;
        if stored.len() as u64 > count {
            return Err(format!("{} chunks for a grid of {count}", stored.len()));
        }
        for s in stored {
            if s.offsets.len() != rank
                || s.offsets
                    .iter()
                    .zip(&c.chunk)
                    .zip(dims)
                    .any(|((&o, &k), &d)| o % k != 0 || o >= d)
            {
                return Err(format!("a chunk at {:?} outside the dataset", s.offsets));
            }
            let raw = get(self.buf, s.at, s.size)?;
            let data = unfilter(raw, &c.filters, s.mask, chunk_bytes)?;
            if data.len() != chunk_bytes {
                return Err(format!(
                    "a chunk at {:?} holds {} bytes, not {chunk_bytes}",
                    s.offsets,
                    data.len()
                ));
            }
            place(&mut out, &data, dims, &c.chunk, &s.offsets, elem as usize);
        }
        Ok(out)
    }

    fn chunk_list(
        &self,
        c: &Chunked,
        grid: &[u64],
        count: u64,
        chunk_bytes: usize,
    ) -> H5<Vec<Stored>> {
        let at_grid = |i: u64| {
            // Row-major position `i` in the chunk grid, as element coordinates.
            let mut rest = i;
            let mut offsets = vec![0; grid.len()];
            for d in (0..grid.len()).rev() {
                offsets[d] = (rest % grid[d]) * c.chunk[d];
                rest /= grid[d];
            }
            offsets
        };
        match c.index {
            ChunkIndex::Single { addr, filtered } => {
                if count != 1 {
                    return Err("a single-chunk index for a dataset of many chunks".into());
                }
                if undefined(addr, self.so) {
                    return Ok(Vec::new());
                }
                let (size, mask) = filtered.unwrap_or((chunk_bytes as u64, 0));
                Ok(vec![Stored {
                    offsets: vec![0; grid.len()],
                    at: self.addr(addr)?,
                    size: usize::try_from(size).map_err(|_| "a chunk's size overflows")?,
                    mask,
                }])
            }
            ChunkIndex::Implicit(addr) => {
                if !c.filters.is_empty() {
                    return Err("an implicit chunk index with filters".into());
                }
                if undefined(addr, self.so) {
                    return Ok(Vec::new());
                }
                let base = self.addr(addr)?;
                (0..count)
                    .map(|i| {
                        Ok(Stored {
                            offsets: at_grid(i),
                            at: base
                                .checked_add(i as usize * chunk_bytes)
                                .ok_or("a chunk address overflows")?,
                            size: chunk_bytes,
                            mask: 0,
                        })
                    })
                    .collect()
            }
            ChunkIndex::FixedArray(addr) => {
                self.fixed_array(addr, !c.filters.is_empty(), count, chunk_bytes, &at_grid)
            }
            ChunkIndex::BTree(addr) => self.chunk_btree(addr, grid.len(), count),
        }
    }

    /// A v1 B-tree of chunks (node type 1): keys of (stored size, filter mask, offsets).
    fn chunk_btree(&self, root: u64, rank: usize, count: u64) -> H5<Vec<Stored>> {
        let mut out = Vec::new();
        if undefined(root, self.so) {
            return Ok(out);
        }
        let key = 8 + 8 * (rank + 1);
        let mut stack = vec![(root, 0usize)];
        let mut seen = std::collections::HashSet::new();
        while let Some((node, depth)) = stack.pop() {
            if depth > super::MAX_DEPTH || !seen.insert(node) || seen.len() as u64 > count + 64 {
                return Err("a chunk B-tree loops or runs too deep".into());
            }
            let at = self.addr(node)?;
            if get(self.buf, at, 4)? != b"TREE" || uint(self.buf, at + 4, 1)? != 1 {
                return Err(format!("no chunk B-tree node at byte {at}"));
            }
            let level = uint(self.buf, at + 5, 1)?;
            let entries = uint(self.buf, at + 6, 2)? as usize;
            let mut p = at + 8 + 2 * self.so;
            for _ in 0..entries {
                let child = uint(self.buf, p + key, self.so)?;
                if level > 0 {
                    stack.push((child, depth + 1));
                } else {
                    let size = uint(self.buf, p, 4)? as usize;
                    let mask = uint(self.buf, p + 4, 4)? as u32;
                    let offsets = (0..rank)
                        .map(|i| uint(self.buf, p + 8 + 8 * i, 8))
                        .collect::<H5<Vec<u64>>>()?;
                    if out.len() as u64 >= count {
                        return Err("a chunk B-tree lists more chunks than the dataset has".into());
                    }
                    out.push(Stored {
                        offsets,
                        at: self.addr(child)?,
                        size,
                        mask,
                    });
                }
                p += key + self.so;
            }
        }
        Ok(out)
    }

    /// A fixed array of chunk addresses (with sizes and masks when filtered), in grid order, its
    /// data block in pages of 2^page_bits entries when it has more than that.
    fn fixed_array(
        &self,
        header: u64,
        filtered: bool,
        count: u64,
        chunk_bytes: usize,
        at_grid: &dyn Fn(u64) -> Vec<u64>,
    ) -> H5<Vec<Stored>> {
        let buf = self.buf;
        let h = self.addr(header)?;
        if get(buf, h, 4)? != b"FAHD" {
            return Err(format!("no fixed array header at byte {h}"));
        }
        let entry = uint(buf, h + 6, 1)? as usize;
        let page_bits = uint(buf, h + 7, 1)? as u32;
        let n = self.len(h + 8)?;
        let block = self.off(h + 8 + self.sl)?;
        if n != count {
            return Err(format!("a fixed array of {n} chunks for a grid of {count}"));
        }
        let size_len = entry.checked_sub(self.so + 4).filter(|&l| l <= 8);
        let size_len = match (filtered, size_len) {
            (false, _) if entry == self.so => 0,
            (true, Some(l)) if l > 0 => l,
            _ => return Err(format!("fixed array entries of {entry} bytes")),
        };
        if undefined(block, self.so) {
            return Ok(Vec::new());
        }
        let b = self.addr(block)?;
        if get(buf, b, 4)? != b"FADB" {
            return Err(format!("no fixed array data block at byte {b}"));
        }
        let mut p = b + 6 + self.so;
        let page = if page_bits < 32 {
            1u64 << page_bits
        } else {
            u64::MAX
        };
        let paged = n > page;
        // Entry i's byte: unpaged, after the block's prefix; paged, in page i / page after the
        // prefix, its bitmap and checksum, each page followed by its own checksum.
        let pages = if paged { n.div_ceil(page) } else { 1 };
        if paged {
            p += pages.div_ceil(8) as usize + 4;
        }
        let mut out = Vec::new();
        for i in 0..n {
            let e = if paged {
                let (pg, k) = (i / page, i % page);
                p + (pg * (page * entry as u64 + 4) + k * entry as u64) as usize
            } else {
                p + i as usize * entry
            };
            let addr = self.off(e)?;
            if undefined(addr, self.so) {
                continue;
            }
            let (size, mask) = if filtered {
                (
                    uint(buf, e + self.so, size_len)? as usize,
                    uint(buf, e + self.so + size_len, 4)? as u32,
                )
            } else {
                (chunk_bytes, 0)
            };
            out.push(Stored {
                offsets: at_grid(i),
                at: self.addr(addr)?,
                size,
                mask,
            });
        }
        Ok(out)
    }
}

/// Undoes the pipeline on one stored chunk (filters in reverse, skipping those `mask` marks),
/// never producing much more than the `chunk_bytes` it must come to.
fn unfilter(raw: &[u8], filters: &[Filter], mask: u32, chunk_bytes: usize) -> H5<Vec<u8>> {
    let mut data = raw.to_vec();
    for (i, f) in filters.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        data = match *f {
            Filter::Deflate => {
                let limit = chunk_bytes as u64 + 64;
                let mut out = Vec::with_capacity(chunk_bytes);
                flate2::read::ZlibDecoder::new(data.as_slice())
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("a deflated chunk does not inflate: {e}"))?;
                if out.len() as u64 > limit {
                    return Err("a deflated chunk inflates past its size".into());
                }
                out
            }
            Filter::Shuffle(size) => unshuffle(&data, size),
            Filter::Fletcher32 => {
                let split = data
                    .len()
                    .checked_sub(4)
                    .ok_or("a Fletcher-32 chunk of under 4 bytes")?;
                let (body, sum) = data.split_at(split);
                let want = fletcher32(body);
                let got = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
                // HDF5 1.6.0–1.6.2 stored the two halves swapped; its reader accepts both.
                if got != want && got != want.rotate_left(16) {
                    return Err("a chunk fails its Fletcher-32 checksum".into());
                }
                body.to_vec()
            }
        };
    }
    Ok(data)
}

/// HDF5's Fletcher-32 of `data`, read as big-endian 16-bit words (a last odd byte as the high
/// byte of one).
fn fletcher32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (0u64, 0u64);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        a = (a + ((u64::from(w[0]) << 8) | u64::from(w[1]))) % 65535;
        b = (b + a) % 65535;
    }
    if let [last] = words.remainder() {
        a = (a + (u64::from(*last) << 8)) % 65535;
        b = (b + a) % 65535;
    }
    ((b << 16) | a) as u32
}

/// Inverse of HDF5's shuffle: byte j of every element was stored together; a tail shorter than an
/// element's worth per lane stays as it is.
fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len() / size;
    if size <= 1 || n <= 1 {
        return data.to_vec();
    }
    let mut out = data.to_vec();
    for j in 0..size {
        for i in 0..n {
            out[i * size + j] = data[j * n + i];
        }
    }
    out
}

/// Copies a decoded chunk whose first element is at `offsets` into the dataset's row-major bytes,
/// clipped to the dataset (edge chunks are stored whole).
fn place(out: &mut [u8], chunk: &[u8], dims: &[u64], shape: &[u64], offsets: &[u64], elem: usize) {
    let rank = dims.len();
    if rank == 0 {
        let n = out.len().min(chunk.len());
        out[..n].copy_from_slice(&chunk[..n]);
        return;
    }
    let last = rank - 1;
    let run = (dims[last] - offsets[last]).min(shape[last]) as usize * elem;
    // Rows of the chunk (all dimensions but the last), those inside the dataset.
    let extent: Vec<u64> = (0..last)
        .map(|d| (dims[d] - offsets[d]).min(shape[d]))
        .collect();
    let rows: u64 = extent.iter().product();
    let mut idx = vec![0u64; last];
    for _ in 0..rows {
        let (mut src, mut dst) = (0u64, 0u64);
        for d in 0..last {
            src = src * shape[d] + idx[d];
            dst = dst * dims[d] + offsets[d] + idx[d];
        }
        let src = (src * shape[last]) as usize * elem;
        let dst = (dst * dims[last] + offsets[last]) as usize * elem;
        if let (Some(to), Some(from)) = (out.get_mut(dst..dst + run), chunk.get(src..src + run)) {
            to.copy_from_slice(from);
        }
        for d in (0..last).rev() {
            idx[d] += 1;
            if idx[d] < extent[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}
