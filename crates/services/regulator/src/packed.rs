//! How the regulator keeps what it reconciles: packed, not JSON. A
//! block's movements and a report's entries repeat the same few strings
//! (the token, the exchange's wallets, their DIDs, the kind), so each
//! distinct string is kept once, in a table before the rest, and named by
//! its number (u32, `u32::MAX` for none); integers are little-endian.
//! Reading it back is a copy, where JSON is a parse; it is a third to a
//! half of the JSON's size.
//!
//! - **A block's movements touching one exchange's wallets** (a row of
//!   `rg_blocks`, hex in its text column, as the database keeps bytes):
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

use std::collections::HashMap;
use tranche_api::report::{
    ChainTransfer, ExchangeReport, ReportedTrade, ReportedTransfer, SignedReport,
};
use tranche_service::ServiceError;
use tranche_types::{Hash, Signature, Units};

const MOVES_VERSION: u8 = 1;
/// How a packed report begins (JSON begins with `{`, zstd with `0x28`).
pub(crate) const REPORT_MAGIC: &[u8; 4] = b"TRP1";
const NONE: u32 = u32::MAX;
/// The bytes of one movement, after the strings.
const MOVE_BYTES: usize = 32 + 4 + 6 * 4 + 16;

fn corrupt(what: &'static str, why: &str) -> ServiceError {
    ServiceError::internal(what, why.to_string())
}

/// Writes a packed form: strings numbered as they first come.
struct Packer<'a> {
    strings: Vec<&'a str>,
    numbers: HashMap<&'a str, u32>,
    body: Vec<u8>,
}

impl<'a> Packer<'a> {
    fn new(capacity: usize) -> Packer<'a> {
        Packer {
            strings: Vec::new(),
            numbers: HashMap::new(),
            body: Vec::with_capacity(capacity),
        }
    }

    fn str(&mut self, s: Option<&'a str>) {
        let n = match s {
            None => NONE,
            Some(s) => *self.numbers.entry(s).or_insert_with(|| {
                self.strings.push(s);
                (self.strings.len() - 1) as u32
            }),
        };
        self.u32(n);
    }

    fn u32(&mut self, n: u32) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    fn opt_u64(&mut self, n: Option<u64>) {
        self.body.push(u8::from(n.is_some()));
        self.u64(n.unwrap_or(0));
    }

    fn u128(&mut self, n: u128) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    /// A transaction's hash: its 32 bytes if it is lower-case hex of
    /// them (as every report the exchange makes has), else the string.
    fn tx(&mut self, tx: &'a str) {
        match Hash::from_hex(tx) {
            Ok(h) if h.to_hex() == tx => {
                self.body.push(0);
                self.body.extend_from_slice(&h.0);
            }
            _ => {
                self.body.push(1);
                self.str(Some(tx));
            }
        }
    }

    fn finish(self, head: &[u8]) -> Vec<u8> {
        let table: usize = self.strings.iter().map(|s| 4 + s.len()).sum();
        let mut out = Vec::with_capacity(head.len() + 4 + table + self.body.len());
        out.extend_from_slice(head);
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        for s in &self.strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads a packed form back, bounded: a damaged one is an error.
struct Unpacker<'a> {
    what: &'static str,
    strings: Vec<&'a str>,
    rest: &'a [u8],
}

impl<'a> Unpacker<'a> {
    /// Reads the string table of `bytes`, which begin with `head`.
    fn open(what: &'static str, head: &[u8], bytes: &'a [u8]) -> Result<Self, ServiceError> {
        let mut u = Unpacker {
            what,
            strings: Vec::new(),
            rest: bytes,
        };
        if u.take(head.len())? != head {
            return Err(corrupt(what, "an unknown version"));
        }
        let count = u.u32()? as usize;
        // Each string takes at least its length's four bytes.
        if count > u.rest.len() / 4 {
            return Err(corrupt(what, "more strings than bytes"));
        }
        u.strings.reserve(count);
        for _ in 0..count {
            let len = u.u32()? as usize;
            let s = std::str::from_utf8(u.take(len)?).map_err(|_| corrupt(what, "not UTF-8"))?;
            u.strings.push(s);
        }
        Ok(u)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ServiceError> {
        if self.rest.len() < n {
            return Err(corrupt(self.what, "cut short"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ServiceError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    fn u8(&mut self) -> Result<u8, ServiceError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ServiceError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ServiceError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, ServiceError> {
        let some = self.flag()?;
        let n = self.u64()?;
        Ok(some.then_some(n))
    }

    fn u128(&mut self) -> Result<u128, ServiceError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool, ServiceError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt(self.what, "a flag neither 0 nor 1")),
        }
    }

    fn opt_str(&mut self) -> Result<Option<String>, ServiceError> {
        let n = self.u32()?;
        if n == NONE {
            return Ok(None);
        }
        self.strings
            .get(n as usize)
            .map(|s| Some((*s).to_string()))
            .ok_or_else(|| corrupt(self.what, "a string's number out of range"))
    }

    fn str(&mut self) -> Result<String, ServiceError> {
        self.opt_str()?
            .ok_or_else(|| corrupt(self.what, "a required string missing"))
    }

    fn tx(&mut self) -> Result<String, ServiceError> {
        if self.flag()? {
            self.str()
        } else {
            Ok(Hash(self.array()?).to_hex())
        }
    }

    /// A count of items each at least `min` bytes long.
    fn count(&mut self, min: usize) -> Result<usize, ServiceError> {
        let n = self.u32()? as usize;
        if n > self.rest.len() / min {
            return Err(corrupt(self.what, "more items than bytes"));
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), ServiceError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what, "bytes after the end"))
        }
    }
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

/// Packs the movements of one block, as hex for the text column.
pub(crate) fn pack_moves<'a>(moves: &[Kept<'a>]) -> String {
    let mut p = Packer::new(4 + moves.len() * MOVE_BYTES);
    p.u32(moves.len() as u32);
    for m in moves {
        p.body.extend_from_slice(&m.tx.0);
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
    const_hex::encode(p.finish(&[MOVES_VERSION]))
}

/// The movements of a row kept at `height`, packed or (written before) JSON.
pub(crate) fn unpack_moves(height: u64, row: &str) -> Result<Vec<ChainTransfer>, ServiceError> {
    const WHAT: &str = "a block's kept movements";
    if row.starts_with('[') {
        return serde_json::from_str(row).map_err(|e| ServiceError::internal(WHAT, e));
    }
    let bytes = const_hex::decode(row).map_err(|_| corrupt(WHAT, "not hex"))?;
    let mut u = Unpacker::open(WHAT, &[MOVES_VERSION], &bytes)?;
    let count = u.u32()? as usize;
    if count.checked_mul(MOVE_BYTES) != Some(u.rest.len()) {
        return Err(corrupt(WHAT, "a length that is not its movements'"));
    }
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
            token,
            from_wallet,
            from,
            to_wallet,
            to,
            amount: Units(u.u128()?),
            kind,
        });
    }
    Ok(out)
}

/// Fewer bytes than any packed trade or transfer takes.
const ENTRY_BYTES_MIN: usize = 32;

/// Packs a signed report for the vault.
pub(crate) fn pack_report(r: &SignedReport) -> Vec<u8> {
    let report = &r.report;
    let mut p = Packer::new(64 * (report.trades.len() + report.transfers.len()) + 256);
    p.str(Some(&r.hash));
    p.body.extend_from_slice(&r.signature.0);
    p.str(Some(&report.exchange));
    p.u64(report.seq);
    p.u64(report.from_ms);
    p.u64(report.to_ms);
    p.str(Some(&report.prev));
    p.u64(report.after_height);
    p.u64(report.through_height);
    p.u32(report.trades.len() as u32);
    for t in &report.trades {
        p.u64(t.trade);
        p.u64(t.matched_ms);
        p.str(Some(&t.token));
        p.str(Some(&t.quote));
        p.body.push(u8::from(t.quote_on_chain));
        p.u64(t.price);
        p.u64(t.quantity);
        p.u128(t.value.0);
        for s in [&t.buyer, &t.buyer_wallet, &t.seller, &t.seller_wallet] {
            p.str(Some(s));
        }
        p.u128(t.fee_buyer.0);
        p.u128(t.fee_seller.0);
        p.str(Some(&t.state));
        p.tx(&t.tx);
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
        p.tx(&t.tx);
        p.u64(t.height);
    }
    p.finish(REPORT_MAGIC)
}

/// A signed report from its packed form.
pub(crate) fn unpack_report(bytes: &[u8]) -> Result<SignedReport, ServiceError> {
    let mut u = Unpacker::open("a stored report", REPORT_MAGIC, bytes)?;
    let hash = u.str()?;
    let signature = Signature(u.array()?);
    let exchange = u.str()?;
    let (seq, from_ms, to_ms) = (u.u64()?, u.u64()?, u.u64()?);
    let prev = u.str()?;
    let (after_height, through_height) = (u.u64()?, u.u64()?);
    let count = u.count(ENTRY_BYTES_MIN)?;
    let mut trades = Vec::with_capacity(count);
    for _ in 0..count {
        trades.push(ReportedTrade {
            trade: u.u64()?,
            matched_ms: u.u64()?,
            token: u.str()?,
            quote: u.str()?,
            quote_on_chain: u.flag()?,
            price: u.u64()?,
            quantity: u.u64()?,
            value: Units(u.u128()?),
            buyer: u.str()?,
            buyer_wallet: u.str()?,
            seller: u.str()?,
            seller_wallet: u.str()?,
            fee_buyer: Units(u.u128()?),
            fee_seller: Units(u.u128()?),
            state: u.str()?,
            tx: u.tx()?,
            height: u.u64()?,
        });
    }
    let count = u.count(ENTRY_BYTES_MIN)?;
    let mut transfers = Vec::with_capacity(count);
    for _ in 0..count {
        transfers.push(ReportedTransfer {
            trade: u.opt_u64()?,
            kind: u.str()?,
            token: u.str()?,
            from_wallet: u.opt_str()?,
            from: u.opt_str()?,
            to_wallet: u.str()?,
            to: u.opt_str()?,
            amount: Units(u.u128()?),
            tx: u.tx()?,
            height: u.u64()?,
        });
    }
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

    fn packed(moves: &[ChainTransfer]) -> String {
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
        assert_eq!(unpack_moves(7, &row).unwrap(), moves);
        assert_eq!(unpack_moves(7, &pack_moves(&[])).unwrap(), vec![]);
        // Smaller than JSON: the repeated strings are kept once.
        assert!(row.len() < serde_json::to_string(&moves).unwrap().len());
    }

    #[test]
    fn rows_kept_as_json_still_read() {
        let moves: Vec<ChainTransfer> = (0..3).map(sample).collect();
        let row = serde_json::to_string(&moves).unwrap();
        assert_eq!(unpack_moves(7, &row).unwrap(), moves);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let row = packed(&(0..5).map(sample).collect::<Vec<_>>());
        for cut in [0, 1, 2, 10, row.len() / 2, row.len() - 2] {
            assert!(unpack_moves(7, &row[..cut]).is_err(), "cut at {cut}");
        }
        assert!(unpack_moves(7, "zz").is_err());
        assert!(unpack_moves(7, "02").is_err());
        // A string number past the table.
        let mut bytes = const_hex::decode(&row).unwrap();
        let at = bytes.len() - 16 - 4;
        bytes[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(unpack_moves(7, &const_hex::encode(&bytes)).is_err());
        // A huge string count in a few bytes.
        let mut huge = vec![MOVES_VERSION];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack_moves(7, &const_hex::encode(&huge)).is_err());
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
