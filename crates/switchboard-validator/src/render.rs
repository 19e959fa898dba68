//! Rendering reports (being written).

use crate::FileReport;

/// Renders reports like rustc.
pub fn render_human(_r: &FileReport) -> String {
    String::new()
}

/// Renders reports as JSON.
pub fn render_json(_r: &[FileReport]) -> String {
    String::new()
}
