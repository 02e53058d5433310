//! `tranche tx`: build, sign offline and inspect transactions.

use super::{now, print_json};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tranche_crypto::{sign_transaction, verify_transaction, Domain, Keypair};
use tranche_keystore::password;
use tranche_keystore::{read_bounded, write_private_atomically, Keystore};
use tranche_ledger::Ledger;
use tranche_types::{
    Approval, BoundedVec, ChainId, Payload, PublicKey, Reference, SignedTransaction, Timestamp,
    TokenId, Transaction, Transfer, Units, WalletAddress, SETTLEMENT_LEGS_MAX, TX_BYTES_MAX,
};

/// The largest transaction file read (JSON is wordier than the binary form).
pub(crate) const TX_FILE_BYTES_MAX: u64 = 4 * TX_BYTES_MAX as u64;

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Write an unsigned transaction to a file, ready for `tranche tx sign`.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Sign an unsigned transaction file with a key, offline.
    ///
    /// Reads the unsigned transaction (JSON, as `tranche tx build` writes it),
    /// checks that its signer is the key's public key, asks for the key's
    /// password, and writes the signed transaction. No network is used, so this
    /// can run on an air-gapped machine that holds the key (cold storage).
    ///
    /// Example:
    ///   tranche tx sign transfer.json --key alice --out transfer.signed.json
    #[command(verbatim_doc_comment)]
    Sign {
        /// The unsigned transaction file ('-' reads standard input).
        file: PathBuf,
        #[command(flatten)]
        key: super::KeyArgs,
        /// Write the signed transaction here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output form: readable JSON, or the canonical bytes as hex or raw binary.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Add a wallet owner's approval to an unsigned settlement.
    ///
    /// Every wallet a settlement takes from must be its signer's or carry its
    /// owner's approval. Each owner runs this on the unsigned settlement (a
    /// settle payload, "approvals" left out), offline if they like; the
    /// signer then signs it with `tranche tx sign`. An approval covers the
    /// signer, its nonce and every leg.
    ///
    /// Example:
    ///   tranche tx build payload dvp.json --chain-id tranche-devnet --key alice --nonce 5 --out s.json
    ///   tranche tx approve s.json --key bob --out s.json
    ///   tranche tx sign s.json --key alice --out s.signed.json
    #[command(verbatim_doc_comment)]
    Approve(AddSignatureArgs),
    /// Decode a signed transaction, print it, and verify its signature.
    ///
    /// Reads JSON, hex or raw canonical bytes. Exits 0 only if the signature is
    /// valid for the transaction's chain, or for --chain-id when given.
    ///
    /// Example:
    ///   tranche tx inspect transfer.signed.json --chain-id tranche-devnet
    #[command(verbatim_doc_comment)]
    Inspect {
        /// The signed transaction file ('-' reads standard input).
        file: PathBuf,
        /// The chain it must be valid on; a transaction for any other chain fails.
        #[arg(long)]
        chain_id: Option<ChainId>,
    },
}

/// A signature added to an unsigned transaction before its signer signs it.
#[derive(Debug, Args)]
pub struct AddSignatureArgs {
    /// The unsigned transaction ('-' reads standard input).
    file: PathBuf,
    #[command(flatten)]
    key: super::KeyArgs,
    /// Write the transaction, still unsigned, here (default: standard output;
    /// the same file as the input is fine).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable JSON.
    Json,
    /// The canonical bytes, hex-encoded.
    Hex,
    /// The canonical bytes.
    Binary,
}

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// A transfer of security tokens from the signer's wallet (L-1, F6-7).
    ///
    /// Example:
    ///   tranche tx build transfer --chain-id tranche-devnet --key alice --nonce 1 \
    ///       --token SEOUL-TOWER-1 --to tr1... --amount 10 --out transfer.json
    #[command(verbatim_doc_comment)]
    Transfer {
        #[command(flatten)]
        common: CommonArgs,
        /// The token to move.
        #[arg(long)]
        token: TokenId,
        /// The beneficiary's wallet address (tr1...).
        #[arg(long)]
        to: WalletAddress,
        /// How many token units.
        #[arg(long)]
        amount: Units,
        /// An optional reference, e.g. an exchange trade id.
        #[arg(long)]
        reference: Option<Reference>,
    },
    /// Any ledger transaction, from its payload in JSON.
    ///
    /// The payload names its kind in "type" (transfer, govern, register_wallet,
    /// add_claim, revoke_claim, register_asset, record_appraisal,
    /// request_issuance, execute_issuance, withdraw_issuance,
    /// open_custodial_wallet,
    /// custodial_transfer, set_frozen, freeze_partial, set_paused,
    /// forced_transfer, recover_wallet, create_checkpoint,
    /// declare_distribution, record_payment, request_revocation,
    /// execute_revocation, issue_cash_token, mint_cash, settle,
    /// bond_validator, delegate, undelegate, anchor_audit, open_offering,
    /// subscribe, close_offering, issue_offering, release_proceeds,
    /// fund_distribution, claim_distribution, reclaim_distribution,
    /// record_ownership, redeem_cash, publish_aml_policy, set_token_rules,
    /// set_rule_checks, set_trusted_issuers, set_document, remove_document,
    /// approve_transfer, open_ballot, cast_vote, forced_moves, create_hold,
    /// execute_hold, release_hold, create_instruction, affirm_instruction,
    /// cancel_instruction, set_limit_exemption) and carries that kind's
    /// fields;
    /// unknown fields are refused. See docs/ARCHITECTURE.md for what each does.
    /// Amounts are decimal strings of whole units ("15"), never JSON numbers.
    ///
    /// Some payloads carry other parties' signatures, each made with its own
    /// command, offline if need be (REC-5):
    ///   register_wallet       the person's: `tranche did bind-wallet` writes the payload
    ///   open_custodial_wallet the holder's: `tranche did consent-custody` writes it
    ///   custodial_transfer    the holder's authorization: `tranche did authorize-transfer`
    ///                         writes the payload the custodian sends
    ///   settle                leave out "approvals"; each other wallet's owner
    ///                         adds theirs with `tranche tx approve`
    ///
    /// Example: with payload.json holding
    ///   {"type": "register_asset", "asset": "A-17", "owner": "did:key:z6Mk...",
    ///    "kind": "tangible", "description": "<64 hex digits>",
    ///    "price": {"minor": "10000000", "currency": {"code": "USD", "kind": "fiat", "decimals": 2}}}
    ///   tranche tx build payload payload.json --chain-id tranche-devnet --key acme-tsp --nonce 1
    #[command(verbatim_doc_comment)]
    Payload {
        /// The payload file ('-' reads standard input).
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// The envelope fields every transaction has.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The chain the transaction is for.
    #[arg(long, env = "TRANCHE_CHAIN_ID")]
    chain_id: ChainId,
    /// The signing key's name in the keystore (its public key becomes the signer).
    #[arg(long, conflicts_with = "signer", required_unless_present = "signer")]
    key: Option<String>,
    /// The signer's public key in hex, when the key is not in this keystore (e.g. it is offline).
    #[arg(long)]
    signer: Option<PublicKey>,
    /// The signer's next nonce: 1 for its first transaction, then one more each time.
    #[arg(long)]
    nonce: u64,
    /// The last moment the transaction may be included, e.g. 2026-12-01T00:00:00Z.
    #[arg(long, conflicts_with = "valid_for")]
    valid_until: Option<Timestamp>,
    /// How long from now the transaction stays valid: e.g. 30m, 12h, 7d.
    #[arg(long, default_value = "24h", value_parser = parse_duration_ms)]
    valid_for: u64,
    /// Write the unsigned transaction here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let err =
        || format!("{text:?} is not a duration: use a number and s, m, h or d, e.g. 90m or 7d");
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| err())?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(ms).ok_or_else(err)
}

pub fn run(ctx: &Ctx, cmd: TxCommand) -> Result<ExitCode> {
    match cmd {
        TxCommand::Build(BuildCommand::Transfer {
            common,
            token,
            to,
            amount,
            reference,
        }) => {
            if amount.is_zero() {
                super::usage!("--amount must be at least 1");
            }
            let payload = Payload::Transfer(Transfer {
                token,
                to,
                amount,
                reference,
            });
            build(ctx, common, payload)
        }
        TxCommand::Build(BuildCommand::Payload { file, common }) => {
            build(ctx, common, read_payload(&file)?)
        }
        TxCommand::Sign {
            file,
            key,
            out,
            format,
        } => sign(ctx, &file, &key, out.as_deref(), format),
        TxCommand::Approve(a) => approve(ctx, &a),
        TxCommand::Inspect { file, chain_id } => inspect(ctx, &file, chain_id.as_ref()),
    }
}

/// Reads a payload (JSON, as `tranche tx build payload --help` describes).
pub(crate) fn read_payload(file: &Path) -> Result<Payload> {
    let bytes = read_bounded(file, TX_FILE_BYTES_MAX)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        describe_json_error(
            file,
            &e,
            "a payload",
            "\"type\" and that kind's fields (see `tranche tx build payload --help`)",
        )
    })
}

fn build(ctx: &Ctx, common: CommonArgs, payload: Payload) -> Result<ExitCode> {
    let signer = match (&common.key, common.signer) {
        (Some(name), _) => Keystore::new(&ctx.home).load(name)?.1.public_key,
        (None, Some(pk)) => pk,
        (None, None) => super::usage!("give --key NAME or --signer PUBLIC_KEY"),
    };
    if common.nonce == 0 {
        super::usage!("--nonce starts at 1 for a signer's first transaction");
    }
    let valid_until = match common.valid_until {
        Some(t) => t,
        None => now().plus_ms(common.valid_for),
    };
    let tx = Transaction {
        chain_id: common.chain_id,
        signer,
        nonce: common.nonce,
        valid_until,
        payload,
    };
    let text = serde_json::to_string_pretty(&tx)? + "\n";
    match &common.out {
        Some(path) => {
            write_private_atomically(path, text.as_bytes())?;
            if ctx.json {
                print_json(
                    &serde_json::json!({ "file": path.display().to_string(), "hash": tx.hash() }),
                );
            } else {
                println!(
                    "wrote unsigned transaction {} to {}",
                    tx.hash(),
                    path.display()
                );
                println!(
                    "sign it with: tranche tx sign {} --key NAME",
                    path.display()
                );
            }
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_json_error(
    file: &Path,
    e: &serde_json::Error,
    what: &str,
    fields: &str,
) -> anyhow::Error {
    anyhow!(
        "{}: {e}; {what} is JSON with the fields {fields}",
        file.display()
    )
}

fn sign(
    ctx: &Ctx,
    file: &Path,
    key_args: &super::KeyArgs,
    out: Option<&Path>,
    format: Format,
) -> Result<ExitCode> {
    let tx = read_unsigned(file)?;
    let (key_path, key_file) = super::load_key_file(ctx, key_args)?;
    if key_file.public_key != tx.signer {
        bail!(
            "{} is to be signed by {} ({}), but key file {key_path} holds {} ({}); use the signer's key",
            file.display(),
            tx.signer.address(),
            tx.signer,
            key_file.address,
            key_file.public_key
        );
    }
    let pw = password::obtain(key_args.password_file.as_deref(), false)?;
    let key = key_file
        .open(pw.as_bytes())
        .with_context(|| format!("key file {key_path}"))?;
    let stx = sign_transaction(&key, tx)?;
    let encoded: Vec<u8> = match format {
        Format::Json => (serde_json::to_string_pretty(&stx)? + "\n").into_bytes(),
        Format::Hex => (hex::encode(stx.to_bytes()) + "\n").into_bytes(),
        Format::Binary => stx.to_bytes(),
    };
    match out {
        Some(path) => {
            write_private_atomically(path, &encoded)?;
            if ctx.json {
                print_json(
                    &serde_json::json!({ "file": path.display().to_string(), "hash": stx.hash() }),
                );
            } else {
                println!(
                    "signed transaction {} written to {}",
                    stx.hash(),
                    path.display()
                );
            }
        }
        None if format == Format::Binary => {
            bail!("binary output needs --out FILE; use --format hex for a terminal")
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&encoded)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads an unsigned transaction (JSON, as `tranche tx build` writes it).
fn read_unsigned(file: &Path) -> Result<Transaction> {
    let bytes = read_bounded(file, TX_FILE_BYTES_MAX)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        if serde_json::from_slice::<SignedTransaction>(&bytes).is_ok() {
            anyhow!(
                "{} is already signed; approvals go on before the signer \
                 signs; inspect it with `tranche tx inspect {}`",
                file.display(),
                file.display()
            )
        } else {
            describe_json_error(
                file,
                &e,
                "an unsigned transaction",
                "chain_id, signer, nonce, valid_until, payload (write one with `tranche tx build`)",
            )
        }
    })
}

/// Writes an unsigned transaction `tx` to `out` (or standard output).
fn write_unsigned(ctx: &Ctx, tx: &Transaction, out: Option<&Path>, done: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(tx)? + "\n";
    match out {
        Some(path) => {
            write_private_atomically(path, text.as_bytes())?;
            if ctx.json {
                print_json(
                    &serde_json::json!({ "file": path.display().to_string(), "hash": tx.hash() }),
                );
            } else {
                println!("{done}: {} written to {}", tx.hash(), path.display());
                println!(
                    "the signer signs it with: tranche tx sign {} --key NAME",
                    path.display()
                );
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Reads the unsigned transaction `a.file`, has `add` put a signature by
/// `a.key` into it (the key is opened only once `add` asks, after checking
/// the payload), and writes it to `a.out`.
fn add_signature(
    ctx: &Ctx,
    a: &AddSignatureArgs,
    done: &str,
    add: impl FnOnce(&mut Transaction, &dyn Fn() -> Result<Keypair>) -> Result<()>,
) -> Result<ExitCode> {
    let mut tx = read_unsigned(&a.file)?;
    add(&mut tx, &|| super::open_key(ctx, &a.key))?;
    write_unsigned(ctx, &tx, a.out.as_deref(), done)?;
    Ok(ExitCode::SUCCESS)
}

fn approve(ctx: &Ctx, a: &AddSignatureArgs) -> Result<ExitCode> {
    add_signature(ctx, a, "approved transaction", |tx, open_key| {
        let (signer, nonce, chain_id) = (tx.signer, tx.nonce, tx.chain_id.clone());
        let kind = kind_name(&tx.payload);
        let Payload::Settle(p) = &mut tx.payload else {
            bail!(
                "{} is a {kind} transaction; only a settle carries approvals",
                a.file.display()
            );
        };
        let key = open_key()?;
        let wallet = key.address();
        if wallet == signer.address() {
            bail!("{wallet} is the settlement's signer: its signature approves its own legs");
        }
        if !p.legs.iter().any(|l| l.from == wallet) {
            bail!("wallet {wallet} gives nothing in this settlement, so it has nothing to approve");
        }
        let digest = Ledger::settlement_digest(&signer, nonce, &p.legs);
        let approval = Approval {
            key: key.public_key(),
            signature: key.sign(Domain::Transaction, &chain_id, &digest),
        };
        // Approving again replaces this key's earlier approval.
        let mut approvals: Vec<Approval> = p
            .approvals
            .iter()
            .filter(|x| x.key != approval.key)
            .cloned()
            .collect();
        approvals.push(approval);
        p.approvals = BoundedVec::new(approvals)
            .map_err(|_| anyhow!("a settlement carries at most {SETTLEMENT_LEGS_MAX} approvals"))?;
        Ok(())
    })
}

/// Decodes a signed transaction from JSON, hex or raw canonical bytes.
pub(crate) fn decode_signed(file: &Path, bytes: &[u8]) -> Result<SignedTransaction> {
    let trimmed = bytes.trim_ascii();
    if trimmed.first() == Some(&b'{') {
        return serde_json::from_slice(trimmed).map_err(|e| {
            describe_json_error(file, &e, "a signed transaction", "tx and signature")
        });
    }
    let is_hex = !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit);
    let raw = if is_hex {
        hex::decode(trimmed)
            .with_context(|| format!("{}: odd number of hex digits", file.display()))?
    } else {
        bytes.to_vec()
    };
    SignedTransaction::from_bytes(&raw).with_context(|| {
        format!(
            "{} is not a signed transaction in JSON, hex or canonical binary",
            file.display()
        )
    })
}

#[derive(Debug, Serialize)]
struct Inspection<'a> {
    hash: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    checked_chain_id: String,
    signer_address: String,
    transaction: &'a SignedTransaction,
    encoded_hex: String,
}

/// The payload's kind as its JSON "type" names it, e.g. `settle`.
fn kind_name(p: &Payload) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v["type"].as_str().map(String::from))
        .unwrap_or_else(|| format!("kind {}", p.tag()))
}

fn describe_payload(p: &Payload) -> String {
    match p {
        Payload::Transfer(t) => {
            let mut s = format!("transfer {} of {} to {}", t.amount, t.token, t.to);
            if let Some(r) = &t.reference {
                s.push_str(&format!(" (reference {r})"));
            }
            s
        }
        // Every other kind reads well enough as its JSON form.
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("kind {}", other.tag())),
    }
}

fn inspect(ctx: &Ctx, file: &Path, chain_id: Option<&ChainId>) -> Result<ExitCode> {
    let bytes = read_bounded(file, TX_FILE_BYTES_MAX)?;
    let stx = decode_signed(file, &bytes)?;
    let chain = chain_id.cloned().unwrap_or_else(|| stx.tx.chain_id.clone());
    let verdict = verify_transaction(&stx, &chain);
    let report = Inspection {
        hash: stx.hash().to_hex(),
        valid: verdict.is_ok(),
        error: verdict.as_ref().err().map(ToString::to_string),
        checked_chain_id: chain.to_string(),
        signer_address: stx.tx.signer_address().to_string(),
        transaction: &stx,
        encoded_hex: hex::encode(stx.to_bytes()),
    };
    if ctx.json {
        print_json(&report);
    } else {
        let tx = &stx.tx;
        println!("transaction  {}", report.hash);
        println!("chain        {}", tx.chain_id);
        println!(
            "signer       {} (public key {})",
            report.signer_address, tx.signer
        );
        println!("nonce        {}", tx.nonce);
        println!("valid until  {}", tx.valid_until);
        println!("payload      {}", describe_payload(&tx.payload));
        println!("signature    {}", stx.signature);
        match &report.error {
            None => println!("verified     yes: signed by its signer for chain {chain}"),
            Some(e) => println!("verified     NO: {e}"),
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
