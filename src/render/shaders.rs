//! The one place WGSL is loaded.
//!
//! WGSL has no `#include`, so every pipeline's source is `shaders/common.wgsl` (the camera uniform,
//! colour helpers) followed by the pipeline's own file, joined at compile time with `concat!` +
//! `include_str!`. A runtime preprocessor (naga_oil, rerun's `#import`) was rejected: one shared
//! prefix is all we need, and compile-time strings keep the binary self-contained and let
//! `tests/shaders.rs` validate exactly what the pipelines compile.

/// A named WGSL source, ready for `create_shader_module`.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    /// The pipeline's file stem (`nodes`, `edges`…), used as the shader module label.
    pub name: &'static str,
    /// Full WGSL text (common prefix included).
    pub source: &'static str,
}

macro_rules! shader {
    ($name:literal) => {
        ShaderSource {
            name: $name,
            source: concat!(
                include_str!("../../shaders/common.wgsl"),
                "\n",
                include_str!(concat!("../../shaders/", $name, ".wgsl"))
            ),
        }
    };
}

/// Nodes pipeline (`shaders/nodes.wgsl`).
pub const NODES: ShaderSource = shader!("nodes");
/// Edges pipeline (`shaders/edges.wgsl`).
pub const EDGES: ShaderSource = shader!("edges");
/// Labels pipeline (`shaders/labels.wgsl`).
pub const LABELS: ShaderSource = shader!("labels");
/// Heatmap pipeline (`shaders/heatmap.wgsl`).
pub const HEATMAP: ShaderSource = shader!("heatmap");
/// The benchmark's minimal baseline pipeline (`shaders/baseline.wgsl`).
pub const BASELINE: ShaderSource = shader!("baseline");

/// Every shader, for validation.
pub const ALL: &[ShaderSource] = &[NODES, EDGES, LABELS, HEATMAP, BASELINE];

impl ShaderSource {
    /// Creates the shader module on `device`.
    pub fn create_module(&self, device: &wgpu::Device) -> wgpu::ShaderModule {
        device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(self.name),
            source: wgpu::ShaderSource::Wgsl(self.source.into()),
        })
    }
}
