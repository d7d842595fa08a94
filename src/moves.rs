//! What moving a service changes in its task definition, and nothing more.
//!
//! In each value that points at the source broker (an environment variable, or another string
//! field of a container such as `command`) the host (and, where they differ, the endpoint's
//! scheme and port) is rewritten; a secret whose parameter the plan maps gets the mapped
//! parameter; a variable an env file sets is set in the container's `environment` (which
//! overrides the file) with the rewritten value. Every other field, variable, secret and
//! container stays as it was.

use crate::discovery::{self, same_parameter, Via};
use crate::model::{TaskDefinition, World};
use crate::plan::{Brokers, Change};

/// The task definition `change` should run: `current` with only the broker moved.
///
/// `only` limits the variables considered, as the plan's `broker_env` does. Returns `None`
/// when nothing in `current` points at the source broker any more.
#[must_use]
pub fn moved(
    world: &World,
    current: &TaskDefinition,
    change: &Change,
    brokers: &Brokers,
    only: Option<&[String]>,
) -> Option<TaskDefinition> {
    let to = change.to;
    let from = to.other();
    let (pointers, _) = discovery::pointers(world, current, [&brokers.old, &brokers.new], only);
    let mut next = current.clone();
    let mut changed = false;
    for pointer in pointers.iter().filter(|p| p.broker == from) {
        let Some(container) = next
            .containers
            .iter_mut()
            .find(|c| c.name == pointer.container)
        else {
            continue;
        };
        match &pointer.via {
            Via::Variable { name } => {
                if let Some(rewritten) = container
                    .environment
                    .get(name)
                    .and_then(|value| discovery::rewrite(value, brokers.get(from), brokers.get(to)))
                {
                    container.environment.insert(name, rewritten);
                    changed = true;
                }
            }
            Via::Field { path } => {
                if let Some(value) = container.field_mut(path) {
                    if let Some(rewritten) =
                        discovery::rewrite_field(value, brokers.get(from), brokers.get(to))
                    {
                        *value = rewritten;
                        changed = true;
                    }
                }
            }

            // ECS gives a container its `environment` over its env files: the rewritten
            // value set there moves the variable, and the file (which other task definitions
            // may load) stays as it is.
            Via::EnvFile { name, .. } => {
                if let Some(rewritten) =
                    discovery::rewrite(&pointer.value, brokers.get(from), brokers.get(to))
                {
                    container.environment.insert(name, rewritten);
                    changed = true;
                }
            }
            Via::Parameter { name, parameter } => {
                let mapped = change.rewrites.iter().find(|r| {
                    r.container == pointer.container
                        && r.parameter.as_deref() == Some(name.as_str())
                        && same_parameter(&r.from, parameter)
                });
                if let (Some(mapped), Some(value_from)) = (mapped, container.secrets.get_mut(name))
                {
                    value_from.clone_from(&mapped.to);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(next)
}

/// The newest registered revision of `current`'s family that already has exactly `wanted`'s
/// content and is newer than `current`: a resumed apply reuses it instead of registering
/// another copy.
#[must_use]
pub fn already_registered<'w>(
    world: &'w World,
    current: &TaskDefinition,
    wanted: &TaskDefinition,
) -> Option<&'w TaskDefinition> {
    world
        .task_definitions
        .iter()
        .filter(|t| t.family == current.family && t.revision > current.revision && t.is_active())
        .filter(|t| same_content(t, wanted))
        .max_by_key(|t| t.revision)
}

/// Fields of a task definition that name one revision rather than say what it runs.
const IDENTITY: &[&str] = &["arn", "registered_at", "registered_by"];

/// Whether `a` and `b` run the same tasks: the same containers and the same other fields, but
/// for the family's revision number, status and what names one revision (its ARN, when and by
/// whom it was registered).
#[must_use]
pub fn same_content(a: &TaskDefinition, b: &TaskDefinition) -> bool {
    let fields = |t: &TaskDefinition| {
        t.extra
            .iter()
            .filter(|(k, _)| !IDENTITY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    a.family == b.family && a.containers == b.containers && fields(a) == fields(b)
}
