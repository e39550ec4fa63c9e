//! Quantized Hugging Face checkpoints read as reals: the integers or fp8 codes a safetensors
//! file stores are re-read with the scales (and zero points or biases) stored beside them, so
//! statistics, heatmaps and hover values are of the weights the model computes with.
//!
//! - **MLX** (`mlx_lm.convert -q`, the mlx-community checkpoints): a `…weight` of U32 words
//!   packing 4 or 8-bit integers from their low bits up, with `…scales` and `…biases` per group;
//!   `config.json`'s `quantization` says the bits and group size (per module where it differs).
//! - **Scaled weights** (DeepSeek-V3's and Qwen3's FP8 checkpoints, compressed-tensors'
//!   `float-quantized` and `int-quantized`, FBGEMM and ModelOpt FP8): a `…weight` of fp8 or int8
//!   with a `…weight_scale` (or DeepSeek's `…weight_scale_inv`: the same multiplier) of one
//!   value, one per row, one per group along the rows or one per `bn × bk` block
//!   (`weight_block_size` or compressed-tensors' `block_structure` in the config; blocks at the
//!   edges cut short). Read without a config too: the scale's shape says which.
//! - **compressed-tensors `pack-quantized`** (llm-compressor's W4A16 / W8A16, the RedHatAI and
//!   neuralmagic checkpoints vLLM serves): a `…weight_packed` of I32 words, each holding 8 4-bit
//!   or 4 8-bit values offset to unsigned, low bits first along the rows (other widths, 1 to 7
//!   bits, packed densely, a code split across two words where it must), `…weight_shape` the
//!   real `[out, in]`, `…weight_scale` per group or per row and, for asymmetric schemes,
//!   `…weight_zero_point` packed into words down the rows (widths dividing 32).
//!
//! - **GPTQ** (AutoGPTQ, GPTQModel, optimum: TheBloke's checkpoints; 4 and 8 bits, act-order)
//!   and **AWQ** (AutoAWQ's GEMM): `…qweight`, `…qzeros` and `…scales` (and GPTQ's `…g_idx`),
//!   read as the `[in, out]` matrix their dequantizers compute, the words' interleaved values
//!   found through a [`Layout`].
//!
//! - **bitsandbytes** (transformers' `load_in_4bit` / `load_in_8bit`, unsloth's `-bnb-4bit`
//!   checkpoints): NF4 / FP4 codes through the file's `quant_map`, scaled per block by `absmax`
//!   (itself quantized under double quantization); LLM.int8 rows scaled by `SCB / 127`.
//!
//! Each weight keeps its name and bytes; its dtype and shape become those of the stored integers
//! (`U4`, `U8`, `I8`, fp8) and a [`Quant::scale_bias_groups`] reads the scales from the mapped file
//! as needed: a 7 B model has a hundred million of them, too many to copy.
//!
//! - **NVFP4** (compressed-tensors' `nvfp4-pack-quantized`, NVIDIA ModelOpt's `NVFP4`): FP4 codes
//!   through the E2M1 values, an fp8 scale per 16, and a per-tensor scale.
//!
//! - **MXFP4** (gpt-oss's experts: `…_blocks` and `…_scales`; compressed-tensors'
//!   `mxfp4-pack-quantized`) and **MXFP8** (fp8 weights): FP4 codes through the E2M1 values, or
//!   fp8, with a power-of-two (E8M0) scale per 32.
//!
//! Not read (the weight is shown as stored, with a warning naming it): other bit widths,
//! compressed-tensors' sparse formats, AWQ's GEMV packing.

use std::path::Path;

use crate::model::{
    DType, E2M1, GroupOffset, Layout, Model, Quant, ScaleBiasGroups, TensorData, ZeroPacking,
};

/// Re-reads the quantized weights of `model`; `config` is `config.json` (parsed) and its path
/// where the checkpoint has one.
pub(super) fn read(model: &mut Model, config: Option<(&serde_json::Value, &Path)>) {
    let mut skipped = Vec::new();
    if let Some(summary) = config.and_then(|(json, _)| summary(json)) {
        model
            .metadata
            .properties
            .push(("quantization".into(), summary));
    }
    if let Some((json, path)) = config
        && let Some(q) = json
            .get("quantization")
            .or_else(|| json.get("quantization_config"))
    {
        mlx(model, q, path);
    }
    let q = config.and_then(|(json, _)| json.get("quantization_config"));
    let hints = BlockHints::of(q);
    bitsandbytes(model, &mut skipped);
    nvfp4(model, &mut skipped);
    mxfp4(model, &mut skipped);
    gptq_awq(model, q, &mut skipped);
    packed(model, &hints, &mut skipped);
    scaled(model, &hints, &mut skipped);
    if !skipped.is_empty() {
        let n = skipped.len();
        skipped.truncate(3);
        model.metadata.warnings.push(format!(
            "{n} quantized weight(s) in a layout modelmap does not read are shown as stored: {}",
            skipped.join(", ")
        ));
    }
}

/// One line on a config's quantization (`quantization_config`, MLX's `quantization`): the method,
/// then its settings (`gptq: bits 4, checkpoint_format gptq, desc_act false, group_size 32, …`);
/// compressed-tensors' groups by what they quantize (`weights int 4-bit group 128 symmetric`).
fn summary(json: &serde_json::Value) -> Option<String> {
    let (q, default) = match (json.get("quantization_config"), json.get("quantization")) {
        // mlx-lm writes both, the same.
        (_, Some(q)) => (q.as_object()?, "mlx"),
        (Some(q), None) => (q.as_object()?, "quantization_config"),
        _ => return None,
    };
    let method = q
        .get("quant_method")
        .and_then(|m| m.as_str())
        .unwrap_or(default);
    let mut parts = Vec::new();
    let mut keys: Vec<_> = q.iter().collect();
    keys.sort_by_key(|(k, _)| k.as_str());
    for (k, v) in keys {
        let shown = match v {
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
            serde_json::Value::String(s) if k != "quant_method" && s.len() <= 32 => s.clone(),
            serde_json::Value::Array(a) if a.iter().all(|x| x.is_number()) && a.len() <= 4 => {
                v.to_string()
            }
            _ => continue,
        };
        // Bookkeeping and the defaults transformers writes for every bitsandbytes model.
        let noise = k.starts_with('_')
            || matches!(
                k.as_str(),
                "quantization_status"
                    | "llm_int8_enable_fp32_cpu_offload"
                    | "llm_int8_has_fp16_weight"
                    | "llm_int8_skip_modules"
            )
            || (k.starts_with("load_in_") && shown == "false")
            || (k.starts_with("bnb_4bit") && q.get("load_in_4bit") != Some(&true.into()))
            || (k.starts_with("llm_int8") && q.get("load_in_8bit") != Some(&true.into()));
        if !noise {
            parts.push(format!("{k} {shown}"));
        }
    }
    let groups = q.get("config_groups").and_then(|g| g.as_object());
    for g in groups.into_iter().flat_map(|g| g.values()) {
        let Some(w) = g.get("weights") else { continue };
        let field = |k: &str| w.get(k).filter(|v| !v.is_null());
        let mut d = format!(
            "weights {} {}-bit",
            field("type").and_then(|v| v.as_str()).unwrap_or("?"),
            field("num_bits").and_then(|v| v.as_u64()).unwrap_or(0),
        );
        if let Some(strategy) = field("strategy").and_then(|v| v.as_str()) {
            d.push_str(&format!(" {strategy}"));
        }
        if let Some(n) = field("group_size").and_then(|v| v.as_u64()) {
            let per = if field("strategy").is_some() {
                ""
            } else {
                "group "
            };
            d.push_str(&format!(" {per}{n}"));
        }
        if let Some(b) = field("block_structure") {
            d.push_str(&format!(" {b}"));
        }
        if field("symmetric").and_then(|v| v.as_bool()) == Some(false) {
            d.push_str(" asymmetric");
        }
        parts.push(d);
    }
    let mut line = match parts.is_empty() {
        true => method.to_string(),
        false => format!("{method}: {}", parts.join(", ")),
    };
    if line.len() > 240 {
        let cut = (0..=240)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    Some(line)
}

/// Block and group sizes a config names, to tell blocks cut short at the edges apart.
#[derive(Debug, Default)]
struct BlockHints {
    /// `[rows, cols]` per block.
    blocks: Vec<(u64, u64)>,
    /// Elements per group along the rows.
    groups: Vec<u64>,
}

impl BlockHints {
    fn of(q: Option<&serde_json::Value>) -> Self {
        let mut h = BlockHints::default();
        let Some(q) = q else { return h };
        let mut add_block = |v: Option<&serde_json::Value>| {
            if let Some([r, c]) = v
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect::<Vec<_>>())
                .as_deref()
                && *r > 0
                && *c > 0
            {
                h.blocks.push((*r, *c));
            }
        };
        // transformers' FineGrainedFP8 (DeepSeek-V3: `[128, 128]`).
        add_block(q.get("weight_block_size"));
        let weights = q
            .get("config_groups")
            .and_then(|g| g.as_object())
            .into_iter()
            .flat_map(|g| g.values())
            .filter_map(|g| g.get("weights"));
        for w in weights {
            add_block(w.get("block_structure"));
            if let Some(g) = w
                .get("group_size")
                .and_then(|g| g.as_u64())
                .filter(|&g| g > 0)
            {
                h.groups.push(g);
            }
        }
        h
    }

    /// Rows and columns per scale of an `[n, k]` weight whose scales have `shape`: one scale,
    /// one per row, or a grid of blocks (the config's, else the one that divides evenly).
    fn tile(&self, n: u64, k: u64, shape: &[u64]) -> Option<(u64, u64)> {
        let (a, b) = match *shape {
            [] => (1, 1),
            [a] => (a, 1),
            [a, b] => (a, b),
            _ => return None,
        };
        if a == 0 || b == 0 || n == 0 || k == 0 {
            return None;
        }
        if a == 1 && b == 1 {
            return Some((n, k));
        }
        let named = self
            .blocks
            .iter()
            .copied()
            .chain(self.groups.iter().map(|&g| (1, g)))
            .find(|&(r, c)| n.div_ceil(r) == a && k.div_ceil(c) == b);
        named.or_else(|| (n.is_multiple_of(a) && k.is_multiple_of(b)).then(|| (n / a, k / b)))
    }
}

/// Tensors re-read as quantized integers: index, stored type, real shape and quantization.
type Retyped = Vec<(usize, DType, Vec<u64>, Quant)>;

/// Gives each tensor of `found` its stored type, real shape and quantization.
fn retype(model: &mut Model, found: Retyped) {
    for (i, dtype, shape, q) in found {
        if let Some(t) = model.tensors.get_mut(i) {
            t.dtype = dtype;
            t.shape = shape;
            t.quant = Some(q);
        }
    }
}

/// The bytes and 2-D shape of tensor `name`, if it is there with bytes.
fn find<'a>(model: &'a Model, name: &str) -> Option<(usize, &'a crate::model::Tensor)> {
    let &i = model.tensor_index.get(name)?;
    let t = model.tensors.get(i as usize)?;
    matches!(t.data, TensorData::Bytes(_)).then_some((i as usize, t))
}

fn bytes_of(t: &crate::model::Tensor) -> Option<bytes::Bytes> {
    match &t.data {
        TensorData::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

/// Scales of a type [`ScaleBiasGroups`] reads.
fn is_scale_type(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16 | DType::F32)
}

/// A `…weight` of fp8 or int8 beside a `…weight_scale` / `…weight_scale_inv` (MXFP8's: bytes of
/// E8M0 exponents).
fn scaled(model: &mut Model, hints: &BlockHints, skipped: &mut Vec<String>) {
    let mut found = Vec::new();
    let mut exponents = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        let Some(prefix) = t.name.strip_suffix("weight") else {
            continue;
        };
        let fp8 = t.dtype.is_fp8();
        if !(fp8 || t.dtype == DType::I8) || t.quant.is_some() {
            continue;
        }
        let Some((si, st)) = find(model, &format!("{prefix}weight_scale"))
            .or_else(|| find(model, &format!("{prefix}weight_scale_inv")))
        else {
            continue;
        };
        // MXFP8 (compressed-tensors' `MXFP8` schemes): bytes of E8M0 exponents, one per 32.
        let e8m0 = fp8 && st.dtype == DType::U8;
        let scale_type = if e8m0 { DType::F8E8M0 } else { st.dtype };
        let (Some(&n), Some(&k), 2, true) = (
            t.shape.first(),
            t.shape.get(1),
            t.shape.len(),
            e8m0 || is_scale_type(st.dtype),
        ) else {
            skipped.push(t.name.clone());
            continue;
        };
        let Some((rows, size)) = hints.tile(n, k, &st.shape) else {
            skipped.push(t.name.clone());
            continue;
        };
        let offset = match find(model, &format!("{prefix}weight_zero_point")) {
            None => GroupOffset::Zero(0.0),
            Some((_, zt)) if zt.dtype == DType::I8 && zt.elements() == st.elements() => {
                match bytes_of(zt) {
                    Some(b) => GroupOffset::ZeroPoints {
                        bytes: b,
                        bits: 8,
                        row_groups: k.div_ceil(size),
                        packing: ZeroPacking::SignedBytes,
                        plus: 0,
                    },
                    None => continue,
                }
            }
            Some(_) => {
                skipped.push(t.name.clone());
                continue;
            }
        };
        let Some(scales) = bytes_of(st) else { continue };
        let groups = ScaleBiasGroups::tiles(size, rows, k, scale_type, scales, offset);
        if let Some(q) = Quant::scale_bias_groups(groups) {
            found.push((i, t.dtype, t.shape.clone(), q));
            if e8m0 {
                exponents.push(si);
            }
        }
    }
    retype(model, found);
    as_e8m0(model, exponents);
}

/// The values of a small integer tensor (`…weight_shape`).
fn small_ints(t: &crate::model::Tensor) -> Option<Vec<u64>> {
    let b = bytes_of(t)?;
    let width = match t.dtype {
        DType::I64 => 8,
        DType::I32 => 4,
        _ => return None,
    };
    if b.len() > 64 || !b.len().is_multiple_of(width) {
        return None;
    }
    b.chunks_exact(width)
        .map(|c| {
            let v = if width == 8 {
                i64::from_le_bytes(c.try_into().ok()?)
            } else {
                i64::from(i32::from_le_bytes(c.try_into().ok()?))
            };
            u64::try_from(v).ok()
        })
        .collect()
}

/// compressed-tensors' `pack-quantized` weights.
fn packed(model: &mut Model, hints: &BlockHints, skipped: &mut Vec<String>) {
    let mut found = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        let Some(prefix) = t.name.strip_suffix("weight_packed") else {
            continue;
        };
        if t.quant.is_some() {
            continue;
        }
        let real = find(model, &format!("{prefix}weight_shape")).and_then(|(_, s)| small_ints(s));
        let scale = find(model, &format!("{prefix}weight_scale"));
        let (Some(&[n, k]), Some((_, st)), DType::I32, &[pn, words]) =
            (real.as_deref(), scale, t.dtype, t.shape.as_slice())
        else {
            skipped.push(t.name.clone());
            continue;
        };
        // Bits from the packed width: each row is whole words, its codes packed densely, low
        // bits first (split across words where the width does not divide 32), so rows of whole
        // words are one little-endian bitstream.
        let bits = match words.checked_mul(32) {
            Some(b) if k > 0 && pn == n && b.is_multiple_of(k) => b / k,
            _ => 0,
        };
        let dtype = match bits {
            4 => DType::U4,
            8 => DType::U8,
            1..=7 => DType::UBits(bits as u8),
            _ => {
                skipped.push(format!("{} ({bits}-bit)", t.name));
                continue;
            }
        };
        let tile = hints.tile(n, k, &st.shape).filter(|&(rows, _)| rows == 1);
        let (Some((_, size)), true) = (tile, is_scale_type(st.dtype)) else {
            skipped.push(t.name.clone());
            continue;
        };
        let row_groups = k.div_ceil(size);
        let mut zeros = None;
        let offset = match find(model, &format!("{prefix}weight_zero_point")) {
            None => GroupOffset::Zero(f64::from(1u32 << (bits - 1))),
            // Zero points of widths that do not divide 32 are packed across words down the
            // columns: not read.
            Some(_) if !32u64.is_multiple_of(bits) => {
                skipped.push(format!("{} ({bits}-bit, asymmetric)", t.name));
                continue;
            }
            Some((zi, zt)) => {
                let per_word = 32 / bits;
                // Shown as the signed integers they are, `[out, groups]`, where the words hold
                // whole columns.
                if n.is_multiple_of(per_word) {
                    let layout = Layout::Gptq {
                        cols: row_groups,
                        per: per_word,
                    };
                    let offset = f64::from(1u32 << (bits - 1));
                    let shape = vec![n, row_groups];
                    zeros = Quant::new(vec![1.0], vec![offset], 0, &shape)
                        .map(|q| (zi, shape, q.with_layout(layout)));
                }
                let fits = zt.dtype == DType::I32
                    && zt.shape == [n.div_ceil(per_word), row_groups]
                    && st.elements() == n.saturating_mul(row_groups);
                match bytes_of(zt).filter(|_| fits) {
                    Some(b) => GroupOffset::ZeroPoints {
                        bytes: b,
                        bits: bits as u8,
                        row_groups,
                        packing: ZeroPacking::DownWords,
                        plus: 0,
                    },
                    None => {
                        skipped.push(t.name.clone());
                        continue;
                    }
                }
            }
        };
        let Some(scales) = bytes_of(st) else { continue };
        let groups = ScaleBiasGroups::tiles(size, 1, k, st.dtype, scales, offset);
        if let Some(q) = Quant::scale_bias_groups(groups) {
            found.push((i, dtype, vec![n, k], q));
            if let Some((zi, shape, zq)) = zeros {
                found.push((zi, dtype, shape, zq));
            }
        }
    }
    retype(model, found);
}

/// NVFP4 weights: U8 `[out, in / 2]` of FP4 (E2M1) codes, the low nibble first, with an fp8
/// e4m3 `…weight_scale` per group of 16 and a per-tensor F32 scale:
/// - compressed-tensors' `nvfp4-pack-quantized` (llm-compressor): `…weight_packed`, its
///   `…weight_global_scale` dividing the group scales;
/// - NVIDIA ModelOpt's (`quant_algo: NVFP4`, the `nvidia/…-FP4` checkpoints): `…weight`, its
///   `…weight_scale_2` multiplying them.
fn nvfp4(model: &mut Model, skipped: &mut Vec<String>) {
    let mut found = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        let global = if let Some(prefix) = t.name.strip_suffix("weight_packed") {
            find(model, &format!("{prefix}weight_global_scale")).map(|(_, g)| (prefix, g, true))
        } else if let Some(prefix) = t.name.strip_suffix("weight") {
            find(model, &format!("{prefix}weight_scale_2")).map(|(_, g)| (prefix, g, false))
        } else {
            None
        };
        let Some((prefix, gt, divides)) = global else {
            continue;
        };
        let read = || -> Option<(Vec<u64>, Quant)> {
            let (_, st) = find(model, &format!("{prefix}weight_scale"))?;
            let global = small_f32s(gt, 1)?.first().copied()?;
            let factor = if divides { 1.0 / global } else { global };
            let (&[n, half], &[sn, sg]) = (t.shape.as_slice(), st.shape.as_slice()) else {
                return None;
            };
            let k = half.checked_mul(2)?;
            if t.dtype != DType::U8 || st.dtype != DType::F8E4M3FN || sn != n || sg == 0 {
                return None;
            }
            if !k.is_multiple_of(sg) || global == 0.0 || t.quant.is_some() {
                return None;
            }
            let plain = ScaleBiasGroups::tiles(
                k / sg,
                1,
                k,
                st.dtype,
                bytes_of(st)?,
                GroupOffset::Zero(0.0),
            );
            let groups = ScaleBiasGroups {
                codebook: Some(E2M1.to_vec().into()),
                scale_factor: factor,
                ..plain
            };
            Some((vec![n, k], Quant::scale_bias_groups(groups)?))
        };
        match read() {
            Some((shape, q)) => found.push((i, DType::U4, shape, q)),
            None => skipped.push(t.name.clone()),
        }
    }
    retype(model, found);
}

/// MXFP4: compressed-tensors' `mxfp4-pack-quantized` (`…weight_packed` U8 `[out, in / 2]` of FP4
/// codes, `…weight_scale` U8 `[out, in / 32]`), and gpt-oss's mixture-of-experts weights
/// (`quant_method: mxfp4`): U8 `…_blocks`
/// `[…, rows, groups, 16]` of FP4 (E2M1) codes, the low nibble first, 32 values a group, beside
/// U8 `…_scales` `[…, rows, groups]` of E8M0 exponents (`2^(s − 127)`). Read as the
/// `[…, rows, groups · 32]` values they stand for (each expert's `[out, in]`, as stored;
/// transformers' `convert_moe_packed_tensors` then transposes them to the model's `[in, out]`),
/// and the scales as the powers of two they are.
fn mxfp4(model: &mut Model, skipped: &mut Vec<String>) {
    let mut found = Vec::new();
    let mut scales = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        // compressed-tensors' `mxfp4-pack-quantized`: NVFP4's packing without a global scale.
        if let Some(prefix) = t.name.strip_suffix("weight_packed")
            && t.dtype == DType::U8
            && t.quant.is_none()
            && let Some((si, st)) = find(model, &format!("{prefix}weight_scale"))
            && st.dtype == DType::U8
        {
            let read = || -> Option<(Vec<u64>, Quant)> {
                let (&[n, half], &[sn, sg]) = (t.shape.as_slice(), st.shape.as_slice()) else {
                    return None;
                };
                let k = half.checked_mul(2)?;
                if sn != n || sg == 0 || !k.is_multiple_of(sg) {
                    return None;
                }
                let plain = ScaleBiasGroups::tiles(
                    k / sg,
                    1,
                    k,
                    DType::F8E8M0,
                    bytes_of(st)?,
                    GroupOffset::Zero(0.0),
                );
                let groups = ScaleBiasGroups {
                    codebook: Some(E2M1.to_vec().into()),
                    ..plain
                };
                Some((vec![n, k], Quant::scale_bias_groups(groups)?))
            };
            match read() {
                Some((shape, q)) => {
                    found.push((i, DType::U4, shape, q));
                    scales.push(si);
                }
                None => skipped.push(t.name.clone()),
            }
            continue;
        }
        let Some(prefix) = t.name.strip_suffix("_blocks") else {
            continue;
        };
        let Some((si, st)) = find(model, &format!("{prefix}_scales")) else {
            continue;
        };
        let read = || -> Option<(Vec<u64>, Quant)> {
            let (&b, lead) = t.shape.split_last()?;
            let (&g, outer) = lead.split_last()?;
            let fits = t.dtype == DType::U8 && st.dtype == DType::U8 && st.shape == lead;
            if !fits || b == 0 || t.quant.is_some() {
                return None;
            }
            let mut shape = outer.to_vec();
            shape.push(g.checked_mul(b)?.checked_mul(2)?);
            let plain =
                ScaleBiasGroups::runs(b * 2, DType::F8E8M0, bytes_of(st)?, GroupOffset::Zero(0.0));
            let groups = ScaleBiasGroups {
                codebook: Some(E2M1.to_vec().into()),
                ..plain
            };
            Some((shape, Quant::scale_bias_groups(groups)?))
        };
        match read() {
            Some((shape, q)) => {
                found.push((i, DType::U4, shape, q));
                scales.push(si);
            }
            None => skipped.push(t.name.clone()),
        }
    }
    retype(model, found);
    as_e8m0(model, scales);
}

/// Shows MX scale bytes (`uint8` in the file) as the E8M0 powers of two they are.
fn as_e8m0(model: &mut Model, scales: Vec<usize>) {
    for si in scales {
        if let Some(st) = model.tensors.get_mut(si) {
            st.dtype = DType::F8E8M0;
        }
    }
}

/// The F32 values of a small tensor (a codebook).
fn small_f32s(t: &crate::model::Tensor, n: usize) -> Option<Vec<f64>> {
    let b = bytes_of(t)?;
    (t.dtype == DType::F32 && b.len() == n * 4).then(|| {
        b.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    })
}

/// bitsandbytes' weights as transformers saves them (`load_in_4bit` / `load_in_8bit`; the
/// unsloth `-bnb-4bit` checkpoints):
/// - 4-bit: `…weight` U8 `[n/2, 1]` holding two codes a byte, the first in the high nibble (or
///   the same bytes as another type's tensor, as `bnb_4bit_quant_storage` asks),
///   `…weight.quant_state.bitsandbytes__nf4` (or `__fp4`) the JSON of its real shape and block
///   size, `…weight.quant_map` the 16 values the codes stand for and `…weight.absmax` one scale
///   per block; double quantization stores the scales as bytes themselves, read through
///   `…weight.nested_quant_map`, `…weight.nested_absmax` and the JSON's `nested_offset`.
/// - 8-bit (LLM.int8): `…weight` I8 `[out, in]` with the module's `SCB`, each row's absolute
///   maximum: a value is `q × SCB / 127`.
fn bitsandbytes(model: &mut Model, skipped: &mut Vec<String>) {
    let mut found = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        if t.quant.is_some() {
            continue;
        }
        // LLM.int8.
        if let Some(module) = t.name.strip_suffix(".weight")
            && t.dtype == DType::I8
            && let Some((_, scb)) = find(model, &format!("{module}.SCB"))
        {
            let rows = t.shape.first().copied().unwrap_or(0);
            match small_f32s(scb, rows as usize).filter(|_| t.shape.len() == 2) {
                Some(scb) => {
                    let scale = scb.iter().map(|s| s / 127.0).collect();
                    if let Some(q) = Quant::new(scale, Vec::new(), 0, &t.shape) {
                        found.push((i, t.dtype, t.shape.clone(), q));
                    }
                }
                None => skipped.push(t.name.clone()),
            }
            continue;
        }
        let state = ["nf4", "fp4"].into_iter().find_map(|k| {
            find(model, &format!("{}.quant_state.bitsandbytes__{k}", t.name)).map(|(_, s)| s)
        });
        let Some(state) = state else { continue };
        let json = bytes_of(state)
            .filter(|_| state.dtype == DType::U8)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let part = |leaf: &str| find(model, &format!("{}.{leaf}", t.name)).map(|(_, p)| p);
        let absmax_index = find(model, &format!("{}.absmax", t.name)).map(|(i, _)| i);
        let read = || -> Option<(Vec<u64>, Quant)> {
            let json = json.as_ref()?;
            let shape: Vec<u64> = json["shape"]
                .as_array()?
                .iter()
                .map(|d| d.as_u64())
                .collect::<Option<_>>()?;
            let block = json["blocksize"].as_u64().filter(|&b| b > 0)?;
            let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
            // The codes' bytes, whatever tensor type holds them (`bnb_4bit_quant_storage`:
            // QLoRA with FSDP stores them as bfloat16).
            let storage = matches!(
                t.dtype,
                DType::U8 | DType::I8 | DType::F16 | DType::BF16 | DType::F32 | DType::I32
            );
            if !storage || t.expected_bytes() != Some(elements.div_ceil(2)) {
                return None;
            }
            let codebook = small_f32s(part("quant_map")?, 16)?;
            let absmax = part("absmax")?;
            let nested = match (part("nested_absmax"), part("nested_quant_map")) {
                (Some(na), Some(nm)) => Some(std::sync::Arc::new(crate::model::NestedScales {
                    map: small_f32s(nm, 256)?,
                    absmax: bytes_of(na).filter(|_| na.dtype == DType::F32)?,
                    block: json["nested_blocksize"].as_u64().filter(|&b| b > 0)?,
                    offset: json["nested_offset"].as_f64().unwrap_or(0.0),
                })),
                _ => None,
            };
            let want = if nested.is_some() {
                DType::U8
            } else {
                DType::F32
            };
            if absmax.dtype != want || absmax.elements() != elements.div_ceil(block) {
                return None;
            }
            let groups = ScaleBiasGroups {
                codebook: Some(codebook.into()),
                nested,
                ..ScaleBiasGroups::runs(block, want, bytes_of(absmax)?, GroupOffset::Zero(0.0))
            };
            let q = Quant::scale_bias_groups(groups)?.with_layout(Layout::HighNibbleFirst);
            Some((shape, q))
        };
        match read() {
            Some((shape, q)) => {
                // Double-quantized scales shown as the reals they stand for.
                let nested = q.scale_bias().and_then(|g| g.nested.clone());
                if let (Some(n), Some(ai)) = (nested, absmax_index) {
                    let groups = ScaleBiasGroups {
                        codebook: Some(n.map.clone().into()),
                        ..ScaleBiasGroups::runs(
                            n.block,
                            DType::F32,
                            n.absmax.clone(),
                            GroupOffset::Add(n.offset),
                        )
                    };
                    if let (Some(aq), Some(a)) =
                        (Quant::scale_bias_groups(groups), model.tensors.get(ai))
                    {
                        found.push((ai, a.dtype, a.shape.clone(), aq));
                    }
                }
                found.push((i, DType::U4, shape, q));
            }
            None => skipped.push(t.name.clone()),
        }
    }
    retype(model, found);
}

/// GPTQ (AutoGPTQ, GPTQModel, optimum: TheBloke's checkpoints) and AWQ (AutoAWQ's GEMM kernels)
/// weights: a `…qweight` of I32 words with `…qzeros` (I32 words) and `…scales` per group of
/// input rows, told apart by their shapes. Both are read as the `[in, out]` matrix their
/// dequantizers compute, `(q − zero) × scale`:
/// - GPTQ's `qweight` is `[in / per, out]`, each word holding `per` (8 at 4 bits, 4 at 8)
///   consecutive inputs of one output, low bits first; its zero points are packed along the
///   outputs the same way and stored less one (unless the config says `checkpoint_format`
///   `gptq_v2`); `g_idx` gives each input row's group (act-order permutes them).
/// - AWQ's `qweight` is `[in, out / 8]`, each word holding eight outputs of one input in the
///   order 0, 2, 4, 6, 1, 3, 5, 7, its zero points likewise.
fn gptq_awq(model: &mut Model, q: Option<&serde_json::Value>, skipped: &mut Vec<String>) {
    let cfg_u64 = |k: &str| q.and_then(|q| q.get(k)).and_then(|v| v.as_u64());
    let cfg_str = |k: &str| q.and_then(|q| q.get(k)).and_then(|v| v.as_str());
    let v2 = cfg_str("checkpoint_format").is_some_and(|f| f.contains("v2"));
    let awq_gemm = cfg_str("version").is_none_or(|v| v.eq_ignore_ascii_case("gemm"));
    let mut found = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        let Some(prefix) = t.name.strip_suffix("qweight") else {
            continue;
        };
        let (Some((_, st)), Some((zi, zt))) = (
            find(model, &format!("{prefix}scales")),
            find(model, &format!("{prefix}qzeros")),
        ) else {
            continue;
        };
        let (&[a, b], &[groups, n], &[zg, zc]) =
            (t.shape.as_slice(), st.shape.as_slice(), zt.shape.as_slice())
        else {
            skipped.push(t.name.clone());
            continue;
        };
        let g_idx = find(model, &format!("{prefix}g_idx")).map(|(_, g)| g);
        let words_fit = t.dtype == DType::I32
            && zt.dtype == DType::I32
            && is_scale_type(st.dtype)
            && zg == groups
            && groups > 0
            && t.quant.is_none();
        let gptq = b == n;
        let (k, bits) = if gptq {
            // Inputs from `g_idx` where there is one, else the config's bits (4 by default).
            let k = match g_idx {
                Some(g) => g.elements(),
                None => a.saturating_mul(32 / cfg_u64("bits").unwrap_or(4).clamp(1, 32)),
            };
            let bits = if k > 0 && a.saturating_mul(32).is_multiple_of(k) {
                a * 32 / k
            } else {
                0
            };
            (k, bits)
        } else {
            (
                a,
                if b.saturating_mul(8) == n && awq_gemm {
                    4
                } else {
                    0
                },
            )
        };
        let per = 32u64.checked_div(bits).unwrap_or(0);
        if !words_fit || !matches!(bits, 4 | 8) || zc.saturating_mul(per) != n || k == 0 {
            skipped.push(format!("{} ({bits}-bit)", t.name));
            continue;
        }
        // Input rows per group: the config's group size where groups are cut short, else even.
        let rows = match cfg_u64("group_size") {
            Some(g) if g > 0 && k.div_ceil(g) == groups => g,
            _ if k.is_multiple_of(groups) => k / groups,
            _ => {
                skipped.push(t.name.clone());
                continue;
            }
        };
        // An act-order `g_idx` (not `row / rows`) is read per row; an ordered one is not needed.
        let row_map = match g_idx {
            Some(g) if gptq => match (g.dtype, bytes_of(g)) {
                (DType::I32, Some(b)) => {
                    let idx = b
                        .chunks_exact(4)
                        .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    let mut ordered = true;
                    let mut valid = true;
                    for (r, gi) in idx.enumerate() {
                        ordered &= gi == (r as u64 / rows) as i64;
                        valid &= (0..groups as i64).contains(&gi);
                    }
                    if !valid {
                        skipped.push(t.name.clone());
                        continue;
                    }
                    (!ordered).then_some(b)
                }
                _ => None,
            },
            _ => None,
        };
        let (Some(scales), Some(zeros)) = (bytes_of(st), bytes_of(zt)) else {
            continue;
        };
        let plus = u8::from(gptq && !v2);
        let zero_shape = vec![groups, n];
        let offset = GroupOffset::ZeroPoints {
            bytes: zeros,
            bits: bits as u8,
            row_groups: n,
            packing: if gptq {
                ZeroPacking::Rows
            } else {
                ZeroPacking::AwqRows
            },
            plus,
        };
        let groups = ScaleBiasGroups {
            row_map,
            ..ScaleBiasGroups::tiles(1, rows, n, st.dtype, scales, offset)
        };
        let layout = if gptq {
            Layout::Gptq { cols: n, per }
        } else {
            Layout::AwqOrder
        };
        if let Some(q) = Quant::scale_bias_groups(groups) {
            let dtype = if bits == 4 { DType::U4 } else { DType::U8 };
            found.push((i, dtype, vec![k, n], q.with_layout(layout)));
            // The zero points too, as the integers they are (GPTQ's stored less one).
            let zq = Quant::new(vec![1.0], vec![0.0 - f64::from(plus)], 0, &zero_shape);
            if let Some(zq) = zq {
                let zq = if gptq {
                    zq
                } else {
                    zq.with_layout(Layout::AwqOrder)
                };
                found.push((zi, dtype, zero_shape, zq));
            }
        }
    }
    retype(model, found);
}

/// MLX's quantized weights (`mlx_lm.convert -q`, the mlx-community checkpoints): a `…weight` of
/// U32 words holding each row's integers as a little-endian bitstream (2, 3, 4, 5, 6 or 8 bits),
/// beside `…scales` and `…biases` with one value per group of `group_size`, the config's
/// `quantization` saying `bits` and `group_size` (for the model, or per module). The weight is
/// re-read as integers of its real shape (U4, U8, or [`DType::UBits`]: the same bytes), read as
/// `q × scale + bias`, the scales and biases left in the file.
fn mlx(model: &mut Model, q: &serde_json::Value, config: &Path) {
    if q.get("bits").is_none() || q.get("group_size").is_none() {
        return;
    }
    let mut skipped = Vec::new();
    for i in 0..model.tensors.len() {
        let t = &model.tensors[i];
        let Some(prefix) = t.name.strip_suffix("weight") else {
            continue;
        };
        if t.dtype != DType::U32 || t.shape.len() != 2 || t.quant.is_some() {
            continue;
        }
        let (Some(&si), Some(&bi)) = (
            model.tensor_index.get(&format!("{prefix}scales")),
            model.tensor_index.get(&format!("{prefix}biases")),
        ) else {
            continue;
        };
        // A module's own entry overrides the model's (`false`: not quantized).
        let module = prefix.trim_end_matches('.');
        let spec = match q.get(module) {
            Some(serde_json::Value::Bool(false)) => continue,
            Some(m) if m.get("bits").is_some() => m,
            _ => q,
        };
        let (Some(bits), Some(group)) = (spec["bits"].as_u64(), spec["group_size"].as_u64()) else {
            continue;
        };
        let dtype = match bits {
            4 => DType::U4,
            8 => DType::U8,
            // A little-endian bitstream, rows of whole words.
            2 | 3 | 5 | 6 => DType::UBits(bits as u8),
            _ => {
                skipped.push(format!("{} ({bits}-bit)", t.name));
                continue;
            }
        };
        let (rows, words) = (t.shape[0], t.shape[1]);
        if !words.saturating_mul(32).is_multiple_of(bits) {
            continue;
        }
        let cols = words.saturating_mul(32) / bits;
        let (st, bt) = (&model.tensors[si as usize], &model.tensors[bi as usize]);
        if group == 0
            || !cols.is_multiple_of(group)
            || st.shape != [rows, cols / group]
            || bt.shape != st.shape
            || bt.dtype != st.dtype
        {
            continue;
        }
        let (TensorData::Bytes(scales), TensorData::Bytes(biases)) = (&st.data, &bt.data) else {
            continue;
        };
        let groups = ScaleBiasGroups::runs(
            group,
            st.dtype,
            scales.clone(),
            GroupOffset::Bias(biases.clone()),
        );
        let Some(quant) = Quant::scale_bias_groups(groups) else {
            continue;
        };
        let t = &mut model.tensors[i];
        t.dtype = dtype;
        t.shape = vec![rows, cols];
        t.quant = Some(quant);
    }
    if !skipped.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: {} MLX-quantized weight(s) of a bit width other than 2, 3, 4, 5, 6 or 8 are \
             shown as their packed words: {}",
            config.display(),
            skipped.len(),
            skipped.into_iter().take(3).collect::<Vec<_>>().join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, Tensor};

    fn tensor(name: &str, dtype: DType, shape: &[u64], bytes: Vec<u8>) -> Tensor {
        Tensor::from_bytes(name, dtype, shape, bytes)
    }

    #[test]
    fn tiles_follow_the_config_then_even_division() {
        let none = BlockHints::default();
        assert_eq!(none.tile(200, 300, &[]), Some((200, 300)));
        assert_eq!(none.tile(200, 300, &[200, 1]), Some((1, 300)));
        assert_eq!(none.tile(200, 300, &[200]), Some((1, 300)));
        assert_eq!(none.tile(200, 300, &[200, 3]), Some((1, 100)));
        // 128 × 128 blocks cut short: only the config tells them from 100 × 150.
        assert_eq!(none.tile(200, 300, &[2, 3]), Some((100, 100)));
        let deepseek = BlockHints {
            blocks: vec![(128, 128)],
            groups: Vec::new(),
        };
        assert_eq!(deepseek.tile(200, 300, &[2, 3]), Some((128, 128)));
        assert_eq!(none.tile(200, 300, &[3, 7]), None);
        assert_eq!(none.tile(200, 300, &[0, 1]), None);
    }

    #[test]
    fn int8_weights_with_signed_zero_points_per_block() {
        // [4, 6] in 2 × 3 blocks: scales 1..4, zero points -1, 0, 2, 5.
        let mut m = Model::new("m.safetensors", Format::Safetensors);
        let w: Vec<u8> = (0..24u8).collect();
        m.add_tensor(tensor("l.weight", DType::I8, &[4, 6], w));
        let scales = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        m.add_tensor(tensor("l.weight_scale", DType::F32, &[2, 2], scales));
        let zeros = [-1i8, 0, 2, 5].iter().map(|&z| z as u8).collect();
        m.add_tensor(tensor("l.weight_zero_point", DType::I8, &[2, 2], zeros));
        read(&mut m, None);
        let t = m.tensor("l.weight").unwrap();
        let q = t.quant.as_ref().unwrap();
        let mut v: Vec<f64> = (0..24).map(f64::from).collect();
        q.apply(0, &mut v);
        // Row 0: columns 0..3 in block 0 ((q + 1) × 1), 3..6 in block 1 (q × 2).
        assert_eq!(&v[..6], &[1.0, 2.0, 3.0, 6.0, 8.0, 10.0]);
        // Row 3 (block row 1): (q − 2) × 3, then (q − 5) × 4.
        assert_eq!(&v[18..], &[48.0, 51.0, 54.0, 64.0, 68.0, 72.0]);
        assert!(m.metadata.warnings.is_empty());
    }
}
