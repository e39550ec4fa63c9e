//! A TensorFlow checkpoint ("tensor bundle": `variables/variables.index` and
//! `variables.data-NNNNN-of-NNNNN`), as a SavedModel holds its weights.
//!
//! The index is a LevelDB-format table (`tensorflow/core/lib/io/table*`): data blocks of
//! prefix-compressed keys with restart points, an index block pointing at them, and a 48-byte
//! footer ending in a magic number. TensorFlow writes bundle indexes uncompressed; a compressed
//! block is an error. Each key is a tensor's checkpoint key, its value a `BundleEntryProto` saying
//! which data shard holds it, where, and its dtype and shape; the key `""` holds the header.
//! Tensors are slices of the mapped shard files. Every offset is checked against the file.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use prost::Message;

use super::proto;

/// `kTableMagicNumber`, little-endian at the end of the footer.
pub(super) const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Length of a table footer.
const FOOTER: usize = 48;

/// A checkpoint's entries and its mapped data shards.
pub(super) struct Bundle {
    pub entries: HashMap<String, proto::BundleEntryProto>,
    shards: Vec<Result<Bytes, String>>,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("a varint runs past its block")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

/// The bytes of the block at `handle` (`offset`, `size` varints at `*at` in `b`), uncompressed.
fn block<'a>(file: &'a [u8], handle: &[u8], at: &mut usize) -> Result<&'a [u8], String> {
    let offset = usize::try_from(varint(handle, at)?).map_err(|_| "a block offset too large")?;
    let size = usize::try_from(varint(handle, at)?).map_err(|_| "a block size too large")?;
    let end = offset
        .checked_add(size)
        .filter(|&e| e < file.len())
        .ok_or("a block runs past the end of the index")?;
    match file[end] {
        0 => Ok(&file[offset..end]),
        1 => Err("a block compressed with Snappy, which is not read".into()),
        t => Err(format!("a block of unknown compression {t}")),
    }
}

/// A key and its value in a block.
type Entry<'a> = (Vec<u8>, &'a [u8]);

/// The `(key, value)` entries of a block, keys expanded from their shared prefixes.
fn block_entries(b: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let n = b.len();
    let count_at = n
        .checked_sub(4)
        .ok_or("a block too short for its restart count")?;
    let restarts = u32::from_le_bytes([
        b[count_at],
        b[count_at + 1],
        b[count_at + 2],
        b[count_at + 3],
    ]);
    let limit = (restarts as usize)
        .checked_mul(4)
        .and_then(|r| count_at.checked_sub(r))
        .ok_or("a block whose restart array is larger than the block")?;
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut at = 0usize;
    while at < limit {
        let shared = varint(b, &mut at)? as usize;
        let fresh = varint(b, &mut at)? as usize;
        let vlen = varint(b, &mut at)? as usize;
        if shared > key.len() {
            return Err("a key sharing more than the previous key holds".into());
        }
        let kend = at
            .checked_add(fresh)
            .filter(|&e| e <= limit)
            .ok_or("a key runs past its block")?;
        key.truncate(shared);
        key.extend_from_slice(&b[at..kend]);
        let vend = kend
            .checked_add(vlen)
            .filter(|&e| e <= limit)
            .ok_or("a value runs past its block")?;
        out.push((key.clone(), &b[kend..vend]));
        at = vend;
    }
    Ok(out)
}

impl Bundle {
    /// Opens the checkpoint whose files start with `prefix` (`…/variables/variables`).
    pub fn open(prefix: &Path) -> Result<Bundle, String> {
        // Appended, not an extension: prefixes have dots of their own (`model.ckpt-1000`).
        let mut index_path = prefix.as_os_str().to_owned();
        index_path.push(".index");
        let index_path = std::path::PathBuf::from(index_path);
        let index = super::super::map_file(&index_path).map_err(|e| e.to_string())?;
        let base = prefix
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("variables")
            .to_string();
        Bundle::from_parts(&index_path, &index, &|i, n| {
            let p = prefix.with_file_name(format!("{base}.data-{i:05}-of-{n:05}"));
            super::super::map_file(&p).map_err(|e| e.to_string())
        })
    }

    /// Reads a checkpoint from its index's bytes, mapping data shard `i` of `n` through `shard`;
    /// `index_path` names the index in errors.
    pub fn from_parts(
        index_path: &Path,
        index: &[u8],
        shard: &dyn Fn(i32, i32) -> Result<Bytes, String>,
    ) -> Result<Bundle, String> {
        let f = index;
        if f.len() < FOOTER {
            return Err(format!(
                "{}: too short for a table footer",
                index_path.display()
            ));
        }
        let footer = &f[f.len() - FOOTER..];
        let magic = u64::from_le_bytes(footer[40..48].try_into().unwrap_or([0; 8]));
        if magic != MAGIC {
            return Err(format!(
                "{}: not a checkpoint index (bad magic)",
                index_path.display()
            ));
        }
        let at_index = |e: String| format!("{}: {e}", index_path.display());
        let mut at = 0;
        block(f, footer, &mut at).map_err(at_index)?; // metaindex, unused
        let index_block = block(f, footer, &mut at).map_err(at_index)?;
        let mut entries = HashMap::new();
        let mut header = proto::BundleHeaderProto::default();
        for (_, handle) in block_entries(index_block).map_err(at_index)? {
            let mut at = 0;
            let data = block(f, handle, &mut at).map_err(at_index)?;
            for (key, value) in block_entries(data).map_err(at_index)? {
                if key.is_empty() {
                    header = proto::BundleHeaderProto::decode(value)
                        .map_err(|e| at_index(format!("header: {e}")))?;
                    continue;
                }
                let entry = proto::BundleEntryProto::decode(value)
                    .map_err(|e| at_index(format!("entry: {e}")))?;
                entries.insert(String::from_utf8_lossy(&key).into_owned(), entry);
            }
        }
        if header.endianness != 0 {
            return Err(format!("{}: a big-endian checkpoint", index_path.display()));
        }
        let n = header.num_shards.clamp(1, 100_000);
        let shards = (0..n).map(|i| shard(i, n)).collect();
        Ok(Bundle { entries, shards })
    }

    /// How many data shards the checkpoint has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The bytes of entry `key` in its shard.
    pub fn bytes(&self, key: &str) -> Result<(&proto::BundleEntryProto, Bytes), String> {
        let e = self
            .entries
            .get(key)
            .ok_or_else(|| format!("checkpoint key {key} is missing"))?;
        if !e.slices.is_empty() {
            return Err(format!(
                "{key} is a partitioned variable, which is not read"
            ));
        }
        let shard = usize::try_from(e.shard_id)
            .ok()
            .and_then(|s| self.shards.get(s))
            .ok_or_else(|| format!("{key}: shard {} does not exist", e.shard_id))?
            .as_ref()
            .map_err(|why| why.clone())?;
        let start = usize::try_from(e.offset).map_err(|_| format!("{key}: a negative offset"))?;
        let len = usize::try_from(e.size).map_err(|_| format!("{key}: a negative size"))?;
        let end = start
            .checked_add(len)
            .filter(|&x| x <= shard.len())
            .ok_or_else(|| format!("{key}: bytes {start}+{len} run past its shard"))?;
        Ok((e, shard.slice(start..end)))
    }

    /// A scalar string tensor (the serialized object graph): a varint length, a 4-byte checksum
    /// of the lengths, then the bytes.
    pub fn string_scalar(&self, key: &str) -> Result<Bytes, String> {
        let (_, b) = self.bytes(key)?;
        let mut at = 0;
        let len = usize::try_from(varint(&b, &mut at)?).map_err(|_| "a string too long")?;
        let start = at + 4;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("{key}: a string runs past its bytes"))?;
        Ok(b.slice(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_expands_shared_prefixes_and_checks_bounds() {
        // Keys "ab" → "x", "ac" → "yz" (sharing "a"), one restart at 0.
        let mut b = vec![0, 2, 1, b'a', b'b', b'x', 1, 1, 2, b'c', b'y', b'z'];
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let e = block_entries(&b).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].0.as_slice(), e[1].1), (&b"ac"[..], &b"yz"[..]));
        // A value longer than the block, a restart count larger than it.
        let bad = [0, 1, 200, b'a', 0, 0, 0, 0];
        assert!(block_entries(&bad).is_err());
        let bad = [0xff, 0xff, 0xff, 0x7f];
        assert!(block_entries(&bad).is_err());
    }
}
