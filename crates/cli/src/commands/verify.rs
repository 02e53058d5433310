//! `tranche verify`: checks a proof of one record of the state against a
//! state root the caller trusts, or a service's proof that a transaction is
//! in a finalized block against a node the caller picks, without trusting
//! whoever made the proof.

use super::client::NodeUrl;
use super::print_json;
use crate::Ctx;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use tranche_api::node::{At, ProofView};
use tranche_api::report::{
    check_chain, reconcile, touching, SignedReconciliation, SignedReport, TransferKey,
};
use tranche_keystore::read_bounded;
use tranche_ledger::StateProof;
use tranche_types::Hash;

/// The largest file read: a proof is a few KiB, a reconciliation of a
/// report of 10,000 trades some MiB.
const PROOF_FILE_BYTES_MAX: u64 = 64 << 20;

/// `tranche verify` settings.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A proof written by `tranche query proof ...`, a custodian's proof
    /// of an instruction (`GET /instructions/{id}/proof`), an exchange's
    /// reports (`GET /reports`), or a regulator's reconciliation of one
    /// (`GET /reconciliations/{exchange}/{seq}/export`) (`-` for standard
    /// input).
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
    if let Ok(inclusion) = serde_json::from_slice::<tranche_custodian::Proof>(&bytes) {
        return included(ctx, &args, &inclusion);
    }
    if let Ok(reports) = serde_json::from_slice::<Vec<SignedReport>>(&bytes) {
        return reported(ctx, &args, &reports);
    }
    if let Ok(r) = serde_json::from_slice::<SignedReconciliation>(&bytes) {
        return reconciled(ctx, &args, &r);
    }
    let at: At<ProofView> = serde_json::from_slice(&bytes).map_err(|e| {
        super::Usage(format!(
            "{} is not a proof from `tranche query proof` or a custodian's instruction proof: {e}",
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

/// Checks that the node the caller picked has, in its finalized block at
/// the proof's height, the proof's transaction at its position with its
/// outcome, and the same block hash and state root.
fn included(ctx: &Ctx, args: &VerifyArgs, p: &tranche_custodian::Proof) -> Result<ExitCode> {
    let client = args.node.client()?;
    let block = client.found(&format!("block {}", p.height), |c| c.block(p.height))?;
    let at = usize::try_from(p.index).unwrap_or(usize::MAX);
    let tx = block.block.txs.get(at).map(|t| t.hash().to_hex());
    let outcome = block.receipts.get(at).map(|r| match &r.outcome {
        tranche_types::Outcome::Applied => "applied".to_string(),
        tranche_types::Outcome::Rejected(r) => r.code.name().to_string(),
    });
    let root = block.state_root.map(|r| r.to_hex());
    let mut wrong = Vec::new();
    if block.hash.to_hex() != p.block_hash {
        wrong.push(format!(
            "the block's hash is {}, not {}",
            block.hash, p.block_hash
        ));
    }
    if tx.as_deref() != Some(p.tx.as_str()) {
        wrong.push(format!(
            "the transaction at position {} is {}, not {}",
            p.index,
            tx.as_deref().unwrap_or("none"),
            p.tx
        ));
    }
    if outcome.as_deref() != Some(p.outcome.as_str()) {
        wrong.push(format!(
            "its outcome is {}, not {}",
            outcome.as_deref().unwrap_or("none"),
            p.outcome
        ));
    }
    if p.state_root.is_some() && root != p.state_root {
        wrong.push(format!(
            "the state root after the block is {}, not {}",
            root.as_deref().unwrap_or("none"),
            p.state_root.as_deref().unwrap_or("none")
        ));
    }
    if !wrong.is_empty() {
        return Err(anyhow!(
            "the proof does not hold against {}: {}",
            client.base,
            wrong.join("; ")
        ));
    }
    if ctx.json {
        print_json(&json!({
            "valid": true,
            "instruction": p.instruction,
            "tx": p.tx,
            "height": p.height,
            "index": p.index,
            "outcome": p.outcome,
            "node": client.base,
        }));
    } else {
        println!(
            "valid: transaction {} is number {} of block {} ({}) on {}, {}",
            p.tx, p.index, p.height, p.block_hash, client.base, p.outcome
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks an exchange's reports: one unbroken chain (numbers consecutive,
/// each hash its content's, each naming the one before; the first trusted
/// for what came before it), each signed by the key the chain the caller's
/// node follows records for the exchange.
fn reported(ctx: &Ctx, args: &VerifyArgs, reports: &[SignedReport]) -> Result<ExitCode> {
    let first = reports
        .first()
        .ok_or_else(|| super::Usage(format!("{} holds no reports", args.proof.display())))?;
    let exchange = first.report.exchange.clone();
    let client = args.node.client()?;
    let org = client
        .found(&format!("organisation {exchange}"), |c| {
            c.organisation(&exchange)
        })?
        .data;
    let chain_id = client.status()?.chain_id;
    let prev = Hash::from_hex(&first.report.prev)
        .map_err(|e| anyhow!("report {}'s prev is not a hash: {e}", first.report.seq))?;
    let after = (first.report.seq.saturating_sub(1), prev);
    if let Err(f) = check_chain(&exchange, after, reports) {
        return Err(anyhow!("report {} is {}: {}", f.seq, f.kind, f.detail));
    }
    for r in reports {
        let hash = Hash::from_hex(&r.hash)
            .map_err(|e| anyhow!("report {}'s hash does not read: {e}", r.report.seq))?;
        tranche_crypto::verify(
            &org.key,
            tranche_crypto::Domain::ExchangeReport,
            &chain_id,
            &hash.0,
            &r.signature,
        )
        .map_err(|_| {
            anyhow!(
                "report {} is not signed by {exchange}'s key on chain",
                r.report.seq
            )
        })?;
    }
    let last = reports.last().map_or(0, |r| r.report.seq);
    let trades: usize = reports.iter().map(|r| r.report.trades.len()).sum();
    let transfers: usize = reports.iter().map(|r| r.report.transfers.len()).sum();
    if ctx.json {
        print_json(&json!({
            "valid": true,
            "exchange": exchange,
            "from": first.report.seq,
            "to": last,
            "trades": trades,
            "transfers": transfers,
        }));
    } else {
        println!(
            "valid: reports {}..{last} of {exchange}, chained and signed by its key on chain; {trades} trades, {transfers} transfers",
            first.report.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks a regulator's reconciliation of an exchange's report against the
/// caller's node: the regulator's signature and the exchange's, by the
/// keys the chain records for them in their roles; every wallet's DID as
/// the chain binds it; the movements touching the exchange's wallets in the
/// blocks reconciled, read again from the node's blocks; and the
/// differences, computed again. What it cannot see from the blocks alone
/// is which wallets the exchange bound beyond those listed, and which
/// entries earlier reports held: those rest on the regulator's signature.
fn reconciled(ctx: &Ctx, args: &VerifyArgs, s: &SignedReconciliation) -> Result<ExitCode> {
    let r = &s.reconciliation;
    let client = args.node.client()?;
    let chain_id = client.status()?.chain_id;
    let key_of = |org: &str, role: tranche_types::Role| -> Result<tranche_types::PublicKey> {
        let o = client
            .found(&format!("organisation {org}"), |c| c.organisation(org))?
            .data;
        if !o.roles.contains(&role) {
            return Err(anyhow!("{org} does not hold the {role:?} role on chain"));
        }
        Ok(o.key)
    };
    let hash = r.hash();
    if hash.to_hex() != s.hash {
        return Err(anyhow!(
            "the reconciliation hashes to {}, not to the signed {}",
            hash.to_hex(),
            s.hash
        ));
    }
    tranche_crypto::verify(
        &key_of(&r.regulator, tranche_types::Role::Regulator)?,
        tranche_crypto::Domain::Reconciliation,
        &chain_id,
        &hash.0,
        &s.signature,
    )
    .map_err(|_| {
        anyhow!(
            "the reconciliation is not signed by {}'s key on chain",
            r.regulator
        )
    })?;
    let report = &r.report;
    if report.report.exchange != r.exchange || report.report.seq != r.seq {
        return Err(anyhow!(
            "the report inside is not report {} of {}",
            r.seq,
            r.exchange
        ));
    }
    if !report.hash_is_content() {
        return Err(anyhow!("the exchange's report inside was edited"));
    }
    let report_hash = Hash::from_hex(&report.hash)
        .map_err(|e| anyhow!("the report's hash does not read: {e}"))?;
    tranche_crypto::verify(
        &key_of(&r.exchange, tranche_types::Role::Exchange)?,
        tranche_crypto::Domain::ExchangeReport,
        &chain_id,
        &report_hash.0,
        &report.signature,
    )
    .map_err(|_| anyhow!("the report is not signed by {}'s key on chain", r.exchange))?;
    let mut wrong = Vec::new();
    for w in &r.wallets {
        let address: tranche_types::WalletAddress = w
            .wallet
            .parse()
            .map_err(|e| anyhow!("wallet {} does not read: {e}", w.wallet))?;
        let bound = client
            .call(|c| c.wallet(&address))?
            .data
            .did
            .map(|d| d.to_string());
        if bound != w.did {
            wrong.push(format!(
                "wallet {} is bound to {} on chain, not {}",
                w.wallet,
                bound.as_deref().unwrap_or("nobody"),
                w.did.as_deref().unwrap_or("nobody")
            ));
        }
    }
    let wallets: std::collections::HashMap<String, tranche_api::report::WalletBinding> = r
        .wallets
        .iter()
        .map(|w| (w.wallet.clone(), w.clone()))
        .collect();
    let mut on_chain = Vec::new();
    for height in r.after_height + 1..=r.through_height {
        let block = client.found(&format!("block {height}"), |c| c.block(height))?;
        on_chain.extend(touching(height, &block.transfers, &wallets));
    }
    if on_chain != r.on_chain {
        wrong.push(format!(
            "the node's blocks {}..={} move {} times touching the exchange's wallets; the reconciliation lists {}{}",
            r.after_height + 1,
            r.through_height,
            on_chain.len(),
            r.on_chain.len(),
            if on_chain.len() == r.on_chain.len() { ", not the same" } else { "" }
        ));
    }
    let before: std::collections::HashSet<&TransferKey> = r.reported_before.iter().collect();
    let again = reconcile(&on_chain, &report.report.transfers, |t| {
        before.contains(&TransferKey::of(t))
    });
    if again.mismatches != r.mismatches {
        wrong.push(format!(
            "the differences computed again are {}, the reconciliation lists {}",
            again.mismatches.len(),
            r.mismatches.len()
        ));
    }
    if !wrong.is_empty() {
        return Err(anyhow!(
            "the reconciliation does not hold against {}: {}",
            client.base,
            wrong.join("; ")
        ));
    }
    let kinds = |k: &str| r.mismatches.iter().filter(|m| m.kind == k).count();
    if ctx.json {
        print_json(&json!({
            "valid": true,
            "regulator": r.regulator,
            "exchange": r.exchange,
            "seq": r.seq,
            "after_height": r.after_height,
            "through_height": r.through_height,
            "on_chain": on_chain.len(),
            "reported": report.report.transfers.len(),
            "matched": again.matched.len(),
            "findings": r.mismatches.len(),
            "node": client.base,
        }));
    } else {
        println!(
            "valid: {}'s reconciliation of report {} of {}, blocks {}..={}: {} on chain, {} reported, {} matched; {} findings ({} missing, {} extra, {} altered, {} repeated), computed again from {}",
            r.regulator,
            r.seq,
            r.exchange,
            r.after_height + 1,
            r.through_height,
            on_chain.len(),
            report.report.transfers.len(),
            again.matched.len(),
            r.mismatches.len(),
            kinds("missing"),
            kinds("extra"),
            kinds("altered"),
            kinds("repeated"),
            client.base
        );
    }
    Ok(ExitCode::SUCCESS)
}
