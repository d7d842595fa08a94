//! Who else deploys a service: infrastructure as code that owns it, told by its tags.
//!
//! warren moves a service by registering a task definition and pointing the service at it. A
//! service that a CloudFormation stack (also CDK and Copilot, which deploy through one) or
//! Terraform owns gets its old task definition back the next time that tool deploys, unless
//! its source changes too: `plan` warns about each one it moves. Only tags are read, so what
//! is found is what the tools (or the team's conventions) put there:
//!
//! - `copilot-application` (with `copilot-environment`, where present): Copilot;
//! - `aws:cdk:path`: CDK (with its stack from `aws:cloudformation:stack-name`);
//! - `aws:cloudformation:stack-name`: CloudFormation;
//! - Terraform: `ManagedBy`, `managed-by` or `managed_by` set to `terraform` or `opentofu`, a
//!   key `terraform` whose value is not `false`, or any key starting with `tf:` (keys and
//!   values in any case).

use indexmap::IndexMap;

/// The infrastructure-as-code tool that owns a service, as its tags tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A CloudFormation stack (`aws:cloudformation:stack-name`).
    CloudFormation { stack: String },
    /// A CDK app: its CloudFormation stack, where tagged, and its construct path.
    Cdk { stack: Option<String>, path: String },
    /// An AWS Copilot application and environment.
    Copilot {
        application: String,
        environment: Option<String>,
    },
    /// Terraform (or OpenTofu): the tag that says so, as `key=value`.
    Terraform { tag: String },
}

/// CloudFormation's own tag on every resource of a stack (CDK and Copilot deploy through one).
const STACK_NAME: &str = "aws:cloudformation:stack-name";
/// CDK's construct path, where a CDK app tags it.
const CDK_PATH: &str = "aws:cdk:path";
/// Copilot's tags on what it deploys.
const COPILOT_APPLICATION: &str = "copilot-application";
const COPILOT_ENVIRONMENT: &str = "copilot-environment";

/// The owner `tags` name, if any. Copilot and CDK come before CloudFormation: they deploy
/// through a stack too, but a person changes their manifest or app, not the template.
#[must_use]
pub fn owner(tags: &IndexMap<String, String>) -> Option<Owner> {
    let tag = |key: &str| tags.get(key).filter(|v| !v.is_empty()).cloned();
    if let Some(application) = tag(COPILOT_APPLICATION) {
        return Some(Owner::Copilot {
            application,
            environment: tag(COPILOT_ENVIRONMENT),
        });
    }
    if let Some(path) = tag(CDK_PATH) {
        return Some(Owner::Cdk {
            stack: tag(STACK_NAME),
            path,
        });
    }
    if let Some(stack) = tag(STACK_NAME) {
        return Some(Owner::CloudFormation { stack });
    }
    tags.iter()
        .find(|(key, value)| terraform_tag(key, value))
        .map(|(key, value)| Owner::Terraform {
            tag: format!("{key}={value}"),
        })
}

/// Whether `key=value` is one of the Terraform tags warren knows (see the module's list).
fn terraform_tag(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let value = value.to_ascii_lowercase();
    match key.as_str() {
        "managedby" | "managed-by" | "managed_by" => value == "terraform" || value == "opentofu",
        "terraform" => value != "false",
        _ => key.starts_with("tf:"),
    }
}

impl Owner {
    /// The plan's warning for service `id` (`cluster/service`) that the plan moves.
    #[must_use]
    pub fn warning(&self, id: &str) -> String {
        let (who, source) = match self {
            Owner::CloudFormation { stack } => {
                (format!("CloudFormation stack {stack}"), "template")
            }
            Owner::Cdk {
                stack: Some(stack), ..
            } => (format!("CDK (CloudFormation stack {stack})"), "CDK app"),
            Owner::Cdk { stack: None, path } => (format!("CDK (construct {path})"), "CDK app"),
            Owner::Copilot {
                application,
                environment: Some(environment),
            } => (
                format!("Copilot (application {application}, environment {environment})"),
                "manifest",
            ),
            Owner::Copilot {
                application,
                environment: None,
            } => (format!("Copilot (application {application})"), "manifest"),
            Owner::Terraform { tag } => (format!("Terraform (tag {tag})"), "configuration"),
        };
        format!(
            "{id} is managed by {who}: the next deploy of that stack puts the old host back unless its {source} changes too"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_tool_is_told_by_its_tags() {
        let cases = [
            (
                tags(&[(STACK_NAME, "esr")]),
                Some(Owner::CloudFormation {
                    stack: "esr".into(),
                }),
            ),
            (
                tags(&[(STACK_NAME, "esr"), (CDK_PATH, "Esr/Service")]),
                Some(Owner::Cdk {
                    stack: Some("esr".into()),
                    path: "Esr/Service".into(),
                }),
            ),
            (
                tags(&[
                    (STACK_NAME, "esr-prod-api"),
                    (COPILOT_APPLICATION, "esr"),
                    (COPILOT_ENVIRONMENT, "prod"),
                ]),
                Some(Owner::Copilot {
                    application: "esr".into(),
                    environment: Some("prod".into()),
                }),
            ),
            (
                tags(&[("team", "esr"), ("managed_by", "OpenTofu")]),
                Some(Owner::Terraform {
                    tag: "managed_by=OpenTofu".into(),
                }),
            ),
            (
                tags(&[("Terraform", "true")]),
                Some(Owner::Terraform {
                    tag: "Terraform=true".into(),
                }),
            ),
            (
                tags(&[("tf:module", "queues")]),
                Some(Owner::Terraform {
                    tag: "tf:module=queues".into(),
                }),
            ),
            (tags(&[("terraform", "false")]), None),
            (tags(&[("ManagedBy", "ansible"), ("team", "esr")]), None),
            (tags(&[(STACK_NAME, "")]), None),
            (tags(&[]), None),
        ];
        for (tags, expected) in cases {
            assert_eq!(owner(&tags), expected, "{tags:?}");
        }
    }

    #[test]
    fn the_warning_names_the_owner_and_what_must_change() {
        let cdk = Owner::Cdk {
            stack: None,
            path: "Esr/Api".into(),
        };
        assert_eq!(
            cdk.warning("c/api"),
            "c/api is managed by CDK (construct Esr/Api): the next deploy of that stack puts the old host back unless its CDK app changes too"
        );
    }
}
