//! The plan file (`PLAN.toml`) turned into a validated [`Config`].
//!
//! Every error names the file, the line and column, and the key, as CONTRACT.md asks:
//! syntax errors and unknown keys come from the TOML parser with their spans, and the checks
//! made here (one way to name each broker, services listed once, services and clusters that
//! exist) keep the spans of the values they look at.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{line_column, Error, Result};
use crate::host::{hosts_in, mask_password, same_host, HostRef};
use crate::model::{Broker, World};

/// The two brokers of a migration, as the plan file names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerAlias {
    Old,
    New,
}

impl BrokerAlias {
    /// The other broker.
    #[must_use]
    pub fn other(self) -> BrokerAlias {
        match self {
            BrokerAlias::Old => BrokerAlias::New,
            BrokerAlias::New => BrokerAlias::Old,
        }
    }
}

impl fmt::Display for BrokerAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerAlias::Old => "old",
            BrokerAlias::New => "new",
        })
    }
}

/// How the move is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Publishers first; consumers once their queues on the old broker are drained.
    #[default]
    Drain,
    /// Consumers first; a federated queue on the new broker pulls what is left on the old one.
    Federate,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Drain => "drain",
            Strategy::Federate => "federate",
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    migration: Spanned<RawMigration>,
    brokers: Spanned<RawBrokers>,
    #[serde(default)]
    services: Vec<Spanned<RawService>>,
    #[serde(default)]
    parameters: IndexMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMigration {
    name: Spanned<String>,
    region: Option<String>,
    clusters: Option<Spanned<Vec<Spanned<String>>>>,
    broker_env: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    strategy: Strategy,
    lock_table: Option<String>,
    read_secrets: Option<Spanned<SecretsToRead>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrokers {
    old: Spanned<RawBroker>,
    new: Spanned<RawBroker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    endpoints: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    aliases: Vec<String>,
    amqp_url_env: Option<String>,
    management_url_env: Option<String>,
    upstream_url_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    cluster: Spanned<String>,
    name: Spanned<String>,
    broker: BrokerAlias,
    #[serde(default)]
    publishes: Vec<String>,
    #[serde(default)]
    consumes: Vec<String>,
}

/// A validated plan file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plan file as given on the command line.
    pub path: PathBuf,
    text: String,
    pub migration: Migration,
    pub old: BrokerSpec,
    pub new: BrokerSpec,
    /// Declared services, in file order.
    pub services: Vec<ServiceDecl>,
    /// Parameter holding the old host → parameter holding the new one.
    pub parameters: IndexMap<String, String>,
}

/// `[migration]`.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub region: Option<String>,
    /// Clusters to scan; `None` scans every cluster.
    pub clusters: Option<Vec<Located<String>>>,
    /// Variables searched for broker hosts; `None` searches every env value.
    pub broker_env: Option<Vec<String>>,
    pub strategy: Strategy,
    pub lock_table: Option<String>,
    /// Which Secrets Manager secrets to read (`read_secrets`; default none).
    pub read_secrets: SecretsToRead,
}

/// Which Secrets Manager secrets warren reads, by `read_secrets` in `[migration]`: `false`
/// (the default: none), `true` (every secret a container names) or a list of secret ARNs.
/// Reading a secret is an opt-in: it needs `secretsmanager:GetSecretValue` on it, and teams
/// may want warren to see only the secrets that can hold a broker address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretsToRead {
    #[default]
    None,
    All,
    /// These secrets (full ARNs, or ARNs without the random `-AbCdEf` suffix).
    Only(Vec<String>),
}

impl SecretsToRead {
    /// Whether the secret a container's `valueFrom` names is to be read: by its full ARN, or
    /// by its ARN without the suffix and the JSON-key part.
    #[must_use]
    pub fn includes(&self, value_from: &str) -> bool {
        use crate::sources::SecretRef;
        match self {
            SecretsToRead::None => false,
            SecretsToRead::All => SecretRef::parse(value_from).is_some(),
            SecretsToRead::Only(listed) => {
                let Some(wanted) = SecretRef::parse(value_from) else {
                    return false;
                };
                listed.iter().any(|entry| {
                    entry == value_from
                        || entry == wanted.arn
                        || SecretRef::parse(entry)
                            .is_some_and(|e| e.partial_arn() == wanted.partial_arn())
                })
            }
        }
    }

    /// Whether no secret is read.
    #[must_use]
    pub fn is_none(&self) -> bool {
        *self == SecretsToRead::None
    }
}

impl Serialize for SecretsToRead {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SecretsToRead::None => s.serialize_bool(false),
            SecretsToRead::All => s.serialize_bool(true),
            SecretsToRead::Only(listed) => listed.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SecretsToRead {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretsToRead;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a list of Secrets Manager secret ARNs")
            }
            fn visit_bool<E: serde::de::Error>(
                self,
                v: bool,
            ) -> std::result::Result<Self::Value, E> {
                Ok(if v {
                    SecretsToRead::All
                } else {
                    SecretsToRead::None
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut listed = Vec::new();
                while let Some(arn) = seq.next_element::<String>()? {
                    listed.push(arn);
                }
                Ok(SecretsToRead::Only(listed))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A value with the place in the plan file it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
    /// The key path, e.g. `services[2].name`.
    pub key: String,
}

/// How the plan file identifies a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerSelector {
    /// An Amazon MQ broker id.
    Id(String),
    /// An Amazon MQ broker name.
    Name(String),
    /// A broker outside Amazon MQ, by its endpoints.
    Endpoints(Vec<String>),
}

impl BrokerSelector {
    /// The broker of `world` this selector names: by id, by name, or the first whose endpoints
    /// share a host with the selector's.
    #[must_use]
    pub fn find_in<'w>(&self, world: &'w World) -> Option<&'w Broker> {
        match self {
            BrokerSelector::Id(id) => world.brokers.iter().find(|b| &b.id == id),
            BrokerSelector::Name(name) => world
                .brokers
                .iter()
                .find(|b| b.name.as_deref() == Some(name.as_str())),
            BrokerSelector::Endpoints(endpoints) => {
                let wanted: Vec<String> = endpoints.iter().flat_map(|e| hosts_in(e)).collect();
                world.brokers.iter().find(|b| {
                    b.endpoints
                        .iter()
                        .flat_map(|e| hosts_in(e))
                        .any(|h| wanted.iter().any(|w| same_host(w, &h)))
                })
            }
        }
    }
}

impl fmt::Display for BrokerSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerSelector::Id(id) => write!(f, "id {id:?}"),
            BrokerSelector::Name(name) => write!(f, "name {name:?}"),
            BrokerSelector::Endpoints(e) => write!(f, "endpoints {}", e.join(", ")),
        }
    }
}

/// `[brokers.old]` or `[brokers.new]`.
#[derive(Debug, Clone)]
pub struct BrokerSpec {
    pub alias: BrokerAlias,
    pub selector: BrokerSelector,
    pub aliases: Vec<String>,
    pub amqp_url_env: Option<String>,
    pub management_url_env: Option<String>,
    /// The old broker only: the variable holding a URL of the old broker that the new broker
    /// reaches it by, for the federation upstream (`federate`), where `amqp_url_env`'s will not
    /// do (a private Amazon MQ broker behind a load balancer, say).
    pub upstream_url_env: Option<String>,
    span: Range<usize>,
}

/// One `[[services]]` entry.
#[derive(Debug, Clone)]
pub struct ServiceDecl {
    pub cluster: String,
    pub name: String,
    pub broker: BrokerAlias,
    pub publishes: Vec<String>,
    pub consumes: Vec<String>,
    /// Index in `[[services]]`, for error messages.
    pub index: usize,
    cluster_span: Range<usize>,
    name_span: Range<usize>,
}

impl ServiceDecl {
    /// `cluster/service`, the name warren shows everywhere.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.name)
    }
}

impl Config {
    /// Reads and validates the plan file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Input`] (file, line, key) when it is
    /// not a valid plan.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, text)
    }

    /// Validates plan-file text; `path` is only used in messages.
    ///
    /// # Errors
    /// [`Error::Input`] naming the file, line, column and key of the first problem.
    pub fn parse(path: &Path, text: String) -> Result<Config> {
        let raw: RawPlan = match toml::de::Deserializer::parse(&text) {
            Ok(de) => serde_path_to_error::deserialize(de).map_err(|e| {
                let key = key_path(e.path());
                let inner = e.into_inner();
                let key = match (key, missing_field(inner.message())) {
                    (Some(key), Some(field)) => Some(format!("{key}.{field}")),
                    (None, Some(field)) => Some(field.to_owned()),
                    (key, None) => key,
                };
                toml_error(path, &text, &inner, key)
            })?,
            Err(e) => return Err(toml_error(path, &text, &e, None)),
        };
        let mut config = Config {
            path: path.to_owned(),
            text: String::new(),
            migration: Migration {
                name: String::new(),
                region: None,
                clusters: None,
                broker_env: None,
                strategy: Strategy::Drain,
                lock_table: None,
                read_secrets: SecretsToRead::None,
            },
            old: placeholder_broker(BrokerAlias::Old),
            new: placeholder_broker(BrokerAlias::New),
            services: Vec::with_capacity(raw.services.len()),
            parameters: IndexMap::new(),
        };
        config.text = text;

        let migration = raw.migration.into_inner();
        if migration.name.get_ref().trim().is_empty() {
            return Err(config.error_at(
                migration.name.span(),
                "migration.name",
                "must not be empty",
            ));
        }
        // An empty list would scan nothing, and `--strict` would pass without looking.
        if let Some(clusters) = migration
            .clusters
            .as_ref()
            .filter(|c| c.get_ref().is_empty())
        {
            return Err(config.error_at(
                clusters.span(),
                "migration.clusters",
                "must name at least one cluster (leave it out to scan every cluster)",
            ));
        }
        if let Some(names) = migration
            .broker_env
            .as_ref()
            .filter(|n| n.get_ref().is_empty())
        {
            return Err(config.error_at(
                names.span(),
                "migration.broker_env",
                "must name at least one variable (leave it out to search every env value)",
            ));
        }
        let read_secrets = match migration.read_secrets {
            Some(spanned) => config.read_secrets(spanned)?,
            None => SecretsToRead::None,
        };
        config.migration = Migration {
            name: migration.name.into_inner(),
            region: migration.region,
            clusters: migration.clusters.map(|clusters| {
                clusters
                    .into_inner()
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| Located {
                        span: c.span(),
                        value: c.into_inner(),
                        key: format!("migration.clusters[{i}]"),
                    })
                    .collect()
            }),
            broker_env: migration.broker_env.map(Spanned::into_inner),
            strategy: migration.strategy,
            lock_table: migration.lock_table,
            read_secrets,
        };

        let brokers = raw.brokers.into_inner();
        config.old = config.broker_spec(BrokerAlias::Old, brokers.old)?;
        config.new = config.broker_spec(BrokerAlias::New, brokers.new)?;

        let mut seen = BTreeSet::new();
        for (index, service) in raw.services.into_iter().enumerate() {
            let span = service.span();
            let service = service.into_inner();
            let decl = ServiceDecl {
                cluster_span: service.cluster.span(),
                name_span: service.name.span(),
                cluster: service.cluster.into_inner(),
                name: service.name.into_inner(),
                broker: service.broker,
                publishes: service.publishes,
                consumes: service.consumes,
                index,
            };
            if !seen.insert((decl.cluster.clone(), decl.name.clone())) {
                let _ = span;
                return Err(config.error_at(
                    decl.name_span.clone(),
                    &format!("services[{index}].name"),
                    &format!("service {} is listed more than once", decl.id()),
                ));
            }
            config.services.push(decl);
        }

        for (old, new) in raw.parameters {
            if new.get_ref().trim().is_empty() || old.trim().is_empty() {
                return Err(config.error_at(
                    new.span(),
                    &format!("parameters.{old:?}"),
                    "parameter names must not be empty",
                ));
            }
            config.parameters.insert(old, new.into_inner());
        }
        Ok(config)
    }

    /// `read_secrets`, checked: a list names at least one secret, each by its ARN.
    fn read_secrets(&self, raw: Spanned<SecretsToRead>) -> Result<SecretsToRead> {
        let span = raw.span();
        let value = raw.into_inner();
        if let SecretsToRead::Only(listed) = &value {
            if listed.is_empty() {
                return Err(self.error_at(
                    span,
                    "migration.read_secrets",
                    "must name at least one secret (or be true to read every secret, false for none)",
                ));
            }
            for (i, arn) in listed.iter().enumerate() {
                if crate::sources::SecretRef::parse(arn).is_none() {
                    return Err(self.error_at(
                        span,
                        &format!("migration.read_secrets[{i}]"),
                        &format!(
                            "{arn:?} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
                        ),
                    ));
                }
            }
        }
        Ok(value)
    }

    fn broker_spec(&self, alias: BrokerAlias, raw: Spanned<RawBroker>) -> Result<BrokerSpec> {
        let span = raw.span();
        let raw = raw.into_inner();
        let key = format!("brokers.{alias}");
        let given = usize::from(raw.id.is_some())
            + usize::from(raw.name.is_some())
            + usize::from(raw.endpoints.is_some());
        if given != 1 {
            return Err(self.error_at(
                span,
                &key,
                "name the broker in exactly one way: `id`, `name` or `endpoints`",
            ));
        }
        let selector = if let Some(id) = raw.id {
            if id.get_ref().trim().is_empty() {
                return Err(self.error_at(id.span(), &format!("{key}.id"), "must not be empty"));
            }
            BrokerSelector::Id(id.into_inner())
        } else if let Some(name) = raw.name {
            if name.get_ref().trim().is_empty() {
                return Err(self.error_at(
                    name.span(),
                    &format!("{key}.name"),
                    "must not be empty",
                ));
            }
            BrokerSelector::Name(name.into_inner())
        } else {
            let endpoints = raw.endpoints.expect("one of id, name, endpoints is set");
            if endpoints.get_ref().is_empty() {
                return Err(self.error_at(
                    endpoints.span(),
                    &format!("{key}.endpoints"),
                    "must list at least one endpoint",
                ));
            }
            for endpoint in endpoints.get_ref() {
                if HostRef::parse(endpoint).is_none() {
                    return Err(self.error_at(
                        endpoints.span(),
                        &format!("{key}.endpoints"),
                        &format!(
                            "{:?} is not an endpoint (expected amqps://host:port)",
                            mask_password(endpoint)
                        ),
                    ));
                }
            }
            BrokerSelector::Endpoints(endpoints.into_inner())
        };
        let upstream_url_env = match raw.upstream_url_env {
            Some(var) if alias == BrokerAlias::New => {
                return Err(self.error_at(
                    var.span(),
                    &format!("{key}.upstream_url_env"),
                    "only the old broker has an upstream URL: federation pulls from the old broker into the new one (move it to [brokers.old])",
                ));
            }
            Some(var) if var.get_ref().trim().is_empty() => {
                return Err(self.error_at(
                    var.span(),
                    &format!("{key}.upstream_url_env"),
                    "must name an environment variable",
                ));
            }
            other => other.map(Spanned::into_inner),
        };
        Ok(BrokerSpec {
            alias,
            selector,
            aliases: raw.aliases,
            amqp_url_env: raw.amqp_url_env,
            management_url_env: raw.management_url_env,
            upstream_url_env,
            span,
        })
    }

    /// The broker spec for `alias`.
    #[must_use]
    pub fn broker(&self, alias: BrokerAlias) -> &BrokerSpec {
        match alias {
            BrokerAlias::Old => &self.old,
            BrokerAlias::New => &self.new,
        }
    }

    /// The declared service `cluster/name`, if any.
    #[must_use]
    pub fn declared(&self, cluster: &str, name: &str) -> Option<&ServiceDecl> {
        self.services
            .iter()
            .find(|s| s.cluster == cluster && s.name == name)
    }

    /// Whether the plan scans `cluster`.
    #[must_use]
    pub fn scans(&self, cluster: &str) -> bool {
        self.migration
            .clusters
            .as_ref()
            .is_none_or(|clusters| clusters.iter().any(|c| c.value == cluster))
    }

    /// Checks the plan against the scanned state: every cluster and service it names exists, and
    /// both brokers can be found.
    ///
    /// # Errors
    /// [`Error::Input`] naming the plan file's line and key of the first name that does not exist.
    pub fn check_against(&self, world: &World) -> Result<()> {
        if let Some(clusters) = &self.migration.clusters {
            for cluster in clusters {
                if world.cluster(&cluster.value).is_none() {
                    return Err(self.error_at(
                        cluster.span.clone(),
                        &cluster.key,
                        &format!("cluster {:?} does not exist", cluster.value),
                    ));
                }
            }
        }
        let services = world.services_by_id();
        for decl in &self.services {
            if !self.scans(&decl.cluster) {
                return Err(self.error_at(
                    decl.cluster_span.clone(),
                    &format!("services[{}].cluster", decl.index),
                    &format!("cluster {:?} is not in migration.clusters", decl.cluster),
                ));
            }
            if world.cluster(&decl.cluster).is_none() {
                return Err(self.error_at(
                    decl.cluster_span.clone(),
                    &format!("services[{}].cluster", decl.index),
                    &format!("cluster {:?} does not exist", decl.cluster),
                ));
            }
            if !services.contains_key(&(decl.cluster.as_str(), decl.name.as_str())) {
                return Err(self.error_at(
                    decl.name_span.clone(),
                    &format!("services[{}].name", decl.index),
                    &format!(
                        "service {:?} does not exist in cluster {:?}",
                        decl.name, decl.cluster
                    ),
                ));
            }
        }
        for alias in [BrokerAlias::Old, BrokerAlias::New] {
            let spec = self.broker(alias);
            if let BrokerSelector::Id(_) | BrokerSelector::Name(_) = spec.selector {
                if spec.selector.find_in(world).is_none() {
                    return Err(self.error_at(
                        spec.span.clone(),
                        &format!("brokers.{alias}"),
                        &format!("no broker with {} exists", spec.selector),
                    ));
                }
            }
        }
        Ok(())
    }

    /// An [`Error::Input`] pointing at the `[brokers.<alias>]` table of this plan file.
    #[must_use]
    pub fn broker_error(&self, alias: BrokerAlias, message: &str) -> Error {
        self.error_at(
            self.broker(alias).span.clone(),
            &format!("brokers.{alias}"),
            message,
        )
    }

    /// An [`Error::Input`] pointing at `span` of this plan file.
    #[must_use]
    pub fn error_at(&self, span: Range<usize>, key: &str, message: &str) -> Error {
        let (line, column) = line_column(&self.text, span.start);
        Error::Input {
            file: self.path.clone(),
            line,
            column,
            key: Some(key.to_owned()),
            message: message.to_owned(),
        }
    }
}

fn placeholder_broker(alias: BrokerAlias) -> BrokerSpec {
    BrokerSpec {
        alias,
        selector: BrokerSelector::Endpoints(Vec::new()),
        aliases: Vec::new(),
        amqp_url_env: None,
        management_url_env: None,
        upstream_url_env: None,
        span: 0..0,
    }
}

/// The key path of a deserialisation error as the plan file spells it (`services[1].broker`),
/// without the private fields through which `toml::Spanned` deserialises; `None` at the root.
fn key_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&other.to_string());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `name` from serde's "missing field `name`", so that the error names the key that is missing.
fn missing_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("missing field `")?
        .split('`')
        .next()
}

fn toml_error(path: &Path, text: &str, error: &toml::de::Error, key: Option<String>) -> Error {
    let (line, column) = error
        .span()
        .map_or((0, 0), |span| line_column(text, span.start));
    let message = error.message().trim().replace('\n', " ");
    Error::Input {
        file: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}
