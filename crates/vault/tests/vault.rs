//! The vault keeps personal data encrypted at rest (SR-4): records survive a
//! master-key rotation and a reopen, lookups work through blind indexes, and
//! nothing personal can be found in the database files.

use tranche_vault::*;

fn people() -> Vec<(String, String, String)> {
    (0..40)
        .map(|i| {
            (
                format!("did:key:z6MkHolder{i}"),
                format!("Kim Min-jun {i}, 12{i} Gangnam-daero, Seoul; passport M{i:08}"),
                format!("900101-1{i:06}"),
            )
        })
        .collect()
}

/// Every file SQLite may have written for the database.
fn storage_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-journal", "-wal"] {
        let p = format!("{}{suffix}", path.display());
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sr4_records_survive_rotation_and_no_plaintext_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pii.db");
    let first = MasterKey::generate();
    let first_hex = first.to_hex();
    let mut vault = Vault::open(&path, first).unwrap();
    for (did, pii, national_id) in people() {
        vault
            .put(
                &did,
                "kyc",
                pii.as_bytes(),
                &[("national_id", &national_id)],
            )
            .unwrap();
    }
    assert_eq!(vault.len().unwrap(), 40);

    let second = MasterKey::generate();
    let second_id = second.id().to_string();
    let second_hex = second.to_hex();
    assert_eq!(vault.rotate(second).unwrap(), 40);
    drop(vault);

    // The old key no longer opens the vault; the new one reads every record.
    let err = Vault::open(&path, MasterKey::from_hex(&first_hex).unwrap()).unwrap_err();
    assert!(
        matches!(err, VaultError::WrongMasterKey { ref expected, .. } if *expected == second_id),
        "{err}"
    );
    let vault = Vault::open(&path, MasterKey::from_hex(&second_hex).unwrap()).unwrap();
    for (did, pii, national_id) in people() {
        let back = vault.get(&did, "kyc").unwrap().unwrap();
        assert_eq!(back.as_slice(), pii.as_bytes());
        // Found by national id without the id being stored.
        assert_eq!(
            vault.find("national_id", &national_id).unwrap(),
            vec![(did.clone(), "kyc".to_string())]
        );
    }
    assert!(vault
        .find("national_id", "000000-0000000")
        .unwrap()
        .is_empty());
    drop(vault);

    let bytes = storage_bytes(&path);
    assert!(bytes.len() > 10_000);
    for (_, pii, national_id) in people() {
        assert!(!contains(&bytes, pii.as_bytes()), "plaintext found on disk");
        assert!(
            !contains(&bytes, b"Gangnam"),
            "a fragment of plaintext found on disk"
        );
        assert!(
            !contains(&bytes, national_id.as_bytes()),
            "a national id found on disk"
        );
    }
    for key in [&first_hex, &second_hex] {
        assert!(!contains(&bytes, key.as_bytes()));
        assert!(
            !contains(&bytes, &hex::decode(key.as_str()).unwrap()),
            "a master key found on disk"
        );
    }
}

#[test]
fn sr4_ciphertexts_cannot_be_swapped_between_owners() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pii.db");
    let key = MasterKey::generate();
    let hex_key = key.to_hex();
    let mut vault = Vault::open(&path, key).unwrap();
    vault
        .put("did:key:z6MkA", "kyc", b"Alice's passport", &[])
        .unwrap();
    vault
        .put("did:key:z6MkB", "kyc", b"Bob's passport", &[])
        .unwrap();
    drop(vault);
    // Give B's row A's ciphertext and wrapped key, as an attacker with the database could.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE records SET dek_nonce = (SELECT dek_nonce FROM records WHERE owner = 'did:key:z6MkA'),
                            wrapped_dek = (SELECT wrapped_dek FROM records WHERE owner = 'did:key:z6MkA'),
                            nonce = (SELECT nonce FROM records WHERE owner = 'did:key:z6MkA'),
                            ciphertext = (SELECT ciphertext FROM records WHERE owner = 'did:key:z6MkA')
         WHERE owner = 'did:key:z6MkB'",
        [],
    )
    .unwrap();
    drop(conn);
    let vault = Vault::open(&path, MasterKey::from_hex(&hex_key).unwrap()).unwrap();
    assert!(matches!(
        vault.get("did:key:z6MkB", "kyc"),
        Err(VaultError::Tampered { .. })
    ));
    assert_eq!(
        vault
            .get("did:key:z6MkA", "kyc")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"Alice's passport"
    );
}

#[test]
fn replacing_and_deleting_records_keeps_the_index_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open(&dir.path().join("pii.db"), MasterKey::generate()).unwrap();
    vault
        .put("did:key:z6MkA", "kyc", b"v1", &[("email", "a@example.com")])
        .unwrap();
    vault
        .put(
            "did:key:z6MkA",
            "kyc",
            b"v2",
            &[("email", "new@example.com")],
        )
        .unwrap();
    assert!(vault.find("email", "a@example.com").unwrap().is_empty());
    assert_eq!(vault.find("email", "new@example.com").unwrap().len(), 1);
    assert_eq!(
        vault
            .get("did:key:z6MkA", "kyc")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"v2"
    );
    // The same value in another field is another index entry.
    assert_ne!(
        vault.blind_index("email", "x"),
        vault.blind_index("phone", "x")
    );
    assert!(vault.delete("did:key:z6MkA", "kyc").unwrap());
    assert!(!vault.delete("did:key:z6MkA", "kyc").unwrap());
    assert!(vault.get("did:key:z6MkA", "kyc").unwrap().is_none());
    assert!(vault.find("email", "new@example.com").unwrap().is_empty());
    assert!(vault.is_empty().unwrap());
    assert!(matches!(
        vault.put("", "kyc", b"x", &[]),
        Err(VaultError::Invalid(_))
    ));
    assert!(matches!(
        vault.put("o", "r", &vec![0; RECORD_BYTES_MAX + 1], &[]),
        Err(VaultError::Invalid(_))
    ));
}

#[test]
fn master_keys_come_from_files_or_the_environment_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let file = dir.path().join("master.key");
    std::fs::write(&file, format!("{}\n", key.to_hex().as_str())).unwrap();
    let loaded = MasterKey::load(&file).unwrap();
    assert_eq!(loaded.id(), key.id());
    let shown = format!("{loaded:?}");
    assert!(!shown.contains(key.to_hex().as_str()) && shown.contains(key.id()));
    std::fs::write(&file, "not hex").unwrap();
    assert!(matches!(
        MasterKey::load(&file),
        Err(VaultError::BadMasterKey(_))
    ));
    assert!(matches!(
        MasterKey::load(&dir.path().join("missing")),
        Err(VaultError::BadMasterKey(_))
    ));
    // The environment is read as well (checked through a child process
    // would be cleaner; one variable set and removed here keeps it simple).
    std::env::set_var(MASTER_KEY_ENV, key.to_hex().as_str());
    assert_eq!(MasterKey::from_env().unwrap().id(), key.id());
    std::env::remove_var(MASTER_KEY_ENV);
    assert!(MasterKey::from_env().is_err());
}
