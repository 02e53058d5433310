//! An exchange's reports to the AML regulator (F6-6, F6-8): per period, the
//! trades it matched (its trade ledger) and the transfers their settlement
//! made on chain, with the identities (DIDs) of both sides. Each report is
//! numbered, names the hash of the one before it, and is signed by the
//! exchange's on-chain key in the `exchange-report` domain, so a missing,
//! repeated or edited report shows.

use serde::{Deserialize, Serialize};
use tranche_types::{Hash, Signature, Units};
use utoipa::ToSchema;

/// What the hash of a report is taken over, before the report's JSON.
pub const REPORT_HASH_DOMAIN: &[u8] = b"tranche/exchange-report/v1";

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

/// One transfer a settlement made on chain, with both sides' identities
/// (F6-8): what the regulator finds again on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportedTransfer {
    /// The trade it settled.
    pub trade: u64,
    /// The token moved.
    pub token: String,
    /// The originator's wallet.
    pub from_wallet: String,
    /// The originator's DID.
    pub from: String,
    /// The beneficiary's wallet.
    pub to_wallet: String,
    /// The beneficiary's DID.
    pub to: String,
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
    /// The trades the chain decided in the period.
    pub trades: Vec<ReportedTrade>,
    /// The transfers the settled ones made.
    pub transfers: Vec<ReportedTransfer>,
}

impl ExchangeReport {
    /// The report's hash: SHA-256 over [`REPORT_HASH_DOMAIN`] and its JSON.
    pub fn hash(&self) -> Hash {
        let json = serde_json::to_vec(self).expect("a report serializes");
        Hash::digest(REPORT_HASH_DOMAIN, &json)
    }
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
        let hash = r.report.hash();
        if hash.to_hex() != r.hash {
            return Err(found(
                "edited",
                format!("its content hashes to {}, not {}", hash.to_hex(), r.hash),
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
                prev = report.hash();
                SignedReport {
                    hash: prev.to_hex(),
                    report,
                    signature: Signature([0; 64]),
                }
            })
            .collect()
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
}
