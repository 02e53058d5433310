//! Password-encrypted key files for cold storage (REC-5).
//!
//! A key file is JSON. The secret seed is sealed with AES-256-GCM under a key
//! stretched from the password with Argon2id; the public key and address are
//! bound to the ciphertext as associated data, so none of them can be swapped.
//! A separate check value, derived from the same stretched secret, tells a
//! wrong password apart from a damaged or altered file. The secret never
//! exists on disk in clear.

use crate::sign::Keypair;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tranche_types::{PublicKey, WalletAddress};
use zeroize::Zeroizing;

/// The key file format this build writes and reads.
pub const KEYFILE_VERSION: u32 = 1;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// What new key files use: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The cheapest parameters accepted (tests use these).
    pub const MIN: KdfParams = KdfParams {
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };
    /// The dearest parameters accepted, so a hostile file cannot exhaust memory or time.
    pub const MAX: KdfParams = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 16,
        parallelism: 16,
    };

    fn check(&self) -> Result<(), KeyFileError> {
        let within = |name: &'static str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(KeyFileError::KdfOutOfBounds {
                    field: name,
                    value: v,
                    min: lo,
                    max: hi,
                })
            }
        };
        within(
            "kdf.memory_kib",
            self.memory_kib,
            Self::MIN.memory_kib,
            Self::MAX.memory_kib,
        )?;
        within(
            "kdf.iterations",
            self.iterations,
            Self::MIN.iterations,
            Self::MAX.iterations,
        )?;
        within(
            "kdf.parallelism",
            self.parallelism,
            Self::MIN.parallelism,
            Self::MAX.parallelism,
        )
    }
}

/// Why a key file could not be read or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The text is not a key file.
    #[error("not a Tranche key file: {0}")]
    Malformed(String),
    /// The file was written by a newer format.
    #[error("key file version {0} is not supported; this build reads version {KEYFILE_VERSION}")]
    UnsupportedVersion(u32),
    /// A cost parameter is outside what this build accepts.
    #[error(
        "{field} is {value}, outside {min}..={max}; the file was altered or not written by tranche"
    )]
    KdfOutOfBounds {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The least accepted.
        min: u32,
        /// The most accepted.
        max: u32,
    },
    /// The password does not open this file.
    #[error("wrong password for this key file")]
    WrongPassword,
    /// The password is right but the file's contents were changed.
    #[error("the key file was altered or damaged: {0}; restore it from a backup")]
    Tampered(&'static str),
    /// The key derivation failed for a reason other than its inputs.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// The key file as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Format version, [`KEYFILE_VERSION`].
    pub version: u32,
    /// The public key, in hex.
    pub public_key: PublicKey,
    /// The wallet address the key controls.
    pub address: WalletAddress,
    /// How the password is stretched.
    pub kdf: KdfSection,
    /// The sealed secret.
    pub cipher: CipherSection,
    /// HMAC-SHA-256 under a key stretched from the password: tells a wrong
    /// password from an altered file.
    pub password_check: String,
}

/// The KDF section of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfSection {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Cost parameters.
    #[serde(flatten)]
    pub params: KdfParams,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// The cipher section of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherSection {
    /// Always `aes-256-gcm`.
    pub algorithm: String,
    /// 12 random bytes, hex.
    pub nonce: String,
    /// The sealed 32-byte seed and its 16-byte tag, hex.
    pub ciphertext: String,
}

const KDF_ALGORITHM: &str = "argon2id";
const CIPHER_ALGORITHM: &str = "aes-256-gcm";
const CHECK_LABEL: &[u8] = b"tranche/keyfile/password-check/v1";

fn aad(public_key: &PublicKey, address: &WalletAddress) -> Vec<u8> {
    let mut aad = b"tranche/keyfile/v1".to_vec();
    aad.extend_from_slice(&public_key.0);
    aad.extend_from_slice(&address.0);
    aad
}

/// Stretches the password into 64 bytes: 32 for the cipher, 32 for the check.
fn stretch(
    password: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 64]>, KeyFileError> {
    params.check()?;
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(64),
    )
    .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut out = Zeroizing::new([0u8; 64]);
    argon
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
    Ok(out)
}

fn check_value(check_key: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(check_key).expect("HMAC takes keys of any length");
    mac.update(CHECK_LABEL);
    hex::encode(mac.finalize().into_bytes())
}

fn unhex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], KeyFileError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| {
        KeyFileError::Malformed(format!("{field} must be {N} bytes as {} hex digits", 2 * N))
    })?;
    Ok(out)
}

impl KeyFile {
    /// Seals `key` under `password`. `rng` provides the salt and nonce.
    pub fn seal(
        key: &Keypair,
        password: &[u8],
        params: KdfParams,
        rng: &mut impl CryptoRngCore,
    ) -> Result<KeyFile, KeyFileError> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let stretched = stretch(password, &salt, &params)?;
        let cipher = Aes256Gcm::new_from_slice(&stretched[..32]).expect("32-byte AES key");
        let public_key = key.public_key();
        let address = key.address();
        let seed = key.seed();
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: seed.as_ref(),
                    aad: &aad(&public_key, &address),
                },
            )
            .map_err(|_| KeyFileError::Kdf("encryption failed".into()))?;
        Ok(KeyFile {
            version: KEYFILE_VERSION,
            public_key,
            address,
            kdf: KdfSection {
                algorithm: KDF_ALGORITHM.into(),
                params,
                salt: hex::encode(salt),
            },
            cipher: CipherSection {
                algorithm: CIPHER_ALGORITHM.into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
            password_check: check_value(&stretched[32..]),
        })
    }

    /// Reads a key file's JSON, checking its shape but not opening it.
    pub fn from_json(text: &str) -> Result<KeyFile, KeyFileError> {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        if file.version != KEYFILE_VERSION {
            return Err(KeyFileError::UnsupportedVersion(file.version));
        }
        if file.kdf.algorithm != KDF_ALGORITHM {
            return Err(KeyFileError::Malformed(format!(
                "kdf.algorithm must be {KDF_ALGORITHM:?}"
            )));
        }
        if file.cipher.algorithm != CIPHER_ALGORITHM {
            return Err(KeyFileError::Malformed(format!(
                "cipher.algorithm must be {CIPHER_ALGORITHM:?}"
            )));
        }
        file.kdf.params.check()?;
        if file.public_key.address() != file.address {
            return Err(KeyFileError::Tampered(
                "the address does not belong to the public key",
            ));
        }
        Ok(file)
    }

    /// The key file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a key file always serializes")
    }

    /// Opens the file with `password`.
    pub fn open(&self, password: &[u8]) -> Result<Keypair, KeyFileError> {
        let salt: [u8; 16] = unhex("kdf.salt", &self.kdf.salt)?;
        let nonce: [u8; 12] = unhex("cipher.nonce", &self.cipher.nonce)?;
        let sealed: [u8; 48] = unhex("cipher.ciphertext", &self.cipher.ciphertext)?;
        let check: [u8; 32] = unhex("password_check", &self.password_check)?;
        let stretched = stretch(password, &salt, &self.kdf.params)?;
        if check_value(&stretched[32..]) != hex::encode(check) {
            return Err(KeyFileError::WrongPassword);
        }
        let cipher = Aes256Gcm::new_from_slice(&stretched[..32]).expect("32-byte AES key");
        let seed = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: &aad(&self.public_key, &self.address),
                    },
                )
                .map_err(|_| {
                    KeyFileError::Tampered("the sealed secret or the public key was changed")
                })?,
        );
        let seed: &[u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| KeyFileError::Tampered("the sealed secret has the wrong length"))?;
        let key = Keypair::from_seed(seed);
        if key.public_key() != self.public_key {
            // Unreachable unless AES-GCM itself failed: the key is bound as associated data.
            return Err(KeyFileError::Tampered(
                "the secret does not match the public key",
            ));
        }
        Ok(key)
    }
}
