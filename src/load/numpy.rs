//! NumPy arrays: `.npy` (one array) and `.npz` (`np.savez` / `np.savez_compressed`: a zip of
//! `.npy` files, one per key). JAX/Flax and research code save weights this way, keys often
//! paths (`params/Dense_0/kernel`), which become the hierarchy as a checkpoint's names do.
//!
//! The `.npy` header is a Python dict literal (`{'descr': '<f4', 'fortran_order': False,
//! 'shape': (3, 4), }`), read by a small parser that evaluates nothing. Data of a C-ordered array
//! is a slice of the map (`np.savez` stores entries uncompressed); a Fortran-ordered one is copied
//! into row-major order up to 16 M elements. Entries of `np.savez_compressed` are inflated, up to
//! [`MAX_INFLATED`] bytes in all; past that each is an error for its data. Object arrays (pickles),
//! strings, structured and big-endian dtypes are errors for their array, naming it.

use std::path::Path;

use bytes::Bytes;

use super::LoadError;
use super::torch::Entries;
use crate::model::{DType, Format, Model, Tensor, TensorData, TensorOrigin};

/// How a `.npy` file starts.
pub(super) const MAGIC: &[u8] = b"\x93NUMPY";
/// Most bytes inflated from a compressed `.npz`, in all.
const MAX_INFLATED: u64 = 2 << 30;
/// Largest Fortran-ordered array copied into row-major order, elements.
const MAX_GATHER: u64 = 1 << 24;

/// The parsed header of a `.npy`.
#[derive(Debug, PartialEq)]
struct Header {
    dtype: DType,
    shape: Vec<u64>,
    fortran: bool,
    /// Offset of the data from the start of the `.npy`.
    data_start: usize,
}

/// Opens a single `.npy` already mapped: one tensor, named by the file's stem.
pub(super) fn load_npy(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("array")
        .to_string();
    let header = header(&data).map_err(|e| LoadError::corrupt(path, e))?;
    let mut model = Model::new(path, Format::Numpy);
    let tensor = tensor(&name, &header, data.slice(header.data_start..), path);
    model.add_tensor(tensor);
    finish(model, path)
}

/// Whether a zip archive is an `.npz`: every entry an `.npy`.
pub(super) fn is_npz(entries: &Entries) -> bool {
    !entries.is_empty() && entries.keys().all(|k| k.ends_with(".npy"))
}

/// Opens an `.npz` archive: one tensor per entry, named by its key.
pub(super) fn load_npz(path: &Path, data: &Bytes, entries: &Entries) -> Result<Model, LoadError> {
    let mut model = Model::new(path, Format::Numpy);
    let mut names: Vec<&String> = entries.keys().collect();
    names.sort();
    let mut archive = None;
    let mut left = MAX_INFLATED;
    for entry in names {
        let key = entry.trim_end_matches(".npy");
        let bytes = match &entries[entry] {
            Ok(range) => Ok(data.slice(range.clone())),
            // Compressed: inflated, within the budget.
            Err(_) => {
                let zip = match &mut archive {
                    Some(z) => z,
                    None => archive.insert(
                        super::torch::zip_of(data).map_err(|e| LoadError::corrupt(path, e))?,
                    ),
                };
                inflate(zip, entry, &mut left)
            }
        };
        let t = match bytes.and_then(|b| header(&b).map(|h| (h, b))) {
            Ok((h, b)) => tensor(key, &h, b.slice(h.data_start..), path),
            Err(why) => Tensor {
                name: key.to_string(),
                dtype: DType::Unknown("npy"),
                shape: Vec::new(),
                data: TensorData::Error(format!("{}: {entry}: {why}", path.display())),
                origin: TensorOrigin::Checkpoint,
                conv_axes: None,
                quant: None,
            },
        };
        model.add_tensor(t);
    }
    finish(model, path)
}

fn inflate(zip: &mut super::torch::Zip<'_>, entry: &str, left: &mut u64) -> Result<Bytes, String> {
    super::torch::inflate(zip, entry, left)
        .map(Bytes::from)
        .map_err(|e| {
            format!(
                "{e} (compressed arrays over {} GiB in all are not inflated)",
                MAX_INFLATED >> 30
            )
        })
}

fn finish(mut model: Model, path: &Path) -> Result<Model, LoadError> {
    model.metadata.shards = 1;
    kernel_axes(&mut model);
    model.metadata.producer = Some("NumPy".into());
    super::safetensors::finish(&mut model, path.parent());
    Ok(model)
}

/// Marks every 4-D `…kernel` as a conv filter laid out as Flax and Keras lay it out:
/// `[kh, kw, in, out]`.
pub(super) fn kernel_axes(model: &mut Model) {
    for t in &mut model.tensors {
        if t.shape.len() == 4 && t.name.ends_with("kernel") {
            t.conv_axes = Some(crate::model::ConvAxes {
                kh: 0,
                kw: 1,
                input: 2,
                out: 3,
            });
        }
    }
}

/// The tensor an array header describes, its data `body` (what follows the header).
fn tensor(name: &str, h: &Header, body: Bytes, path: &Path) -> Tensor {
    let mut t = Tensor {
        name: name.to_string(),
        dtype: h.dtype,
        shape: h.shape.clone(),
        data: TensorData::Missing,
        origin: TensorOrigin::Checkpoint,
        conv_axes: None,
        quant: None,
    };
    let err = |why: String| TensorData::Error(format!("{}: {name}: {why}", path.display()));
    let numel = h.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let (Some(numel), Some(es)) = (numel, h.dtype.size_bytes()) else {
        t.data = err("its size overflows, or its dtype is not read".into());
        return t;
    };
    let Some(len) = numel.checked_mul(es).and_then(|n| usize::try_from(n).ok()) else {
        t.data = err("its size overflows".into());
        return t;
    };
    if body.len() < len {
        t.data = err(format!(
            "{len} bytes of data expected, the file holds {}",
            body.len()
        ));
        return t;
    }
    let body = body.slice(..len);
    if !h.fortran || h.shape.len() < 2 {
        t.data = TensorData::Bytes(body);
        return t;
    }
    if numel > MAX_GATHER {
        t.data = err(format!(
            "a Fortran-ordered array of {numel} elements, more than the {MAX_GATHER} copied into \
             row-major order"
        ));
        return t;
    }
    // Column-major: the first index varies fastest.
    let es = es as usize;
    let rank = h.shape.len();
    let mut strides = vec![1u64; rank];
    for i in 1..rank {
        strides[i] = strides[i - 1] * h.shape[i - 1];
    }
    let mut out = Vec::with_capacity(len);
    let mut index = vec![0u64; rank];
    for _ in 0..numel {
        let at = index
            .iter()
            .zip(&strides)
            .map(|(&i, &s)| i * s)
            .sum::<u64>() as usize
            * es;
        out.extend_from_slice(body.get(at..at + es).unwrap_or(&[]));
        for (i, &d) in index.iter_mut().zip(&h.shape).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    t.data = TensorData::Bytes(Bytes::from(out));
    t
}

/// Parses the magic, version and header dict of a `.npy`.
fn header(b: &[u8]) -> Result<Header, String> {
    if !b.starts_with(MAGIC) {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let major = *b.get(6).ok_or("a truncated header")?;
    let (len, start): (usize, usize) = match major {
        1 => (
            u16::from_le_bytes([
                b.get(8).copied().unwrap_or(0),
                b.get(9).copied().unwrap_or(0),
            ]) as usize,
            10,
        ),
        2 | 3 => {
            let w: [u8; 4] = b
                .get(8..12)
                .and_then(|s| s.try_into().ok())
                .ok_or("a truncated header")?;
            (u32::from_le_bytes(w) as usize, 12)
        }
        v => return Err(format!(".npy format version {v}, not 1, 2 or 3")),
    };
    let end = start
        .checked_add(len)
        .ok_or("a header length that overflows")?;
    let text = b
        .get(start..end)
        .ok_or_else(|| format!("a header of {len} bytes runs past the end"))?;
    let text = std::str::from_utf8(text).map_err(|_| "a header that is not text")?;
    let descr = dict_value(text, "descr").ok_or("no 'descr' in the header")?;
    let descr = descr
        .strip_prefix('\'')
        .or_else(|| descr.strip_prefix('"'))
        .and_then(|d| d.split(['\'', '"']).next())
        .ok_or_else(|| format!("descr {descr:.40} is not a plain dtype (a structured array?)"))?;
    let dtype = dtype_of(descr)?;
    let fortran = match dict_value(text, "fortran_order") {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => return Err("no 'fortran_order' in the header".into()),
    };
    let shape = dict_value(text, "shape").ok_or("no 'shape' in the header")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("a 'shape' that is not a tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<u64>()
                .map_err(|_| format!("a shape entry {s:?} that is not a size"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    Ok(Header {
        dtype,
        shape,
        fortran,
        data_start: end,
    })
}

/// The text after `'key':` in a dict literal, trimmed.
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let i = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[i + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// A NumPy dtype string (`<f4`, `|u1`, `<c8`).
fn dtype_of(descr: &str) -> Result<DType, String> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match code {
        "f8" => DType::F64,
        "f4" => DType::F32,
        "f2" => DType::F16,
        "i8" => DType::I64,
        "i4" => DType::I32,
        "i2" => DType::I16,
        "i1" => DType::I8,
        "u8" => DType::U64,
        "u4" => DType::U32,
        "u2" => DType::U16,
        "u1" => DType::U8,
        "b1" => DType::Bool,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        "O" => return Err("an object array (a pickle), which is not read".into()),
        other => return Err(format!("dtype {other:?} is not read")),
    };
    if order == '>' && !matches!(code, "i1" | "u1" | "b1") {
        return Err(format!("a big-endian array ({descr}), which is not read"));
    }
    Ok(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn headers() {
        let b = npy(
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }",
            &[],
        );
        let h = header(&b).unwrap();
        assert_eq!(h.dtype, DType::F16);
        assert_eq!(h.shape, [2, 2]);
        assert!(!h.fortran);
        let b = npy(
            "{'descr': '|b1', 'fortran_order': True, 'shape': (7,), }",
            &[],
        );
        assert_eq!(header(&b).unwrap().shape, [7]);
        let b = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
            &[],
        );
        assert!(header(&b).unwrap().shape.is_empty());
        for (hdr, why) in [
            (
                "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                "object",
            ),
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                "big-endian",
            ),
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                "structured",
            ),
            ("{'descr': '<f4', 'shape': (2,), }", "fortran_order"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
                "size",
            ),
        ] {
            let e = header(&npy(hdr, &[])).unwrap_err();
            assert!(e.contains(why), "{hdr}: {e}");
        }
        let mut cut = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            &[],
        );
        cut.truncate(20);
        assert!(header(&cut).unwrap_err().contains("runs past the end"));
    }

    #[test]
    fn fortran_order_is_copied_to_row_major() {
        // [[1, 2, 3], [4, 5, 6]] stored column-major: 1 4 2 5 3 6.
        let body: Vec<u8> = [1i32, 4, 2, 5, 3, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let b = npy(
            "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
            &body,
        );
        let h = header(&b).unwrap();
        let t = tensor(
            "x",
            &h,
            Bytes::from(b.clone()).slice(h.data_start..),
            Path::new("x.npy"),
        );
        let TensorData::Bytes(d) = t.data else {
            panic!()
        };
        let v: Vec<i32> = d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(v, [1, 2, 3, 4, 5, 6]);
        // Short data is an error for the array.
        let t = tensor("x", &h, Bytes::from(vec![0u8; 5]), Path::new("x.npy"));
        assert!(matches!(t.data, TensorData::Error(ref e) if e.contains("24 bytes")));
    }
}
