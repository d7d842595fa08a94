//! The team lock: a DynamoDB item per migration, taken with a conditional write, so that two
//! operators on two machines can never apply the same migration at once.
//!
//! The table has a string partition key `LockID` (as Terraform's S3 backend uses); the item's
//! `Info` attribute holds the holder as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use super::errors;
use crate::error::{Error, Result};
use crate::lock::Holder;

/// A held team lock; dropping it releases it.
pub struct TableLock {
    runtime: Arc<tokio::runtime::Runtime>,
    client: aws_sdk_dynamodb::Client,
    table: String,
    pub holder: Holder,
    info: String,
}

impl std::fmt::Debug for TableLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableLock")
            .field("table", &self.table)
            .field("holder", &self.holder)
            .finish()
    }
}

fn holder_of(item: Option<&HashMap<String, AttributeValue>>) -> Option<(Holder, String)> {
    let info = item?.get("Info")?.as_s().ok()?.clone();
    let holder = serde_json::from_str(&info).ok()?;
    Some((holder, info))
}

async fn current(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migration: &str,
) -> Result<Option<(Holder, String)>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("LockID", AttributeValue::S(migration.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| errors::describe("dynamodb:GetItem", &format!("table {table}"), e))?;
    Ok(holder_of(out.item()))
}

async fn remove(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migration: &str,
    info: &str,
) -> Result<bool> {
    match client
        .delete_item()
        .table_name(table)
        .key("LockID", AttributeValue::S(migration.to_owned()))
        .condition_expression("Info = :info")
        .expression_attribute_values(":info", AttributeValue::S(info.to_owned()))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(errors::describe(
            "dynamodb:DeleteItem",
            &format!("table {table}"),
            e,
        )),
    }
}

impl TableLock {
    /// Takes the lock of `migration` in `table` for `command`. Returns the lock and, when the
    /// lock of a process gone from this host was taken over, a warning saying so.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the holder while someone else holds the lock;
    /// [`Error::Backend`] when the table cannot be used.
    pub fn acquire(
        runtime: Arc<tokio::runtime::Runtime>,
        client: aws_sdk_dynamodb::Client,
        table: &str,
        migration: &str,
        command: &str,
    ) -> Result<(TableLock, Option<String>)> {
        let holder = Holder::new(migration, command);
        let info = serde_json::to_string(&holder).expect("a holder always serialises");
        let mut warning = None;
        let rt = runtime.clone();
        rt.block_on(async {
            for _ in 0..2 {
                let put = client
                    .put_item()
                    .table_name(table)
                    .item("LockID", AttributeValue::S(migration.to_owned()))
                    .item("Info", AttributeValue::S(info.clone()))
                    .condition_expression("attribute_not_exists(LockID)")
                    .send()
                    .await;
                match put {
                    Ok(_) => return Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        let Some((other, other_info)) = current(&client, table, migration).await? else {
                            continue;
                        };
                        // A retried put whose first attempt went through finds its own lock.
                        if other_info == info {
                            return Ok(());
                        }
                        if other.is_dead_here() {
                            remove(&client, table, migration, &other_info).await?;
                            warning = Some(format!("took over {other}: that process is gone"));
                            continue;
                        }
                        return Err(Error::Refused(format!(
                            "migration {migration} is locked in DynamoDB table {table}: {other}. If that run is gone, release it with `warren unlock --lock-id {}`",
                            other.id
                        )));
                    }
                    Err(e) => return Err(errors::describe("dynamodb:PutItem", &format!("table {table}"), e)),
                }
            }
            Err(Error::Refused(format!("the lock of {migration} in table {table} keeps changing; try again")))
        })?;
        Ok((
            TableLock {
                runtime,
                client,
                table: table.to_owned(),
                holder,
                info,
            },
            warning,
        ))
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(remove(
            &self.client,
            &self.table,
            &self.holder.migration,
            &self.info,
        ));
    }
}

/// Removes the lock of `migration` in `table` if its id is `id`, and returns who held it.
///
/// # Errors
/// [`Error::Refused`] when there is no lock or it has another id.
pub fn unlock(
    runtime: &tokio::runtime::Runtime,
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migration: &str,
    id: &str,
) -> Result<Holder> {
    runtime.block_on(async {
        match current(client, table, migration).await? {
            None => Err(Error::Refused(format!(
                "migration {migration} has no lock in table {table}"
            ))),
            Some((holder, info)) if holder.id == id => {
                if remove(client, table, migration, &info).await? {
                    Ok(holder)
                } else {
                    Err(Error::Refused(format!(
                        "the lock of {migration} changed meanwhile; nothing was removed"
                    )))
                }
            }
            Some((holder, _)) => Err(Error::Refused(format!(
                "the lock's id is {}, not {id}: nothing was removed ({holder})",
                holder.id
            ))),
        }
    })
}
