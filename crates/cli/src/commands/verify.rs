//! `tranche verify`: checks a proof of one record of the state against a
//! state root the caller trusts, without trusting the node that made it.

use super::client::NodeUrl;
use super::print_json;
use crate::Ctx;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use tranche_api::node::{At, ProofView};
use tranche_keystore::read_bounded;
use tranche_ledger::StateProof;
use tranche_types::Hash;

/// The largest proof file read; real ones are a few KiB.
const PROOF_FILE_BYTES_MAX: u64 = 1 << 20;

/// `tranche verify` settings.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A proof written by `tranche query proof ...` (`-` for standard input).
    pub proof: PathBuf,
    /// The state root you trust (hex). Without it, the root is read from
    /// your own node (--node): its finalized block at the proof's height.
    #[arg(long)]
    pub state_root: Option<Hash>,
    #[command(flatten)]
    pub node: NodeUrl,
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<ExitCode> {
    let bytes = read_bounded(&args.proof, PROOF_FILE_BYTES_MAX)?;
    let at: At<ProofView> = serde_json::from_slice(&bytes).map_err(|e| {
        super::Usage(format!(
            "{} is not a proof from `tranche query proof`: {e}",
            args.proof.display()
        ))
    })?;
    let view = at.data;
    let proof = StateProof {
        chain_id: view.chain_id,
        table: view.table,
        key: view.key,
        value: view.value,
        tree_root: view.tree_root,
        proof: serde_json::from_value(view.proof)
            .map_err(|e| super::Usage(format!("the proof's Merkle path does not read: {e}")))?,
    };
    let (trusted, source) = match args.state_root {
        Some(root) => (root, "given".to_string()),
        None => {
            let client = args.node.client()?;
            let block = client.found(&format!("block {}", at.height), |c| c.block(at.height))?;
            let root = block.state_root.ok_or_else(|| {
                anyhow!(
                    "the node {} has no state root for block {}",
                    client.base,
                    at.height
                )
            })?;
            (root, format!("of block {} from {}", at.height, client.base))
        }
    };
    proof
        .verify(&trusted)
        .map_err(|e| anyhow!("the proof does not hold: {e}"))?;
    let (key, value) = proof
        .describe()
        .context("the proven record does not read as a record of its table")?;
    if ctx.json {
        print_json(&json!({
            "valid": true,
            "table": proof.table,
            "key": key,
            "value": value,
            "height": at.height,
            "state_root": trusted,
        }));
    } else {
        match value {
            Some(v) => println!("valid: {} {key} = {v}", proof.table),
            None => println!("valid: {} {key} is absent", proof.table),
        }
        println!("against state root {trusted} ({source})");
    }
    Ok(ExitCode::SUCCESS)
}
