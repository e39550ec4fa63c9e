//! A 2-D camera: world units to screen pixels, zoom about a point, fit to bounds.
//!
//! World coordinates are f64 so that a 10⁶ zoom into a 10⁵-unit-wide layout keeps sub-pixel
//! precision; the renderer receives positions relative to an origin near the camera, in f32.

use glam::DVec2;

/// An axis-aligned rectangle in world or screen space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Minimum corner (top-left on screen: y grows downward).
    pub min: DVec2,
    /// Maximum corner.
    pub max: DVec2,
}

impl Rect {
    /// The rectangle from two corners.
    pub fn new(min: DVec2, max: DVec2) -> Self {
        Rect { min, max }
    }

    /// The rectangle of centre and size.
    pub fn from_center_size(center: DVec2, size: DVec2) -> Self {
        Rect {
            min: center - size * 0.5,
            max: center + size * 0.5,
        }
    }

    /// An empty rectangle that any `union` replaces.
    pub const EMPTY: Rect = Rect {
        min: DVec2::splat(f64::INFINITY),
        max: DVec2::splat(f64::NEG_INFINITY),
    };

    /// True when min > max on an axis.
    pub fn is_empty(&self) -> bool {
        self.min.x > self.max.x || self.min.y > self.max.y
    }

    /// Width and height.
    pub fn size(&self) -> DVec2 {
        self.max - self.min
    }

    /// Centre.
    pub fn center(&self) -> DVec2 {
        (self.min + self.max) * 0.5
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        Rect {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// Grows to hold a point.
    pub fn include(&mut self, p: DVec2) {
        self.min = self.min.min(p);
        self.max = self.max.max(p);
    }

    /// Whether the two overlap (touching counts).
    pub fn intersects(&self, other: &Rect) -> bool {
        self.min.x <= other.max.x
            && other.min.x <= self.max.x
            && self.min.y <= other.max.y
            && other.min.y <= self.max.y
    }

    /// Whether a point lies inside (edges included).
    pub fn contains(&self, p: DVec2) -> bool {
        p.x >= self.min.x && p.x <= self.max.x && p.y >= self.min.y && p.y <= self.max.y
    }

    /// Expanded by `margin` on every side.
    pub fn expand(&self, margin: f64) -> Rect {
        Rect {
            min: self.min - DVec2::splat(margin),
            max: self.max + DVec2::splat(margin),
        }
    }
}

/// The camera: which world point is at the viewport centre and how many pixels a world unit spans.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// World point at the centre of the viewport.
    pub center: DVec2,
    /// Pixels per world unit.
    pub zoom: f64,
    /// Viewport size in physical pixels.
    pub viewport: DVec2,
}

impl Camera {
    /// Smallest and largest zoom: deep enough for single weights of a 128k-wide tensor, far enough for
    /// a 10 M-node layout.
    pub const MIN_ZOOM: f64 = 1e-7;
    /// See [`Camera::MIN_ZOOM`].
    pub const MAX_ZOOM: f64 = 1e7;

    /// A camera at the origin, 1 pixel per unit.
    pub fn new(viewport: DVec2) -> Self {
        Camera {
            center: DVec2::ZERO,
            zoom: 1.0,
            viewport,
        }
    }

    /// Screen pixel (origin top-left) of a world point.
    pub fn screen_from_world(&self, world: DVec2) -> DVec2 {
        (world - self.center) * self.zoom + self.viewport * 0.5
    }

    /// World point under a screen pixel.
    pub fn world_from_screen(&self, screen: DVec2) -> DVec2 {
        (screen - self.viewport * 0.5) / self.zoom + self.center
    }

    /// The world rectangle the viewport shows.
    pub fn visible_world(&self) -> Rect {
        Rect::new(
            self.world_from_screen(DVec2::ZERO),
            self.world_from_screen(self.viewport),
        )
    }

    /// Zooms by `factor` keeping the world point under `screen` fixed.
    pub fn zoom_about(&mut self, screen: DVec2, factor: f64) {
        let anchor = self.world_from_screen(screen);
        self.zoom = (self.zoom * factor).clamp(Self::MIN_ZOOM, Self::MAX_ZOOM);
        // Solve screen_from_world(anchor) == screen for the new centre.
        self.center = anchor - (screen - self.viewport * 0.5) / self.zoom;
    }

    /// Moves the view by a screen-space delta (dragging right moves the world right).
    pub fn pan_pixels(&mut self, delta: DVec2) {
        self.center -= delta / self.zoom;
    }

    /// Fits `bounds` into the viewport with `margin_px` of space on each side.
    pub fn fit(&mut self, bounds: Rect, margin_px: f64) {
        if bounds.is_empty() {
            return;
        }
        let avail = (self.viewport - DVec2::splat(2.0 * margin_px)).max(DVec2::ONE);
        let size = bounds.size().max(DVec2::splat(1e-9));
        self.zoom = (avail.x / size.x)
            .min(avail.y / size.y)
            .clamp(Self::MIN_ZOOM, Self::MAX_ZOOM);
        self.center = bounds.center();
    }

    /// Interpolates toward `target` (for animated camera moves): `t` in 0..=1, zoom interpolated
    /// logarithmically so zooming feels uniform.
    pub fn lerp(&self, target: &Camera, t: f64) -> Camera {
        let t = t.clamp(0.0, 1.0);
        let zoom = (self.zoom.ln() * (1.0 - t) + target.zoom.ln() * t).exp();
        Camera {
            center: self.center.lerp(target.center, t),
            zoom,
            viewport: target.viewport,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_zoom_about_cursor() {
        let mut cam = Camera::new(DVec2::new(800.0, 600.0));
        cam.center = DVec2::new(1.0e5, -3.0e4);
        cam.zoom = 2.5;
        let w = DVec2::new(100_123.25, -29_990.5);
        let s = cam.screen_from_world(w);
        assert!((cam.world_from_screen(s) - w).length() < 1e-9);
        let cursor = DVec2::new(123.0, 456.0);
        let before = cam.world_from_screen(cursor);
        cam.zoom_about(cursor, 1.0e6);
        let after = cam.world_from_screen(cursor);
        assert!((before - after).length() < 1e-9, "{before} vs {after}");
        assert!((cam.zoom - 2.5e6).abs() < 1e-3);
    }

    #[test]
    fn fit_shows_whole_bounds() {
        let mut cam = Camera::new(DVec2::new(1000.0, 500.0));
        let b = Rect::new(DVec2::new(-50.0, 0.0), DVec2::new(150.0, 400.0));
        cam.fit(b, 10.0);
        let v = cam.visible_world();
        assert!(
            v.min.x <= b.min.x && v.min.y <= b.min.y && v.max.x >= b.max.x && v.max.y >= b.max.y
        );
        // The tighter axis (y) is filled up to the margin.
        assert!((cam.screen_from_world(b.max).y - 490.0).abs() < 1e-6);
    }

    #[test]
    fn pan_moves_world_with_the_cursor() {
        let mut cam = Camera::new(DVec2::new(100.0, 100.0));
        cam.zoom = 4.0;
        let p = cam.world_from_screen(DVec2::new(10.0, 10.0));
        cam.pan_pixels(DVec2::new(20.0, -8.0));
        assert!((cam.screen_from_world(p) - DVec2::new(30.0, 2.0)).length() < 1e-9);
    }
}
