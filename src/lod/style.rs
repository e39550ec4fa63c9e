//! Colours and label text for the structure view: a stable palette by op type.

use super::Rgba8;

/// Fill colour for an op type: fixed colours for the common families (so a Conv is always blue
/// across models, as in Netron), a stable hash-derived pastel for everything else.
pub fn op_color(op: &str) -> Rgba8 {
    let o = op.to_ascii_lowercase();
    let fixed: Option<Rgba8> = if o.contains("conv") {
        Some([66, 133, 244, 255])
    } else if o.contains("matmul")
        || o.contains("gemm")
        || matches!(
            o.as_str(),
            "linear"
                | "mm"
                | "addmm"
                | "bmm"
                | "baddbmm"
                | "fullyconnected"
                // TensorFlow's names.
                | "einsum"
                | "batchmatmul"
                | "batchmatmulv2"
                | "batchmatmulv3"
        )
        || o.contains("dense")
    {
        Some([142, 99, 206, 255])
    } else if o.contains("norm") {
        Some([52, 168, 83, 255])
    } else if matches!(
        o.as_str(),
        "relu"
            | "gelu"
            | "silu"
            | "sigmoid"
            | "tanh"
            | "hardsigmoid"
            | "clip"
            | "leakyrelu"
            | "elu"
            | "softplus"
            | "hardswish"
            // TFLite's names.
            | "relu6"
            | "prelu"
            | "logistic"
    ) {
        Some([234, 117, 52, 255])
    } else if o.contains("softmax") {
        Some([242, 186, 30, 255])
    } else if o.contains("pool") {
        Some([41, 171, 173, 255])
    } else if matches!(
        o.as_str(),
        "reshape"
            | "transpose"
            | "gather"
            | "slice"
            | "concat"
            | "shape"
            | "unsqueeze"
            | "squeeze"
            | "flatten"
            | "split"
            | "expand"
            | "constantofshape"
            | "cast"
            | "identity"
            // ATen's names (torch.export graphs).
            | "view"
            | "permute"
            | "t"
            | "cat"
            | "select"
            | "clone"
            | "contiguous"
            | "_to_copy"
            | "sym_size"
            | "unflatten"
            // TensorFlow's names.
            | "expanddims"
            | "concatv2"
            | "pack"
            | "unpack"
            | "stridedslice"
            | "gatherv2"
            | "splitv"
            // TFLite's and Keras's names.
            | "concatenation"
            | "concatenate"
            | "dropout"
            | "pad"
            | "dequantize"
            | "quantize"
    ) {
        Some([150, 160, 170, 255])
    } else if matches!(
        o.as_str(),
        "add"
            | "mul"
            | "sub"
            | "div"
            | "pow"
            | "sqrt"
            | "rsqrt"
            | "neg"
            | "sum"
            | "mean"
            | "reducemean"
            | "equal"
            // TensorFlow's names.
            | "addv2"
            | "biasadd"
            | "realdiv"
            | "squareddifference"
            | "maximum"
            | "minimum"
    ) {
        Some([120, 144, 156, 255])
    } else if o == "embedding" {
        Some([219, 68, 55, 255])
    } else if o == "input" || o == "output" {
        Some([60, 64, 72, 255])
    } else if o == "constant" || o == "parameter" {
        Some([189, 189, 189, 255])
    } else if o == "recurrent"
        || o.contains("lstm")
        || o.contains("gru")
        || o == "if"
        || o == "loop"
        || o == "scan"
    {
        Some([173, 20, 87, 255])
    } else {
        None
    };
    fixed.unwrap_or_else(|| {
        // FNV-1a of the name → hue; fixed saturation and lightness for a calm pastel.
        let h = op.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        hsl_to_rgb((h % 360) as f32, 0.45, 0.58)
    })
}

/// Lighter version of a colour (for collapsed clusters and group frames).
pub fn lighten(c: Rgba8, t: f32) -> Rgba8 {
    let l = |v: u8| (v as f32 + (255.0 - v as f32) * t).round() as u8;
    [l(c[0]), l(c[1]), l(c[2]), c[3]]
}

/// Colour for a value in 0..=1 on a blue → yellow → red scale (overlays).
pub fn overlay_color(t: f32) -> Rgba8 {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        return [255, 0, 255, 255];
    };
    hsl_to_rgb(220.0 * (1.0 - t), 0.75, 0.5)
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> Rgba8 {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let u = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [u(r), u(g), u(b), 255]
}

/// Stable short hash of a name, for `--redact`.
pub fn redact(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("#{:08x}", h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_is_stable_and_families_share_colours() {
        assert_eq!(op_color("Conv"), op_color("Conv2D"));
        assert_eq!(op_color("MatMul"), op_color("Gemm"));
        assert_eq!(op_color("FooBar"), op_color("FooBar"));
        assert_ne!(op_color("Conv"), op_color("Relu"));
        assert_eq!(redact("model.layers.0"), redact("model.layers.0"));
        assert_ne!(redact("a"), redact("b"));
    }
}
