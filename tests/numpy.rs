//! NumPy `.npy` / `.npz` files written by NumPy, checked against what NumPy reports for them
//! (`tests/data/numpy/facts.json`, written with the files by `tests/data/numpy/make_numpy.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use modelmap::model::{DType, Format, Model, TensorData};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/numpy")
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn every_array_matches_what_numpy_reports() {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 4);
    for (file, arrays) in files {
        let model = open(file);
        assert_eq!(model.format, Format::Numpy, "{file}");
        let arrays = arrays.as_object().unwrap();
        assert_eq!(model.tensors.len(), arrays.len(), "{file}");
        for (name, a) in arrays {
            let ctx = format!("{file}: {name}");
            let t = model
                .tensor(name)
                .unwrap_or_else(|| panic!("{ctx}: missing"));
            if a.is_null() {
                // An object array is a pickle: an error for that array, the rest still load.
                assert!(
                    matches!(&t.data, TensorData::Error(e) if e.contains("object array") && e.contains(file.as_str())),
                    "{ctx}: {:?}",
                    t.data
                );
                continue;
            }
            let dtype = match a["dtype"].as_str().unwrap() {
                "float16" => DType::F16,
                "float32" => DType::F32,
                "float64" => DType::F64,
                "int64" => DType::I64,
                "bool" => DType::Bool,
                other => panic!("{ctx}: {other}"),
            };
            assert_eq!(t.dtype, dtype, "{ctx}");
            let shape: Vec<u64> = a["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape, "{ctx}");
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for (got, key) in [(s.mean, "mean"), (s.min, "min"), (s.max, "max")] {
                let want = a[key].as_f64().unwrap();
                assert!(close(got.unwrap(), want), "{ctx}: {key} {got:?} vs {want}");
            }
            // The first values in row-major order (a Fortran-ordered array is reordered).
            let b = t.bytes().unwrap();
            for (i, v) in a["first"].as_array().unwrap().iter().enumerate() {
                let got = match dtype {
                    DType::F32 => {
                        f64::from(f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
                    }
                    DType::F64 => f64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()),
                    DType::I64 => {
                        i64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()) as f64
                    }
                    DType::Bool => f64::from(b[i]),
                    _ => continue,
                };
                assert!(close(got, v.as_f64().unwrap()), "{ctx}[{i}]: {got}");
            }
        }
    }
}

#[test]
fn keys_are_the_hierarchy_and_kernels_their_layers() {
    let model = open("flax_mlp.npz");
    let h = &model.hierarchy;
    let params = h.find("params").unwrap();
    let dense = 16 * 32 + 32 + 32 * 4;
    let conv = 3 * 3 * 2 * 8;
    assert_eq!(h.get(params).unwrap().param_count, (dense + conv) as u64);
    assert!(h.find("batch_stats").is_some());
    // A Flax conv kernel is drawn by its `[kh, kw, in, out]` axes.
    let k = model.tensor("params/Conv_0/kernel").unwrap();
    assert_eq!(
        k.conv_axes.map(|a| (a.kh, a.kw, a.input, a.out)),
        Some((0, 1, 2, 3))
    );
    // The compressed copy holds the same values.
    let a = open("flax_mlp.npz");
    let b = open("compressed.npz");
    let w = "params/Dense_1/kernel";
    assert_eq!(a.tensor(w).unwrap().bytes(), b.tensor(w).unwrap().bytes());
}

#[test]
fn damaged_files_are_errors_never_panics() {
    let dir = std::env::temp_dir().join(format!("modelmap-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["half.npy", "fortran.npy", "flax_mlp.npz", "compressed.npz"] {
        let data = std::fs::read(data_dir().join(file)).unwrap();
        for cut in [8, 12, 40, data.len() / 2, data.len() - 1] {
            let p = dir.join(format!("cut-{cut}-{file}"));
            std::fs::write(&p, &data[..cut.min(data.len())]).unwrap();
            if let Ok(m) = modelmap::load::open(&p) {
                // A short array is an error for its data, named.
                for t in &m.tensors {
                    let _ = modelmap::stats::tensor_stats(t);
                }
            }
        }
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..200 {
            let mut d = data.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % d.len() as u64) as usize;
                d[i] ^= (state >> 40) as u8 | 1;
            }
            if let Ok(m) = modelmap::load::open_bytes(dir.join(file), bytes::Bytes::from(d)) {
                for t in &m.tensors {
                    let _ = modelmap::stats::tensor_stats(t);
                }
            }
        }
    }
    let p = dir.join("short.npy");
    std::fs::write(
        &p,
        &std::fs::read(data_dir().join("half.npy")).unwrap()[..150],
    )
    .unwrap();
    let m = modelmap::load::open(&p).unwrap();
    assert!(
        matches!(&m.tensors[0].data, TensorData::Error(e) if e.contains("short.npy") && e.contains("48 bytes")),
        "{:?}",
        m.tensors[0].data
    );
    std::fs::remove_dir_all(&dir).ok();
}
