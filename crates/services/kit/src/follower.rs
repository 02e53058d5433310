//! Follows the chain: each finalized block, in order, is applied to the
//! service's database in one transaction with the cursor, so after a crash
//! no block is applied twice or skipped.

use crate::error::ServiceError;
use crate::outbox::Outbox;
use crate::Db;
use sqlx::AnyConnection;
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;

/// What a role does with a finalized block, in the follower's transaction.
pub trait Apply: Send + Sync + 'static {
    /// Applies `block`'s effects through `conn`; an error rolls the block
    /// back and the follower tries it again.
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>>;

    /// Called once `block`'s transaction has committed: the place to wake
    /// whoever reads what [`Apply::apply`] wrote (a wake from inside the
    /// transaction would find nothing yet).
    fn committed(&self, _block: &BlockRecord) {}
}

/// The last block applied (0 before the first).
pub async fn cursor(conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT height FROM kit_cursor WHERE name = 'chain'")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map_or(0, |(h,)| h as u64))
}

/// Applies `block`, which must be the one after the cursor: the role's
/// effects, the outbox's finality, and the cursor, in one transaction.
/// Returns false (and changes nothing) if the block is not the next one.
pub async fn apply_next(
    db: &Db,
    role: &dyn Apply,
    outbox: &Outbox,
    block: &BlockRecord,
) -> Result<bool, ServiceError> {
    apply_run(db, role, outbox, std::slice::from_ref(block)).await
}

/// Applies `blocks`, consecutive heights of which the first must be the one
/// after the cursor, as [`apply_next`] applies one, all in one transaction:
/// the cursor moves to the last, or (on an error) nothing changes.
/// Returns false (and changes nothing) if the first is not the next one.
pub async fn apply_run(
    db: &Db,
    role: &dyn Apply,
    outbox: &Outbox,
    blocks: &[BlockRecord],
) -> Result<bool, ServiceError> {
    let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
        return Ok(true);
    };
    let mut w = db.write().await?;
    let at = cursor(&mut w.tx).await?;
    if first.height != at + 1 {
        return Ok(false);
    }
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(
            block.height,
            first.height + i as u64,
            "a run of consecutive blocks"
        );
        role.apply(&mut w.tx, block).await?;
        outbox.finalized(&mut w.tx, block).await?;
    }
    sqlx::query(
        "INSERT INTO kit_cursor (name, height) VALUES ('chain', $1)
         ON CONFLICT (name) DO UPDATE SET height = excluded.height",
    )
    .bind(last.height as i64)
    .execute(&mut *w.tx)
    .await?;
    w.commit().await?;
    for block in blocks {
        role.committed(block);
    }
    Ok(true)
}
