//! Signing and verifying transactions.

use crate::sign::{is_valid_public_key, signing_message, Domain, Keypair, SignatureError};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_zebra::VerificationKey;
use rand_core_010::CryptoRng;
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use tranche_types::{ChainId, PublicKey, SignedTransaction, Transaction};

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

/// Checks that `stx` is for `chain_id` and that its signer signed exactly it,
/// under the rules of [`TxVerifier`].
pub fn verify_transaction(stx: &SignedTransaction, chain_id: &ChainId) -> Result<(), VerifyError> {
    TxVerifier::new().verify(stx, chain_id)
}

/// Checks many transactions for `chain_id` at once with batch verification,
/// under the rules of [`TxVerifier`]; `rng` draws the batch's coefficients.
pub fn verify_transactions_batch<'a>(
    txs: impl IntoIterator<Item = &'a SignedTransaction>,
    chain_id: &ChainId,
    rng: impl CryptoRng,
) -> Result<(), VerifyError> {
    TxVerifier::new().verify_batch(txs, chain_id, rng)
}

/// Signer keys a verifier remembers; past this it forgets them all and
/// starts again (a key costs one point decompression to learn).
const KEYS_MAX: usize = 65_536;

/// Checks transaction signatures the way every node must, so that all agree
/// on every block: ZIP-215 ed25519 rules (cofactored equation, canonical
/// `s`), under which a batch verifies exactly when each of its signatures
/// does, plus a usable signer key (a curve point not of small order, for
/// which nobody but its owner can sign). Transaction signatures made by
/// [`sign_transaction`] pass; other signatures in Tranche keep RFC 8032
/// strict checks.
///
/// It remembers the decompressed keys of recent signers, which makes the
/// next check of the same signer cheaper.
#[derive(Default)]
pub struct TxVerifier {
    keys: HashMap<PublicKey, Key>,
}

/// A usable signer key, decompressed: for single checks (ed25519-zebra's)
/// and as the curve point batch checks take.
#[derive(Clone, Copy)]
struct Key {
    single: VerificationKey,
    point: EdwardsPoint,
}

impl std::fmt::Debug for TxVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxVerifier({} keys)", self.keys.len())
    }
}

impl TxVerifier {
    /// A verifier that knows no keys yet.
    pub fn new() -> TxVerifier {
        TxVerifier::default()
    }

    /// The signer's key, decompressed, if it is usable.
    fn key(&mut self, signer: &PublicKey) -> Result<Key, SignatureError> {
        if let Some(key) = self.keys.get(signer) {
            return Ok(*key);
        }
        if !is_valid_public_key(signer) {
            return Err(SignatureError::BadPublicKey);
        }
        let single =
            VerificationKey::try_from(signer.0).map_err(|_| SignatureError::BadPublicKey)?;
        // The decompression ed25519-zebra makes of the same bytes.
        let point = CompressedEdwardsY(signer.0)
            .decompress()
            .ok_or(SignatureError::BadPublicKey)?;
        let key = Key { single, point };
        if self.keys.len() >= KEYS_MAX {
            self.keys.clear();
        }
        self.keys.insert(*signer, key);
        Ok(key)
    }

    /// Checks that `stx` is for `chain_id` and that its signer signed exactly it.
    pub fn verify(
        &mut self,
        stx: &SignedTransaction,
        chain_id: &ChainId,
    ) -> Result<(), VerifyError> {
        same_chain(stx, chain_id)?;
        let key = self.key(&stx.tx.signer)?.single;
        let message = signing_message(Domain::Transaction, chain_id, &stx.tx.to_bytes());
        key.verify(
            &ed25519_zebra::Signature::from_bytes(&stx.signature.0),
            &message,
        )
        .map_err(|_| SignatureError::Invalid)?;
        Ok(())
    }

    /// Checks many transactions for `chain_id` at once: faster than one by
    /// one, and it accepts exactly when each would pass [`Self::verify`]. On
    /// failure it says only that some transaction is bad: check them one by
    /// one to find which. `rng` draws the batch's random coefficients; they
    /// must be unpredictable to whoever made the signatures.
    ///
    /// The check is ed25519-zebra's batch equation (ZIP-215: cofactored,
    /// canonical `s`, any encoding of `R` that decompresses), taking the
    /// remembered signer points instead of decompressing every key again:
    /// with one signature per signer, that halves the decompressions, which
    /// cost about as much as the rest of the check. `tests/batch.rs` holds it
    /// to the library's own single and batch verdicts over thousands of
    /// adversarial batches.
    #[allow(non_snake_case)] // the names of the equation
    pub fn verify_batch<'a>(
        &mut self,
        txs: impl IntoIterator<Item = &'a SignedTransaction>,
        chain_id: &ChainId,
        mut rng: impl CryptoRng,
    ) -> Result<(), VerifyError> {
        let txs = txs.into_iter();
        let mut B_coeff = Scalar::ZERO;
        let mut coeffs = Vec::with_capacity(2 * txs.size_hint().0);
        let mut points = Vec::with_capacity(2 * txs.size_hint().0);
        for stx in txs {
            same_chain(stx, chain_id)?;
            let A = self.key(&stx.tx.signer)?.point;
            let (R_bytes, s_bytes) = stx.signature.0.split_at(32);
            let R_bytes: [u8; 32] = R_bytes.try_into().expect("32 of 64 bytes");
            let s_bytes: [u8; 32] = s_bytes.try_into().expect("32 of 64 bytes");
            let R = CompressedEdwardsY(R_bytes)
                .decompress()
                .ok_or(SignatureError::Invalid)?;
            let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
                .ok_or(SignatureError::Invalid)?;
            let message = signing_message(Domain::Transaction, chain_id, &stx.tx.to_bytes());
            let hash: [u8; 64] = Sha512::new()
                .chain_update(R_bytes)
                .chain_update(stx.tx.signer.0)
                .chain_update(&message)
                .finalize()
                .into();
            let k = Scalar::from_bytes_mod_order_wide(&hash);
            let mut z = [0u8; 16];
            rng.fill_bytes(&mut z);
            let z = Scalar::from(u128::from_le_bytes(z));
            B_coeff -= z * s;
            coeffs.push(z * k);
            points.push(A);
            coeffs.push(z);
            points.push(R);
        }
        if points.is_empty() {
            return Ok(());
        }
        let check = EdwardsPoint::vartime_multiscalar_mul(
            std::iter::once(&B_coeff).chain(&coeffs),
            std::iter::once(&ED25519_BASEPOINT_POINT).chain(&points),
        );
        if check.mul_by_cofactor().is_identity() {
            Ok(())
        } else {
            Err(SignatureError::Invalid.into())
        }
    }
}

fn same_chain(stx: &SignedTransaction, chain_id: &ChainId) -> Result<(), VerifyError> {
    if &stx.tx.chain_id != chain_id {
        return Err(VerifyError::WrongChain {
            signed_for: stx.tx.chain_id.to_string(),
            expected: chain_id.to_string(),
        });
    }
    Ok(())
}
