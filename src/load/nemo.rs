//! NVIDIA NeMo models (`.nemo`: Parakeet, Canary, Titanet, FastPitch and the other NeMo models on
//! the Hugging Face hub): a tar archive (gzip-compressed before NeMo 1.7) of `model_config.yaml`,
//! `model_weights.ckpt` (a `torch.save` of the model's state dict) and the model's artifacts (a
//! tokenizer's files). An uncompressed archive's members are slices of the map, so the weights
//! read as a `.pt` file's do, without copying; a compressed one is inflated into memory first.
//! A model saved with model parallelism holds one `mp_rank_NN/model_weights.ckpt` per rank
//! (`mp_rank_NN_PPP/` or `tp_rank_NN_pp_rank_PPP/` with pipeline stages): they are put back
//! together as a Megatron checkpoint's ranks are (`megatron::assemble`).

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;

use super::LoadError;
use crate::model::{Format, Model};

/// Most bytes a compressed archive inflates to.
const MAX_INFLATED: u64 = 8 << 30;
/// Most members read from an archive.
const MAX_MEMBERS: usize = 1 << 16;
/// Largest `model_config.yaml` read for metadata.
const MAX_CONFIG: usize = 1 << 20;
/// Most metadata entries taken from the config.
const MAX_CONFIG_KEYS: usize = 64;

/// Whether `path` names a NeMo archive (by its extension: a tar has no magic at its start).
pub(super) fn sniff(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nemo"))
}

/// One member of a tar archive: its name (without a leading `./`) and its bytes' range.
#[derive(Debug)]
struct Member {
    name: String,
    data: Range<usize>,
}

/// Opens a `.nemo` archive.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let mut warnings = Vec::new();
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("damaged gzip data ({e})")))?;
        if out.len() as u64 > MAX_INFLATED {
            return Err(corrupt(format!(
                "inflates past {} GiB, more than modelmap reads into memory",
                MAX_INFLATED >> 30
            )));
        }
        warnings.push(format!(
            "{}: a gzip-compressed archive (NeMo before 1.7), inflated into memory ({} MiB)",
            path.display(),
            out.len() >> 20
        ));
        Bytes::from(out)
    } else {
        data
    };
    let members = members(&data).map_err(corrupt)?;
    let find = |name: &str| members.iter().find(|m| m.name == name);
    let mut ranks: Vec<&Member> = members
        .iter()
        .filter(|m| {
            m.name.ends_with("/model_weights.ckpt")
                && (m.name.starts_with("mp_rank_") || m.name.starts_with("tp_rank_"))
        })
        .collect();
    ranks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut model = if let Some(weights) = find("model_weights.ckpt") {
        super::torch::open_file(&path.join(&weights.name), data.slice(weights.data.clone()))?
    } else {
        let Some(&first) = ranks.first() else {
            let folder = members.iter().any(|m| m.name.starts_with("model_weights/"));
            return Err(corrupt(if folder {
                "its weights are a distributed checkpoint (`model_weights/`), which is not \
                 read inside a .nemo archive"
                    .to_string()
            } else {
                "a tar archive with no model_weights.ckpt: not a NeMo model".to_string()
            }));
        };
        // Model parallelism: `mp_rank_NN/`, `mp_rank_NN_PPP/` or `tp_rank_NN_pp_rank_PPP/`, put
        // back together as Megatron's ranks are.
        let grid: std::collections::BTreeMap<(usize, usize), &Member> = ranks
            .iter()
            .filter_map(|m| {
                let folder = m.name.split('/').next()?;
                let (tp, pp) = super::megatron::parallel_rank(folder)?;
                Some(((pp, tp), *m))
            })
            .collect();
        if grid.len() == ranks.len() && super::megatron::grid_of(grid.keys()).is_some() {
            let mut models = std::collections::BTreeMap::new();
            for (&k, m) in &grid {
                let inner = path.join(&m.name);
                models.insert(
                    k,
                    super::torch::open_file(&inner, data.slice(m.data.clone()))?,
                );
            }
            let mut model = super::megatron::assemble(path, &models);
            super::family::build_checkpoint_graph(&mut model);
            model
        } else {
            warnings.push(format!(
                "{}: {} model-parallel ranks that do not make a whole tensor × pipeline grid; the \
                 weights shown are `{}`'s",
                path.display(),
                ranks.len(),
                first.name
            ));
            super::torch::open_file(&path.join(&first.name), data.slice(first.data.clone()))?
        }
    };
    model.source = path.to_path_buf();
    model.format = Format::Nemo;
    model.metadata.producer = Some("NVIDIA NeMo".into());
    model.metadata.warnings.splice(0..0, warnings);
    if let Some(config) = find("model_config.yaml")
        && let Some(text) = data
            .get(config.data.clone())
            .filter(|t| t.len() <= MAX_CONFIG)
            .and_then(|t| std::str::from_utf8(t).ok())
    {
        model.metadata.properties.extend(config_properties(text));
    }
    let artifacts: Vec<&str> = members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| *n != "model_config.yaml" && !n.ends_with("model_weights.ckpt"))
        .collect();
    if !artifacts.is_empty() {
        model
            .metadata
            .properties
            .push(("nemo.artifacts".into(), artifacts.join(", ")));
    }
    Ok(model)
}

/// The config's top-level scalars (`target`, `sample_rate`) and each section's `_target_` (the
/// class of the encoder, decoder…), as `nemo.*` metadata. A line-based reading of the YAML
/// OmegaConf writes: enough for these, without a YAML parser.
fn config_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<&str> = None;
    for line in text.lines() {
        if out.len() >= MAX_CONFIG_KEYS {
            break;
        }
        let indent = line.len() - line.trim_start().len();
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches(['\'', '"']);
        if key.starts_with('#') || key.starts_with('-') {
            continue;
        }
        if indent == 0 {
            section = value.is_empty().then_some(key);
            if !value.is_empty() && value.len() <= 200 {
                out.push((format!("nemo.{key}"), value.to_string()));
            }
        } else if indent == 2
            && key == "_target_"
            && let Some(s) = section
        {
            out.push((format!("nemo.{s}._target_"), value.to_string()));
        }
    }
    out
}

/// The regular files of a tar archive (ustar, GNU long names, pax headers), checked against the
/// archive's size.
fn members(data: &[u8]) -> Result<Vec<Member>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    while at + 512 <= data.len() {
        let h = &data[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(h) {
            return Err(format!(
                "a damaged tar header at byte {at} (its checksum does not match)"
            ));
        }
        let size = match pax_size.take() {
            Some(s) => s,
            None => number(&h[124..136])
                .ok_or_else(|| format!("a bad size in the tar header at {at}"))?,
        };
        let start = at + 512;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                format!(
                    "a tar member of {size} bytes at {start} runs past the archive's {} bytes",
                    data.len()
                )
            })?;
        let kind = h[156];
        match kind {
            b'L' => long_name = Some(c_string(&data[start..end])),
            b'x' => {
                let (path, size) = pax(&data[start..end]);
                pax_path = path;
                pax_size = size;
            }
            b'0' | 0 | b'7' => {
                let name = long_name.take().or(pax_path.take()).unwrap_or_else(|| {
                    let name = c_string(&h[0..100]);
                    let prefix = c_string(&h[345..500]);
                    if h[257..262] == *b"ustar" && !prefix.is_empty() {
                        format!("{prefix}/{name}")
                    } else {
                        name
                    }
                });
                let name = name.trim_start_matches("./").to_string();
                if out.len() >= MAX_MEMBERS {
                    return Err(format!("more than {MAX_MEMBERS} members"));
                }
                out.push(Member {
                    name,
                    data: start..end,
                });
            }
            _ => {
                long_name = None;
                pax_path = None;
            }
        }
        at = end.div_ceil(512) * 512;
    }
    if out.is_empty() {
        return Err("not a tar archive with files in it".into());
    }
    Ok(out)
}

/// Whether a header's checksum field matches its bytes (the field counted as spaces).
fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = number(&h[148..156]) else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == stored
}

/// A header's number: octal digits (space- or NUL-terminated), or GNU's base-256 for large sizes.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A pax extended header's `path` and `size` records (`<length> <key>=<value>\n` each).
fn pax(mut b: &[u8]) -> (Option<String>, Option<u64>) {
    let (mut path, mut size) = (None, None);
    while let Some(space) = b.iter().position(|&c| c == b' ') {
        let Some(len) = std::str::from_utf8(&b[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > space && l <= b.len())
        else {
            break;
        };
        let record = &b[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&c| c == b'=') {
            let (k, v) = (&record[..eq], &record[eq + 1..]);
            match k {
                b"path" => path = Some(String::from_utf8_lossy(v).into_owned()),
                b"size" => size = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()),
                _ => {}
            }
        }
        b = &b[len..];
    }
    (path, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_numbers_and_pax_records() {
        assert_eq!(number(b"00000001750\0"), Some(1000));
        assert_eq!(number(b"     17 \0"), Some(15));
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            Some(65536)
        );
        assert_eq!(number(b"9\0"), None);
        let (path, size) = pax(b"20 path=a/long/name\n15 size=123456\n");
        assert_eq!(path.as_deref(), Some("a/long/name"));
        assert_eq!(size, Some(123_456));
        // A record longer than what is left stops the reading.
        assert_eq!(pax(b"99 path=x\n"), (None, None));
    }

    #[test]
    fn config_scalars_and_section_targets() {
        let p = config_properties(
            "sample_rate: 16000\ntarget: nemo.collections.asr.models.EncDecCTCModelBPE\n\
             encoder:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n  d_model: 16\n",
        );
        assert_eq!(
            p,
            [
                ("nemo.sample_rate".to_string(), "16000".to_string()),
                (
                    "nemo.target".to_string(),
                    "nemo.collections.asr.models.EncDecCTCModelBPE".to_string()
                ),
                (
                    "nemo.encoder._target_".to_string(),
                    "nemo.collections.asr.modules.ConformerEncoder".to_string()
                ),
            ]
        );
    }
}
