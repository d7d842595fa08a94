//! Hosts in configuration values: parsed, matched, rewritten and masked.
//!
//! A value names a host *as a host*: a bare host (with or without a port), the host part of a URL
//! (`amqps://user:pass@host:5671/vhost`), a scheme-less `user:password@host[:port]`, or one item
//! of a comma-separated list of those; compared without regard to case, a fully qualified name's
//! trailing dot aside, and never as a substring. IPv6 literals are read in brackets
//! (`amqps://[fd00::2]:5671`) and, in a bare value, without (`fd00::2`).
//!
//! A container's other fields (`command`, `entryPoint`, labels…) are read as command lines: word
//! by word, each word with or without a `--option=` or `NAME=` in front (see [`Reading::Words`]).
//!
//! This module is a leaf: it depends on nothing else in the crate, so the model, the plan file
//! and discovery can all use it without importing each other.

use std::net::Ipv6Addr;
use std::ops::Range;

/// The parts of one endpoint-like item, as byte ranges into the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRef {
    pub scheme: Option<Range<usize>>,
    pub password: Option<Range<usize>>,
    /// The host, without the brackets of an IPv6 literal.
    pub host: Range<usize>,
    pub port: Option<Range<usize>>,
    /// Whether the host is an IPv6 literal written in brackets (`[fd00::2]`).
    pub bracketed: bool,
}

impl HostRef {
    /// Parses `item` as `scheme://[user[:password]@]host[:port][/path]`,
    /// `user:password@host[:port]` or `host[:port]`, where `host` may be a bracketed IPv6
    /// literal (and, in the last form without a port, an unbracketed one). A password may hold
    /// `/`, `?`, `#` and `@` unencoded: the host follows the last `@`. Returns `None` when the
    /// item is not shaped like any of these (spaces, an empty host, a bad port).
    #[must_use]
    pub fn parse(item: &str) -> Option<HostRef> {
        let (scheme, rest_start) = match item.find("://") {
            Some(i) => {
                let scheme = &item[..i];
                if scheme.is_empty()
                    || !scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                {
                    return None;
                }
                (Some(0..i), i + 3)
            }
            None => (None, 0),
        };
        let rest = &item[rest_start..];
        let standard_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = match scheme {
            // A password may hold `/`, `?`, `#` or `@` unencoded (people write them so): the host
            // follows the last `@` whose user part has a `:`, even past a `/`, `?` or `#`.
            Some(_) => match rest.rfind('@') {
                Some(at) if at >= standard_end && rest[..at].contains(':') => Some(at),
                _ => rest[..standard_end].rfind('@'),
            },
            // Without a scheme, `user:password@host[:port]` and nothing after the host: the
            // password runs to the last `@`, whatever it holds but white space.
            None => match rest.rfind('@') {
                Some(at)
                    if rest[..at].contains(':')
                        && !rest[..at].contains(char::is_whitespace)
                        && !rest[at + 1..].contains(['/', '?', '#']) =>
                {
                    Some(at)
                }
                Some(_) => return None,
                None if standard_end != rest.len() => return None,
                None => None,
            },
        };
        let authority_len = match at {
            Some(at) => {
                at + 1
                    + rest[at + 1..]
                        .find(['/', '?', '#'])
                        .unwrap_or(rest.len() - at - 1)
            }
            None => standard_end,
        };
        let authority = &rest[..authority_len];
        let (password, host_start) = match at {
            Some(at) => {
                let userinfo = &authority[..at];
                let password = userinfo
                    .find(':')
                    .map(|c| rest_start + c + 1..rest_start + at);
                (password, at + 1)
            }
            None => (None, 0),
        };
        let hostport = &authority[host_start..];
        let (host, port, bracketed) = if let Some(stripped) = hostport.strip_prefix('[') {
            let close = stripped.find(']')?;
            stripped[..close].parse::<Ipv6Addr>().ok()?;
            let after = &hostport[close + 2..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(close + 3..close + 3 + p.len()),
                None if after.is_empty() => None,
                None => return None,
            };
            (1..close + 1, port, true)
        } else if hostport.matches(':').count() > 1 {
            // An IPv6 literal without brackets stands only alone: in a URL or beside a password
            // it is ambiguous (`fd00::2:5671`), and taken for nothing.
            if scheme.is_some() || at.is_some() {
                return None;
            }
            hostport.parse::<Ipv6Addr>().ok()?;
            (0..hostport.len(), None, false)
        } else {
            let (host, port) = match hostport.rfind(':') {
                Some(c) => (0..c, Some(c + 1..hostport.len())),
                None => (0..hostport.len(), None),
            };
            let text = &hostport[host.clone()];
            if text.is_empty()
                || !text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return None;
            }
            (host, port, false)
        };
        let base = rest_start + host_start;
        let host = base + host.start..base + host.end;
        let port = port.map(|p| base + p.start..base + p.end);
        if let Some(port) = &port {
            let digits = &item[port.clone()];
            if digits.is_empty() || digits.parse::<u16>().is_err() {
                return None;
            }
        }
        Some(HostRef {
            scheme,
            password,
            host,
            port,
            bracketed,
        })
    }
}

/// How a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The whole value is one address or a comma-separated list of them, as an environment
    /// variable or a parameter holds (`amqps://host:5671`, `a.host:5671, b.host:5671`). Free text
    /// that mentions a host does not name it.
    Value,
    /// A command line: each white-space separated word is read as a [`Reading::Value`], with
    /// quotes around it and a `--option=`, `-Dproperty=` or `NAME=` in front of it left out
    /// (`--url=amqps://host:5671`, `'host:5671'`). For `command`, `entryPoint` and the other
    /// fields of a container, where an argument names a host among other words.
    Words,
}

/// The ranges of `value` that are read as addresses.
fn segments(value: &str, reading: Reading) -> Vec<Range<usize>> {
    match reading {
        Reading::Value => std::iter::once(0..value.len()).collect(),
        Reading::Words => words(value)
            .into_iter()
            .map(|word| {
                let text = &value[word.clone()];
                let quotes: &[char] = &['\'', '"', '`'];
                let lead = text.len() - text.trim_start_matches(quotes).len();
                let text = text.trim_matches(quotes);
                let start = word.start + lead;
                let start = start + option_prefix(text);
                start..word.start + lead + text.len()
            })
            .filter(|r| !r.is_empty())
            .collect(),
    }
}

/// The non-empty runs of `value` between white space.
fn words(value: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in value.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..value.len());
    }
    out
}

/// The length of `--option=`, `-Dproperty=` or `NAME=` at the front of `word`, or 0.
fn option_prefix(word: &str) -> usize {
    let Some(eq) = word.find('=') else {
        return 0;
    };
    let name = word[..eq].trim_start_matches('-');
    let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if is_name {
        eq + 1
    } else {
        0
    }
}

/// One item of a comma-separated value: its place in the whole value and what it holds.
struct Item {
    /// Byte range of the trimmed item within the value.
    range: Range<usize>,
    parsed: Option<HostRef>,
}

/// The comma-separated items of `value[segment]`, their ranges within `value`.
fn items_in(value: &str, segment: Range<usize>) -> impl Iterator<Item = Item> + '_ {
    let mut start = segment.start;
    value[segment].split(',').map(move |piece| {
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        let range = start + lead..start + lead + trimmed.len();
        start += piece.len() + 1;
        Item {
            parsed: HostRef::parse(trimmed),
            range,
        }
    })
}

fn items(value: &str, reading: Reading) -> impl Iterator<Item = Item> + '_ {
    // A whole value is one segment: read without a list of them.
    let (whole, words) = match reading {
        Reading::Value => (Some(0..value.len()), Vec::new()),
        Reading::Words => (None, segments(value, reading)),
    };
    whole
        .into_iter()
        .chain(words)
        .flat_map(move |segment| items_in(value, segment))
}

/// The hosts `value` names when read as `reading` says, as they are written (brackets of an
/// IPv6 literal left out), in order.
fn hosts_of(value: &str, reading: Reading) -> impl Iterator<Item = &str> + '_ {
    items(value, reading).filter_map(move |item| {
        let parsed = item.parsed?;
        Some(&value[item.range][parsed.host])
    })
}

/// The hosts a value names, lower-cased, in order.
#[must_use]
pub fn hosts_in(value: &str) -> Vec<String> {
    hosts_read(value, Reading::Value)
}

/// The hosts a value names when read as `reading` says, lower-cased, in order.
#[must_use]
pub fn hosts_read(value: &str, reading: Reading) -> Vec<String> {
    hosts_of(value, reading)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether `value`, read as `reading` says, names a host for which `wanted` holds: what
/// [`hosts_read`] finds, without a list of them or a lower-cased copy (`wanted` is given each
/// host as it is written).
pub fn names_host(value: &str, reading: Reading, wanted: impl FnMut(&str) -> bool) -> bool {
    hosts_of(value, reading).any(wanted)
}

/// Whether `value` holds the text of `host` (without a trailing dot) anywhere, in
/// any case: a value that does not can never name `host`, as a host is read only from its own
/// letters, digits, `-`, `.` and `_`. A quick test before [`names_host`], which parses.
#[must_use]
pub fn mentions(value: &str, host: &str) -> bool {
    let (value, host) = (value.as_bytes(), host.as_bytes());
    let Some(&first) = host.first() else {
        return true;
    };
    value.len() >= host.len()
        && (0..=value.len() - host.len()).any(|i| {
            value[i].eq_ignore_ascii_case(&first)
                && value[i..i + host.len()].eq_ignore_ascii_case(host)
        })
}

/// Whether `a` and `b` name the same host: any case, `host.` (fully qualified, with its trailing
/// dot) is `host`, and two spellings of one IPv6 address (`fd00::2`, `[FD00:0::2]`) are one.
#[must_use]
pub fn same_host(a: &str, b: &str) -> bool {
    fn unbracketed(h: &str) -> &str {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }
    fn bare(h: &str) -> &str {
        h.strip_suffix('.').unwrap_or(h)
    }
    let (a, b) = (unbracketed(a), unbracketed(b));
    // Only a text with a colon can be an IPv6 address.
    if a.contains(':') && b.contains(':') {
        if let (Ok(x), Ok(y)) = (a.parse::<Ipv6Addr>(), b.parse::<Ipv6Addr>()) {
            return x == y;
        }
    }
    bare(a).eq_ignore_ascii_case(bare(b))
}

/// An endpoint's scheme (lower-cased), host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    scheme: Option<String>,
    host: String,
    port: Option<String>,
}

impl Endpoint {
    /// The parts of `endpoint`; one that does not parse is all host.
    fn of(endpoint: &str) -> Endpoint {
        let endpoint = endpoint.trim();
        match HostRef::parse(endpoint) {
            Some(parts) => Endpoint {
                scheme: parts.scheme.map(|r| endpoint[r].to_ascii_lowercase()),
                host: endpoint[parts.host].to_owned(),
                port: parts.port.map(|r| endpoint[r].to_owned()),
            },
            None => Endpoint {
                scheme: None,
                host: endpoint.to_owned(),
                port: None,
            },
        }
    }

    fn is_ipv6(&self) -> bool {
        self.host.parse::<Ipv6Addr>().is_ok()
    }
}

/// The broker a value is moved off: the hosts that are its (endpoint hosts and aliases) and its
/// endpoints, whose scheme and port a rewrite replaces where the value carries them.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub hosts: &'a [String],
    pub endpoints: &'a [String],
}

impl Source<'_> {
    fn owns(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| same_host(h, host))
    }

    /// The endpoint whose host is `host`, or the first endpoint.
    fn endpoint_for(&self, host: &str) -> Endpoint {
        self.endpoints
            .iter()
            .map(|e| Endpoint::of(e))
            .find(|e| same_host(&e.host, host))
            .unwrap_or_else(|| Endpoint::of(self.endpoints.first().map_or("", String::as_str)))
    }
}

/// `value` with every item that names a host of `from` pointed at `to` (the first of the
/// target's endpoints) instead: the host replaced by `to`'s and, where the item carries `from`'s
/// scheme or port and `to`'s differ, those too. A fully qualified name keeps its trailing dot;
/// an IPv6 host is written in brackets wherever a port, scheme or password stands beside it.
/// Items of one list that become identical are kept once. Returns `None` when no item names
/// `from`.
#[must_use]
pub fn rewrite(value: &str, from: Source<'_>, to: &str, reading: Reading) -> Option<String> {
    let to = Endpoint::of(to);
    let mut changed = false;
    let mut out = String::new();
    let mut last = 0;
    for segment in segments(value, reading) {
        out.push_str(&value[last..segment.start]);
        let text = &value[segment.clone()];
        match rewrite_list(text, from, &to) {
            Some(rewritten) => {
                out.push_str(&rewritten);
                changed = true;
            }
            None => out.push_str(text),
        }
        last = segment.end;
    }
    out.push_str(&value[last..]);
    changed.then_some(out)
}

/// [`rewrite`] of one comma-separated list.
fn rewrite_list(value: &str, from: Source<'_>, to: &Endpoint) -> Option<String> {
    let mut changed = false;
    let mut pieces: Vec<String> = Vec::new();
    let mut last = 0;
    let mut out = String::new();
    for item in items_in(value, 0..value.len()) {
        let text = &value[item.range.clone()];
        let mut new_item = text.to_owned();
        if let Some(parts) = &item.parsed {
            if from.owns(&text[parts.host.clone()]) {
                changed = true;
                new_item = rewrite_item(text, parts, from, to);
            }
        }
        let duplicate = pieces.iter().any(|p| p == &new_item) && new_item != text;
        if duplicate {
            // Drop the item and the comma before it.
            let comma = value[..item.range.start].rfind(',').unwrap_or(last);
            out.push_str(&value[last..comma]);
        } else {
            out.push_str(&value[last..item.range.start]);
            out.push_str(&new_item);
            pieces.push(new_item);
        }
        last = item.range.end;
    }
    out.push_str(&value[last..]);
    changed.then_some(out)
}

/// One item (`text`, parsed as `parts`) that names `from`, pointed at `to`.
fn rewrite_item(text: &str, parts: &HostRef, from: Source<'_>, to: &Endpoint) -> String {
    let host = &text[parts.host.clone()];
    let source = from.endpoint_for(host);
    let mut out = text.to_owned();
    // Replace from the back so earlier ranges stay valid.
    if let (Some(port), Some(from_port), Some(to_port)) = (&parts.port, &source.port, &to.port) {
        if &text[port.clone()] == from_port && from_port != to_port {
            out.replace_range(port.clone(), to_port);
        }
    }
    let alone = parts.scheme.is_none() && parts.port.is_none() && parts.password.is_none();
    let (range, new_host) = if to.is_ipv6() {
        if parts.bracketed || alone {
            (parts.host.clone(), to.host.clone())
        } else {
            (parts.host.clone(), format!("[{}]", to.host))
        }
    } else {
        // A fully qualified name keeps its trailing dot.
        let new_host = if host.ends_with('.') && !to.host.ends_with('.') {
            format!("{}.", to.host)
        } else {
            to.host.clone()
        };
        if parts.bracketed {
            (parts.host.start - 1..parts.host.end + 1, new_host)
        } else {
            (parts.host.clone(), new_host)
        }
    };
    out.replace_range(range, &new_host);
    if let (Some(scheme), Some(from_scheme), Some(to_scheme)) =
        (&parts.scheme, &source.scheme, &to.scheme)
    {
        if text[scheme.clone()].eq_ignore_ascii_case(from_scheme) && from_scheme != to_scheme {
            out.replace_range(scheme.clone(), to_scheme);
        }
    }
    out
}

/// `value` with every password replaced by `****`: that of each URL warren can parse, and,
/// conservatively, of every other `user:password@` shape anywhere in the value (with or without
/// a scheme, with reserved characters in the password: the password runs to the last `@` of its
/// item). A value that holds no such shape is returned as it is.
#[must_use]
pub fn mask_password(value: &str) -> String {
    let mut out = value.to_owned();
    for item in items(value, Reading::Value)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        if let Some(HostRef {
            password: Some(password),
            ..
        }) = item.parsed
        {
            let start = item.range.start + password.start;
            let end = item.range.start + password.end;
            out.replace_range(start..end, "****");
        }
    }
    mask_shapes(&out)
}

/// Masks every `user:password@` shape [`HostRef::parse`] could not read, token by
/// whitespace-separated token.
fn mask_shapes(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for word in words(value) {
        out.push_str(&value[last..word.start]);
        out.push_str(&mask_token(&value[word.clone()]));
        last = word.end;
    }
    out.push_str(&value[last..]);
    out
}

/// One token: split where each URL's scheme starts, then each part's user information masked.
fn mask_token(token: &str) -> String {
    if !token.contains('@') {
        return token.to_owned();
    }
    // Where each URL's scheme starts, and where its body (after `://`) starts.
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(found) = token[from..].find("://") {
        let marker = from + found;
        let scheme_start = token[..marker]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        starts.push((scheme_start, marker + 3));
        from = marker + 3;
    }
    let mut out = String::with_capacity(token.len());
    let mut part_start = 0;
    let mut body_start = 0;
    for (scheme_start, next_body) in starts {
        if scheme_start < body_start {
            // `://` inside a password: it stays in the part it is in.
            continue;
        }
        out.push_str(&token[part_start..body_start]);
        out.push_str(&mask_body(&token[body_start..scheme_start]));
        part_start = scheme_start;
        body_start = next_body;
    }
    out.push_str(&token[part_start..body_start]);
    out.push_str(&mask_body(&token[body_start..]));
    out
}

/// A URL's body or a scheme-less part: each comma-separated item masked on its own when every
/// item with an `@` is a whole `user:password@` shape, else the whole body as one.
fn mask_body(body: &str) -> String {
    if !body.contains('@') {
        return body.to_owned();
    }
    let whole_shapes = body
        .split(',')
        .filter(|item| item.contains('@'))
        .all(|item| item.rfind('@').is_some_and(|at| item[..at].contains(':')));
    if whole_shapes {
        body.split(',')
            .map(mask_userinfo)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        mask_userinfo(body)
    }
}

/// `user:password@rest` with the password (up to the last `@`) as `****`.
fn mask_userinfo(text: &str) -> String {
    let Some(at) = text.rfind('@') else {
        return text.to_owned();
    };
    match text[..at].find(':') {
        Some(colon) if &text[colon + 1..at] != "****" => {
            format!("{}****{}", &text[..=colon], &text[at..])
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick test never says no where a value names the host, in any case or spelling
    /// the parser reads (URL, list, password with an `@`, trailing dot, command line).
    #[test]
    fn a_value_that_names_a_host_mentions_it() {
        let host = "b-1.mq.eu-west-2.amazonaws.com";
        for value in [
            "amqps://user:p@ss@B-1.MQ.eu-west-2.amazonaws.com:5671/vhost",
            "other.example:5671, b-1.mq.eu-west-2.amazonaws.com.",
            "--url=amqps://b-1.mq.eu-west-2.AMAZONAWS.com:5671",
        ] {
            let reading = if value.starts_with("--") {
                Reading::Words
            } else {
                Reading::Value
            };
            assert!(
                names_host(value, reading, |h| same_host(h, host)),
                "{value}"
            );
            assert!(mentions(value, host), "{value}");
        }
        assert!(!mentions("b-1.mq.eu-west-2.amazonaws.co", host));
        assert!(!mentions("", host));
        assert!(mentions("anything", ""));
    }

    const OLD: &str = "b-1234.mq.eu-west-1.amazonaws.com";

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| (*h).to_owned()).collect()
    }

    /// `value` rewritten off `from` (its endpoints) onto `to`, read as a value.
    fn moved(value: &str, from: &str, to: &str) -> Option<String> {
        let endpoints = vec![from.to_owned()];
        let owned = hosts_in(from);
        let source = Source {
            hosts: &owned,
            endpoints: &endpoints,
        };
        rewrite(value, source, to, Reading::Value)
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_password("amqps://esr:s3cret@old.mq:5671/esr"),
            "amqps://esr:****@old.mq:5671/esr"
        );
        assert_eq!(mask_password("amqps://esr@old.mq"), "amqps://esr@old.mq");
        assert_eq!(
            mask_password("amqp://a:x@h1,amqp://b:y@h2"),
            "amqp://a:****@h1,amqp://b:****@h2"
        );
    }

    #[test]
    fn masks_every_user_password_shape() {
        for (value, secret, masked) in [
            (
                "amqp://user:pa/ss@old.mq:5671",
                "pa/ss",
                "amqp://user:****@old.mq:5671",
            ),
            (
                "amqps://user:pa#ss@old.mq:5671/esr",
                "pa#ss",
                "amqps://user:****@old.mq:5671/esr",
            ),
            (
                "amqps://user:pa?ss@old.mq",
                "pa?ss",
                "amqps://user:****@old.mq",
            ),
            (
                "amqps://user:1234/ss@old.mq:5671",
                "1234/ss",
                "amqps://user:****@old.mq:5671",
            ),
            (
                "amqps://user:pa@ss@old.mq:5671",
                "pa@ss",
                "amqps://user:****@old.mq:5671",
            ),
            ("amqps://user:p,w@old.mq", "p,w", "amqps://user:****@old.mq"),
            ("user:pa/ss@old.mq:5671", "pa/ss", "user:****@old.mq:5671"),
            ("user:s3cret@old.mq", "s3cret", "user:****@old.mq"),
            (
                "http://guest:s3cret@[bad",
                "s3cret",
                "http://guest:****@[bad",
            ),
            ("http//guest:s3cret@host", "s3cret", "http//guest:****@host"),
            (
                "URL=amqp://u:Canary-7f3a/#?pw@h:1 other",
                "Canary",
                "URL=amqp://u:****@h:1 other",
            ),
            (
                "amqp://a:x/y@h1,amqp://b:y#z@h2",
                "x/y",
                "amqp://a:****@h1,amqp://b:****@h2",
            ),
            ("a:x/1@h1,b:y/2@h2", "x/1", "a:****@h1,b:****@h2"),
        ] {
            let got = mask_password(value);
            assert!(!got.contains(secret), "{value} gave {got}");
            assert_eq!(got, masked, "{value}");
        }
        for value in [
            "ops@example.com",
            "old.mq:5671",
            "amqps://old.mq:5671/esr",
            "amqps://u:****@old.mq:5671",
            "https://example.com/x?y=1:2",
            "a:b",
            "",
        ] {
            assert_eq!(mask_password(value), value, "nothing to mask");
        }
    }

    /// A password may hold `/`, `#` and `?` unencoded: the host is what follows the last `@`,
    /// and the password is masked whole.
    #[test]
    fn a_password_with_reserved_characters_is_read_past() {
        let value = format!("amqps://u:p/a#b?c@{OLD}:5671");
        assert_eq!(hosts_in(&value), hosts(&[OLD]));
        assert_eq!(mask_password(&value), format!("amqps://u:****@{OLD}:5671"));
        assert_eq!(
            moved(
                &value,
                &format!("amqps://{OLD}:5671"),
                "amqps://new.mq:5671"
            )
            .as_deref(),
            Some("amqps://u:p/a#b?c@new.mq:5671")
        );
    }

    /// `user:password@host:port` and `user:password@host` without a scheme name the host, and
    /// their password is masked; an address without a password (`ops@example.com`) or text
    /// around the shape does not name a host.
    #[test]
    fn a_scheme_less_user_and_password_before_the_host() {
        for (value, masked) in [
            (
                format!("esr:s3cret@{OLD}:5671"),
                format!("esr:****@{OLD}:5671"),
            ),
            (format!("esr:s3cret@{OLD}"), format!("esr:****@{OLD}")),
            (format!("esr:s/3#c?r@t@{OLD}"), format!("esr:****@{OLD}")),
            (
                format!("a:x@other.mq:5671, esr:s3cret@{OLD}"),
                format!("a:****@other.mq:5671, esr:****@{OLD}"),
            ),
        ] {
            assert!(hosts_in(&value).contains(&OLD.to_owned()), "{value}");
            assert_eq!(mask_password(&value), masked);
        }
        for value in [
            format!("ops@{OLD}"),
            format!("see esr:s3cret@{OLD}"),
            format!("esr:s3cret@{OLD}/vhost"),
            format!("esr:s3cret@{OLD}:port"),
        ] {
            assert_eq!(hosts_in(&value), Vec::<String>::new(), "{value}");
        }
        assert_eq!(
            moved(
                &format!("esr:s3cret@{OLD}:5671"),
                &format!("amqps://{OLD}:5671"),
                "amqps://new.mq:5672"
            )
            .as_deref(),
            Some("esr:s3cret@new.mq:5672")
        );
    }

    /// IPv6 literals: in brackets anywhere, bare only alone; any spelling of the address is the
    /// same host.
    #[test]
    fn ipv6_literals_are_hosts() {
        assert_eq!(hosts_in("amqps://[fd00::2]:5671"), hosts(&["fd00::2"]));
        assert_eq!(hosts_in("amqps://u:pw@[FD00::2]/esr"), hosts(&["fd00::2"]));
        assert_eq!(hosts_in("[fd00::2]:5671"), hosts(&["fd00::2"]));
        assert_eq!(hosts_in("fd00::2"), hosts(&["fd00::2"]));
        assert_eq!(hosts_in("esr:pw@[fd00::2]:5671"), hosts(&["fd00::2"]));
        for value in [
            "amqps://fd00::2:5671",
            "[fd00::2",
            "[not-an-address]:5671",
            "fd00::2::3",
        ] {
            assert_eq!(hosts_in(value), Vec::<String>::new(), "{value}");
        }
        assert!(same_host("fd00::2", "FD00:0:0::2"));
        assert!(same_host("[fd00::2]", "fd00::2"));
        assert!(!same_host("fd00::2", "fd00::3"));
        assert_eq!(
            mask_password("amqps://u:pw@[fd00::2]:5671"),
            "amqps://u:****@[fd00::2]:5671"
        );
    }

    /// Onto an IPv6 endpoint: brackets wherever a scheme, port or password stands beside the
    /// host; a bare host stays bare. Off one: the brackets go with the old host.
    #[test]
    fn a_rewrite_to_or_from_ipv6_keeps_the_brackets() {
        let old = "amqps://old.mq:5671";
        let v6 = "amqps://[fd00::2]:5671";
        for (value, expected) in [
            (
                "amqps://u:pw@old.mq:5671/esr",
                "amqps://u:pw@[fd00::2]:5671/esr",
            ),
            ("old.mq:5671", "[fd00::2]:5671"),
            ("old.mq", "fd00::2"),
            ("u:pw@old.mq", "u:pw@[fd00::2]"),
        ] {
            assert_eq!(moved(value, old, v6).as_deref(), Some(expected), "{value}");
        }
        for (value, expected) in [
            (
                "amqps://u:pw@[fd00::2]:5671/esr",
                "amqps://u:pw@old.mq:5671/esr",
            ),
            ("[FD00:0::2]:5671", "old.mq:5671"),
            ("fd00::2", "old.mq"),
        ] {
            assert_eq!(moved(value, v6, old).as_deref(), Some(expected), "{value}");
        }
        assert_eq!(
            moved("amqps://[fd00::2]:5671", v6, "amqps://[fd00::3]:5671").as_deref(),
            Some("amqps://[fd00::3]:5671")
        );
    }

    /// Read as words, a value names the hosts of its arguments, with quotes and `--option=` or
    /// `NAME=` in front left out; read as a value it names only a whole address.
    #[test]
    fn words_name_the_hosts_of_their_arguments() {
        for value in [
            format!("--url=amqps://u:pw@{OLD}:5671/esr"),
            format!("java -Dspring.rabbitmq.host={OLD} -jar app.jar"),
            format!("RABBIT_HOST={OLD} ./run"),
            format!("sh -c 'curl amqps://{OLD}:5671'"),
            format!("connect \"{OLD}:5671\""),
            format!("nodes={OLD}:5671,other.mq:5671"),
        ] {
            let old = OLD.to_owned();
            assert!(hosts_read(&value, Reading::Words).contains(&old), "{value}");
            assert!(!hosts_in(&value).contains(&old), "{value} is no address");
        }
        for value in [
            format!("x{OLD}"),
            format!("https://wiki.example/{OLD}"),
            format!("--url=amqps://x{OLD}:5671"),
            format!("see{OLD}"),
        ] {
            let found = hosts_read(&value, Reading::Words);
            assert!(!found.contains(&OLD.to_owned()), "{value}: {found:?}");
        }
        let endpoints = vec![format!("amqps://{OLD}:5671")];
        let owned = hosts(&[OLD]);
        let source = Source {
            hosts: &owned,
            endpoints: &endpoints,
        };
        assert_eq!(
            rewrite(
                &format!("sh -c 'exec app --url=amqps://u:pw@{OLD}:5671/esr --other {OLD}'"),
                source,
                "amqps://new.mq:5671",
                Reading::Words,
            )
            .as_deref(),
            Some("sh -c 'exec app --url=amqps://u:pw@new.mq:5671/esr --other new.mq'")
        );
        assert_eq!(
            rewrite(
                "--other other.mq",
                source,
                "amqps://new.mq:5671",
                Reading::Words
            ),
            None
        );
        assert_eq!(
            mask_password(&format!("app --url=amqps://u:s3cret@{OLD}:5671")),
            format!("app --url=amqps://u:****@{OLD}:5671")
        );
    }

    /// The trailing dot of a fully qualified name (commit f9b1c5a) still holds here.
    #[test]
    fn a_trailing_dot_is_the_same_host_and_kept_by_a_rewrite() {
        assert!(same_host(&format!("{OLD}."), OLD));
        assert!(!same_host(&format!("{OLD}.."), OLD));
        assert_eq!(
            moved(
                &format!("{OLD}.:5671"),
                &format!("amqps://{OLD}:5671"),
                "amqps://new.mq:5671"
            )
            .as_deref(),
            Some("new.mq.:5671")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn host() -> impl Strategy<Value = String> {
            proptest::collection::vec("[a-z][a-z0-9-]{0,8}", 1..4).prop_map(|l| l.join("."))
        }

        fn source<'a>(hosts: &'a [String], endpoints: &'a [String]) -> Source<'a> {
            Source { hosts, endpoints }
        }

        proptest! {
            /// However an argument carries a host, a command line names it, and a rewrite
            /// changes that host and nothing around it.
            #[test]
            fn a_host_in_a_command_line_is_found_and_moved(
                h in host(),
                form in 0..5usize,
                // Words around it that name no host.
                before in "/usr/bin/[a-z]{1,6}",
                after in "--[a-z]{1,6}=/[a-z]{0,4}",
            ) {
                prop_assume!(h != "new.example");
                let word = |h: &str| match form {
                    0 => h.to_owned(),
                    1 => format!("--rabbit-host={h}"),
                    2 => format!("'amqps://u:p/w@{h}:5671/esr'"),
                    3 => format!("-Dspring.rabbitmq.addresses={h}:5671"),
                    _ => format!("RABBIT=u:pw@{h}"),
                };
                let line = format!("{before} {} {after}", word(&h));
                prop_assert!(hosts_read(&line, Reading::Words).contains(&h));
                let hosts = vec![h.clone()];
                let endpoints = vec![format!("amqps://{h}:5671")];
                let moved = rewrite(
                    &line,
                    source(&hosts, &endpoints),
                    "amqps://new.example:5671",
                    Reading::Words,
                )
                .unwrap();
                prop_assert_eq!(&moved, &format!("{before} {} {after}", word("new.example")));
                prop_assert!(!hosts_read(&moved, Reading::Words).contains(&h));
            }

            /// Any IPv6 address in brackets is the host of its URL, and a rewrite off it and
            /// back gives the URL it started from.
            #[test]
            fn an_ipv6_url_moves_off_and_back(segments in any::<[u16; 8]>()) {
                let address = Ipv6Addr::from(segments).to_string();
                let url = format!("amqps://u:p@[{address}]:5671/esr");
                prop_assert_eq!(hosts_in(&url), vec![address.clone()]);
                let v6 = vec![format!("amqps://[{address}]:5671")];
                let named = vec!["old.example".to_owned()];
                let by_name = vec!["amqps://old.example:5671".to_owned()];
                let off = rewrite(
                    &url,
                    source(std::slice::from_ref(&address), &v6),
                    &by_name[0],
                    Reading::Value,
                )
                .unwrap();
                prop_assert_eq!(&off, "amqps://u:p@old.example:5671/esr");
                let back = rewrite(&off, source(&named, &by_name), &v6[0], Reading::Value).unwrap();
                prop_assert_eq!(back, url);
            }
        }
    }
}
