//! Exact queue depths over AMQP: a passive queue declare answers the queue's ready messages and
//! consumers as the queue holds them now, where the management API's counts lag by its
//! statistics interval.
//!
//! One connection per vhost (an AMQP connection is bound to the vhost of its URL), opened on
//! first use, named `warren` (so the broker's connection list says whose it is), and kept for
//! the calls after; a fresh channel per declare, since a failed passive declare (no such queue)
//! closes its channel. The connections run on a current-thread runtime of their own, driven
//! only while warren waits for an answer: a connection the broker has closed in between is
//! opened again once.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ErrorKind};

use super::management::{percent_decode, segment};
use crate::error::{Error, Result};
use crate::host::{mask_password, HostRef};

/// How long one AMQP exchange with the broker (connecting, a declare) may take.
const AMQP_TIMEOUT: Duration = Duration::from_secs(15);

/// The AMQP client of one broker.
pub(super) struct Amqp {
    /// Open connections by vhost. Declared before `runtime`, so they are dropped first.
    connections: HashMap<String, Connection>,
    runtime: tokio::runtime::Runtime,
    /// The URL from the plan's variable, parsed; its vhost is replaced per connection.
    uri: AMQPUri,
    /// The URL as it may be shown.
    shown: String,
    /// The password, to keep it out of any error text a library writes.
    password: String,
}

impl std::fmt::Debug for Amqp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amqp")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// What a passive declare says of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Declared {
    pub ready: u64,
    pub consumers: u64,
}

impl Amqp {
    /// The client of the broker at `url` (`amqp(s)://user:password@host:port/vhost`); `var`
    /// names the variable it came from, for messages. Connects on first use.
    ///
    /// # Errors
    /// [`Error::Refused`] when `url` is not such a URL (never the value in the message);
    /// [`Error::Backend`] when no runtime can be made.
    pub(super) fn new(url: &str, var: &str) -> Result<Amqp> {
        let url = url.trim();
        let uri = normalized(url)
            .and_then(|u| AMQPUri::from_str(&u).ok())
            .ok_or_else(|| {
                // Never the value: a URL warren cannot parse may hide a password it cannot mask.
                Error::Refused(format!(
                    "{var} is not an AMQP URL (expected amqp(s)://user:password@host:port/vhost)"
                ))
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Backend(format!("cannot start the AMQP client: {e}")))?;
        Ok(Amqp {
            connections: HashMap::new(),
            runtime,
            password: uri.authority.userinfo.password.clone(),
            uri,
            shown: mask_password(url),
        })
    }

    /// The ready messages and consumers of `vhost`/`queue`, exact; `None` when the broker has
    /// no such queue (or no such vhost).
    ///
    /// # Errors
    /// [`Error::Backend`] when the broker cannot be reached or refuses.
    pub(super) fn declared(&mut self, vhost: &str, queue: &str) -> Result<Option<Declared>> {
        match self.try_declared(vhost, queue) {
            // A connection the broker closed while warren was not listening: once more, anew.
            Err(_) if self.connections.remove(vhost).is_some() => self.try_declared(vhost, queue),
            other => other,
        }
    }

    fn try_declared(&mut self, vhost: &str, queue: &str) -> Result<Option<Declared>> {
        if !self.connections.contains_key(vhost) {
            let mut uri = self.uri.clone();
            uri.vhost = vhost.to_owned();
            let properties = ConnectionProperties::default().with_connection_name("warren".into());
            let connected = crate::stats::timed(
                || "amqp connect".to_owned(),
                || {
                    self.runtime.block_on(async {
                        tokio::time::timeout(AMQP_TIMEOUT, Connection::connect_uri(uri, properties))
                            .await
                    })
                },
            )
            .map_err(|_| self.failed("connecting", vhost, "no answer within 15 s"));
            match connected? {
                Ok(connection) => {
                    self.connections.insert(vhost.to_owned(), connection);
                }
                // No such vhost, or no access to it: the caller asks the management API which.
                Err(e) if is_vhost_refused(&e) => return Ok(None),
                Err(e) => return Err(self.failed("connecting", vhost, &e.to_string())),
            }
        }
        let connection = &self.connections[vhost];
        let answer = crate::stats::timed(
            || "amqp queue.declare (passive)".to_owned(),
            || {
                self.runtime.block_on(async {
                    tokio::time::timeout(AMQP_TIMEOUT, async {
                        let channel = connection.create_channel().await?;
                        let declared = channel
                            .queue_declare(
                                queue.into(),
                                QueueDeclareOptions {
                                    passive: true,
                                    ..QueueDeclareOptions::default()
                                },
                                FieldTable::default(),
                            )
                            .await;
                        if declared.is_ok() {
                            let _ = channel.close(200, "done".into()).await;
                        }
                        declared
                    })
                    .await
                })
            },
        );
        match answer {
            Err(_) => Err(self.failed(
                &format!("declaring {queue} (passive)"),
                vhost,
                "no answer within 15 s",
            )),
            Ok(Ok(q)) => Ok(Some(Declared {
                ready: u64::from(q.message_count()),
                consumers: u64::from(q.consumer_count()),
            })),
            Ok(Err(e)) if is_not_found(&e) => Ok(None),
            Ok(Err(e)) => Err(self.failed(
                &format!("declaring {queue} (passive)"),
                vhost,
                &e.to_string(),
            )),
        }
    }

    /// An error of `doing` in `vhost`, naming the URL with its password masked.
    fn failed(&self, doing: &str, vhost: &str, why: &str) -> Error {
        Error::Backend(format!(
            "AMQP at {} (vhost {vhost}): {doing} failed: {}",
            self.shown,
            scrub(why, &self.password)
        ))
    }
}

impl Drop for Amqp {
    /// Closes the connections, so the broker logs a client that left, not one that vanished.
    fn drop(&mut self) {
        for (_, connection) in self.connections.drain() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    connection.close(200, "warren done".into()),
                )
                .await
            });
        }
    }
}

/// `url` with its user and password percent-encoded, so that the AMQP client's strict URL parser
/// reads what warren's own reads: people write a password's `/`, `?`, `#` or `@` unencoded (the
/// host follows the last `@`). `None` when `url` has no scheme or host.
pub(super) fn normalized(url: &str) -> Option<String> {
    let parts = HostRef::parse(url)?;
    let authority = parts.scheme?.end + 3;
    let host = parts.host.start - usize::from(parts.bracketed);
    let Some(userinfo) = url[authority..host].strip_suffix('@') else {
        return Some(url.to_owned());
    };
    let (user, password) = match parts.password {
        Some(range) => (&url[authority..range.start - 1], Some(&url[range])),
        None => (userinfo, None),
    };
    let encode = |text: &str| segment(&percent_decode(text));
    let password = password
        .map(|p| format!(":{}", encode(p)))
        .unwrap_or_default();
    Some(format!(
        "{}{}{password}@{}",
        &url[..authority],
        encode(user),
        &url[host..]
    ))
}

/// Whether `e` is the broker's `NOT_FOUND` (404) channel close: no such queue.
fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == 404)
}

/// Whether `e` is the broker refusing the vhost at connection time (`NOT_ALLOWED`, 530: no such
/// vhost or no access to it).
fn is_vhost_refused(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == 530)
}

/// `text` with `password` (as given, and percent-encoded) replaced by `****`.
pub(super) fn scrub(text: &str, password: &str) -> String {
    if password.is_empty() {
        return text.to_owned();
    }
    text.replace(password, "****")
        .replace(&segment(password), "****")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_scrubbed_as_given_and_encoded() {
        assert_eq!(
            scrub("amqp://u:p@ss@h and p%40ss", "p@ss"),
            "amqp://u:****@h and ****"
        );
        assert_eq!(scrub("nothing", ""), "nothing");
    }

    #[test]
    fn a_password_written_with_reserved_characters_is_read_as_written() {
        let url = "amqps://esr:pa/#?s@w%40rd@b-1.mq.example.com:5671/esr";
        assert_eq!(
            normalized(url).as_deref(),
            Some("amqps://esr:pa%2F%23%3Fs%40w%40rd@b-1.mq.example.com:5671/esr")
        );
        let amqp = Amqp::new(url, "WARREN_OLD_AMQP_URL").unwrap();
        assert_eq!(amqp.password, "pa/#?s@w@rd");
        assert_eq!(amqp.uri.authority.host, "b-1.mq.example.com");
        assert_eq!(amqp.uri.vhost, "esr");
        assert!(!format!("{amqp:?}").contains("pa/#"), "{amqp:?}");
        assert_eq!(
            normalized("amqp://127.0.0.1:5672/%2F").as_deref(),
            Some("amqp://127.0.0.1:5672/%2F")
        );
    }

    #[test]
    fn a_malformed_amqp_url_is_never_echoed() {
        let err = Amqp::new(
            "amqp://guest:s3cret@host:notaport/%2F",
            "WARREN_OLD_AMQP_URL",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("WARREN_OLD_AMQP_URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
