//! Pure 2-D view math shared by the window, headless rendering and the LOD cut.

mod camera;

pub use camera::{Camera, Rect};
