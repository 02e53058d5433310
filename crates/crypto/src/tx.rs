//! Signing and verifying transactions.

use crate::sign::{signing_message, verify, Domain, Keypair, SignatureError};
use ed25519_dalek::VerifyingKey;
use tranche_types::{ChainId, SignedTransaction, Transaction};

/// Why a transaction could not be signed with a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The transaction names a different signer than the key.
    #[error("the transaction's signer is {expected}, but the key is {actual}; set signer to the key's public key or use the matching key")]
    WrongKey {
        /// The signer the transaction names.
        expected: String,
        /// The key offered.
        actual: String,
    },
}

/// Why a signed transaction does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The transaction was signed for another chain.
    #[error("the transaction is for chain {signed_for:?}, not {expected:?}")]
    WrongChain {
        /// The chain the transaction names.
        signed_for: String,
        /// The chain it was checked against.
        expected: String,
    },
    /// The signature or the key is bad.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Signs `tx` with `key`, which must be the transaction's signer.
pub fn sign_transaction(key: &Keypair, tx: Transaction) -> Result<SignedTransaction, SignError> {
    if tx.signer != key.public_key() {
        return Err(SignError::WrongKey {
            expected: tx.signer.to_hex(),
            actual: key.public_key().to_hex(),
        });
    }
    let signature = key.sign(Domain::Transaction, &tx.chain_id, &tx.to_bytes());
    Ok(SignedTransaction { tx, signature })
}

/// Checks that `stx` is for `chain_id` and that its signer signed exactly it.
pub fn verify_transaction(stx: &SignedTransaction, chain_id: &ChainId) -> Result<(), VerifyError> {
    if &stx.tx.chain_id != chain_id {
        return Err(VerifyError::WrongChain {
            signed_for: stx.tx.chain_id.to_string(),
            expected: chain_id.to_string(),
        });
    }
    verify(
        &stx.tx.signer,
        Domain::Transaction,
        chain_id,
        &stx.tx.to_bytes(),
        &stx.signature,
    )?;
    Ok(())
}

/// Checks many transactions for `chain_id` at once with ed25519 batch
/// verification, which is faster than one by one. On failure it says only
/// that some signature is bad: check them one by one to find which.
pub fn verify_transactions_batch(
    txs: &[SignedTransaction],
    chain_id: &ChainId,
) -> Result<(), VerifyError> {
    let mut messages = Vec::with_capacity(txs.len());
    let mut signatures = Vec::with_capacity(txs.len());
    let mut keys = Vec::with_capacity(txs.len());
    for stx in txs {
        if &stx.tx.chain_id != chain_id {
            return Err(VerifyError::WrongChain {
                signed_for: stx.tx.chain_id.to_string(),
                expected: chain_id.to_string(),
            });
        }
        let key =
            VerifyingKey::from_bytes(&stx.tx.signer.0).map_err(|_| SignatureError::BadPublicKey)?;
        if key.is_weak() {
            return Err(SignatureError::BadPublicKey.into());
        }
        keys.push(key);
        messages.push(signing_message(
            Domain::Transaction,
            chain_id,
            &stx.tx.to_bytes(),
        ));
        signatures.push(ed25519_dalek::Signature::from_bytes(&stx.signature.0));
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&refs, &signatures, &keys).map_err(|_| SignatureError::Invalid)?;
    Ok(())
}
