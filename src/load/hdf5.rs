//! A small, checked reader for the part of HDF5 that h5py writes for Keras weights: superblocks
//! v0–v3, object headers v1 and v2, groups as symbol tables (v1 B-tree, local heap), compact
//! link messages or dense link storage (a fractal heap of link messages indexed by a v2 B-tree of
//! up to two levels), datasets of fixed-size numbers stored contiguously or compactly, and
//! attributes holding strings (fixed-length or variable-length in the global heap) and numbers.
//!
//! Every address is checked against the file; nothing is allocated by a size read from it before
//! that check. Chunked datasets are read through their chunk index and filter pipeline
//! ([`chunks`]); big-endian numbers are marked for the caller to swap. Name indexes deeper than
//! two levels (groups of thousands of links) are reported as such, not guessed at.

use std::collections::HashSet;

use crate::model::DType;

mod chunks;

pub(super) use chunks::Chunked;

type H5<T> = Result<T, String>;

/// Objects visited at most, and group nesting at most.
const MAX_OBJECTS: usize = 1 << 20;
const MAX_DEPTH: usize = 64;

/// An open HDF5 file.
pub(super) struct File<'a> {
    buf: &'a [u8],
    /// Size of offsets and of lengths (bytes).
    so: usize,
    sl: usize,
    base: u64,
    root: u64,
    /// Bytes of chunked datasets assembled so far (bounded for the whole file, see
    /// [`chunks`]).
    assembled: std::cell::Cell<u64>,
}

/// Where a dataset's elements are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Storage {
    /// Bytes in the file.
    Bytes(std::ops::Range<usize>),
    /// Never written (reads as the fill value).
    Unallocated,
    /// In chunks, possibly compressed: [`File::read_chunked`] assembles them.
    Chunked(Chunked),
    /// Why the data cannot be read here.
    Unsupported(String),
}

/// A dataset.
#[derive(Clone, Debug)]
pub(super) struct Dataset {
    /// Dimensions, outermost first.
    pub dims: Vec<u64>,
    /// Element type (`None` when not a plain little-endian number).
    pub dtype: Option<DType>,
    /// What the datatype is, for messages.
    pub type_text: String,
    /// Bytes per element.
    pub elem_size: u64,
    /// Numbers stored big-endian (the reader swaps them).
    pub big_endian: bool,
    /// The elements.
    pub storage: Storage,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum AttrValue {
    /// Strings (a scalar string is one).
    Strings(Vec<String>),
    /// Numbers.
    Numbers(Vec<f64>),
    /// Anything else.
    Other,
}

/// One object: its attributes and, for a group, its links; for a dataset, its data.
#[derive(Clone, Debug, Default)]
pub(super) struct Object {
    pub attrs: Vec<(String, AttrValue)>,
    pub links: Vec<(String, u64)>,
    pub dataset: Option<Dataset>,
}

struct Msg<'a> {
    kind: u16,
    data: &'a [u8],
}

fn get(buf: &[u8], at: usize, n: usize) -> H5<&[u8]> {
    at.checked_add(n)
        .and_then(|end| buf.get(at..end))
        .ok_or_else(|| format!("a read of {n} bytes at byte {at} runs past the end"))
}

/// A little-endian unsigned integer of `n` ≤ 8 bytes.
fn uint(buf: &[u8], at: usize, n: usize) -> H5<u64> {
    let b = get(buf, at, n)?;
    Ok(b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn undefined(addr: u64, so: usize) -> bool {
    so >= 8 && addr == u64::MAX || so < 8 && addr == (1u64 << (8 * so)) - 1
}

impl<'a> File<'a> {
    /// Reads the superblock.
    pub(super) fn open(buf: &'a [u8]) -> H5<Self> {
        const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
        if !buf.starts_with(SIG) {
            return Err("no HDF5 signature at byte 0".into());
        }
        let version = uint(buf, 8, 1)?;
        let (so, sl, base, root) = match version {
            0 | 1 => {
                let so = uint(buf, 13, 1)? as usize;
                let sl = uint(buf, 14, 1)? as usize;
                let at = if version == 0 { 24 } else { 28 };
                let base = uint(buf, at, so.min(8))?;
                // Base, free space, end of file, driver info, then the root's symbol table entry
                // (link name offset, object header address, …).
                let root = uint(buf, at + 4 * so + so, so.min(8))?;
                (so, sl, base, root)
            }
            2 | 3 => {
                let so = uint(buf, 9, 1)? as usize;
                let sl = uint(buf, 10, 1)? as usize;
                let base = uint(buf, 12, so.min(8))?;
                let root = uint(buf, 12 + 3 * so, so.min(8))?;
                (so, sl, base, root)
            }
            v => return Err(format!("superblock version {v} is not one modelmap reads")),
        };
        if ![2, 4, 8].contains(&so) || ![2, 4, 8].contains(&sl) {
            return Err(format!(
                "sizes of offsets {so} and lengths {sl} are not 2, 4 or 8"
            ));
        }
        Ok(File {
            buf,
            so,
            sl,
            base,
            root,
            assembled: std::cell::Cell::new(0),
        })
    }

    fn addr(&self, a: u64) -> H5<usize> {
        a.checked_add(self.base)
            .and_then(|x| usize::try_from(x).ok())
            .filter(|&x| x < self.buf.len())
            .ok_or_else(|| format!("address {a} is outside the file ({} bytes)", self.buf.len()))
    }

    fn off(&self, at: usize) -> H5<u64> {
        uint(self.buf, at, self.so)
    }

    fn len(&self, at: usize) -> H5<u64> {
        uint(self.buf, at, self.sl)
    }

    /// The messages of the object header at `addr`.
    fn messages(&self, addr: u64) -> H5<Vec<Msg<'a>>> {
        let at = self.addr(addr)?;
        let buf = self.buf;
        let mut out = Vec::new();
        // (start, end, version) of each block of messages still to read.
        let mut blocks: Vec<(usize, usize, u8)> = Vec::new();
        if get(buf, at, 4)? == b"OHDR" {
            let version = uint(buf, at + 4, 1)?;
            if version != 2 {
                return Err(format!("object header v{version} at byte {at}"));
            }
            let flags = uint(buf, at + 5, 1)? as u8;
            let mut p = at + 6;
            if flags & 0x20 != 0 {
                p += 16;
            }
            if flags & 0x10 != 0 {
                p += 4;
            }
            let width = 1usize << (flags & 3);
            let size = uint(buf, p, width)? as usize;
            p += width;
            let end = p.checked_add(size).filter(|&e| e <= buf.len());
            blocks.push((
                p,
                end.ok_or("an object header runs past the end")?,
                2 | flags << 4,
            ));
        } else {
            let version = uint(buf, at, 1)?;
            if version != 1 {
                return Err(format!("object header v{version} at byte {at}"));
            }
            let size = uint(buf, at + 8, 4)? as usize;
            let start = at + 16;
            let end = start.checked_add(size).filter(|&e| e <= buf.len());
            blocks.push((start, end.ok_or("an object header runs past the end")?, 1));
        }
        let mut seen = 0usize;
        let mut continued = HashSet::new();
        while let Some((start, end, v)) = blocks.pop() {
            seen += 1;
            if seen > 4096 {
                return Err("an object header continues more than 4096 times".into());
            }
            let (version, flags) = (v & 0x0F, v >> 4);
            let mut p = start;
            if version == 2 && seen > 1 {
                if get(buf, p, 4)? != b"OCHK" {
                    return Err(format!("no OCHK signature at byte {p}"));
                }
                p += 4;
            }
            // A continuation block (OCHK) ends with its checksum inside the length the
            // continuation message gives; chunk 0's size leaves its checksum out.
            let stop = if version == 2 && seen > 1 {
                end.saturating_sub(4)
            } else {
                end
            };
            loop {
                let head = if version == 2 {
                    4 + if flags & 0x04 != 0 { 2 } else { 0 }
                } else {
                    8
                };
                if p + head > stop {
                    break;
                }
                let (kind, size) = if version == 2 {
                    (uint(buf, p, 1)? as u16, uint(buf, p + 1, 2)? as usize)
                } else {
                    (uint(buf, p, 2)? as u16, uint(buf, p + 2, 2)? as usize)
                };
                let data_at = p + head;
                let data = get(buf, data_at, size)?;
                if data_at + size > stop {
                    return Err(format!("a header message at byte {p} runs past its block"));
                }
                if kind == 0x10 {
                    let a = self.addr(self.off(data_at)?)?;
                    if !continued.insert(a) {
                        return Err(format!("an object header continues twice at byte {a}"));
                    }
                    let n = self.len(data_at + self.so)? as usize;
                    let e = a.checked_add(n).filter(|&e| e <= buf.len());
                    let e = e.ok_or("a header continuation runs past the end")?;
                    blocks.push((a, e, v));
                } else {
                    out.push(Msg { kind, data });
                }
                p = data_at + size;
            }
        }
        Ok(out)
    }

    /// The object at `addr`.
    pub(super) fn object(&self, addr: u64) -> H5<Object> {
        let msgs = self.messages(addr)?;
        let mut obj = Object::default();
        let (mut space, mut dtype, mut layout, mut filters) = (None, None, None, None);
        for m in &msgs {
            match m.kind {
                0x01 => space = Some(self.dataspace(m.data)?),
                0x03 => dtype = Some(datatype_and_order(m.data)?),
                0x08 => layout = Some(self.layout(m.data)?),
                0x0B => filters = Some(chunks::pipeline(m.data)?),
                0x0C => {
                    if let Ok(a) = self.attribute(m.data) {
                        obj.attrs.push(a);
                    }
                }
                0x11 => {
                    let btree = self.off_in(m.data, 0)?;
                    let heap = self.off_in(m.data, self.so)?;
                    self.symbol_table(btree, heap, &mut obj.links)?;
                }
                0x06 => {
                    if let Some(link) = self.link(m.data)? {
                        obj.links.push(link);
                    }
                }
                0x02 => self.dense_links(m.data, &mut obj.links)?,
                _ => {}
            }
        }
        if let (Some(dims), Some((dt, text, size, big)), Some(storage)) = (space, dtype, layout) {
            let storage = match storage {
                Storage::Bytes(r) => {
                    let n = dims
                        .iter()
                        .try_fold(size, |a: u64, &d| a.checked_mul(d))
                        .ok_or("a dataset whose size overflows")?;
                    if (r.end - r.start) as u64 != n {
                        Storage::Unsupported(format!(
                            "{} bytes stored for {n} expected",
                            r.end - r.start
                        ))
                    } else {
                        Storage::Bytes(r)
                    }
                }
                Storage::Chunked(mut c) => match filters {
                    Some(Err(why)) => Storage::Unsupported(why),
                    Some(Ok(f)) => {
                        c.filters = f;
                        Storage::Chunked(c)
                    }
                    None => Storage::Chunked(c),
                },
                other => other,
            };
            obj.dataset = Some(Dataset {
                dims,
                dtype: dt,
                type_text: if big && size > 1 {
                    format!("big-endian {text}")
                } else {
                    text
                },
                elem_size: size,
                big_endian: big && size > 1,
                storage,
            });
        }
        Ok(obj)
    }

    fn off_in(&self, data: &[u8], at: usize) -> H5<u64> {
        uint(data, at, self.so)
    }

    fn dataspace(&self, d: &[u8]) -> H5<Vec<u64>> {
        let version = uint(d, 0, 1)?;
        let rank = uint(d, 1, 1)? as usize;
        if rank > 32 {
            return Err(format!("a dataspace of rank {rank}"));
        }
        let at = match version {
            1 => 8,
            2 => {
                if uint(d, 3, 1)? == 2 {
                    return Ok(vec![0]); // null dataspace: no elements
                }
                4
            }
            v => return Err(format!("dataspace message v{v}")),
        };
        (0..rank)
            .map(|i| uint(d, at + i * self.sl, self.sl))
            .collect()
    }

    fn layout(&self, d: &[u8]) -> H5<Storage> {
        let version = uint(d, 0, 1)?;
        if !(3..=4).contains(&version) {
            return Ok(Storage::Unsupported(format!(
                "data layout message v{version}"
            )));
        }
        Ok(match uint(d, 1, 1)? {
            0 => {
                let n = uint(d, 2, 2)? as usize;
                // Compact: the bytes are in the message itself; find them in the file.
                let data = get(d, 4, n)?;
                let start = data.as_ptr() as usize - self.buf.as_ptr() as usize;
                Storage::Bytes(start..start + n)
            }
            1 => {
                let a = self.off_in(d, 2)?;
                let n = uint(d, 2 + self.so, self.sl)?;
                if undefined(a, self.so) {
                    Storage::Unallocated
                } else {
                    let start = self.addr(a)?;
                    let end = usize::try_from(n)
                        .ok()
                        .and_then(|n| start.checked_add(n))
                        .filter(|&e| e <= self.buf.len())
                        .ok_or_else(|| format!("{n} bytes at address {a} run past the end"))?;
                    Storage::Bytes(start..end)
                }
            }
            2 => match chunks::layout(self, d, version)? {
                Ok(c) => Storage::Chunked(c),
                Err(why) => Storage::Unsupported(why),
            },
            c => Storage::Unsupported(format!("layout class {c}")),
        })
    }

    /// Links of an old-style group: a v1 B-tree of symbol nodes naming into a local heap.
    fn symbol_table(&self, btree: u64, heap: u64, out: &mut Vec<(String, u64)>) -> H5<()> {
        let h = self.addr(heap)?;
        if get(self.buf, h, 4)? != b"HEAP" {
            return Err(format!("no local heap at byte {h}"));
        }
        let data_size = self.len(h + 8)? as usize;
        let data_at = self.addr(self.off(h + 8 + 2 * self.sl)?)?;
        let heap_data = get(self.buf, data_at, data_size)?;
        let mut stack = vec![(btree, 0usize)];
        let mut seen = HashSet::new();
        while let Some((node, depth)) = stack.pop() {
            if depth > MAX_DEPTH || !seen.insert(node) || seen.len() > MAX_OBJECTS {
                return Err("a group's B-tree loops or runs too deep".into());
            }
            let at = self.addr(node)?;
            let sig = get(self.buf, at, 4)?;
            if sig == b"SNOD" {
                let n = uint(self.buf, at + 6, 2)? as usize;
                let entry = 2 * self.so + 24;
                for i in 0..n {
                    let e = at + 8 + i * entry;
                    let name_off = self.off(e)? as usize;
                    let obj = self.off(e + self.so)?;
                    let name = heap_data
                        .get(name_off..)
                        .map(|s| &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())])
                        .ok_or_else(|| format!("a link name at heap offset {name_off}"))?;
                    out.push((String::from_utf8_lossy(name).into_owned(), obj));
                }
                continue;
            }
            if sig != b"TREE" {
                return Err(format!("no B-tree node at byte {at}"));
            }
            let entries = uint(self.buf, at + 6, 2)? as usize;
            let mut p = at + 8 + 2 * self.so + self.sl; // past the siblings and key 0
            for _ in 0..entries {
                stack.push((self.off(p)?, depth + 1));
                p += self.so + self.sl;
            }
        }
        Ok(())
    }

    /// Links stored densely (a group of more than a few links written with `libver="latest"`):
    /// the link info message names a fractal heap holding the link messages and a v2 B-tree
    /// indexing them by name. Read: a B-tree of one or two levels (up to about two thousand links
    /// with h5py's defaults), a heap whose root is a direct block or an indirect block of direct
    /// blocks, no filters.
    fn dense_links(&self, d: &[u8], out: &mut Vec<(String, u64)>) -> H5<()> {
        let flags = uint(d, 1, 1)?;
        let at = 2 + if flags & 1 != 0 { 8 } else { 0 };
        let heap = self.off_in(d, at)?;
        if undefined(heap, self.so) {
            return Ok(()); // compact storage: the links are link messages
        }
        let btree = self.off_in(d, at + self.so)?;
        let (buf, so, sl) = (self.buf, self.so, self.sl);
        let unsupported = |what: &str| format!("a group with dense link storage ({what})");

        // The fractal heap's header.
        let h = self.addr(heap)?;
        if get(buf, h, 4)? != b"FRHP" {
            return Err(format!("no fractal heap at byte {h}"));
        }
        let id_len = uint(buf, h + 5, 2)? as usize;
        if uint(buf, h + 7, 2)? != 0 {
            return Err(unsupported("filtered heap"));
        }
        // Past: max managed size, next huge id, huge B-tree, free space, its manager, managed
        // space, allocated space, iterator offset, and the managed, huge and tiny counts/sizes.
        let mut p = h + 14 + sl + so + sl + so + 8 * sl;
        let width = uint(buf, p, 2)? as usize;
        let start = uint(buf, p + 2, sl)?;
        let max_direct = uint(buf, p + 2 + sl, sl)?;
        let max_heap_bits = uint(buf, p + 2 + 2 * sl, 2)? as usize;
        p += 2 + 2 * sl + 4;
        let root = self.off(p)?;
        let rows = uint(buf, p + so, 2)? as usize;
        let off_bytes = max_heap_bits.div_ceil(8);
        if !(1..=8).contains(&off_bytes) || id_len <= 1 + off_bytes || id_len > 1 + off_bytes + 8 {
            return Err(unsupported("heap IDs of an unexpected size"));
        }
        let len_bytes = id_len - 1 - off_bytes;
        if width == 0 || width > 1 << 16 || start == 0 || max_direct < start {
            return Err(unsupported("a malformed doubling table"));
        }
        // Direct blocks: (address, heap offset of its start, size).
        let mut blocks: Vec<(usize, u64, u64)> = Vec::new();
        if rows == 0 {
            blocks.push((self.addr(root)?, 0, start));
        } else {
            let ib = self.addr(root)?;
            if get(buf, ib, 4)? != b"FHIB" {
                return Err(format!("no fractal heap indirect block at byte {ib}"));
            }
            let max_rows = (max_direct.ilog2() - start.ilog2()) as usize + 2;
            let count = rows.min(max_rows).saturating_mul(width).min(1 << 16);
            let mut q = ib + 5 + so + off_bytes;
            let mut acc = 0u64;
            for i in 0..count {
                let row = i / width;
                let size = if row < 2 {
                    start
                } else {
                    start.checked_shl(row as u32 - 1).unwrap_or(u64::MAX)
                };
                let a = self.off(q)?;
                if !undefined(a, so) {
                    blocks.push((self.addr(a)?, acc, size));
                }
                acc = acc.saturating_add(size);
                q += so;
            }
        }
        let object = |offset: u64, len: u64| -> H5<&[u8]> {
            let (addr, first, size) = blocks
                .iter()
                .copied()
                .find(|&(_, first, size)| offset >= first && offset - first < size)
                .ok_or_else(|| format!("heap offset {offset} is in no direct block"))?;
            if offset - first + len > size {
                return Err(format!(
                    "a heap object at offset {offset} runs past its block"
                ));
            }
            if get(buf, addr, 4)? != b"FHDB" {
                return Err(format!("no fractal heap direct block at byte {addr}"));
            }
            get(buf, addr + (offset - first) as usize, len as usize)
        };

        // The name index: a v2 B-tree of (hash, heap ID) records.
        let b = self.addr(btree)?;
        if get(buf, b, 4)? != b"BTHD" {
            return Err(format!("no v2 B-tree at byte {b}"));
        }
        let node_size = uint(buf, b + 6, 4)? as usize;
        let record = uint(buf, b + 10, 2)? as usize;
        let depth = uint(buf, b + 12, 2)?;
        let root_node = self.addr(self.off(b + 16)?)?;
        let n = uint(buf, b + 16 + so, 2)? as usize;
        if record < 4 + id_len {
            return Err(unsupported("records smaller than a heap ID"));
        }
        // Every record: an internal root's own, then each leaf's (a v2 B-tree keeps records in
        // its internal nodes too). Deeper trees (thousands of links) are not read.
        let mut records: Vec<usize> = Vec::new();
        match depth {
            0 => {
                if get(buf, root_node, 4)? != b"BTLF" {
                    return Err(format!("no v2 B-tree leaf at byte {root_node}"));
                }
                records.extend((0..n).map(|i| root_node + 6 + i * record));
            }
            1 => {
                if get(buf, root_node, 4)? != b"BTIN" {
                    return Err(format!("no v2 B-tree node at byte {root_node}"));
                }
                records.extend((0..n).map(|i| root_node + 6 + i * record));
                // Each child: its address and record count, in as few bytes as a leaf's
                // largest count needs.
                let max_leaf = node_size.saturating_sub(10) / record.max(1);
                let count_bytes = ((usize::BITS - max_leaf.leading_zeros()) as usize).div_ceil(8);
                let mut q = root_node + 6 + n * record;
                for _ in 0..=n {
                    let child = self.addr(self.off(q)?)?;
                    let count = uint(buf, q + so, count_bytes.max(1))? as usize;
                    q += so + count_bytes.max(1);
                    if get(buf, child, 4)? != b"BTLF" {
                        return Err(format!("no v2 B-tree leaf at byte {child}"));
                    }
                    records.extend((0..count).map(|i| child + 6 + i * record));
                }
            }
            _ => return Err(unsupported("a name index more than two levels deep")),
        }
        if records.len() > MAX_OBJECTS {
            return Err(unsupported("too many links"));
        }
        for at in records {
            let r = get(buf, at, record)?;
            let id = &r[4..4 + id_len];
            if (id[0] >> 4) & 3 != 0 {
                return Err(unsupported("links stored as huge or tiny heap objects"));
            }
            let offset = uint(id, 1, off_bytes)?;
            let len = uint(id, 1 + off_bytes, len_bytes)?;
            if let Some(link) = self.link(object(offset, len)?)? {
                out.push(link);
            }
        }
        out.sort();
        Ok(())
    }

    fn link(&self, d: &[u8]) -> H5<Option<(String, u64)>> {
        let flags = uint(d, 1, 1)? as u8;
        let mut p = 2;
        let mut kind = 0;
        if flags & 0x08 != 0 {
            kind = uint(d, p, 1)?;
            p += 1;
        }
        if flags & 0x04 != 0 {
            p += 8;
        }
        if flags & 0x10 != 0 {
            p += 1;
        }
        let width = 1usize << (flags & 3);
        let n = uint(d, p, width)? as usize;
        p += width;
        let name = String::from_utf8_lossy(get(d, p, n)?).into_owned();
        p += n;
        (kind == 0)
            .then(|| uint(d, p, self.so).map(|a| (name, a)))
            .transpose()
    }

    fn attribute(&self, d: &[u8]) -> H5<(String, AttrValue)> {
        let version = uint(d, 0, 1)?;
        let name_size = uint(d, 2, 2)? as usize;
        let dt_size = uint(d, 4, 2)? as usize;
        let ds_size = uint(d, 6, 2)? as usize;
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let mut p = if version == 3 { 9 } else { 8 };
        let name = get(d, p, name_size)?;
        let name = String::from_utf8_lossy(
            &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())],
        )
        .into_owned();
        p += pad(name_size);
        let dt = get(d, p, dt_size)?;
        p += pad(dt_size);
        let dims = self.dataspace(get(d, p, ds_size)?)?;
        p += pad(ds_size);
        let count = dims
            .iter()
            .try_fold(1u64, |a, &x| a.checked_mul(x))
            .filter(|&n| n <= 1 << 20)
            .ok_or("an attribute with too many elements")? as usize;
        let data = d.get(p..).unwrap_or_default();
        // Class and version, three bytes of bit fields, the size: 8 bytes at least.
        let head = get(dt, 0, 8)?;
        let class = head[0] & 0x0F;
        let size = uint(head, 4, 4)? as usize;
        let value = match class {
            3 => AttrValue::Strings(
                (0..count)
                    .map(|i| {
                        let s = get(data, i * size, size)?;
                        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
                        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
                    })
                    .collect::<H5<_>>()?,
            ),
            9 if head[1] & 0x0F == 1 => {
                let each = 4 + self.so + 4;
                AttrValue::Strings(
                    (0..count)
                        .map(|i| self.global_string(get(data, i * each, each)?))
                        .collect::<H5<_>>()?,
                )
            }
            0 | 1 => match datatype(dt)? {
                (Some(dtype), _, size @ (1 | 2 | 4 | 8)) => {
                    let bytes = get(data, 0, count * size as usize)?;
                    AttrValue::Numbers(
                        bytes
                            .chunks_exact(size as usize)
                            .map(|c| number(dtype, c))
                            .collect(),
                    )
                }
                _ => AttrValue::Other,
            },
            _ => AttrValue::Other,
        };
        Ok((name, value))
    }

    /// A variable-length string: its length, global heap collection and object index.
    fn global_string(&self, r: &[u8]) -> H5<String> {
        let len = uint(r, 0, 4)? as usize;
        let coll = self.addr(uint(r, 4, self.so)?)?;
        let index = uint(r, 4 + self.so, 4)?;
        if get(self.buf, coll, 4)? != b"GCOL" {
            return Err(format!("no global heap at byte {coll}"));
        }
        let size = self.len(coll + 8)? as usize;
        let end = coll.saturating_add(size).min(self.buf.len());
        let mut p = coll + 8 + self.sl;
        while p + 8 + self.sl <= end {
            let i = uint(self.buf, p, 2)?;
            let n = self.len(p + 8)? as usize;
            if i == 0 {
                break;
            }
            let data_at = p + 8 + self.sl;
            if i == index {
                let s = get(self.buf, data_at, n.min(len))?;
                return Ok(String::from_utf8_lossy(s).into_owned());
            }
            p = n
                .div_ceil(8)
                .checked_mul(8)
                .and_then(|step| data_at.checked_add(step))
                .ok_or("a global heap object overflows")?;
        }
        Err(format!("global heap object {index} not found"))
    }

    /// Walks the groups from the root: every object's path (`layers/dense/vars/0`) and contents,
    /// groups before their members.
    pub(super) fn walk(&self) -> H5<Vec<(String, Object)>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![(String::new(), self.root, 0usize)];
        let mut links = 0usize;
        while let Some((path, addr, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(format!("{path}: groups nested deeper than {MAX_DEPTH}"));
            }
            if !seen.insert(addr) {
                continue; // a hard link to an object already seen
            }
            if seen.len() > MAX_OBJECTS {
                return Err(format!("more than {MAX_OBJECTS} objects"));
            }
            let obj = self
                .object(addr)
                .map_err(|e| format!("{}: {e}", if path.is_empty() { "/" } else { &path }))?;
            // Links, like objects, are bounded: many groups sharing one large symbol table
            // would otherwise multiply it.
            links += obj.links.len();
            if links > 4 * MAX_OBJECTS {
                return Err(format!("more than {} links", 4 * MAX_OBJECTS));
            }
            for (name, a) in obj.links.iter().rev() {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                stack.push((child, *a, depth + 1));
            }
            out.push((path, obj));
        }
        Ok(out)
    }
}

/// One little-endian number of an attribute (f16 as NaN: no attribute modelmap reads uses it).
fn number(dtype: DType, c: &[u8]) -> f64 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    let u = u64::from_le_bytes(b);
    match dtype {
        DType::F64 => f64::from_bits(u),
        DType::F32 => f64::from(f32::from_bits(u as u32)),
        DType::I8 => f64::from(u as u8 as i8),
        DType::I16 => f64::from(u as u16 as i16),
        DType::I32 => f64::from(u as u32 as i32),
        DType::I64 => u as i64 as f64,
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => u as f64,
        _ => f64::NAN,
    }
}

/// A datatype message: the dtype (little-endian numbers only), a description, the element size.
fn datatype(d: &[u8]) -> H5<(Option<DType>, String, u64)> {
    let (dtype, text, size, big) = datatype_and_order(d)?;
    if big && dtype.is_some() {
        return Ok((None, format!("big-endian {text}"), size));
    }
    Ok((dtype, text, size))
}

/// [`datatype`] with the byte order kept apart: `true` for big-endian numbers.
fn datatype_and_order(d: &[u8]) -> H5<(Option<DType>, String, u64, bool)> {
    let class = d.first().ok_or("an empty datatype")? & 0x0F;
    let bits = get(d, 1, 3)?;
    let size = uint(d, 4, 4)?;
    let big = bits[0] & 1 != 0;
    let (dtype, text) = match class {
        0 => {
            let signed = bits[0] & 0x08 != 0;
            let t = match (signed, size) {
                (true, 1) => Some(DType::I8),
                (true, 2) => Some(DType::I16),
                (true, 4) => Some(DType::I32),
                (true, 8) => Some(DType::I64),
                (false, 1) => Some(DType::U8),
                (false, 2) => Some(DType::U16),
                (false, 4) => Some(DType::U32),
                (false, 8) => Some(DType::U64),
                _ => None,
            };
            (
                t,
                format!("{}int{}", if signed { "" } else { "u" }, size * 8),
            )
        }
        1 => {
            let t = match size {
                2 => Some(DType::F16),
                4 => Some(DType::F32),
                8 => Some(DType::F64),
                _ => None,
            };
            (t, format!("float{}", size * 8))
        }
        3 => (None, "string".into()),
        9 => (None, "variable-length".into()),
        c => (None, format!("datatype class {c}")),
    };
    Ok((dtype, text, size, big))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(buf: &[u8]) -> File<'_> {
        File {
            buf,
            so: 8,
            sl: 8,
            base: 0,
            root: 0,
            assembled: std::cell::Cell::new(0),
        }
    }

    #[test]
    fn chunked_datasets_share_one_bound_for_the_file() {
        // A 1000-byte file may assemble 1032 × 1000 bytes + 1 MiB of chunked data in all.
        let buf = vec![0u8; 1000];
        let f = file(&buf);
        let never_written = |n: u64| Chunked {
            chunk: vec![n],
            index: chunks::ChunkIndex::Single {
                addr: u64::MAX,
                filtered: None,
            },
            filters: Vec::new(),
        };
        let one = f.read_chunked(&[300_000], 4, &never_written(300_000));
        assert!(
            one.as_ref()
                .is_ok_and(|b| b.len() == 1_200_000 && b.iter().all(|&x| x == 0))
        );
        let two = f.read_chunked(&[300_000], 4, &never_written(300_000));
        assert!(
            two.as_ref()
                .is_err_and(|e| e.contains("other chunked datasets")),
            "{two:?}"
        );
        let huge = f.read_chunked(&[1 << 40], 4, &never_written(1 << 40));
        assert!(huge.is_err());
    }

    #[test]
    fn a_global_heap_object_of_any_claimed_size_is_an_error_not_an_overflow() {
        // GCOL at 0: object 2 claims u64::MAX bytes; the string asks for object 1, after it.
        let mut b = b"GCOL\x01\0\0\0".to_vec();
        b.extend(4096u64.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend([0u8; 6]);
        b.extend(u64::MAX.to_le_bytes());
        b.resize(64, 0);
        let mut r = 5u32.to_le_bytes().to_vec();
        r.extend(0u64.to_le_bytes());
        r.extend(1u32.to_le_bytes());
        assert!(file(&b).global_string(&r).is_err());
    }

    #[test]
    fn an_attribute_with_an_empty_datatype_is_an_error() {
        // Attribute message v1: name "a", a datatype of 0 bytes, a scalar dataspace (found by
        // fuzzing: the class was read from the empty datatype).
        let mut m = vec![1u8, 0];
        m.extend(2u16.to_le_bytes()); // name size
        m.extend(0u16.to_le_bytes()); // datatype size
        m.extend(8u16.to_le_bytes()); // dataspace size
        m.extend(b"a\0\0\0\0\0\0\0");
        m.extend([1u8, 0, 0, 0, 0, 0, 0, 0]); // dataspace v1, rank 0
        m.resize(64, 0);
        assert!(file(&[]).attribute(&m).is_err());
    }

    #[test]
    fn groups_stored_densely_are_read() {
        // h5py, libver="latest": a group of 120 links (a fractal heap whose root is an indirect
        // block, and a two-level name index) and one of 12 (a direct block, one leaf).
        // Written by tests/data/keras/make_keras.py.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras/many_links.h5"
        );
        let Ok(bytes) = std::fs::read(path) else {
            panic!("{path} is missing");
        };
        let objects = File::open(&bytes)
            .and_then(|f| f.walk())
            .unwrap_or_default();
        let value = |path: &str| -> Option<Vec<u8>> {
            let (_, o) = objects.iter().find(|(p, _)| p == path)?;
            match &o.dataset.as_ref()?.storage {
                Storage::Bytes(r) => bytes.get(r.clone()).map(<[u8]>::to_vec),
                _ => None,
            }
        };
        for i in 0..120u32 {
            let v = value(&format!("g/d{i:03}"));
            assert_eq!(v, Some(i.to_le_bytes().to_vec()), "g/d{i:03}");
        }
        for i in 0..12u8 {
            let v = value(&format!("small/s{i}"));
            assert_eq!(
                v,
                Some((f32::from(i) / 2.0).to_le_bytes().to_vec()),
                "small/s{i}"
            );
        }
    }

    /// `chunked_many.h5` (`tests/data/keras/make_chunked.py`): a 40×40 arange in 1×1 chunks
    /// indexed by a v1 B-tree of two levels, by a paged fixed array, and by a paged fixed array of
    /// deflated chunks.
    #[test]
    fn many_chunks_in_b_trees_and_paged_fixed_arrays() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras/chunked_many.h5"
        );
        let Ok(bytes) = std::fs::read(path) else {
            panic!("{path} is missing");
        };
        let file = File::open(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let objects = file.walk().unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<u8> = (0..1600).flat_map(|i| (i as f32).to_le_bytes()).collect();
        for name in ["btree", "paged", "paged_gzip"] {
            let Some(ds) = objects
                .iter()
                .find(|(p, _)| p == name)
                .and_then(|(_, o)| o.dataset.as_ref())
            else {
                panic!("{name} is missing");
            };
            let Storage::Chunked(c) = &ds.storage else {
                panic!("{name}: {:?}", ds.storage);
            };
            let index = std::mem::discriminant(&c.index);
            let expect = if name == "btree" {
                std::mem::discriminant(&chunks::ChunkIndex::BTree(0))
            } else {
                std::mem::discriminant(&chunks::ChunkIndex::FixedArray(0))
            };
            assert_eq!(index, expect, "{name}");
            assert_eq!(c.filters.is_empty(), name != "paged_gzip", "{name}");
            let got = file.read_chunked(&ds.dims, ds.elem_size, c);
            assert!(
                got.as_deref() == Ok(want.as_slice()),
                "{name}: {:?}",
                got.map(|g| g.len())
            );
        }
    }

    #[test]
    fn a_signature_without_a_readable_superblock_is_an_error() {
        let mut b = b"\x89HDF\r\n\x1a\n".to_vec();
        assert!(File::open(&b).is_err());
        b.push(9); // superblock version 9
        b.resize(64, 0);
        let e = File::open(&b).err().unwrap_or_default();
        assert!(e.contains("version 9"), "{e}");
        assert!(File::open(b"not hdf5 at all").is_err());
    }
}
