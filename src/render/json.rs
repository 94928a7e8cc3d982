use crate::report::Report;

/// Exactly one JSON document, also on failure.
pub fn render(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(s) => format!("{s}\n"),
        Err(e) => format!(
            "{{\"schema_version\":{},\"command\":{:?},\"ok\":false,\"exit_code\":1,\"error\":{:?}}}\n",
            report.schema_version,
            report.command.name(),
            e.to_string()
        ),
    }
}
