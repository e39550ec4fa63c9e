//! Disk cache of tensor statistics, so a second open of the same file is instant.
//!
//! How it works: one JSON file per model file in `$XDG_CACHE_HOME/modelmap/stats/` (or
//! `~/.cache/modelmap/stats/`), never next to the user's files. Its name is a hash of the canonical
//! path; inside, the file identity (canonical path, size, modification time in ns) and, per tensor
//! name, a fingerprint of the tensor (dtype, shape, byte length, and the first and last 256 data
//! bytes: catches shards of an index that changed under an unchanged index file) with its
//! [`TensorStats`]. An entry is used only when identity and fingerprint match; an unreadable, corrupt or
//! stale file is ignored (and overwritten on the next store), never an error. Writes go to a
//! temporary file renamed into place, so readers never see half a file.
//!
//! Rejected: a database (sled/sqlite: a dependency for a few KB per model); keying by a hash of the
//! whole content (reading the file to find the key defeats the purpose).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::TensorStats;
use crate::model::{Model, Tensor};

/// Bump when [`TensorStats`] or its computation changes: old entries are then ignored (2: quantized
/// integers are read as their real values; 3: stacked experts' dead rows are their matrices' rows).
const CACHE_VERSION: u32 = 3;

/// FNV-1a 64-bit: a stable hash (std's `DefaultHasher` may change between Rust releases).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv {
    /// A fresh hasher.
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Mixes in bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// A failure writing the cache (reads never fail: a bad entry is a miss).
#[derive(Debug, thiserror::Error)]
#[error("stats cache {path}: {message}")]
pub struct CacheError {
    /// The cache file or folder.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    fingerprint: u64,
    stats: TensorStats,
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq, Clone, Debug)]
struct Identity {
    version: u32,
    path: String,
    size: u64,
    mtime_ns: u128,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheFile {
    identity: Identity,
    tensors: HashMap<String, Entry>,
}

/// The cache folder.
#[derive(Clone, Debug)]
pub struct StatsCache {
    dir: PathBuf,
}

/// What was found for one model.
#[derive(Default)]
pub struct Cached {
    tensors: HashMap<String, Entry>,
}

impl Cached {
    /// The cached statistics for a tensor when its fingerprint still matches.
    pub fn get(&self, t: &Tensor) -> Option<TensorStats> {
        let e = self.tensors.get(&t.name)?;
        (e.fingerprint == fingerprint(t)).then(|| e.stats.clone())
    }

    /// Entries found.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

fn fingerprint(t: &Tensor) -> u64 {
    let mut h = Fnv::new();
    h.write(t.name.as_bytes());
    h.write(t.dtype.name().as_bytes());
    for d in &t.shape {
        h.write(&d.to_le_bytes());
    }
    // The same integers with other scales (or newly read ones) are other statistics.
    if let Some(q) = &t.quant {
        for v in q.scale.iter().chain(&q.zero_point) {
            h.write(&v.to_le_bytes());
        }
        if let Some(g) = q.scale_bias() {
            for v in [g.size, g.rows, g.cols] {
                h.write(&v.to_le_bytes());
            }
            let offsets = match &g.offset {
                crate::model::GroupOffset::Bias(b)
                | crate::model::GroupOffset::ZeroPoints { bytes: b, .. } => b.clone(),
                crate::model::GroupOffset::Zero(z) => {
                    bytes::Bytes::copy_from_slice(&z.to_le_bytes())
                }
                crate::model::GroupOffset::Add(b) => {
                    bytes::Bytes::from([b"add".as_slice(), &b.to_le_bytes()].concat())
                }
            };
            let row_map = g.row_map.clone().unwrap_or_default();
            let nested = g
                .nested
                .as_ref()
                .map(|n| n.absmax.clone())
                .unwrap_or_default();
            for b in [&g.scales, &offsets, &row_map, &nested] {
                h.write(&(b.len() as u64).to_le_bytes());
                h.write(b.get(..256.min(b.len())).unwrap_or_default());
                h.write(b.get(b.len().saturating_sub(256)..).unwrap_or_default());
            }
            // What the codes stand for and the factors beside the scales.
            let book = g.codebook.as_deref().unwrap_or_default();
            h.write(&g.book_stride.to_le_bytes());
            let nested_map = g.nested.as_ref().map_or(&[][..], |n| n.map.as_slice());
            let nested_offset = g.nested.as_ref().map_or(0.0, |n| n.offset);
            for v in book
                .iter()
                .chain(nested_map)
                .chain([&g.scale_factor, &nested_offset])
            {
                h.write(&v.to_le_bytes());
            }
            if let crate::model::GroupOffset::ZeroPoints { plus, packing, .. } = &g.offset {
                h.write(format!("{plus} {packing:?}").as_bytes());
            }
        }
        h.write(format!("{:?}", q.layout()).as_bytes());
        h.write(&(q.axis as u64).to_le_bytes());
    }
    if let crate::model::TensorData::Lazy(l) = &t.data {
        // Made on first use: what it is made from stands for the bytes, unread.
        h.write(&l.len().to_le_bytes());
        h.write(&l.key().to_le_bytes());
    } else if let Some(b) = t.bytes() {
        h.write(&(b.len() as u64).to_le_bytes());
        h.write(b.get(..256.min(b.len())).unwrap_or_default());
        h.write(b.get(b.len().saturating_sub(256)..).unwrap_or_default());
    }
    h.finish()
}

fn identity(source: &Path) -> Option<Identity> {
    let canon = source.canonicalize().ok()?;
    let meta = std::fs::metadata(&canon).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(Identity {
        version: CACHE_VERSION,
        path: canon.to_string_lossy().into_owned(),
        size: meta.len(),
        mtime_ns,
    })
}

impl StatsCache {
    /// The user's cache folder: `$XDG_CACHE_HOME/modelmap/stats` or `$HOME/.cache/modelmap/stats`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_CACHE_HOME") {
            Some(x) if !x.is_empty() && Path::new(&x).is_absolute() => PathBuf::from(x),
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
        };
        Some(base.join("modelmap").join("stats"))
    }

    /// The cache in the user's cache folder (`None` when there is no home directory).
    pub fn user() -> Option<Self> {
        Self::default_dir().map(Self::at)
    }

    /// A cache in a given folder (tests use a temporary one).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        StatsCache { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_for(&self, id: &Identity) -> PathBuf {
        let mut h = Fnv::new();
        h.write(id.path.as_bytes());
        self.dir.join(format!("{:016x}.json", h.finish()))
    }

    /// What the cache holds for a model (empty when nothing valid is there).
    pub fn load(&self, m: &Model) -> Cached {
        let Some(id) = identity(&m.source) else {
            return Cached::default();
        };
        let path = self.file_for(&id);
        let Ok(text) = std::fs::read(&path) else {
            return Cached::default();
        };
        match serde_json::from_slice::<CacheFile>(&text) {
            Ok(f) if f.identity == id => Cached { tensors: f.tensors },
            Ok(_) => Cached::default(),
            Err(e) => {
                log::debug!("ignoring corrupt stats cache {}: {e}", path.display());
                Cached::default()
            }
        }
    }

    /// Stores statistics for a model (replacing what was there for that file).
    pub fn store(&self, m: &Model, stats: &[(&Tensor, &TensorStats)]) -> Result<(), CacheError> {
        let err = |path: &Path, message: String| CacheError {
            path: path.to_path_buf(),
            message,
        };
        let id = identity(&m.source)
            .ok_or_else(|| err(&m.source, "cannot read the model file's identity".into()))?;
        let path = self.file_for(&id);
        std::fs::create_dir_all(&self.dir).map_err(|e| err(&self.dir, e.to_string()))?;
        let tensors = stats
            .iter()
            .map(|(t, s)| {
                (
                    t.name.clone(),
                    Entry {
                        fingerprint: fingerprint(t),
                        stats: (*s).clone(),
                    },
                )
            })
            .collect();
        let text = serde_json::to_vec(&CacheFile {
            identity: id,
            tensors,
        })
        .map_err(|e| err(&path, e.to_string()))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(|e| err(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{model_stats_cached, tensor_stats};
    use super::*;
    use crate::model::Format;

    #[test]
    fn second_run_reads_the_cache_and_corruption_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m.safetensors");
        std::fs::write(&src, b"model bytes").unwrap();
        let mut m = Model::new(&src, Format::Safetensors);
        m.add_tensor(f32_tensor("a", &[3], &[1.0, 2.0, 3.0]));
        let cache = StatsCache::at(dir.path().join("cache"));
        assert!(cache.load(&m).is_empty());
        let first = model_stats_cached(&m, Some(&cache), &|_, _| {});
        let c = cache.load(&m);
        assert_eq!(c.len(), 1);
        // Prove the second run reads the cache: plant a different value in the cached entry.
        let file = std::fs::read_dir(cache.dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("\"mean\":2.0", "\"mean\":42.0");
        std::fs::write(&file, text).unwrap();
        let second = model_stats_cached(&m, Some(&cache), &|_, _| {});
        assert_eq!(first[0].as_ref().unwrap().mean, Some(2.0));
        assert_eq!(second[0].as_ref().unwrap().mean, Some(42.0));
        // A changed tensor misses.
        m.tensors[0] = f32_tensor("a", &[3], &[1.0, 2.0, 4.0]);
        assert!(cache.load(&m).get(&m.tensors[0]).is_none());
        // A corrupt file is a miss, and is replaced.
        std::fs::write(&file, b"{not json").unwrap();
        assert!(cache.load(&m).is_empty());
        let third = model_stats_cached(&m, Some(&cache), &|_, _| {});
        assert_eq!(
            third[0].as_ref().unwrap(),
            &tensor_stats(&m.tensors[0]).unwrap()
        );
        assert_eq!(cache.load(&m).len(), 1);
        // Touching the model file changes its identity.
        std::fs::write(&src, b"model bytes, edited").unwrap();
        assert!(cache.load(&m).is_empty());
    }

    /// The same codes under another global scale, codebook or layout are other statistics.
    #[test]
    fn fingerprints_follow_what_the_codes_stand_for() {
        use crate::model::{GroupOffset, Layout, Quant, ScaleBiasGroups};
        let base = ScaleBiasGroups::runs(
            4,
            crate::model::DType::F32,
            [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
            GroupOffset::Zero(0.0),
        );
        let with = |g: ScaleBiasGroups, layout: Option<Layout>| {
            let mut t = tensor("w", crate::model::DType::U4, &[2, 4], vec![0x21; 4]);
            let q = Quant::scale_bias_groups(g).unwrap();
            t.quant = Some(match layout {
                Some(l) => q.with_layout(l),
                None => q,
            });
            fingerprint(&t)
        };
        let plain = with(base.clone(), None);
        let prints = [
            with(
                ScaleBiasGroups {
                    scale_factor: 0.5,
                    ..base.clone()
                },
                None,
            ),
            with(
                ScaleBiasGroups {
                    codebook: Some(vec![0.5; 16].into()),
                    ..base.clone()
                },
                None,
            ),
            with(
                ScaleBiasGroups {
                    codebook: Some(vec![0.5; 16].into()),
                    book_stride: 4,
                    ..base.clone()
                },
                None,
            ),
            with(base.clone(), Some(Layout::HighNibbleFirst)),
        ];
        for (i, p) in prints.iter().enumerate() {
            assert_ne!(*p, plain);
            assert!(prints[..i].iter().all(|q| q != p), "print {i}");
        }
        assert_eq!(with(base, None), plain);
    }

    #[test]
    fn default_dir_is_under_the_user_cache() {
        let d = StatsCache::default_dir().unwrap();
        assert!(d.ends_with("modelmap/stats"));
    }
}
