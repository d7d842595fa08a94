//! The AWS calls warren's code makes, found by reading the source: every call names its action
//! as a `"service:Action"` literal where its error is described
//! (`errors::describe("ecs:UpdateService", …)`). Tests that must cover every call (the IAM
//! policy, the fault table) compare against this list, so a call added later without its
//! permission or its fault case fails them. Include with
//! `#[path = "support/calls.rs"] mod calls;`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// AWS services warren calls, as IAM names them.
pub const SERVICES: &[&str] = &[
    "dynamodb",
    "ecs",
    "events",
    "lambda",
    "mq",
    "pipes",
    "s3",
    "scheduler",
    "secretsmanager",
    "ssm",
    "states",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `"service:Action"` literals in the source under `src/`.
pub fn called_actions() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        for literal in text.split('"').skip(1).step_by(2) {
            let Some((service, action)) = literal.split_once(':') else {
                continue;
            };
            if SERVICES.contains(&service)
                && action.starts_with(|c: char| c.is_ascii_uppercase())
                && action.chars().all(|c| c.is_ascii_alphanumeric())
            {
                found.insert(literal.to_owned());
            }
        }
    }
    found
}
