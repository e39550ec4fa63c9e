//! "Export PNG": the current view, drawn by the same renderer off-screen on a background thread.
//!
//! The export gets its own headless device (`render::RenderContext::headless`) instead of borrowing
//! the window's: the window keeps presenting while the picture renders and reads back, and a
//! device loss in one does not take the other with it.

use std::path::PathBuf;

use super::state::{AppState, JobOutput};

impl AppState {
    /// Renders the shown view (same camera and draw list, canvas size) to `path` in the background;
    /// the result arrives as a status message.
    pub fn export_png(&mut self, path: PathBuf) {
        let Some(v) = self.active_view() else {
            self.messages
                .push("Export failed: no model is shown".to_string());
            return;
        };
        let camera = *v.camera.camera();
        let list = v.scene.last_list();
        let (w, h) = (
            camera.viewport.x.round().max(1.0) as u32,
            camera.viewport.y.round().max(1.0) as u32,
        );
        self.jobs
            .spawn(format!("Exporting {}", path.display()), move |progress| {
                progress.set("rendering", 0.3);
                let result = crate::render::RenderContext::headless()
                    .and_then(|ctx| crate::render::render_to_rgba(&ctx, &list, &camera, w, h))
                    .and_then(|img| {
                        progress.set("writing PNG", 0.8);
                        crate::render::save_png(&img, &path)
                    })
                    .map(|()| path)
                    .map_err(|e| e.to_string());
                JobOutput::Exported(result)
            });
    }
}
