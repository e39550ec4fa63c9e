//! The winit event loop, the wgpu surface and egui glue.
//!
//! One window, one surface, configured with the first sRGB format the surface offers (egui and the
//! graph renderer both handle sRGB targets) and an explicit Fifo present mode (the default would be
//! Immediate on Vulkan, which renders flat out). Frames are drawn on `RedrawRequested` only; a redraw
//! is requested when egui asks for one (input, hover, animation), when a camera flight or a job is
//! running, or when a worker thread wakes the loop through the `EventLoopProxy`. A lost or outdated
//! surface is reconfigured and the frame retried on the next redraw.

use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::DVec2;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::window::{Window, WindowId};

use super::state::{AppState, Loaded, TabContent};
use super::ui::{UiCache, frame_ui};
use super::{AppError, RunOptions};

/// Events sent to the loop from other threads.
#[derive(Debug, Clone, Copy)]
enum UserEvent {
    /// A background job finished.
    JobDone,
}

struct Gpu {
    surface: wgpu::Surface<'static>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    config: wgpu::SurfaceConfiguration,
    egui_renderer: egui_wgpu::Renderer,
}

struct WindowApp {
    opts: RunOptions,
    state: AppState,
    cache: UiCache,
    egui_ctx: egui::Context,
    egui_state: Option<egui_winit::State>,
    window: Option<Arc<Window>>,
    gpu: Option<Gpu>,
    fatal: Option<AppError>,
    start: Instant,
    /// When egui asked to be repainted next (None: not until an event).
    repaint_at: Option<Instant>,
    /// The frame being drawn is the extra one that follows any other (see `redraw`).
    settling: bool,
    /// Print each frame's time (`MODELMAP_FRAME_LOG`).
    frame_log: bool,
    first_frame_reported: bool,
    first_present_reported: bool,
    /// The panels' colour (sRGB): the frame's clear colour where no canvas sets one.
    panel_fill: [u8; 4],
}

/// Runs the window until it is closed.
pub(crate) fn run_window(opts: RunOptions) -> Result<(), AppError> {
    let event_loop = EventLoop::<UserEvent>::with_user_event()
        .build()
        .map_err(|e| AppError::Window(e.to_string()))?;
    let proxy: EventLoopProxy<UserEvent> = event_loop.create_proxy();
    let proxy = std::sync::Mutex::new(proxy);
    let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Ok(p) = proxy.lock() {
            // Fails only when the loop has exited; nothing to wake then.
            let _ = p.send_event(UserEvent::JobDone);
        }
    });
    let mut state = AppState::new(DVec2::new(1280.0, 800.0), waker);
    state.stats_cache = crate::stats::cache::StatsCache::user();
    if opts.files.is_empty() {
        let model = crate::assets::demo_model().map_err(|e| AppError::Demo(e.to_string()))?;
        state.open_loaded("demo", Loaded::prepare(model, None));
    } else {
        for f in &opts.files {
            state.open_any(f.clone());
        }
        state.active = 0;
        if let (Some(t), Some(d)) = (state.tabs.first(), &opts.node_data) {
            state.pending_node_data = Some((t.id, d.clone()));
        }
        if let (Some(a), Some(b)) = (opts.files.first(), &opts.diff) {
            state.compare_files(a.clone(), b.clone());
        }
    }
    let mut app = WindowApp {
        opts,
        state,
        cache: UiCache::default(),
        panel_fill: [248, 248, 248, 255],
        egui_ctx: egui::Context::default(),
        egui_state: None,
        window: None,
        gpu: None,
        fatal: None,
        start: Instant::now(),
        repaint_at: Some(Instant::now()),
        settling: false,
        frame_log: std::env::var_os("MODELMAP_FRAME_LOG").is_some(),
        first_frame_reported: false,
        first_present_reported: false,
    };
    event_loop.set_control_flow(ControlFlow::Wait);
    event_loop
        .run_app(&mut app)
        .map_err(|e| AppError::Window(e.to_string()))?;
    match app.fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl WindowApp {
    fn init(&mut self, event_loop: &ActiveEventLoop) -> Result<(), AppError> {
        let title = match self.state.tabs.first() {
            Some(t) => format!("modelmap — {}", t.title),
            None => "modelmap".to_string(),
        };
        let attrs = Window::default_attributes()
            .with_title(title)
            .with_inner_size(winit::dpi::LogicalSize::new(1280.0, 800.0));
        let window = Arc::new(
            event_loop
                .create_window(attrs)
                .map_err(|e| AppError::Window(e.to_string()))?,
        );
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_with_display_handle_from_env(
                Box::new(event_loop.owned_display_handle()),
            ));
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| AppError::Gpu(format!("cannot create a surface for the window: {e}")))?;
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance,
            Some(&surface),
        ))
        .map_err(|e| AppError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        log::info!(
            "window: adapter {:?} ({:?}, {:?}, driver {} {})",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
        self.cache.adapter_label = format!("{} ({:?})", info.name, info.backend);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("modelmap window"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| AppError::Gpu(format!("the adapter refused a device: {e}")))?;
        let size = window.inner_size();
        let caps = surface.get_capabilities(&adapter);
        let format = caps
            .formats
            .iter()
            .copied()
            .find(wgpu::TextureFormat::is_srgb)
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| AppError::Gpu("the surface offers no texture format".into()))?;
        let mut config = surface
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .ok_or_else(|| AppError::Gpu("the surface is not supported by the adapter".into()))?;
        config.format = format;
        config.present_mode = wgpu::PresentMode::Fifo;
        config.desired_maximum_frame_latency = 2;
        surface.configure(&device, &config);
        let mut egui_renderer =
            egui_wgpu::Renderer::new(&device, format, egui_wgpu::RendererOptions::default());
        super::canvas::install(&mut egui_renderer, &device, &queue, format);
        let max_side = device.limits().max_texture_dimension_2d as usize;
        self.egui_state = Some(egui_winit::State::new(
            self.egui_ctx.clone(),
            egui::ViewportId::ROOT,
            window.as_ref(),
            Some(window.scale_factor() as f32),
            window.theme(),
            Some(max_side),
        ));
        // Panels are not filled by egui: the frame is cleared to their colour (or the canvas's,
        // 2/255 apart) instead. On lavapipe each filled rectangle costs about 60 ns a pixel.
        let mut visuals = egui::Visuals::light();
        self.panel_fill = visuals.panel_fill.to_srgba_unmultiplied();
        visuals.panel_fill = egui::Color32::TRANSPARENT;
        self.egui_ctx.set_visuals(visuals);
        self.gpu = Some(Gpu {
            surface,
            device,
            queue,
            config,
            egui_renderer,
        });
        window.request_redraw();
        self.window = Some(window);
        Ok(())
    }

    fn resize(&mut self, width: u32, height: u32) {
        if let Some(gpu) = &mut self.gpu
            && width > 0
            && height > 0
        {
            gpu.config.width = width;
            gpu.config.height = height;
            gpu.surface.configure(&gpu.device, &gpu.config);
        }
    }

    /// Draws one frame; returns whether the model (not just the UI) was on it.
    fn redraw(&mut self, event_loop: &ActiveEventLoop) -> bool {
        let frame_start = Instant::now();
        let (Some(window), Some(egui_state)) = (self.window.clone(), self.egui_state.as_mut())
        else {
            return false;
        };
        let now_s = self.start.elapsed().as_secs_f64();
        self.state.poll_jobs();
        let animating = self.state.tick(now_s);
        let raw = egui_state.take_egui_input(&window);
        let state = &mut self.state;
        let cache = &mut self.cache;
        // Set again by the canvas if this frame shows one.
        cache.canvas_background = None;
        let mut quit = false;
        let mut out = self.egui_ctx.run_ui(raw, |ui| {
            quit |= frame_ui(ui, state, cache, now_s).quit;
        });
        if quit {
            event_loop.exit();
        }
        egui_state.handle_platform_output(&window, out.platform_output);
        let repaint_delay = out
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map_or(Duration::MAX, |v| v.repaint_delay);
        let busy = self.state.busy();
        // This frame's cut may have opened clusters whose items now fade in: `tick` above only saw
        // the previous cut, so without this the last frame of a flight froze items at alpha ≈ 0.
        let animating = animating
            || self
                .state
                .active_view()
                .is_some_and(|v| v.scene.is_animating());
        self.repaint_at = if animating || repaint_delay.is_zero() {
            Some(Instant::now())
        } else if busy {
            // Progress bars move; a finished job wakes the loop at once anyway.
            Some(Instant::now() + Duration::from_millis(100).min(repaint_delay))
        } else if repaint_delay < Duration::from_secs(3600) {
            Some(Instant::now() + repaint_delay)
        } else {
            None
        };
        // One more frame after every frame that something caused: egui lays panels out from the
        // sizes they had on the frame before, so a frame whose content changed (the model's view
        // replacing the loading screen) can leave the status bar where the old content put it. The
        // window used to redraw without end, which hid this; now it idles, so it settles first.
        if self.repaint_at.is_none() && !self.settling {
            self.repaint_at = Some(Instant::now());
            self.settling = true;
        } else {
            self.settling = false;
        }
        let Some(gpu) = &mut self.gpu else {
            out.textures_delta.clear();
            return false;
        };
        // Texture uploads happen whether or not a frame can be presented: egui assumes they did.
        let ppp = out.pixels_per_point;
        let primitives = self
            .egui_ctx
            .tessellate(std::mem::take(&mut out.shapes), ppp);
        for (id, deltas) in out.textures_delta.set.drain() {
            for delta in &deltas {
                gpu.egui_renderer
                    .update_texture(&gpu.device, &gpu.queue, id, delta);
            }
        }
        let free: Vec<egui::TextureId> = out.textures_delta.free.drain().collect();
        let frame = match gpu.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(f) => f,
            wgpu::CurrentSurfaceTexture::Suboptimal(f) => {
                gpu.surface.configure(&gpu.device, &gpu.config);
                f
            }
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                let size = window.inner_size();
                gpu.config.width = size.width.max(1);
                gpu.config.height = size.height.max(1);
                gpu.surface.configure(&gpu.device, &gpu.config);
                for id in &free {
                    gpu.egui_renderer.free_texture(id);
                }
                self.repaint_at = Some(Instant::now());
                return false;
            }
            other => {
                log::warn!("window: no frame this time ({other:?})");
                for id in &free {
                    gpu.egui_renderer.free_texture(id);
                }
                self.repaint_at = Some(Instant::now() + Duration::from_millis(50));
                return false;
            }
        };
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [gpu.config.width, gpu.config.height],
            pixels_per_point: ppp,
        };
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        let user_buffers = gpu.egui_renderer.update_buffers(
            &gpu.device,
            &gpu.queue,
            &mut encoder,
            &primitives,
            &screen,
        );
        // The canvas shows the clear colour (the graph's background) where no panel covers it.
        let clear = clear_color_for(
            self.cache.canvas_background.unwrap_or(self.panel_fill),
            gpu.config.format,
        );
        {
            let view = frame
                .texture
                .create_view(&wgpu::TextureViewDescriptor::default());
            let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("egui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(clear),
                        store: wgpu::StoreOp::Store,
                    },
                    depth_slice: None,
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            gpu.egui_renderer
                .render(&mut pass.forget_lifetime(), &primitives, &screen);
        }
        gpu.queue
            .submit(user_buffers.into_iter().chain([encoder.finish()]));
        for id in &free {
            gpu.egui_renderer.free_texture(id);
        }
        window.pre_present_notify();
        gpu.queue.present(frame);
        self.cache.last_frame_ms = frame_start.elapsed().as_secs_f32() * 1000.0;
        if self.frame_log {
            // `MODELMAP_FRAME_LOG=1`: one line per presented frame, for input-to-photon measurements.
            eprintln!(
                "frame_ms {:.2} zoom {:.4e}",
                self.cache.last_frame_ms,
                self.state
                    .active_view()
                    .map_or(0.0, |v| v.camera.camera().zoom)
            );
        }
        let shows_model = self
            .state
            .active_view()
            .is_some_and(|v| !v.scene.is_placeholder());
        let all_settled = self
            .state
            .tabs
            .iter()
            .all(|t| !matches!(t.content, TabContent::Loading { .. }));
        shows_model || (all_settled && self.state.active_view().is_none())
    }

    fn report_startup(&mut self, event_loop: &ActiveEventLoop, model_frame: bool) {
        if !self.opts.bench_startup || self.first_frame_reported {
            return;
        }
        let t = self.opts.started.elapsed().as_secs_f64() * 1000.0;
        if !self.first_present_reported {
            self.first_present_reported = true;
            println!("first_presented_frame_ms={t:.1}");
        }
        if !model_frame {
            return;
        }
        self.first_frame_reported = true;
        let what = self
            .state
            .tabs
            .iter()
            .map(|t| t.source.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "first_model_frame_ms={t:.1} files={what} adapter={}",
            self.cache.adapter_label
        );
        event_loop.exit();
    }
}

impl ApplicationHandler<UserEvent> for WindowApp {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() {
            return;
        }
        if let Err(e) = self.init(event_loop) {
            self.fatal = Some(e);
            event_loop.exit();
        }
    }

    fn user_event(&mut self, _event_loop: &ActiveEventLoop, _event: UserEvent) {
        if let Some(w) = &self.window {
            w.request_redraw();
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(window) = self.window.clone() else {
            return;
        };
        if let Some(s) = self.egui_state.as_mut() {
            let r = s.on_window_event(&window, &event);
            // egui-winit answers "repaint" to RedrawRequested too: following it redrew the window
            // back to back forever, a full frame at the display rate with nothing changing. What
            // egui itself wants redrawn comes back as the frame's `repaint_delay`.
            if r.repaint && !matches!(event, WindowEvent::RedrawRequested) {
                window.request_redraw();
            }
        }
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                self.resize(size.width, size.height);
                window.request_redraw();
            }
            WindowEvent::DroppedFile(path) => {
                self.state.open_any(path);
                window.request_redraw();
            }
            WindowEvent::RedrawRequested => {
                let model_frame = self.redraw(event_loop);
                self.report_startup(event_loop, model_frame);
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let Some(window) = &self.window else {
            return;
        };
        match self.repaint_at {
            Some(t) if t <= Instant::now() => {
                self.repaint_at = None;
                window.request_redraw();
                event_loop.set_control_flow(ControlFlow::Wait);
            }
            Some(t) => event_loop.set_control_flow(ControlFlow::WaitUntil(t)),
            None => event_loop.set_control_flow(ControlFlow::Wait),
        }
    }
}

/// `srgb` as a clear colour for a target of `format`: linear for an sRGB target (the GPU encodes
/// it on store), the stored values as they are otherwise.
fn clear_color_for(srgb: [u8; 4], format: wgpu::TextureFormat) -> wgpu::Color {
    let c = crate::render::clear_color(srgb);
    if format.is_srgb() {
        c
    } else {
        let f = |v: u8| f64::from(v) / 255.0;
        wgpu::Color {
            r: f(srgb[0]),
            g: f(srgb[1]),
            b: f(srgb[2]),
            a: f(srgb[3]),
        }
    }
}
