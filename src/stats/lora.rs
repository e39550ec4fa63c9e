//! A LoRA adapter merged into its base model, to compare the two (`modelmap BASE --diff ADAPTER`,
//! `modelmap diff BASE ADAPTER`, File → Compare with…): every weight the adapter targets becomes
//! `W + s·B·A`, exactly as PEFT's `merge_and_unload()` computes it, so the comparison shows what the
//! adapter does to each layer, down to the single weight.
//!
//! How it works: the adapter's tensors (`base_model.model.<module>.lora_A.weight` `[r, in]`,
//! `….lora_B.weight` `[out, r]`, `lora_embedding_A` / `_B` for embeddings, and full copies of its
//! `modules_to_save`) are matched to the base's weights by name, wrappers aside
//! ([`super::diff::canonical_name`]). The scale is `alpha / r` (`alpha / √r` with `use_rslora`),
//! `r` read from `lora_A`'s shape (so `rank_pattern` needs no parsing) and `alpha` from
//! `alpha_pattern` when a key names the module (PEFT matches a key against the end of the module's
//! path), else `lora_alpha`. The merged weight is made on first use, in f64, row by row in
//! parallel; the model's other tensors are the base's own bytes. What cannot be applied (a shape
//! that does not fit, a module the base lacks, DoRA's magnitudes) is a warning on the merged model.
//!
//! Rejected: comparing with the product B·A alone, without the base (the figures people ask for
//! are relative to the weight the adapter changes: ‖s·B·A‖ / ‖W‖, and where in W it acts);
//! merging in f32 as PEFT does on a GPU (f64 keeps W + Δ − W equal to Δ to the last bits, so the
//! comparison shows the adapter, not rounding).

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::diff::{canonical_name, values, values_range};
use crate::model::{DType, LazyBytes, Model, Tensor, TensorData};

/// Whether `m` is a PEFT adapter (its `adapter_config.json` was read into `peft.*` properties).
pub fn is_adapter(m: &Model) -> bool {
    property(m, "peft.peft_type").is_some()
}

fn property<'a>(m: &'a Model, key: &str) -> Option<&'a str> {
    m.metadata
        .properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The `lora_alpha` that applies to `module`: an `alpha_pattern` key naming the module or the end
/// of its path, else the adapter's `lora_alpha`.
fn alpha_for(
    patterns: &serde_json::Map<String, serde_json::Value>,
    module: &str,
    alpha: f64,
) -> f64 {
    patterns
        .iter()
        .find(|(k, _)| module == k.as_str() || module.ends_with(&format!(".{k}")))
        .and_then(|(_, v)| v.as_f64())
        .unwrap_or(alpha)
}

/// One module's pair of factors.
#[derive(Default)]
struct Factors<'a> {
    a: Option<&'a Tensor>,
    b: Option<&'a Tensor>,
    /// An embedding's factors (`lora_embedding_A` `[r, rows]`, `_B` `[cols, r]`): the product is
    /// transposed.
    embedding: bool,
}

/// `W + s·B·A` (or `W + s·(B·A)ᵀ`) as f64 bytes; W is read a band of rows at a time, so only
/// the result is held whole.
fn merged_bytes(
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    transpose: bool,
) -> Result<bytes::Bytes, String> {
    let av = values(a).map_err(|e| e.to_string())?;
    let bv = values(b).map_err(|e| e.to_string())?;
    let (r, inner) = (a.shape[0] as usize, a.shape[1] as usize);
    let outer = b.shape[0] as usize;
    // The product P = B·A is [outer, inner]; W is P's shape, or its transpose.
    let cols = if transpose { outer } else { inner };
    let rows = w.elements() as usize / cols.max(1);
    const BAND: usize = 64;
    let mut out = vec![0u8; rows * cols * 8];
    out.par_chunks_mut(BAND * cols * 8)
        .enumerate()
        .try_for_each(|(band, o)| {
            let first = band * BAND;
            let n = o.len() / (cols * 8);
            let wv = values_range(w, (first * cols) as u64, ((first + n) * cols) as u64)
                .map_err(|e| e.to_string())?;
            let mut p = vec![0.0f64; cols];
            for (k, (o, wrow)) in o
                .chunks_exact_mut(cols * 8)
                .zip(wv.chunks(cols))
                .enumerate()
            {
                let row = first + k;
                p.fill(0.0);
                if transpose {
                    // Row `row` of (B·A)ᵀ is column `row` of B·A: Σ_q A[q, row] · B[:, q].
                    for q in 0..r {
                        let aq = av[q * inner + row];
                        for (pc, bc) in p.iter_mut().zip(bv.iter().skip(q).step_by(r)) {
                            *pc += aq * bc;
                        }
                    }
                } else {
                    // Row `row` of B·A is Σ_q B[row, q] · A[q, :]: contiguous rows of A.
                    for (q, &bq) in bv[row * r..(row + 1) * r].iter().enumerate() {
                        for (pc, ac) in p.iter_mut().zip(&av[q * inner..(q + 1) * inner]) {
                            *pc += bq * ac;
                        }
                    }
                }
                for ((o, &x), &pc) in o.chunks_exact_mut(8).zip(wrow).zip(&p) {
                    o.copy_from_slice(&(x + scale * pc).to_le_bytes());
                }
            }
            Ok::<(), String>(())
        })?;
    Ok(bytes::Bytes::from(out))
}

/// `base` with a LoRA `adapter` merged in (see the module docs). Errors when `adapter` is not a
/// LoRA adapter.
pub fn apply_adapter(base: &Model, adapter: &Model) -> Result<Model, String> {
    let file = adapter.source.display();
    let kind = property(adapter, "peft.peft_type").unwrap_or("none");
    if kind != "LORA" {
        return Err(format!(
            "{file}: a PEFT {kind} adapter, not LoRA: it cannot be merged into a base model"
        ));
    }
    let number = |k: &str| property(adapter, k).and_then(|v| v.parse::<f64>().ok());
    let alpha = number("peft.lora_alpha")
        .ok_or_else(|| format!("{file}: no lora_alpha in adapter_config.json"))?;
    let rslora = property(adapter, "peft.use_rslora") == Some("true");
    let fan_in_fan_out = property(adapter, "peft.fan_in_fan_out") == Some("true");
    let patterns: serde_json::Map<String, serde_json::Value> =
        property(adapter, "peft.alpha_pattern")
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
    let base_index: HashMap<String, usize> = base
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (canonical_name(&t.name), i))
        .collect();
    let mut merged = base.clone();
    merged.source = std::path::PathBuf::from(format!("{} + {}", base.source.display(), file));
    let mut warnings = Vec::new();
    if property(adapter, "peft.use_dora") == Some("true") {
        warnings.push(format!(
            "{file}: a DoRA adapter: its magnitude vectors are not applied, only B·A"
        ));
    }
    let mut modules: HashMap<String, Factors> = HashMap::new();
    for t in &adapter.tensors {
        let name = canonical_name(&t.name);
        let split = [
            (".lora_A.weight", false, true),
            (".lora_B.weight", false, false),
            (".lora_embedding_A", true, true),
            (".lora_embedding_B", true, false),
        ]
        .into_iter()
        .find_map(|(suffix, emb, is_a)| {
            name.strip_suffix(suffix)
                .map(|m| (m.to_string(), emb, is_a))
        });
        match split {
            Some((module, emb, is_a)) => {
                let f = modules.entry(module).or_default();
                f.embedding |= emb;
                if is_a {
                    f.a = Some(t);
                } else {
                    f.b = Some(t);
                }
            }
            // A module saved whole (`modules_to_save`): it replaces the base's.
            None => match base_index.get(&name) {
                Some(&i) if merged.tensors[i].shape == t.shape => {
                    let target = &mut merged.tensors[i];
                    target.data = t.data.clone();
                    target.dtype = t.dtype;
                    target.quant = t.quant.clone();
                }
                _ => warnings.push(format!(
                    "{file}: {} has no counterpart of its shape in the base model",
                    t.name
                )),
            },
        }
    }
    let mut applied = 0usize;
    let mut names: Vec<&String> = modules.keys().collect();
    names.sort();
    for module in names {
        let f = &modules[module];
        let (Some(a), Some(b)) = (f.a, f.b) else {
            warnings.push(format!(
                "{file}: {module} has only one of its two LoRA factors"
            ));
            continue;
        };
        let Some(&i) = base_index.get(&format!("{module}.weight")) else {
            warnings.push(format!(
                "{file}: the base model has no weight {module}.weight"
            ));
            continue;
        };
        let w = &base.tensors[i];
        let transpose = f.embedding || fan_in_fan_out;
        let fits = a.shape.len() == 2
            && b.shape.len() == 2
            && a.shape[0] == b.shape[1]
            && a.shape[0] > 0
            && w.shape.len() == 2
            && if transpose {
                w.shape == [a.shape[1], b.shape[0]]
            } else {
                w.shape == [b.shape[0], a.shape[1]]
            };
        if !fits {
            warnings.push(format!(
                "{file}: {module}: factors {:?} and {:?} do not fit the base weight {:?}",
                b.shape, a.shape, w.shape
            ));
            continue;
        }
        let r = a.shape[0] as f64;
        let scale = alpha_for(&patterns, module, alpha) / if rslora { r.sqrt() } else { r };
        let (w2, a2, b2) = (w.clone(), a.clone(), b.clone());
        let key = crate::model::key_of(&(
            &merged.source,
            &w.name,
            w.data_addr(),
            a.data_addr(),
            b.data_addr(),
        ));
        let target = &mut merged.tensors[i];
        target.data =
            TensorData::Lazy(Arc::new(LazyBytes::new(w.elements() * 8, key, move || {
                merged_bytes(&w2, &a2, &b2, scale, transpose)
            })));
        target.dtype = DType::F64;
        target.quant = None;
        applied += 1;
    }
    merged.metadata.properties.insert(
        0,
        (
            "lora".to_string(),
            format!("{file} merged: {applied} weights as W + s·B·A"),
        ),
    );
    merged.metadata.warnings.extend(warnings);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::f32_tensor;
    use super::*;
    use crate::model::Format;

    fn adapter(props: &[(&str, &str)], tensors: Vec<Tensor>) -> Model {
        let mut m = Model::new("lora/adapter_model.safetensors", Format::Safetensors);
        for t in tensors {
            m.add_tensor(t);
        }
        for (k, v) in props {
            m.metadata.properties.push((k.to_string(), v.to_string()));
        }
        m
    }

    fn merged_values(m: &Model, name: &str) -> Vec<f64> {
        values(m.tensor(name).unwrap()).unwrap()
    }

    #[test]
    fn factors_merge_as_peft_merges_them() {
        let mut base = Model::new("base.safetensors", Format::Safetensors);
        base.add_tensor(f32_tensor(
            "model.fc.weight",
            &[2, 3],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ));
        base.add_tensor(f32_tensor("model.emb.weight", &[3, 2], &[0.0; 6]));
        base.add_tensor(f32_tensor("model.head.weight", &[1, 2], &[1.0, 1.0]));
        let lora = adapter(
            &[
                ("peft.peft_type", "LORA"),
                ("peft.lora_alpha", "4"),
                ("peft.alpha_pattern", r#"{"emb": 2}"#),
            ],
            vec![
                // r = 2: scale 4 / 2 = 2 for fc; B·A = [[1,0,1],[0,1,0]].
                f32_tensor(
                    "base_model.model.model.fc.lora_A.weight",
                    &[2, 3],
                    &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                ),
                f32_tensor(
                    "base_model.model.model.fc.lora_B.weight",
                    &[2, 2],
                    &[1.0, 0.0, 0.0, 1.0],
                ),
                // r = 1, alpha 2 from the pattern: scale 2; B·A = [[1,2,3],[2,4,6]], transposed.
                f32_tensor(
                    "base_model.model.model.emb.lora_embedding_A",
                    &[1, 3],
                    &[1.0, 2.0, 3.0],
                ),
                f32_tensor(
                    "base_model.model.model.emb.lora_embedding_B",
                    &[2, 1],
                    &[1.0, 2.0],
                ),
                f32_tensor("base_model.model.model.head.weight", &[1, 2], &[5.0, 6.0]),
                f32_tensor(
                    "base_model.model.model.gone.lora_A.weight",
                    &[1, 2],
                    &[1.0, 1.0],
                ),
            ],
        );
        let m = apply_adapter(&base, &lora).unwrap();
        assert_eq!(
            merged_values(&m, "model.fc.weight"),
            [3.0, 2.0, 5.0, 4.0, 7.0, 6.0]
        );
        assert_eq!(
            merged_values(&m, "model.emb.weight"),
            [2.0, 4.0, 4.0, 8.0, 6.0, 12.0]
        );
        assert_eq!(merged_values(&m, "model.head.weight"), [5.0, 6.0]);
        assert!(
            m.metadata
                .warnings
                .iter()
                .any(|w| w.contains("gone has only one")),
            "{:?}",
            m.metadata.warnings
        );
        // rsLoRA scales by alpha / √r.
        let mut rs = lora.clone();
        rs.metadata
            .properties
            .push(("peft.use_rslora".into(), "true".into()));
        let m = apply_adapter(&base, &rs).unwrap();
        let s = 4.0 / 2f64.sqrt();
        assert_eq!(
            merged_values(&m, "model.fc.weight"),
            [1.0 + s, 2.0, 3.0 + s, 4.0, 5.0 + s, 6.0]
        );
        // Not a LoRA adapter: an error naming the file.
        let ia3 = adapter(&[("peft.peft_type", "IA3")], Vec::new());
        let e = apply_adapter(&base, &ia3).unwrap_err();
        assert!(
            e.contains("adapter_model.safetensors") && e.contains("IA3"),
            "{e}"
        );
    }
}
