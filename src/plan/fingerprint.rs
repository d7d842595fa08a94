//! What a plan depends on in the state, digested: a saved plan is stale once it changes.

use std::collections::HashSet;

use super::*;

/// A digest of the state a plan was made from, so `apply` can refuse a stale saved plan.
///
/// Entries are `service:cluster/name` and `parameter:name`, each mapped to a digest of what
/// the plan depends on; a change anywhere else leaves the fingerprint as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub entries: BTreeMap<String, String>,
}

impl Fingerprint {
    /// Entries that differ between `self` (saved) and `now`, described for a person.
    #[must_use]
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for (key, saved) in &self.entries {
            match now.entries.get(key) {
                None => out.push(format!("{key} is gone")),
                Some(current) if current != saved => out.push(format!("{key} changed")),
                Some(_) => {}
            }
        }
        for key in now.entries.keys() {
            if !self.entries.contains_key(key) {
                out.push(format!("{key} is new"));
            }
        }
        out
    }
}

/// The fingerprint of the state a plan depends on: every declared service and every scanned
/// service that points at either broker (its task definition and content, its deployments),
/// every parameter their containers read, and what `apply`'s preconditions check (the new
/// broker's state, every mapped target parameter; `targets` is the new broker and the
/// `[parameters]` map).
#[must_use]
pub fn fingerprint(
    world: &World,
    scanned: &[Scanned],
    changes: &[Change],
    unmanaged: &[Unmanaged],
    targets: (&ResolvedBroker, &IndexMap<String, String>),
) -> Fingerprint {
    let mut entries =
        crate::precondition::fingerprint_entries(world, targets.0, targets.1, changes);
    let relevant: HashSet<(&str, &str)> = changes
        .iter()
        .map(|c| (c.cluster.as_str(), c.service.as_str()))
        .chain(
            unmanaged
                .iter()
                .map(|u| (u.cluster.as_str(), u.service.as_str())),
        )
        .chain(
            scanned
                .iter()
                .filter(|s| !s.pointers.is_empty())
                .map(|s| (s.cluster, s.service)),
        )
        .collect();
    let services = world.services_by_id();
    for s in scanned
        .iter()
        .filter(|s| relevant.contains(&(s.cluster, s.service)))
    {
        let Some(service) = services.get(&(s.cluster, s.service)) else {
            continue;
        };
        let td = world.task_definition(&service.task_definition);
        let deployments: Vec<&str> = service
            .deployments
            .iter()
            .map(|d| d.task_definition.as_str())
            .collect();
        entries.insert(
            format!("service:{}", s.id()),
            digest(&(&service.task_definition, &deployments, td, &service.extra)),
        );
        // Only the parameters the move depends on: those that name a broker. A digest of any
        // other secret (a password) would be a hash of a credential in the saved plan.
        for pointer in &s.pointers {
            // An env file's variable: the value the move copies (its password masked, as the
            // digest of a credential must not stand in a saved plan).
            if let Via::EnvFile { name, file } = &pointer.via {
                entries.insert(
                    format!("env_file:{file}#{name}"),
                    digest(&mask_password(&pointer.value)),
                );
            }
            if let Via::Parameter { parameter, .. } = &pointer.via {
                let version = world.parameter_versions.get(parameter);
                entries.insert(
                    format!("parameter:{}", discovery::parameter_name(parameter)),
                    digest(&(&pointer.value, version)),
                );
            }
        }
    }
    for rewrite in changes.iter().flat_map(|c| &c.rewrites) {
        if rewrite.parameter.is_some() {
            let value = parameter_value(world, &rewrite.to);
            let version = world.parameter_versions.get(&rewrite.to);
            entries.insert(
                format!("parameter:{}", discovery::parameter_name(&rewrite.to)),
                digest(&(&value, version)),
            );
        }
    }
    Fingerprint { entries }
}

/// The fingerprint `plan` would have if it were made from `world` now: compare it with
/// `plan.fingerprint` to tell whether a saved plan is stale.
///
/// # Errors
/// As [`scan`]: a service on a task definition the state does not have.
pub fn fingerprint_now(world: &World, plan: &Plan) -> Result<Fingerprint> {
    let scanned = scan(
        world,
        [&plan.brokers.old, &plan.brokers.new],
        plan.scope.clusters.as_deref(),
        plan.scope.broker_env.as_deref(),
    )?;
    let mut now = fingerprint(
        world,
        &scanned,
        &plan.changes,
        &plan.unmanaged,
        (&plan.brokers.new, &plan.parameters),
    );
    let retargets = crate::retarget::retargets(
        world,
        &plan.changes,
        &plan.brokers,
        plan.scope.broker_env.as_deref(),
    );
    fingerprint_resources(
        &mut now,
        world,
        &plan.brokers,
        (&plan.changes, &retargets),
        &plan.unmanaged_resources,
    );
    now.entries
        .extend(crate::retarget::fingerprint_entries(world, &retargets));
    Ok(now)
}

/// Adds a `resource:kind:name` entry for each resource `listed` in the plan and each that
/// points at the old broker now: a saved plan goes stale when one changes, goes, or starts
/// pointing. A world without such resources leaves the fingerprint as it was.
pub(super) fn fingerprint_resources(
    fingerprint: &mut Fingerprint,
    world: &World,
    brokers: &Brokers,
    moved: (&[Change], &[crate::retarget::Retarget]),
    listed: &[UnmanagedResource],
) {
    fingerprint.entries.extend(resources::fingerprint_entries(
        world,
        &brokers.old,
        &brokers.new,
        listed,
        &|s| moved_by_apply(moved, s),
    ));
}
