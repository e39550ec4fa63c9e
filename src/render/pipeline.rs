//! Small helpers shared by the pipelines: the common render-pipeline shape (one colour target,
//! premultiplied "over" blending, no depth: draw order is painter's order).

/// Describes one instanced pipeline for [`create`].
pub(crate) struct PipelineDesc<'a> {
    pub(crate) label: &'static str,
    pub(crate) module: &'a wgpu::ShaderModule,
    pub(crate) vertex_entry: &'static str,
    pub(crate) fragment_entry: &'static str,
    pub(crate) instance_layout: Option<wgpu::VertexBufferLayout<'a>>,
    pub(crate) topology: wgpu::PrimitiveTopology,
    pub(crate) bind_group_layouts: &'a [Option<&'a wgpu::BindGroupLayout>],
    pub(crate) format: wgpu::TextureFormat,
}

/// Creates a render pipeline from `desc`.
pub(crate) fn create(device: &wgpu::Device, desc: PipelineDesc<'_>) -> wgpu::RenderPipeline {
    create_with_blend(
        device,
        desc,
        Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
    )
}

/// Creates a pipeline whose fragments replace what is under them (opaque items such as heatmap
/// tiles): no read of the target, which a software rasteriser pays for on every pixel.
pub(crate) fn create_opaque(device: &wgpu::Device, desc: PipelineDesc<'_>) -> wgpu::RenderPipeline {
    create_with_blend(device, desc, None)
}

fn create_with_blend(
    device: &wgpu::Device,
    desc: PipelineDesc<'_>,
    blend: Option<wgpu::BlendState>,
) -> wgpu::RenderPipeline {
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(desc.label),
        bind_group_layouts: desc.bind_group_layouts,
        immediate_size: 0,
    });
    let buffers = [desc.instance_layout];
    // Every module starts with shaders/common.wgsl, which declares the constant.
    let constants = [("ENCODE_SRGB", if desc.format.is_srgb() { 0.0 } else { 1.0 })];
    let options = wgpu::PipelineCompilationOptions {
        constants: &constants,
        ..Default::default()
    };
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(desc.label),
        layout: Some(&layout),
        vertex: wgpu::VertexState {
            module: desc.module,
            entry_point: Some(desc.vertex_entry),
            compilation_options: options.clone(),
            buffers: if buffers[0].is_some() { &buffers } else { &[] },
        },
        primitive: wgpu::PrimitiveState {
            topology: desc.topology,
            cull_mode: None,
            ..Default::default()
        },
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: desc.module,
            entry_point: Some(desc.fragment_entry),
            compilation_options: options,
            targets: &[Some(wgpu::ColorTargetState {
                format: desc.format,
                blend,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}
