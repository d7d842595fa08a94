//! Which service a broker client is: a connection (or a consumer the broker names) matched to
//! the ECS service it comes from, so that `status`, `decommission` and `plan` can say "from
//! esr-batch/esr-dataexport" instead of a bare connection name.
//!
//! A client names a service when its connection name is the service's name, its
//! `cluster/service`, or either followed by a separator and more (`esr-dataexport-7f3c`,
//! `esr-dataexport@10.0.1.7`): Spring and most client libraries name connections after the
//! application, often with an instance suffix. Of several services that match, the longest
//! name wins (`esr-dataexport-worker` is the service `esr-dataexport-worker`, not
//! `esr-dataexport`). A connection whose name names no service is the service's whose running
//! task has its peer address, where the state knows task addresses.

use std::collections::{BTreeMap, BTreeSet};

use crate::host::{same_host, HostRef};
use crate::model::{Connection, Task, World};

/// What may follow a service's name in a connection name that still names it.
const SEPARATORS: [char; 6] = ['-', '.', ':', '/', ' ', '@'];

/// How well `client` names the service `cluster/service`: the length of the matched name, or
/// `None` when it does not name it.
fn match_length(client: &str, cluster: &str, service: &str) -> Option<usize> {
    let id = format!("{cluster}/{service}");
    let names = |name: &str| {
        !name.is_empty()
            && client
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(SEPARATORS))
    };
    if names(&id) {
        Some(id.len())
    } else if names(service) {
        Some(service.len())
    } else {
        None
    }
}

/// Whether `client` (a connection name) names the service `cluster/service` by the rules above,
/// leaving aside other services that may match better.
#[must_use]
pub fn names_service(client: &str, cluster: &str, service: &str) -> bool {
    match_length(client, cluster, service).is_some()
}

/// The host of a connection's peer (`10.0.1.7:5123`, `[fd00::7]:5123`).
fn peer_host(peer: &str) -> Option<&str> {
    let parsed = HostRef::parse(peer.trim())?;
    Some(&peer.trim()[parsed.host])
}

/// The services of a world, for matching their clients.
#[derive(Debug, Clone)]
pub struct Clients {
    services: Vec<Known>,
}

#[derive(Debug, Clone)]
struct Known {
    cluster: String,
    service: String,
    addresses: Vec<String>,
}

impl Known {
    fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

impl Clients {
    /// Every service of every cluster of `world`.
    #[must_use]
    pub fn of(world: &World) -> Clients {
        Clients {
            services: world
                .clusters
                .iter()
                .flat_map(|c| {
                    c.services.iter().map(|s| Known {
                        cluster: c.name.clone(),
                        service: s.name.clone(),
                        addresses: s.tasks.iter().map(|t| t.address.clone()).collect(),
                    })
                })
                .collect(),
        }
    }

    /// The services (`cluster/service`, sorted) whose name a connection name gives: the best
    /// match, or several where they match equally well (one name in two clusters).
    #[must_use]
    pub fn named_by(&self, client: &str) -> Vec<String> {
        let matches: Vec<(usize, String)> = self
            .services
            .iter()
            .filter_map(|k| match_length(client, &k.cluster, &k.service).map(|n| (n, k.id())))
            .collect();
        let Some(best) = matches.iter().map(|(n, _)| *n).max() else {
            return Vec::new();
        };
        let ids: BTreeSet<String> = matches
            .into_iter()
            .filter(|(n, _)| *n == best)
            .map(|(_, id)| id)
            .collect();
        ids.into_iter().collect()
    }

    /// The services (`cluster/service`, sorted) that `connection` comes from: by its name, else
    /// by a running task with its peer address. Empty when it is nobody's the state knows.
    #[must_use]
    pub fn owners(&self, connection: &Connection) -> Vec<String> {
        let named = self.named_by(&connection.client);
        if !named.is_empty() {
            return named;
        }
        let Some(host) = peer_host(&connection.peer) else {
            return Vec::new();
        };
        let ids: BTreeSet<String> = self
            .services
            .iter()
            .filter(|k| k.addresses.iter().any(|a| same_host(a, host)))
            .map(Known::id)
            .collect();
        ids.into_iter().collect()
    }

    /// The services (`cluster/service`, sorted) behind a consumer the broker names by its
    /// connection name `client`: the services that name gives, and those of the connections
    /// in `connections` with that name (by their peer addresses).
    #[must_use]
    pub fn consumer(&self, client: &str, connections: &[Connection]) -> Vec<String> {
        let named = self.named_by(client);
        if !named.is_empty() {
            return named;
        }
        let ids: BTreeSet<String> = connections
            .iter()
            .filter(|c| !client.is_empty() && c.client == client)
            .flat_map(|c| self.owners(c))
            .collect();
        ids.into_iter().collect()
    }

    /// `connection` for people, as [`describe`] says, with the services it comes from.
    #[must_use]
    pub fn describe(&self, connection: &Connection) -> String {
        describe(connection, &self.owners(connection))
    }
}

/// The services (`(cluster, service)`) of `world`'s `clusters` (every cluster where `None`)
/// whose running tasks' addresses are worth reading: those whose tasks the state does not hold
/// yet, and only when one of `connections` has a name that names no service, so that only its
/// peer address can tell whose it is. Empty when every connection is named.
#[must_use]
pub fn services_to_locate(
    world: &World,
    connections: &[Connection],
    clusters: Option<&[String]>,
) -> Vec<(String, String)> {
    let clients = Clients::of(world);
    if connections
        .iter()
        .all(|c| !clients.named_by(&c.client).is_empty())
    {
        return Vec::new();
    }
    world
        .clusters
        .iter()
        .filter(|c| clusters.is_none_or(|wanted| wanted.contains(&c.name)))
        .flat_map(|c| {
            c.services
                .iter()
                .filter(|s| s.tasks.is_empty())
                .map(|s| (c.name.clone(), s.name.clone()))
        })
        .collect()
}

/// Gives the services of `world` the running tasks at `addresses` (`(cluster, service)` →
/// addresses, as [`crate::backend::Backend::task_addresses`] answers); services it does not
/// name keep theirs.
pub fn fill_tasks(world: &mut World, addresses: &BTreeMap<(String, String), Vec<String>>) {
    for cluster in &mut world.clusters {
        for service in &mut cluster.services {
            let id = (cluster.name.clone(), service.name.clone());
            if let Some(found) = addresses.get(&id) {
                service.tasks = found
                    .iter()
                    .map(|a| Task {
                        address: a.clone(),
                        ..Task::default()
                    })
                    .collect();
            }
        }
    }
}

/// `connection`, which comes from `owners` (as [`Clients::owners`] gives them), for people: the
/// service it comes from, else "unknown client", then in brackets its name (where it says more
/// than the service's) and its peer: `esr-batch/esr-dataexport (10.0.1.7:5123)`,
/// `unknown client (orders-worker, 10.0.1.5:40122)`.
#[must_use]
pub fn describe(connection: &Connection, owners: &[String]) -> String {
    let client = connection.client.as_str();
    let says_more = !client.is_empty()
        && !owners
            .iter()
            .any(|id| id == client || id.rsplit('/').next() == Some(client));
    let mut details = Vec::new();
    if says_more {
        details.push(client);
    }
    if !connection.peer.is_empty() {
        details.push(connection.peer.as_str());
    }
    let who = if owners.is_empty() {
        "unknown client".to_owned()
    } else {
        owners.join(" or ")
    };
    if details.is_empty() {
        who
    } else {
        format!("{who} ({})", details.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, Service, Task};

    fn world() -> World {
        let service = |name: &str, addresses: &[&str]| Service {
            name: name.into(),
            tasks: addresses
                .iter()
                .map(|a| Task {
                    address: (*a).into(),
                    ..Task::default()
                })
                .collect(),
            ..Service::default()
        };
        World {
            clusters: vec![
                Cluster {
                    name: "esr-batch".into(),
                    services: vec![
                        service("esr-dataexport", &["10.0.1.7"]),
                        service("esr-dataexport-worker", &[]),
                        service("orders", &[]),
                    ],
                    ..Cluster::default()
                },
                Cluster {
                    name: "esr-prod".into(),
                    services: vec![service("orders", &["fd00::7"])],
                    ..Cluster::default()
                },
            ],
            ..World::default()
        }
    }

    fn connection(client: &str, peer: &str) -> Connection {
        Connection {
            client: client.into(),
            peer: peer.into(),
            ..Connection::default()
        }
    }

    #[test]
    fn a_name_a_cluster_and_name_or_a_prefix_before_a_separator_names_a_service() {
        let clients = Clients::of(&world());
        for client in [
            "esr-dataexport",
            "esr-batch/esr-dataexport",
            "esr-dataexport-7f3c",
            "esr-dataexport.1",
            "esr-dataexport:main",
            "esr-dataexport/consumer",
            "esr-dataexport worker 2",
            "esr-dataexport@10.0.1.7",
        ] {
            assert_eq!(
                clients.named_by(client),
                ["esr-batch/esr-dataexport"],
                "{client}"
            );
        }
    }

    #[test]
    fn a_name_that_merely_starts_like_a_service_does_not_name_it() {
        let clients = Clients::of(&world());
        for client in ["esr-dataexporter", "xesr-dataexport", "", "ESR-DATAEXPORT"] {
            assert_eq!(clients.named_by(client), Vec::<String>::new(), "{client}");
        }
    }

    #[test]
    fn the_longest_matching_name_wins() {
        let clients = Clients::of(&world());
        assert_eq!(
            clients.named_by("esr-dataexport-worker-3"),
            ["esr-batch/esr-dataexport-worker"]
        );
    }

    #[test]
    fn one_name_in_two_clusters_names_both_unless_the_cluster_is_given() {
        let clients = Clients::of(&world());
        assert_eq!(
            clients.named_by("orders-1"),
            ["esr-batch/orders", "esr-prod/orders"]
        );
        assert_eq!(clients.named_by("esr-prod/orders-1"), ["esr-prod/orders"]);
    }

    #[test]
    fn an_unnamed_connection_is_matched_by_its_tasks_address() {
        let clients = Clients::of(&world());
        assert_eq!(
            clients.owners(&connection("", "10.0.1.7:5123")),
            ["esr-batch/esr-dataexport"]
        );
        assert_eq!(
            clients.owners(&connection("", "[fd00:0::7]:5123")),
            ["esr-prod/orders"]
        );
        assert_eq!(
            clients.owners(&connection("", "10.0.1.8:5123")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_connection_is_described_by_its_service_else_as_an_unknown_client() {
        let clients = Clients::of(&world());
        assert_eq!(
            clients.describe(&connection("esr-dataexport", "10.0.3.40:40122")),
            "esr-batch/esr-dataexport (10.0.3.40:40122)"
        );
        assert_eq!(
            clients.describe(&connection("esr-dataexport-1", "10.0.3.40:40122")),
            "esr-batch/esr-dataexport (esr-dataexport-1, 10.0.3.40:40122)"
        );
        assert_eq!(
            clients.describe(&connection("", "10.0.9.9:1")),
            "unknown client (10.0.9.9:1)"
        );
        assert_eq!(
            clients.describe(&connection("billing", "10.0.9.9:1")),
            "unknown client (billing, 10.0.9.9:1)"
        );
        assert_eq!(clients.describe(&connection("", "")), "unknown client");
    }

    #[test]
    fn task_addresses_are_wanted_only_when_a_connection_names_no_service() {
        let world = world();
        let named = [connection("esr-dataexport-1", "10.0.3.40:1")];
        assert!(services_to_locate(&world, &named, None).is_empty());
        assert!(services_to_locate(&world, &[], None).is_empty());
        let unnamed = [named[0].clone(), connection("", "10.0.3.41:1")];
        // Services whose tasks the state holds already are not asked about.
        assert_eq!(
            services_to_locate(&world, &unnamed, None),
            [
                ("esr-batch".to_owned(), "esr-dataexport-worker".to_owned()),
                ("esr-batch".to_owned(), "orders".to_owned()),
            ]
        );
        assert_eq!(
            services_to_locate(&world, &unnamed, Some(&["esr-prod".to_owned()])),
            Vec::<(String, String)>::new()
        );
    }

    #[test]
    fn an_unnamed_connection_maps_to_the_service_whose_task_addresses_were_filled_in() {
        let mut world = world();
        let unnamed = connection("", "10.0.3.41:40122");
        assert_eq!(
            Clients::of(&world).describe(&unnamed),
            "unknown client (10.0.3.41:40122)"
        );
        let found = BTreeMap::from([(
            ("esr-batch".to_owned(), "orders".to_owned()),
            vec!["10.0.3.41".to_owned()],
        )]);
        fill_tasks(&mut world, &found);
        assert_eq!(
            Clients::of(&world).describe(&unnamed),
            "esr-batch/orders (10.0.3.41:40122)"
        );
        // A service the answer does not name keeps the tasks it had.
        assert_eq!(
            Clients::of(&world).owners(&connection("", "10.0.1.7:1")),
            ["esr-batch/esr-dataexport"]
        );
    }

    #[test]
    fn a_consumer_is_matched_by_name_or_through_its_connections_address() {
        let clients = Clients::of(&world());
        let connections = [connection("app-1", "10.0.1.7:5123")];
        assert_eq!(
            clients.consumer("esr-dataexport", &[]),
            ["esr-batch/esr-dataexport"]
        );
        assert_eq!(
            clients.consumer("app-1", &connections),
            ["esr-batch/esr-dataexport"]
        );
        assert_eq!(
            clients.consumer("app-2", &connections),
            Vec::<String>::new()
        );
    }
}
