//! A broker's own view: queues, exchanges, bindings and connections read through RabbitMQ's
//! management HTTP API (which Amazon MQ for RabbitMQ serves too).
//!
//! The URL, with its credentials, comes from the environment variable the plan names
//! (`management_url_env`); it never appears in a message: passwords are shown as `****`.
//!
//! A URL is only used for the broker it is named for: its host is one of the broker's endpoint
//! hosts, its console URL's host or its aliases, or else the broker's management API names it
//! (`GET /api/overview`'s `cluster_name` is the broker's id or name). An AMQP URL
//! (`amqp_url_env`) passes by host, or when its host is the host of the broker's verified
//! management URL.
// The closures counted for `--stats` pass rabbitmq_http_client's own error on unchanged.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rabbitmq_http_client::blocking_api::{Client, ClientBuilder};
use rabbitmq_http_client::commons::BindingDestinationType;
use rabbitmq_http_client::error::{Error as ApiError, HttpClientError};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::discovery::{hosts_in, mask_password, HostRef, ResolvedBroker};
use crate::error::{Error, Result};
use crate::model::{Binding, Broker, Connection, Exchange, Link, LinkKind, Policy, Queue};

/// rabbitmq_http_client's client, its endpoint and credentials held as strings.
pub(super) type Api = Client<String, String, String>;

/// A client of one broker's management API, through rabbitmq_http_client.
pub struct Management {
    /// `scheme://host:port` (no credentials, no trailing slash).
    base: String,
    /// The URL as it may be shown.
    shown: String,
    /// The URL's host, lower-cased.
    host: String,
    /// The user and password, percent-decoded; `None` when the URL has none.
    credentials: Option<(String, String)>,
    /// The HTTP client `api` is built on, for the reads whose typed answers would take a
    /// missing count for zero (see [`ApiQueue`]).
    http: reqwest::blocking::Client,
    api: Api,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Management")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// What `GET /api/overview` says about who the broker is. Read raw: the crate's `Overview`
/// requires fields (rates, listeners) that only the name is needed of, and that not every
/// version or proxy in front of a broker answers.
#[derive(Deserialize)]
struct ApiOverview {
    #[serde(default)]
    cluster_name: Option<String>,
}

/// A queue as `GET /api/queues` gives it. Read raw, not through the crate's `QueueInfo`: that
/// reads a count the answer does not carry (a new queue's, before its first statistics) as 0,
/// and warren must never take an unknown count for zero.
#[derive(Deserialize)]
struct ApiQueue {
    name: String,
    vhost: String,
    #[serde(default)]
    messages: Option<u64>,
    #[serde(default)]
    messages_unacknowledged: Option<u64>,
    #[serde(default)]
    consumers: Option<u64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    durable: Option<bool>,
    #[serde(default)]
    auto_delete: Option<bool>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    /// Counts of what the queue's clients did since the statistics began; absent on a queue
    /// nothing has happened on yet.
    #[serde(default)]
    message_stats: Option<ApiMessageStats>,
}

/// Of a queue's `message_stats`, the counts of `basic.get`: with acknowledgement (`get`),
/// without (`get_no_ack`), and on an empty queue (`get_empty`).
#[derive(Deserialize, Default)]
struct ApiMessageStats {
    #[serde(default)]
    get: u64,
    #[serde(default)]
    get_no_ack: u64,
    #[serde(default)]
    get_empty: u64,
}

impl ApiMessageStats {
    /// Whether any client fetched from the queue with `basic.get`.
    fn polled(&self) -> bool {
        self.get > 0 || self.get_no_ack > 0 || self.get_empty > 0
    }
}

impl ApiQueue {
    /// Whether the answer lacks a count warren reads (see [`Management::with_stats`]).
    fn counts_unknown(&self) -> bool {
        self.messages.is_none() || self.messages_unacknowledged.is_none()
    }

    fn into_queue(self) -> Queue {
        Queue {
            vhost: self.vhost,
            name: self.name,
            messages: self.messages.unwrap_or(0),
            unacked: self.messages_unacknowledged.unwrap_or(0),
            consumers: self.consumers.unwrap_or(0),
            kind: self.kind,
            durable: self.durable,
            auto_delete: self.auto_delete,
            arguments: self.arguments.unwrap_or_default(),
            polled: self
                .message_stats
                .as_ref()
                .is_some_and(ApiMessageStats::polled),
            ..Queue::default()
        }
    }
}

/// A consumer as `GET /api/consumers` gives it: the queue it reads and, in its channel's
/// details, the (server-given) name of its connection. Read raw: the crate's `Consumer` requires
/// fields (`consumer_timeout`…) that older brokers do not send, and an empty `channel_details`
/// comes as `[]`.
#[derive(Deserialize)]
struct ApiConsumer {
    queue: ApiConsumerQueue,
    #[serde(default)]
    channel_details: Value,
}

#[derive(Deserialize)]
struct ApiConsumerQueue {
    name: String,
    vhost: String,
}

impl ApiConsumer {
    /// The server-given name of the consumer's connection, where its details say.
    fn connection(&self) -> Option<&str> {
        self.channel_details
            .get("connection_name")
            .and_then(Value::as_str)
    }
}

/// Fills each of `queues`' `consumed_by` with the client-given names of its consumers'
/// connections, once each: `client_names` maps a connection's server-given name (as a consumer's
/// channel details give it) to the name its client gave it. A consumer on a connection its
/// client did not name is left out: its count stays in `consumers`.
fn name_consumers(
    queues: &mut [Queue],
    consumers: &[ApiConsumer],
    client_names: &HashMap<String, String>,
) {
    for consumer in consumers {
        let Some(client) = consumer
            .connection()
            .and_then(|c| client_names.get(c))
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        if let Some(queue) = queues
            .iter_mut()
            .find(|q| q.vhost == consumer.queue.vhost && q.name == consumer.queue.name)
        {
            if !queue.consumed_by.contains(client) {
                queue.consumed_by.push(client.clone());
            }
        }
    }
}

/// An exchange as `GET /api/exchanges` gives it; raw for `internal`, which the crate's
/// `ExchangeInfo` leaves out.
#[derive(Deserialize)]
struct ApiExchange {
    name: String,
    vhost: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    durable: Option<bool>,
    #[serde(default)]
    auto_delete: Option<bool>,
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

/// A federation link as `GET /api/federation-links` gives it. Read raw: the crate's
/// `FederationLink` leaves out the queue (or exchange) the link feeds, which tells whose link is
/// `running`.
#[derive(Deserialize)]
struct ApiFederationLink {
    vhost: String,
    upstream: String,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    status: String,
    /// The federated queue, for a queue's link.
    #[serde(default)]
    queue: Option<String>,
    /// The federated exchange, for an exchange's link.
    #[serde(default)]
    exchange: Option<String>,
}

/// How long to wait for a queue's statistics: a queue's message and consumer counts appear in the
/// management API only with its first statistics event, a few seconds after the queue is
/// declared or its node restarts (about 5 s, seen on RabbitMQ 3.10). Until then they are
/// unknown, not zero.
const STATS_WAIT: Duration = Duration::from_secs(15);
/// How often to ask again while waiting for them.
const STATS_POLL: Duration = Duration::from_millis(500);

/// Percent-encodes one path segment (vhost `/` becomes `%2F`).
pub(super) fn segment(text: &str) -> String {
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

pub(super) fn percent_decode(text: &str) -> String {
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

/// What is wrong with `url`, which is not an `http(s)://user:password@host:port` URL, said
/// without any part of it.
fn url_fault(url: &str) -> &'static str {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "it has no `scheme://`";
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return "its scheme is not http or https";
    }
    let authority = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or(authority);
    if authority.is_empty() {
        "it has no host"
    } else if authority.starts_with('[') && !authority.contains(']') {
        "its host's `[` is not closed"
    } else {
        "its host or port cannot be read"
    }
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
                // Never the value: a URL warren cannot parse may hide a password it cannot mask.
                Error::Refused(format!(
                    "it is not a management URL ({}; expected http(s)://user:password@host:port)",
                    url_fault(url)
                ))
            })?;
        let scheme = &url[parts.scheme.clone().expect("checked above")];
        let host = &url[parts.host.clone()];
        // An IPv6 literal keeps its brackets in the URL called; they are not part of the host.
        let (authority_host, host_start) = if parts.bracketed {
            (format!("[{host}]"), parts.host.start - 1)
        } else {
            (host.to_owned(), parts.host.start)
        };
        let port = parts
            .port
            .clone()
            .map(|p| format!(":{}", &url[p]))
            .unwrap_or_default();
        let credentials = url[parts.scheme.expect("checked").end + 3..host_start]
            .strip_suffix('@')
            .map(|userinfo| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (percent_decode(user), percent_decode(password))
            });
        let base = format!("{scheme}://{authority_host}{port}");
        // No redirects: a redirect could carry the credentials to another host.
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::Backend(format!(
                    "cannot make an HTTP client for {shown}: {}",
                    chain(&e)
                ))
            })?;
        let (user, password) = credentials.clone().unwrap_or_default();
        let api = ClientBuilder::new()
            .with_endpoint(format!("{base}/api"))
            .with_basic_auth_credentials(user, password)
            .with_client(http.clone())
            .build()
            .map_err(|e| Error::Backend(format!("cannot make a client for {shown}: {e}")))?;
        Ok(Management {
            base,
            shown,
            host: host.to_ascii_lowercase(),
            credentials,
            http,
            api,
        })
    }

    /// The URL's host, lower-cased.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL as it may be shown (password masked).
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The client for `broker`, from the environment variable the plan names, once the URL is
    /// known to belong to `broker` (see the module's doc).
    ///
    /// # Errors
    /// [`Error::Backend`] when the plan names no variable, the variable is not set, or the API
    /// cannot be asked who it is; [`Error::Refused`] when the URL belongs to another broker
    /// (the message names the variable, the broker and why, never the password).
    pub fn for_broker(broker: &ResolvedBroker) -> Result<Management> {
        let management = Management::unverified(broker)?;
        let var = broker.management_url_env.as_deref().unwrap_or_default();
        management.verify(broker, var)?;
        Ok(management)
    }

    /// The client for `broker`'s variable, not yet checked against the broker.
    fn unverified(broker: &ResolvedBroker) -> Result<Management> {
        let Some(var) = &broker.management_url_env else {
            return Err(Error::Backend(format!(
                "the queues of the {} broker {} cannot be read: the plan gives no `management_url_env` for it",
                broker.alias, broker.id
            )));
        };
        match super::url_in(var) {
            Some(url) => Management::new(&url).map_err(|e| match e {
                Error::Refused(why) => Error::Refused(format!(
                    "{var}, the management URL of the {} broker {}: {why}",
                    broker.alias, broker.id
                )),
                other => other,
            }),
            None => Err(Error::Backend(format!(
                "the queues of the {} broker {} cannot be read: {var} is not set (it should hold http(s)://user:password@host:port)",
                broker.alias, broker.id
            ))),
        }
    }

    /// Whether this URL belongs to `broker`: by host, else by the name the API gives itself.
    ///
    /// # Errors
    /// As [`Management::for_broker`]; `var` is the variable the URL came from.
    fn verify(&self, broker: &ResolvedBroker, var: &str) -> Result<()> {
        if owned_by_host(broker, &self.host) {
            return Ok(());
        }
        let overview: Option<ApiOverview> = self.get("/api/overview").map_err(|e| {
            Error::Backend(format!(
                "{var} cannot be checked against the {} broker {}: its host {} is not the broker's, and asking the API who it is failed: {e}",
                broker.alias, broker.id, self.host
            ))
        })?;
        let cluster = overview.and_then(|o| o.cluster_name);
        if let Some(name) = &cluster {
            if names_broker(broker, name) {
                return Ok(());
            }
        }
        let known = std::iter::once(broker.id.as_str())
            .chain(broker.name.as_deref())
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        Err(Error::Refused(format!(
            "{var} ({}) does not belong to the {} broker {}: its host {} is none of the broker's hosts ({}), and its management API names {}, not {known}; nothing was read through it",
            self.shown,
            broker.alias,
            broker.id,
            self.host,
            broker_hosts(broker).join(", "),
            cluster.map_or_else(|| "no cluster".to_owned(), |c| format!("cluster `{c}`"))
        )))
    }

    /// rabbitmq_http_client's client of this API, and the URL as it may be shown.
    pub(super) fn api(&self) -> &Api {
        &self.api
    }

    /// A raw `GET` of `path` through the crate's HTTP client; `None` on 404. A read answered
    /// with a server error is asked again, twice at most (RabbitMQ answers 500 when a plugin's
    /// status, such as federation's, is not gathered in time).
    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        let response = loop {
            let mut request = self.http.get(format!("{}{path}", self.base));
            if let Some((user, password)) = &self.credentials {
                request = request.basic_auth(user, Some(password));
            }
            let response = crate::stats::timed(|| endpoint("GET", path), || request.send())
                .map_err(|e| self.unreachable(&e))?;
            if !response.status().is_server_error() || attempt == ATTEMPTS {
                break response;
            }
            std::thread::sleep(std::time::Duration::from_millis(250 * u64::from(attempt)));
            attempt += 1;
        };
        match response.status().as_u16() {
            200 => response.json().map(Some).map_err(|e| {
                Error::Backend(format!(
                    "unexpected answer from {}{path}: {}",
                    self.shown,
                    chain(&e)
                ))
            }),
            404 => Ok(None),
            code @ (401 | 403) => Err(self.refused_credentials(code)),
            code => Err(Error::Backend(format!(
                "GET {}{path} answered HTTP {code}",
                self.shown
            ))),
        }
    }

    /// A raw `PUT` of `body` to `path`, for what the crate's parameters cannot say; `what`
    /// names it in errors.
    pub(super) fn put(&self, path: &str, body: &Value, what: &str) -> Result<()> {
        let mut request = self.http.put(format!("{}{path}", self.base)).json(body);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = crate::stats::timed(|| endpoint("PUT", path), || request.send())
            .map_err(|e| self.unreachable(&e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            code @ (401 | 403) => Err(self.refused_credentials(code)),
            code => {
                let reason = response
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                Err(Error::Backend(format!(
                    "{what} on {} answered HTTP {code}{reason}",
                    self.shown
                )))
            }
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        Error::Backend(format!(
            "cannot reach the management API at {}: {}",
            self.shown,
            chain(e)
        ))
    }

    fn refused_credentials(&self, code: u16) -> Error {
        Error::Backend(format!(
            "the management API at {} refused the credentials (HTTP {code})",
            self.shown
        ))
    }

    /// The error for `e`, an answer of the crate's client to `what` (`GET /api/bindings`,
    /// `PUT queue esr.q`), said with the URL's password masked.
    pub(super) fn api_error(&self, what: &str, e: HttpClientError) -> Error {
        match e {
            ApiError::RequestError { error, .. } => self.unreachable(&error),
            ApiError::ClientErrorResponse { status_code, .. }
                if matches!(status_code.as_u16(), 401 | 403) =>
            {
                self.refused_credentials(status_code.as_u16())
            }
            ApiError::ClientErrorResponse {
                status_code,
                error_details,
                ..
            }
            | ApiError::ServerErrorResponse {
                status_code,
                error_details,
                ..
            } => Error::Backend(format!(
                "{what} on {} answered HTTP {}{}",
                self.shown,
                status_code.as_u16(),
                error_details
                    .as_ref()
                    .and_then(|d| d.reason())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            ApiError::NotFound => Error::Backend(format!(
                "{what} on {} answered HTTP 404: is this RabbitMQ's management API?",
                self.shown
            )),
            other => Error::Backend(format!(
                "{what} on {}: unexpected answer: {other}",
                self.shown
            )),
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

    /// The message counts of the queues of `vhost` (every vhost when `None`) as the queues
    /// themselves report them (`disable_stats` with `enable_queue_totals`): known at once, where
    /// the statistics of a new queue take a few seconds to arrive. Brokers older than 3.8 ignore
    /// the parameters; their queues then have no counts here.
    fn totals(&self, vhost: Option<&str>) -> Result<Vec<ApiQueue>> {
        let scope = vhost
            .map(|v| format!("/{}", segment(v)))
            .unwrap_or_default();
        self.list(&format!(
            "/api/queues{scope}?disable_stats=true&enable_queue_totals=true"
        ))
    }

    /// Fills in the message and unacknowledged counts of every queue in `queues` whose
    /// statistics have not arrived yet from the counts the queues report themselves (see
    /// [`Management::totals`]).
    fn with_totals(&self, mut queues: Vec<ApiQueue>, vhost: Option<&str>) -> Result<Vec<ApiQueue>> {
        if !queues.iter().any(ApiQueue::counts_unknown) {
            return Ok(queues);
        }
        let totals: HashMap<(String, String), (Option<u64>, Option<u64>)> = self
            .totals(vhost)?
            .into_iter()
            .map(|q| ((q.vhost, q.name), (q.messages, q.messages_unacknowledged)))
            .collect();
        for queue in queues.iter_mut().filter(|q| q.counts_unknown()) {
            if let Some((messages, unacked)) =
                totals.get(&(queue.vhost.clone(), queue.name.clone()))
            {
                queue.messages = queue.messages.or(*messages);
                queue.messages_unacknowledged = queue.messages_unacknowledged.or(*unacked);
            }
        }
        Ok(queues)
    }

    /// The queue `vhost`/`name`, or `None` when the broker has no such queue. Its message count
    /// is never taken for zero while unknown: a new queue's comes from the queue itself until
    /// its statistics arrive, and warren waits (up to 15 s) where neither says.
    ///
    /// # Errors
    /// [`Error::Backend`] when the API cannot be reached or refuses, or the counts stay unknown.
    pub fn queue(&self, vhost: &str, name: &str) -> Result<Option<Queue>> {
        let path = format!("/api/queues/{}/{}", segment(vhost), segment(name));
        let found: Option<ApiQueue> = self.with_stats(
            || {
                let found: Option<ApiQueue> = self.get(&path)?;
                Ok(match found {
                    Some(q) => self.with_totals(vec![q], Some(vhost))?.pop(),
                    None => None,
                })
            },
            |q: &Option<ApiQueue>| {
                q.as_ref()
                    .filter(|q| q.counts_unknown())
                    .map(|q| format!("{} {}", q.vhost, q.name))
            },
        )?;
        Ok(found.map(ApiQueue::into_queue))
    }

    /// Fills `broker`'s queues, exchanges, bindings and connections from the broker itself; a
    /// queue's `consumed_by` names the connections (by the names their clients gave them) of
    /// its consumers.
    /// Message counts are never taken for zero while unknown (as [`Management::queue`]); a
    /// consumer count is the statistics' own, 0 until a new queue's first statistics arrive
    /// (only warnings and reports show it; decommission goes by messages and connections).
    ///
    /// # Errors
    /// [`Error::Backend`] when the API cannot be reached or refuses, or counts stay unknown.
    pub fn read_into(&self, broker: &mut Broker) -> Result<()> {
        let queues: Vec<ApiQueue> = self.with_stats(
            || self.with_totals(self.list("/api/queues")?, None),
            |qs: &Vec<ApiQueue>| {
                qs.iter()
                    .find(|q| q.counts_unknown())
                    .map(|q| format!("{} {}", q.vhost, q.name))
            },
        )?;
        let exchanges: Vec<ApiExchange> = self.list("/api/exchanges")?;
        let bindings = counted("GET /api/bindings", || self.api.list_bindings())
            .map_err(|e| self.api_error("GET /api/bindings", e))?;
        let connections = counted("GET /api/connections", || self.api.list_connections())
            .map_err(|e| self.api_error("GET /api/connections", e))?;
        let consumers: Vec<ApiConsumer> = self.list("/api/consumers")?;
        let policies = counted("GET /api/policies", || self.api.list_policies())
            .map_err(|e| self.api_error("GET /api/policies", e))?;
        let links = self.links()?;
        let client_names: HashMap<String, String> = connections
            .iter()
            .map(|c| (c.name.clone(), c.client_properties.connection_name.clone()))
            .collect();
        let mut queues: Vec<Queue> = queues.into_iter().map(ApiQueue::into_queue).collect();
        name_consumers(&mut queues, &consumers, &client_names);
        broker.queues = Some(queues);
        broker.exchanges = exchanges
            .into_iter()
            .filter(|e| !e.name.is_empty() && !e.name.starts_with("amq."))
            .map(|e| Exchange {
                vhost: e.vhost,
                name: e.name,
                kind: e.kind,
                durable: e.durable,
                auto_delete: e.auto_delete,
                internal: e.internal,
                arguments: e.arguments.unwrap_or_default(),
            })
            .collect();
        // The default exchange's implicit bindings (source "") say nothing a queue's name does
        // not; an exchange-to-exchange binding routes on, so the graph follows it.
        broker.bindings = bindings
            .into_iter()
            .filter(|b| !b.source.is_empty())
            .map(|b| {
                match b.destination_type {
                    BindingDestinationType::Queue => {
                        Binding::to_queue(&b.vhost, &b.source, &b.destination, &b.routing_key)
                    }
                    BindingDestinationType::Exchange => {
                        Binding::to_exchange(&b.vhost, &b.source, &b.destination, &b.routing_key)
                    }
                }
                .with_arguments(b.arguments.0)
            })
            .collect();
        broker.connections = connections
            .into_iter()
            .map(|c| Connection {
                client: c.client_properties.connection_name,
                peer: match (c.client_hostname, c.client_port) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h,
                    _ => String::new(),
                },
                ..Connection::default()
            })
            .collect();
        broker.policies = policies
            .into_iter()
            .map(|p| Policy {
                vhost: p.vhost,
                name: p.name,
                pattern: p.pattern,
                apply_to: String::from(p.apply_to),
                priority: i64::from(p.priority),
                definition: p.definition.0.unwrap_or_default(),
            })
            .collect();
        broker.links = links;
        Ok(())
    }

    /// The shovels and federation links running on the broker, each kind an empty list where
    /// its plugin is not enabled (the API answers 404). Hosts only, never a URL's credentials; a
    /// federation link names the queue (or exchange) it feeds.
    ///
    /// # Errors
    /// [`Error::Backend`] when the API cannot be reached or refuses.
    pub fn links(&self) -> Result<Vec<Link>> {
        let shovels = match counted("GET /api/shovels", || self.api.list_shovels()) {
            Ok(shovels) => shovels,
            Err(ApiError::NotFound) => Vec::new(),
            Err(e) => return Err(self.api_error("GET /api/shovels", e)),
        };
        let federation: Vec<ApiFederationLink> =
            self.get("/api/federation-links")?.unwrap_or_default();
        let mut links: Vec<Link> = shovels
            .into_iter()
            .map(|s| Link {
                kind: LinkKind::Shovel,
                vhost: s.vhost.unwrap_or_else(crate::model::default_vhost),
                name: s.name,
                from: s.source_uri.as_deref().map(link_hosts).unwrap_or_default(),
                to: s
                    .destination_uri
                    .as_deref()
                    .map(link_hosts)
                    .unwrap_or_default(),
                queue: s.source,
                state: s.state.to_string(),
            })
            .collect();
        links.extend(federation.into_iter().map(|l| Link {
            kind: LinkKind::Federation,
            vhost: l.vhost,
            name: l.upstream,
            from: l.uri.as_deref().map(link_hosts).unwrap_or_default(),
            to: Vec::new(),
            queue: l.queue.or(l.exchange),
            state: l.status,
        }));
        Ok(links)
    }
}

/// Runs `call`, one call of the management API's `endpoint` (`GET /api/bindings`), counted
/// for `--stats`.
pub(super) fn counted<T>(endpoint: &'static str, call: impl FnOnce() -> T) -> T {
    crate::stats::timed(|| endpoint.to_owned(), call)
}

/// `method` and `path` as `--stats` names an endpoint: the path's names (vhosts, queues,
/// exchanges…) replaced by what they are and the query left out, so that the calls of one
/// endpoint count together: `GET /api/queues/{vhost}/{name}`,
/// `PUT /api/parameters/shovel/{vhost}/{name}`.
pub(super) fn endpoint(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut segments = path.trim_start_matches('/').split('/');
    let mut template = String::new();
    // `api` and the collection stay as they are.
    for fixed in segments.by_ref().take(2) {
        template.push('/');
        template.push_str(fixed);
    }
    let collection = template.rsplit('/').next().unwrap_or_default().to_owned();
    let names: &[&str] = match collection.as_str() {
        // `/api/parameters/{component}/{vhost}/{name}`: the component is a kind, not a name.
        "parameters" => &["", "{vhost}", "{name}"],
        "bindings" => &["{vhost}", "", "{source}", "", "{destination}", "{props}"],
        _ => &["{vhost}", "{name}"],
    };
    for (i, segment) in segments.enumerate() {
        template.push('/');
        match names.get(i) {
            Some(&"") => template.push_str(segment),
            Some(name) => template.push_str(name),
            None => template.push_str("{…}"),
        }
    }
    format!("{method} {template}")
}

/// The hosts of a link's URI (a shovel's `src_uri`, a federation link's `uri`), lower-cased:
/// the management API shows them with the password masked or not at all, and warren keeps
/// only the hosts.
fn link_hosts(uri: &str) -> Vec<String> {
    hosts_in(uri)
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// `e` and the errors under it, joined: reqwest's own message ("error sending request") names
/// no cause.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The hosts a URL may have to belong to `broker` by host: its endpoint hosts and aliases, and
/// its console URL's host.
fn broker_hosts(broker: &ResolvedBroker) -> Vec<String> {
    let mut hosts = broker.hosts.clone();
    hosts.extend(
        broker
            .console_url
            .as_deref()
            .map(hosts_in)
            .unwrap_or_default(),
    );
    hosts.dedup();
    hosts
}

/// Whether `host` is one of [`broker_hosts`].
fn owned_by_host(broker: &ResolvedBroker, host: &str) -> bool {
    broker_hosts(broker)
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
}

/// Whether `cluster_name` (what the management API calls itself) is `broker`'s id or name.
fn names_broker(broker: &ResolvedBroker, cluster_name: &str) -> bool {
    let name = cluster_name.trim();
    !name.is_empty() && (name == broker.id || broker.name.as_deref() == Some(name))
}

/// Checks `broker`'s AMQP URL (`amqp_url_env`), when its variable is set: it belongs to the
/// broker when its host is one of the broker's hosts (see [`owned_by_host`]) or the host of the
/// broker's verified management URL, `management_host`.
///
/// # Errors
/// [`Error::Refused`] naming the variable, the broker and why (never the password).
pub fn check_amqp_url(broker: &ResolvedBroker, management_host: Option<&str>) -> Result<()> {
    let Some(var) = &broker.amqp_url_env else {
        return Ok(());
    };
    let Some(url) = super::url_in(var) else {
        return Ok(());
    };
    amqp_url_belongs(broker, var, &url, management_host)
}

/// As [`check_amqp_url`], for `url` read from `var`.
pub(super) fn amqp_url_belongs(
    broker: &ResolvedBroker,
    var: &str,
    url: &str,
    management_host: Option<&str>,
) -> Result<()> {
    let Some(host) = hosts_in(url).into_iter().next() else {
        // Never the value: a URL warren cannot parse may hide a password it cannot mask.
        return Err(Error::Refused(format!(
            "{var}, the AMQP URL of the {} broker {}, is not an AMQP URL: its host cannot be read (expected amqp(s)://user:password@host:port/vhost)",
            broker.alias, broker.id
        )));
    };
    let shown = mask_password(url);
    if owned_by_host(broker, &host)
        || management_host.is_some_and(|m| m.eq_ignore_ascii_case(&host))
    {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{var} ({shown}) does not belong to the {} broker {}: its host {host} is none of the broker's hosts ({}) nor the host of its management URL",
        broker.alias,
        broker.id,
        broker_hosts(broker).join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A management API on loopback whose first `failing` answers are HTTP 500 and the others
    /// `[]`; gives its URL and the count of requests it has answered.
    fn flaky_api(failing: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer: &[u8] = if n < failing {
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
                };
                let _ = stream.write_all(answer);
            }
        });
        (url, answered)
    }

    #[test]
    fn a_read_answered_with_a_server_error_is_asked_again_twice_at_most() {
        use std::sync::atomic::Ordering;
        let (url, answered) = flaky_api(2);
        let api = Management::new(&url).unwrap();
        let links: Option<Vec<serde_json::Value>> = api.get("/api/federation-links").unwrap();
        assert_eq!(links, Some(Vec::new()));
        assert_eq!(answered.load(Ordering::SeqCst), 3);

        let (url, answered) = flaky_api(usize::MAX);
        let api = Management::new(&url).unwrap();
        let err = api
            .get::<Vec<serde_json::Value>>("/api/federation-links")
            .unwrap_err();
        assert!(err.to_string().contains("answered HTTP 500"), "{err}");
        assert_eq!(answered.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_client_hashes_passwords_as_rabbitmq_documents_with_the_rbase64_in_patches() {
        // RabbitMQ's own example ("Passwords", computing a hash): password test12, salt
        // 0x908DC60A. The client base64-encodes through the rbase64 of patches/.
        let salt = [0x90, 0x8D, 0xC6, 0x0A];
        assert_eq!(
            rabbitmq_http_client::password_hashing::base64_encoded_salted_password_hash_sha256(
                &salt, "test12"
            ),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
    }

    #[test]
    fn a_queues_consumers_are_named_by_their_connections_client_given_names() {
        let consumers: Vec<ApiConsumer> = serde_json::from_value(serde_json::json!([
            { "queue": { "name": "t.dataexporter", "vhost": "/" },
              "channel_details": { "connection_name": "10.0.3.40:40122 -> 10.0.0.1:5672" } },
            { "queue": { "name": "t.dataexporter", "vhost": "/" },
              "channel_details": { "connection_name": "10.0.3.40:40122 -> 10.0.0.1:5672" } },
            { "queue": { "name": "t.dataexporter", "vhost": "/" },
              "channel_details": { "connection_name": "10.0.3.41:5000 -> 10.0.0.1:5672" } },
            { "queue": { "name": "t.audit", "vhost": "/" }, "channel_details": [] },
            { "queue": { "name": "t.audit", "vhost": "other" },
              "channel_details": { "connection_name": "10.0.3.42:5000 -> 10.0.0.1:5672" } }
        ]))
        .unwrap();
        let client_names: HashMap<String, String> = [
            ("10.0.3.40:40122 -> 10.0.0.1:5672", "dataexport"),
            ("10.0.3.41:5000 -> 10.0.0.1:5672", ""),
            ("10.0.3.42:5000 -> 10.0.0.1:5672", "audit"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let queue = |vhost: &str, name: &str| Queue {
            vhost: vhost.into(),
            name: name.into(),
            consumers: 2,
            ..Queue::default()
        };
        let mut queues = vec![
            queue("/", "t.dataexporter"),
            queue("/", "t.audit"),
            queue("other", "t.audit"),
        ];
        name_consumers(&mut queues, &consumers, &client_names);
        let named: Vec<&[String]> = queues.iter().map(|q| &q.consumed_by[..]).collect();
        assert_eq!(
            named,
            [
                &["dataexport".to_owned()][..],
                &[][..],
                &["audit".to_owned()][..]
            ]
        );
    }

    #[test]
    fn urls_keep_credentials_out_of_sight() {
        let m = Management::new("https://admin:s3cret@b-1.mq.eu-west-2.amazonaws.com:443").unwrap();
        assert_eq!(m.base, "https://b-1.mq.eu-west-2.amazonaws.com:443");
        assert_eq!(
            m.shown,
            "https://admin:****@b-1.mq.eu-west-2.amazonaws.com:443"
        );
        assert_eq!(
            m.credentials,
            Some(("admin".to_owned(), "s3cret".to_owned()))
        );
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
    fn a_malformed_management_url_is_never_echoed() {
        for url in [
            "http://guest:s3cret@[bad",
            "http//guest:s3cret@host",
            "ftp://guest:s3cret@host:21",
            "guest:s3cret@host:15672",
            "http://guest:s3cret@host:notaport",
        ] {
            let err = Management::new(url).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        let m = Management::new("http://guest:s3/cr#et@host:15672").unwrap();
        assert_eq!(m.base, "http://host:15672");
        assert!(!m.shown.contains("s3/cr#et"), "{}", m.shown);
    }

    /// A management API at an IPv6 literal: the brackets stay in the URL warren calls, and the
    /// credentials are still sent.
    #[test]
    fn an_ipv6_management_url_keeps_its_brackets() {
        let m = Management::new("http://admin:s3cret@[fd00::2]:15672").unwrap();
        assert_eq!(m.base, "http://[fd00::2]:15672");
        assert_eq!(m.host, "fd00::2");
        assert!(m.credentials.is_some(), "the credentials are sent");
        assert_eq!(m.shown, "http://admin:****@[fd00::2]:15672");
    }

    fn broker() -> ResolvedBroker {
        ResolvedBroker {
            alias: crate::config::BrokerAlias::Old,
            id: "b-1".into(),
            name: Some("esr-rabbit-old".into()),
            endpoints: vec!["amqps://b-1.mq.example.com:5671".into()],
            hosts: vec!["b-1.mq.example.com".into(), "rabbit.internal".into()],
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: Some("https://b-1-console.mq.example.com".into()),
        }
    }

    #[test]
    fn a_url_belongs_to_a_broker_by_endpoint_console_or_alias_host() {
        let b = broker();
        for host in [
            "b-1.mq.example.com",
            "B-1-CONSOLE.mq.example.com",
            "rabbit.internal",
        ] {
            assert!(owned_by_host(&b, host), "{host}");
        }
        assert!(!owned_by_host(&b, "b-2.mq.example.com"));
        assert!(!owned_by_host(&b, "mq.example.com"), "never a substring");
    }

    #[test]
    fn a_cluster_name_names_a_broker_by_id_or_name() {
        let b = broker();
        assert!(names_broker(&b, "b-1"));
        assert!(names_broker(&b, "esr-rabbit-old"));
        assert!(!names_broker(&b, "b-2"));
        assert!(!names_broker(&b, "rabbit@localhost"));
        assert!(!names_broker(&b, ""));
    }

    #[test]
    fn an_amqp_url_belongs_by_host_or_by_its_verified_management_host() {
        let b = broker();
        let var = "WARREN_OLD_AMQP_URL";
        assert!(amqp_url_belongs(&b, var, "amqps://u:pw@b-1.mq.example.com:5671", None).is_ok());
        assert!(
            amqp_url_belongs(&b, var, "amqp://u:pw@127.0.0.1:5672/%2F", Some("127.0.0.1")).is_ok()
        );
        let err = amqp_url_belongs(&b, var, "amqp://u:s3cret@127.0.0.2:5672", Some("127.0.0.1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(var) && err.contains("b-1") && err.contains("127.0.0.2"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn endpoints_are_counted_by_their_path_template() {
        assert_eq!(endpoint("GET", "/api/queues"), "GET /api/queues");
        assert_eq!(
            endpoint(
                "GET",
                "/api/queues/%2F?disable_stats=true&enable_queue_totals=true"
            ),
            "GET /api/queues/{vhost}"
        );
        assert_eq!(
            endpoint("GET", "/api/queues/orders/esr.q"),
            "GET /api/queues/{vhost}/{name}"
        );
        assert_eq!(
            endpoint("PUT", "/api/exchanges/%2F/esr.x"),
            "PUT /api/exchanges/{vhost}/{name}"
        );
        assert_eq!(
            endpoint("PUT", "/api/parameters/shovel/%2F/warren-esr.q"),
            "PUT /api/parameters/shovel/{vhost}/{name}"
        );
        assert_eq!(endpoint("GET", "/api/overview"), "GET /api/overview");
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

    #[test]
    fn a_queue_is_polled_when_its_statistics_count_a_basic_get() {
        let read = |stats: serde_json::Value| {
            let mut q = serde_json::json!({ "name": "q", "vhost": "/", "messages": 0, "messages_unacknowledged": 0 });
            if !stats.is_null() {
                q["message_stats"] = stats;
            }
            serde_json::from_value::<ApiQueue>(q)
                .unwrap()
                .into_queue()
                .polled
        };
        assert!(!read(serde_json::Value::Null), "no statistics yet");
        assert!(!read(
            serde_json::json!({ "publish": 4, "deliver": 4, "get": 0 })
        ));
        for field in ["get", "get_no_ack", "get_empty"] {
            assert!(
                read(serde_json::json!({ field: 1, "deliver": 3 })),
                "{field}"
            );
        }
    }
}
