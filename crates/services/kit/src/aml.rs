//! The AML policy in force (F6-1), as a service reads it for each request:
//! asked of the node once per block the follower applies (a policy takes
//! effect at a block height), not once per request.

use crate::error::ServiceError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tranche_api::client::NodeClient;
use tranche_api::node::AmlPolicyEntry;

/// The policy in force as of the block the follower last applied.
#[derive(Debug, Default)]
pub struct AmlInForce {
    /// The block the follower last applied (0: none yet, so nothing is
    /// kept and every read asks the node).
    followed: AtomicU64,
    /// The follower's block when the node was last asked, and its answer.
    kept: tokio::sync::Mutex<Option<(u64, Option<Arc<AmlPolicyEntry>>)>>,
}

impl AmlInForce {
    /// Notes that the follower applied block `height`: the next read asks
    /// the node again.
    pub fn followed(&self, height: u64) {
        self.followed.fetch_max(height, Ordering::AcqRel);
    }

    /// The version in force, if any: the node's answer since the follower's
    /// last block, or a fresh one (concurrent readers share one request).
    pub async fn get(
        &self,
        node: &NodeClient,
    ) -> Result<Option<Arc<AmlPolicyEntry>>, ServiceError> {
        let mut kept = self.kept.lock().await;
        let followed = self.followed.load(Ordering::Acquire);
        if let Some((at, entry)) = kept.as_ref() {
            if *at == followed && followed > 0 {
                return Ok(entry.clone());
            }
        }
        let entry = node
            .aml_policy()
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .in_force
            .map(Arc::new);
        *kept = Some((followed, entry.clone()));
        Ok(entry)
    }
}
