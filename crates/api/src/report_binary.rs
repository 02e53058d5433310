//! An exchange report's canonical bytes, over which its hash is taken,
//! and the signed report's binary form, which an exchange POSTs to the
//! regulator with `Content-Type: application/vnd.tranche.report`. The
//! regulator hashes the bytes as they arrive and keeps them as they are,
//! where a JSON report has to be parsed, encoded again to be hashed and
//! packed to be kept.
//!
//! Both are [`crate::packing`] forms. The report: [`REPORT_HEAD`], the
//! strings, then its fields in the order of [`ExchangeReport`]'s type,
//! each trade's and transfer's in the order of theirs (transaction hashes
//! and the previous report's hash as 32 bytes). The signed report:
//! [`SIGNED_REPORT_HEAD`], the 64-byte signature, then the report's
//! canonical bytes. Its hash is not sent: it is the bytes'.

use crate::packing::{PackError, Packer, Unpacker};
use crate::report::{ExchangeReport, ReportedTrade, ReportedTransfer, SignedReport};
use tranche_types::{Hash, Signature, Units};

/// The media type of a signed report's binary form.
pub const REPORT_MEDIA_TYPE: &str = "application/vnd.tranche.report";
/// How a report's canonical bytes begin.
pub const REPORT_HEAD: &[u8; 4] = b"TRR2";
/// How a signed report's binary form begins.
pub const SIGNED_REPORT_HEAD: &[u8; 4] = b"TRS2";
/// What a report's hash is taken over, before its canonical bytes.
pub const REPORT_HASH_DOMAIN_V2: &[u8] = b"tranche/exchange-report/v2";

/// Fewer bytes than any trade or transfer takes.
const ENTRY_BYTES_MIN: usize = 32;

impl ExchangeReport {
    /// The report's canonical bytes.
    pub fn canonical(&self) -> Vec<u8> {
        let mut p = Packer::new(64 * (self.trades.len() + self.transfers.len()) + 128);
        p.str(Some(&self.exchange));
        p.u64(self.seq);
        p.u64(self.from_ms);
        p.u64(self.to_ms);
        p.hash_text(&self.prev);
        p.u64(self.after_height);
        p.u64(self.through_height);
        pack_entries(&mut p, self);
        p.finish(REPORT_HEAD)
    }

    /// A report from its canonical bytes; anything else is an error.
    pub fn from_canonical(bytes: &[u8]) -> Result<ExchangeReport, PackError> {
        read(bytes, true).map(|(report, _)| report)
    }

    /// What the report says of itself, without its entries.
    pub fn head(&self) -> ReportHead {
        ReportHead {
            exchange: self.exchange.clone(),
            seq: self.seq,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            prev: self.prev.clone(),
            after_height: self.after_height,
            through_height: self.through_height,
            trades: self.trades.len(),
            transfers: self.transfers.len(),
        }
    }
}

/// A report without its entries: what a receiver records of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportHead {
    /// The exchange.
    pub exchange: String,
    /// The report's number.
    pub seq: u64,
    /// The period's start.
    pub from_ms: u64,
    /// The period's end.
    pub to_ms: u64,
    /// The previous report's hash.
    pub prev: String,
    /// The blocks it covers: after ...
    pub after_height: u64,
    /// ... through.
    pub through_height: u64,
    /// How many trades.
    pub trades: usize,
    /// How many transfers.
    pub transfers: usize,
}

/// The head of the report whose canonical bytes are `bytes`, every entry
/// checked (the bytes are a report's canonical bytes, or an error) but
/// none kept: a receiver that keeps the bytes needs no more.
pub fn read_head(bytes: &[u8]) -> Result<ReportHead, PackError> {
    read(bytes, false).map(|(_, head)| head)
}

/// Reads a report's canonical bytes; its entries only if `keep` (else
/// each is read, checked and dropped, and no string is copied).
fn read(bytes: &[u8], keep: bool) -> Result<(ExchangeReport, ReportHead), PackError> {
    let mut u = Unpacker::open(REPORT_HEAD, bytes)?;
    let exchange = u.str()?.to_string();
    let (seq, from_ms, to_ms) = (u.u64()?, u.u64()?, u.u64()?);
    let prev = u.hash_text()?;
    let (after_height, through_height) = (u.u64()?, u.u64()?);
    let Entries {
        trades,
        transfers,
        counted,
    } = read_entries(&mut u, keep)?;
    u.end()?;
    let head = ReportHead {
        exchange: exchange.clone(),
        seq,
        from_ms,
        to_ms,
        prev: prev.clone(),
        after_height,
        through_height,
        trades: counted.0,
        transfers: counted.1,
    };
    let report = ExchangeReport {
        exchange,
        seq,
        from_ms,
        to_ms,
        prev,
        after_height,
        through_height,
        trades,
        transfers,
    };
    Ok((report, head))
}

/// Writes `report`'s trades and transfers, each field in the order of its
/// type: the part of its canonical bytes after its head, which a receiver
/// that keeps reports packed writes the same way.
pub fn pack_entries<'a>(p: &mut Packer<'a>, report: &'a ExchangeReport) {
    p.u32(report.trades.len() as u32);
    for t in &report.trades {
        p.u64(t.trade);
        p.u64(t.matched_ms);
        p.str(Some(&t.token));
        p.str(Some(&t.quote));
        p.flag(t.quote_on_chain);
        p.u64(t.price);
        p.u64(t.quantity);
        p.u128(t.value.0);
        for s in [&t.buyer, &t.buyer_wallet, &t.seller, &t.seller_wallet] {
            p.str(Some(s));
        }
        p.u128(t.fee_buyer.0);
        p.u128(t.fee_seller.0);
        p.str(Some(&t.state));
        p.hash_text(&t.tx);
        p.u64(t.height);
    }
    p.u32(report.transfers.len() as u32);
    for t in &report.transfers {
        p.opt_u64(t.trade);
        p.str(Some(&t.kind));
        p.str(Some(&t.token));
        p.str(t.from_wallet.as_deref());
        p.str(t.from.as_deref());
        p.str(Some(&t.to_wallet));
        p.str(t.to.as_deref());
        p.u128(t.amount.0);
        p.hash_text(&t.tx);
        p.u64(t.height);
    }
}

/// Trades and transfers as [`pack_entries`] wrote them, and how many of
/// each; kept only if `keep` (else each is read, checked and dropped, and
/// no string is copied).
pub fn read_entries(u: &mut Unpacker<'_>, keep: bool) -> Result<Entries, PackError> {
    let text = |s: &str| if keep { s.to_string() } else { String::new() };
    let tx = |u: &mut Unpacker<'_>| {
        if keep {
            u.hash_text()
        } else {
            u.skip_hash_text().map(|()| String::new())
        }
    };
    let trade_count = u.count(ENTRY_BYTES_MIN)?;
    let mut trades = Vec::with_capacity(if keep { trade_count } else { 0 });
    for _ in 0..trade_count {
        let trade = ReportedTrade {
            trade: u.u64()?,
            matched_ms: u.u64()?,
            token: text(u.str()?),
            quote: text(u.str()?),
            quote_on_chain: u.flag()?,
            price: u.u64()?,
            quantity: u.u64()?,
            value: Units(u.u128()?),
            buyer: text(u.str()?),
            buyer_wallet: text(u.str()?),
            seller: text(u.str()?),
            seller_wallet: text(u.str()?),
            fee_buyer: Units(u.u128()?),
            fee_seller: Units(u.u128()?),
            state: text(u.str()?),
            tx: tx(u)?,
            height: u.u64()?,
        };
        if keep {
            trades.push(trade);
        }
    }
    let count = u.count(ENTRY_BYTES_MIN)?;
    let mut transfers = Vec::with_capacity(if keep { count } else { 0 });
    for _ in 0..count {
        let transfer = ReportedTransfer {
            trade: u.opt_u64()?,
            kind: text(u.str()?),
            token: text(u.str()?),
            from_wallet: u.opt_str()?.map(text),
            from: u.opt_str()?.map(text),
            to_wallet: text(u.str()?),
            to: u.opt_str()?.map(text),
            amount: Units(u.u128()?),
            tx: tx(u)?,
            height: u.u64()?,
        };
        if keep {
            transfers.push(transfer);
        }
    }
    Ok(Entries {
        trades,
        transfers,
        counted: (trade_count, count),
    })
}

/// A report's entries as [`read_entries`] read them.
#[derive(Debug)]
pub struct Entries {
    /// The trades, if kept.
    pub trades: Vec<ReportedTrade>,
    /// The transfers, if kept.
    pub transfers: Vec<ReportedTransfer>,
    /// How many trades and transfers there are.
    pub counted: (usize, usize),
}

/// The hash of a report whose canonical bytes are `canonical`.
pub fn hash_canonical(canonical: &[u8]) -> Hash {
    Hash::digest(REPORT_HASH_DOMAIN_V2, canonical)
}

impl SignedReport {
    /// The binary form of a report signed over its canonical bytes' hash
    /// (as [`ExchangeReport::hash`] gives).
    pub fn to_binary(&self) -> Vec<u8> {
        framed(&self.signature, &self.report.canonical())
    }

    /// The binary form if the stated hash is that of the report's
    /// canonical bytes; none for a report signed over its JSON (before),
    /// which only JSON carries. The report is encoded once.
    pub fn binary_if_hashed(&self) -> Option<Vec<u8>> {
        let canonical = self.report.canonical();
        (hash_canonical(&canonical).to_hex() == self.hash)
            .then(|| framed(&self.signature, &canonical))
    }

    /// A signed report from its binary form, its hash that of the
    /// report's bytes as they came. The signature is the caller's to check.
    pub fn from_binary(bytes: &[u8]) -> Result<SignedReport, PackError> {
        let (signature, canonical) = split_binary(bytes)?;
        Ok(SignedReport {
            report: ExchangeReport::from_canonical(canonical)?,
            hash: hash_canonical(canonical).to_hex(),
            signature,
        })
    }
}

/// The binary form of the report whose canonical bytes are `canonical`,
/// signed with `signature`.
fn framed(signature: &Signature, canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 64 + canonical.len());
    out.extend_from_slice(SIGNED_REPORT_HEAD);
    out.extend_from_slice(&signature.0);
    out.extend_from_slice(canonical);
    out
}

/// A signed report's binary form as its signature and its report's
/// canonical bytes (not read).
pub fn split_binary(bytes: &[u8]) -> Result<(Signature, &[u8]), PackError> {
    let rest = bytes
        .strip_prefix(SIGNED_REPORT_HEAD)
        .ok_or(PackError("not a signed report's binary form"))?;
    if rest.len() < 64 {
        return Err(PackError("cut short"));
    }
    let (signature, canonical) = rest.split_at(64);
    Ok((
        Signature(signature.try_into().expect("64 bytes")),
        canonical,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Report `seq` with `trades` trades and `transfers` transfers, of a
    /// few repeated names, with the odd spellings a report may carry.
    fn sample_report(seq: u64, trades: u64, transfers: u64) -> ExchangeReport {
        let trade = |i: u64| ReportedTrade {
            trade: i,
            matched_ms: 1_700_000_000_000 + i,
            token: "T-1".into(),
            quote: if i.is_multiple_of(2) { "USD" } else { "CASH-1" }.into(),
            quote_on_chain: i % 2 == 1,
            price: 1_000 + i,
            quantity: 3,
            value: Units(u128::from(3_000 + 3 * i)),
            buyer: format!("did:key:zBuyer{}", i % 3),
            buyer_wallet: format!("tr1buyer{}", i % 3),
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
            to_wallet: format!("tr1buyer{}", i % 3),
            to: Some("did:key:zBuyer".into()),
            amount: Units(u128::from(i) << 70),
            // An exchange's own spelling of a transaction is kept as sent.
            tx: match i {
                4 => "NOT-A-HASH".into(),
                5 => Hash([8; 32]).to_hex().to_uppercase(),
                _ => Hash([i as u8; 32]).to_hex(),
            },
            height: 40 + i,
        };
        ExchangeReport {
            exchange: "devnet-exchange".into(),
            seq,
            from_ms: 10,
            to_ms: 20,
            prev: Hash([9; 32]).to_hex(),
            after_height: 39,
            through_height: 60,
            trades: (0..trades).map(trade).collect(),
            transfers: (0..transfers).map(transfer).collect(),
        }
    }

    #[test]
    fn a_report_reads_back_from_its_bytes_and_hashes_them() {
        let report = sample_report(3, 10, 20);
        let bytes = report.canonical();
        let back = ExchangeReport::from_canonical(&bytes).unwrap();
        assert_eq!(back, report);
        assert_eq!(report.hash(), hash_canonical(&bytes));
        assert_eq!(read_head(&bytes).unwrap(), report.head());
        assert_eq!(read_head(&bytes).unwrap().transfers, 20);
        assert!(bytes.len() * 2 < serde_json::to_vec(&report).unwrap().len());
        let signed = SignedReport {
            hash: report.hash().to_hex(),
            report,
            signature: Signature([5; 64]),
        };
        assert_eq!(
            SignedReport::from_binary(&signed.to_binary()).unwrap(),
            signed
        );
        assert_eq!(signed.binary_if_hashed(), Some(signed.to_binary()));
        let before = SignedReport {
            hash: signed.report.json_hash().to_hex(),
            ..signed.clone()
        };
        assert_eq!(before.binary_if_hashed(), None);
        let empty = ExchangeReport {
            trades: vec![],
            transfers: vec![],
            ..signed.report.clone()
        };
        assert_eq!(
            ExchangeReport::from_canonical(&empty.canonical()).unwrap(),
            empty
        );
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let signed = SignedReport {
            hash: String::new(),
            report: sample_report(1, 4, 6),
            signature: Signature([1; 64]),
        };
        let bytes = signed.to_binary();
        for cut in 0..bytes.len() {
            assert!(
                SignedReport::from_binary(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SignedReport::from_binary(&longer).is_err());
        let mut other = bytes.clone();
        other[3] = b'9';
        assert!(SignedReport::from_binary(&other).is_err());
        // A report's JSON is not its binary form.
        let json = serde_json::to_vec(&signed).unwrap();
        assert!(SignedReport::from_binary(&json).is_err());
    }
}
