//! docs/iam-policy.json grants exactly the AWS actions warren's code calls.
//!
//! Every AWS call names its action as `"service:Action"` where its error is described
//! (`errors::describe("ecs:UpdateService", …)`), so the calls are found by reading the source
//! (tests/support/calls.rs).
//! A call missing from the policy fails for a team that copied it; an action in the policy that
//! no code calls is a permission granted for nothing.

use std::collections::BTreeSet;
use std::path::Path;

#[path = "support/calls.rs"]
mod calls;

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
    let called = calls::called_actions();
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
