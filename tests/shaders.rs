//! Every WGSL file, loaded through the renderer's own loader, parses and validates with naga.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use modelmap::render::shaders;

#[test]
fn every_shader_validates_with_naga() {
    assert!(
        shaders::ALL.len() >= 5,
        "a pipeline's shader is missing from shaders::ALL"
    );
    for shader in shaders::ALL {
        let module = naga::front::wgsl::parse_str(shader.source).unwrap_or_else(|e| {
            panic!(
                "{}.wgsl does not parse:\n{}",
                shader.name,
                e.emit_to_string(shader.source)
            )
        });
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        );
        if let Err(e) = validator.validate(&module) {
            panic!(
                "{}.wgsl does not validate:\n{}",
                shader.name,
                e.emit_to_string(shader.source)
            );
        }
        // The entry points the pipelines name exist.
        let names: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let expected: &[&str] = match shader.name {
            "nodes" => &["vs_node", "fs_node"],
            "edges" => &[
                "vs_straight",
                "vs_curve",
                "vs_arrow",
                "fs_straight",
                "fs_curve",
                "fs_arrow",
            ],
            "labels" => &["vs_glyph", "fs_glyph"],
            "heatmap" => &["vs_heatmap", "fs_heatmap"],
            "baseline" => &["vs_circle", "fs_circle", "vs_segment", "fs_segment"],
            other => panic!("unknown shader {other}"),
        };
        for e in expected {
            assert!(
                names.contains(e),
                "{}.wgsl lacks entry point {e} (has {names:?})",
                shader.name
            );
        }
    }
}

#[test]
fn shader_structs_match_rust_sizes() {
    // The WGSL uniform layout must match the Rust mirror byte for byte.
    let module = naga::front::wgsl::parse_str(shaders::NODES.source).unwrap();
    let globals = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Globals"))
        .expect("Globals struct")
        .1;
    let naga::TypeInner::Struct { span, .. } = globals.inner else {
        panic!("Globals is not a struct")
    };
    assert_eq!(
        span as usize,
        std::mem::size_of::<modelmap::render::Globals>()
    );
}

/// The WGSL item flags are the same numbers as `lod::flags`.
#[test]
fn wgsl_flags_match_the_draw_list_flags() {
    use modelmap::lod::flags;
    let common = include_str!("../shaders/common.wgsl");
    for (name, value) in [
        ("FLAG_SELECTED", flags::SELECTED),
        ("FLAG_HOVERED", flags::HOVERED),
        ("FLAG_CLUSTER", flags::CLUSTER),
        ("FLAG_DIMMED", flags::DIMMED),
        ("FLAG_FRAME", flags::FRAME),
        ("FLAG_ARROW", flags::ARROW),
        ("FLAG_CURVE", flags::CURVE),
        ("FLAG_HIGHLIGHT", flags::HIGHLIGHT),
    ] {
        let line = format!("const {name}: u32 = {value}u;");
        assert!(common.contains(&line), "common.wgsl lacks `{line}`");
    }
}
