//! The graph inside egui: an `egui_wgpu::CallbackTrait` that hands the frame's [`DrawList`] and
//! camera to the one [`GraphRenderer`] stored in egui-wgpu's callback resources.
//!
//! egui calls `prepare` before its render pass (uploads: the camera uniform always, instances only
//! when the draw list's revision changed) and `paint` inside it with the viewport already set to the
//! canvas rectangle and the scissor to its clip, so the graph sits exactly in the central panel
//! with panels and overlays drawn over it in egui's order.

use std::sync::Arc;

use crate::lod::DrawList;
use crate::render::GraphRenderer;
use crate::view::Camera;

/// One frame's graph paint: the camera (viewport = canvas size in physical pixels) and the list.
pub struct GraphPaint {
    /// The camera.
    pub camera: Camera,
    /// What to draw.
    pub list: Arc<DrawList>,
}

impl egui_wgpu::CallbackTrait for GraphPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = resources.get_mut::<GraphRenderer>() {
            renderer.prepare(device, queue, &self.camera, &self.list);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<GraphRenderer>() {
            renderer.paint(pass);
        }
    }
}

/// Puts the graph renderer into egui-wgpu's callback resources (once, after creating the device).
pub fn install(
    egui_renderer: &mut egui_wgpu::Renderer,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    format: wgpu::TextureFormat,
) {
    egui_renderer
        .callback_resources
        .insert(GraphRenderer::new(device, queue, format));
}
