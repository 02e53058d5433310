//! Sealing data to an organisation's on-chain key, so that only the holder
//! of that key opens it: X25519 between a fresh ephemeral key and the
//! recipient's ed25519 key taken to its Montgomery form (as libsodium's
//! `crypto_sign_ed25519_pk_to_curve25519` and age's ssh-ed25519 recipients
//! do), HKDF-SHA-256 over both public keys, the chain id and a label, and
//! AES-256-GCM with associated data the caller binds the sealed bytes to.
//! Each seal has its own key, so the nonce is fixed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use tranche_types::{ChainId, PublicKey};
use zeroize::Zeroizing;

use crate::Keypair;

/// The HKDF label of a seal.
const SEAL_LABEL: &[u8] = b"tranche/seal/v1";

/// Data sealed to one organisation's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// The recipient's ed25519 public key.
    pub recipient: PublicKey,
    /// The ephemeral X25519 public key, hex.
    pub ephemeral: String,
    /// The AES-256-GCM ciphertext and tag, hex.
    pub ciphertext: String,
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The recipient's key is not a usable ed25519 public key.
    #[error("the recipient's key is not a usable ed25519 public key")]
    BadRecipient,
    /// Sealed to another key.
    #[error("the data is sealed to another key")]
    NotForThisKey,
    /// Not hex, or the wrong length.
    #[error("the sealed data is malformed")]
    Malformed,
    /// The tag does not verify: altered, or sealed with other associated
    /// data or for another chain.
    #[error("the sealed data does not open: altered, or bound to something else")]
    DoesNotOpen,
}

fn montgomery_of(key: &PublicKey) -> Result<MontgomeryPoint, SealError> {
    let point = CompressedEdwardsY(key.0)
        .decompress()
        .ok_or(SealError::BadRecipient)?;
    if point.is_small_order() {
        return Err(SealError::BadRecipient);
    }
    Ok(point.to_montgomery())
}

fn cipher(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    recipient: &MontgomeryPoint,
    chain_id: &ChainId,
) -> Result<Aes256Gcm, SealError> {
    // A low-order point gives an all-zero secret: refuse it.
    if shared.0 == [0u8; 32] {
        return Err(SealError::BadRecipient);
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&ephemeral.0);
    salt[32..].copy_from_slice(&recipient.0);
    let hk = Hkdf::<Sha256>::new(Some(&salt), &shared.0);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(&[SEAL_LABEL, chain_id.as_str().as_bytes()], &mut key[..])
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    Ok(Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key"))
}

const NONCE: [u8; 12] = [0u8; 12];

/// Seals `plaintext` to `recipient` on `chain_id`, bound to `aad`, with an
/// ephemeral key from `rng`.
pub fn seal(
    recipient: &PublicKey,
    chain_id: &ChainId,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Sealed, SealError> {
    let to = montgomery_of(recipient)?;
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut secret[..]);
    let ephemeral = MontgomeryPoint::mul_base_clamped(*secret);
    let shared = to.mul_clamped(*secret);
    let ciphertext = cipher(&shared, &ephemeral, &to, chain_id)?
        .encrypt(
            Nonce::from_slice(&NONCE),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM seals any length a message may have");
    Ok(Sealed {
        recipient: *recipient,
        ephemeral: hex::encode(ephemeral.0),
        ciphertext: hex::encode(ciphertext),
    })
}

impl Keypair {
    /// Opens `sealed`, sealed to this key on `chain_id` and bound to `aad`.
    pub fn open(
        &self,
        chain_id: &ChainId,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealError> {
        if sealed.recipient != self.public_key() {
            return Err(SealError::NotForThisKey);
        }
        let ephemeral: [u8; 32] = hex::decode(&sealed.ephemeral)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SealError::Malformed)?;
        let ephemeral = MontgomeryPoint(ephemeral);
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| SealError::Malformed)?;
        // The X25519 scalar of an ed25519 key: the first half of
        // SHA-512 of its seed, clamped by the multiplication.
        let hash = Sha512::digest(&self.seed()[..]);
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&hash[..32]);
        let me = montgomery_of(&self.public_key())?;
        let shared = ephemeral.mul_clamped(*scalar);
        cipher(&shared, &ephemeral, &me, chain_id)?
            .decrypt(
                Nonce::from_slice(&NONCE),
                Payload {
                    msg: &ciphertext,
                    aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn only_the_recipient_opens_what_is_sealed_to_it_and_only_as_bound() {
        let chain: ChainId = "test-chain".parse().unwrap();
        let other_chain: ChainId = "other-chain".parse().unwrap();
        let bob = Keypair::generate(&mut OsRng);
        let eve = Keypair::generate(&mut OsRng);
        let sealed = seal(&bob.public_key(), &chain, b"digest", b"ivms101", &mut OsRng).unwrap();
        assert_eq!(bob.open(&chain, b"digest", &sealed).unwrap(), b"ivms101");
        assert_eq!(
            eve.open(&chain, b"digest", &sealed),
            Err(SealError::NotForThisKey)
        );
        let mut misaddressed = sealed.clone();
        misaddressed.recipient = eve.public_key();
        assert_eq!(
            eve.open(&chain, b"digest", &misaddressed),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            bob.open(&chain, b"other", &sealed),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            bob.open(&other_chain, b"digest", &sealed),
            Err(SealError::DoesNotOpen)
        );
        let mut altered = sealed.clone();
        let mut bytes = hex::decode(&altered.ciphertext).unwrap();
        bytes[0] ^= 1;
        altered.ciphertext = hex::encode(bytes);
        assert_eq!(
            bob.open(&chain, b"digest", &altered),
            Err(SealError::DoesNotOpen)
        );
        // Each seal has its own ephemeral key.
        let again = seal(&bob.public_key(), &chain, b"digest", b"ivms101", &mut OsRng).unwrap();
        assert_ne!(again.ephemeral, sealed.ephemeral);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn a_low_order_recipient_is_refused() {
        let chain: ChainId = "test-chain".parse().unwrap();
        // The identity point, compressed.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            seal(&PublicKey(identity), &chain, b"", b"x", &mut OsRng),
            Err(SealError::BadRecipient)
        );
    }
}
