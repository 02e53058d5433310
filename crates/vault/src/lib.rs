//! Keeps personal data encrypted at rest (SR-4, REC-7): each record under its
//! own AES-256-GCM data key, each data key wrapped by a master key, and
//! searchable only through keyed blind indexes.
//!
//! Invariants:
//! - No plaintext, and no searchable value in clear, is ever written to the
//!   database; a scan of its files finds none.
//! - Each ciphertext is bound to its owner and record id (associated data),
//!   so ciphertexts cannot be swapped between people unnoticed.
//! - Rotating the master key re-wraps every data key and the index key in one
//!   transaction: a crash leaves either the old or the new key in force,
//!   never a mix, and no record is lost.
//! - The master key is never printed: its `Debug` shows only its id.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use tranche_crypto::rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// The environment variable a master key may come from (64 hex digits).
pub const MASTER_KEY_ENV: &str = "TRANCHE_VAULT_MASTER_KEY";
/// Longest owner or record id, in bytes.
pub const ID_LEN_MAX: usize = 128;
/// Largest record, in bytes.
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;

/// Why the vault refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The database failed.
    #[error("vault storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The master key given is not the one the vault is locked with.
    #[error("the vault is locked with master key {expected}, not {given}; use that key (or the one it was rotated to)")]
    WrongMasterKey {
        /// The vault's key id.
        expected: String,
        /// The given key's id.
        given: String,
    },
    /// A record or key does not decrypt: it was altered or moved.
    #[error(
        "record {record:?} of {owner:?} does not decrypt: it was altered or moved to another owner"
    )]
    Tampered {
        /// Its owner.
        owner: String,
        /// Its id.
        record: String,
    },
    /// A master key could not be read.
    #[error("invalid master key: {0}")]
    BadMasterKey(String),
    /// An id or record is out of bounds.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// A 256-bit master key. Its id (a digest prefix) names it in errors and in
/// the database; the key itself never appears.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id={})", self.id)
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(b"tranche/vault/master-key-id/v1")
            .chain_update(bytes)
            .finalize();
        MasterKey {
            key: Zeroizing::new(bytes),
            id: hex::encode(&digest[..8]),
        }
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        MasterKey::from_bytes(*bytes)
    }

    /// A key from 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, VaultError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())
            .map_err(|_| VaultError::BadMasterKey("expected 64 hex digits (32 bytes)".into()))?;
        Ok(MasterKey::from_bytes(*bytes))
    }

    /// A key from a file holding 64 hex digits.
    pub fn load(path: &Path) -> Result<MasterKey, VaultError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            VaultError::BadMasterKey(format!("cannot read {}: {e}", path.display()))
        })?);
        MasterKey::from_hex(&text)
    }

    /// A key from the environment variable [`MASTER_KEY_ENV`].
    pub fn from_env() -> Result<MasterKey, VaultError> {
        let text = Zeroizing::new(
            std::env::var(MASTER_KEY_ENV)
                .map_err(|_| VaultError::BadMasterKey(format!("{MASTER_KEY_ENV} is not set")))?,
        );
        MasterKey::from_hex(&text)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as hex, to store it in a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.key))
    }
}

fn bound(label: &[u8], owner: &str, record: &str) -> Vec<u8> {
    let mut aad = label.to_vec();
    for part in [owner, record] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> ([u8; 12], Vec<u8>) {
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of a bounded record cannot fail");
    (nonce, ct)
}

fn open(key: &[u8; 32], aad: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != 12 {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn key32(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(Zeroizing::new(arr))
}

/// A stored record's sealed parts: data-key nonce, wrapped data key, nonce, ciphertext.
type SealedRow = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

const INDEX_KEY_AAD: &[u8] = b"tranche/vault/index-key/v1";
const RECORD_LABEL: &[u8] = b"tranche/vault/record/v1";
const DEK_LABEL: &[u8] = b"tranche/vault/data-key/v1";

/// An encrypted store of personal records in a SQLite database.
pub struct Vault {
    conn: Connection,
    master: MasterKey,
    index_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(master={})", self.master.id)
    }
}

fn check_id(what: &str, id: &str) -> Result<(), VaultError> {
    if id.is_empty() || id.len() > ID_LEN_MAX {
        return Err(VaultError::Invalid(format!(
            "{what} must be 1 to {ID_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

impl Vault {
    /// Opens (creating if needed) the vault at `path`, unlocked by `master`.
    pub fn open(path: &Path, master: MasterKey) -> Result<Vault, VaultError> {
        let conn = Connection::open(path)?;
        // Every commit reaches the disk before it returns.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                owner TEXT NOT NULL, record TEXT NOT NULL, master_id TEXT NOT NULL,
                dek_nonce BLOB NOT NULL, wrapped_dek BLOB NOT NULL,
                nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
                PRIMARY KEY (owner, record));
             CREATE TABLE IF NOT EXISTS blind_index (
                field TEXT NOT NULL, tag BLOB NOT NULL, owner TEXT NOT NULL, record TEXT NOT NULL,
                PRIMARY KEY (field, tag, owner, record));
             CREATE INDEX IF NOT EXISTS blind_index_by_record ON blind_index (owner, record);
             CREATE TABLE IF NOT EXISTS keys (
                name TEXT PRIMARY KEY, master_id TEXT NOT NULL, nonce BLOB NOT NULL, wrapped BLOB NOT NULL);",
        )?;
        let stored: Option<(String, Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT master_id, nonce, wrapped FROM keys WHERE name = 'index'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let index_key = match stored {
            Some((id, nonce, wrapped)) => {
                if id != master.id {
                    return Err(VaultError::WrongMasterKey {
                        expected: id,
                        given: master.id.clone(),
                    });
                }
                let plain =
                    open(&master.key, INDEX_KEY_AAD, &nonce, &wrapped).ok_or_else(|| {
                        VaultError::Tampered {
                            owner: "(vault)".into(),
                            record: "index key".into(),
                        }
                    })?;
                key32(&plain).ok_or_else(|| VaultError::Tampered {
                    owner: "(vault)".into(),
                    record: "index key".into(),
                })?
            }
            None => {
                let mut k = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(k.as_mut());
                let (nonce, wrapped) = seal(&master.key, INDEX_KEY_AAD, k.as_ref());
                conn.execute(
                    "INSERT INTO keys (name, master_id, nonce, wrapped) VALUES ('index', ?1, ?2, ?3)",
                    params![master.id, nonce.to_vec(), wrapped],
                )?;
                k
            }
        };
        Ok(Vault {
            conn,
            master,
            index_key,
        })
    }

    /// The keyed digest a searchable value is stored as: HMAC-SHA-256 under the
    /// vault's index key over the field name and the value. Normalize values
    /// (case, spaces) before, as the field requires.
    pub fn blind_index(&self, field: &str, value: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.index_key.as_ref())
            .expect("HMAC takes any key length");
        mac.update(&(field.len() as u32).to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Stores (or replaces) `owner`'s record `record`, searchable by the
    /// `(field, value)` pairs in `index`. Owner and record ids are opaque
    /// (a DID, a number), never personal data.
    pub fn put(
        &mut self,
        owner: &str,
        record: &str,
        plaintext: &[u8],
        index: &[(&str, &str)],
    ) -> Result<(), VaultError> {
        check_id("an owner id", owner)?;
        check_id("a record id", record)?;
        if plaintext.len() > RECORD_BYTES_MAX {
            return Err(VaultError::Invalid(format!(
                "a record holds at most {RECORD_BYTES_MAX} bytes"
            )));
        }
        let mut dek = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(dek.as_mut());
        let (nonce, ct) = seal(&dek, &bound(RECORD_LABEL, owner, record), plaintext);
        let (dek_nonce, wrapped) = seal(
            &self.master.key,
            &bound(DEK_LABEL, owner, record),
            dek.as_ref(),
        );
        let tags: Vec<(String, [u8; 32])> = index
            .iter()
            .map(|(f, v)| (f.to_string(), self.blind_index(f, v)))
            .collect();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO records (owner, record, master_id, dek_nonce, wrapped_dek, nonce, ciphertext)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![owner, record, self.master.id, dek_nonce.to_vec(), wrapped, nonce.to_vec(), ct],
        )?;
        tx.execute(
            "DELETE FROM blind_index WHERE owner = ?1 AND record = ?2",
            params![owner, record],
        )?;
        for (field, tag) in &tags {
            tx.execute(
                "INSERT OR IGNORE INTO blind_index (field, tag, owner, record) VALUES (?1, ?2, ?3, ?4)",
                params![field, tag.to_vec(), owner, record],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Reads `owner`'s record `record`, if there is one.
    pub fn get(&self, owner: &str, record: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let row: Option<SealedRow> = self
            .conn
            .query_row(
                "SELECT dek_nonce, wrapped_dek, nonce, ciphertext FROM records WHERE owner = ?1 AND record = ?2",
                params![owner, record],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((dek_nonce, wrapped, nonce, ct)) = row else {
            return Ok(None);
        };
        let tampered = || VaultError::Tampered {
            owner: owner.into(),
            record: record.into(),
        };
        let dek = open(
            &self.master.key,
            &bound(DEK_LABEL, owner, record),
            &dek_nonce,
            &wrapped,
        )
        .and_then(|d| key32(&d))
        .ok_or_else(tampered)?;
        let plain =
            open(&dek, &bound(RECORD_LABEL, owner, record), &nonce, &ct).ok_or_else(tampered)?;
        Ok(Some(plain))
    }

    /// The `(owner, record)` pairs whose `field` was indexed with `value`.
    pub fn find(&self, field: &str, value: &str) -> Result<Vec<(String, String)>, VaultError> {
        let tag = self.blind_index(field, value);
        let mut stmt = self.conn.prepare(
            "SELECT owner, record FROM blind_index WHERE field = ?1 AND tag = ?2 ORDER BY owner, record",
        )?;
        let rows = stmt.query_map(params![field, tag.to_vec()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a record and its index entries; false if there was none.
    pub fn delete(&mut self, owner: &str, record: &str) -> Result<bool, VaultError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM records WHERE owner = ?1 AND record = ?2",
            params![owner, record],
        )?;
        tx.execute(
            "DELETE FROM blind_index WHERE owner = ?1 AND record = ?2",
            params![owner, record],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// How many records the vault holds.
    pub fn len(&self) -> Result<usize, VaultError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Whether the vault holds no record.
    pub fn is_empty(&self) -> Result<bool, VaultError> {
        Ok(self.len()? == 0)
    }

    /// Re-wraps every data key and the index key under `new`, in one
    /// transaction; returns how many records were re-wrapped. Blind indexes
    /// stay valid: the index key itself does not change.
    pub fn rotate(&mut self, new: MasterKey) -> Result<usize, VaultError> {
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = {
            let mut stmt = self.conn.prepare(
                "SELECT owner, record, dek_nonce, wrapped_dek FROM records ORDER BY owner, record",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let tx = self.conn.transaction()?;
        for (owner, record, dek_nonce, wrapped) in &rows {
            let aad = bound(DEK_LABEL, owner, record);
            let dek = open(&self.master.key, &aad, dek_nonce, wrapped).ok_or_else(|| {
                VaultError::Tampered {
                    owner: owner.clone(),
                    record: record.clone(),
                }
            })?;
            let (nonce, rewrapped) = seal(&new.key, &aad, &dek);
            tx.execute(
                "UPDATE records SET master_id = ?1, dek_nonce = ?2, wrapped_dek = ?3 WHERE owner = ?4 AND record = ?5",
                params![new.id, nonce.to_vec(), rewrapped, owner, record],
            )?;
        }
        let (nonce, wrapped) = seal(&new.key, INDEX_KEY_AAD, self.index_key.as_ref());
        tx.execute(
            "UPDATE keys SET master_id = ?1, nonce = ?2, wrapped = ?3 WHERE name = 'index'",
            params![new.id, nonce.to_vec(), wrapped],
        )?;
        tx.commit()?;
        self.master = new;
        Ok(rows.len())
    }
}
