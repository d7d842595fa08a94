//! The rehearsal backend: a world file (CONTRACT.md, "The world file").
//!
//! Every call that changes the world reads the file as it is, makes its change and writes the
//! file back atomically before it returns, so a kill at any moment leaves a valid world and a
//! change never writes back a stale copy over another process's edit. A batch call
//! (`register_task_definitions`, `update_services`, `rollouts`) does the same once for all of
//! its items: one read, one write. Rollouts take each service's `rollout_seconds` and fail where it says
//! `"rollout": "fail"`; a queue with consumers drains when looked at; one without never does.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::backend::broker::world::{Op, WorldBroker, WorldStore};
use crate::backend::broker::{BrokerApi, LiveBrokers};
use crate::backend::{Backend, ReadScope, Rollout, RolloutQuery, ServiceUpdate};
use crate::discovery::{hosts_in, parameter_value, ResolvedBroker};
use crate::error::{Error, Result};
use crate::host;
use crate::model::{TaskDefinition, World, WORLD_VERSION};

/// A world file on disk.
#[derive(Debug)]
pub struct Rehearsal {
    path: PathBuf,
    /// The whole world as last read or written (never only the scope of one read); `None`
    /// once a read has handed it to the caller.
    world: Option<World>,
    /// The file's text when this backend last read or wrote it: while the file holds the same,
    /// `world` is what it says, and it is not parsed again.
    text: String,
    /// The live brokers (those whose queues the file does not list), once reached.
    live: LiveBrokers,
    /// How many times this backend has written the file.
    writes: usize,
}

impl Rehearsal {
    /// A backend over the world file at `path` (read on demand).
    #[must_use]
    pub fn new(path: &Path) -> Rehearsal {
        Rehearsal {
            path: path.to_owned(),
            world: None,
            text: String::new(),
            live: LiveBrokers::default(),
            writes: 0,
        }
    }

    /// How many times this backend has written the world file: what a large rehearsal costs.
    #[must_use]
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// The world as the file holds it now. Every change starts from here, so a change never
    /// writes back a copy older than what another run wrote in the meantime. The file is read
    /// each time, and parsed only when its text differs from what this backend last read or
    /// wrote (a large world costs a read, not a parse, per call).
    fn load(&mut self) -> Result<&mut World> {
        let text = crate::stats::timed(
            || "world:read".to_owned(),
            || std::fs::read_to_string(&self.path),
        )
        .map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        if self.world.is_none() || text != self.text {
            self.world = Some(parse_world(&self.path, &text)?);
            self.text = text;
        }
        Ok(self.world.as_mut().expect("loaded above"))
    }

    fn save(&mut self) -> Result<()> {
        let world = self
            .world
            .as_ref()
            .expect("a world is loaded before it changes");
        let mut text = serde_json::to_string_pretty(world).expect("a world always serialises");
        text.push('\n');
        let written = crate::stats::timed(
            || "world:write".to_owned(),
            || crate::atomic::write(&self.path, text.as_bytes()),
        );
        if let Err(e) = written {
            // The world in memory holds a change the file does not: forget it, so that the
            // next call starts from the file again.
            self.world = None;
            return Err(e);
        }
        self.text = text;
        self.writes += 1;
        Ok(())
    }

    /// Writes the file when `changed`; on failure every item whose change succeeded in memory
    /// fails with the write's error instead (the file does not have its change).
    fn save_batch<T>(&mut self, changed: bool, results: Vec<Result<T>>) -> Vec<Result<T>> {
        if !changed {
            return results;
        }
        match self.save() {
            Ok(()) => results,
            Err(e) => results
                .into_iter()
                .map(|r| r.and_then(|_| Err(copy_of(&e))))
                .collect(),
        }
    }
}

/// The same error again, for each item of a batch it failed.
fn copy_of(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Backend(other.to_string()),
    }
}

/// Points `cluster/service` at `task_definition` in `world` and records its rollout as started
/// now; `path` is only used in messages.
fn point(
    world: &mut World,
    path: &Path,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<()> {
    if world.task_definition(task_definition).is_none() {
        return Err(Error::Backend(format!(
            "task definition {task_definition} does not exist"
        )));
    }
    let s = service_mut(world, path, cluster, service)?;
    let before = std::mem::replace(&mut s.task_definition, task_definition.to_owned());
    // Kept in the file, so that a rollout outlives the process that started it, as on ECS.
    s.extra.insert(
        ROLLOUT_KEY.to_owned(),
        serde_json::json!({
            "started": crate::journal::timestamp(SystemTime::now()),
            "previous": before,
        }),
    );
    Ok(())
}

/// Where the rollout of `cluster/service` onto `task_definition` stands in `world`, ending it
/// there when its time has come; and whether `world` changed.
fn look(
    world: &mut World,
    path: &Path,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<(Rollout, bool)> {
    let s = service_mut(world, path, cluster, service)?;
    if s.task_definition != task_definition {
        return Ok((
            Rollout::Failed {
                running: s.task_definition.clone(),
                reason: format!(
                    "the service runs {}, not {task_definition}",
                    s.task_definition
                ),
            },
            false,
        ));
    }
    if let Some(started) = s.extra.get(ROLLOUT_KEY) {
        let since = started
            .get("started")
            .and_then(|t| t.as_str())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or(Duration::MAX);
        let takes = Duration::try_from_secs_f64(s.rollout_seconds.unwrap_or(0.0).max(0.0))
            .unwrap_or(Duration::MAX);
        if since < takes {
            return Ok((Rollout::InProgress, false));
        }
        let previous = started
            .get("previous")
            .and_then(|p| p.as_str())
            .map(str::to_owned);
        s.extra.remove(ROLLOUT_KEY);
        if let (Some("fail"), Some(before)) = (s.rollout.as_deref(), previous) {
            // As ECS's circuit breaker does: back on the previous revision, the new one
            // stays registered.
            s.task_definition.clone_from(&before);
            return Ok((
                Rollout::Failed {
                    running: before,
                    reason: "the deployment failed and was rolled back".to_owned(),
                },
                true,
            ));
        }
    }
    // A completed rollout has replaced every older task, as ECS's rolling update does.
    s.deployments.clear();
    move_connections(world, cluster, service, task_definition);
    Ok((Rollout::Completed, true))
}

impl WorldStore for Rehearsal {
    fn with_world<T>(&mut self, kind: Op, op: impl FnOnce(&mut World) -> Result<T>) -> Result<T> {
        let before = self.load()?.brokers.clone();
        let result = op(self.world.as_mut().expect("loaded above"))?;
        if kind != Op::Read && self.world.as_ref().is_some_and(|w| w.brokers != before) {
            self.save()?;
        }
        Ok(result)
    }

    fn with_world_each<I, T>(
        &mut self,
        kind: Op,
        items: &[I],
        mut op: impl FnMut(&mut World, &I) -> Result<T>,
    ) -> Vec<Result<T>> {
        let before = match self.load() {
            Ok(world) => world.brokers.clone(),
            Err(e) => return items.iter().map(|_| Err(copy_of(&e))).collect(),
        };
        let world = self.world.as_mut().expect("loaded above");
        let results: Vec<Result<T>> = items.iter().map(|item| op(world, item)).collect();
        let changed = kind != Op::Read && world.brokers != before;
        self.save_batch(changed, results)
    }
}

fn service_mut<'w>(
    world: &'w mut World,
    path: &Path,
    cluster: &str,
    service: &str,
) -> Result<&'w mut crate::model::Service> {
    world
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster)
        .and_then(|c| c.services.iter_mut().find(|s| s.name == service))
        .ok_or_else(|| {
            Error::Backend(format!(
                "service {cluster}/{service} is not in {}",
                path.display()
            ))
        })
}

/// The service field in which the rehearsal keeps a rollout that has not ended yet.
const ROLLOUT_KEY: &str = "rollout_started";

/// Parses world-file text; `path` is only used in messages.
///
/// # Errors
/// [`Error::Input`] naming the file, line, column and key of the first problem.
pub fn parse_world(path: &Path, text: &str) -> Result<World> {
    let mut de = serde_json::Deserializer::from_str(text);
    let world: World = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        Error::Input {
            file: path.to_owned(),
            line: inner.line(),
            column: inner.column(),
            key: (key != ".").then_some(key),
            message: strip_position(&inner.to_string()),
        }
    })?;
    de.end().map_err(|e| Error::Input {
        file: path.to_owned(),
        line: e.line(),
        column: e.column(),
        key: None,
        message: strip_position(&e.to_string()),
    })?;
    if world.version != WORLD_VERSION {
        return Err(Error::Input {
            file: path.to_owned(),
            line: 0,
            column: 0,
            key: Some("version".into()),
            message: format!(
                "world file version {} is not supported (expected {WORLD_VERSION})",
                world.version
            ),
        });
    }
    if let Some(duplicate) = world.duplicate() {
        return Err(Error::Input {
            file: path.to_owned(),
            line: 0,
            column: 0,
            key: Some(duplicate.key.clone()),
            message: duplicate.to_string(),
        });
    }
    for (c, cluster) in world.clusters.iter().enumerate() {
        for (i, service) in cluster.services.iter().enumerate() {
            if world.task_definition(&service.task_definition).is_none() {
                return Err(Error::Input {
                    file: path.to_owned(),
                    line: 0,
                    column: 0,
                    key: Some(format!("clusters[{c}].services[{i}].task_definition")),
                    message: format!(
                        "service {}/{} runs {}, which is not in task_definitions",
                        cluster.name, service.name, service.task_definition
                    ),
                });
            }
        }
    }
    Ok(world)
}

/// Moves the connections and the consumers that come from `cluster/service` (as
/// [`crate::clients`] tells) to the broker its task definition `task_definition` points at.
/// Returns whether any connection moved.
fn move_connections(
    world: &mut World,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> bool {
    let Some(td) = world.task_definition(task_definition) else {
        return false;
    };
    let mut hosts = Vec::new();
    for container in &td.containers {
        for value in container.environment.values() {
            hosts.extend(hosts_in(value));
        }
        for value_from in container.secrets.values() {
            if let Some(value) = parameter_value(world, value_from) {
                hosts.extend(hosts_in(value));
            }
        }
        for (_, value) in container.fields() {
            hosts.extend(host::hosts_read(value, host::Reading::Words));
        }
    }
    let Some(target) = world.brokers.iter().position(|b| {
        !b.is_deleted()
            && b.endpoints
                .iter()
                .flat_map(|e| hosts_in(e))
                .any(|h| hosts.iter().any(|mine| host::same_host(mine, &h)))
    }) else {
        return false;
    };
    let full = format!("{cluster}/{service}");
    let clients = crate::clients::Clients::of(world);
    let mut moving = Vec::new();
    for (i, broker) in world.brokers.iter_mut().enumerate() {
        if i != target {
            let (mine, others): (Vec<_>, Vec<_>) = broker
                .connections
                .drain(..)
                .partition(|c| clients.owners(c).contains(&full));
            broker.connections = others;
            moving.extend(mine);
        }
    }
    let moved = !moving.is_empty();
    world.brokers[target].connections.extend(moving);
    // Its consumers follow it: what it consumed on the broker it left, it consumes on the one
    // it moved to, where that broker has the queue.
    let mut consumed = Vec::new();
    for (i, broker) in world.brokers.iter_mut().enumerate() {
        if i == target {
            continue;
        }
        for queue in broker.queues.iter_mut().flatten() {
            let before = queue.consumed_by.len();
            queue.consumed_by.retain(|client| {
                let mine = clients.named_by(client).contains(&full);
                if mine {
                    consumed.push((queue.vhost.clone(), queue.name.clone(), client.clone()));
                }
                !mine
            });
            let gone = (before - queue.consumed_by.len()) as u64;
            queue.consumers = queue.consumers.saturating_sub(gone);
        }
    }
    for (vhost, name, client) in consumed {
        if let Some(queue) = world.brokers[target]
            .queues
            .iter_mut()
            .flatten()
            .find(|q| q.vhost == vhost && q.name == name)
        {
            if !queue.consumed_by.contains(&client) {
                queue.consumed_by.push(client);
                queue.consumers += 1;
            }
        }
    }
    moved
}

/// serde_json appends " at line L column C"; warren puts the position in front instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl Backend for Rehearsal {
    fn describe(&self) -> String {
        format!("world file {}", self.path.display())
    }

    fn read(&mut self, scope: &ReadScope) -> Result<World> {
        // Read afresh: another process may have changed the file since. The file holds
        // everything (schedules, functions, pipes…), so `everything` and `resources` change
        // nothing here.
        // The caller gets the world itself, not a copy: a large world is held once, and its
        // text not at all. A change after this read parses the file again (a command reads once).
        self.load()?;
        let mut world = self.world.take().expect("loaded above");
        self.text = String::new();
        if let Some(clusters) = &scope.clusters {
            // Reading only what is in scope keeps the rehearsal honest: a plan cannot see
            // what the AWS backend would not have read either.
            world.clusters.retain(|c| clusters.contains(&c.name));
        }
        Ok(world)
    }

    fn register_task_definition(&mut self, td: &TaskDefinition) -> Result<String> {
        let key = self.load()?.register(td)?;
        self.save()?;
        Ok(key)
    }

    fn update_service(
        &mut self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        point(self.load()?, &path, cluster, service, task_definition)?;
        self.save()
    }

    fn register_task_definitions(&mut self, tds: &[&TaskDefinition]) -> Vec<Result<String>> {
        let world = match self.load() {
            Ok(world) => world,
            Err(e) => return tds.iter().map(|_| Err(copy_of(&e))).collect(),
        };
        let results: Vec<Result<String>> = tds.iter().map(|td| world.register(td)).collect();
        let changed = results.iter().any(Result::is_ok);
        self.save_batch(changed, results)
    }

    fn update_services(&mut self, updates: &[ServiceUpdate]) -> Vec<Result<()>> {
        let path = self.path.clone();
        let world = match self.load() {
            Ok(world) => world,
            Err(e) => return updates.iter().map(|_| Err(copy_of(&e))).collect(),
        };
        let results: Vec<Result<()>> = updates
            .iter()
            .map(|u| point(world, &path, &u.cluster, &u.service, &u.task_definition))
            .collect();
        let changed = results.iter().any(Result::is_ok);
        self.save_batch(changed, results)
    }

    fn update_schedule(&mut self, schedule: &crate::model::Schedule) -> Result<()> {
        let path = self.path.clone();
        let world = self.load()?;
        if schedule.task_definition.contains(':')
            && world.task_definition(&schedule.task_definition).is_none()
        {
            return Err(Error::Backend(format!(
                "task definition {} does not exist",
                schedule.task_definition
            )));
        }
        let Some(found) = crate::retarget::find_mut(world, schedule) else {
            return Err(Error::Backend(format!(
                "{} is not in {}",
                crate::retarget::label_of(schedule),
                path.display()
            )));
        };
        found.task_definition.clone_from(&schedule.task_definition);
        found.overrides.clone_from(&schedule.overrides);
        self.save()
    }

    fn rollout(&mut self, cluster: &str, service: &str, task_definition: &str) -> Result<Rollout> {
        let path = self.path.clone();
        let (rollout, changed) = look(self.load()?, &path, cluster, service, task_definition)?;
        if changed {
            self.save()?;
        }
        Ok(rollout)
    }

    fn rollouts(&mut self, asked: &[RolloutQuery]) -> Result<Vec<Rollout>> {
        let path = self.path.clone();
        let world = self.load()?;
        let mut changed = false;
        let mut rollouts = Vec::with_capacity(asked.len());
        let mut failure = None;
        for q in asked {
            match look(world, &path, &q.cluster, &q.service, &q.task_definition) {
                Ok((rollout, ended)) => {
                    changed |= ended;
                    rollouts.push(rollout);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // What ended before a service that cannot be read is written all the same: the file
        // always says what the rollouts did.
        if changed {
            self.save()?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(rollouts),
        }
    }

    fn running_task_definition(&mut self, cluster: &str, service: &str) -> Result<Option<String>> {
        Ok(self
            .load()?
            .service(cluster, service)
            .map(|s| s.task_definition.clone()))
    }

    fn running_task_definitions(
        &mut self,
        services: &[(String, String)],
    ) -> Result<Vec<Option<String>>> {
        let world = self.load()?;
        Ok(services
            .iter()
            .map(|(cluster, service)| {
                world
                    .service(cluster, service)
                    .map(|s| s.task_definition.clone())
            })
            .collect())
    }

    fn broker<'a>(&'a mut self, broker: &ResolvedBroker) -> Result<Box<dyn BrokerApi + 'a>> {
        let world = self.load()?;
        let simulated = broker
            .index_in(world)
            .is_some_and(|i| world.brokers[i].queues.is_some());
        if simulated {
            let alias = broker.alias.to_string();
            Ok(Box::new(WorldBroker::new(self, &broker.id, &alias)))
        } else {
            // A broker the world file leaves to the broker itself: the live one.
            Ok(Box::new(self.live.get(broker)?))
        }
    }

    fn delete_broker(&mut self, broker: &ResolvedBroker) -> Result<()> {
        let world = self.load()?;
        let Some(index) = broker.index_in(world) else {
            return Err(Error::Backend(format!(
                "broker {} is not in the world file",
                broker.id
            )));
        };
        world.brokers[index].state = "DELETED".to_owned();
        self.save()
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_key() {
        let text = "{\n  \"version\": 1,\n  \"clusters\": [ { \"name\": 5 } ]\n}";
        let err = parse_world(Path::new("w.json"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.json:3:"), "{err}");
        assert!(err.contains("clusters[0].name"), "{err}");
    }

    #[test]
    fn a_service_on_a_missing_task_definition_names_the_file_and_key() {
        let text = r#"{"version": 1, "clusters": [{"name": "c", "services": [{"name": "s", "task_definition": "s:9"}]}]}"#;
        let err = parse_world(Path::new("w.json"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "w.json: key `clusters[0].services[0].task_definition`: service c/s runs s:9, which is not in task_definitions"
        );
    }

    #[test]
    fn registering_past_the_last_revision_ecs_allows_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let world =
            r#"{"version": 1, "task_definitions": [{"family": "api", "revision": 1000000}]}"#;
        std::fs::write(&path, world).unwrap();
        let td = parse_world(&path, world).unwrap().task_definitions[0].clone();
        let err = Rehearsal::new(&path)
            .register_task_definition(&td)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already has revision 1000000"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), world);
    }

    #[test]
    fn refuses_other_versions() {
        let err = parse_world(Path::new("w.json"), "{\"version\": 2}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 2 is not supported"), "{err}");
    }
}

#[cfg(test)]
mod stale_copies {
    use super::*;
    use crate::config::BrokerAlias;

    #[test]
    fn a_change_never_writes_back_a_stale_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let world = r#"{"version": 1, "brokers": [{"id": "b-old", "endpoints": ["amqps://old.mq:5671"], "queues": []}]}"#;
        std::fs::write(&path, world).unwrap();
        let mut rehearsal = Rehearsal::new(&path);
        rehearsal.read(&ReadScope::default()).unwrap();

        // Another run changes the file after this one read it.
        let changed = r#"{"version": 1, "brokers": [{"id": "b-old", "endpoints": ["amqps://old.mq:5671"], "queues": []}], "parameters": {"/p": "written by another run"}}"#;
        std::fs::write(&path, changed).unwrap();
        let old = ResolvedBroker {
            alias: BrokerAlias::Old,
            id: "b-old".into(),
            name: None,
            endpoints: vec!["amqps://old.mq:5671".into()],
            hosts: vec!["old.mq".into()],
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: None,
        };
        rehearsal.delete_broker(&old).unwrap();

        let after = parse_world(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after.brokers[0].state, "DELETED");
        assert_eq!(after.parameters["/p"], "written by another run");
    }
}

#[cfg(test)]
mod idempotent_register {
    use super::*;

    const WORLD: &str = r#"{"version": 1, "task_definitions": [
        {"family": "s", "revision": 1, "containers": [{"name": "app", "environment": {"HOST": "old.mq"}}]},
        {"family": "s", "revision": 2, "arn": "arn:aws:ecs:eu-west-2:1:task-definition/s:2",
         "containers": [{"name": "app", "environment": {"HOST": "new.mq"}}]}]}"#;

    fn moved_to(host: &str) -> TaskDefinition {
        let mut td = parse_world(Path::new("w.json"), WORLD)
            .unwrap()
            .task_definitions[0]
            .clone();
        td.containers[0].environment.insert("HOST", host);
        td
    }

    #[test]
    fn a_revision_with_the_same_content_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        std::fs::write(&path, WORLD).unwrap();
        let mut rehearsal = Rehearsal::new(&path);

        assert_eq!(
            rehearsal
                .register_task_definition(&moved_to("new.mq"))
                .unwrap(),
            "s:2"
        );
        assert_eq!(
            rehearsal
                .register_task_definition(&moved_to("other.mq"))
                .unwrap(),
            "s:3"
        );
        let after = parse_world(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after.task_definitions.len(), 3);
    }
}

#[cfg(test)]
mod parsed_once {
    use super::*;

    const WORLD: &str = r#"{"version": 1,
        "clusters": [{"name": "c", "services": [{"name": "s", "task_definition": "s:1"}]}],
        "task_definitions": [
            {"family": "s", "revision": 1, "containers": [{"name": "app"}]},
            {"family": "s", "revision": 7, "containers": [{"name": "app"}]}]}"#;

    /// The world in memory stands for the file only while the file's text is the same: an edit
    /// by another process, even one of the same length made at once, is read.
    #[test]
    fn an_edit_of_the_same_length_by_another_process_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        std::fs::write(&path, WORLD).unwrap();
        let mut rehearsal = Rehearsal::new(&path);
        assert_eq!(
            rehearsal
                .running_task_definition("c", "s")
                .unwrap()
                .as_deref(),
            Some("s:1")
        );
        std::fs::write(&path, WORLD.replace("\"s:1\"", "\"s:7\"")).unwrap();
        assert_eq!(
            rehearsal
                .running_task_definition("c", "s")
                .unwrap()
                .as_deref(),
            Some("s:7")
        );
    }
}

#[cfg(test)]
mod batched {
    use super::*;
    use crate::executor::{self, Options};

    /// A world of `n` services on the old broker, and a plan that moves them all to the new
    /// one, in one wave.
    fn estate(n: usize) -> (String, String) {
        let mut services = Vec::new();
        let mut task_definitions = Vec::new();
        let mut plan = String::from(
            "[migration]\nname = \"batch\"\n[brokers.old]\nid = \"b-old\"\n[brokers.new]\nid = \"b-new\"\n",
        );
        for i in 0..n {
            let name = format!("s{i}");
            services
                .push(serde_json::json!({"name": name, "task_definition": format!("{name}:1")}));
            task_definitions.push(serde_json::json!({"family": name, "revision": 1,
                "containers": [{"name": "app",
                    "environment": {"SPRING_RABBITMQ_HOST": "old.mq.test"}}]}));
            plan.push_str(&format!(
                "[[services]]\ncluster = \"c\"\nname = \"{name}\"\nbroker = \"new\"\n"
            ));
        }
        let world = serde_json::json!({
            "version": 1,
            "brokers": [
                {"id": "b-old", "endpoints": ["amqps://old.mq.test:5671"], "queues": []},
                {"id": "b-new", "endpoints": ["amqps://new.mq.test:5671"], "queues": []},
            ],
            "clusters": [{"name": "c", "services": services}],
            "task_definitions": task_definitions,
        });
        (world.to_string(), plan)
    }

    /// Plans and applies `plan` (TOML) to `world` (JSON), written to a world file in `dir`: the
    /// rehearsal, its journal, the plan made and what the run did.
    fn apply(
        dir: &Path,
        (world, plan): (String, String),
    ) -> (
        Rehearsal,
        crate::journal::Journal,
        crate::plan::Plan,
        executor::Report,
    ) {
        let path = dir.join("world.json");
        std::fs::write(&path, world).unwrap();
        let config = crate::config::Config::parse(Path::new("plan.toml"), plan).unwrap();
        let mut rehearsal = Rehearsal::new(&path);
        let world = rehearsal.read(&ReadScope::default()).unwrap();
        let plan = crate::plan::make(&config, &world).unwrap();
        let (schedule, _) = executor::schedule(&plan, &world).unwrap();
        let journal = crate::journal::Journal::new(&dir.join("journal.jsonl"));
        let report = executor::execute(
            &schedule,
            &plan.brokers,
            &mut rehearsal,
            &journal,
            Options {
                drain_timeout: Duration::from_secs(60),
                rollout_timeout: Duration::from_secs(60),
                wave_check: None,
                link_check: Options::LINK_CHECK,
                stall: Options::STALL,
            },
            &mut crate::progress::Progress::quiet(),
        )
        .unwrap();
        (rehearsal, journal, plan, report)
    }

    /// A wave costs one write of the world file per phase (its registrations, its updates, the
    /// rollouts that ended at one look), not one per service and step.
    #[test]
    fn a_wave_of_fifty_services_writes_the_world_file_three_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let (rehearsal, journal, plan, report) = apply(dir.path(), estate(50));
        assert_eq!(plan.waves.len(), 1, "{:?}", plan.waves);

        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.moved.len(), 50);
        assert_eq!(rehearsal.writes(), 3, "registrations, updates, rollouts");
        let after = parse_world(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        for i in 0..50 {
            assert_eq!(
                after
                    .service("c", &format!("s{i}"))
                    .unwrap()
                    .task_definition,
                format!("s{i}:2")
            );
        }
        let steps: Vec<(String, String)> = journal
            .entries("batch")
            .unwrap()
            .list
            .iter()
            .map(|e| (format!("{:?}", e.step), format!("{:?}", e.result)))
            .collect();
        let phase = |step: &str, result: &str| vec![(step.to_owned(), result.to_owned()); 50];
        let expected: Vec<(String, String)> = [
            phase("Register", "Started"),
            phase("Register", "Ok"),
            phase("Update", "Started"),
            phase("Update", "Ok"),
            phase("Rollout", "Ok"),
        ]
        .concat();
        assert_eq!(steps, expected, "the journal, phase by phase");
    }

    /// `n` publishers, each with its exchange bound to the queue of one of `n` consumers; every
    /// queue on the old broker holds 3 messages its consumer is reading.
    fn chained(n: usize) -> (String, String) {
        let mut services = Vec::new();
        let mut task_definitions = Vec::new();
        let (mut queues, mut exchanges, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
        let mut plan = String::from(
            "[migration]\nname = \"drains\"\n[brokers.old]\nid = \"b-old\"\n[brokers.new]\nid = \"b-new\"\n",
        );
        for i in 0..n {
            for (name, role) in [
                (format!("p{i}"), "publishes"),
                (format!("c{i}"), "consumes"),
            ] {
                services.push(
                    serde_json::json!({"name": name, "task_definition": format!("{name}:1")}),
                );
                task_definitions.push(serde_json::json!({"family": name, "revision": 1,
                    "containers": [{"name": "app",
                        "environment": {"SPRING_RABBITMQ_HOST": "old.mq.test"}}]}));
                let what = if role == "publishes" {
                    format!("ex{i}")
                } else {
                    format!("q{i}")
                };
                plan.push_str(&format!(
                    "[[services]]\ncluster = \"c\"\nname = \"{name}\"\nbroker = \"new\"\n{role} = [\"{what}\"]\n"
                ));
            }
            queues.push(serde_json::json!({"vhost": "/", "name": format!("q{i}"),
                "messages": 3, "consumers": 1}));
            exchanges.push(serde_json::json!({"vhost": "/", "name": format!("ex{i}"),
                "type": "topic", "durable": true}));
            bindings.push(
                serde_json::json!({"vhost": "/", "exchange": format!("ex{i}"),
                "queue": format!("q{i}"), "routing_key": "#"}),
            );
        }
        let world = serde_json::json!({
            "version": 1,
            "brokers": [
                {"id": "b-old", "endpoints": ["amqps://old.mq.test:5671"], "queues": queues,
                    "exchanges": exchanges, "bindings": bindings},
                {"id": "b-new", "endpoints": ["amqps://new.mq.test:5671"], "queues": []},
            ],
            "clusters": [{"name": "c", "services": services}],
            "task_definitions": task_definitions,
        });
        (world.to_string(), plan)
    }

    /// The queues a wave waits for are looked at together: the look that sees 30 consumers at
    /// work on their queues is one write of the world file, not 30, and every queue is
    /// journalled drained with the messages it held.
    #[test]
    fn the_drains_before_a_wave_are_one_look_at_every_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (rehearsal, journal, plan, report) = apply(dir.path(), chained(30));
        assert_eq!(plan.waves.len(), 2, "{:?}", plan.waves);
        assert_eq!(plan.drains.len(), 30);
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.moved.len(), 60);
        assert_eq!(
            rehearsal.writes(),
            1 + 3 + 1 + 3,
            "the topology; wave 1's registrations, updates and rollouts; the look at the 30 \
             queues; wave 2's three phases"
        );
        let drains: Vec<(Option<String>, Option<u64>)> = journal
            .entries("drains")
            .unwrap()
            .list
            .iter()
            .filter(|e| e.step == crate::journal::Step::Drain)
            .map(|e| (e.queue.clone(), e.messages))
            .collect();
        let mut expected: Vec<(Option<String>, Option<u64>)> =
            (0..30).map(|i| (Some(format!("q{i}")), Some(3))).collect();
        expected.sort();
        assert_eq!(drains, expected, "in the plan's order of queues");
    }
}
