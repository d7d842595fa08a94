//! The shared journal: every journal entry of a migration also goes to the lock table, so that
//! an operator on another machine (or a CI runner) resumes, rolls back or reads the status of
//! what a colleague applied.
//!
//! An entry is one item of the lock table (the same table and key as the team lock, see
//! [`super::lock`]): `LockID` is `<migration>/journal/<sequence>` (the sequence zero-padded to
//! twelve digits), `Migration` and `Sequence` repeat the two, and `Entry` holds the entry's JSON
//! exactly as the journal file's line. Items are only ever added, each with a conditional write
//! that refuses to overwrite one already there.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;

use super::errors;
use crate::error::{Error, Result};
use crate::journal::{Entry, SharedJournal};

/// The journal entries of one migration in a DynamoDB table.
pub struct TableJournal {
    runtime: Arc<tokio::runtime::Runtime>,
    client: aws_sdk_dynamodb::Client,
    table: String,
    migration: String,
    /// The sequence number of the last entry there, once read.
    last: Mutex<Option<u64>>,
}

impl std::fmt::Debug for TableJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableJournal")
            .field("table", &self.table)
            .field("migration", &self.migration)
            .finish_non_exhaustive()
    }
}

/// The key prefix of `migration`'s entries.
fn prefix(migration: &str) -> String {
    format!("{migration}/journal/")
}

impl TableJournal {
    /// The entries of `migration` in `table`.
    #[must_use]
    pub fn new(
        runtime: Arc<tokio::runtime::Runtime>,
        client: aws_sdk_dynamodb::Client,
        table: &str,
        migration: &str,
    ) -> TableJournal {
        TableJournal {
            runtime,
            client,
            table: table.to_owned(),
            migration: migration.to_owned(),
            last: Mutex::new(None),
        }
    }

    /// Every entry of `migration` with its sequence number, in sequence order: one consistent
    /// scan of the table (every page), keeping the items of this migration's journal.
    async fn scan(&self, migration: &str) -> Result<Vec<(u64, Entry)>> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(LockID, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix(migration)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    errors::describe("dynamodb:Scan", &format!("table {}", self.table), e)
                })?;
            for item in page.items() {
                let key = item
                    .get("LockID")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let damaged = |what: &str| {
                    Error::Backend(format!(
                        "the shared journal in DynamoDB table {} has a damaged item {key}: {what}",
                        self.table
                    ))
                };
                let sequence = item
                    .get("Sequence")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| damaged("no Sequence number"))?;
                let text = item
                    .get("Entry")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| damaged("no Entry"))?;
                let entry: Entry = serde_json::from_str(text)
                    .map_err(|e| damaged(&format!("not a journal entry ({e})")))?;
                found.push((sequence, entry));
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        found.sort_by_key(|(sequence, _)| *sequence);
        Ok(found)
    }

    /// Writes `entry` as number `sequence`; `false` when an item of that number is there
    /// already.
    async fn put(&self, sequence: u64, entry: &Entry) -> Result<bool> {
        let text = serde_json::to_string(entry).expect("an entry always serialises");
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "LockID",
                AttributeValue::S(format!("{}{sequence:012}", prefix(&self.migration))),
            )
            .item("Migration", AttributeValue::S(self.migration.clone()))
            .item("Sequence", AttributeValue::N(sequence.to_string()))
            .item("Entry", AttributeValue::S(text))
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(errors::describe(
                "dynamodb:PutItem",
                &format!("table {}", self.table),
                e,
            )),
        }
    }
}

impl SharedJournal for TableJournal {
    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    fn append(&self, entry: &Entry) -> Result<()> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.runtime.block_on(async {
            // The run holds the migration's lock, so nobody else appends; a number taken
            // meanwhile (a run that lost its lock) is read again, never overwritten.
            for _ in 0..3 {
                let after = match *last {
                    Some(n) => n,
                    None => match self.scan(&self.migration).await?.pop() {
                        // A write retried after its answer was lost finds itself there.
                        Some((n, there)) if there == *entry => {
                            *last = Some(n);
                            return Ok(());
                        }
                        Some((n, _)) => n,
                        None => 0,
                    },
                };
                if self.put(after + 1, entry).await? {
                    *last = Some(after + 1);
                    return Ok(());
                }
                *last = None;
            }
            Err(Error::Backend(format!(
                "the shared journal of {} in DynamoDB table {} keeps changing under this run: is another run working on it without the lock?",
                self.migration, self.table
            )))
        })
    }

    fn entries(&self, migration: &str) -> Result<Vec<Entry>> {
        let found = self.runtime.block_on(self.scan(migration))?;
        if migration == self.migration {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *last = Some(found.last().map_or(0, |(n, _)| *n));
        }
        Ok(found.into_iter().map(|(_, entry)| entry).collect())
    }
}
