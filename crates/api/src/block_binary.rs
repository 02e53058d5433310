//! A block record's binary form: what a follower asks for with
//! `Accept: application/vnd.tranche.block` on `GET /blocks/{height}` to
//! skip JSON. It is the chain's canonical encoding of each part, in order:
//!
//! | part | bytes |
//! |---|---|
//! | the block's hash | 32 |
//! | its height | 8, big-endian |
//! | the state root after it | 1 (0: none, 1: one) then 32 |
//! | the block | the block's canonical encoding |
//! | its receipts | a varint count, then each receipt's |
//! | its movements | a varint count, then each transfer record's |
//!
//! A node serves the parts as its store keeps them, without decoding them;
//! a reader decodes them bounded, refuses trailing bytes, and checks that
//! the hash and height are the block's own.

use crate::node::BlockRecord;
use tranche_types::codec::read_counted;
use tranche_types::commonware_codec::{Copying, EncodeSize, Error as CodecError, Read, Write};
use tranche_types::{
    Block, BlockHeader, DecodeError, Hash, Receipt, TransferRecord, BLOCK_TXS_MAX,
};

/// The media type of a block record's binary form.
pub const BLOCK_MEDIA_TYPE: &str = "application/vnd.tranche.block";

/// Most movements one block record may carry: far more than a block's
/// transactions make, so only a corrupt or hostile answer reaches it.
pub const BLOCK_TRANSFERS_MAX: usize = 10_000_000;

/// Fewer bytes than any receipt takes: its transaction's hash, height,
/// index and outcome tag.
const RECEIPT_BYTES_MIN: usize = 32 + 8 + 4 + 1;
/// Fewer bytes than any transfer record takes: its date, height,
/// transaction, a token's length, the beneficiary and the amount.
const TRANSFER_BYTES_MIN: usize = 4 + 8 + 32 + 1 + 20 + 16;

/// A block record's binary form from its parts as a store keeps them:
/// the block's and the receipts' canonical encodings, and each movement's.
/// `block` must be a block's canonical encoding (its hash is read from it).
pub fn from_stored_parts<'a>(
    height: u64,
    state_root: Option<Hash>,
    block: &[u8],
    receipts: &[u8],
    transfers: impl ExactSizeIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let hash = header_hash(block)?;
    let mut out = Vec::with_capacity(64 + block.len() + receipts.len() + 100 * transfers.len());
    out.extend_from_slice(&hash.0);
    height.write(&mut out);
    write_root(state_root, &mut out);
    out.extend_from_slice(block);
    out.extend_from_slice(receipts);
    transfers.len().write(&mut out);
    for t in transfers {
        out.extend_from_slice(t);
    }
    Ok(out)
}

/// The hash of the block whose canonical encoding `block` is (its
/// header's), without decoding its transactions.
fn header_hash(block: &[u8]) -> Result<Hash, DecodeError> {
    let mut buf = Copying(block);
    BlockHeader::read_cfg(&mut buf, &()).map_err(|e| DecodeError {
        what: "block header",
        reason: e.to_string(),
    })?;
    let header = &block[..block.len() - buf.0.len()];
    Ok(Hash::digest(b"tranche/block/v1", header))
}

fn write_root(root: Option<Hash>, out: &mut Vec<u8>) {
    match root {
        Some(root) => {
            out.push(1);
            out.extend_from_slice(&root.0);
        }
        None => out.push(0),
    }
}

impl BlockRecord {
    /// The record's binary form (see the module's documentation).
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.block.encode_size());
        out.extend_from_slice(&self.hash.0);
        self.height.write(&mut out);
        write_root(self.state_root, &mut out);
        self.block.write(&mut out);
        self.receipts.len().write(&mut out);
        for r in &self.receipts {
            r.write(&mut out);
        }
        self.transfers.len().write(&mut out);
        for t in &self.transfers {
            t.write(&mut out);
        }
        out
    }

    /// Reads a record's binary form from untrusted bytes: bounded, never
    /// panicking, refusing trailing bytes and a hash or height that is
    /// not the block's.
    pub fn from_binary(bytes: &[u8]) -> Result<BlockRecord, DecodeError> {
        let bad = |e: CodecError| DecodeError {
            what: "block record",
            reason: e.to_string(),
        };
        let mut buf = Copying(bytes);
        let hash = Hash::read_cfg(&mut buf, &()).map_err(bad)?;
        let height = u64::read_cfg(&mut buf, &()).map_err(bad)?;
        let state_root = match u8::read_cfg(&mut buf, &()).map_err(bad)? {
            0 => None,
            1 => Some(Hash::read_cfg(&mut buf, &()).map_err(bad)?),
            _ => return Err(bad(CodecError::Invalid("block record", "state root tag"))),
        };
        let block = Block::read_cfg(&mut buf, &()).map_err(bad)?;
        let receipts: Vec<Receipt> =
            read_counted(&mut buf, BLOCK_TXS_MAX, RECEIPT_BYTES_MIN).map_err(bad)?;
        let transfers: Vec<TransferRecord> =
            read_counted(&mut buf, BLOCK_TRANSFERS_MAX, TRANSFER_BYTES_MIN).map_err(bad)?;
        if !buf.0.is_empty() {
            return Err(DecodeError {
                what: "block record",
                reason: format!("{} bytes after the record", buf.0.len()),
            });
        }
        if block.hash() != hash || block.header.height != height {
            return Err(DecodeError {
                what: "block record",
                reason: format!(
                    "it names block {height} {hash} but carries block {} {}",
                    block.header.height,
                    block.hash()
                ),
            });
        }
        Ok(BlockRecord {
            hash,
            height,
            state_root,
            block,
            receipts,
            transfers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranche_types::commonware_codec::Encode;
    use tranche_types::*;

    fn record() -> BlockRecord {
        let signer = PublicKey([5; 32]);
        let tx = Transaction {
            chain_id: "tranche-test".parse().unwrap(),
            signer,
            nonce: 0,
            valid_until: Timestamp(9_000),
            payload: Payload::Transfer(Transfer {
                token: "T".parse().unwrap(),
                to: WalletAddress([2; 20]),
                amount: Units(5),
                reference: None,
            }),
        };
        // Only the encoding is tested: the signature need not verify.
        let stx = SignedTransaction {
            tx,
            signature: Signature([6; 64]),
        };
        let block = Block::new(
            "tranche-test".parse().unwrap(),
            7,
            Hash([9; 32]),
            Timestamp(1_000),
            signer,
            Hash([8; 32]),
            vec![stx.clone()],
        );
        let transfer = TransferRecord {
            date: "2026-12-07".parse().unwrap(),
            height: 7,
            tx: stx.hash(),
            token: "T".parse().unwrap(),
            from: Some(WalletAddress([1; 20])),
            to: WalletAddress([2; 20]),
            amount: Units(5),
            reference: None,
            kind: TransferKind::Holder,
            holder_authorization: None,
            reason: None,
        };
        BlockRecord {
            hash: block.hash(),
            height: 7,
            state_root: Some(Hash([4; 32])),
            receipts: vec![Receipt {
                tx_hash: stx.hash(),
                height: 7,
                index: 0,
                outcome: Outcome::Applied,
            }],
            block,
            transfers: vec![transfer],
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_as_a_store_serves_it() {
        let r = record();
        let bytes = r.to_binary();
        assert_eq!(BlockRecord::from_binary(&bytes).unwrap(), r);
        let transfers: Vec<Vec<u8>> = r.transfers.iter().map(|t| t.encode().to_vec()).collect();
        let stored = from_stored_parts(
            r.height,
            r.state_root,
            &r.block.encode(),
            &r.receipts.encode(),
            transfers.iter().map(Vec::as_slice),
        )
        .unwrap();
        assert_eq!(stored, bytes);
    }

    #[test]
    fn truncated_padded_or_mislabelled_bytes_are_refused() {
        let r = record();
        let bytes = r.to_binary();
        for cut in [0, 1, 32, 41, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                BlockRecord::from_binary(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(BlockRecord::from_binary(&padded).is_err());
        let mut other_height = bytes.clone();
        other_height[39] ^= 1;
        let e = BlockRecord::from_binary(&other_height).unwrap_err();
        assert!(e.reason.contains("carries block 7"), "{e}");
        let mut other_hash = bytes;
        other_hash[0] ^= 1;
        assert!(BlockRecord::from_binary(&other_hash).is_err());
    }

    #[test]
    fn a_huge_count_in_a_few_bytes_is_refused_without_a_huge_allocation() {
        let r = BlockRecord {
            transfers: Vec::new(),
            ..record()
        };
        let mut bytes = r.to_binary();
        bytes.pop(); // the empty movement count
        (BLOCK_TRANSFERS_MAX).write(&mut bytes);
        assert!(BlockRecord::from_binary(&bytes).is_err());
    }
}
