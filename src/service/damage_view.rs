//! `.cairn/damaged`: the points `repair` marked damaged whose damage still holds, one
//! JSON line each (`instance`, `point`, `id`, `time_ns`, `paths`), oldest first; what
//! `cairn points --kind damaged` reads through a mount. Read from the repository's
//! damage marks each time the file is read.

use serde_json::json;

use super::Service;
use crate::engine::repair::damaged_points;

impl Service {
    pub fn damaged_text(&self) -> String {
        let points = match damaged_points(&self.inner.repo, &self.inner.catalog, None) {
            Ok(points) => points,
            Err(e) => {
                tracing::warn!("cannot read the damage marks: {e}");
                return String::new();
            }
        };
        let mut out = String::new();
        for m in points {
            let line = json!({
                "instance": m.point.manifest.instance,
                "point": m.point.manifest.name,
                "id": m.point.id.to_hex(),
                "time_ns": m.point.manifest.time_ns,
                "paths": m.mark.paths,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }
}
