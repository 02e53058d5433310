//! The kit on both databases: the vault keeps personal data encrypted
//! (SR-4), the audit log chains and shows any alteration (REC-9), logins
//! take presentations over one-time challenges and staff credentials the
//! organisation can revoke (SR-5).

use serde_json::Value;
use tranche_crypto::Keypair;
use tranche_identity::{present, DidKey};
use tranche_service::audit::{self, Entry, Export};
use tranche_service::auth::{Auth, Login};
use tranche_service::{Db, ServiceCode};
use tranche_types::Timestamp;
use tranche_vault::{MasterKey, Vault, VaultError, RECORD_BYTES_MAX};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file SQLite may have written for the database at `url`.
fn sqlite_bytes(url: &str) -> Option<Vec<u8>> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    let mut all = Vec::new();
    for suffix in ["", "-journal", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
            all.extend(b);
        }
    }
    Some(all)
}

/// Every text column of every row, as the database returns it.
async fn dump(db: &Db) -> Vec<u8> {
    let mut out = Vec::new();
    // Ciphertexts are bytes.
    let sealed: Vec<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT sealed FROM vault_records")
        .fetch_all(db.pool())
        .await
        .unwrap();
    out.extend(sealed.into_iter().flat_map(|(b,)| b.unwrap_or_default()));
    for (table, cols) in [
        (
            "vault_records",
            "owner || record || ciphertext || wrapped_dek",
        ),
        ("vault_blind_index", "field || tag || owner || record"),
        ("vault_keys", "name || wrapped"),
        ("kit_audit", "entry"),
        ("kit_sessions", "did || roles || credentials"),
    ] {
        let rows: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {cols} FROM {table}")))
                .fetch_all(db.pool())
                .await
                .unwrap();
        for (r,) in rows {
            out.extend(r.into_bytes());
        }
    }
    out
}

#[tokio::test]
async fn sr4_the_vault_keeps_records_encrypted_and_rotates_on_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    for url in tranche_service::db::test_databases(dir.path()).await {
        let db = Db::open(&url, &[]).await.unwrap();
        let first = MasterKey::generate();
        let first_hex = first.to_hex();
        let mut vault = Vault::open(db.pool().clone(), first).await.unwrap();
        for i in 0..20 {
            vault
                .put(
                    &format!("did:key:z6MkHolder{i}"),
                    "kyc",
                    format!("Kim Min-jun {i}, Gangnam-daero, Seoul").as_bytes(),
                    &[("national_id", &format!("900101-1{i:06}"))],
                )
                .await
                .unwrap();
        }
        assert_eq!(vault.len().await.unwrap(), 20);
        let second = MasterKey::generate();
        let second_hex = second.to_hex();
        assert_eq!(vault.rotate(second).await.unwrap(), 20);
        let err = Vault::open(db.pool().clone(), MasterKey::from_hex(&first_hex).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err}");
        let vault = Vault::open(db.pool().clone(), MasterKey::from_hex(&second_hex).unwrap())
            .await
            .unwrap();
        let back = vault
            .get("did:key:z6MkHolder7", "kyc")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.as_slice(), b"Kim Min-jun 7, Gangnam-daero, Seoul");
        assert_eq!(
            vault.find("national_id", "900101-1000007").await.unwrap(),
            vec![("did:key:z6MkHolder7".to_string(), "kyc".to_string())]
        );
        // Replacing re-indexes; deleting removes both.
        vault
            .put(
                "did:key:z6MkHolder7",
                "kyc",
                b"v2",
                &[("email", "a@example.com")],
            )
            .await
            .unwrap();
        assert!(vault
            .find("national_id", "900101-1000007")
            .await
            .unwrap()
            .is_empty());
        assert!(vault.delete("did:key:z6MkHolder7", "kyc").await.unwrap());
        assert!(!vault.delete("did:key:z6MkHolder7", "kyc").await.unwrap());
        assert!(matches!(
            vault
                .put("o", "r", &vec![0; RECORD_BYTES_MAX + 1], &[])
                .await,
            Err(VaultError::Invalid(_))
        ));
        // Nothing personal in what the database returns, nor in its files.
        let mut bytes = dump(&db).await;
        if let Some(files) = sqlite_bytes(&url) {
            bytes.extend(files);
        }
        assert!(!contains(&bytes, b"Gangnam"), "plaintext stored ({url})");
        assert!(
            !contains(&bytes, b"900101-1"),
            "an index value stored ({url})"
        );
        // A record kept with its ciphertext as hex (as the vault wrote
        // them before) reads the same.
        let (bytes,): (Vec<u8>,) =
            sqlx::query_as("SELECT sealed FROM vault_records WHERE owner = 'did:key:z6MkHolder3'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        sqlx::query(
            "UPDATE vault_records SET ciphertext = $1, sealed = NULL
             WHERE owner = 'did:key:z6MkHolder3'",
        )
        .bind(const_hex::encode(&bytes))
        .execute(db.pool())
        .await
        .unwrap();
        let back = vault.get("did:key:z6MkHolder3", "kyc").await.unwrap();
        assert_eq!(
            back.unwrap().as_slice(),
            b"Kim Min-jun 3, Gangnam-daero, Seoul"
        );
        // A ciphertext moved to another owner does not decrypt.
        sqlx::query(
            "UPDATE vault_records SET sealed = (SELECT sealed FROM vault_records WHERE owner = 'did:key:z6MkHolder1'),
                nonce = (SELECT nonce FROM vault_records WHERE owner = 'did:key:z6MkHolder1'),
                dek_nonce = (SELECT dek_nonce FROM vault_records WHERE owner = 'did:key:z6MkHolder1'),
                wrapped_dek = (SELECT wrapped_dek FROM vault_records WHERE owner = 'did:key:z6MkHolder1')
             WHERE owner = 'did:key:z6MkHolder2'",
        )
        .execute(db.pool())
        .await
        .unwrap();
        assert!(matches!(
            vault.get("did:key:z6MkHolder2", "kyc").await,
            Err(VaultError::Tampered { .. })
        ));
    }
}

fn entry(n: u32) -> Entry {
    Entry {
        actor: format!("did:key:z6MkStaff{n}"),
        authority: "urn:tranche:issuer:staff:0".into(),
        action: "approve".into(),
        subject: format!("issuance/REQ-{n}"),
        decision: "approved".into(),
        reason: Some("documents in order".into()),
        tx: None,
    }
}

#[tokio::test]
async fn rec9_the_audit_log_chains_and_any_change_shows() {
    let dir = tempfile::tempdir().unwrap();
    for url in tranche_service::db::test_databases(dir.path()).await {
        let db = Db::open(&url, &[]).await.unwrap();
        for n in 0..5 {
            let mut w = db.write().await.unwrap();
            audit::append(&mut w.tx, 1_000 + u64::from(n), entry(n))
                .await
                .unwrap();
            w.commit().await.unwrap();
        }
        let mut conn = db.pool().acquire().await.unwrap();
        let records = audit::records(&mut conn, 0, 100).await.unwrap();
        assert_eq!(records.len(), 5);
        let (len, head) = audit::head(&mut conn).await.unwrap();
        assert_eq!((len, head.clone()), (5, records[4].hash.clone()));
        let good = Export {
            org: "issuer".into(),
            records: records.clone(),
            anchors: vec![audit::Anchor {
                entries: 3,
                head: records[2].hash.clone(),
                tx_hash: "00".into(),
            }],
        };
        audit::check_chain(&good).unwrap();
        let mut altered = good.clone();
        altered.records[1].entry.decision = "refused".into();
        assert_eq!(
            audit::check_chain(&altered),
            Err(audit::ChainError::Altered(2))
        );
        let mut cut = good.clone();
        cut.records.remove(1);
        assert!(matches!(
            audit::check_chain(&cut),
            Err(audit::ChainError::OutOfOrder { .. })
        ));
        let mut truncated = good.clone();
        truncated.records.truncate(2);
        assert!(matches!(
            audit::check_chain(&truncated),
            Err(audit::ChainError::AnchorMismatch { entries: 3, .. })
        ));
        // A rewritten tail re-chained from scratch no longer matches the anchor.
        let mut rewritten = good.clone();
        rewritten.records[2].entry.reason = None;
        let prev = rewritten.records[1].hash.clone();
        let r = &mut rewritten.records[2];
        r.hash = audit::link(&prev, r.seq, r.at_ms, &r.entry);
        assert!(audit::check_chain(&rewritten).is_err());
    }
}

fn did(key: &Keypair) -> String {
    DidKey::from_public_key(&key.public_key()).did()
}

#[tokio::test]
async fn sr5_staff_log_in_with_presentations_and_lose_access_when_revoked() {
    let dir = tempfile::tempdir().unwrap();
    for url in tranche_service::db::test_databases(dir.path()).await {
        let db = Db::open(&url, &[]).await.unwrap();
        let org_key = std::sync::Arc::new(Keypair::from_seed(&[7; 32]));
        let auth = Auth::new("issuer", "issuer.example", org_key, vec![]);
        let alice = Keypair::from_seed(&[1; 32]);
        let now = 1_800_000_000_000u64;
        let cred = auth
            .issue_staff(&db, &did(&alice), "operator", now + 86_400_000, now)
            .await
            .unwrap();
        let login = |challenge: &str, creds: Vec<Value>, key: &Keypair, domain: &str| Login {
            challenge: challenge.into(),
            presentation: present(key, creds, challenge, domain, Timestamp(now)).unwrap(),
        };

        let c = auth.challenge(&db, now).await.unwrap();
        let session = auth
            .login(
                &db,
                &login(&c.challenge, vec![cred.clone()], &alice, "issuer.example"),
                now,
            )
            .await
            .unwrap();
        assert_eq!(session.roles, vec!["staff:operator".to_string()]);
        let p = auth.session(&db, &session.token, now).await.unwrap();
        assert_eq!(p.did, did(&alice));
        // Only the token's hash is stored.
        assert!(!contains(&dump(&db).await, session.token.as_bytes()));

        // The same challenge twice; another domain; a forged token.
        let again = auth
            .login(
                &db,
                &login(&c.challenge, vec![cred.clone()], &alice, "issuer.example"),
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(again.code, ServiceCode::ChallengeUnknown);
        let c2 = auth.challenge(&db, now).await.unwrap();
        let wrong_domain = auth
            .login(
                &db,
                &login(&c2.challenge, vec![cred.clone()], &alice, "evil.example"),
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(wrong_domain.code, ServiceCode::PresentationInvalid);
        assert_eq!(
            auth.session(&db, "deadbeef", now).await.unwrap_err().code,
            ServiceCode::Unauthenticated
        );
        // Someone else presenting Alice's credential.
        let mallory = Keypair::from_seed(&[9; 32]);
        let c3 = auth.challenge(&db, now).await.unwrap();
        let stolen = auth
            .login(
                &db,
                &login(
                    &c3.challenge,
                    vec![cred.clone()],
                    &mallory,
                    "issuer.example",
                ),
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(stolen.code, ServiceCode::PresentationInvalid);
        // A staff credential another organisation made earns nothing here.
        let other = Auth::new(
            "issuer",
            "issuer.example",
            std::sync::Arc::new(mallory),
            vec![],
        );
        let forged = other
            .issue_staff(&db, &did(&alice), "operator", now + 1_000, now)
            .await
            .unwrap();
        let c4 = auth.challenge(&db, now).await.unwrap();
        assert_eq!(
            auth.login(
                &db,
                &login(&c4.challenge, vec![forged], &alice, "issuer.example"),
                now
            )
            .await
            .unwrap_err()
            .code,
            ServiceCode::PresentationInvalid
        );
        // Expired.
        let later = now + 2 * 86_400_000;
        let c5 = auth.challenge(&db, later).await.unwrap();
        let expired = Login {
            challenge: c5.challenge.clone(),
            presentation: present(
                &alice,
                vec![cred.clone()],
                &c5.challenge,
                "issuer.example",
                Timestamp(later),
            )
            .unwrap(),
        };
        assert_eq!(
            auth.login(&db, &expired, later).await.unwrap_err().code,
            ServiceCode::PresentationInvalid
        );
        // Revoked: the open session ends and a new login is refused.
        let id = cred["id"].as_str().unwrap().to_string();
        assert!(auth.revoke_staff(&db, &id, now).await.unwrap());
        assert_eq!(
            auth.session(&db, &session.token, now)
                .await
                .unwrap_err()
                .code,
            ServiceCode::Unauthenticated
        );
        let c6 = auth.challenge(&db, now).await.unwrap();
        let revoked = auth
            .login(
                &db,
                &login(&c6.challenge, vec![cred], &alice, "issuer.example"),
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(revoked.code, ServiceCode::PresentationInvalid);
        assert!(revoked.message.contains("revoked"), "{}", revoked.message);
    }
}

#[tokio::test]
async fn sqlite_s_log_is_copied_into_its_file_beside_the_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpointed.db");
    let db = Db::open(&format!("sqlite://{}?mode=rwc", path.display()), &[])
        .await
        .unwrap();
    let vault = Vault::open(db.pool().clone(), MasterKey::generate())
        .await
        .unwrap();
    let file = || std::fs::metadata(&path).unwrap().len();
    let before = file();
    // Commits leave the log to the checkpointer, whatever its size (2 MB
    // here: SQLite by itself copies it only past 4 MB, or on closing) ...
    for i in 0..4 {
        vault
            .put("o", &format!("r{i}"), &vec![7; 500_000], &[])
            .await
            .unwrap();
    }
    // ... which copies it into the file while the database stays open.
    let mut waited = 0;
    while file() < before + 1_900_000 {
        assert!(waited < 50, "the log was not copied: {} bytes", file());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        vault.get("o", "r3").await.unwrap().unwrap().as_slice(),
        &vec![7; 500_000][..]
    );
}
