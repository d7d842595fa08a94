//! A live broker: its management API through rabbitmq_http_client, and AMQP (lapin) for exact
//! queue depths where the plan gives an AMQP URL.
// The closures counted for `--stats` pass rabbitmq_http_client's own error on unchanged.
#![allow(clippy::result_large_err)]

use rabbitmq_http_client::commons::{
    ExchangeType, MessageTransferAcknowledgementMode, PolicyTarget, QueueType,
};
use rabbitmq_http_client::error::Error as ApiError;
use rabbitmq_http_client::requests::{
    Amqp091ShovelDestinationParams, Amqp091ShovelParams, Amqp091ShovelSourceParams, ExchangeParams,
    PolicyParams, QueueParams, RuntimeParameterDefinition, FEDERATION_UPSTREAM_COMPONENT,
};
use serde_json::{json, Map, Value};

use super::amqp::{normalized, scrub, Amqp};
use super::federation::Upstream;
use super::management::{counted, percent_decode};
use super::{BrokerApi, Definition, Depth, Management, Shovel};
use crate::discovery::ResolvedBroker;
use crate::error::{Error, Result};
use crate::host::{mask_password, HostRef};
use crate::model::{Binding, Broker, Exchange, Link, Policy, Queue};

/// A real broker, reached through the URLs the plan's variables hold.
#[derive(Debug)]
pub struct Live {
    management: Management,
    /// The AMQP client, when the plan's `amqp_url_env` variable is set.
    amqp: Option<Amqp>,
    amqp_url_env: Option<String>,
    alias: String,
    id: String,
}

/// The value of `broker`'s `amqp_url_env` variable, when the plan names one and it is set.
fn amqp_url(broker: &ResolvedBroker) -> Option<(String, String)> {
    let var = broker.amqp_url_env.as_ref()?;
    Some((var.clone(), super::url_in(var)?))
}

impl Live {
    /// The live broker `broker`, once its URLs are known to be its own.
    ///
    /// # Errors
    /// As [`Management::for_broker`] and [`super::check_amqp_url`]; [`Error::Refused`] when
    /// the AMQP URL cannot be read.
    pub fn for_broker(broker: &ResolvedBroker) -> Result<Live> {
        let management = Management::for_broker(broker)?;
        super::check_amqp_url(broker, Some(management.host()))?;
        let amqp = amqp_url(broker)
            .map(|(var, url)| Amqp::new(&url, &var))
            .transpose()?;
        Ok(Live {
            management,
            amqp,
            amqp_url_env: broker.amqp_url_env.clone(),
            alias: broker.alias.to_string(),
            id: broker.id.clone(),
        })
    }

    fn create_exchange(&self, e: &Exchange, what: &str) -> Result<()> {
        let kind = e.kind.as_deref().unwrap_or("direct");
        let durable = e.durable.unwrap_or(true);
        let auto_delete = e.auto_delete.unwrap_or(false);
        if e.internal == Some(true) {
            // The crate's `ExchangeParams` has no `internal`: the same PUT, written out.
            return self.management.put(
                &format!(
                    "/api/exchanges/{}/{}",
                    super::management::segment(&e.vhost),
                    super::management::segment(&e.name)
                ),
                &json!({
                    "type": kind,
                    "durable": durable,
                    "auto_delete": auto_delete,
                    "internal": true,
                    "arguments": e.arguments,
                }),
                what,
            );
        }
        let params = ExchangeParams {
            name: &e.name,
            exchange_type: ExchangeType::from(kind),
            durable,
            auto_delete,
            arguments: arguments(&e.arguments),
        };
        counted("PUT /api/exchanges/{vhost}/{name}", || {
            self.management.api().declare_exchange(&e.vhost, &params)
        })
        .map_err(|err| self.management.api_error(what, err))
    }

    fn create_queue(&self, q: &Queue, what: &str) -> Result<()> {
        let mut args = q.arguments.clone();
        // A queue of another type than classic says so in its arguments; a classic queue
        // declared without `x-queue-type` keeps none, so that its twin is declared alike.
        if let Some(kind) = q.kind.as_deref().filter(|k| *k != "classic") {
            args.entry("x-queue-type").or_insert_with(|| json!(kind));
        }
        let params = QueueParams {
            name: &q.name,
            queue_type: QueueType::from(q.kind.as_deref().unwrap_or("classic")),
            durable: q.durable.unwrap_or(true),
            auto_delete: q.auto_delete.unwrap_or(false),
            exclusive: false,
            arguments: arguments(&args),
        };
        counted("PUT /api/queues/{vhost}/{name}", || {
            self.management.api().declare_queue(&q.vhost, &params)
        })
        .map_err(|err| self.management.api_error(what, err))
    }

    fn create_binding(&self, b: &Binding, what: &str) -> Result<()> {
        // A binding is a set member: binding again what is bound changes nothing.
        let api = self.management.api();
        let arguments = (!b.arguments.is_empty()).then(|| b.arguments.clone());
        let answer = if b.queue().is_some() {
            counted(
                "POST /api/bindings/{vhost}/e/{source}/q/{destination}",
                || {
                    api.bind_queue(
                        &b.vhost,
                        &b.destination,
                        &b.exchange,
                        Some(&b.routing_key),
                        arguments,
                    )
                },
            )
        } else {
            counted(
                "POST /api/bindings/{vhost}/e/{source}/e/{destination}",
                || {
                    api.bind_exchange(
                        &b.vhost,
                        &b.destination,
                        &b.exchange,
                        Some(&b.routing_key),
                        arguments,
                    )
                },
            )
        };
        answer.map_err(|err| self.management.api_error(what, err))
    }

    /// A policy is created only where none of its name exists: a PUT would replace one, and
    /// warren changes nothing that is there.
    fn create_policy(&self, p: &Policy, what: &str) -> Result<()> {
        let apply_to = match p.apply_to.as_str() {
            "queues" => PolicyTarget::Queues,
            "exchanges" => PolicyTarget::Exchanges,
            "all" => PolicyTarget::All,
            "classic_queues" => PolicyTarget::ClassicQueues,
            "quorum_queues" => PolicyTarget::QuorumQueues,
            "streams" => PolicyTarget::Streams,
            other => {
                return Err(Error::Refused(format!(
                    "{what}: apply-to `{other}` is none of queues, exchanges, all, classic_queues, quorum_queues, streams"
                )))
            }
        };
        let priority = i32::try_from(p.priority).map_err(|_| {
            Error::Refused(format!("{what}: priority {} is out of range", p.priority))
        })?;
        let api = self.management.api();
        match counted("GET /api/policies/{vhost}/{name}", || {
            api.get_policy(&p.vhost, &p.name)
        }) {
            Ok(existing) => {
                let same = existing.pattern == p.pattern
                    && String::from(existing.apply_to) == p.apply_to
                    && i64::from(existing.priority) == p.priority
                    && existing.definition.0.clone().unwrap_or_default() == p.definition;
                return if same {
                    Ok(())
                } else {
                    Err(Error::Refused(format!(
                        "{what}: {} has a policy {} in vhost {} already, with another pattern, apply-to, priority or definition; warren changes no existing policy",
                        self.describe(),
                        p.name,
                        p.vhost
                    )))
                };
            }
            Err(ApiError::NotFound) => {}
            Err(err) => return Err(self.management.api_error(what, err)),
        }
        let params = PolicyParams {
            vhost: &p.vhost,
            name: &p.name,
            pattern: &p.pattern,
            apply_to,
            priority,
            definition: p.definition.clone(),
        };
        counted("PUT /api/policies/{vhost}/{name}", || {
            api.declare_policy(&params)
        })
        .map_err(|err| self.management.api_error(what, err))
    }
}

/// The AMQP URL in `var`, the variable of the broker `(alias, id)`, set to `shovel`'s vhost
/// (its user and password percent-encoded, as the broker's URI parser wants them);
/// refused naming the variable when the plan gives none or it is not set.
fn shovel_uri(broker: (&str, &str), var: Option<&str>, shovel: &Shovel<'_>) -> Result<String> {
    let (alias, id) = broker;
    let url = var.and_then(super::url_in);
    let refused = |why: String| {
        Error::Refused(format!(
            "shovel {} cannot be started: it needs the AMQP URL of the {alias} broker {id}, and {why}",
            shovel.name
        ))
    };
    let Some(url) = url else {
        return Err(refused(var.map_or_else(
            || "the plan gives no `amqp_url_env` for it".to_owned(),
            |var| {
                format!("{var} is not set (it should hold amqp(s)://user:password@host:port/vhost)")
            },
        )));
    };
    in_vhost(&url, &shovel.vhost)
        .ok_or_else(|| refused(format!("{} is not an AMQP URL", var.unwrap_or_default())))
}

/// The URL federation upstream `upstream` reads from: the one its variable (`url_env`) holds,
/// set to the upstream's vhost (its user and password percent-encoded, as for a shovel);
/// `None` when the variable is unset or blank.
///
/// # Errors
/// [`Error::Refused`] naming the variable, never the URL's password: when the URL is not an
/// `amqp://` or `amqps://` URL, or when the variable is `from`'s `amqp_url_env` and its URL does
/// not belong to `from` (a load balancer's URL, in a variable of its own, is not checked).
pub(super) fn upstream_uri(upstream: &Upstream, from: &ResolvedBroker) -> Result<Option<String>> {
    let var = upstream.url_env.as_str();
    let Some(url) = super::url_in(var) else {
        return Ok(None);
    };
    let not_amqp = || {
        Error::Refused(format!(
            "federation upstream {} in vhost {} cannot be declared: {var} is not an AMQP URL (expected amqp(s)://user:password@host:port/vhost)",
            upstream.name, upstream.vhost
        ))
    };
    let amqp = HostRef::parse(&url)
        .and_then(|parts| parts.scheme)
        .is_some_and(|scheme| {
            matches!(url[scheme].to_ascii_lowercase().as_str(), "amqp" | "amqps")
        });
    if !amqp {
        return Err(not_amqp());
    }
    if from.amqp_url_env.as_deref() == Some(var) {
        super::management::amqp_url_belongs(from, var, &url, None)?;
    }
    in_vhost(&url, &upstream.vhost)
        .map(Some)
        .ok_or_else(not_amqp)
}

/// `url`, an AMQP URL, with its user and password percent-encoded and its vhost set to
/// `vhost`; `None` when it is not a URL with a host.
fn in_vhost(url: &str, vhost: &str) -> Option<String> {
    normalized(url).and_then(|url| with_vhost(&url, vhost))
}

/// `message` with every password of `urls` (as written, and percent-decoded) and any URL's
/// password masked as `****`: a broker's answer may quote a URI back.
fn without_passwords(message: &str, urls: &[&str]) -> String {
    urls.iter()
        .filter_map(|u| HostRef::parse(u).and_then(|p| p.password.map(|r| u[r].to_owned())))
        .fold(mask_password(message), |m, pw| {
            scrub(&scrub(&m, &pw), &percent_decode(&pw))
        })
}

/// The crate's form of `x-` arguments: `None` for none.
fn arguments(map: &Map<String, Value>) -> Option<Map<String, Value>> {
    (!map.is_empty()).then(|| map.clone())
}

/// `url` with its vhost (the path) replaced by `vhost`, its query kept; `None` when `url` is
/// not a URL with a host.
fn with_vhost(url: &str, vhost: &str) -> Option<String> {
    let parts = HostRef::parse(url)?;
    parts.scheme.as_ref()?;
    let end = parts
        .port
        .map_or(parts.host.end + usize::from(parts.bracketed), |p| p.end);
    let rest = &url[end..];
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    Some(format!(
        "{}/{}{query}",
        &url[..end],
        super::management::segment(vhost)
    ))
}

/// The live brokers a run has reached, each checked once and kept for the calls after.
#[derive(Debug, Default)]
pub struct LiveBrokers {
    reached: Vec<Live>,
}

impl LiveBrokers {
    /// The live broker `broker`, reached on first use.
    ///
    /// # Errors
    /// As [`Live::for_broker`].
    pub fn get(&mut self, broker: &ResolvedBroker) -> Result<&mut Live> {
        let alias = broker.alias.to_string();
        match self
            .reached
            .iter()
            .position(|l| l.id == broker.id && l.alias == alias)
        {
            Some(i) => Ok(&mut self.reached[i]),
            None => {
                self.reached.push(Live::for_broker(broker)?);
                Ok(self.reached.last_mut().expect("just pushed"))
            }
        }
    }
}

impl BrokerApi for Live {
    fn describe(&self) -> String {
        format!(
            "the {} broker {} ({})",
            self.alias,
            self.id,
            self.management.shown()
        )
    }

    fn read_into(&mut self, broker: &mut Broker) -> Result<()> {
        self.management.read_into(broker)
    }

    /// `ready` and `consumers` from a passive declare where the plan gives an AMQP URL (exact,
    /// at once), else from the management API; `unacked` always from the management API, so
    /// it lags by the broker's statistics interval.
    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>> {
        let declared = match &mut self.amqp {
            Some(amqp) => amqp.declared(vhost, queue)?,
            None => None,
        };
        let Some(q) = self.management.queue(vhost, queue)? else {
            return Ok(None);
        };
        if self.amqp.is_some() && declared.is_none() {
            // The management API lists a queue the AMQP URL cannot see (its user has no access
            // to the vhost): never read that as "no such queue", which would end a drain wait.
            return Err(Error::Backend(format!(
                "{}: the management API lists queue {queue} in vhost {vhost}, but the AMQP URL cannot see it (does its user have access to the vhost?)",
                self.describe()
            )));
        }
        Ok(Some(match declared {
            Some(d) => Depth {
                ready: d.ready,
                unacked: q.unacked,
                consumers: d.consumers,
            },
            None => Depth {
                ready: q.messages.saturating_sub(q.unacked),
                unacked: q.unacked,
                consumers: q.consumers,
            },
        }))
    }

    fn create(&mut self, definition: &Definition) -> Result<()> {
        let what = format!("creating {definition}");
        match definition {
            Definition::Exchange(e) => self.create_exchange(e, &what),
            Definition::Queue(q) => self.create_queue(q, &what),
            Definition::Binding(b) => self.create_binding(b, &what),
            Definition::Policy(p) => self.create_policy(p, &what),
        }
    }

    /// A dynamic shovel (`PUT /api/parameters/shovel/{vhost}/{name}`) from this broker's AMQP
    /// URL to the destination's, both from the plan's `amqp_url_env` variables and set to the
    /// shovel's vhost. The URLs, with their passwords, go only into the broker's parameter.
    fn start_shovel(&mut self, shovel: &Shovel<'_>) -> Result<()> {
        let source = shovel_uri(
            (self.alias.as_str(), self.id.as_str()),
            self.amqp_url_env.as_deref(),
            shovel,
        )?;
        super::check_amqp_url(shovel.to, None)?;
        let to = shovel.to.alias.to_string();
        let destination = shovel_uri(
            (to.as_str(), shovel.to.id.as_str()),
            shovel.to.amqp_url_env.as_deref(),
            shovel,
        )?;
        let mut parameter = RuntimeParameterDefinition::from(Amqp091ShovelParams {
            name: &shovel.name,
            vhost: &shovel.vhost,
            acknowledgement_mode: MessageTransferAcknowledgementMode::WhenConfirmed,
            reconnect_delay: None,
            source: Amqp091ShovelSourceParams::queue_source(&source, &shovel.queue),
            destination: Amqp091ShovelDestinationParams::queue_destination(
                &destination,
                &shovel.queue,
            ),
        });
        // Not in the crate's parameters: the shovel deletes itself once it has moved what the
        // queue held when it started.
        parameter
            .value
            .insert("src-delete-after".to_owned(), json!("queue-length"));
        counted("PUT /api/parameters/shovel/{vhost}/{name}", || {
            self.management.api().upsert_runtime_parameter(&parameter)
        })
        .map_err(|err| {
            let what = format!("starting shovel {} in vhost {}", shovel.name, shovel.vhost);
            let message = self.management.api_error(&what, err).to_string();
            Error::Backend(without_passwords(&message, &[&source, &destination]))
        })
    }

    fn links(&mut self) -> Result<Vec<Link>> {
        self.management.links()
    }

    /// `PUT /api/parameters/federation-upstream/{vhost}/{name}` with `uri` and `ack-mode`
    /// alone, through the crate's runtime parameters: its `FederationUpstreamParams` writes
    /// `"queue": null` for a queue upstream, which RabbitMQ 3.10 refuses ("queue should be
    /// binary"). The URL, with its password, goes only into the broker's parameter.
    fn create_upstream(&mut self, upstream: &Upstream, from: &ResolvedBroker) -> Result<()> {
        let uri = upstream_uri(upstream, from)?.ok_or_else(|| {
            Error::Refused(format!(
                "federation upstream {} in vhost {} cannot be declared: it reads from the {} broker {} at the URL in {}, which is not set (it should hold amqp(s)://user:password@host:port)",
                upstream.name, upstream.vhost, from.alias, from.id, upstream.url_env
            ))
        })?;
        let what = format!(
            "declaring federation upstream {} in vhost {}",
            upstream.name, upstream.vhost
        );
        let failed = |err| {
            let message = self.management.api_error(&what, err).to_string();
            Error::Backend(without_passwords(&message, &[&uri]))
        };
        let api = self.management.api();
        match counted(
            "GET /api/parameters/federation-upstream/{vhost}/{name}",
            || {
                api.get_runtime_parameter(
                    FEDERATION_UPSTREAM_COMPONENT,
                    &upstream.vhost,
                    &upstream.name,
                )
            },
        ) {
            Ok(existing) if existing.value.get("uri").and_then(Value::as_str) == Some(&uri) => {
                return Ok(());
            }
            Ok(_) | Err(ApiError::NotFound) => {}
            Err(err) => return Err(failed(err)),
        }
        let mut value = Map::new();
        value.insert("uri".to_owned(), json!(uri));
        value.insert("ack-mode".to_owned(), json!("on-confirm"));
        counted(
            "PUT /api/parameters/federation-upstream/{vhost}/{name}",
            || {
                api.upsert_runtime_parameter(&RuntimeParameterDefinition {
                    name: &upstream.name,
                    vhost: &upstream.vhost,
                    component: FEDERATION_UPSTREAM_COMPONENT,
                    value,
                })
            },
        )
        .map_err(failed)
    }

    fn remove_upstream(&mut self, vhost: &str, name: &str) -> Result<()> {
        counted(
            "DELETE /api/parameters/federation-upstream/{vhost}/{name}",
            || {
                self.management
                    .api()
                    .delete_federation_upstream(vhost, name, true)
            },
        )
        .map_err(|err| {
            let what = format!("deleting federation upstream {name} in vhost {vhost}");
            self.management.api_error(&what, err)
        })
    }

    fn remove_policy(&mut self, vhost: &str, name: &str) -> Result<()> {
        counted("DELETE /api/policies/{vhost}/{name}", || {
            self.management.api().delete_policy(vhost, name, true)
        })
        .map_err(|err| {
            let what = format!("deleting policy {name} in vhost {vhost}");
            self.management.api_error(&what, err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shovel_uri_is_set_to_the_shovels_vhost() {
        assert_eq!(
            with_vhost("amqp://u:p@127.0.0.1:5672/%2F", "esr/orders").as_deref(),
            Some("amqp://u:p@127.0.0.1:5672/esr%2Forders")
        );
        assert_eq!(
            with_vhost("amqps://u:p@b-1.mq.example.com:5671?heartbeat=10", "/").as_deref(),
            Some("amqps://u:p@b-1.mq.example.com:5671/%2F?heartbeat=10")
        );
        assert_eq!(
            with_vhost("amqp://u:p@[fd00::2]/x", "v").as_deref(),
            Some("amqp://u:p@[fd00::2]/v")
        );
        assert_eq!(with_vhost("not a url", "/"), None);
    }
}
