//! Keeps personal data encrypted at rest (SR-4, REC-7): each record under its own AES-256-GCM data key, each data key wrapped by a master key, searchable only through keyed blind indexes.
//!
//! The vault lives in its service's database (SQLite or PostgreSQL, through
//! sqlx's `Any` driver); [`SCHEMA`] is the migration that makes its tables.
//! Keys, nonces and tags are stored as hex text; a record's ciphertext, as
//! bytes (`BYTEA`, which both engines take: see [`SEALED_AS_BYTES`]).
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
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
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
    Storage(#[from] sqlx::Error),
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

/// The vault's tables: the migration a service runs before opening it.
/// Binary columns hold lower-case hex.
pub const SCHEMA: &str = "
CREATE TABLE vault_records (
    owner TEXT NOT NULL, record TEXT NOT NULL, master_id TEXT NOT NULL,
    dek_nonce TEXT NOT NULL, wrapped_dek TEXT NOT NULL,
    nonce TEXT NOT NULL, ciphertext TEXT NOT NULL,
    PRIMARY KEY (owner, record));
CREATE TABLE vault_blind_index (
    field TEXT NOT NULL, tag TEXT NOT NULL, owner TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (field, tag, owner, record));
CREATE INDEX vault_blind_index_by_record ON vault_blind_index (owner, record);
CREATE TABLE vault_keys (
    name TEXT PRIMARY KEY, master_id TEXT NOT NULL, nonce TEXT NOT NULL, wrapped TEXT NOT NULL);
";

/// The migration after [`SCHEMA`]: ciphertexts kept as bytes in `sealed`,
/// not as hex in `ciphertext`. A record of megabytes (an exchange's
/// report) was twice its size as hex, written twice (SQLite's log, then its
/// file) in its writer's turn. Records written before keep their hex
/// (`sealed` NULL) and read as before; new ones leave `ciphertext` empty.
/// SQLite stores a blob as it comes whatever a column's declared type.
pub const SEALED_AS_BYTES: &str = "ALTER TABLE vault_records ADD COLUMN sealed BYTEA;";

const INDEX_KEY_AAD: &[u8] = b"tranche/vault/index-key/v1";
const RECORD_LABEL: &[u8] = b"tranche/vault/record/v1";
const DEK_LABEL: &[u8] = b"tranche/vault/data-key/v1";

/// A record encrypted by [`Vault::seal`], to be stored by
/// [`Vault::put_sealed`]: ciphertext, the wrapped key and blind-index tags
/// only, never the plaintext.
#[derive(Debug, Clone)]
pub struct Sealed {
    owner: String,
    record: String,
    master_id: String,
    dek_nonce: String,
    wrapped_dek: String,
    nonce: String,
    ciphertext: Vec<u8>,
    index: Vec<(String, String)>,
}

/// A record's row: the data key's nonce and wrapping, the record's nonce,
/// and its ciphertext as hex (written before) or as bytes.
type StoredRecord = (String, String, String, String, Option<Vec<u8>>);

/// An encrypted store of personal records in a service's database.
pub struct Vault {
    pool: AnyPool,
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

/// Hex read back from a column; anything else was altered.
fn unhex(text: &str, owner: &str, record: &str) -> Result<Vec<u8>, VaultError> {
    // Records are megabytes at times (an exchange's report): the fast
    // decoder, on exactly the digits this vault wrote.
    if text.starts_with("0x") {
        return Err(VaultError::Tampered {
            owner: owner.into(),
            record: record.into(),
        });
    }
    const_hex::decode(text).map_err(|_| VaultError::Tampered {
        owner: owner.into(),
        record: record.into(),
    })
}

impl Vault {
    /// Opens the vault in `pool` (its tables made by [`SCHEMA`]), unlocked
    /// by `master`; the first open makes and stores the index key.
    pub async fn open(pool: AnyPool, master: MasterKey) -> Result<Vault, VaultError> {
        let stored: Option<(String, String, String)> =
            sqlx::query_as("SELECT master_id, nonce, wrapped FROM vault_keys WHERE name = 'index'")
                .fetch_optional(&pool)
                .await?;
        let index_tampered = || VaultError::Tampered {
            owner: "(vault)".into(),
            record: "index key".into(),
        };
        let index_key = match stored {
            Some((id, nonce, wrapped)) => {
                if id != master.id {
                    return Err(VaultError::WrongMasterKey {
                        expected: id,
                        given: master.id.clone(),
                    });
                }
                let nonce = hex::decode(nonce).map_err(|_| index_tampered())?;
                let wrapped = hex::decode(wrapped).map_err(|_| index_tampered())?;
                let plain = open(&master.key, INDEX_KEY_AAD, &nonce, &wrapped)
                    .ok_or_else(index_tampered)?;
                key32(&plain).ok_or_else(index_tampered)?
            }
            None => {
                let mut k = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(k.as_mut());
                let (nonce, wrapped) = seal(&master.key, INDEX_KEY_AAD, k.as_ref());
                // Two services opening one new vault at once: the first key
                // stored wins and the other open reads it back.
                sqlx::query(
                    "INSERT INTO vault_keys (name, master_id, nonce, wrapped) VALUES ('index', $1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(master.id.clone())
                .bind(hex::encode(nonce))
                .bind(hex::encode(wrapped))
                .execute(&pool)
                .await?;
                return Box::pin(Vault::open(pool, master)).await;
            }
        };
        Ok(Vault {
            pool,
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
    pub async fn put(
        &self,
        owner: &str,
        record: &str,
        plaintext: &[u8],
        index: &[(&str, &str)],
    ) -> Result<(), VaultError> {
        let mut tx = self.pool.begin().await?;
        self.put_in(&mut tx, owner, record, plaintext, index)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Vault::put`] in the caller's transaction: the record is stored
    /// with the decision it belongs to, or not at all.
    pub async fn put_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        owner: &str,
        record: &str,
        plaintext: &[u8],
        index: &[(&str, &str)],
    ) -> Result<(), VaultError> {
        let sealed = self.seal(owner, record, plaintext, index)?;
        self.put_sealed(tx, &sealed).await
    }

    /// Encrypts `owner`'s record `record` for [`Vault::put_sealed`]: the
    /// work of [`Vault::put_in`] that needs no database, done before a
    /// caller takes its write turn so a large record does not hold it.
    pub fn seal(
        &self,
        owner: &str,
        record: &str,
        plaintext: &[u8],
        index: &[(&str, &str)],
    ) -> Result<Sealed, VaultError> {
        check_id("an owner id", owner)?;
        check_id("a record id", record)?;
        if plaintext.len() > RECORD_BYTES_MAX {
            return Err(VaultError::Invalid(format!(
                "a record holds at most {RECORD_BYTES_MAX} bytes"
            )));
        }
        for (field, _) in index {
            check_id("an index field", field)?;
        }
        let mut dek = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(dek.as_mut());
        let (nonce, ct) = seal(&dek, &bound(RECORD_LABEL, owner, record), plaintext);
        let (dek_nonce, wrapped) = seal(
            &self.master.key,
            &bound(DEK_LABEL, owner, record),
            dek.as_ref(),
        );
        Ok(Sealed {
            owner: owner.to_string(),
            record: record.to_string(),
            master_id: self.master.id.clone(),
            dek_nonce: hex::encode(dek_nonce),
            wrapped_dek: hex::encode(wrapped),
            nonce: hex::encode(nonce),
            ciphertext: ct,
            index: index
                .iter()
                .map(|(field, value)| {
                    (
                        field.to_string(),
                        hex::encode(self.blind_index(field, value)),
                    )
                })
                .collect(),
        })
    }

    /// Stores a record [`Vault::seal`] encrypted, in the caller's
    /// transaction.
    pub async fn put_sealed(
        &self,
        tx: &mut sqlx::AnyConnection,
        sealed: &Sealed,
    ) -> Result<(), VaultError> {
        let Sealed {
            owner,
            record,
            master_id,
            dek_nonce,
            wrapped_dek,
            nonce,
            ciphertext,
            index,
        } = sealed;
        sqlx::query(
            "INSERT INTO vault_records (owner, record, master_id, dek_nonce, wrapped_dek, nonce,
                 ciphertext, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, '', $7)
             ON CONFLICT (owner, record) DO UPDATE SET master_id = excluded.master_id,
                dek_nonce = excluded.dek_nonce, wrapped_dek = excluded.wrapped_dek,
                nonce = excluded.nonce, ciphertext = '', sealed = excluded.sealed",
        )
        .bind(owner.clone())
        .bind(record.clone())
        .bind(master_id.clone())
        .bind(dek_nonce.clone())
        .bind(wrapped_dek.clone())
        .bind(nonce.clone())
        .bind(ciphertext.as_slice())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM vault_blind_index WHERE owner = $1 AND record = $2")
            .bind(owner.clone())
            .bind(record.clone())
            .execute(&mut *tx)
            .await?;
        for (field, tag) in index {
            sqlx::query(
                "INSERT INTO vault_blind_index (field, tag, owner, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(field.clone())
            .bind(tag.clone())
            .bind(owner.clone())
            .bind(record.clone())
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Reads `owner`'s record `record`, if there is one.
    pub async fn get(
        &self,
        owner: &str,
        record: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let row: Option<StoredRecord> = sqlx::query_as(
            "SELECT dek_nonce, wrapped_dek, nonce, ciphertext, sealed FROM vault_records
             WHERE owner = $1 AND record = $2",
        )
        .bind(owner.to_string())
        .bind(record.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some((dek_nonce, wrapped, nonce, hex_ct, sealed)) = row else {
            return Ok(None);
        };
        let ct = match sealed {
            Some(bytes) => bytes,
            None => unhex(&hex_ct, owner, record)?,
        };
        let tampered = || VaultError::Tampered {
            owner: owner.into(),
            record: record.into(),
        };
        let dek = open(
            &self.master.key,
            &bound(DEK_LABEL, owner, record),
            &unhex(&dek_nonce, owner, record)?,
            &unhex(&wrapped, owner, record)?,
        )
        .and_then(|d| key32(&d))
        .ok_or_else(tampered)?;
        let plain = open(
            &dek,
            &bound(RECORD_LABEL, owner, record),
            &unhex(&nonce, owner, record)?,
            &ct,
        )
        .ok_or_else(tampered)?;
        Ok(Some(plain))
    }

    /// The `(owner, record)` pairs whose `field` was indexed with `value`.
    pub async fn find(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Vec<(String, String)>, VaultError> {
        let tag = hex::encode(self.blind_index(field, value));
        Ok(sqlx::query_as(
            "SELECT owner, record FROM vault_blind_index WHERE field = $1 AND tag = $2
             ORDER BY owner, record",
        )
        .bind(field.to_string())
        .bind(tag)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a record and its index entries; false if there was none.
    pub async fn delete(&self, owner: &str, record: &str) -> Result<bool, VaultError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM vault_records WHERE owner = $1 AND record = $2")
            .bind(owner.to_string())
            .bind(record.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM vault_blind_index WHERE owner = $1 AND record = $2")
            .bind(owner.to_string())
            .bind(record.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// How many records the vault holds.
    pub async fn len(&self) -> Result<usize, VaultError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM vault_records")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Whether the vault holds no record.
    pub async fn is_empty(&self) -> Result<bool, VaultError> {
        Ok(self.len().await? == 0)
    }

    /// Re-wraps every data key and the index key under `new`, in one
    /// transaction; returns how many records were re-wrapped. Blind indexes
    /// stay valid: the index key itself does not change.
    pub async fn rotate(&mut self, new: MasterKey) -> Result<usize, VaultError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT owner, record, dek_nonce, wrapped_dek FROM vault_records ORDER BY owner, record",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (owner, record, dek_nonce, wrapped) in &rows {
            let aad = bound(DEK_LABEL, owner, record);
            let dek = open(
                &self.master.key,
                &aad,
                &unhex(dek_nonce, owner, record)?,
                &unhex(wrapped, owner, record)?,
            )
            .ok_or_else(|| VaultError::Tampered {
                owner: owner.clone(),
                record: record.clone(),
            })?;
            let (nonce, rewrapped) = seal(&new.key, &aad, &dek);
            sqlx::query(
                "UPDATE vault_records SET master_id = $1, dek_nonce = $2, wrapped_dek = $3
                 WHERE owner = $4 AND record = $5",
            )
            .bind(new.id.clone())
            .bind(hex::encode(nonce))
            .bind(hex::encode(rewrapped))
            .bind(owner.clone())
            .bind(record.clone())
            .execute(&mut *tx)
            .await?;
        }
        let (nonce, wrapped) = seal(&new.key, INDEX_KEY_AAD, self.index_key.as_ref());
        sqlx::query(
            "UPDATE vault_keys SET master_id = $1, nonce = $2, wrapped = $3 WHERE name = 'index'",
        )
        .bind(new.id.clone())
        .bind(hex::encode(nonce))
        .bind(hex::encode(wrapped))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.master = new;
        Ok(rows.len())
    }
}
