//! The wgpu instance, adapter, device and queue, for headless work (tests, `modelmap render`,
//! `modelmap bench render`). The window creates its own device through egui-wgpu and hands it to
//! [`crate::render::GraphRenderer`] directly.
//!
//! Backends and adapter honour the standard wgpu environment variables (`WGPU_BACKEND`,
//! `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`), so CI pins lavapipe with `WGPU_BACKEND=vulkan` instead
//! of silently falling back to GL. Limits are the adapter's own (the defaults cap buffers at
//! 256 MiB, far below a 10 M-node scene).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::RenderError;

/// A headless GPU context.
#[derive(Debug)]
pub struct RenderContext {
    /// The wgpu instance.
    pub instance: wgpu::Instance,
    /// The chosen adapter.
    pub adapter: wgpu::Adapter,
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    lost: Arc<AtomicBool>,
}

impl RenderContext {
    /// For unit tests: a headless context, or `None` (with a note) where there is no adapter and
    /// `MODELMAP_SKIP_GPU_TESTS=1`; without that variable a missing adapter fails the test.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Option<Self> {
        match Self::headless() {
            Ok(c) => Some(c),
            Err(e) if std::env::var("MODELMAP_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
                eprintln!("SKIPPING (MODELMAP_SKIP_GPU_TESTS=1): {e}");
                None
            }
            Err(e) => panic!("no GPU adapter: {e} (MODELMAP_SKIP_GPU_TESTS=1 to skip)"),
        }
    }

    /// Creates a context from the environment (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`), requesting the
    /// adapter's full limits and `TIMESTAMP_QUERY` when available. Logs the adapter it picked.
    pub fn headless() -> Result<Self, RenderError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance, None,
        ))
        .map_err(|e| RenderError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        log::info!(
            "render: adapter {:?} ({:?}, {:?}, driver {} {})",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
        let required_features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("modelmap headless"),
            required_features,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| RenderError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(AtomicBool::new(false));
        watch_device_loss(&device, lost.clone());
        Ok(RenderContext {
            instance,
            adapter,
            device,
            queue,
            lost,
        })
    }

    /// True once the device was lost (driver reset, GPU removed): drop this context and create a new
    /// one (and new renderers) to continue.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// `Err(DeviceLost)` when the device is gone, for early returns.
    pub fn check_lost(&self) -> Result<(), RenderError> {
        if self.is_lost() {
            Err(RenderError::DeviceLost)
        } else {
            Ok(())
        }
    }

    /// The adapter's name and backend, e.g. `("llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan")`.
    pub fn adapter_name_and_backend(&self) -> (String, String) {
        let info = self.adapter.get_info();
        (info.name, format!("{:?}", info.backend))
    }
}

/// Installs a device-lost callback that logs the reason and raises `flag`: the owner polls the flag
/// and rebuilds the device and renderers (the window does the same with its own device).
pub fn watch_device_loss(device: &wgpu::Device, flag: Arc<AtomicBool>) {
    device.set_device_lost_callback(move |reason, message| {
        // Dropping the device also reports "Destroyed": that is not a loss.
        if reason != wgpu::DeviceLostReason::Destroyed {
            log::error!(
                "render: GPU device lost ({reason:?}): {message}; the renderer will be recreated"
            );
            flag.store(true, Ordering::Relaxed);
        }
    });
}
