//! How the regulator keeps what it reconciles: packed, not JSON. A
//! block's movements and a report's entries repeat the same few strings
//! (the token, the exchange's wallets, their DIDs, the kind), so each
//! distinct string is kept once, in a table before the rest, and named by
//! its number (u32, `u32::MAX` for none); integers are little-endian.
//! Reading it back is a copy, where JSON is a parse; it is a third to a
//! half of the JSON's size.
//!
//! - **A block's movements touching one exchange's wallets** (a row of
//!   `rg_blocks`, in its `packed` bytes; rows written before hold hex or
//!   JSON in `moves`):
//!   version `1`, the strings, the number of movements (u32), each:
//!   transaction hash (32 bytes), index in the block (u32), then token,
//!   originator's wallet, originator, beneficiary's wallet, beneficiary and
//!   kind (strings), then the amount (u128). Rows kept as JSON before stay
//!   readable.
//! - **A report as received** (the vault's records of it): [`REPORT_MAGIC`],
//!   the strings, then the signed report field by field in the order of its
//!   type (a transaction hash as 32 bytes when it is one, else a string).
//!   It is the report the exchange signed, encoded again: its JSON, hence
//!   its hash, is the same, which intake checked before keeping it.

use tranche_api::packing::{PackError, Packer, Unpacker};
use tranche_api::report::{ChainTransfer, ExchangeReport, SignedReport};
use tranche_api::report_binary::{pack_entries, read_entries};
use tranche_service::ServiceError;
use tranche_types::{Hash, Signature, Units};

const MOVES_VERSION: u8 = 1;
/// How a packed report begins (JSON begins with `{`, zstd with `0x28`).
pub(crate) const REPORT_MAGIC: &[u8; 4] = b"TRP1";
/// The bytes of one movement, after the strings.
const MOVE_BYTES: usize = 32 + 4 + 6 * 4 + 16;

fn corrupt(what: &'static str) -> impl Fn(PackError) -> ServiceError {
    move |e| ServiceError::internal(what, e)
}

/// One movement as the follower keeps it, borrowing its strings.
#[derive(Debug)]
pub(crate) struct Kept<'a> {
    pub tx: Hash,
    pub index: u32,
    pub token: &'a str,
    pub from_wallet: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to_wallet: &'a str,
    pub to: Option<&'a str>,
    pub amount: Units,
    pub kind: &'a str,
}

/// Packs the movements of one block.
pub(crate) fn pack_moves<'a>(moves: &[Kept<'a>]) -> Vec<u8> {
    let mut p = Packer::new(4 + moves.len() * MOVE_BYTES);
    p.u32(moves.len() as u32);
    for m in moves {
        p.bytes(&m.tx.0);
        p.u32(m.index);
        for s in [
            Some(m.token),
            m.from_wallet,
            m.from,
            Some(m.to_wallet),
            m.to,
            Some(m.kind),
        ] {
            p.str(s);
        }
        p.u128(m.amount.0);
    }
    p.finish(&[MOVES_VERSION])
}

/// The movements of a row kept at `height`: its packed bytes, or (written
/// before) its text, packed as hex or JSON.
pub(crate) fn unpack_moves(
    height: u64,
    packed: Option<&[u8]>,
    text: &str,
) -> Result<Vec<ChainTransfer>, ServiceError> {
    const WHAT: &str = "a block's kept movements";
    if let Some(bytes) = packed {
        return read_moves(height, bytes).map_err(corrupt(WHAT));
    }
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| ServiceError::internal(WHAT, e));
    }
    let bytes = const_hex::decode(text).map_err(|_| corrupt(WHAT)(PackError("not hex")))?;
    read_moves(height, &bytes).map_err(corrupt(WHAT))
}

fn read_moves(height: u64, bytes: &[u8]) -> Result<Vec<ChainTransfer>, PackError> {
    let mut u = Unpacker::open(&[MOVES_VERSION], bytes)?;
    let count = u.u32()? as usize;
    if count.checked_mul(MOVE_BYTES) != Some(u.remaining()) {
        return Err(PackError("a length that is not its movements'"));
    }
    let text = |s: &str| s.to_string();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        // Read in the order written (the fields below are not).
        let tx = Hash(u.array()?).to_hex();
        let index = u.u32()?;
        let (token, from_wallet, from) = (u.str()?, u.opt_str()?, u.opt_str()?);
        let (to_wallet, to, kind) = (u.str()?, u.opt_str()?, u.str()?);
        out.push(ChainTransfer {
            height,
            tx,
            index,
            token: text(token),
            from_wallet: from_wallet.map(text),
            from: from.map(text),
            to_wallet: text(to_wallet),
            to: to.map(text),
            amount: Units(u.u128()?),
            kind: text(kind),
        });
    }
    u.end()?;
    Ok(out)
}

/// Packs a signed report for the vault, as a report that came as JSON is
/// kept (its hash may be one over its JSON, which its binary form cannot
/// carry).
pub(crate) fn pack_report(r: &SignedReport) -> Vec<u8> {
    let report = &r.report;
    let mut p = Packer::new(64 * (report.trades.len() + report.transfers.len()) + 256);
    p.str(Some(&r.hash));
    p.bytes(&r.signature.0);
    p.str(Some(&report.exchange));
    p.u64(report.seq);
    p.u64(report.from_ms);
    p.u64(report.to_ms);
    p.str(Some(&report.prev));
    p.u64(report.after_height);
    p.u64(report.through_height);
    pack_entries(&mut p, report);
    p.finish(REPORT_MAGIC)
}

/// A signed report from its packed form.
pub(crate) fn unpack_report(bytes: &[u8]) -> Result<SignedReport, ServiceError> {
    read_report(bytes).map_err(corrupt("a stored report"))
}

fn read_report(bytes: &[u8]) -> Result<SignedReport, PackError> {
    let mut u = Unpacker::open(REPORT_MAGIC, bytes)?;
    let text = |s: &str| s.to_string();
    let hash = text(u.str()?);
    let signature = Signature(u.array()?);
    let exchange = text(u.str()?);
    let (seq, from_ms, to_ms) = (u.u64()?, u.u64()?, u.u64()?);
    let prev = text(u.str()?);
    let (after_height, through_height) = (u.u64()?, u.u64()?);
    let entries = read_entries(&mut u, true)?;
    let (trades, transfers) = (entries.trades, entries.transfers);
    u.end()?;
    Ok(SignedReport {
        report: ExchangeReport {
            exchange,
            seq,
            from_ms,
            to_ms,
            prev,
            after_height,
            through_height,
            trades,
            transfers,
        },
        hash,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranche_api::report::{ReportedTrade, ReportedTransfer};

    fn sample(n: u32) -> ChainTransfer {
        ChainTransfer {
            height: 7,
            tx: Hash([n as u8; 32]).to_hex(),
            index: n,
            token: "T-1".into(),
            from_wallet: n.is_multiple_of(2).then(|| format!("tr1from{}", n % 3)),
            from: n.is_multiple_of(4).then(|| "did:key:zA".into()),
            to_wallet: format!("tr1to{}", n % 5),
            to: Some("did:key:zB".into()),
            amount: Units(u128::from(n) * 1_000_000_000_000_000_000_000),
            kind: "holder".into(),
        }
    }

    fn packed(moves: &[ChainTransfer]) -> Vec<u8> {
        let kept: Vec<Kept<'_>> = moves
            .iter()
            .map(|m| Kept {
                tx: Hash::from_hex(&m.tx).unwrap(),
                index: m.index,
                token: &m.token,
                from_wallet: m.from_wallet.as_deref(),
                from: m.from.as_deref(),
                to_wallet: &m.to_wallet,
                to: m.to.as_deref(),
                amount: m.amount,
                kind: &m.kind,
            })
            .collect();
        pack_moves(&kept)
    }

    #[test]
    fn packed_movements_read_back_as_written() {
        let moves: Vec<ChainTransfer> = (0..50).map(sample).collect();
        let row = packed(&moves);
        assert_eq!(unpack_moves(7, Some(&row), "").unwrap(), moves);
        assert_eq!(unpack_moves(7, Some(&pack_moves(&[])), "").unwrap(), vec![]);
        // Smaller than JSON: the repeated strings are kept once.
        assert!(row.len() < serde_json::to_string(&moves).unwrap().len());
    }

    #[test]
    fn rows_kept_as_hex_or_json_still_read() {
        let moves: Vec<ChainTransfer> = (0..3).map(sample).collect();
        let json = serde_json::to_string(&moves).unwrap();
        assert_eq!(unpack_moves(7, None, &json).unwrap(), moves);
        let hex = const_hex::encode(packed(&moves));
        assert_eq!(unpack_moves(7, None, &hex).unwrap(), moves);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let row = packed(&(0..5).map(sample).collect::<Vec<_>>());
        for cut in [0, 1, 2, 10, row.len() / 2, row.len() - 2] {
            assert!(
                unpack_moves(7, Some(&row[..cut]), "").is_err(),
                "cut at {cut}"
            );
        }
        assert!(unpack_moves(7, None, "zz").is_err());
        assert!(unpack_moves(7, None, "02").is_err());
        assert!(unpack_moves(7, Some(&[2]), "").is_err());
        // A string number past the table.
        let mut bytes = row.clone();
        let at = bytes.len() - 16 - 4;
        bytes[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(unpack_moves(7, Some(&bytes), "").is_err());
        // A huge string count in a few bytes.
        let mut huge = vec![MOVES_VERSION];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack_moves(7, Some(&huge), "").is_err());
    }

    fn report() -> SignedReport {
        let trade = |i: u64| ReportedTrade {
            trade: i,
            matched_ms: 1_700_000_000_000 + i,
            token: "T-1".into(),
            quote: "USD".into(),
            quote_on_chain: i.is_multiple_of(2),
            price: 1_000 + i,
            quantity: 3,
            value: Units(u128::from(3_000 + 3 * i)),
            buyer: "did:key:zBuyer".into(),
            buyer_wallet: "tr1buyer".into(),
            seller: "did:key:zSeller".into(),
            seller_wallet: "tr1seller".into(),
            fee_buyer: Units(1),
            fee_seller: Units(u128::MAX),
            state: "settled".into(),
            tx: Hash([i as u8; 32]).to_hex(),
            height: 40 + i,
        };
        let transfer = |i: u64| ReportedTransfer {
            trade: (!i.is_multiple_of(3)).then_some(i),
            kind: "settlement".into(),
            token: "T-\u{e9}".into(),
            from_wallet: (!i.is_multiple_of(4)).then(|| "tr1seller".into()),
            from: (!i.is_multiple_of(5)).then(|| "did:key:zSeller".into()),
            to_wallet: "tr1buyer".into(),
            to: Some("did:key:zBuyer".into()),
            amount: Units(u128::from(i)),
            // An exchange's own spelling of a transaction is kept as sent.
            tx: if i == 7 {
                "NOT-A-HASH".into()
            } else if i == 8 {
                Hash([8; 32]).to_hex().to_uppercase()
            } else {
                Hash([i as u8; 32]).to_hex()
            },
            height: 40 + i,
        };
        let report = ExchangeReport {
            exchange: "devnet-exchange".into(),
            seq: 3,
            from_ms: 10,
            to_ms: 20,
            prev: Hash([9; 32]).to_hex(),
            after_height: 39,
            through_height: 60,
            trades: (0..10).map(trade).collect(),
            transfers: (0..20).map(transfer).collect(),
        };
        SignedReport {
            hash: report.hash().to_hex(),
            report,
            signature: Signature([5; 64]),
        }
    }

    #[test]
    fn a_packed_report_is_the_report_signed_and_hashes_the_same() {
        let r = report();
        let bytes = pack_report(&r);
        let back = unpack_report(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.report.hash().to_hex(), r.hash);
        assert!(bytes.len() < serde_json::to_vec(&r).unwrap().len());
        let empty = SignedReport {
            report: ExchangeReport {
                trades: vec![],
                transfers: vec![],
                ..r.report.clone()
            },
            ..r.clone()
        };
        assert_eq!(unpack_report(&pack_report(&empty)).unwrap(), empty);
    }

    #[test]
    fn a_damaged_packed_report_is_an_error_not_a_panic() {
        let bytes = pack_report(&report());
        for cut in [0, 3, 4, 8, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(unpack_report(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(unpack_report(&longer).is_err());
        let mut other = bytes.clone();
        other[3] = b'9';
        assert!(unpack_report(&other).is_err());
    }
}
