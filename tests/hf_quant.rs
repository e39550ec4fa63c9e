//! Quantized Hugging Face checkpoints (`tests/data/hfquant`, `make_hfquant.py`): one tiny LLaMA
//! quantized by llm-compressor as compressed-tensors saves it (int4 and int8 packed into words,
//! symmetric and asymmetric; int8 and fp8 weights with per-row and 128 × 128 block scales), and a
//! DeepSeek-V3-style fp8 checkpoint with blocks cut short at the edges; and GPTQ (4- and 8-bit,
//! act-order) and AWQ checkpoints packed by AutoAWQ's own packing functions; and bitsandbytes'
//! NF4 (double-quantized), FP4 and LLM.int8 checkpoints as transformers saves them. Every quantized
//! weight is read at its real shape and its values are what transformers' compressed-tensors
//! integration, DeepSeek's `weight_dequant`, GPTQModel's, AutoAWQ's and bitsandbytes'
//! dequantizers compute.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use modelmap::stats::heatmap::{self, HeatmapView};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hfquant")
}

fn open(checkpoint: &str) -> modelmap::model::Model {
    modelmap::load::open(&data_dir().join(checkpoint)).unwrap()
}

/// The group scales of tensor `name`.
fn groups<'a>(m: &'a modelmap::model::Model, name: &str) -> &'a modelmap::model::ScaleBiasGroups {
    m.tensor(name)
        .and_then(|t| t.quant.as_ref())
        .and_then(|q| q.scale_bias())
        .unwrap_or_else(|| panic!("{name}: no group scales"))
}

/// The neuron sizes of the first layer's MLP chain.
fn mlp_sizes(m: &modelmap::model::Model) -> Vec<u64> {
    let chains = modelmap::stats::neurons::find_dense_chains(m);
    chains
        .iter()
        .find(|c| c.name == "model.layers.0.mlp")
        .unwrap_or_else(|| panic!("no MLP chain in {chains:?}"))
        .sizes()
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(checkpoint: &str) {
    let facts = facts();
    let f = &facts[checkpoint];
    let m = open(checkpoint);
    assert_eq!(
        m.tensors.len() as u64,
        f["tensors"].as_u64().unwrap(),
        "{checkpoint}"
    );
    let quantized = f["quantized"].as_object().unwrap();
    assert_eq!(
        m.tensors.iter().filter(|t| t.quant.is_some()).count(),
        quantized.len(),
        "{checkpoint}: {:?}",
        m.metadata.warnings
    );
    for (name, w) in quantized {
        let t = m
            .tensor(name)
            .unwrap_or_else(|| panic!("{checkpoint}: {name}"));
        assert_eq!(t.dtype.name(), w["dtype"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape, common::json_dims(&w["shape"]), "{name}");
        let s = modelmap::stats::tensor_stats(t).unwrap();
        let want = w["mean"].as_f64().unwrap();
        assert!(
            (s.mean.unwrap() - want).abs() < 1e-7,
            "{checkpoint} {name}: mean {:?} vs {want}",
            s.mean
        );
        // Values where groups and blocks begin and end, through the heatmap's reading.
        let view = HeatmapView::for_display(t);
        for sample in w["samples"].as_array().unwrap() {
            let [r, c, v] = sample.as_array().unwrap().as_slice() else {
                panic!("{sample}");
            };
            let (r, c, want) = (
                r.as_u64().unwrap(),
                c.as_u64().unwrap(),
                v.as_f64().unwrap(),
            );
            let got = heatmap::value_at(t, &view, r, c).unwrap();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-9,
                "{checkpoint} {name}[{r}, {c}]: {got} vs {want}"
            );
        }
    }
    assert!(m.metadata.warnings.is_empty(), "{:?}", m.metadata.warnings);
}

#[test]
fn compressed_tensors_int4_packed_weights_read_as_reals() {
    check("w4a16");
}

#[test]
fn compressed_tensors_asymmetric_int4_reads_zero_points_packed_down_the_rows() {
    check("w4a16_asym");
}

#[test]
fn compressed_tensors_int8_packed_weights_read_as_reals() {
    check("w8a16");
}

/// 3- and 6-bit codes packed densely, split across int32 words (compressed-tensors 0.19).
#[test]
fn compressed_tensors_3_and_6_bit_packed_weights_read_as_reals() {
    for (name, bits) in [("w3a16", 3), ("w6a16", 6)] {
        check(name);
        let m = open(name);
        let t = m
            .tensor("model.layers.0.mlp.down_proj.weight_packed")
            .unwrap();
        assert_eq!(t.dtype, modelmap::model::DType::UBits(bits), "{name}");
        assert_eq!(t.shape, [128, 256], "{name}");
        assert_eq!(mlp_sizes(&m), vec![128, 256, 128], "{name}");
    }
}

#[test]
fn int8_weights_with_per_row_scales_read_as_reals() {
    check("w8a8");
}

#[test]
fn fp8_weights_with_per_row_scales_read_as_reals() {
    check("fp8");
}

#[test]
fn fp8_weights_with_block_scales_read_as_reals() {
    check("fp8_block");
}

#[test]
fn nvfp4_codes_read_through_their_fp8_scales_and_global_scale() {
    check("nvfp4");
}

#[test]
fn compressed_tensors_mxfp4_codes_read_through_their_e8m0_scales() {
    check("ct_mxfp4");
}

#[test]
fn compressed_tensors_mxfp8_weights_read_through_their_e8m0_scales() {
    check("ct_mxfp8");
    let m = open("ct_mxfp8");
    let s = m
        .tensor("model.layers.0.mlp.down_proj.weight_scale")
        .unwrap();
    assert_eq!(s.dtype, modelmap::model::DType::F8E8M0);
}

#[test]
fn gpt_oss_mxfp4_experts_read_as_transformers_dequantizes_them() {
    check("mxfp4");
    let m = open("mxfp4");
    // The E8M0 scales as the powers of two they stand for.
    let s = m
        .tensor("model.layers.0.mlp.experts.down_proj_scales")
        .unwrap();
    assert_eq!(s.dtype, modelmap::model::DType::F8E8M0);
    let st = modelmap::stats::tensor_stats(s).unwrap();
    assert_eq!((st.min, st.max), (Some(2f64.powi(-9)), Some(1.0)));
    let q = m
        .tensor("model.layers.0.mlp.experts.gate_up_proj_blocks")
        .unwrap();
    assert_eq!(
        q.quant.as_ref().unwrap().describe(),
        "per group of 32 elements: 1024 scales (F8_E8M0)"
    );
}

#[test]
fn modelopt_nvfp4_reads_as_modelopt_dequantizes_it() {
    check("modelopt_nvfp4");
}

#[test]
fn modelopt_fp8_per_tensor_scales_read_as_reals() {
    check("modelopt_fp8");
}

#[test]
fn deepseek_fp8_blocks_cut_short_at_the_edges_read_as_reals() {
    check("deepseek_fp8");
    // The scale of the last, short block (rows 128..200, columns 256..300) is its own.
    let m = open("deepseek_fp8");
    let g = groups(&m, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight");
    assert_eq!((g.rows, g.size, g.cols, g.len()), (128, 128, 300, 6));
}

#[test]
fn gptq_weights_read_as_gptqmodel_dequantizes_them() {
    check("gptq");
}

#[test]
fn gptq_8bit_weights_read_as_reals() {
    check("gptq_8bit");
}

#[test]
fn gptq_act_order_reads_each_input_row_by_its_g_idx() {
    check("gptq_act_order");
    let qweight = "model.layers.0.mlp.down_proj.qweight";
    assert!(groups(&open("gptq_act_order"), qweight).row_map.is_some());
    // An ordered g_idx needs no map.
    assert!(groups(&open("gptq"), qweight).row_map.is_none());
}

#[test]
fn awq_weights_read_as_autoawq_dequantizes_them() {
    check("awq");
}

#[test]
fn bitsandbytes_nf4_with_double_quantization_reads_as_bitsandbytes_dequantizes_it() {
    check("bnb_nf4");
    let m = open("bnb_nf4");
    let t = m.tensor("model.layers.0.mlp.down_proj.weight").unwrap();
    assert_eq!(t.shape, [128, 256]);
    assert!(
        groups(&m, "model.layers.0.mlp.down_proj.weight")
            .nested
            .is_some()
    );
    // The quantization state beside each weight belongs to its module: no module named `weight`.
    assert!(m.graph.nodes.iter().all(|n| !n.name.ends_with(".weight")));
    assert_eq!(
        m.graph.nodes.iter().filter(|n| &*n.op == "Linear").count(),
        8
    );
    assert_eq!(mlp_sizes(&m), vec![128, 256, 128]);
}

#[test]
fn bitsandbytes_fp4_reads_as_bitsandbytes_dequantizes_it() {
    check("bnb_fp4");
}

#[test]
fn bitsandbytes_int8_rows_read_as_bitsandbytes_dequantizes_them() {
    check("bnb_int8");
}

/// `bnb_4bit_quant_storage=torch.bfloat16` (QLoRA with FSDP): the packed codes are stored as a
/// bfloat16 tensor of half as many elements; they are the same bytes.
#[test]
fn bitsandbytes_nf4_stored_as_bfloat16_reads_as_bitsandbytes_dequantizes_it() {
    check("bnb_nf4_bf16");
    let m = open("bnb_nf4_bf16");
    let t = m.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(t.dtype, modelmap::model::DType::U4);
    assert_eq!(t.shape, [128, 128]);
    assert_eq!(mlp_sizes(&m), vec![128, 256, 128]);
}

/// The neuron view and the dead-row scan read a weight in its logical order: a row of zeros
/// planted in GPTQ's and AWQ's packings is found where it was put.
#[test]
fn gptq_and_awq_rows_read_in_logical_order() {
    for dir in ["gptq", "awq"] {
        let m = open(dir);
        assert_eq!(mlp_sizes(&m), vec![128, 256, 128], "{dir}");
        let t = m.tensor("model.layers.0.mlp.down_proj.qweight").unwrap();
        let view = HeatmapView::for_display(t);
        assert_eq!((view.rows, view.cols), (256, 128));
        // Every stored integer of input row 37 replaced by its group's zero point: a dead row.
        let mut t = t.clone();
        let mut bytes = t.bytes().unwrap().to_vec();
        let layout = t.quant.as_ref().unwrap().layout().unwrap();
        // The real value of code c is (c − zero) × scale: find the code reading 0.
        let zero_of = |n: u64| {
            let mut z = [0.0];
            (0..16u8)
                .find(|&c| {
                    z[0] = f64::from(c);
                    t.quant
                        .as_ref()
                        .unwrap()
                        .apply(layout.memory_of(37 * 128 + n), &mut z);
                    z[0] == 0.0
                })
                .unwrap()
        };
        for n in 0..128u64 {
            let code = zero_of(n);
            let at = layout.memory_of(37 * 128 + n) as usize;
            let byte = &mut bytes[at / 2];
            *byte = if at.is_multiple_of(2) {
                (*byte & 0xf0) | code
            } else {
                (*byte & 0x0f) | (code << 4)
            };
        }
        t.data = modelmap::model::TensorData::Bytes(bytes.into());
        let s = modelmap::stats::tensor_stats(&t).unwrap();
        assert_eq!(s.zero_rows, vec![37], "{dir}");
        for c in [0, 5, 127] {
            assert_eq!(heatmap::value_at(&t, &view, 37, c).unwrap(), 0.0);
        }
        let tile = heatmap::tile(&t, &view, 0, 0, 0, heatmap::Agg::AbsMax).unwrap();
        let row = &tile.values[37 * tile.width as usize..38 * tile.width as usize];
        assert!(row.iter().all(|&v| v == 0.0), "{dir}");
        assert!(
            tile.values[36 * tile.width as usize..37 * tile.width as usize]
                .iter()
                .any(|&v| v != 0.0)
        );
    }
}

#[test]
fn packed_mlp_weights_chain_in_the_neuron_view() {
    let m = open("w4a16_asym");
    assert_eq!(mlp_sizes(&m), vec![128, 256, 128]);
    assert!(!m.graph.edges.is_empty());
}

#[test]
fn a_packed_weight_whose_shape_disagrees_is_shown_as_stored_with_a_warning() {
    // `weight_shape` says 100 columns: 16 words a row cannot hold 100 4-bit values evenly.
    let dir = tempfile::tempdir().unwrap();
    let src = data_dir().join("w4a16");
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let name = "model.layers.0.self_attn.q_proj.weight_shape";
    let [start, _] = header[name]["data_offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect::<Vec<_>>()[..]
    else {
        panic!()
    };
    let at = 8 + header_len + start + 8;
    bytes[at..at + 8].copy_from_slice(&100i64.to_le_bytes());
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let m = modelmap::load::open(dir.path()).unwrap();
    let t = m
        .tensor("model.layers.0.self_attn.q_proj.weight_packed")
        .unwrap();
    assert!(t.quant.is_none());
    assert_eq!(t.dtype.name(), "I32");
    assert!(
        m.metadata.warnings.iter().any(|w| w.contains("q_proj")),
        "{:?}",
        m.metadata.warnings
    );
}

mod common;

#[test]
fn the_config_quantization_is_summarised_in_one_line() {
    let line = |dir: &str| {
        let m = open(dir);
        modelmap::model::Summary::of(&m).quantization.unwrap()
    };
    assert_eq!(
        line("gptq"),
        "gptq: bits 4, checkpoint_format gptq, desc_act false, group_size 32, sym false"
    );
    assert_eq!(
        line("bnb_int8"),
        "bitsandbytes: llm_int8_threshold 6.0, load_in_8bit true"
    );
    assert!(
        line("w4a16_asym").ends_with("weights int 4-bit group 32 asymmetric"),
        "{}",
        line("w4a16_asym")
    );
    assert_eq!(
        line("deepseek_fp8"),
        "fp8: activation_scheme dynamic, fmt e4m3, weight_block_size [128,128]"
    );
}
