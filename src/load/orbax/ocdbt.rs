//! TensorStore's OCDBT key-value store (an "optionally-cooperative distributed B+tree"), which
//! Orbax writes every checkpoint into by default: `manifest.ocdbt` names the latest version's root
//! B+tree node, nodes and out-of-line values live in data files (`d/<hex>`, or under
//! `ocdbt.process_N/` for what each process wrote), and each key is a zarr metadata document or
//! chunk (`params.dense.kernel/.zarray`, `params.dense.kernel/0.0`).
//!
//! A manifest and every tree node sit in one envelope: magic (big-endian u32), the whole length
//! (little-endian u64), format version and compression (varints: 0 raw, 1 zstd), the body, and a
//! CRC-32C of everything before it. Integers inside are unsigned LEB128 varints, laid out by
//! columns (all of one field, then all of the next). Values are read from the files as slices of
//! their maps, and the files are found by the paths the nodes' data-file tables give, relative to
//! the manifest's folder (never outside it).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

/// Reads a file by its path relative to the store's folder (the whole file, usually a map).
pub(crate) type ReadFile = dyn Fn(&str) -> Result<Bytes, String> + Send + Sync;

const MANIFEST_MAGIC: u32 = 0x0cdb_3a2a;
const BTREE_MAGIC: u32 = 0x0cdb_20de;
/// Largest decoded manifest or node (TensorStore's default node limit is 8 MiB).
const MAX_DECODED: u64 = 64 << 20;
/// Deepest B+tree read.
const MAX_HEIGHT: u8 = 24;
/// Most keys read from one store.
const MAX_KEYS: usize = 1 << 22;
/// Most entries of one node, as TensorStore allows.
const MAX_NODE_ENTRIES: u64 = 1 << 20;

/// Where one value is.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Held in the node.
    Inline(Bytes),
    /// `len` bytes at `offset` of a data file (its path relative to the store's folder).
    Indirect {
        file: Arc<str>,
        offset: u64,
        len: u64,
    },
}

/// An OCDBT store's latest version: every key and where its value is.
pub(crate) struct Store {
    keys: BTreeMap<Vec<u8>, Value>,
    read: Arc<ReadFile>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Store {
    /// Reads the manifest (`manifest.ocdbt`, or the newest numbered `manifest.<16 hex>` that
    /// `manifests` lists) and the whole B+tree of its latest version.
    pub(crate) fn open(read: Arc<ReadFile>, numbered: &[String]) -> Result<Store, String> {
        let manifest = read("manifest.ocdbt")?;
        let body = envelope(&manifest, MANIFEST_MAGIC, "manifest.ocdbt")?;
        let mut c = Cursor::new(&body, "manifest.ocdbt");
        let kind = config(&mut c)?;
        let numbered_body;
        let mut c = if kind == 0 {
            c
        } else {
            // Numbered manifests: the newest holds the versions, in the single layout.
            let name = numbered
                .iter()
                .filter(|n| {
                    n.strip_prefix("manifest.")
                        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                })
                .max()
                .ok_or("manifest.ocdbt: a numbered manifest, but no manifest.<generation> file")?;
            let data = read(name)?;
            numbered_body = envelope(&data, MANIFEST_MAGIC, name)?;
            let mut c = Cursor::new(&numbered_body, name);
            if config(&mut c)? != 0 {
                return Err(format!(
                    "{name}: a numbered manifest that is not a single one"
                ));
            }
            c
        };
        let name = c.what.to_string();
        let files = file_table(&mut c, "")?;
        // The inline versions, column by column (generation, root height, root node's file,
        // offset and length, statistics, commit time); the last is the latest.
        let n = c.count(8)?;
        c.column(n)?; // generation numbers
        let heights = c.take(n)?.to_vec();
        let file_ids = c.column(n)?;
        let offsets = c.column(n)?;
        let lengths = c.column(n)?;
        let (Some(&height), Some(&file), Some(&offset), Some(&length)) = (
            heights.last(),
            file_ids.last(),
            offsets.last(),
            lengths.last(),
        ) else {
            return Err(format!(
                "{name}: no version of the store is recorded in the manifest itself (older \
                 versions in version-tree nodes are not read)"
            ));
        };
        let mut store = Store {
            keys: BTreeMap::new(),
            read,
        };
        if offset == u64::MAX && length == u64::MAX {
            return Ok(store); // An empty tree.
        }
        let (base, path) = files
            .get(usize::try_from(file).unwrap_or(usize::MAX))
            .ok_or_else(|| format!("{name}: the root node's data file {file} is not in its table"))?
            .clone();
        store.node(&base, &path, offset, length, height, &[], 0)?;
        Ok(store)
    }

    /// Reads one node and, below it, its subtree into `keys`.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        base: &str,
        path: &str,
        offset: u64,
        length: u64,
        height: u8,
        prefix: &[u8],
        depth: u8,
    ) -> Result<(), String> {
        if depth > MAX_HEIGHT || height > MAX_HEIGHT {
            return Err(format!("{path}: a B+tree deeper than {MAX_HEIGHT} levels"));
        }
        let file = (self.read)(path)?;
        let at = format!("{path} at {offset}");
        let data = slice(&file, offset, length).ok_or_else(|| {
            format!(
                "{path}: a node of {length} bytes at {offset} runs past the file's {} bytes",
                file.len()
            )
        })?;
        let body = envelope(data, BTREE_MAGIC, &at)?;
        let mut c = Cursor::new(&body, &at);
        let h = c.u8()?;
        if h != height {
            return Err(format!(
                "{at}: a node of height {h} where {height} was expected"
            ));
        }
        let files = file_table(&mut c, base)?;
        let n = c.varint()?;
        if n == 0 || n > MAX_NODE_ENTRIES {
            return Err(format!("{at}: a node of {n} entries"));
        }
        let n = n as usize;
        let mut prefix_len = vec![0u64; n];
        for p in prefix_len.iter_mut().skip(1) {
            *p = c.varint()?;
        }
        let suffix_len = c.column(n)?;
        let subtree_len = if height > 0 { c.column(n)? } else { Vec::new() };
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(n);
        for i in 0..n {
            let suffix = c.take(usize::try_from(suffix_len[i]).unwrap_or(usize::MAX))?;
            let mut k = match keys.last() {
                Some(prev) if i > 0 => {
                    let p = usize::try_from(prefix_len[i]).unwrap_or(usize::MAX);
                    prev.get(..p)
                        .ok_or_else(|| format!("{at}: a key shares more than its predecessor"))?
                        .to_vec()
                }
                _ => Vec::new(),
            };
            k.extend_from_slice(suffix);
            keys.push(k);
        }
        let file_of = |id: u64| -> Result<(String, String), String> {
            files
                .get(usize::try_from(id).unwrap_or(usize::MAX))
                .cloned()
                .ok_or_else(|| format!("{at}: data file {id} is not in the node's table"))
        };
        if height == 0 {
            let lengths = c.column(n)?;
            let kinds = c.take(n)?.to_vec();
            let indirect = kinds.iter().filter(|&&k| k == 1).count();
            if let Some(k) = kinds.iter().find(|&&k| k > 1) {
                return Err(format!("{at}: a value of unknown kind {k}"));
            }
            let ids = c.column(indirect)?;
            let offsets = c.column(indirect)?;
            let mut j = 0;
            for (i, key) in keys.into_iter().enumerate() {
                let value = if kinds[i] == 1 {
                    let (b, r) = file_of(ids[j])?;
                    let v = Value::Indirect {
                        file: Arc::from(format!("{b}{r}")),
                        offset: offsets[j],
                        len: lengths[i],
                    };
                    j += 1;
                    v
                } else {
                    let len = usize::try_from(lengths[i]).unwrap_or(usize::MAX);
                    let bytes = c.take(len)?;
                    Value::Inline(Bytes::copy_from_slice(bytes))
                };
                if self.keys.len() >= MAX_KEYS {
                    return Err(format!("{at}: more than {MAX_KEYS} keys"));
                }
                let mut full = prefix.to_vec();
                full.extend_from_slice(&key);
                self.keys.insert(full, value);
            }
            return Ok(());
        }
        let ids = c.column(n)?;
        let offsets = c.column(n)?;
        let lengths = c.column(n)?;
        for i in 0..n {
            let (b, r) = file_of(ids[i])?;
            let common = usize::try_from(subtree_len[i]).unwrap_or(usize::MAX);
            let mut child = prefix.to_vec();
            child.extend_from_slice(
                keys[i]
                    .get(..common)
                    .ok_or_else(|| format!("{at}: a subtree prefix longer than its key"))?,
            );
            self.node(
                &b,
                &format!("{b}{r}"),
                offsets[i],
                lengths[i],
                height - 1,
                &child,
                depth + 1,
            )?;
        }
        Ok(())
    }

    /// Every key, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.keys().map(Vec::as_slice)
    }

    /// Where the value of `key` is.
    pub(crate) fn value(&self, key: &[u8]) -> Option<&Value> {
        self.keys.get(key)
    }

    /// The value of `key`, or `None` where the store has no such key.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>, String> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::Inline(b)) => Ok(Some(b.clone())),
            Some(Value::Indirect { file, offset, len }) => {
                let data = (self.read)(file)?;
                let bytes = slice(&data, *offset, *len).ok_or_else(|| {
                    format!(
                        "{file}: {len} bytes at {offset} for `{}` run past the file's {} bytes",
                        String::from_utf8_lossy(key),
                        data.len()
                    )
                })?;
                Ok(Some(data.slice_ref(bytes)))
            }
        }
    }
}

/// `len` bytes at `offset` of `data`, when they are inside it.
fn slice(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// Reads a manifest's configuration; returns its kind (0: single, 1: numbered).
fn config(c: &mut Cursor) -> Result<u8, String> {
    c.take(16)?; // uuid
    let kind = c.u8()?;
    c.varint()?; // largest inline value
    c.varint()?; // largest decoded node
    c.u8()?; // version tree arity (log2)
    if c.varint()? == 1 {
        c.take(4)?; // zstd level
    }
    Ok(kind)
}

/// Checks an envelope (magic, length, version, CRC) and returns its body, decompressed.
fn envelope(data: &[u8], magic: u32, what: &str) -> Result<Vec<u8>, String> {
    if data.len() < 18 {
        return Err(format!(
            "{what}: {} bytes, too short for an OCDBT header",
            data.len()
        ));
    }
    let m = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if m != magic {
        return Err(format!(
            "{what}: magic {m:#010x}, not OCDBT's {magic:#010x}"
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&data[4..12]);
    let len = u64::from_le_bytes(len);
    if len != data.len() as u64 {
        return Err(format!(
            "{what}: a header length of {len} for {} bytes",
            data.len()
        ));
    }
    let end = data.len() - 4;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&data[end..]);
    let stored = u32::from_le_bytes(crc);
    let actual = crc32c::crc32c(&data[..end]);
    if stored != actual {
        return Err(format!(
            "{what}: checksum {actual:#010x} where the file records {stored:#010x} (damaged)"
        ));
    }
    let mut c = Cursor::new(&data[..end], what);
    c.pos = 12;
    let version = c.varint()?;
    if version != 0 {
        return Err(format!("{what}: OCDBT format version {version}, not 0"));
    }
    let compression = c.varint()?;
    let body = &data[c.pos..end];
    match compression {
        0 => Ok(body.to_vec()),
        1 => super::zstd(body, None, MAX_DECODED).map_err(|e| format!("{what}: {e}")),
        k => Err(format!("{what}: unknown compression {k}")),
    }
}

/// A data-file table: each file's decoded base path (`base` prefixed) and its relative path.
fn file_table(c: &mut Cursor, base: &str) -> Result<Vec<(String, String)>, String> {
    let n = c.count(1)?;
    let mut prefix = vec![0u64; n];
    for p in prefix.iter_mut().skip(1) {
        *p = c.varint()?;
    }
    let suffix = c.column(n)?;
    let base_len = c.column(n)?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(n);
    let mut prev: Vec<u8> = Vec::new();
    for i in 0..n {
        let keep = usize::try_from(prefix[i]).unwrap_or(usize::MAX);
        let mut path = prev
            .get(..keep)
            .ok_or_else(|| format!("{}: a file path shares more than its predecessor", c.what))?
            .to_vec();
        path.extend_from_slice(c.take(usize::try_from(suffix[i]).unwrap_or(usize::MAX))?);
        let b = usize::try_from(base_len[i]).unwrap_or(usize::MAX);
        if b > path.len() {
            return Err(format!("{}: a base path longer than its path", c.what));
        }
        let text = std::str::from_utf8(&path)
            .map_err(|_| format!("{}: a data file path that is not UTF-8", c.what))?;
        let full = format!("{base}{text}");
        if !safe_relative(&full) {
            return Err(format!(
                "{}: data file `{full}` lies outside the checkpoint's folder",
                c.what
            ));
        }
        out.push((format!("{base}{}", &text[..b]), text[b..].to_string()));
        prev = path;
    }
    Ok(out)
}

/// Whether a path stays inside the folder it is relative to.
pub(crate) fn safe_relative(path: &str) -> bool {
    !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path.split('/').all(|s| s != "..")
}

/// A reader over a decoded body.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], what: &'a str) -> Self {
        Cursor { buf, pos: 0, what }
    }

    fn short(&self) -> String {
        format!("{}: truncated at byte {}", self.what, self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.short())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "{}: a varint longer than 10 bytes at {}",
            self.what, self.pos
        ))
    }

    /// A count of items each taking at least `min_bytes`, checked against what is left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, String> {
        let n = self.varint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes as u64) > left {
            return Err(format!("{}: {n} entries in {left} bytes", self.what));
        }
        Ok(n as usize)
    }

    /// `n` varints (`n` already checked against the body's size by the caller's count).
    fn column(&mut self, n: usize) -> Result<Vec<u64>, String> {
        if n > self.buf.len() - self.pos {
            return Err(self.short());
        }
        (0..n).map(|_| self.varint()).collect()
    }
}
