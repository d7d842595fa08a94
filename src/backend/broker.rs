//! A broker's own view: queues, exchanges, bindings and connections read through RabbitMQ's
//! management HTTP API (which Amazon MQ for RabbitMQ serves too).
//!
//! The URL, with its credentials, comes from the environment variable the plan names
//! (`management_url_env`); it never appears in a message: passwords are shown as `****`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::discovery::{mask_password, HostRef, ResolvedBroker};
use crate::error::{Error, Result};
use crate::model::{Binding, Broker, Connection, Exchange, Queue};

/// A client of one broker's management API.
pub struct Management {
    /// `scheme://host:port` (no credentials, no trailing slash).
    base: String,
    /// The URL as it may be shown.
    shown: String,
    authorization: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Management")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ApiQueue {
    name: String,
    vhost: String,
    #[serde(default)]
    messages: Option<u64>,
    #[serde(default)]
    consumers: Option<u64>,
}

#[derive(Deserialize)]
struct ApiExchange {
    name: String,
    vhost: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ApiBinding {
    source: String,
    vhost: String,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
}

#[derive(Deserialize)]
struct ApiConnection {
    #[serde(default)]
    user_provided_name: Option<String>,
    #[serde(default)]
    client_properties: Option<serde_json::Value>,
    #[serde(default)]
    peer_host: Option<String>,
    #[serde(default)]
    peer_port: Option<u16>,
}

/// How long to wait for a queue's statistics: a queue's message and consumer counts appear in the
/// management API only with its first statistics event, a few seconds after the queue is
/// declared or its node restarts (about 5 s, seen on RabbitMQ 3.10). Until then they are
/// unknown, not zero.
const STATS_WAIT: Duration = Duration::from_secs(15);
/// How often to ask again while waiting for them.
const STATS_POLL: Duration = Duration::from_millis(500);

/// Percent-encodes one path segment (vhost `/` becomes `%2F`).
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Two hex digits, checked as bytes: slicing `text` there could split a character.
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Management {
    /// A client for `url` (`http(s)://user:password@host:port`).
    ///
    /// # Errors
    /// [`Error::Refused`] when `url` is not such a URL (the message masks the password).
    pub fn new(url: &str) -> Result<Management> {
        let url = url.trim();
        let shown = mask_password(url);
        let parts = HostRef::parse(url)
            .filter(|p| {
                p.scheme
                    .as_ref()
                    .is_some_and(|s| matches!(&url[s.clone()], "http" | "https"))
            })
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{shown} is not a management URL (expected http(s)://user:password@host:port)"
                ))
            })?;
        let scheme = &url[parts.scheme.clone().expect("checked above")];
        let host = &url[parts.host.clone()];
        let port = parts
            .port
            .clone()
            .map(|p| format!(":{}", &url[p]))
            .unwrap_or_default();
        let authorization =
            match url[parts.scheme.expect("checked").end + 3..parts.host.start].strip_suffix('@') {
                Some(userinfo) => {
                    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                    let token = format!("{}:{}", percent_decode(user), percent_decode(password));
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(token)
                    ))
                }
                None => None,
            };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Management {
            base: format!("{scheme}://{host}{port}"),
            shown,
            authorization,
            agent,
        })
    }

    /// The client for `broker`, from the environment variable the plan names.
    ///
    /// # Errors
    /// [`Error::Backend`] when the plan names no variable or the variable is not set.
    pub fn for_broker(broker: &ResolvedBroker) -> Result<Management> {
        let Some(var) = &broker.management_url_env else {
            return Err(Error::Backend(format!(
                "the queues of the {} broker {} cannot be read: the plan gives no `management_url_env` for it",
                broker.alias, broker.id
            )));
        };
        match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => Management::new(&url),
            _ => Err(Error::Backend(format!(
                "the queues of the {} broker {} cannot be read: {var} is not set (it should hold http(s)://user:password@host:port)",
                broker.alias, broker.id
            ))),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| {
            Error::Backend(format!(
                "cannot reach the management API at {}: {e}",
                self.shown
            ))
        })?;
        match response.status().as_u16() {
            200 => response.body_mut().read_json().map(Some).map_err(|e| {
                Error::Backend(format!("unexpected answer from {}{path}: {e}", self.shown))
            }),
            404 => Ok(None),
            401 | 403 => Err(Error::Backend(format!(
                "the management API at {} refused the credentials (HTTP {})",
                self.shown,
                response.status().as_u16()
            ))),
            code => Err(Error::Backend(format!(
                "GET {}{path} answered HTTP {code}",
                self.shown
            ))),
        }
    }

    /// A list endpoint: a 404 there means the URL is not a management API, not "none".
    fn list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        self.get(path)?.ok_or_else(|| {
            Error::Backend(format!(
                "GET {}{path} answered HTTP 404: is this RabbitMQ's management API?",
                self.shown
            ))
        })
    }

    /// Reads with `read` until every queue it returns has its statistics (see [`STATS_WAIT`]).
    ///
    /// # Errors
    /// [`Error::Backend`] when `read` fails, or a queue still has none after [`STATS_WAIT`].
    fn with_stats<T>(
        &self,
        mut read: impl FnMut() -> Result<T>,
        pending: impl Fn(&T) -> Option<String>,
    ) -> Result<T> {
        let deadline = Instant::now() + STATS_WAIT;
        loop {
            let value = read()?;
            match pending(&value) {
                None => return Ok(value),
                Some(queue) if Instant::now() >= deadline => {
                    return Err(Error::Backend(format!(
                        "the management API at {} gives no message count for {queue} (no statistics after {}s), so what it holds is unknown",
                        self.shown,
                        STATS_WAIT.as_secs()
                    )))
                }
                Some(_) => std::thread::sleep(STATS_POLL),
            }
        }
    }

    /// The queue `vhost`/`name`, or `None` when the broker has no such queue. Waits (up to 15 s)
    /// for a new queue's first statistics rather than taking its unknown counts for zero.
    ///
    /// # Errors
    /// [`Error::Backend`] when the API cannot be reached or refuses, or the counts stay unknown.
    pub fn queue(&self, vhost: &str, name: &str) -> Result<Option<Queue>> {
        let path = format!("/api/queues/{}/{}", segment(vhost), segment(name));
        let found: Option<ApiQueue> = self.with_stats(
            || self.get(&path),
            |q: &Option<ApiQueue>| {
                q.as_ref()
                    .filter(|q| q.messages.is_none())
                    .map(|q| format!("{} {}", q.vhost, q.name))
            },
        )?;
        Ok(found.map(|q| Queue {
            vhost: q.vhost,
            name: q.name,
            messages: q.messages.unwrap_or(0),
            consumers: q.consumers.unwrap_or(0),
            ..Queue::default()
        }))
    }

    /// Fills `broker`'s queues, exchanges, bindings and connections from the broker itself.
    /// Waits (up to 15 s) until every queue has statistics rather than taking unknown counts for
    /// zero.
    ///
    /// # Errors
    /// [`Error::Backend`] when the API cannot be reached or refuses, or counts stay unknown.
    pub fn read_into(&self, broker: &mut Broker) -> Result<()> {
        let queues: Vec<ApiQueue> = self.with_stats(
            || self.list("/api/queues"),
            |qs: &Vec<ApiQueue>| {
                qs.iter()
                    .find(|q| q.messages.is_none())
                    .map(|q| format!("{} {}", q.vhost, q.name))
            },
        )?;
        let exchanges: Vec<ApiExchange> = self.list("/api/exchanges")?;
        let bindings: Vec<ApiBinding> = self.list("/api/bindings")?;
        let connections: Vec<ApiConnection> = self.list("/api/connections")?;
        broker.queues = Some(
            queues
                .into_iter()
                .map(|q| Queue {
                    vhost: q.vhost,
                    name: q.name,
                    messages: q.messages.unwrap_or(0),
                    consumers: q.consumers.unwrap_or(0),
                    ..Queue::default()
                })
                .collect(),
        );
        broker.exchanges = exchanges
            .into_iter()
            .filter(|e| !e.name.is_empty() && !e.name.starts_with("amq."))
            .map(|e| Exchange {
                vhost: e.vhost,
                name: e.name,
                kind: e.kind,
            })
            .collect();
        broker.bindings = bindings
            .into_iter()
            .filter(|b| !b.source.is_empty() && b.destination_type == "queue")
            .map(|b| Binding {
                vhost: b.vhost,
                exchange: b.source,
                queue: b.destination,
                routing_key: b.routing_key,
            })
            .collect();
        broker.connections = connections
            .into_iter()
            .map(|c| {
                let named = c.user_provided_name.or_else(|| {
                    c.client_properties
                        .as_ref()
                        .and_then(|p| p.get("connection_name"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                });
                Connection {
                    client: named.unwrap_or_default(),
                    peer: match (c.peer_host, c.peer_port) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h,
                        _ => String::new(),
                    },
                    ..Connection::default()
                }
            })
            .collect();
        Ok(())
    }
}

/// Reads the queues, exchanges, bindings and connections of `broker` from the broker itself
/// into `world`, when the backend could not see them and the plan gives a management URL that
/// is set. A simulated broker (one whose queues the world lists) is left as it is.
///
/// # Errors
/// [`Error::Backend`] when the URL is set but the broker cannot be read.
pub fn read_topology(world: &mut crate::model::World, broker: &ResolvedBroker) -> Result<()> {
    let set = broker
        .management_url_env
        .as_ref()
        .is_some_and(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
    if !set {
        return Ok(());
    }
    let index = match broker.index_in(world) {
        Some(i) if world.brokers[i].queues.is_some() => return Ok(()),
        Some(i) => i,
        None => {
            world.brokers.push(Broker {
                id: broker.id.clone(),
                name: broker.name.clone(),
                state: "RUNNING".to_owned(),
                endpoints: broker.endpoints.clone(),
                ..Broker::default()
            });
            world.brokers.len() - 1
        }
    };
    Management::for_broker(broker)?.read_into(&mut world.brokers[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_credentials_out_of_sight() {
        let m = Management::new("https://admin:s3cret@b-1.mq.eu-west-2.amazonaws.com:443").unwrap();
        assert_eq!(m.base, "https://b-1.mq.eu-west-2.amazonaws.com:443");
        assert_eq!(
            m.shown,
            "https://admin:****@b-1.mq.eu-west-2.amazonaws.com:443"
        );
        assert!(m
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")));
        assert!(
            !format!("{m:?}").contains("Basic"),
            "Debug shows no credentials"
        );
        let err = Management::new("amqps://admin:s3cret@host:5671")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("/"), "%2F");
        assert_eq!(segment("esr.queue.a b"), "esr.queue.a%20b");
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(
            percent_decode("%aé%+1%4"),
            "%aé%+1%4",
            "not escapes, and no panic"
        );
    }
}
