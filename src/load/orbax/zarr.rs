//! Zarr arrays as TensorStore writes them for Orbax: version 2 (`<name>/.zarray`, chunks
//! `<name>/0.0`) and version 3 (`<name>/zarr.json`, chunks `<name>/c/0/0`, usually one shard per
//! chunk: inner chunks back to back and an index of their offsets and lengths at its end).
//! Chunks are compressed (zstd by default; zlib and gzip are read too); an array is assembled
//! from its chunks, cropped where the last chunk of a dimension runs past the array, with the
//! fill value where a chunk was never written.

use bytes::Bytes;
use rayon::prelude::*;
use serde_json::Value as Json;

use crate::model::DType;

/// Most chunks (or inner chunks of shards) of one array.
const MAX_CHUNKS: u64 = 1 << 24;

/// A bytes-to-bytes step of a chunk's encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Zstd,
    Zlib,
    Gzip,
    /// A CRC-32C of the rest, as the last four bytes.
    Crc32c,
}

/// How one array is stored.
#[derive(Clone, Debug)]
pub(crate) struct Array {
    /// Element type.
    pub(crate) dtype: DType,
    /// Shape.
    pub(crate) shape: Vec<u64>,
    /// Shape of one stored chunk (for a sharded array, of one shard).
    chunk: Vec<u64>,
    /// Zarr 3's default key encoding (`c/0/0`) rather than version 2's (`0.0`).
    v3_keys: bool,
    /// Separator between chunk indices.
    separator: char,
    /// Decoding, the last step applied first.
    steps: Vec<Step>,
    /// For a sharded array: inner chunk shape, their steps, and the index's place and checksum.
    shard: Option<Shard>,
    /// Elements are big-endian.
    big_endian: bool,
    /// Chunks are in Fortran (column-major) order.
    fortran: bool,
    /// One element of the fill value, little-endian.
    fill: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Shard {
    inner: Vec<u64>,
    steps: Vec<Step>,
    index_at_end: bool,
    index_crc: bool,
}

impl Array {
    /// Reads a zarr 2 `.zarray` document.
    pub(crate) fn v2(doc: &[u8]) -> Result<Array, String> {
        let j: Json = serde_json::from_slice(doc).map_err(|e| format!(".zarray: {e}"))?;
        if j["zarr_format"].as_u64() != Some(2) {
            return Err(".zarray: not zarr format 2".into());
        }
        let shape = dims(&j["shape"], "shape")?;
        let chunk = dims(&j["chunks"], "chunks")?;
        let (dtype, big_endian) = dtype_v2(&j["dtype"])?;
        let steps = match &j["compressor"] {
            Json::Null => Vec::new(),
            c => vec![match c["id"].as_str() {
                Some("zstd") => Step::Zstd,
                Some("zlib") => Step::Zlib,
                Some("gzip") => Step::Gzip,
                Some(other) => {
                    return Err(format!("chunks compressed by {other}, which is not read"));
                }
                None => return Err(".zarray: a compressor without an id".into()),
            }],
        };
        if j["filters"].as_array().is_some_and(|f| !f.is_empty()) {
            return Err("chunks encoded by filters, which are not read".into());
        }
        let separator = match j["dimension_separator"].as_str() {
            Some("/") => '/',
            _ => '.',
        };
        Array::checked(Array {
            fill: fill(dtype, &j["fill_value"]),
            dtype,
            shape,
            chunk,
            v3_keys: false,
            separator,
            steps,
            shard: None,
            big_endian,
            fortran: j["order"].as_str() == Some("F"),
        })
    }

    /// Reads a zarr 3 `zarr.json` document.
    pub(crate) fn v3(doc: &[u8]) -> Result<Array, String> {
        let j: Json = serde_json::from_slice(doc).map_err(|e| format!("zarr.json: {e}"))?;
        if j["zarr_format"].as_u64() != Some(3) || j["node_type"].as_str() != Some("array") {
            return Err("zarr.json: not a zarr 3 array".into());
        }
        let shape = dims(&j["shape"], "shape")?;
        if j["chunk_grid"]["name"].as_str() != Some("regular") {
            return Err("zarr.json: a chunk grid other than `regular`, which is not read".into());
        }
        let chunk = dims(
            &j["chunk_grid"]["configuration"]["chunk_shape"],
            "chunk_shape",
        )?;
        let dtype = j["data_type"]
            .as_str()
            .and_then(dtype_name)
            .ok_or_else(|| format!("data type {} is not read", j["data_type"]))?;
        let keys = &j["chunk_key_encoding"];
        let (v3_keys, separator) = match keys["name"].as_str() {
            Some("v2") => (false, '.'),
            _ => (true, '/'),
        };
        let separator = match keys["configuration"]["separator"].as_str() {
            Some(".") => '.',
            Some("/") => '/',
            _ => separator,
        };
        let codecs = j["codecs"].as_array().ok_or("zarr.json: no codecs")?;
        let (big_endian, steps, shard) = codecs_v3(codecs)?;
        Array::checked(Array {
            fill: fill(dtype, &j["fill_value"]),
            dtype,
            shape,
            chunk,
            v3_keys,
            separator,
            steps,
            shard,
            big_endian,
            fortran: false,
        })
    }

    fn checked(a: Array) -> Result<Array, String> {
        if a.chunk.len() != a.shape.len() || a.chunk.contains(&0) {
            return Err(format!(
                "chunks of shape {:?} for an array of shape {:?}",
                a.chunk, a.shape
            ));
        }
        if a.dtype.size_bytes().is_none() {
            return Err(format!("elements of {} are not read", a.dtype.name()));
        }
        if let Some(s) = &a.shard
            && (s.inner.len() != a.chunk.len()
                || s.inner
                    .iter()
                    .zip(&a.chunk)
                    .any(|(&i, &c)| i == 0 || c % i != 0))
        {
            return Err(format!(
                "inner chunks of shape {:?} do not divide shards of shape {:?}",
                s.inner, a.chunk
            ));
        }
        let count = a
            .grid()
            .iter()
            .chain(a.shard.iter().flat_map(|s| s.inner.iter()))
            .try_fold(1u64, |n, &g| n.checked_mul(g.max(1)))
            .unwrap_or(u64::MAX);
        if count > MAX_CHUNKS.saturating_mul(MAX_CHUNKS) {
            return Err("too many chunks".into());
        }
        Ok(a)
    }

    /// Chunks along each dimension.
    fn grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunk)
            .map(|(&d, &c)| d.div_ceil(c))
            .collect()
    }

    /// Bytes of the whole array, if they fit in memory's addresses.
    pub(crate) fn byte_len(&self) -> Option<u64> {
        let es = self.dtype.size_bytes()?;
        self.shape.iter().try_fold(es, |a, &d| a.checked_mul(d))
    }

    /// The key of the chunk at grid position `at`, under the array's `name`.
    fn key(&self, name: &str, at: &[u64]) -> String {
        let mut k = String::from(name);
        k.push('/');
        if self.v3_keys {
            k.push('c');
            if !at.is_empty() {
                k.push(self.separator);
            }
        } else if at.is_empty() {
            k.push('0');
        }
        for (i, c) in at.iter().enumerate() {
            if i > 0 {
                k.push(self.separator);
            }
            k.push_str(&c.to_string());
        }
        k
    }

    /// The keys of every chunk, in order (for the cache key of the array's bytes).
    pub(crate) fn keys(&self, name: &str) -> Vec<String> {
        let grid = self.grid();
        let n: u64 = grid.iter().product();
        (0..n.min(MAX_CHUNKS))
            .map(|i| self.key(name, &unravel(i, &grid)))
            .collect()
    }

    /// The whole array, little-endian and row-major, from its chunks as `get` reads them (`None`:
    /// never written, so the fill value).
    pub(crate) fn read(
        &self,
        name: &str,
        get: &(dyn Fn(&str) -> Result<Option<Bytes>, String> + Sync),
    ) -> Result<Bytes, String> {
        let total = self.byte_len().ok_or("its byte count overflows")?;
        let total = usize::try_from(total).map_err(|_| "its byte count overflows".to_string())?;
        let es = self.dtype.size_bytes().unwrap_or(1) as usize;
        let grid = self.grid();
        let n: u64 = grid.iter().product();
        if n > MAX_CHUNKS {
            return Err(format!("{n} chunks, more than {MAX_CHUNKS}"));
        }
        // One chunk that is the whole array: its bytes are the array's.
        if n == 1 && self.shard.is_none() && self.chunk == self.shape && !self.fortran {
            let key = self.key(name, &vec![0; self.shape.len()]);
            if let Some(stored) = get(&key)? {
                let mut b =
                    decode(&stored, &self.steps, total).map_err(|e| format!("{key}: {e}"))?;
                self.to_little(&mut b, es);
                return Ok(b.into());
            }
        }
        let mut out = vec![0u8; total];
        if self.fill.iter().any(|&b| b != 0) && es > 0 {
            for e in out.chunks_exact_mut(es) {
                e.copy_from_slice(&self.fill);
            }
        }
        let chunks: Vec<u64> = (0..n).collect();
        // Decoded a few per thread at a time before they are placed, so memory holds few twice.
        for batch in chunks.chunks(rayon::current_num_threads().max(1) * 2) {
            let pieces = batch
                .par_iter()
                .map(|&i| {
                    let at = unravel(i, &grid);
                    let key = self.key(name, &at);
                    let origin: Vec<u64> = at.iter().zip(&self.chunk).map(|(a, c)| a * c).collect();
                    let Some(stored) = get(&key)? else {
                        return Ok(Vec::new());
                    };
                    self.pieces(&stored, origin, es)
                        .map_err(|e| format!("{key}: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()?;
            for (origin, shape, bytes) in pieces.iter().flatten() {
                place(
                    &mut out,
                    &self.shape,
                    bytes,
                    shape,
                    origin,
                    es,
                    self.fortran,
                );
            }
        }
        self.to_little(&mut out, es);
        Ok(out.into())
    }

    /// The decoded pieces of one stored chunk: itself, or a shard's inner chunks (origin, shape,
    /// bytes).
    #[allow(clippy::type_complexity)]
    fn pieces(
        &self,
        stored: &[u8],
        origin: Vec<u64>,
        es: usize,
    ) -> Result<Vec<(Vec<u64>, Vec<u64>, Vec<u8>)>, String> {
        let elems = |shape: &[u64]| -> Result<usize, String> {
            shape
                .iter()
                .try_fold(es as u64, |a, &d| a.checked_mul(d))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| "a chunk's byte count overflows".to_string())
        };
        let Some(shard) = &self.shard else {
            let bytes = decode(stored, &self.steps, elems(&self.chunk)?)?;
            return Ok(vec![(origin, self.chunk.clone(), bytes)]);
        };
        let per: Vec<u64> = self
            .chunk
            .iter()
            .zip(&shard.inner)
            .map(|(c, i)| c / i)
            .collect();
        let count = per.iter().product::<u64>();
        let index_len = count
            .checked_mul(16)
            .and_then(|n| n.checked_add(if shard.index_crc { 4 } else { 0 }))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= stored.len())
            .ok_or_else(|| format!("a shard of {} bytes cannot hold its index", stored.len()))?;
        let index = if shard.index_at_end {
            &stored[stored.len() - index_len..]
        } else {
            &stored[..index_len]
        };
        let index = if shard.index_crc {
            let (body, crc) = index.split_at(index_len - 4);
            if crc32c::crc32c(body).to_le_bytes() != crc {
                return Err("its shard index's checksum does not match (damaged)".into());
            }
            body
        } else {
            index
        };
        let inner_bytes = elems(&shard.inner)?;
        let mut out = Vec::new();
        for (j, e) in index.chunks_exact(16).enumerate() {
            let word = |k: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&e[k..k + 8]);
                u64::from_le_bytes(w)
            };
            let (offset, len) = (word(0), word(8));
            if offset == u64::MAX && len == u64::MAX {
                continue;
            }
            let piece = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| stored.get(o..o.checked_add(l)?))
                .ok_or_else(|| {
                    format!("inner chunk {j}: {len} bytes at {offset} lie outside the shard")
                })?;
            let at = unravel(j as u64, &per);
            let o: Vec<u64> = origin
                .iter()
                .zip(&at)
                .zip(&shard.inner)
                .map(|((o, a), i)| o + a * i)
                .collect();
            if o.iter().zip(&self.shape).any(|(o, d)| o >= d) {
                continue; // Wholly past the array's end: padding.
            }
            let bytes = decode(piece, &shard.steps, inner_bytes)
                .map_err(|e| format!("inner chunk {j}: {e}"))?;
            out.push((o, shard.inner.clone(), bytes));
        }
        Ok(out)
    }

    fn to_little(&self, bytes: &mut [u8], es: usize) {
        if self.big_endian && es > 1 {
            let unit = if matches!(self.dtype, DType::Complex64 | DType::Complex128) {
                es / 2
            } else {
                es
            };
            for e in bytes.chunks_exact_mut(unit) {
                e.reverse();
            }
        }
    }
}

/// Copies a decoded chunk (`shape`, placed at `origin`) into the array `out` of shape `dims`,
/// cropping what lies past the array's end.
fn place(
    out: &mut [u8],
    dims: &[u64],
    chunk: &[u8],
    shape: &[u64],
    origin: &[u64],
    es: usize,
    fortran: bool,
) {
    let rank = dims.len();
    if rank == 0 {
        if let (Some(o), Some(c)) = (out.get_mut(..es), chunk.get(..es)) {
            o.copy_from_slice(c);
        }
        return;
    }
    // The part of the chunk inside the array.
    let region: Vec<u64> = (0..rank)
        .map(|d| shape[d].min(dims[d].saturating_sub(origin[d])))
        .collect();
    if region.contains(&0) {
        return;
    }
    let mut out_stride = vec![1u64; rank];
    let mut in_stride = vec![1u64; rank];
    for d in (0..rank - 1).rev() {
        out_stride[d] = out_stride[d + 1] * dims[d + 1];
    }
    if fortran {
        for d in 1..rank {
            in_stride[d] = in_stride[d - 1] * shape[d - 1];
        }
    } else {
        for d in (0..rank - 1).rev() {
            in_stride[d] = in_stride[d + 1] * shape[d + 1];
        }
    }
    // Rows along the last dimension are contiguous in C order; in Fortran order each element is
    // copied alone.
    let run = if fortran { 1 } else { region[rank - 1] };
    let mut idx = vec![0u64; rank];
    loop {
        let src: u64 = idx.iter().zip(&in_stride).map(|(i, s)| i * s).sum();
        let dst: u64 = idx
            .iter()
            .zip(origin)
            .zip(&out_stride)
            .map(|((i, o), s)| (i + o) * s)
            .sum();
        let (src, dst, len) = (src as usize * es, dst as usize * es, run as usize * es);
        if let (Some(o), Some(c)) = (out.get_mut(dst..dst + len), chunk.get(src..src + len)) {
            o.copy_from_slice(c);
        }
        // The next run: the last dimension steps by `run`, carrying into the others.
        let mut d = rank - 1;
        idx[d] += run;
        while idx[d] >= region[d] {
            idx[d] = 0;
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
        }
    }
}

/// The grid position of chunk number `i`, row-major.
fn unravel(mut i: u64, grid: &[u64]) -> Vec<u64> {
    let mut at = vec![0u64; grid.len()];
    for d in (0..grid.len()).rev() {
        let g = grid[d].max(1);
        at[d] = i % g;
        i /= g;
    }
    at
}

/// Undoes `steps` (last first) on stored bytes that decode to `len` bytes.
fn decode(stored: &[u8], steps: &[Step], len: usize) -> Result<Vec<u8>, String> {
    let mut cur: std::borrow::Cow<[u8]> = stored.into();
    for (i, step) in steps.iter().enumerate().rev() {
        // Only the first step's output has the chunk's size; the rest are bounded by it.
        let last = i == 0;
        let limit = if last {
            len as u64
        } else {
            (len as u64).saturating_mul(2) + (1 << 20)
        };
        cur = match step {
            Step::Zstd => super::zstd(&cur, last.then_some(len), limit)?.into(),
            Step::Zlib | Step::Gzip => {
                use std::io::Read;
                let mut out = Vec::with_capacity(if last { len } else { 0 });
                let r: Box<dyn Read> = if *step == Step::Zlib {
                    Box::new(flate2::read::ZlibDecoder::new(&cur[..]))
                } else {
                    Box::new(flate2::read::GzDecoder::new(&cur[..]))
                };
                r.take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("damaged compressed data ({e})"))?;
                out.into()
            }
            Step::Crc32c => {
                if cur.len() < 4 {
                    return Err("too short for its checksum".into());
                }
                let (body, crc) = cur.split_at(cur.len() - 4);
                if crc32c::crc32c(body).to_le_bytes() != crc {
                    return Err("its checksum does not match (damaged)".into());
                }
                body.to_vec().into()
            }
        };
    }
    if cur.len() != len {
        return Err(format!("{} bytes where a chunk holds {len}", cur.len()));
    }
    Ok(cur.into_owned())
}

/// A zarr 3 codec chain: endianness, the bytes steps, and sharding.
fn codecs_v3(codecs: &[Json]) -> Result<(bool, Vec<Step>, Option<Shard>), String> {
    let mut big = false;
    let mut steps = Vec::new();
    let mut shard = None;
    let mut seen_bytes = false;
    for c in codecs {
        let name = c["name"].as_str().unwrap_or("");
        let conf = &c["configuration"];
        match name {
            "bytes" => {
                big = conf["endian"].as_str() == Some("big");
                seen_bytes = true;
            }
            "sharding_indexed" => {
                let inner = dims(&conf["chunk_shape"], "chunk_shape")?;
                let inner_codecs = conf["codecs"].as_array().ok_or("a shard without codecs")?;
                let (inner_big, inner_steps, nested) = codecs_v3(inner_codecs)?;
                if nested.is_some() {
                    return Err("shards inside shards are not read".into());
                }
                big = inner_big;
                let index = conf["index_codecs"].as_array().cloned().unwrap_or_default();
                let index_crc = index.iter().any(|c| c["name"].as_str() == Some("crc32c"));
                shard = Some(Shard {
                    inner,
                    steps: inner_steps,
                    index_at_end: conf["index_location"].as_str() != Some("start"),
                    index_crc,
                });
                seen_bytes = true;
            }
            "zstd" => steps.push(Step::Zstd),
            "gzip" => steps.push(Step::Gzip),
            "crc32c" => steps.push(Step::Crc32c),
            "transpose" => {
                let order = conf["order"].as_array().cloned().unwrap_or_default();
                let identity = order
                    .iter()
                    .enumerate()
                    .all(|(i, o)| o.as_u64() == Some(i as u64));
                if !identity {
                    return Err("chunks stored transposed, which is not read".into());
                }
            }
            other => return Err(format!("chunks encoded by `{other}`, which is not read")),
        }
    }
    if !seen_bytes {
        return Err("a codec chain without `bytes`".into());
    }
    Ok((big, steps, shard))
}

fn dims(j: &Json, what: &str) -> Result<Vec<u64>, String> {
    j.as_array()
        .ok_or_else(|| format!("no {what}"))?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| format!("{what} {j} is not a list of sizes"))
        })
        .collect()
}

/// A zarr 2 dtype: a NumPy type string (`<f4`, `|i1`) or TensorStore's names for the types NumPy
/// lacks (`bfloat16`, `float8_e4m3fn`); and whether it is big-endian.
fn dtype_v2(j: &Json) -> Result<(DType, bool), String> {
    let s = j
        .as_str()
        .ok_or_else(|| format!("dtype {j} (structured) is not read"))?;
    if let Some(t) = dtype_name(s) {
        return Ok((t, false));
    }
    let (order, rest) = s.split_at(s.len().min(1));
    let big = order == ">";
    let t = match rest {
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        _ => return Err(format!("dtype `{s}` is not read")),
    };
    Ok((t, big))
}

/// Zarr 3's data type names (and TensorStore's zarr 2 extensions).
fn dtype_name(s: &str) -> Option<DType> {
    Some(match s {
        "bool" => DType::Bool,
        "int8" => DType::I8,
        "int16" => DType::I16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "uint8" => DType::U8,
        "uint16" => DType::U16,
        "uint32" => DType::U32,
        "uint64" => DType::U64,
        "float16" => DType::F16,
        "float32" => DType::F32,
        "float64" => DType::F64,
        "bfloat16" => DType::BF16,
        "complex64" => DType::Complex64,
        "complex128" => DType::Complex128,
        "float8_e4m3fn" => DType::F8E4M3FN,
        "float8_e4m3fnuz" => DType::F8E4M3FNUZ,
        "float8_e5m2" => DType::F8E5M2,
        "float8_e5m2fnuz" => DType::F8E5M2FNUZ,
        "float8_e8m0fnu" => DType::F8E8M0,
        _ => return None,
    })
}

/// One element of the fill value, little-endian (zeros where it is null or not understood).
fn fill(dtype: DType, j: &Json) -> Vec<u8> {
    let es = dtype.size_bytes().unwrap_or(1) as usize;
    let zero = vec![0u8; es];
    let v = match j {
        Json::Number(n) => n.as_f64(),
        Json::Bool(b) => Some(f64::from(u8::from(*b))),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    };
    let Some(v) = v else { return zero };
    if v == 0.0 && v.is_sign_positive() {
        return zero;
    }
    match dtype {
        DType::F64 => v.to_le_bytes().to_vec(),
        DType::F32 => (v as f32).to_le_bytes().to_vec(),
        DType::F16 => half::f16::from_f64(v).to_le_bytes().to_vec(),
        DType::BF16 => half::bf16::from_f64(v).to_le_bytes().to_vec(),
        DType::I8 | DType::U8 | DType::Bool => vec![v as i64 as u8],
        DType::I16 | DType::U16 => (v as i64 as u16).to_le_bytes().to_vec(),
        DType::I32 | DType::U32 => (v as i64 as u32).to_le_bytes().to_vec(),
        DType::I64 | DType::U64 => (v as i64).to_le_bytes().to_vec(),
        _ => zero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_crops_edge_chunks_and_reads_fortran_order() {
        // A 3 × 5 array from 2 × 2 chunks: the chunk at (1, 2) keeps only its top-left element.
        let dims = [3u64, 5];
        let mut out = vec![0u8; 15];
        place(&mut out, &dims, &[1, 2, 3, 4], &[2, 2], &[2, 4], 1, false);
        assert_eq!(out[14], 1);
        assert_eq!(out.iter().filter(|&&b| b != 0).count(), 1);
        // A Fortran-ordered 2 × 2 chunk at the origin: [1, 2, 3, 4] holds columns.
        place(&mut out, &dims, &[1, 2, 3, 4], &[2, 2], &[0, 0], 1, true);
        assert_eq!(&out[0..2], &[1, 3]);
        assert_eq!(&out[5..7], &[2, 4]);
    }

    #[test]
    fn keys_follow_each_encoding() {
        let mut a = Array::v2(
            br#"{"zarr_format":2,"shape":[4,6],"chunks":[2,3],"dtype":"<f4","compressor":null,"fill_value":null,"filters":null,"order":"C"}"#,
        )
        .unwrap();
        assert_eq!(a.keys("w"), ["w/0.0", "w/0.1", "w/1.0", "w/1.1"]);
        a.v3_keys = true;
        a.separator = '/';
        assert_eq!(a.key("w", &[1, 0]), "w/c/1/0");
        assert_eq!(a.key("s", &[]), "s/c");
        a.v3_keys = false;
        assert_eq!(a.key("s", &[]), "s/0");
    }

    #[test]
    fn fill_values_encode_per_dtype() {
        assert_eq!(
            fill(DType::F32, &serde_json::json!(1.5)),
            1.5f32.to_le_bytes()
        );
        assert_eq!(
            fill(DType::I16, &serde_json::json!(-2)),
            (-2i16).to_le_bytes()
        );
        assert_eq!(fill(DType::BF16, &serde_json::json!("NaN")), [0xc0, 0x7f]);
        assert_eq!(fill(DType::F64, &Json::Null), [0u8; 8]);
    }
}
