//! Blocks and receipts.

use crate::codec::{decode, DecodeError};
use crate::{ChainId, Hash, PublicKey, Rejection, SignedTransaction, Timestamp};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// The most transactions one block may carry.
pub const BLOCK_TXS_MAX: usize = 20_000;

/// A block's header: what links it to its parent and commits to its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// Height: the genesis state is height 0, the first block height 1.
    pub height: u64,
    /// The parent block's hash ([`Hash::ZERO`] for the first block).
    pub parent: Hash,
    /// The time the proposer stamped; the ledger's only clock.
    pub time: Timestamp,
    /// The proposer's consensus key.
    pub proposer: PublicKey,
    /// Commitment to the transactions, see [`tx_root`].
    pub tx_root: Hash,
    /// The ledger's state root after applying the parent block.
    pub parent_state_root: Hash,
}

impl BlockHeader {
    /// The block's id: SHA-256 over a label and the header's canonical bytes.
    pub fn hash(&self) -> Hash {
        Hash::digest(b"tranche/block/v1", &self.encode())
    }
}

/// The commitment to a block's transactions: SHA-256 over a label and their
/// ids in order.
pub fn tx_root(txs: &[SignedTransaction]) -> Hash {
    let mut ids = Vec::with_capacity(txs.len() * 32);
    for tx in txs {
        ids.extend_from_slice(&tx.hash().0);
    }
    Hash::digest(b"tranche/txroot/v1", &ids)
}

impl Write for BlockHeader {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.height.write(buf);
        self.parent.write(buf);
        self.time.write(buf);
        self.proposer.write(buf);
        self.tx_root.write(buf);
        self.parent_state_root.write(buf);
    }
}

impl EncodeSize for BlockHeader {
    fn encode_size(&self) -> usize {
        self.chain_id.encode_size()
            + u64::SIZE
            + Hash::SIZE
            + Timestamp::SIZE
            + PublicKey::SIZE
            + 2 * Hash::SIZE
    }
}

impl Read for BlockHeader {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: ChainId::read_cfg(buf, &())?,
            height: u64::read_cfg(buf, &())?,
            parent: Hash::read_cfg(buf, &())?,
            time: Timestamp::read_cfg(buf, &())?,
            proposer: PublicKey::read_cfg(buf, &())?,
            tx_root: Hash::read_cfg(buf, &())?,
            parent_state_root: Hash::read_cfg(buf, &())?,
        })
    }
}

/// A block: its header and its transactions in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, applied in this order.
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    /// Builds a block whose header commits to `txs`.
    pub fn new(
        chain_id: ChainId,
        height: u64,
        parent: Hash,
        time: Timestamp,
        proposer: PublicKey,
        parent_state_root: Hash,
        txs: Vec<SignedTransaction>,
    ) -> Self {
        let header = BlockHeader {
            chain_id,
            height,
            parent,
            time,
            proposer,
            tx_root: tx_root(&txs),
            parent_state_root,
        };
        Self { header, txs }
    }

    /// The block's id.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Whether the header's `tx_root` matches the transactions carried.
    pub fn tx_root_matches(&self) -> bool {
        self.header.tx_root == tx_root(&self.txs)
    }

    /// Decodes untrusted bytes, bounding the number of transactions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode("block", bytes)
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.txs.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size() + self.txs.encode_size()
    }
}

impl Read for Block {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let header = BlockHeader::read_cfg(buf, &())?;
        let txs = Vec::<SignedTransaction>::read_cfg(buf, &((0..=BLOCK_TXS_MAX).into(), ()))?;
        Ok(Self { header, txs })
    }
}

/// What became of a transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Applied: its effects are in the state.
    Applied,
    /// Refused: the state is as if it had not been sent, but its nonce is used.
    Rejected(Rejection),
}

/// The record of one transaction's fate, kept with the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction's id.
    pub tx_hash: Hash,
    /// The block that carried it.
    pub height: u64,
    /// Its position in that block.
    pub index: u32,
    /// Applied or rejected, with the reason.
    pub outcome: Outcome,
}

impl Write for Receipt {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx_hash.write(buf);
        self.height.write(buf);
        self.index.write(buf);
        match &self.outcome {
            Outcome::Applied => 0u8.write(buf),
            Outcome::Rejected(r) => {
                1u8.write(buf);
                r.write(buf);
            }
        }
    }
}

impl EncodeSize for Receipt {
    fn encode_size(&self) -> usize {
        Hash::SIZE
            + u64::SIZE
            + u32::SIZE
            + 1
            + match &self.outcome {
                Outcome::Applied => 0,
                Outcome::Rejected(r) => r.encode_size(),
            }
    }
}

impl Read for Receipt {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx_hash = Hash::read_cfg(buf, &())?;
        let height = u64::read_cfg(buf, &())?;
        let index = u32::read_cfg(buf, &())?;
        let outcome = match u8::read_cfg(buf, &())? {
            0 => Outcome::Applied,
            1 => Outcome::Rejected(Rejection::read_cfg(buf, &())?),
            other => return Err(CodecError::InvalidEnum(other)),
        };
        Ok(Self {
            tx_hash,
            height,
            index,
            outcome,
        })
    }
}
