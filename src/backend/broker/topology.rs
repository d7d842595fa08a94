//! What the new broker lacks of the old broker's topology: the exchanges, queues, bindings and
//! policies a service finds on the old broker and would miss on the new one once it moves.
//!
//! Pure: two brokers as read in, the definitions to create and the conflicts out. Nothing on the
//! new broker is ever changed or deleted, so a definition both brokers have under one name but
//! with a different shape cannot be repaired by copying: it is a conflict, for a person to settle.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Definition;
use crate::model::{Broker, DestinationType, Exchange, Policy, Queue};

/// What preparing the new broker takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preparation {
    /// The definitions the new broker lacks, in the order they can be created in: exchanges,
    /// queues, bindings (whose ends exist by then), policies.
    pub create: Vec<Definition>,
    /// Definitions both brokers have under one name, with a different type or arguments.
    pub conflicts: Vec<Conflict>,
}

/// One definition the two brokers disagree on, described on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// On the old broker: `queue esr.q (classic)`.
    pub old: String,
    /// On the new broker: `queue esr.q (quorum)`.
    pub new: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the old broker has {}, the new broker has {}",
            self.old, self.new
        )
    }
}

/// What of `old`'s topology in `vhosts` `new` lacks, and where the two disagree.
///
/// Only where both topologies are known (`queues` is `Some`): an unknown topology gives nothing
/// to create and no conflict. The default exchange and the `amq.*` exchanges exist on every
/// broker and are never created; bindings from the default exchange are implicit and skipped.
/// An exchange a binding of `new` names exists on `new`. Unknown fields compare as RabbitMQ's
/// defaults: a queue with no type is classic, one with no `durable` durable, an exchange with no
/// type direct.
#[must_use]
pub fn prepare(old: &Broker, new: &Broker, vhosts: &BTreeSet<String>) -> Preparation {
    let mut out = Preparation::default();
    let (Some(old_queues), Some(new_queues)) = (&old.queues, &new.queues) else {
        return out;
    };
    let wanted = |vhost: &str| vhosts.contains(vhost);

    for e in old
        .exchanges
        .iter()
        .filter(|e| wanted(&e.vhost) && !is_builtin(&e.name))
    {
        match new
            .exchanges
            .iter()
            .find(|x| x.vhost == e.vhost && x.name == e.name)
        {
            Some(x) if !same_exchange(e, x) => out.conflicts.push(Conflict {
                old: exchange_detail(e),
                new: exchange_detail(x),
            }),
            Some(_) => {}
            None if named_by_bindings(new, &e.vhost, &e.name) => {}
            None => out.create.push(Definition::Exchange(e.clone())),
        }
    }

    for q in old_queues.iter().filter(|q| wanted(&q.vhost)) {
        match new_queues
            .iter()
            .find(|x| x.vhost == q.vhost && x.name == q.name)
        {
            Some(x) if !same_queue(q, x) => out.conflicts.push(Conflict {
                old: queue_detail(q),
                new: queue_detail(x),
            }),
            Some(_) => {}
            None => out.create.push(Definition::Queue(bare(q))),
        }
    }

    for b in old
        .bindings
        .iter()
        .filter(|b| wanted(&b.vhost) && !b.exchange.is_empty())
    {
        if !new.bindings.iter().any(|x| b.same_route(x)) {
            out.create.push(Definition::Binding(b.clone()));
        }
    }

    for p in old.policies.iter().filter(|p| wanted(&p.vhost)) {
        match new
            .policies
            .iter()
            .find(|x| x.vhost == p.vhost && x.name == p.name)
        {
            Some(x) if !same_policy(p, x) => out.conflicts.push(Conflict {
                old: policy_detail(p),
                new: policy_detail(x),
            }),
            Some(_) => {}
            None => out.create.push(Definition::Policy(p.clone())),
        }
    }
    out
}

/// What a service that publishes to `publishes` and consumes `consumes` needs of `old`'s
/// topology on the broker it moves to: the exchanges and queues of those names (in any vhost),
/// and every binding of `old` from such an exchange or to such a queue. Built-in exchanges are
/// left out: every broker has them.
#[must_use]
pub fn needs(old: &Broker, publishes: &[String], consumes: &[String]) -> Vec<Definition> {
    let named = |list: &[String], name: &str| list.iter().any(|n| n == name);
    let exchanges = old
        .exchanges
        .iter()
        .filter(|e| named(publishes, &e.name) && !is_builtin(&e.name))
        .map(|e| Definition::Exchange(e.clone()));
    let queues = old
        .queues
        .iter()
        .flatten()
        .filter(|q| named(publishes, &q.name) || named(consumes, &q.name))
        .map(|q| Definition::Queue(bare(q)));
    let bindings = old
        .bindings
        .iter()
        .filter(|b| {
            !b.exchange.is_empty()
                && (named(publishes, &b.exchange) || b.queue().is_some_and(|q| named(consumes, q)))
        })
        .map(|b| Definition::Binding(b.clone()));
    exchanges.chain(queues).chain(bindings).collect()
}

/// What `new` lacks of `needs` (a service's exchanges, queues and their bindings, as the old
/// broker has them): each missing one in words. A definition on `new` with another shape counts
/// as present: conflicts are refused before anything moves.
#[must_use]
pub fn missing(new: &Broker, needs: &[Definition]) -> Vec<String> {
    needs
        .iter()
        .filter(|d| !has(new, d))
        .map(ToString::to_string)
        .collect()
}

/// Whether `broker` has `definition` (by name; a binding by its ends and key).
fn has(broker: &Broker, definition: &Definition) -> bool {
    match definition {
        Definition::Exchange(e) => {
            is_builtin(&e.name)
                || broker
                    .exchanges
                    .iter()
                    .any(|x| x.vhost == e.vhost && x.name == e.name)
                || named_by_bindings(broker, &e.vhost, &e.name)
        }
        Definition::Queue(q) => broker
            .queues
            .iter()
            .flatten()
            .any(|x| x.vhost == q.vhost && x.name == q.name),
        Definition::Binding(b) => broker.bindings.iter().any(|x| b.same_route(x)),
        Definition::Policy(p) => broker
            .policies
            .iter()
            .any(|x| x.vhost == p.vhost && x.name == p.name),
    }
}

/// The default exchange (`""`) and RabbitMQ's predeclared `amq.*` exchanges.
#[must_use]
pub fn is_builtin(exchange: &str) -> bool {
    exchange.is_empty() || exchange.starts_with("amq.")
}

/// Whether a binding of `broker` names exchange `name` of `vhost` at either end (so it exists).
fn named_by_bindings(broker: &Broker, vhost: &str, name: &str) -> bool {
    broker.bindings.iter().any(|b| {
        b.vhost == vhost
            && (b.exchange == name
                || (b.destination_type == DestinationType::Exchange && b.destination == name))
    })
}

fn exchange_type(e: &Exchange) -> &str {
    e.kind.as_deref().unwrap_or("direct")
}

fn same_exchange(a: &Exchange, b: &Exchange) -> bool {
    exchange_type(a) == exchange_type(b) && a.arguments == b.arguments
}

/// A queue's type: its `type`, else its `x-queue-type` argument, else classic.
fn queue_type(q: &Queue) -> &str {
    q.kind
        .as_deref()
        .or_else(|| q.arguments.get("x-queue-type").and_then(Value::as_str))
        .unwrap_or("classic")
}

/// A queue's arguments without `x-queue-type`, which [`queue_type`] compares.
fn queue_arguments(q: &Queue) -> Map<String, Value> {
    let mut arguments = q.arguments.clone();
    arguments.remove("x-queue-type");
    arguments
}

fn same_queue(a: &Queue, b: &Queue) -> bool {
    queue_type(a) == queue_type(b)
        && a.durable.unwrap_or(true) == b.durable.unwrap_or(true)
        && queue_arguments(a) == queue_arguments(b)
}

fn same_policy(a: &Policy, b: &Policy) -> bool {
    a.pattern == b.pattern
        && a.apply_to == b.apply_to
        && a.priority == b.priority
        && a.definition == b.definition
}

/// `q` as a definition to create: its shape without what it holds or who consumes it.
fn bare(q: &Queue) -> Queue {
    Queue {
        vhost: q.vhost.clone(),
        name: q.name.clone(),
        kind: q.kind.clone(),
        durable: q.durable,
        auto_delete: q.auto_delete,
        arguments: q.arguments.clone(),
        ..Queue::default()
    }
}

/// ` in vhost V` where it is not `/`.
fn in_vhost(vhost: &str) -> String {
    if vhost == "/" {
        String::new()
    } else {
        format!(" in vhost {vhost}")
    }
}

fn exchange_detail(e: &Exchange) -> String {
    let mut shape = exchange_type(e).to_owned();
    if !e.arguments.is_empty() {
        shape.push_str(&format!(
            ", arguments {}",
            Value::Object(e.arguments.clone())
        ));
    }
    format!("exchange {} ({shape}){}", e.name, in_vhost(&e.vhost))
}

fn queue_detail(q: &Queue) -> String {
    let mut shape = queue_type(q).to_owned();
    if !q.durable.unwrap_or(true) {
        shape.push_str(", not durable");
    }
    let arguments = queue_arguments(q);
    if !arguments.is_empty() {
        shape.push_str(&format!(", arguments {}", Value::Object(arguments)));
    }
    format!("queue {} ({shape}){}", q.name, in_vhost(&q.vhost))
}

fn policy_detail(p: &Policy) -> String {
    format!(
        "policy {} (pattern {}, apply-to {}, priority {}, definition {}){}",
        p.name,
        p.pattern,
        p.apply_to,
        p.priority,
        Value::Object(p.definition.clone()),
        in_vhost(&p.vhost)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Binding;
    use serde_json::json;

    fn vhosts(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|v| (*v).to_owned()).collect()
    }

    fn root() -> BTreeSet<String> {
        vhosts(&["/"])
    }

    fn broker(queues: Vec<Queue>) -> Broker {
        Broker {
            id: "b".into(),
            queues: Some(queues),
            ..Broker::default()
        }
    }

    fn queue(vhost: &str, name: &str) -> Queue {
        Queue {
            vhost: vhost.into(),
            name: name.into(),
            ..Queue::default()
        }
    }

    fn exchange(vhost: &str, name: &str, kind: &str) -> Exchange {
        Exchange {
            vhost: vhost.into(),
            name: name.into(),
            kind: Some(kind.into()),
            ..Exchange::default()
        }
    }

    fn names(create: &[Definition]) -> Vec<String> {
        create.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn everything_the_new_broker_lacks_is_created_exchanges_first_and_policies_last() {
        let mut old = broker(vec![Queue {
            messages: 12,
            consumers: 2,
            consumed_by: vec!["esr-audit".into()],
            kind: Some("quorum".into()),
            ..queue("/", "esr.q")
        }]);
        old.exchanges = vec![exchange("/", "esr.events", "topic")];
        old.bindings = vec![Binding::to_queue("/", "esr.events", "esr.q", "a.#")];
        old.policies = vec![Policy {
            vhost: "/".into(),
            name: "ttl".into(),
            pattern: "^esr\\.".into(),
            ..Policy::default()
        }];
        let ready = prepare(&old, &broker(vec![]), &root());
        assert_eq!(
            names(&ready.create),
            [
                "exchange esr.events (topic)",
                "queue esr.q (quorum)",
                "binding esr.events -> esr.q (key a.#)",
                "policy ttl (pattern ^esr\\.)",
            ]
        );
        assert!(ready.conflicts.is_empty());
        let Definition::Queue(created) = &ready.create[1] else {
            panic!("the second definition is the queue");
        };
        assert_eq!(
            (
                created.messages,
                created.consumers,
                created.consumed_by.len()
            ),
            (0, 0, 0),
            "a created queue carries its shape, not what the old one holds"
        );
    }

    #[test]
    fn what_the_new_broker_has_already_is_not_created_again() {
        let mut old = broker(vec![queue("/", "q")]);
        old.exchanges = vec![exchange("/", "e", "fanout")];
        old.bindings = vec![Binding::to_queue("/", "e", "q", "")];
        let new = old.clone();
        assert_eq!(prepare(&old, &new, &root()), Preparation::default());
    }

    #[test]
    fn unknown_fields_compare_as_rabbitmq_defaults() {
        let mut old = broker(vec![queue("/", "q")]);
        old.exchanges = vec![Exchange {
            kind: None,
            ..exchange("/", "e", "")
        }];
        let mut new = broker(vec![Queue {
            kind: Some("classic".into()),
            durable: Some(true),
            ..queue("/", "q")
        }]);
        new.exchanges = vec![exchange("/", "e", "direct")];
        assert_eq!(prepare(&old, &new, &root()), Preparation::default());
    }

    #[test]
    fn a_queue_of_another_type_on_the_new_broker_is_a_conflict_naming_both() {
        let old = broker(vec![queue("/", "esr.q")]);
        let new = broker(vec![Queue {
            kind: Some("quorum".into()),
            ..queue("/", "esr.q")
        }]);
        let ready = prepare(&old, &new, &root());
        assert!(ready.create.is_empty());
        assert_eq!(
            ready
                .conflicts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["the old broker has queue esr.q (classic), the new broker has queue esr.q (quorum)"]
        );
    }

    #[test]
    fn a_queue_type_given_as_an_argument_is_the_same_type() {
        let old = broker(vec![Queue {
            arguments: json!({"x-queue-type": "quorum"})
                .as_object()
                .unwrap()
                .clone(),
            ..queue("/", "q")
        }]);
        let new = broker(vec![Queue {
            kind: Some("quorum".into()),
            ..queue("/", "q")
        }]);
        assert!(prepare(&old, &new, &root()).conflicts.is_empty());
    }

    #[test]
    fn other_arguments_durability_or_exchange_type_are_conflicts_too() {
        let args = |v: Value| v.as_object().unwrap().clone();
        let mut old = broker(vec![
            Queue {
                arguments: args(json!({"x-max-length": 10})),
                ..queue("/", "limited")
            },
            queue("/", "kept"),
        ]);
        old.exchanges = vec![exchange("/", "e", "topic")];
        let mut new = broker(vec![
            queue("/", "limited"),
            Queue {
                durable: Some(false),
                ..queue("/", "kept")
            },
        ]);
        new.exchanges = vec![exchange("/", "e", "fanout")];
        let ready = prepare(&old, &new, &root());
        let conflicts: Vec<String> = ready.conflicts.iter().map(ToString::to_string).collect();
        assert_eq!(
            conflicts,
            [
                "the old broker has exchange e (topic), the new broker has exchange e (fanout)",
                "the old broker has queue limited (classic, arguments {\"x-max-length\":10}), the new broker has queue limited (classic)",
                "the old broker has queue kept (classic), the new broker has queue kept (classic, not durable)",
            ]
        );
    }

    #[test]
    fn exchange_to_exchange_bindings_are_copied_and_builtin_exchanges_are_not() {
        let mut old = broker(vec![queue("/", "q")]);
        old.exchanges = vec![
            exchange("/", "amq.topic", "topic"),
            exchange("/", "a", "topic"),
            exchange("/", "b", "fanout"),
        ];
        old.bindings = vec![
            Binding::to_exchange("/", "a", "b", "x.#"),
            Binding::to_queue("/", "b", "q", ""),
            Binding::to_queue("/", "amq.topic", "q", "k"),
            Binding::to_queue("/", "", "q", "q"),
        ];
        let new = broker(vec![queue("/", "q")]);
        assert_eq!(
            names(&prepare(&old, &new, &root()).create),
            [
                "exchange a (topic)",
                "exchange b (fanout)",
                "binding a -> exchange b (key x.#)",
                "binding b -> q",
                "binding amq.topic -> q (key k)",
            ]
        );
    }

    #[test]
    fn an_exchange_the_new_brokers_bindings_name_exists_there() {
        let mut old = broker(vec![]);
        old.exchanges = vec![exchange("/", "e", "topic")];
        let mut new = broker(vec![queue("/", "q")]);
        new.bindings = vec![Binding::to_queue("/", "e", "q", "")];
        assert!(prepare(&old, &new, &root()).create.is_empty());
    }

    #[test]
    fn a_policy_is_created_when_missing_and_a_different_one_of_that_name_conflicts() {
        let policy = |name: &str, pattern: &str| Policy {
            vhost: "/".into(),
            name: name.into(),
            pattern: pattern.into(),
            apply_to: "queues".into(),
            ..Policy::default()
        };
        let mut old = broker(vec![]);
        old.policies = vec![
            policy("ttl", "^esr"),
            policy("dlx", "^esr"),
            policy("ha", ".*"),
        ];
        let mut new = broker(vec![]);
        new.policies = vec![policy("ttl", "^esr"), policy("dlx", "^other")];
        let ready = prepare(&old, &new, &root());
        assert_eq!(names(&ready.create), ["policy ha (pattern .*)"]);
        assert_eq!(
            ready.conflicts[0].to_string(),
            "the old broker has policy dlx (pattern ^esr, apply-to queues, priority 0, definition {}), the new broker has policy dlx (pattern ^other, apply-to queues, priority 0, definition {})"
        );
    }

    #[test]
    fn only_the_vhosts_asked_for_are_prepared() {
        let mut old = broker(vec![
            queue("/", "a"),
            queue("esr", "b"),
            queue("other", "c"),
        ]);
        old.exchanges = vec![exchange("other", "e", "topic")];
        old.bindings = vec![Binding::to_queue("other", "e", "c", "")];
        let ready = prepare(&old, &broker(vec![]), &vhosts(&["esr"]));
        assert_eq!(names(&ready.create), ["queue b (classic) in vhost esr"]);
    }

    #[test]
    fn an_unknown_topology_on_either_side_gives_nothing_to_do() {
        let known = broker(vec![queue("/", "q")]);
        let unknown = Broker {
            id: "b".into(),
            ..Broker::default()
        };
        assert_eq!(prepare(&unknown, &known, &root()), Preparation::default());
        assert_eq!(prepare(&known, &unknown, &root()), Preparation::default());
    }

    #[test]
    fn a_service_needs_its_exchanges_and_queues_and_their_bindings() {
        let mut old = broker(vec![
            queue("/", "in"),
            queue("/", "out"),
            queue("/", "else"),
        ]);
        old.exchanges = vec![
            exchange("/", "events", "topic"),
            exchange("/", "amq.topic", "topic"),
        ];
        old.bindings = vec![
            Binding::to_queue("/", "events", "out", "#"),
            Binding::to_queue("/", "amq.topic", "in", "k"),
            Binding::to_queue("/", "other", "else", ""),
        ];
        let needs = needs(
            &old,
            &["events".to_owned(), "amq.topic".to_owned()],
            &["in".to_owned()],
        );
        assert_eq!(
            names(&needs),
            [
                "exchange events (topic)",
                "queue in (classic)",
                "binding events -> out (key #)",
                "binding amq.topic -> in (key k)",
            ]
        );
    }

    #[test]
    fn missing_names_what_the_new_broker_lacks_of_what_a_service_needs() {
        let mut new = broker(vec![queue("/", "q")]);
        new.bindings = vec![Binding::to_queue("/", "e", "q", "")];
        let needs = [
            Definition::Exchange(exchange("/", "e", "topic")),
            Definition::Exchange(exchange("/", "amq.topic", "topic")),
            Definition::Exchange(exchange("/", "gone", "topic")),
            Definition::Queue(queue("/", "q")),
            Definition::Queue(queue("/", "r")),
            Definition::Binding(Binding::to_queue("/", "e", "q", "")),
            Definition::Binding(Binding::to_queue("/", "e", "q", "other")),
        ];
        assert_eq!(
            missing(&new, &needs),
            [
                "exchange gone (topic)",
                "queue r (classic)",
                "binding e -> q (key other)"
            ]
        );
    }

    /// A headers exchange routes by its bindings' arguments: the same source, destination and
    /// key with other arguments is another binding, and is created.
    #[test]
    fn a_binding_with_other_arguments_is_another_binding() {
        let mut all = serde_json::Map::new();
        all.insert("x-match".into(), json!("all"));
        all.insert("region".into(), json!("eu"));
        let mut old = Broker {
            queues: Some(vec![Queue {
                vhost: "/".into(),
                name: "q".into(),
                ..Queue::default()
            }]),
            ..Broker::default()
        };
        old.exchanges = vec![Exchange {
            vhost: "/".into(),
            name: "h".into(),
            kind: Some("headers".into()),
            ..Exchange::default()
        }];
        let mut new = old.clone();
        old.bindings = vec![Binding::to_queue("/", "h", "q", "").with_arguments(all)];
        new.bindings = vec![Binding::to_queue("/", "h", "q", "")];
        let prep = prepare(&old, &new, &vhosts(&["/"]));
        assert_eq!(
            prep.create,
            vec![Definition::Binding(old.bindings[0].clone())],
            "{prep:?}"
        );
    }
}
