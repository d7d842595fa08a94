//! What a container reads from outside its task definition: env files in S3 and Secrets
//! Manager secrets (a whole value, or one key of a JSON value).
//!
//! Pure functions over text: how ECS reads an env file, how a secret's `valueFrom` names the
//! secret and the key, and what of a secret value warren keeps. The backends fetch; discovery
//! decides what names a broker.

use crate::discovery::{hosts_in, mask_password, REDACTED};

/// The variables of an env file, in order, as ECS reads one: `VARIABLE=VALUE` lines; lines
/// starting with `#` and blank lines are skipped; the value is everything after the first `=`
/// (spaces and quotes included, as ECS passes them); a line without `=` or with an empty name
/// sets nothing.
#[must_use]
pub fn env_file_variables(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// An env file's text with every value kept as [`kept_secret`] keeps it (`brokers`: the
/// hosts of known brokers): what a snapshot may write (env files are where teams put
/// credentials).
#[must_use]
pub fn redacted_env_file(text: &str, brokers: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let bare = line.strip_suffix('\r').unwrap_or(line);
        let comment = bare.trim().is_empty() || bare.trim_start().starts_with('#');
        match bare.split_once('=') {
            Some((name, value)) if !comment && !name.is_empty() => {
                out.push(format!("{name}={}", kept_secret(value, brokers)));
            }
            // A comment can hold a credential as well as a value can.
            _ => out.push(mask_password(bare)),
        }
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// A secret value as warren keeps it: a broker address (a URL, dotted host names, or a host of
/// one of `brokers`, the hosts of the brokers known) with its password masked; [`REDACTED`]
/// (unreadable) when it holds a credential beside something warren cannot read as a host;
/// else `****` (read, and names no host). The rule SSM SecureStrings follow, and a bare word
/// that is a known broker's host is kept too: it cannot be a password worth hiding, and
/// `****` would hide the broker.
#[must_use]
pub fn kept_secret(value: &str, brokers: &[String]) -> String {
    let masked = mask_password(value);
    let hosts = hosts_in(&masked);
    let looks_like_address = !hosts.is_empty()
        && (masked.contains("://")
            || hosts.iter().all(|h| h.contains('.'))
            || hosts.iter().all(|h| {
                brokers
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(h.trim_end_matches('.')))
            }));
    if looks_like_address {
        masked
    } else if masked != value {
        REDACTED.to_owned()
    } else {
        "****".to_owned()
    }
}

/// A Secrets Manager reference as a container's `valueFrom` writes it:
/// `arn:aws:secretsmanager:region:account:secret:name[:json-key:version-stage:version-id]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef<'a> {
    /// The secret's ARN (with the random `-AbCdEf` suffix where the reference has it).
    pub arn: &'a str,
    /// The key of a JSON value to read, where one is named.
    pub json_key: Option<&'a str>,
    /// The version stage, where one is named.
    pub version_stage: Option<&'a str>,
    /// The version id, where one is named.
    pub version_id: Option<&'a str>,
}

impl<'a> SecretRef<'a> {
    /// Splits a Secrets Manager `valueFrom`; `None` when it is not a Secrets Manager ARN.
    #[must_use]
    pub fn parse(value_from: &'a str) -> Option<SecretRef<'a>> {
        if !value_from.starts_with("arn:aws:secretsmanager:") {
            return None;
        }
        // The ARN is the first seven `:`-separated fields; what follows is key, stage, id.
        let mut end = 0;
        for (fields, (i, _)) in value_from.match_indices(':').enumerate() {
            if fields == 6 {
                end = i;
                break;
            }
        }
        if end == 0 {
            return Some(SecretRef {
                arn: value_from,
                json_key: None,
                version_stage: None,
                version_id: None,
            });
        }
        let mut rest = value_from[end + 1..].split(':');
        let part = |p: Option<&'a str>| p.filter(|s| !s.is_empty());
        Some(SecretRef {
            arn: &value_from[..end],
            json_key: part(rest.next()),
            version_stage: part(rest.next()),
            version_id: part(rest.next()),
        })
    }

    /// The secret's ARN without the six random characters Secrets Manager appends to its name
    /// (`…:secret:esr/db-Xk3f9Q` → `…:secret:esr/db`): how people name a secret.
    #[must_use]
    pub fn partial_arn(&self) -> &'a str {
        let arn = self.arn;
        match arn.rsplit_once('-') {
            Some((head, suffix))
                if suffix.len() == 6
                    && suffix.chars().all(|c| c.is_ascii_alphanumeric())
                    && head.contains(":secret:") =>
            {
                head
            }
            _ => arn,
        }
    }
}

/// The part of a secret's value a container receives: the whole value, or the string (or the
/// JSON text of any other value) under `json_key` of a JSON object.
///
/// # Errors
/// A sentence saying why, when the value is not a JSON object or lacks the key.
pub fn secret_part(value: &str, json_key: Option<&str>) -> Result<String, String> {
    let Some(key) = json_key else {
        return Ok(value.to_owned());
    };
    let parsed: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| format!("its value is not JSON, so it has no key {key:?}"))?;
    let object = parsed
        .as_object()
        .ok_or_else(|| format!("its value is not a JSON object, so it has no key {key:?}"))?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("its JSON value has no key {key:?}")),
    }
}

/// The S3 bucket and key of an env file's object ARN (`arn:aws:s3:::bucket/key`).
#[must_use]
pub fn s3_object(arn: &str) -> Option<(&str, &str)> {
    let path = arn.strip_prefix("arn:")?.splitn(5, ':').nth(4)?;
    let (bucket, key) = path.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_ecs_reads_them() {
        let text = "# the broker\n\nRABBIT_HOST=b-1.mq:5671\r\nQUOTED=\"a b\"\n  # indented comment\nURL=amqps://u:p=w@h:5671\nno equals\n=empty name\nEMPTY=\n";
        assert_eq!(
            env_file_variables(text),
            vec![
                ("RABBIT_HOST".to_owned(), "b-1.mq:5671".to_owned()),
                ("QUOTED".to_owned(), "\"a b\"".to_owned()),
                ("URL".to_owned(), "amqps://u:p=w@h:5671".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn a_redacted_env_file_keeps_only_addresses() {
        let text = "# admin:c0mment@h\nHOST=b-1.mq.eu-west-2.amazonaws.com\nURL=amqps://u:s3cr/et@b-1.mq:5671\nDB_PASSWORD=hunter2\n";
        let kept = redacted_env_file(text, &[]);
        for secret in ["s3cr/et", "hunter2", "c0mment"] {
            assert!(!kept.contains(secret), "{secret} in {kept}");
        }
        assert_eq!(
            env_file_variables(&kept),
            vec![
                (
                    "HOST".to_owned(),
                    "b-1.mq.eu-west-2.amazonaws.com".to_owned()
                ),
                ("URL".to_owned(), "amqps://u:****@b-1.mq:5671".to_owned()),
                ("DB_PASSWORD".to_owned(), "****".to_owned()),
            ]
        );
        assert!(kept.ends_with('\n'));
    }

    #[test]
    fn a_known_broker_host_is_kept_even_without_dots() {
        let brokers = ["mockmq".to_owned()];
        assert_eq!(kept_secret("mockmq", &brokers), "mockmq");
        assert_eq!(kept_secret("MOCKMQ:5671", &brokers), "MOCKMQ:5671");
        assert_eq!(kept_secret("hunter2", &brokers), "****");
        assert_eq!(kept_secret("mockmq", &[]), "****");
    }

    #[test]
    fn secret_references_split_into_arn_and_key() {
        let arn = "arn:aws:secretsmanager:eu-west-2:1:secret:esr/rabbit-AbCdEf";
        assert_eq!(
            SecretRef::parse(arn),
            Some(SecretRef {
                arn,
                json_key: None,
                version_stage: None,
                version_id: None
            })
        );
        let with_key = format!("{arn}:host::");
        let parsed = SecretRef::parse(&with_key).unwrap();
        assert_eq!(parsed.arn, arn);
        assert_eq!(parsed.json_key, Some("host"));
        assert_eq!(parsed.version_stage, None);
        assert_eq!(
            parsed.partial_arn(),
            "arn:aws:secretsmanager:eu-west-2:1:secret:esr/rabbit"
        );
        let staged = format!("{arn}::AWSPREVIOUS:");
        let parsed = SecretRef::parse(&staged).unwrap();
        assert_eq!(parsed.json_key, None);
        assert_eq!(parsed.version_stage, Some("AWSPREVIOUS"));
        assert_eq!(SecretRef::parse("/esr/rabbit/host"), None);
        let partial = "arn:aws:secretsmanager:eu-west-2:1:secret:rabbit";
        assert_eq!(SecretRef::parse(partial).unwrap().partial_arn(), partial);
    }

    #[test]
    fn a_json_key_is_read_from_the_value() {
        let value = r#"{"host":"b-1.mq","port":5671,"password":"x"}"#;
        assert_eq!(secret_part(value, Some("host")).unwrap(), "b-1.mq");
        assert_eq!(secret_part(value, Some("port")).unwrap(), "5671");
        assert!(secret_part(value, Some("user")).is_err());
        assert!(secret_part("b-1.mq", Some("host")).is_err());
        assert_eq!(secret_part("b-1.mq", None).unwrap(), "b-1.mq");
    }

    #[test]
    fn s3_object_arns() {
        assert_eq!(
            s3_object("arn:aws:s3:::esr-config/prod/app.env"),
            Some(("esr-config", "prod/app.env"))
        );
        assert_eq!(s3_object("arn:aws:s3:::bucket"), None);
        assert_eq!(s3_object("s3://bucket/key"), None);
    }
}
