//! The camera controller: immediate moves for direct manipulation (wheel, drag, arrow keys) and
//! animated flights for jumps (fit all, zoom to selection, go to a search result).
//!
//! A flight interpolates with [`Camera::lerp`] (zoom in log space) under a smoothstep ease over a
//! fixed duration, driven by the caller's clock (`now_s`), so tests step time by hand and the window
//! passes its frame time. Direct manipulation during a flight cancels it: the user's hand wins.
//! Rejected: a spring/critically damped camera (it never quite arrives, so "redraw only while
//! something changes" would need an epsilon; a fixed-duration flight ends exactly).

use glam::DVec2;

use crate::view::{Camera, Rect};

/// Seconds a flight takes.
pub const FLIGHT_SECONDS: f64 = 0.35;

/// Margin in pixels kept around fitted bounds.
pub const FIT_MARGIN_PX: f64 = 24.0;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Flight {
    from: Camera,
    to: Camera,
    start_s: f64,
    duration_s: f64,
}

/// Owns the camera of one view and its animation.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraController {
    camera: Camera,
    flight: Option<Flight>,
    /// A floating window over the canvas (viewport pixels, min and max): fits aim beside it.
    obstruction: Option<(DVec2, DVec2)>,
}

/// The part of a viewport of `size` pixels left free by `obstruction` (min, max pixels) that a fit
/// should use: the largest of the four bands beside it, or the whole viewport when the obstruction
/// misses it or leaves less than a third of it.
pub fn free_region(size: DVec2, obstruction: Option<(DVec2, DVec2)>) -> (DVec2, DVec2) {
    let whole = (DVec2::ZERO, size);
    let Some((lo, hi)) = obstruction else {
        return whole;
    };
    let (lo, hi) = (lo.clamp(DVec2::ZERO, size), hi.clamp(DVec2::ZERO, size));
    if !(hi.x > lo.x && hi.y > lo.y) {
        return whole;
    }
    let bands = [
        (DVec2::ZERO, DVec2::new(lo.x, size.y)),
        (DVec2::new(hi.x, 0.0), size),
        (DVec2::ZERO, DVec2::new(size.x, lo.y)),
        (DVec2::new(0.0, hi.y), size),
    ];
    let area = |(a, b): &(DVec2, DVec2)| (b.x - a.x) * (b.y - a.y);
    let best = bands
        .iter()
        .copied()
        .max_by(|a, b| area(a).total_cmp(&area(b)))
        .unwrap_or(whole);
    if area(&best) < area(&whole) / 3.0 {
        whole
    } else {
        best
    }
}

impl CameraController {
    /// A controller for a viewport of `viewport` pixels, at the world origin, 1 pixel per unit.
    pub fn new(viewport: DVec2) -> Self {
        CameraController {
            camera: Camera::new(viewport.max(DVec2::ONE)),
            flight: None,
            obstruction: None,
        }
    }

    /// The camera as displayed now.
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// Where the camera is heading (the flight's target, or the camera itself when still).
    pub fn target(&self) -> &Camera {
        self.flight.as_ref().map_or(&self.camera, |f| &f.to)
    }

    /// Whether a flight is in progress (the window keeps redrawing while it is).
    pub fn is_animating(&self) -> bool {
        self.flight.is_some()
    }

    /// Sets the viewport size in pixels, keeping the centre and zoom (a resize does not move the
    /// world under the centre).
    pub fn set_viewport(&mut self, viewport: DVec2) {
        let viewport = viewport.max(DVec2::ONE);
        self.camera.viewport = viewport;
        if let Some(f) = &mut self.flight {
            f.from.viewport = viewport;
            f.to.viewport = viewport;
        }
    }

    /// Zooms by `factor` about the screen point `screen` (wheel, pinch); cancels a flight.
    pub fn zoom_about(&mut self, screen: DVec2, factor: f64) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        self.flight = None;
        self.camera.zoom_about(screen, factor);
    }

    /// Moves the view by a screen-space delta in pixels (drag, arrow keys); cancels a flight.
    pub fn pan_pixels(&mut self, delta: DVec2) {
        if !delta.is_finite() {
            return;
        }
        self.flight = None;
        self.camera.pan_pixels(delta);
    }

    /// Jumps to `camera` without animation (first frame of a new model).
    pub fn set(&mut self, camera: Camera) {
        self.flight = None;
        self.camera = Camera {
            viewport: self.camera.viewport,
            ..camera
        };
    }

    /// Starts a flight to `target` (centre and zoom; the viewport stays), starting at `now_s`.
    pub fn fly_to(&mut self, target: Camera, now_s: f64) {
        let to = Camera {
            viewport: self.camera.viewport,
            ..target
        };
        if to == self.camera {
            self.flight = None;
            return;
        }
        self.flight = Some(Flight {
            from: self.camera,
            to,
            start_s: now_s,
            duration_s: FLIGHT_SECONDS,
        });
    }

    /// The camera that shows `bounds` whole with a margin, capped at `max_zoom` pixels per unit
    /// (so fitting one small node does not fill the screen with it).
    ///
    /// The bounds land in the part of the viewport a floating window leaves free
    /// ([`Self::set_obstruction`]).
    pub fn camera_fitting(&self, bounds: Rect, max_zoom: f64) -> Option<Camera> {
        if bounds.is_empty() || !bounds.min.is_finite() || !bounds.max.is_finite() {
            return None;
        }
        let (lo, hi) = free_region(self.camera.viewport, self.obstruction);
        let mut region = Camera {
            viewport: (hi - lo).max(DVec2::ONE),
            ..self.camera
        };
        region.fit(bounds, FIT_MARGIN_PX);
        let zoom = region.zoom.min(max_zoom.max(Camera::MIN_ZOOM));
        // The bounds' centre goes to the region's centre.
        let offset = (lo + hi) * 0.5 - self.camera.viewport * 0.5;
        Some(Camera {
            center: bounds.center() - offset / zoom,
            zoom,
            viewport: self.camera.viewport,
        })
    }

    /// Says which part of the canvas a floating window covers (viewport pixels), or none.
    pub fn set_obstruction(&mut self, obstruction: Option<(DVec2, DVec2)>) {
        self.obstruction = obstruction;
    }

    /// Flies so `bounds` fills the view (fit all, zoom to selection); does nothing for empty bounds.
    pub fn fly_to_bounds(&mut self, bounds: Rect, max_zoom: f64, now_s: f64) {
        if let Some(cam) = self.camera_fitting(bounds, max_zoom) {
            self.fly_to(cam, now_s);
        }
    }

    /// Advances a flight to time `now_s`; returns whether the camera is still moving.
    pub fn tick(&mut self, now_s: f64) -> bool {
        let Some(f) = self.flight else {
            return false;
        };
        let t = if f.duration_s > 0.0 {
            ((now_s - f.start_s) / f.duration_s).clamp(0.0, 1.0)
        } else {
            1.0
        };
        // `now - start` of exactly the duration can round to just under 1.
        if t >= 1.0 - 1e-9 {
            self.camera = f.to;
            self.flight = None;
            return false;
        }
        let eased = t * t * (3.0 - 2.0 * t);
        self.camera = f.from.lerp(&f.to, eased);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flight_ends_exactly_on_target() {
        let mut c = CameraController::new(DVec2::new(800.0, 600.0));
        let target = Camera {
            center: DVec2::new(500.0, -20.0),
            zoom: 8.0,
            viewport: DVec2::new(800.0, 600.0),
        };
        c.fly_to(target, 10.0);
        assert!(c.tick(10.1));
        let mid = *c.camera();
        assert!(mid.zoom > 1.0 && mid.zoom < 8.0);
        assert!(!c.tick(10.0 + FLIGHT_SECONDS));
        assert_eq!(*c.camera(), target);
        assert!(!c.is_animating());
    }

    #[test]
    fn fits_aim_beside_a_floating_window() {
        let size = DVec2::new(940.0, 727.0);
        // The anomaly window over the lower left: the band above it is the largest free part.
        let window = (DVec2::new(16.0, 452.0), DVec2::new(616.0, 672.0));
        assert_eq!(
            free_region(size, Some(window)),
            (DVec2::ZERO, DVec2::new(940.0, 452.0))
        );
        // A window off the canvas, or one leaving under a third of it, changes nothing.
        let whole = (DVec2::ZERO, size);
        let off = (DVec2::new(1000.0, 0.0), DVec2::new(1200.0, 100.0));
        assert_eq!(free_region(size, Some(off)), whole);
        let huge = (DVec2::new(10.0, 10.0), DVec2::new(930.0, 717.0));
        assert_eq!(free_region(size, Some(huge)), whole);

        let mut c = CameraController::new(size);
        let node = Rect::new(DVec2::new(100.0, 100.0), DVec2::new(140.0, 120.0));
        let plain = c.camera_fitting(node, 4.0).unwrap();
        assert_eq!(plain.screen_from_world(node.center()), size * 0.5);
        c.set_obstruction(Some(window));
        let beside = c.camera_fitting(node, 4.0).unwrap();
        let at = beside.screen_from_world(node.center());
        assert!((at - DVec2::new(470.0, 226.0)).length() < 1e-9, "{at}");
        // Still whole on screen and above the window.
        assert!(beside.screen_from_world(node.max).y <= 452.0);
        assert_eq!(beside.zoom, 4.0);
    }

    #[test]
    fn drag_cancels_flight() {
        let mut c = CameraController::new(DVec2::new(100.0, 100.0));
        c.fly_to(
            Camera {
                center: DVec2::new(1000.0, 0.0),
                zoom: 1.0,
                viewport: DVec2::ONE,
            },
            0.0,
        );
        c.pan_pixels(DVec2::new(10.0, 0.0));
        assert!(!c.is_animating());
        assert_eq!(c.camera().center, DVec2::new(-10.0, 0.0));
    }
}
