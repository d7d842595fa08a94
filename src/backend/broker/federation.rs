//! The policies that federate queues on the new broker from the old one (the `federate`
//! strategy, after RabbitMQ's blue-green guide). Pure: no broker is asked.
//!
//! Only one policy applies to a queue: of those whose pattern matches its name (and whose
//! `apply-to` covers queues), the one of highest priority, and definitions are never merged. A
//! federation policy that simply matched a queue already under a policy with dead-lettering,
//! a TTL or a length limit would silently drop those settings. So warren's policy for a queue
//! carries the definition of the policy that applies to it now, plus `federation-upstream`, at a
//! priority above it; the existing policy is never replaced or edited.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Policy;

/// The prefix of the names of the policies warren creates (and removes once the old queues are
/// empty).
pub const POLICY_PREFIX: &str = "warren-federate-";

/// A federation upstream warren declares on the new broker, in one vhost, pointing at the old
/// broker. The plan names the variable that holds its URL, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub vhost: String,
    /// `warren-<migration>` (see [`upstream_name`]), the same in every vhost.
    pub name: String,
    /// The environment variable holding the old broker's AMQP URL as the new broker reaches
    /// it: the old broker's `upstream_url_env`, else its `amqp_url_env`. The vhost of the URL
    /// is set to [`Upstream::vhost`] when the upstream is declared.
    pub url_env: String,
}

/// The name of the upstreams warren declares for migration `migration`.
#[must_use]
pub fn upstream_name(migration: &str) -> String {
    format!("warren-{migration}")
}

/// The name of the policy that federates queue `queue`.
#[must_use]
pub fn policy_name(queue: &str) -> String {
    format!("{POLICY_PREFIX}{queue}")
}

/// The queue a federation policy of warren's federates (its name less [`POLICY_PREFIX`]);
/// `None` for any other policy.
#[must_use]
pub fn federated_queue(policy: &Policy) -> Option<&str> {
    policy.name.strip_prefix(POLICY_PREFIX)
}

/// Whether `policy` applies to queues at all.
fn covers_queues(policy: &Policy) -> bool {
    matches!(
        policy.apply_to.as_str(),
        "queues" | "all" | "classic_queues" | "quorum_queues"
    )
}

/// The policy among `policies` that applies to queue `vhost`/`queue` now: the matching one of
/// highest priority (of two with the same priority, the one whose name sorts last: a fixed
/// rule, so a plan is the same every time). warren's own federation policies are left out, so
/// planning again gives the same answer.
///
/// # Errors
/// A message naming the policy whose pattern is not a regular expression.
pub fn applying<'p>(
    policies: &'p [Policy],
    vhost: &str,
    queue: &str,
) -> Result<Option<&'p Policy>, String> {
    highest(
        policies
            .iter()
            .filter(|p| !p.name.starts_with(POLICY_PREFIX)),
        vhost,
        queue,
    )
}

/// The policy among `policies` that the broker applies to queue `vhost`/`queue`, warren's own
/// federation policies included (as [`applying`] otherwise): what a simulated broker does.
///
/// # Errors
/// As [`applying`].
pub fn in_force<'p>(
    policies: &'p [Policy],
    vhost: &str,
    queue: &str,
) -> Result<Option<&'p Policy>, String> {
    highest(policies.iter(), vhost, queue)
}

/// Of `policies`, the one of highest priority that applies to queue `vhost`/`queue` (see
/// [`applying`] for the tie rule).
fn highest<'p>(
    policies: impl Iterator<Item = &'p Policy>,
    vhost: &str,
    queue: &str,
) -> Result<Option<&'p Policy>, String> {
    let mut best: Option<&Policy> = None;
    for policy in policies.filter(|p| p.vhost == vhost && covers_queues(p)) {
        let pattern = Regex::new(&policy.pattern).map_err(|e| {
            format!(
                "policy {} in vhost {vhost}: its pattern {:?} cannot be read as a regular expression here: {e}",
                policy.name, policy.pattern
            )
        })?;
        if !pattern.is_match(queue) {
            continue;
        }
        best = match best {
            Some(b) if (b.priority, &b.name) >= (policy.priority, &policy.name) => Some(b),
            _ => Some(policy),
        };
    }
    Ok(best)
}

/// The policy that federates queue `vhost`/`queue` from `upstream` (the name of a federation
/// upstream on the same broker), keeping what the policy that applies to it now defines.
///
/// # Errors
/// As [`applying`].
pub fn policy_for(
    policies: &[Policy],
    vhost: &str,
    queue: &str,
    upstream: &str,
) -> Result<Policy, String> {
    let now = applying(policies, vhost, queue)?;
    let mut definition = now.map(|p| p.definition.clone()).unwrap_or_default();
    definition.insert(
        "federation-upstream".to_owned(),
        Value::String(upstream.to_owned()),
    );
    Ok(Policy {
        vhost: vhost.to_owned(),
        name: policy_name(queue),
        pattern: format!("^{}$", regex::escape(queue)),
        apply_to: "queues".to_owned(),
        priority: now.map_or(0, |p| p.priority.saturating_add(1)),
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, pattern: &str, priority: i64, definition: Value) -> Policy {
        Policy {
            vhost: "/".into(),
            name: name.into(),
            pattern: pattern.into(),
            apply_to: "queues".into(),
            priority,
            definition: definition.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn names_carry_the_migration_and_the_queue() {
        assert_eq!(upstream_name("esr-prod"), "warren-esr-prod");
        assert_eq!(policy_name("esr.q"), "warren-federate-esr.q");
    }

    #[test]
    fn a_queue_under_no_policy_gets_federation_alone() {
        let p = policy_for(&[], "/", "esr.q", "warren-old").unwrap();
        assert_eq!(p.name, "warren-federate-esr.q");
        assert_eq!(
            p.pattern, r"^esr\.q$",
            "the dot is escaped: only this queue"
        );
        assert_eq!(p.apply_to, "queues");
        assert_eq!(p.priority, 0);
        assert_eq!(
            Value::Object(p.definition),
            json!({ "federation-upstream": "warren-old" })
        );
    }

    #[test]
    fn a_queue_under_a_policy_keeps_its_dead_lettering_and_ttl_at_a_higher_priority() {
        let existing = [
            policy(
                "dlx",
                "^esr\\.",
                7,
                json!({ "dead-letter-exchange": "esr.dlx", "message-ttl": 60000 }),
            ),
            policy("low", ".*", 1, json!({ "max-length": 10 })),
        ];
        let p = policy_for(&existing, "/", "esr.q", "warren-old").unwrap();
        assert_eq!(p.priority, 8, "above the policy that applies now");
        assert_eq!(
            Value::Object(p.definition),
            json!({
                "dead-letter-exchange": "esr.dlx",
                "message-ttl": 60000,
                "federation-upstream": "warren-old"
            })
        );
    }

    #[test]
    fn policies_of_other_vhosts_for_exchanges_or_that_do_not_match_are_ignored() {
        let mut other_vhost = policy("v", ".*", 9, json!({ "max-length": 1 }));
        other_vhost.vhost = "esr".into();
        let mut exchanges = policy("x", ".*", 9, json!({ "alternate-exchange": "ae" }));
        exchanges.apply_to = "exchanges".into();
        let elsewhere = policy("e", "^other$", 9, json!({ "max-length": 2 }));
        let existing = [other_vhost, exchanges, elsewhere];
        assert!(applying(&existing, "/", "esr.q").unwrap().is_none());
    }

    #[test]
    fn warrens_own_policy_is_not_what_applies_so_planning_again_gives_the_same() {
        let existing = [policy("ttl", ".*", 3, json!({ "message-ttl": 1000 }))];
        let first = policy_for(&existing, "/", "q", "up").unwrap();
        let again = policy_for(&[existing[0].clone(), first.clone()], "/", "q", "up").unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn warrens_own_policy_is_in_force_above_the_one_it_copies() {
        let existing = [policy("ttl", ".*", 3, json!({ "message-ttl": 1000 }))];
        let own = policy_for(&existing, "/", "q", "up").unwrap();
        let all = [existing[0].clone(), own.clone()];
        assert_eq!(in_force(&all, "/", "q").unwrap(), Some(&own));
        assert_eq!(in_force(&all, "/", "other").unwrap(), Some(&all[0]));
        assert_eq!(applying(&all, "/", "q").unwrap(), Some(&all[0]));
    }

    #[test]
    fn a_pattern_that_cannot_be_read_names_the_policy() {
        let existing = [policy("broken", "(", 1, json!({}))];
        let err = policy_for(&existing, "/", "q", "up").unwrap_err();
        assert!(
            err.contains("policy broken") && err.contains("\"(\""),
            "{err}"
        );
    }
}
