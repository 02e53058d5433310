//! Defines Tranche's shared vocabulary: identifiers, quantities, dates,
//! transactions, blocks, receipts, reject codes, and their one canonical
//! binary encoding.
//!
//! Invariants:
//! - Every value has exactly one canonical encoding (commonware-codec:
//!   fixed-width big-endian integers, minimal varint lengths, one-byte tags),
//!   and decoding demands it: bytes that decode re-encode to themselves.
//! - Decoding untrusted bytes is bounded (every length has a limit) and never
//!   panics.
//! - Amounts are integers with checked arithmetic; there are no floats.
//! - Nothing here reads a clock, a file or a socket.

mod admin;
mod aml;
mod amount;
mod block;
pub mod codec;
mod governance;
mod hash;
mod holds;
mod id;
mod instructions;
mod market;
mod payload;
mod records;
mod reject;
mod rules;
mod time;
mod tx;

pub use admin::*;
pub use aml::*;
pub use amount::{AmountError, Currency, CurrencyKind, MinorUnits, Money, Stake, Units};
pub use block::{
    evidence_root, tx_root, Block, BlockHeader, Evidence, EvidenceProof, OffenceKind, Outcome,
    Receipt, BLOCK_EVIDENCE_MAX, BLOCK_TXS_MAX, EVIDENCE_PROOF_MAX,
};
pub use codec::BoundedVec;
pub use codec::DecodeError;
pub use governance::*;
pub use hash::{Digester, Hash, HexError, PublicKey, Signature};
pub use holds::*;
pub use id::{
    AssetId, ChainId, Did, DocumentName, DocumentUri, IdError, Label, OrderId, OrgId, Reference,
    RequestId, TokenId, TradeId, WalletAddress, ADDRESS_HRP,
};
pub use instructions::*;
pub use market::*;
pub use payload::*;
pub use records::{IssuanceCheck, RevocationCheck, TokenSupply, TransferKind, TransferRecord};
pub use reject::{RejectCode, Rejection};
pub use rules::*;
pub use time::{Date, DateError, Timestamp, TimestampError, MS_PER_DAY};
pub use tx::{SignedTransaction, Transaction, TX_BYTES_MAX};

/// Re-exported so dependents encode with the same codec version.
pub use commonware_codec;
