//! An exchange's reports to the AML regulator (F6-6, F6-8): per period, the
//! trades it matched (its trade ledger) and the transfers their settlement
//! made on chain, with the identities (DIDs) of both sides. Each report is
//! numbered, names the hash of the one before it, and is signed by the
//! exchange's on-chain key in the `exchange-report` domain, so a missing,
//! repeated or edited report shows.

use serde::{Deserialize, Serialize};
use tranche_types::{Hash, Signature, Units};
use utoipa::ToSchema;

/// What the hash of a report signed before its canonical bytes existed
/// was taken over, before the report's JSON (see [`ExchangeReport::json_hash`]).
pub const REPORT_HASH_DOMAIN_V1: &[u8] = b"tranche/exchange-report/v1";

/// One trade of the exchange's trade ledger (F6-5, F6-6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportedTrade {
    /// The exchange's id of the trade.
    pub trade: u64,
    /// When it matched, ms since 1970.
    pub matched_ms: u64,
    /// The security token.
    pub token: String,
    /// What it was paid in: a currency code kept at the exchange, or a
    /// token on chain.
    pub quote: String,
    /// Whether the payment moved on chain (a token) or at the exchange.
    pub quote_on_chain: bool,
    /// Quote minor units per token.
    pub price: u64,
    /// Tokens.
    pub quantity: u64,
    /// Price × quantity.
    #[schema(value_type = String)]
    pub value: Units,
    /// The buyer's DID.
    pub buyer: String,
    /// The buyer's wallet.
    pub buyer_wallet: String,
    /// The seller's DID.
    pub seller: String,
    /// The seller's wallet.
    pub seller_wallet: String,
    /// Fees, in the quote.
    #[schema(value_type = String)]
    pub fee_buyer: Units,
    /// Fees, in the quote.
    #[schema(value_type = String)]
    pub fee_seller: Units,
    /// `settled` or `failed` (the chain refused the settlement).
    pub state: String,
    /// The settlement transaction.
    pub tx: String,
    /// The block that decided it.
    pub height: u64,
}

/// One movement of units on chain touching the exchange's wallets, with
/// both sides' identities (F6-8): a settlement leg of a trade, a deposit,
/// a withdrawal, a redemption. What the regulator finds again on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportedTransfer {
    /// The trade it settled, for a settlement leg.
    pub trade: Option<u64>,
    /// How it moved: `settlement`, `holder`, `issuance`, `revocation`, ...
    pub kind: String,
    /// The token moved.
    pub token: String,
    /// The originator's wallet (none for issuance and minting).
    pub from_wallet: Option<String>,
    /// The originator's DID, if the wallet is bound to one.
    pub from: Option<String>,
    /// The beneficiary's wallet.
    pub to_wallet: String,
    /// The beneficiary's DID, if the wallet is bound to one.
    pub to: Option<String>,
    /// Units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The transaction.
    pub tx: String,
    /// Its block.
    pub height: u64,
}

/// One period's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExchangeReport {
    /// The exchange's organisation id.
    pub exchange: String,
    /// The report's number, from 1, with no gaps.
    pub seq: u64,
    /// The period's start, ms since 1970 (the previous report's end).
    pub from_ms: u64,
    /// The period's end (excluded).
    pub to_ms: u64,
    /// The hash of report `seq - 1` (hex; zeros for the first).
    pub prev: String,
    /// The blocks it covers: after this height (the previous report's
    /// `through_height`; 0 for the first) ...
    pub after_height: u64,
    /// ... through this one. Every trade the chain decided in these blocks
    /// is in this report, and every transfer the settlements made, so the
    /// regulator reconciles it against exactly these blocks.
    pub through_height: u64,
    /// The trades the chain decided in the blocks covered.
    pub trades: Vec<ReportedTrade>,
    /// Every movement of units touching the exchange's wallets in those
    /// blocks: the settled trades' legs, deposits, withdrawals.
    pub transfers: Vec<ReportedTransfer>,
}

impl ExchangeReport {
    /// The report's hash: SHA-256 over
    /// [`crate::report_binary::REPORT_HASH_DOMAIN_V2`] and its canonical
    /// bytes, what an exchange signs.
    pub fn hash(&self) -> Hash {
        crate::report_binary::hash_canonical(&self.canonical())
    }

    /// The hash reports were signed over before: SHA-256 over
    /// [`REPORT_HASH_DOMAIN_V1`] and the report's JSON. Such reports stay
    /// valid, kept and re-checked as signed.
    pub fn json_hash(&self) -> Hash {
        hash_json(REPORT_HASH_DOMAIN_V1, self)
    }
}

/// SHA-256 over `domain` and `value`'s JSON, hashed as it is written
/// (through a buffer: the JSON writer's pieces are a few bytes each), so a
/// report of hundreds of megabytes is never held whole.
fn hash_json(domain: &[u8], value: &impl Serialize) -> Hash {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, Hash::digester(domain));
    serde_json::to_writer(&mut out, value).expect("a report or reconciliation serializes");
    out.into_inner()
        .expect("a digester takes every write")
        .finish()
}

/// A report with its hash and the exchange's signature over the hash
/// (ed25519, domain `exchange-report`, the chain's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedReport {
    /// The report.
    pub report: ExchangeReport,
    /// Its hash, hex.
    pub hash: String,
    /// The signature, hex.
    #[schema(value_type = String)]
    pub signature: Signature,
}

impl SignedReport {
    /// Whether the report's stated hash is its content's, as hashed now
    /// or (reports signed before) over its JSON.
    pub fn hash_is_content(&self) -> bool {
        self.hash == self.report.hash().to_hex() || self.hash == self.report.json_hash().to_hex()
    }
}

/// What is wrong with a run of reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportFinding {
    /// The report concerned.
    pub seq: u64,
    /// `missing` (a number skipped), `repeated`, `edited` (its hash is not
    /// its content's, or the next one names another), `wrong_exchange`.
    pub kind: String,
    /// What was found.
    pub detail: String,
}

/// Checks that `reports` (in order) are one unbroken chain from `after`
/// (the number and hash of the last report already checked; `(0, zeros)`
/// from the start) of `exchange`: numbers consecutive, each hash its
/// content's, each naming the one before. Signatures are the caller's to
/// check, against the exchange's key on chain.
pub fn check_chain(
    exchange: &str,
    after: (u64, Hash),
    reports: &[SignedReport],
) -> Result<(), ReportFinding> {
    let (mut seq, mut prev) = after;
    for r in reports {
        let found = |kind: &str, detail: String| ReportFinding {
            seq: r.report.seq,
            kind: kind.into(),
            detail,
        };
        if r.report.exchange != exchange {
            return Err(found(
                "wrong_exchange",
                format!("report of {}, not of {exchange}", r.report.exchange),
            ));
        }
        if r.report.seq <= seq {
            return Err(found(
                "repeated",
                format!("report {} follows report {seq}", r.report.seq),
            ));
        }
        if r.report.seq != seq + 1 {
            return Err(found(
                "missing",
                format!("reports {} to {} are missing", seq + 1, r.report.seq - 1),
            ));
        }
        let hash = match Hash::from_hex(&r.hash) {
            Ok(h) if r.hash_is_content() => h,
            _ => {
                return Err(found(
                    "edited",
                    format!(
                        "its content hashes to {}, not {}",
                        r.report.hash().to_hex(),
                        r.hash
                    ),
                ))
            }
        };
        if r.report.through_height < r.report.after_height {
            return Err(found(
                "edited",
                format!(
                    "it covers blocks after {} through {}",
                    r.report.after_height, r.report.through_height
                ),
            ));
        }
        if r.report.prev != prev.to_hex() {
            return Err(found(
                "edited",
                format!(
                    "it names {} as the report before it, which hashes to {}",
                    r.report.prev,
                    prev.to_hex()
                ),
            ));
        }
        seq = r.report.seq;
        prev = hash;
    }
    Ok(())
}

/// A movement of units on chain touching an exchange's wallets, as the
/// regulator reads it from the finalized blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainTransfer {
    /// The block.
    pub height: u64,
    /// The transaction, hex.
    pub tx: String,
    /// Its place among the block's movements.
    pub index: u32,
    /// The token.
    pub token: String,
    /// The originator's wallet (none for issuance and minting).
    pub from_wallet: Option<String>,
    /// The originator's DID, as the chain binds the wallet.
    pub from: Option<String>,
    /// The beneficiary's wallet.
    pub to_wallet: String,
    /// The beneficiary's DID.
    pub to: Option<String>,
    /// Units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// How it moved: `settlement`, `holder`, `issuance`, ...
    pub kind: String,
}

/// One difference between a report and the chain (F6-9, REC-2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mismatch {
    /// `missing` (on chain, in no report), `extra` (reported, not on
    /// chain), `altered` (both, but not the same token, wallets, DIDs,
    /// amount or block), `repeated` (reported twice, or in a block an
    /// earlier report covered).
    pub kind: String,
    /// What differs, in words.
    pub detail: String,
    /// The transfer on chain, if there is one.
    pub chain: Option<ChainTransfer>,
    /// The report's entry, if there is one.
    pub reported: Option<ReportedTransfer>,
}

impl Mismatch {
    /// What the mismatch is about, stable across reruns: the transaction
    /// and the leg's token and wallets.
    pub fn subject(&self) -> String {
        match (&self.chain, &self.reported) {
            (Some(c), _) => format!("{}/{}", c.tx, c.index),
            (None, Some(r)) => format!(
                "{}/{}/{}/{}/{}",
                r.tx,
                r.token,
                r.from_wallet.as_deref().unwrap_or("-"),
                r.to_wallet,
                r.amount
            ),
            (None, None) => String::new(),
        }
    }
}

/// What [`reconcile`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// The chain transfers a report entry matched (indexes into `chain`).
    pub matched: Vec<usize>,
    /// Every difference.
    pub mismatches: Vec<Mismatch>,
}

/// Reconciles an exchange's reported transfers against the transfers on
/// chain touching its wallets in the same blocks (F6-9). A report entry
/// matches the chain transfer of the same transaction, token and wallets;
/// it must also have the same amount, block and DIDs. `reported_before`
/// says whether an entry is on chain in a block an earlier report covered. Pure: the
/// service and `tranche verify reconciliation` run the same code.
pub fn reconcile(
    chain: &[ChainTransfer],
    reported: &[ReportedTransfer],
    reported_before: impl Fn(&ReportedTransfer) -> bool,
) -> Reconciled {
    // The chain's transfers by transaction: the first of each in `first`,
    // the next of the same transaction in `next` (a transaction moves few
    // legs; one hash per transaction and no allocation per transfer). The
    // keys are the chain's transaction hashes, hashed with foldhash (seeded
    // per process) rather than SipHash, which cost more than the
    // comparisons.
    const END: usize = usize::MAX;
    let mut first: foldhash::HashMap<&str, usize> =
        foldhash::HashMap::with_capacity_and_hasher(chain.len(), Default::default());
    let mut next = vec![END; chain.len()];
    for (i, c) in chain.iter().enumerate().rev() {
        if let Some(after) = first.insert(c.tx.as_str(), i) {
            next[i] = after;
        }
    }
    let next = &next;
    let legs = |tx: &str| {
        let mut at = first.get(tx).copied().unwrap_or(END);
        std::iter::from_fn(move || {
            (at != END).then(|| {
                let i = at;
                at = next[i];
                i
            })
        })
    };
    let same_leg = |c: &ChainTransfer, r: &ReportedTransfer| {
        c.token == r.token
            && c.from_wallet.as_deref().unwrap_or("") == r.from_wallet.as_deref().unwrap_or("")
            && c.to_wallet == r.to_wallet
    };
    let mut used = vec![false; chain.len()];
    let mut out = Reconciled::default();
    for r in reported {
        let found = legs(&r.tx).find(|i| !used[*i] && same_leg(&chain[*i], r));
        let Some(i) = found else {
            let from = r.from_wallet.as_deref().unwrap_or("(issued)");
            let (kind, detail) = if legs(&r.tx).any(|i| same_leg(&chain[i], r)) {
                (
                    "repeated",
                    format!(
                        "{} {} from {from} to {} in {} is reported twice",
                        r.amount, r.token, r.to_wallet, r.tx
                    ),
                )
            } else if reported_before(r) {
                (
                    "repeated",
                    format!(
                        "{} {} from {from} to {} in {} is in a block an earlier report covered",
                        r.amount, r.token, r.to_wallet, r.tx
                    ),
                )
            } else if first.contains_key(r.tx.as_str()) {
                (
                    "altered",
                    format!(
                        "transaction {} moved no {} from {from} to {}",
                        r.tx, r.token, r.to_wallet
                    ),
                )
            } else {
                (
                    "extra",
                    format!(
                        "{} {} from {from} to {} in {} is in no block the report covers",
                        r.amount, r.token, r.to_wallet, r.tx
                    ),
                )
            };
            out.mismatches.push(Mismatch {
                kind: kind.into(),
                detail,
                chain: None,
                reported: Some(r.clone()),
            });
            continue;
        };
        used[i] = true;
        out.matched.push(i);
        let c = &chain[i];
        let mut differs = Vec::new();
        if c.amount != r.amount {
            differs.push(format!(
                "amount {} on chain, {} reported",
                c.amount, r.amount
            ));
        }
        if c.height != r.height {
            differs.push(format!(
                "block {} on chain, {} reported",
                c.height, r.height
            ));
        }
        if c.from != r.from {
            differs.push(format!(
                "originator {} on chain, {} reported",
                c.from.as_deref().unwrap_or("none"),
                r.from.as_deref().unwrap_or("none")
            ));
        }
        if c.to != r.to {
            differs.push(format!(
                "beneficiary {} on chain, {} reported",
                c.to.as_deref().unwrap_or("none"),
                r.to.as_deref().unwrap_or("none")
            ));
        }
        if !differs.is_empty() {
            out.mismatches.push(Mismatch {
                kind: "altered".into(),
                detail: differs.join("; "),
                chain: Some(c.clone()),
                reported: Some(r.clone()),
            });
        }
    }
    for (i, c) in chain.iter().enumerate() {
        if !used[i] {
            out.mismatches.push(Mismatch {
                kind: "missing".into(),
                detail: format!(
                    "{} {} from {} to {} in block {} is in no report",
                    c.amount,
                    c.token,
                    c.from_wallet.as_deref().unwrap_or("(issued)"),
                    c.to_wallet,
                    c.height
                ),
                chain: Some(c.clone()),
                reported: None,
            });
        }
    }
    out
}

/// What the hash of a reconciliation export is taken over, before its JSON.
pub const RECONCILIATION_HASH_DOMAIN: &[u8] = b"tranche/reconciliation/v1";

/// A wallet in a reconciliation, with the DID the chain binds it to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletBinding {
    /// The wallet.
    pub wallet: String,
    /// Its DID, if bound.
    pub did: Option<String>,
    /// Whether the exchange bound it (one of its traders' wallets).
    pub exchange: bool,
}

/// A reported transfer's identity: transaction, token and wallets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct TransferKey {
    /// The transaction, hex.
    pub tx: String,
    /// The token.
    pub token: String,
    /// The originator's wallet (empty for issuance and minting).
    pub from_wallet: String,
    /// The beneficiary's wallet.
    pub to_wallet: String,
}

impl TransferKey {
    /// The key of a reported transfer.
    pub fn of(r: &ReportedTransfer) -> TransferKey {
        TransferKey {
            tx: r.tx.clone(),
            token: r.token.clone(),
            from_wallet: r.from_wallet.clone().unwrap_or_default(),
            to_wallet: r.to_wallet.clone(),
        }
    }
}

/// One report's reconciliation, exported for anyone with a node to check
/// (REC-9): the exchange's signed report, the movements on chain touching
/// the exchange's wallets in the blocks reconciled, and what differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reconciliation {
    /// The regulator's organisation.
    pub regulator: String,
    /// The exchange.
    pub exchange: String,
    /// The report's number.
    pub seq: u64,
    /// The blocks reconciled: after this height ...
    pub after_height: u64,
    /// ... through this one.
    pub through_height: u64,
    /// Every wallet in the movements and the report, with its DID.
    pub wallets: Vec<WalletBinding>,
    /// The movements on chain touching the exchange's wallets, in order.
    pub on_chain: Vec<ChainTransfer>,
    /// The exchange's report, as signed.
    pub report: SignedReport,
    /// Report entries on chain in blocks an earlier report covered.
    pub reported_before: Vec<TransferKey>,
    /// What differs ([`reconcile`]'s answer).
    pub mismatches: Vec<Mismatch>,
    /// Each token traded: issued and revoked, as the chain said.
    #[schema(value_type = Object)]
    pub supply: serde_json::Value,
}

impl Reconciliation {
    /// Its hash: SHA-256 over [`RECONCILIATION_HASH_DOMAIN`] and its JSON.
    pub fn hash(&self) -> Hash {
        hash_json(RECONCILIATION_HASH_DOMAIN, self)
    }
}

/// A reconciliation with its hash and the regulator's signature over the
/// hash (domain `reconciliation`, the chain's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedReconciliation {
    /// The reconciliation.
    pub reconciliation: Reconciliation,
    /// Its hash, hex.
    pub hash: String,
    /// The signature, hex.
    #[schema(value_type = String)]
    pub signature: Signature,
}

/// The movements in `transfers` (one block's, in order) touching a wallet
/// of `wallets` that the exchange bound, as [`ChainTransfer`]s with the
/// DIDs `wallets` gives.
pub fn touching(
    height: u64,
    transfers: &[tranche_types::TransferRecord],
    wallets: &std::collections::HashMap<String, WalletBinding>,
) -> Vec<ChainTransfer> {
    let mut out = Vec::new();
    for (index, t) in transfers.iter().enumerate() {
        let from = t.from.map(|w| w.to_string());
        let to = t.to.to_string();
        let of = |w: &str| wallets.get(w);
        let ours = from.as_deref().and_then(of).is_some_and(|b| b.exchange)
            || of(&to).is_some_and(|b| b.exchange);
        if !ours {
            continue;
        }
        out.push(ChainTransfer {
            height,
            tx: t.tx.to_hex(),
            index: index as u32,
            token: t.token.to_string(),
            from: from.as_deref().and_then(of).and_then(|b| b.did.clone()),
            from_wallet: from,
            to: of(&to).and_then(|b| b.did.clone()),
            to_wallet: to,
            amount: t.amount,
            kind: kind_name(t.kind),
        });
    }
    out
}

/// How a movement moved, as reports and reconciliations name it.
pub fn kind_name(kind: tranche_types::TransferKind) -> String {
    format!("{kind:?}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` reports in a chain; the odd ones hashed as reports were before.
    fn chain(n: u64) -> Vec<SignedReport> {
        let mut prev = Hash([0; 32]);
        (1..=n)
            .map(|seq| {
                let report = ExchangeReport {
                    exchange: "x".into(),
                    seq,
                    from_ms: seq * 10,
                    to_ms: seq * 10 + 10,
                    prev: prev.to_hex(),
                    after_height: seq - 1,
                    through_height: seq,
                    trades: Vec::new(),
                    transfers: Vec::new(),
                };
                prev = if !seq.is_multiple_of(2) {
                    report.json_hash()
                } else {
                    report.hash()
                };
                SignedReport {
                    hash: prev.to_hex(),
                    report,
                    signature: Signature([0; 64]),
                }
            })
            .collect()
    }

    #[test]
    fn a_report_signed_before_hashes_as_its_json_whole() {
        // Large enough that the hash is taken over many buffers' worth.
        let mut report = chain(1).remove(0).report;
        report.transfers = (0..2_000)
            .map(|i| ReportedTransfer {
                trade: Some(i),
                kind: "settlement".into(),
                token: "T-\"quoted\"".into(),
                from_wallet: Some(format!("tr1from{i}")),
                from: None,
                to_wallet: format!("tr1to{i}"),
                to: Some("did:key:z\u{e9}".into()),
                amount: Units(u128::from(i)),
                tx: format!("{i:064x}"),
                height: i,
            })
            .collect();
        let json = serde_json::to_vec(&report).unwrap();
        assert!(json.len() > 4 << 16);
        assert_eq!(
            report.json_hash(),
            Hash::digest(REPORT_HASH_DOMAIN_V1, &json)
        );
        assert_ne!(report.hash(), report.json_hash());
    }

    #[test]
    fn f6_6_a_gap_a_repeat_or_an_edit_is_a_finding() {
        let start = (0, Hash([0; 32]));
        let reports = chain(4);
        assert_eq!(check_chain("x", start, &reports), Ok(()));
        let kind = |r: &[SignedReport]| check_chain("x", start, r).unwrap_err().kind;
        let mut gap = reports.clone();
        gap.remove(1);
        assert_eq!(kind(&gap), "missing");
        let mut repeat = reports.clone();
        repeat.insert(2, reports[1].clone());
        assert_eq!(kind(&repeat), "repeated");
        let mut edited = reports.clone();
        edited[2].report.to_ms += 1;
        assert_eq!(kind(&edited), "edited");
        // Edited and hashed again: the next report names the old hash.
        edited[2].hash = edited[2].report.hash().to_hex();
        assert_eq!(kind(&edited), "edited");
        assert_eq!(
            check_chain("y", start, &reports).unwrap_err().kind,
            "wrong_exchange"
        );
        // From where a reader left off.
        let after = (2, Hash::from_hex(&reports[1].hash).unwrap());
        assert_eq!(check_chain("x", after, &reports[2..]), Ok(()));
    }

    fn on_chain(tx: &str, amount: u128) -> ChainTransfer {
        ChainTransfer {
            height: 7,
            tx: tx.into(),
            index: 0,
            token: "T".into(),
            from_wallet: Some("wa".into()),
            from: Some("did:a".into()),
            to_wallet: "wb".into(),
            to: Some("did:b".into()),
            amount: Units(amount),
            kind: "settlement".into(),
        }
    }

    fn entry(tx: &str, amount: u128) -> ReportedTransfer {
        ReportedTransfer {
            trade: Some(1),
            kind: "settlement".into(),
            token: "T".into(),
            from_wallet: Some("wa".into()),
            from: Some("did:a".into()),
            to_wallet: "wb".into(),
            to: Some("did:b".into()),
            amount: Units(amount),
            tx: tx.into(),
            height: 7,
        }
    }

    #[test]
    fn f6_9_each_difference_between_a_report_and_the_chain_is_a_mismatch() {
        let chain = vec![on_chain("t1", 5), on_chain("t2", 6), on_chain("t3", 7)];
        let never = |_: &ReportedTransfer| false;
        // Clean.
        let all = vec![entry("t1", 5), entry("t2", 6), entry("t3", 7)];
        let r = reconcile(&chain, &all, never);
        assert_eq!((r.matched.len(), r.mismatches.len()), (3, 0));
        let kinds =
            |r: Reconciled| -> Vec<String> { r.mismatches.into_iter().map(|m| m.kind).collect() };
        // An entry dropped: the chain's transfer is missing from the report.
        assert_eq!(kinds(reconcile(&chain, &all[..2], never)), ["missing"]);
        // An amount altered.
        let mut altered = all.clone();
        altered[1].amount = Units(60);
        let r = reconcile(&chain, &altered, never);
        assert_eq!(r.mismatches[0].kind, "altered");
        assert!(r.mismatches[0]
            .detail
            .contains("amount 6 on chain, 60 reported"));
        // A DID altered.
        let mut other = all.clone();
        other[0].to = Some("did:x".into());
        assert_eq!(kinds(reconcile(&chain, &other, never)), ["altered"]);
        // A transfer that is not on chain.
        let mut extra = all.clone();
        extra.push(entry("t9", 1));
        assert_eq!(kinds(reconcile(&chain, &extra, never)), ["extra"]);
        // One reported again that an earlier report had.
        let before = |r: &ReportedTransfer| r.tx == "t0";
        let mut again = all.clone();
        again.push(entry("t0", 1));
        assert_eq!(kinds(reconcile(&chain, &again, before)), ["repeated"]);
        // Reported twice in one report: the second finds no transfer left.
        let mut twice = all.clone();
        twice.push(entry("t1", 5));
        assert_eq!(kinds(reconcile(&chain, &twice, never)), ["repeated"]);
    }

    #[test]
    fn f6_9_the_legs_of_one_transaction_are_matched_leg_by_leg() {
        // A delivery-versus-payment: the token one way, the cash the other,
        // and the same leg twice (two equal lots in one settlement).
        let mut cash = on_chain("dvp", 50);
        cash.token = "CASH".into();
        (cash.from_wallet, cash.to_wallet) = (Some("wb".into()), "wa".into());
        (cash.from, cash.to) = (Some("did:b".into()), Some("did:a".into()));
        let chain = vec![on_chain("dvp", 5), cash.clone(), on_chain("dvp", 5)];
        let never = |_: &ReportedTransfer| false;
        let mut paid = entry("dvp", 50);
        paid.token = "CASH".into();
        (paid.from_wallet, paid.to_wallet) = (Some("wb".into()), "wa".into());
        (paid.from, paid.to) = (Some("did:b".into()), Some("did:a".into()));
        // In any order: each leg finds its own.
        let all = vec![paid.clone(), entry("dvp", 5), entry("dvp", 5)];
        let r = reconcile(&chain, &all, never);
        assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
        assert_eq!(r.matched, [1, 0, 2]);
        let kinds =
            |r: Reconciled| -> Vec<String> { r.mismatches.into_iter().map(|m| m.kind).collect() };
        // One lot reported once: the other is missing.
        assert_eq!(kinds(reconcile(&chain, &all[..2], never)), ["missing"]);
        // A third lot: reported twice.
        let mut thrice = all.clone();
        thrice.push(entry("dvp", 5));
        assert_eq!(kinds(reconcile(&chain, &thrice, never)), ["repeated"]);
        // A leg the transaction did not move (the cash to someone else).
        let mut elsewhere = all.clone();
        elsewhere[0].to_wallet = "wz".into();
        assert_eq!(
            kinds(reconcile(&chain, &elsewhere, never)),
            ["altered", "missing"]
        );
    }
}
