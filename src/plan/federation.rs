//! Under `federate`: the federation upstreams and policies apply declares on the new broker
//! before the first wave (RabbitMQ's blue-green guide), what the plan refuses for want of them,
//! and the warning about queues that federation cannot feed.

use super::*;
use crate::backend::broker::federation::{policy_for, upstream_name, Upstream};
use crate::model::Policy;

/// What apply declares on the new broker before the first wave, and removes once the
/// federated queues on the old broker are empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Federation {
    /// One per vhost of the federated queues, pointing at the old broker.
    pub upstreams: Vec<Upstream>,
    /// One per federated queue, from `federation::policy_for`.
    pub policies: Vec<Policy>,
}

impl Federation {
    /// The federated queues, as `(vhost, queue)`, in the order of the policies.
    #[must_use]
    pub fn queues(&self) -> Vec<(&str, &str)> {
        self.policies
            .iter()
            .filter_map(|p| {
                let queue = crate::backend::broker::federation::federated_queue(p)?;
                Some((p.vhost.as_str(), queue))
            })
            .collect()
    }
}

/// The queues federated from the old broker: every queue a service moving to the new broker
/// consumes (action `update`), in its vhost on the old broker where the old broker lists it
/// (else `/`); sorted by vhost and name, each once.
fn federated_queues(changes: &[Change], old: Option<&Broker>) -> Vec<(String, String)> {
    let vhosts: BTreeMap<&str, &str> = old
        .and_then(|b| b.queues.as_ref())
        .into_iter()
        .flatten()
        .map(|q| (q.name.as_str(), q.vhost.as_str()))
        .collect();
    let queues: BTreeSet<(String, String)> = changes
        .iter()
        .filter(|c| c.action == Action::Update && c.to == BrokerAlias::New)
        .flat_map(|c| &c.consumes)
        .map(|queue| {
            let vhost = vhosts
                .get(queue.as_str())
                .map_or_else(crate::model::default_vhost, |v| (*v).to_owned());
            (vhost, queue.clone())
        })
        .collect();
    queues.into_iter().collect()
}

/// The plan's federation: `None` under `drain`, or when no service moving to the new broker
/// consumes a queue. Each federated queue's policy keeps the definition of the policy that
/// will apply to it on the new broker when apply declares it (the new broker's policies and
/// those the plan's `topology` copies there first).
///
/// # Errors
/// [`Error::Input`] naming `[brokers.old]` or `[brokers.new]` of the plan file when federation
/// cannot be declared: no variable names the old broker's AMQP URL, the old broker is a private
/// Amazon MQ broker and the plan names no `upstream_url_env`, or the new broker's management
/// API is out of reach. [`Error::Refused`] when a policy on the new broker has a pattern warren
/// cannot read, so the policy that applies to a federated queue is unknown.
pub(super) fn federation_of(
    config: &Config,
    world: &World,
    brokers: &Brokers,
    changes: &[Change],
    topology: &[TopologyItem],
    warnings: &mut Vec<String>,
) -> Result<Option<Federation>> {
    if config.migration.strategy != Strategy::Federate {
        return Ok(None);
    }
    let old = brokers.old.in_world(world);
    let queues = federated_queues(changes, old);
    if queues.is_empty() {
        return Ok(None);
    }
    let url_env = upstream_url_env(config, brokers, old)?;
    check_new_broker_reachable(config, world, brokers)?;

    let name = upstream_name(&config.migration.name);
    let vhosts: BTreeSet<&str> = queues.iter().map(|(vhost, _)| vhost.as_str()).collect();
    let upstreams = vhosts
        .into_iter()
        .map(|vhost| Upstream {
            vhost: vhost.to_owned(),
            name: name.clone(),
            url_env: url_env.clone(),
        })
        .collect();
    // The policies the new broker will have when apply declares federation: its own, and
    // those copied from the old broker before the first wave.
    let new = brokers.new.in_world(world).filter(|b| b.queues.is_some());
    if new.is_none() {
        warnings.push(format!(
            "the new broker {}'s policies are unknown: the federation policies keep no other policy's settings (dead-lettering, TTL, length limits), and one of higher priority there would keep a queue from being federated; plan again once warren can read the new broker",
            brokers.new.id
        ));
    }
    let mut policies: Vec<Policy> = new.map(|b| b.policies.clone()).unwrap_or_default();
    policies.extend(topology.iter().filter_map(|t| match t {
        TopologyItem::Policy(p) => Some(p.clone()),
        _ => None,
    }));
    let policies = queues
        .iter()
        .map(|(vhost, queue)| {
            policy_for(&policies, vhost, queue, &name).map_err(|why| {
                Error::Refused(format!(
                    "the new broker {}: {why}; warren cannot tell which policy applies to queue {queue}, so it cannot federate it without dropping that policy's settings: fix the pattern",
                    brokers.new.id
                ))
            })
        })
        .collect::<Result<Vec<Policy>>>()?;
    Ok(Some(Federation {
        upstreams,
        policies,
    }))
}

/// The variable holding the URL the new broker reaches the old one by: `upstream_url_env`,
/// else `amqp_url_env`, unless the old broker is private and only `amqp_url_env` names one.
fn upstream_url_env(config: &Config, brokers: &Brokers, old: Option<&Broker>) -> Result<String> {
    let broker = &brokers.old;
    if let Some(var) = &broker.upstream_url_env {
        return Ok(var.clone());
    }
    let Some(var) = &broker.amqp_url_env else {
        return Err(config.broker_error(
            BrokerAlias::Old,
            "the federate strategy needs the old broker's AMQP URL: name the variable that holds it in amqp_url_env (or upstream_url_env)",
        ));
    };
    if old.and_then(|b| b.publicly_accessible) == Some(false) {
        return Err(config.broker_error(
            BrokerAlias::Old,
            &format!(
                "the old broker {} is not publicly accessible, and Amazon MQ cannot federate from a private broker: name in upstream_url_env a variable holding a URL of the old broker that the new broker can reach (a load balancer in front of it, say)",
                broker.id
            ),
        ));
    }
    Ok(var.clone())
}

/// The new broker's topology is within reach: the world simulates it (lists its queues) or
/// the plan names its management API, through which federation is declared.
fn check_new_broker_reachable(config: &Config, world: &World, brokers: &Brokers) -> Result<()> {
    let simulated = brokers
        .new
        .in_world(world)
        .is_some_and(|b| b.queues.is_some());
    if simulated || brokers.new.management_url_env.is_some() {
        return Ok(());
    }
    Err(config.broker_error(
        BrokerAlias::New,
        &format!(
            "the federate strategy declares federation through the new broker's management API, and the plan names none for the new broker {} (nor does the world file list its queues): name the variable that holds its management URL in management_url_env",
            brokers.new.id
        ),
    ))
}

/// A warning for each federated queue that clients poll (`basic.get`) on either broker, where
/// the broker says so.
pub(super) fn polled_warnings(
    federation: Option<&Federation>,
    world: &World,
    brokers: &Brokers,
    warnings: &mut Vec<String>,
) {
    let Some(federation) = federation else {
        return;
    };
    let polled = |broker: &ResolvedBroker, vhost: &str, queue: &str| {
        broker
            .in_world(world)
            .and_then(|b| b.queues.as_ref())
            .into_iter()
            .flatten()
            .any(|q| q.vhost == vhost && q.name == queue && q.polled)
    };
    for (vhost, queue) in federation.queues() {
        if polled(&brokers.old, vhost, queue) || polled(&brokers.new, vhost, queue) {
            warnings.push(format!(
                "queue {queue} is polled (basic.get): a federated queue pulls from the old broker only for consumers attached to it, so a client that polls it on the new broker gets nothing through federation until its publishers move too"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Queue;

    fn change(consumes: &[&str], action: Action, to: BrokerAlias) -> Change {
        Change {
            cluster: "c".into(),
            service: "s".into(),
            action,
            from: Some(Placement::Old),
            to,
            wave: Some(1),
            reason: None,
            task_definition: "s:1".into(),
            rewrites: Vec::new(),
            publishes: Vec::new(),
            consumes: consumes.iter().map(|q| (*q).to_owned()).collect(),
        }
    }

    #[test]
    fn federated_queues_are_those_consumed_by_services_moving_to_the_new_broker() {
        let old = Broker {
            queues: Some(vec![Queue {
                vhost: "esr".into(),
                name: "b.q".into(),
                ..Queue::default()
            }]),
            ..Broker::default()
        };
        let changes = [
            change(&["b.q", "a.q"], Action::Update, BrokerAlias::New),
            change(&["a.q"], Action::Update, BrokerAlias::New),
            change(&["manual.q"], Action::Manual, BrokerAlias::New),
            change(&["back.q"], Action::Update, BrokerAlias::Old),
            change(&["stays.q"], Action::Noop, BrokerAlias::New),
        ];
        assert_eq!(
            federated_queues(&changes, Some(&old)),
            vec![
                ("/".to_owned(), "a.q".to_owned()),
                ("esr".to_owned(), "b.q".to_owned())
            ],
            "vhost from the old broker where it lists the queue, else /; sorted, each once"
        );
        assert!(federated_queues(&changes[2..], Some(&old)).is_empty());
    }

    #[test]
    fn the_federated_queues_are_read_back_from_the_policies() {
        let federation = Federation {
            upstreams: Vec::new(),
            policies: vec![
                policy_for(&[], "/", "a.q", "warren-m").unwrap(),
                policy_for(&[], "esr", "b.q", "warren-m").unwrap(),
            ],
        };
        assert_eq!(federation.queues(), vec![("/", "a.q"), ("esr", "b.q")]);
    }
}
