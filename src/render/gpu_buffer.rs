//! A GPU buffer that grows geometrically and is reused across uploads, so a scene that changes
//! every few frames does not reallocate (and a shrinking scene keeps its allocation).

/// A growable, reusable GPU buffer.
#[derive(Debug)]
pub(crate) struct GrowBuffer {
    label: &'static str,
    usage: wgpu::BufferUsages,
    buffer: Option<wgpu::Buffer>,
    len: u64,
}

impl GrowBuffer {
    /// An empty buffer; nothing is allocated until the first write.
    pub(crate) fn new(label: &'static str, usage: wgpu::BufferUsages) -> Self {
        GrowBuffer {
            label,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            buffer: None,
            len: 0,
        }
    }

    /// Replaces the contents with `bytes`, growing (to the next power of two, at least 4 KiB) only
    /// when they do not fit.
    pub(crate) fn write(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, bytes: &[u8]) {
        let needed = bytes.len() as u64;
        self.len = needed;
        if needed == 0 {
            return;
        }
        let capacity = self.buffer.as_ref().map_or(0, wgpu::Buffer::size);
        if needed > capacity {
            let size = needed
                .next_power_of_two()
                .max(4096)
                .min(device.limits().max_buffer_size)
                .max(needed);
            self.buffer = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(self.label),
                size,
                usage: self.usage,
                mapped_at_creation: false,
            }));
        }
        if let Some(buffer) = &self.buffer {
            queue.write_buffer(buffer, 0, bytes);
        }
    }

    /// The written part, or `None` when empty.
    pub(crate) fn slice(&self) -> Option<wgpu::BufferSlice<'_>> {
        if self.len == 0 {
            return None;
        }
        self.buffer.as_ref().map(|b| b.slice(..self.len))
    }

    /// Bytes allocated on the GPU.
    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.buffer.as_ref().map_or(0, wgpu::Buffer::size)
    }
}

/// How many instances of `stride` bytes fit in one buffer on `device` (larger lists are truncated
/// with a warning rather than failing validation).
pub(crate) fn max_instances(device: &wgpu::Device, stride: usize) -> usize {
    let max = device.limits().max_buffer_size;
    usize::try_from(max / stride.max(1) as u64).unwrap_or(usize::MAX)
}
