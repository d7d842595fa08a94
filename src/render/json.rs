//! `--format json`: the plan as one JSON object (CONTRACT.md, "What plan --format json prints").

use crate::plan::Plan;

/// The plan as pretty-printed JSON, ending in a newline.
#[must_use]
pub fn plan(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).expect("a plan always serialises");
    out.push('\n');
    out
}
