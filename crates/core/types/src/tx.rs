//! The transaction envelope (chain id, signer, nonce, validity bound, payload)
//! and the signed transaction that travels between wallets, nodes and blocks.

use crate::codec::{decode, DecodeError};
use crate::{ChainId, Hash, Payload, PublicKey, Signature, Timestamp, WalletAddress};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// The largest signed transaction accepted anywhere, in encoded bytes.
pub const TX_BYTES_MAX: usize = 64 * 1024;

/// An unsigned transaction: what the signer signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The chain this transaction is for; void on any other.
    pub chain_id: ChainId,
    /// The signer's public key; the signer's wallet is its address.
    pub signer: PublicKey,
    /// The signer's sequence number: each nonce is used once, in order.
    pub nonce: u64,
    /// The last block time at which the transaction may be included.
    pub valid_until: Timestamp,
    /// What the transaction does.
    pub payload: Payload,
}

impl Transaction {
    /// The canonical bytes: what is hashed and signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// The transaction's id: SHA-256 over a label and its canonical bytes.
    /// The signature is not part of it, so the id is known before signing.
    pub fn hash(&self) -> Hash {
        Hash::digest(b"tranche/tx/v1", &self.to_bytes())
    }

    /// The signer's wallet.
    pub fn signer_address(&self) -> WalletAddress {
        self.signer.address()
    }
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.signer.write(buf);
        self.nonce.write(buf);
        self.valid_until.write(buf);
        self.payload.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        self.chain_id.encode_size()
            + PublicKey::SIZE
            + u64::SIZE
            + Timestamp::SIZE
            + self.payload.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: ChainId::read_cfg(buf, &())?,
            signer: PublicKey::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            valid_until: Timestamp::read_cfg(buf, &())?,
            payload: Payload::read_cfg(buf, &())?,
        })
    }
}

/// A transaction with its signer's signature. Whether the signature verifies
/// is checked by `tranche-crypto`, never assumed from the type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransaction {
    /// The transaction signed.
    pub tx: Transaction,
    /// The signer's ed25519 signature over the domain-separated message.
    pub signature: Signature,
}

impl SignedTransaction {
    /// The canonical bytes, as sent to a node.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// Decodes untrusted bytes: at most [`TX_BYTES_MAX`], fully consumed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > TX_BYTES_MAX {
            return Err(DecodeError {
                what: "signed transaction",
                reason: format!("{} bytes; at most {TX_BYTES_MAX} are allowed", bytes.len()),
            });
        }
        decode("signed transaction", bytes)
    }

    /// The transaction's id (see [`Transaction::hash`]).
    pub fn hash(&self) -> Hash {
        self.tx.hash()
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + Signature::SIZE
    }
}

impl Read for SignedTransaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            tx: Transaction::read_cfg(buf, &())?,
            signature: Signature::read_cfg(buf, &())?,
        })
    }
}
