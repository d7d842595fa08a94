//! What containers read from outside their task definitions, on AWS: env files from S3
//! (always) and Secrets Manager values (only those `read_secrets` opts in to).
//!
//! What cannot be read (access denied, no such object or secret, a JSON key the value lacks)
//! is left out of the world with the reason in [`World::unread`]: discovery then reports it as
//! not inspected, and decommission as `unverifiable`. Only an AWS that cannot be reached at all
//! stops the read. A secret's value is kept as an SSM SecureString's is
//! ([`crate::sources::kept_secret`]): a broker address with its password masked, else `****`
//! or the redacted marker; an env file is kept whole in memory (a move copies a variable's
//! value into the task definition), and [`World::redact`] masks it before a snapshot writes it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::error::SdkError;

use super::{errors, Aws};
use crate::backend::ReadScope;
use crate::error::{Error, Result};
use crate::model::World;
use crate::sources::{kept_secret, s3_object, secret_part, SecretRef};

/// Reads the env files and the opted-in secrets that `world`'s task definitions name into
/// `world`.
pub(super) async fn read(aws: &Aws, scope: &ReadScope, world: &mut World) -> Result<()> {
    read_env_files(aws, world).await?;
    read_secret_values(aws, scope, world).await
}

/// Whether a failed call means AWS could not be reached (the read stops) rather than that this
/// one object or secret cannot be read (it is reported unread).
fn unreachable<E, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))
}

async fn read_env_files(aws: &Aws, world: &mut World) -> Result<()> {
    let files: BTreeSet<String> = world
        .task_definitions
        .iter()
        .flat_map(|td| &td.containers)
        .flat_map(|c| &c.environment_files)
        .map(|f| f.value.clone())
        .collect();
    for file in files {
        let Some((bucket, key)) = s3_object(&file) else {
            world.unread.insert(
                file.clone(),
                format!("{file} is not an S3 object ARN (arn:aws:s3:::bucket/key)"),
            );
            continue;
        };
        let what = format!("env file {file}");
        let answer = aws
            .clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) if unreachable(&e) => return Err(errors::describe("s3:GetObject", &what, e)),
            Err(e) => {
                let why = errors::describe("s3:GetObject", &what, e).to_string();
                world.unread.insert(file, why);
                continue;
            }
        };
        let bytes = match out.body.collect().await {
            Ok(bytes) => bytes.into_bytes(),
            Err(e) => {
                return Err(Error::Backend(format!(
                    "s3:GetObject on {what}: the object could not be read to its end: {e}"
                )))
            }
        };
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => {
                world.env_files.insert(file, text);
            }
            Err(_) => {
                world
                    .unread
                    .insert(file, "the object is not UTF-8 text".to_owned());
            }
        }
    }
    Ok(())
}

/// The secret, stage and version one GetSecretValue call asks for.
type SecretVersion = (String, Option<String>, Option<String>);

async fn read_secret_values(aws: &Aws, scope: &ReadScope, world: &mut World) -> Result<()> {
    if scope.secrets.is_none() {
        return Ok(());
    }
    let references: BTreeSet<String> = world
        .task_definitions
        .iter()
        .flat_map(|td| &td.containers)
        .flat_map(|c| c.secrets.values())
        .filter(|v| scope.secrets.includes(v))
        .cloned()
        .collect();
    let known: Vec<String> = world
        .brokers
        .iter()
        .flat_map(|b| &b.endpoints)
        .flat_map(|e| crate::discovery::hosts_in(e))
        .collect();
    // One call per secret version, however many references (JSON keys) it serves.
    let mut values: BTreeMap<SecretVersion, std::result::Result<String, String>> = BTreeMap::new();
    for reference in &references {
        let Some(parsed) = SecretRef::parse(reference) else {
            continue;
        };
        let version: SecretVersion = (
            parsed.arn.to_owned(),
            parsed.version_stage.map(str::to_owned),
            parsed.version_id.map(str::to_owned),
        );
        if values.contains_key(&version) {
            continue;
        }
        let what = format!("secret {}", parsed.arn);
        let answer = aws
            .clients
            .secrets
            .get_secret_value()
            .secret_id(parsed.arn)
            .set_version_stage(version.1.clone())
            .set_version_id(version.2.clone())
            .send()
            .await;
        let value = match answer {
            Ok(out) => out.secret_string().map(str::to_owned).ok_or_else(|| {
                "it holds a binary value, which ECS cannot pass as a variable".to_owned()
            }),
            Err(e) if unreachable(&e) => {
                return Err(errors::describe("secretsmanager:GetSecretValue", &what, e))
            }
            Err(e) => Err(errors::describe("secretsmanager:GetSecretValue", &what, e).to_string()),
        };
        values.insert(version, value);
    }
    for reference in references {
        let Some(parsed) = SecretRef::parse(&reference) else {
            continue;
        };
        let version: SecretVersion = (
            parsed.arn.to_owned(),
            parsed.version_stage.map(str::to_owned),
            parsed.version_id.map(str::to_owned),
        );
        let part = match values.get(&version) {
            Some(Ok(value)) => secret_part(value, parsed.json_key),
            Some(Err(why)) => Err(why.clone()),
            None => continue,
        };
        match part {
            Ok(part) => {
                world
                    .parameters
                    .insert(reference.clone(), kept_secret(&part, &known));
                world.secret_parameters.insert(reference);
            }
            Err(why) => {
                world.unread.insert(reference, why);
            }
        }
    }
    Ok(())
}
