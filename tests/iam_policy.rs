//! docs/iam-policy.json grants exactly the AWS actions warren's code calls.
//!
//! Every AWS call names its action as `"service:Action"` where its error is described
//! (`errors::describe("ecs:UpdateService", …)`), so the calls are found by reading the source.
//! A call missing from the policy fails for a team that copied it; an action in the policy that
//! no code calls is a permission granted for nothing.

use std::collections::BTreeSet;
use std::path::Path;

/// AWS services warren calls, as IAM names them.
const SERVICES: &[&str] = &[
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

/// Actions the policy needs although no call names them: AWS checks them on the caller's behalf
/// inside another call.
const IMPLIED: &[(&str, &str)] = &[
    (
        "kms:Decrypt",
        "ssm:GetParameters WithDecryption on a SecureString",
    ),
    ("ecs:TagResource", "ecs:RegisterTaskDefinition with tags"),
    ("iam:PassRole", "a task role or target role passed on"),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `"service:Action"` literals in the source.
fn called_actions() -> BTreeSet<String> {
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

fn policy_actions() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/iam-policy.json");
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("docs/iam-policy.json"))
            .expect("the policy is JSON");
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Action"] {
            serde_json::Value::String(a) => {
                actions.insert(a.clone());
            }
            serde_json::Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().expect("action").to_owned()));
            }
            other => panic!("Action is {other}"),
        }
    }
    actions
}

#[test]
fn the_policy_grants_every_call_the_code_makes_and_nothing_else() {
    let called = called_actions();
    let granted = policy_actions();
    assert!(
        called.len() >= 10,
        "the scan found too few calls to be reading the source: {called:?}"
    );
    let missing: Vec<_> = called.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "docs/iam-policy.json lacks actions the code calls: {missing:?}"
    );
    let implied: BTreeSet<String> = IMPLIED.iter().map(|(a, _)| (*a).to_owned()).collect();
    let unused: Vec<_> = granted
        .difference(&called)
        .filter(|a| !implied.contains(*a))
        .collect();
    assert!(
        unused.is_empty(),
        "docs/iam-policy.json grants actions no code calls: {unused:?}"
    );
}
