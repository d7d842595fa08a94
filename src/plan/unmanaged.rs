//! The resources that are not ECS services and point at the old broker, but for those apply
//! moves itself.

use super::*;

/// The rules and schedules that apply moves, so that they are not unmanaged: one it retargets
/// (see [`crate::retarget`]), and one that names a bare family, which follows its latest
/// revision: apply registers a moved revision (the family's latest) for every service it
/// updates.
pub(super) fn moved_by_apply(
    (changes, retargets): (&[Change], &[crate::retarget::Retarget]),
    schedule: &Schedule,
) -> bool {
    crate::retarget::is_retargeted(retargets, schedule)
        || crate::retarget::follows_a_move(changes, schedule).is_some()
}

/// The resources that are not ECS services and point at the old broker, but for what apply
/// moves (see [`moved_by_apply`]). What could not be read (a rule's task definition that does
/// not exist) is a warning: decommission will count it as unverifiable.
pub(super) fn unmanaged_resources(
    world: &World,
    brokers: &Brokers,
    moved: (&[Change], &[crate::retarget::Retarget]),
    warnings: &mut Vec<String>,
) -> Vec<UnmanagedResource> {
    let findings = resources::find(world, &brokers.old, &brokers.new, &|s| {
        moved_by_apply(moved, s)
    });
    warnings.extend(
        findings
            .unreadable
            .into_iter()
            .map(|what| format!("{what}: whether it points at the old broker is unknown")),
    );
    findings.found.into_iter().map(|f| f.resource).collect()
}
