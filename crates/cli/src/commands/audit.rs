//! `tranche audit verify`: checks a role service's exported audit log
//! (`GET /audit/export`) against the chain: the records chain without a gap
//! or a change, every anchor the export names is a finalized `AnchorAudit`
//! by the organisation's key naming that head, and the chain's latest anchor
//! is covered by the export, so no anchored entry was removed (REC-9).

use super::client::NodeUrl;
use super::print_json;
use crate::Ctx;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use tranche_keystore::read_bounded;
use tranche_service::audit::{check_chain, Export};
use tranche_types::{Hash, Outcome, Payload};

/// The largest export read.
const EXPORT_BYTES_MAX: u64 = 1 << 30;

/// `tranche audit` commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an exported audit log against the chain.
    ///
    /// Example:
    ///   curl -H "Authorization: Bearer $TOKEN" https://issuer.example/audit/export > audit.json
    ///   tranche audit verify audit.json --node http://127.0.0.1:27102
    ///
    /// Exit 0: the log holds together and covers everything the chain anchored.
    /// Exit 1: it does not, and the message says where.
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
}

/// `tranche audit verify` settings.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export (`-` for standard input).
    pub export: PathBuf,
    #[command(flatten)]
    pub node: NodeUrl,
}

pub fn run(ctx: &Ctx, command: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Verify(args) = command;
    let bytes = read_bounded(&args.export, EXPORT_BYTES_MAX)?;
    let export: Export = serde_json::from_slice(&bytes).map_err(|e| {
        super::Usage(format!(
            "{} is not an audit export (GET /audit/export): {e}",
            args.export.display()
        ))
    })?;
    check_chain(&export).map_err(|e| anyhow!("the audit log does not hold together: {e}"))?;
    let client = args.node.client()?;
    let org = client.found(&format!("organisation {}", export.org), |c| {
        c.organisation(&export.org)
    })?;
    for anchor in &export.anchors {
        let hash = Hash::from_hex(&anchor.tx_hash).map_err(|e| {
            anyhow!(
                "anchor at {} entries: bad transaction hash: {e}",
                anchor.entries
            )
        })?;
        let Some(record) = client.call(|c| c.transaction(&hash))? else {
            // Recorded by the service, not (yet) final on chain: it proves nothing.
            continue;
        };
        let block = client.found(&format!("block {}", record.height), |c| {
            c.block(record.height)
        })?;
        let stx = block.block.txs.get(record.index as usize).ok_or_else(|| {
            anyhow!(
                "block {} has no transaction {}",
                record.height,
                record.index
            )
        })?;
        let anchored = match &stx.tx.payload {
            Payload::AnchorAudit(a) => a,
            _ => bail!("transaction {hash} is not an audit anchor"),
        };
        if stx.tx.signer != org.data.key {
            bail!("the anchor {hash} is not signed by {}'s key", export.org);
        }
        if anchored.entries != anchor.entries || anchored.head.to_hex() != anchor.head {
            bail!(
                "the chain's anchor {hash} names {} entries with head {}, the export {} with {}",
                anchored.entries,
                anchored.head,
                anchor.entries,
                anchor.head
            );
        }
        if !matches!(record.receipt.outcome, Outcome::Applied) {
            bail!(
                "the anchor {hash} was rejected by the chain: {:?}",
                record.receipt.outcome
            );
        }
    }
    let latest = org.data.audit_anchor;
    if let Some(a) = &latest {
        let held = usize::try_from(a.entries)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| export.records.get(i));
        match held {
            Some(r) if r.hash == a.head.to_hex() => {}
            Some(_) => bail!(
                "the chain anchored {} entries of {}'s log with head {}; the export's entry {} differs: the log was rewritten",
                a.entries, export.org, a.head, a.entries
            ),
            None => bail!(
                "the chain anchored {} entries of {}'s log; the export holds only {}: entries were removed",
                a.entries,
                export.org,
                export.records.len()
            ),
        }
    }
    let anchored = latest.as_ref().map_or(0, |a| a.entries);
    let entries = export.records.len() as u64;
    if ctx.json {
        print_json(&json!({
            "valid": true,
            "org": export.org,
            "entries": entries,
            "anchored_entries": anchored,
            "anchored_at_height": latest.as_ref().map(|a| a.height),
        }));
    } else {
        println!(
            "valid: {} entries of {}'s audit log chain together",
            entries, export.org
        );
        match &latest {
            Some(a) => println!(
                "the chain anchored the first {} at block {}; {} since are not anchored yet",
                a.entries,
                a.height,
                entries.saturating_sub(a.entries)
            ),
            None => println!("the chain holds no anchor of this log yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
