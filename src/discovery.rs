//! Which service points at which broker, and through what.
//!
//! A value points at a broker when it names one of the broker's hosts *as a host* (see
//! [`crate::host`] for the forms read). Everything here is a pure function of plain data.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::config::{BrokerAlias, BrokerSelector, BrokerSpec, Config};
use crate::host::{self, Reading, Source};
pub use crate::host::{hosts_in, mask_password, same_host, HostRef};
pub use crate::model::REDACTED;
use crate::model::{Broker, TaskDefinition, World};

/// A broker as the plan sees it: where it is in the world (if anywhere) and which hosts are its.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedBroker {
    pub alias: BrokerAlias,
    /// Amazon MQ id, or the first endpoint's host for a broker given by `endpoints`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub endpoints: Vec<String>,
    /// Endpoint hosts and aliases, lower-cased: a value naming any of them points at the broker.
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp_url_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_url_env: Option<String>,
    /// The variable holding the URL the new broker reaches the old one by, for federation
    /// (`upstream_url_env` of `[brokers.old]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_url_env: Option<String>,
    /// The broker's management console URL (Amazon MQ's `ConsoleURL`), where the state has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

#[cfg(test)]
impl ResolvedBroker {
    /// Broker `id` at `amqps://host:5671`, for unit tests.
    pub(crate) fn at(alias: BrokerAlias, id: &str, host: &str) -> ResolvedBroker {
        ResolvedBroker {
            alias,
            id: id.into(),
            name: None,
            endpoints: vec![format!("amqps://{host}:5671")],
            hosts: vec![host.into()],
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: None,
        }
    }
}

impl ResolvedBroker {
    /// Where this broker's queues, bindings and connections come from, for the messages that
    /// say they are unknown: on AWS and in a rehearsal alike, warren reads them from the
    /// management API (whose URL the plan's `management_url_env` names) unless a world file
    /// lists them.
    #[must_use]
    pub fn topology_source(&self) -> String {
        match &self.management_url_env {
            Some(var) => format!(
                "warren reads them from its management API at the URL in {var}, or from a world file that lists them"
            ),
            None => "the plan names no management_url_env for it, and no world file lists them"
                .to_owned(),
        }
    }

    /// Whether `host` (any case, with or without the trailing dot of a fully qualified name, an
    /// IPv6 address in any spelling) is one of this broker's hosts.
    #[must_use]
    pub fn owns_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| same_host(h, host))
    }

    /// Whether `value` names one of this broker's hosts as a host.
    #[must_use]
    pub fn named_in(&self, value: &str) -> bool {
        self.mentioned_in(value) && host::names_host(value, Reading::Value, |h| self.owns_host(h))
    }

    /// Whether `value` holds one of this broker's hosts as text, in any case: one that does not
    /// cannot name the broker. An IPv6 host, which has many spellings, is always taken as held.
    fn mentioned_in(&self, value: &str) -> bool {
        self.hosts
            .iter()
            .any(|h| h.contains(':') || host::mentions(value, h.strip_suffix('.').unwrap_or(h)))
    }

    /// Whether a container field other than a variable (`command`, `entryPoint`, a label…)
    /// names one of this broker's hosts, read word by word as [`Reading::Words`] says.
    #[must_use]
    pub fn named_in_field(&self, value: &str) -> bool {
        self.mentioned_in(value) && host::names_host(value, Reading::Words, |h| self.owns_host(h))
    }

    /// The broker's entry in `world`, if it has one.
    #[must_use]
    pub fn in_world<'w>(&self, world: &'w World) -> Option<&'w Broker> {
        self.index_in(world).map(|i| &world.brokers[i])
    }

    /// Where the broker's entry stands in `world.brokers`: the one with its id, else the one
    /// that has one of its hosts.
    #[must_use]
    pub fn index_in(&self, world: &World) -> Option<usize> {
        world
            .brokers
            .iter()
            .position(|b| b.id == self.id)
            .or_else(|| {
                world.brokers.iter().position(|b| {
                    b.endpoints
                        .iter()
                        .flat_map(|e| hosts_in(e))
                        .any(|h| self.owns_host(&h))
                })
            })
    }

    /// This broker as the side a value is moved off.
    fn source(&self) -> Source<'_> {
        Source {
            hosts: &self.hosts,
            endpoints: &self.endpoints,
        }
    }

    /// The endpoint a value moved onto this broker is written with: its first.
    fn target(&self) -> &str {
        self.endpoints.first().map_or("", String::as_str)
    }
}

/// The world's broker that `selector` names.
#[must_use]
pub fn find_broker<'w>(world: &'w World, selector: &BrokerSelector) -> Option<&'w Broker> {
    selector.find_in(world)
}

/// Resolves a plan's broker against the world: its id, endpoints and hosts.
#[must_use]
pub fn resolve_broker(spec: &BrokerSpec, world: &World) -> ResolvedBroker {
    let found = find_broker(world, &spec.selector);
    let endpoints = match (&spec.selector, found) {
        (BrokerSelector::Endpoints(endpoints), _) => endpoints.clone(),
        (_, Some(broker)) => broker.endpoints.clone(),
        (_, None) => Vec::new(),
    };
    let id = match (&spec.selector, found) {
        (BrokerSelector::Endpoints(endpoints), _) => {
            hosts_in(endpoints.first().map_or("", String::as_str))
                .into_iter()
                .next()
                .unwrap_or_default()
        }
        (_, Some(broker)) => broker.id.clone(),
        (BrokerSelector::Id(id), None) => id.clone(),
        (BrokerSelector::Name(name), None) => name.clone(),
    };
    let mut hosts: Vec<String> = endpoints.iter().flat_map(|e| hosts_in(e)).collect();
    hosts.extend(spec.aliases.iter().map(|a| a.trim().to_ascii_lowercase()));
    let mut seen = BTreeSet::new();
    hosts.retain(|h| seen.insert(h.clone()));
    ResolvedBroker {
        alias: spec.alias,
        id,
        name: found.and_then(|b| b.name.clone()),
        // A plan is printed and saved: an endpoint's password never goes with it.
        endpoints: endpoints.iter().map(|e| mask_password(e)).collect(),
        hosts,
        amqp_url_env: spec.amqp_url_env.clone(),
        management_url_env: spec.management_url_env.clone(),
        upstream_url_env: spec.upstream_url_env.clone(),
        console_url: found.and_then(|b| b.console_url.as_deref().map(mask_password)),
    }
}

/// `value` with every item that names `from` pointed at `to` instead: the host replaced by
/// `to`'s first endpoint host and, where the item carries `from`'s scheme or port and `to`'s
/// differ, those too (see [`host::rewrite`]). Returns `None` when no item names `from`.
#[must_use]
pub fn rewrite(value: &str, from: &ResolvedBroker, to: &ResolvedBroker) -> Option<String> {
    host::rewrite(value, from.source(), to.target(), Reading::Value)
}

/// [`rewrite`] of a container field other than a variable (`command`, `entryPoint`, a label…),
/// read word by word as [`Reading::Words`] says.
#[must_use]
pub fn rewrite_field(value: &str, from: &ResolvedBroker, to: &ResolvedBroker) -> Option<String> {
    host::rewrite(value, from.source(), to.target(), Reading::Words)
}

/// How a container reaches a broker host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// An environment variable holds the host.
    Variable { name: String },
    /// A secret (injected as variable `name`) reads the host from SSM parameter `parameter`
    /// (or from Secrets Manager, when `parameter` is a secret's ARN).
    Parameter { name: String, parameter: String },
    /// Another string field of the container holds the host: `path` says where, as
    /// [`crate::model::Container::fields`] writes it (`command[1]`, `dockerLabels.broker`).
    Field { path: String },
    /// Variable `name` of env file `file` (an S3 object ARN) holds the host.
    EnvFile { name: String, file: String },
}

impl Via {
    /// The variable the container sees, or the path of the field.
    #[must_use]
    pub fn variable(&self) -> &str {
        match self {
            Via::Variable { name } | Via::Parameter { name, .. } | Via::EnvFile { name, .. } => {
                name
            }
            Via::Field { path } => path,
        }
    }
}

/// One place where a task definition points at a broker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pointer {
    pub container: String,
    pub via: Via,
    pub broker: BrokerAlias,
    /// The value that names the broker (for a parameter, the parameter's value).
    pub value: String,
}

/// Which of the two brokers a service points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Old,
    New,
    Split,
    Neither,
}

impl Placement {
    /// The placement of a set of pointers.
    #[must_use]
    pub fn of(pointers: &[Pointer]) -> Placement {
        let old = pointers.iter().any(|p| p.broker == BrokerAlias::Old);
        let new = pointers.iter().any(|p| p.broker == BrokerAlias::New);
        match (old, new) {
            (true, true) => Placement::Split,
            (true, false) => Placement::Old,
            (false, true) => Placement::New,
            (false, false) => Placement::Neither,
        }
    }

    /// Whether any container points at `alias`.
    #[must_use]
    pub fn touches(self, alias: BrokerAlias) -> bool {
        matches!(
            (self, alias),
            (Placement::Split, _)
                | (Placement::Old, BrokerAlias::Old)
                | (Placement::New, BrokerAlias::New)
        )
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Placement::Old => "old",
            Placement::New => "new",
            Placement::Split => "split",
            Placement::Neither => "neither",
        })
    }
}

/// What discovery could not look into, for the plan's warnings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Uninspected {
    /// A Secrets Manager secret: its value is not read (`reason` says why, where known).
    SecretsManager {
        container: String,
        name: String,
        arn: String,
        reason: Option<String>,
    },
    /// An env file that could not be read, or a variable of it whose value is redacted.
    EnvFile {
        container: String,
        file: String,
        reason: String,
    },
    /// An SSM parameter the state does not have.
    MissingParameter {
        container: String,
        name: String,
        parameter: String,
    },
    /// A value written as [`REDACTED`] (a secret a snapshot did not keep): the parameter it
    /// came from, or `None` for an env variable.
    Redacted {
        container: String,
        name: String,
        parameter: Option<String>,
    },
}

/// Whether a secret's `valueFrom` is a Secrets Manager ARN.
#[must_use]
pub fn is_secrets_manager(value_from: &str) -> bool {
    value_from.starts_with("arn:aws:secretsmanager:")
}

/// The name of an SSM parameter given by ARN, or the name itself. A hierarchical name keeps
/// its leading slash (`arn:aws:ssm:r:a:parameter/x/y` → `/x/y`); a flat one has none
/// (`…:parameter/x` → `x`), as SSM writes their ARNs.
#[must_use]
pub fn parameter_name(reference: &str) -> String {
    match reference.strip_prefix("arn:") {
        Some(rest) if rest.contains(":ssm:") => match reference.find(":parameter/") {
            Some(i) => {
                let name = &reference[i + ":parameter/".len()..];
                if name.contains('/') {
                    format!("/{name}")
                } else {
                    name.to_owned()
                }
            }
            None => reference.to_owned(),
        },
        // Any other ARN (a Secrets Manager secret) is its own name, and so is a name.
        _ => reference.to_owned(),
    }
}

/// Whether two parameter references (ARN or name) name the same parameter.
#[must_use]
pub fn same_parameter(a: &str, b: &str) -> bool {
    a == b || parameter_name(a) == parameter_name(b)
}

/// The value of parameter `reference` (ARN or name) in `world`.
#[must_use]
pub fn parameter_value<'w>(world: &'w World, reference: &str) -> Option<&'w String> {
    world.parameters.get(reference).or_else(|| {
        world
            .parameters
            .iter()
            .find(|(k, _)| same_parameter(k, reference))
            .map(|(_, v)| v)
    })
}

/// Every place `td` points at `old` or `new`, and what could not be inspected.
///
/// With `only` set, only variables (and secrets) of those names are searched: `only` (the
/// plan's `broker_env`) names variables, so a container's other fields (`command`,
/// `entryPoint`, labels…) are searched only when it is `None`.
#[must_use]
pub fn pointers(
    world: &World,
    td: &TaskDefinition,
    brokers: [&ResolvedBroker; 2],
    only: Option<&[String]>,
) -> (Vec<Pointer>, Vec<Uninspected>) {
    let wanted = |name: &str| only.is_none_or(|names| names.iter().any(|n| n == name));
    let mut found = Vec::new();
    let mut uninspected = Vec::new();
    for container in &td.containers {
        for (name, value) in &container.environment {
            if !wanted(name) {
                continue;
            }
            if value == REDACTED {
                uninspected.push(Uninspected::Redacted {
                    container: container.name.clone(),
                    name: name.to_owned(),
                    parameter: None,
                });
                continue;
            }
            point_at(
                &mut found,
                &container.name,
                brokers,
                value,
                Reading::Value,
                || Via::Variable {
                    name: name.to_owned(),
                },
            );
        }
        for (name, value_from) in &container.secrets {
            if !wanted(name) {
                continue;
            }
            // A secret is inspected when the state holds its value: SSM parameters always,
            // Secrets Manager secrets only where the state carries them (a rehearsal world can).
            let looked_up = secret_value(world, value_from)
                .or_else(|| parameter_value(world, value_from).map(|v| Ok(v.clone())));
            let value = match looked_up {
                Some(Ok(value)) => value,
                Some(Err(reason)) => {
                    uninspected.push(Uninspected::SecretsManager {
                        container: container.name.clone(),
                        name: name.clone(),
                        arn: value_from.clone(),
                        reason: Some(reason),
                    });
                    continue;
                }
                None => {
                    uninspected.push(if is_secrets_manager(value_from) {
                        Uninspected::SecretsManager {
                            container: container.name.clone(),
                            name: name.clone(),
                            arn: value_from.clone(),
                            reason: world.unread.get(value_from).cloned(),
                        }
                    } else {
                        Uninspected::MissingParameter {
                            container: container.name.clone(),
                            name: name.clone(),
                            parameter: value_from.clone(),
                        }
                    });
                    continue;
                }
            };
            if value == REDACTED {
                uninspected.push(Uninspected::Redacted {
                    container: container.name.clone(),
                    name: name.clone(),
                    parameter: Some(value_from.clone()),
                });
                continue;
            }
            point_at(
                &mut found,
                &container.name,
                brokers,
                &value,
                Reading::Value,
                || Via::Parameter {
                    name: name.clone(),
                    parameter: value_from.clone(),
                },
            );
        }
        if only.is_none() {
            field_pointers(container, brokers, &mut found, &mut uninspected);
        }
        env_file_pointers(
            world,
            container,
            brokers,
            &wanted,
            &mut found,
            &mut uninspected,
        );
    }
    (found, uninspected)
}

/// Where the string fields of `container` beside its variables and secrets (`command`,
/// `entryPoint`, labels, a health check's command…) point at either broker.
fn field_pointers(
    container: &crate::model::Container,
    brokers: [&ResolvedBroker; 2],
    found: &mut Vec<Pointer>,
    uninspected: &mut Vec<Uninspected>,
) {
    for (path, value) in container.fields() {
        if value == REDACTED {
            uninspected.push(Uninspected::Redacted {
                container: container.name.clone(),
                name: path,
                parameter: None,
            });
            continue;
        }
        point_at(
            found,
            &container.name,
            brokers,
            value,
            Reading::Words,
            || Via::Field { path: path.clone() },
        );
    }
}

/// Adds a pointer, through `via`, for each of `brokers` that `value` names.
fn point_at(
    found: &mut Vec<Pointer>,
    container: &str,
    brokers: [&ResolvedBroker; 2],
    value: &str,
    reading: Reading,
    via: impl Fn() -> Via,
) {
    for broker in brokers {
        let named = match reading {
            Reading::Value => broker.named_in(value),
            Reading::Words => broker.named_in_field(value),
        };
        if named {
            found.push(Pointer {
                container: container.to_owned(),
                via: via(),
                broker: broker.alias,
                value: value.to_owned(),
            });
        }
    }
}

/// The value a Secrets Manager `valueFrom` gives its container, where the state has the
/// secret: `None` when `value_from` is no such reference, or the state has neither it nor its
/// secret (then it is unread); `Err` with the reason when the secret's value lacks the JSON key
/// the reference names.
///
/// The state holds either the value of the reference itself (the AWS backend reads each
/// reference's part) or the whole value of the secret by its ARN (a rehearsal world can), from
/// which the reference's JSON key is taken.
fn secret_value(world: &World, value_from: &str) -> Option<Result<String, String>> {
    let reference = crate::sources::SecretRef::parse(value_from)?;
    if let Some(value) = world.parameters.get(value_from) {
        return Some(Ok(value.clone()));
    }
    let whole = world.parameters.get(reference.arn).or_else(|| {
        world
            .parameters
            .iter()
            .find(|(k, _)| {
                crate::sources::SecretRef::parse(k).is_some_and(|r| {
                    r.json_key.is_none() && r.partial_arn() == reference.partial_arn()
                })
            })
            .map(|(_, v)| v)
    })?;
    if whole == REDACTED {
        return Some(Ok(REDACTED.to_owned()));
    }
    Some(crate::sources::secret_part(whole, reference.json_key))
}

/// Where `container`'s env files point at `brokers`, and which could not be read. A variable
/// the container's `environment` also sets is not looked at: ECS gives the container the
/// `environment` value.
fn env_file_pointers(
    world: &World,
    container: &crate::model::Container,
    brokers: [&ResolvedBroker; 2],
    wanted: &dyn Fn(&str) -> bool,
    found: &mut Vec<Pointer>,
    uninspected: &mut Vec<Uninspected>,
) {
    for file in &container.environment_files {
        let Some(text) = world.env_files.get(&file.value) else {
            uninspected.push(Uninspected::EnvFile {
                container: container.name.clone(),
                file: file.value.clone(),
                reason: world.unread.get(&file.value).map_or_else(
                    || "it is not in the state".to_owned(),
                    |why| format!("it could not be read: {why}"),
                ),
            });
            continue;
        };
        for (name, value) in crate::sources::env_file_variables(text) {
            if !wanted(&name) || container.environment.contains_key(&name) {
                continue;
            }
            if value == REDACTED {
                uninspected.push(Uninspected::EnvFile {
                    container: container.name.clone(),
                    file: file.value.clone(),
                    reason: format!("its {name} is redacted ({REDACTED})"),
                });
                continue;
            }
            point_at(
                found,
                &container.name,
                brokers,
                &value,
                Reading::Value,
                || Via::EnvFile {
                    name: name.clone(),
                    file: file.value.clone(),
                },
            );
        }
    }
}

/// Resolves both brokers of `config` against `world`.
#[must_use]
pub fn resolve_brokers(config: &Config, world: &World) -> [ResolvedBroker; 2] {
    [
        resolve_broker(&config.old, world),
        resolve_broker(&config.new, world),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(alias: BrokerAlias, endpoints: &[&str]) -> ResolvedBroker {
        let endpoints: Vec<String> = endpoints.iter().map(|s| (*s).to_owned()).collect();
        ResolvedBroker {
            alias,
            id: "b".into(),
            name: None,
            hosts: endpoints.iter().flat_map(|e| hosts_in(e)).collect(),
            endpoints,
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: None,
        }
    }

    const OLD: &str = "b-1111.mq.eu-west-2.amazonaws.com";

    #[test]
    fn matches_hosts_in_every_shape() {
        let old = broker(
            BrokerAlias::Old,
            &["amqps://b-1111.mq.eu-west-2.amazonaws.com:5671"],
        );
        for value in [
            OLD.to_owned(),
            OLD.to_uppercase(),
            format!("{OLD}:5671"),
            format!("amqps://{OLD}:5671"),
            format!("amqp://{OLD}"),
            format!("amqps://user:p%40ss@{OLD}:5671/esr"),
            format!("AMQPS://{}:5671/%2f", OLD.to_uppercase()),
            format!("other.example.com, {OLD}:5671"),
            format!("{OLD},other"),
        ] {
            assert!(old.named_in(&value), "{value} should name the old broker");
        }
        for value in [
            format!("x{OLD}"),
            format!("{OLD}x"),
            format!("amqps://x{OLD}:5671"),
            format!("see {OLD} for details"),
            format!("https://example.com/{OLD}"),
            format!("{OLD}.evil.com"),
            String::new(),
        ] {
            assert!(
                !old.named_in(&value),
                "{value} should not name the old broker"
            );
        }
    }

    /// `host.` is the same host as `host` (a fully qualified name); a rewrite keeps the dot.
    #[test]
    fn a_host_with_a_trailing_dot_is_the_same_host() {
        let old = broker(
            BrokerAlias::Old,
            &["amqps://b-1111.mq.eu-west-2.amazonaws.com:5671"],
        );
        for value in [
            format!("{OLD}."),
            format!("{OLD}.:5671"),
            format!("amqps://user:pw@{OLD}.:5671/esr"),
            format!("other.example.com, {OLD}."),
        ] {
            assert!(old.named_in(&value), "{value} should name the old broker");
        }
        assert!(!old.named_in(&format!("{OLD}..")));
        let dotted = broker(BrokerAlias::Old, &["amqps://old.mq.:5671"]);
        assert!(
            dotted.named_in("old.mq"),
            "the dot on the broker's side too"
        );
        let new = broker(BrokerAlias::New, &["amqps://new.mq:5671"]);
        assert_eq!(
            rewrite("amqps://u:pw@old.mq.:5671", &dotted, &new).as_deref(),
            Some("amqps://u:pw@new.mq.:5671")
        );
        assert_eq!(rewrite("old.mq", &dotted, &new).as_deref(), Some("new.mq"));
    }

    #[test]
    fn rewrites_host_scheme_and_port_only() {
        let old = broker(BrokerAlias::Old, &["amqps://old.mq:5671"]);
        let new = broker(BrokerAlias::New, &["amqp://new.internal:5672"]);
        assert_eq!(
            rewrite("old.mq", &old, &new).as_deref(),
            Some("new.internal")
        );
        assert_eq!(
            rewrite("OLD.MQ:5671", &old, &new).as_deref(),
            Some("new.internal:5672")
        );
        assert_eq!(
            rewrite("amqps://u:pw@old.mq:5671/esr?heartbeat=10", &old, &new).as_deref(),
            Some("amqp://u:pw@new.internal:5672/esr?heartbeat=10")
        );
        assert_eq!(
            rewrite("https://old.mq:443", &old, &new).as_deref(),
            Some("https://new.internal:443"),
            "a scheme and port the old endpoint does not use stay"
        );
        assert_eq!(rewrite("other.host", &old, &new), None);
        assert_eq!(
            rewrite("a.host, old.mq:5671", &old, &new).as_deref(),
            Some("a.host, new.internal:5672")
        );
    }

    #[test]
    fn rewrite_keeps_one_of_items_that_become_equal() {
        let old = broker(
            BrokerAlias::Old,
            &["amqps://old-a.mq:5671", "amqps://old-b.mq:5671"],
        );
        let new = broker(BrokerAlias::New, &["amqps://new.mq:5671"]);
        assert_eq!(
            rewrite("old-a.mq:5671,old-b.mq:5671", &old, &new).as_deref(),
            Some("new.mq:5671")
        );
    }

    #[test]
    fn the_host_follows_the_last_at_of_a_url() {
        let old = broker(BrokerAlias::Old, &["amqps://old.mq:5671"]);
        for value in [
            "amqps://user:pa/ss@old.mq:5671",
            "amqps://user:pa#ss@OLD.MQ:5671/esr",
            "amqps://user:pa?ss@old.mq",
            "amqps://user:1234/ss@old.mq:5671/%2F",
            "amqps://user:pa@ss@old.mq:5671",
        ] {
            assert!(old.named_in(value), "{value} names old.mq");
            assert_eq!(hosts_in(value), vec!["old.mq".to_owned()], "{value}");
        }
        let new = broker(BrokerAlias::New, &["amqps://new.mq:5671"]);
        assert_eq!(
            rewrite("amqps://u:pa/ss@old.mq:5671/esr", &old, &new).as_deref(),
            Some("amqps://u:pa/ss@new.mq:5671/esr")
        );
    }

    #[test]
    fn parameter_names_from_arns() {
        assert_eq!(
            parameter_name("arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host"),
            "/esr/rabbit/host"
        );
        assert_eq!(parameter_name("/esr/rabbit/host"), "/esr/rabbit/host");
        assert_eq!(parameter_name("esr-host"), "esr-host");
        assert_eq!(
            parameter_name("arn:aws:ssm:eu-west-2:1:parameter/esr-host"),
            "esr-host"
        );
        assert!(same_parameter(
            "arn:aws:ssm:eu-west-2:1:parameter/esr-host",
            "esr-host"
        ));
        let secret = "arn:aws:secretsmanager:eu-west-2:1:secret:esr/db-Xk3f9Q";
        assert_eq!(parameter_name(secret), secret);
        assert!(same_parameter(
            "arn:aws:ssm:eu-west-2:1:parameter/a/b",
            "/a/b"
        ));
        assert!(!same_parameter("/a/b", "/a/c"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn label() -> impl proptest::strategy::Strategy<Value = String> {
            "[a-z][a-z0-9-]{0,8}"
        }

        fn host() -> impl proptest::strategy::Strategy<Value = String> {
            proptest::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
        }

        proptest! {
            #[test]
            fn a_host_is_found_in_every_url_shape(
                h in host(),
                port in proptest::option::of(1u16..),
                user in proptest::option::of(("[a-z]{1,6}", "[a-zA-Z0-9]{1,8}")),
                vhost in proptest::option::of("[a-z]{0,6}"),
                upper in any::<bool>(),
            ) {
                let b = broker(BrokerAlias::Old, &[&format!("amqps://{h}:5671")]);
                let shown = if upper { h.to_uppercase() } else { h.clone() };
                let mut url = "amqps://".to_owned();
                if let Some((u, p)) = &user { url.push_str(&format!("{u}:{p}@")); }
                url.push_str(&shown);
                if let Some(port) = port { url.push_str(&format!(":{port}")); }
                if let Some(v) = &vhost { url.push_str(&format!("/{v}")); }
                prop_assert!(b.named_in(&url));
                prop_assert!(b.named_in(&shown));
                let listed = format!("other.example, {url}");
                prop_assert!(b.named_in(&listed));
            }

            #[test]
            fn a_host_is_never_matched_as_a_substring(
                h in host(),
                prefix in "[a-z0-9]{1,4}",
                suffix in "[a-z0-9.]{1,4}",
            ) {
                let b = broker(BrokerAlias::Old, &[&format!("amqps://{h}:5671")]);
                let prefixed = format!("{prefix}{h}");
                let suffixed = format!("{h}{suffix}");
                let url = format!("amqps://{prefixed}:5671");
                prop_assert!(!b.named_in(&prefixed));
                // `host.` is the host itself, fully qualified; anything else longer is not.
                prop_assert!(suffix == "." || !b.named_in(&suffixed));
                prop_assert!(!b.named_in(&url));
            }

            #[test]
            fn rewriting_changes_only_the_host(
                h in host(),
                user in "[a-z]{1,6}",
                pass in "[a-zA-Z0-9]{1,8}",
                vhost in "[a-z]{0,6}",
            ) {
                let old = broker(BrokerAlias::Old, &[&format!("amqps://{h}:5671")]);
                let new = broker(BrokerAlias::New, &["amqps://new.example:5671"]);
                prop_assume!(!new.owns_host(&h));
                let value = format!("amqps://{user}:{pass}@{h}:5671/{vhost}");
                let rewritten = rewrite(&value, &old, &new).unwrap();
                prop_assert_eq!(rewritten, format!("amqps://{user}:{pass}@new.example:5671/{vhost}"));
            }
        }
    }
}
