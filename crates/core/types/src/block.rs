//! Blocks and receipts.

use crate::codec::{decode, read_counted, DecodeError};
use crate::{ChainId, Hash, PublicKey, Rejection, SignedTransaction, Timestamp};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// The most transactions one block may carry.
pub const BLOCK_TXS_MAX: usize = 20_000;
/// The most pieces of evidence one block may carry.
pub const BLOCK_EVIDENCE_MAX: usize = 16;
/// The largest proof of one offence, in bytes (two signed votes take about 250).
pub const EVIDENCE_PROOF_MAX: usize = 1024;

crate::unit_enum! {
    /// How a validator broke the consensus protocol (C-2): each is two votes
    /// it signed for one view that an honest validator never signs together.
    pub enum OffenceKind {
        /// Notarize votes for two different blocks.
        ConflictingNotarize = 0,
        /// Finalize votes for two different blocks.
        ConflictingFinalize = 1,
        /// A vote to skip the view and a vote to finalize in it.
        NullifyFinalize = 2,
    }
}

/// The signed votes proving an offence, in the consensus engine's own
/// encoding: the ledger records them as they are; consensus checks them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvidenceProof(pub Vec<u8>);

impl Serialize for EvidenceProof {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for EvidenceProof {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        if bytes.len() > EVIDENCE_PROOF_MAX {
            return Err(serde::de::Error::custom(format!(
                "a proof of {} bytes; at most {EVIDENCE_PROOF_MAX} are allowed",
                bytes.len()
            )));
        }
        Ok(EvidenceProof(bytes))
    }
}

impl Write for EvidenceProof {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for EvidenceProof {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl Read for EvidenceProof {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(Vec::<u8>::read_cfg(
            buf,
            &((0..=EVIDENCE_PROOF_MAX).into(), ()),
        )?))
    }
}

crate::record! {
    /// Proof that a validator equivocated (C-2), carried in a block so the
    /// ledger records it against the offender and slashes its bond.
    pub struct Evidence {
        /// The offender's consensus key.
        pub offender: PublicKey,
        /// The consensus epoch of the offence.
        pub epoch: u64,
        /// The consensus view of the offence.
        pub view: u64,
        /// What it did.
        pub kind: OffenceKind,
        /// The signed votes.
        pub proof: EvidenceProof,
    }
}

impl Evidence {
    /// The offence's identity: one validator is punished once per view, however
    /// many conflicting votes it signed there.
    pub fn offence(&self) -> (PublicKey, u64, u64) {
        (self.offender, self.epoch, self.view)
    }
}

/// The commitment to a block's evidence: SHA-256 over a label and the
/// canonical encoding of each piece in order.
pub fn evidence_root(evidence: &[Evidence]) -> Hash {
    let mut bytes = Vec::new();
    for piece in evidence {
        piece.write(&mut bytes);
    }
    Hash::digest(b"tranche/evidence/v1", &bytes)
}

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
    /// Commitment to the evidence, see [`evidence_root`].
    pub evidence_root: Hash,
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
        self.evidence_root.write(buf);
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
            + 3 * Hash::SIZE
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
            evidence_root: Hash::read_cfg(buf, &())?,
            parent_state_root: Hash::read_cfg(buf, &())?,
        })
    }
}

/// A block: its header, its transactions in order, and evidence of
/// validators' offences, applied after the transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, applied in this order.
    pub txs: Vec<SignedTransaction>,
    /// Offences to record.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
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
            evidence_root: evidence_root(&[]),
            parent_state_root,
        };
        Self {
            header,
            txs,
            evidence: Vec::new(),
        }
    }

    /// The block with `evidence` added and committed to in its header.
    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.header.evidence_root = evidence_root(&evidence);
        self.evidence = evidence;
        self
    }

    /// The block's id.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Whether the header's `tx_root` matches the transactions carried.
    pub fn tx_root_matches(&self) -> bool {
        self.header.tx_root == tx_root(&self.txs)
    }

    /// Whether the header's `evidence_root` matches the evidence carried.
    pub fn evidence_root_matches(&self) -> bool {
        self.header.evidence_root == evidence_root(&self.evidence)
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
        self.evidence.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size() + self.txs.encode_size() + self.evidence.encode_size()
    }
}

impl Read for Block {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let header = BlockHeader::read_cfg(buf, &())?;
        let txs = read_counted(buf, BLOCK_TXS_MAX, SIGNED_TX_BYTES_MIN)?;
        let evidence = read_counted(buf, BLOCK_EVIDENCE_MAX, EVIDENCE_BYTES_MIN)?;
        Ok(Self {
            header,
            txs,
            evidence,
        })
    }
}

/// Fewer bytes than any signed transaction takes: its signature, signer,
/// nonce and expiry alone.
const SIGNED_TX_BYTES_MIN: usize = 64 + 32 + 8 + 8;
/// Fewer bytes than any piece of evidence takes: offender, epoch and view.
const EVIDENCE_BYTES_MIN: usize = 32 + 8 + 8;

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
