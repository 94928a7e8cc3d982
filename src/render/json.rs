use crate::report::Report;

/// Exactly one JSON document, also on failure.
pub fn render(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(s) => format!("{s}\n"),
        Err(e) => format!(
            "{{\"command\":{:?},\"ok\":false,\"exit_code\":1,\"error\":{:?}}}\n",
            report.command,
            e.to_string()
        ),
    }
}
