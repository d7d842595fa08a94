//! `warren unlock`: removes a migration's lock left by a run that is gone.

use super::lock_path;
use crate::cli::UnlockArgs;
use crate::config::Config;
use crate::error::Result;
use crate::lock;

pub fn run(args: &UnlockArgs) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let anchor = args.world.path.clone().unwrap_or_else(|| args.plan.clone());
    let table = args
        .lock_table
        .as_deref()
        .or(config.migration.lock_table.as_deref());
    let holder = match table.filter(|_| args.world.path.is_none()) {
        Some(table) => {
            let runtime = crate::backend::aws::runtime()?;
            let sdk =
                crate::backend::aws::load_config(&runtime, config.migration.region.as_deref())?;
            let client = crate::backend::aws::dynamodb(&sdk);
            crate::backend::aws::lock::unlock(
                &runtime,
                &client,
                table,
                &config.migration.name,
                &args.lock_id,
            )?
        }
        None => lock::unlock(&lock_path(&anchor, &config.migration.name), &args.lock_id)?,
    };
    eprintln!("Removed {holder}.");
    Ok(0)
}
