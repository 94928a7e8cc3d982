//! Renderers: both read the one `Report`, so text and JSON cannot disagree.

pub mod human;
pub mod json;

use crate::cli::Format;

/// Whether the report goes to stderr: when the command's product (credentials, a connection
/// string) owns stdout. `assume` always keeps stdout for credentials, so that
/// `eval "$(atlas-iam assume)"` never runs report text; `uri` does so in human mode.
pub fn report_to_stderr(command: &str, format: Format) -> bool {
    match command {
        "assume" => true,
        "uri" => format == Format::Human,
        _ => false,
    }
}
