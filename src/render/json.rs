//! `--format json`: the plan as one JSON object (CONTRACT.md, "What plan --format json prints").

use crate::plan::Plan;

/// The plan as pretty-printed JSON, ending in a newline.
#[must_use]
pub fn plan(plan: &Plan) -> String {
    let mut out = Vec::new();
    write(plan, &mut out).expect("a plan always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// [`plan`], written to `out` as it is made (a region's plan is not held whole in memory).
///
/// # Errors
/// When `out` cannot be written.
pub fn write(plan: &Plan, out: impl std::io::Write) -> std::io::Result<()> {
    write_pretty(plan, out)
}

/// `value` as pretty-printed JSON ending in a newline, written to `out` as it is made (a plan,
/// a saved plan).
///
/// # Errors
/// When `out` cannot be written.
pub fn write_pretty(
    value: &impl serde::Serialize,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")
}
