//! Domain separation, chain binding, tamper detection and key files.

use tranche_crypto::*;
use tranche_types::*;

fn chain(id: &str) -> ChainId {
    ChainId::new(id).unwrap()
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn transfer(signer: &Keypair, chain_id: &str) -> Transaction {
    Transaction {
        chain_id: chain(chain_id),
        signer: signer.public_key(),
        nonce: 1,
        valid_until: Timestamp(1_800_000_000_000),
        payload: Payload::Transfer(Transfer {
            token: TokenId::new("T-1").unwrap(),
            to: key(9).address(),
            amount: Units(5),
            reference: None,
        }),
    }
}

#[test]
fn rfc8032_test_key_derives_its_public_key() {
    // RFC 8032 section 7.1, TEST 1.
    let seed =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let k = Keypair::from_seed(&seed.try_into().unwrap());
    assert_eq!(
        k.public_key().to_hex(),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
}

#[test]
fn a_signed_transaction_verifies_on_its_chain() {
    let k = key(1);
    let stx = sign_transaction(&k, transfer(&k, "alpha")).unwrap();
    verify_transaction(&stx, &chain("alpha")).unwrap();
}

#[test]
fn a_transaction_signed_for_one_chain_fails_on_another() {
    let k = key(1);
    let stx = sign_transaction(&k, transfer(&k, "alpha")).unwrap();
    assert!(matches!(
        verify_transaction(&stx, &chain("beta")),
        Err(VerifyError::WrongChain { .. })
    ));
    // Relabelling the chain id inside the transaction breaks the signature.
    let mut moved = stx.clone();
    moved.tx.chain_id = chain("beta");
    assert_eq!(
        verify_transaction(&moved, &chain("beta")),
        Err(VerifyError::Signature(SignatureError::Invalid))
    );
}

#[test]
fn any_change_to_a_signed_transaction_breaks_it() {
    let k = key(1);
    let stx = sign_transaction(&k, transfer(&k, "alpha")).unwrap();
    let mut changed = stx.clone();
    changed.tx.nonce += 1;
    assert!(verify_transaction(&changed, &chain("alpha")).is_err());
    let mut changed = stx.clone();
    changed.tx.signer = key(2).public_key();
    assert!(verify_transaction(&changed, &chain("alpha")).is_err());
    let mut changed = stx;
    changed.signature.0[0] ^= 1;
    assert!(verify_transaction(&changed, &chain("alpha")).is_err());
}

#[test]
fn signatures_do_not_cross_domains() {
    let k = key(3);
    let c = chain("alpha");
    for signed_as in Domain::ALL {
        let sig = k.sign(signed_as, &c, b"same body");
        for checked_as in Domain::ALL {
            let ok = verify(&k.public_key(), checked_as, &c, b"same body", &sig).is_ok();
            assert_eq!(
                ok,
                signed_as == checked_as,
                "{signed_as:?} as {checked_as:?}"
            );
        }
    }
}

#[test]
fn domain_labels_are_distinct_and_prefix_free() {
    for a in Domain::ALL {
        for b in Domain::ALL {
            if a != b {
                assert!(!a.label().starts_with(b.label()), "{a:?} vs {b:?}");
            }
        }
    }
}

#[test]
fn signing_with_another_key_is_refused() {
    let tx = transfer(&key(1), "alpha");
    assert!(matches!(
        sign_transaction(&key(2), tx),
        Err(SignError::WrongKey { .. })
    ));
}

#[test]
fn batch_verification_accepts_good_and_refuses_one_bad() {
    let c = chain("alpha");
    let mut txs: Vec<_> = (1..=16)
        .map(|n| {
            let k = key(n);
            sign_transaction(&k, transfer(&k, "alpha")).unwrap()
        })
        .collect();
    verify_transactions_batch(&txs, &c, os_rng()).unwrap();
    // Signatures from one signer are taken together; still each counts.
    let k = key(1);
    let mut same: Vec<_> = (0..8u64)
        .map(|n| {
            let mut tx = transfer(&k, "alpha");
            tx.nonce = n;
            sign_transaction(&k, tx).unwrap()
        })
        .collect();
    verify_transactions_batch(&same, &c, os_rng()).unwrap();
    same[3].signature.0[40] ^= 1;
    assert!(verify_transactions_batch(&same, &c, os_rng()).is_err());
    txs[7].tx.nonce = 99;
    assert!(verify_transactions_batch(&txs, &c, os_rng()).is_err());
    // An empty batch holds nothing false.
    verify_transactions_batch(&[], &c, os_rng()).unwrap();
}

#[test]
fn a_verifier_agrees_one_by_one_and_in_batches_and_refuses_unusable_keys() {
    let c = chain("alpha");
    let mut v = TxVerifier::new();
    let k = key(3);
    let good = sign_transaction(&k, transfer(&k, "alpha")).unwrap();
    let mut bad = good.clone();
    bad.signature.0[0] ^= 1;
    // A non-canonical s (s + l) is refused both ways.
    let mut high_s = good.clone();
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s, l) in high_s.signature.0[32..].iter_mut().zip(l) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    for _ in 0..2 {
        // The second round uses the keys the verifier remembers.
        v.verify(&good, &c).unwrap();
        assert!(v.verify(&bad, &c).is_err());
        assert!(v.verify(&high_s, &c).is_err());
        v.verify_batch([&good], &c, os_rng()).unwrap();
        assert!(v.verify_batch([&good, &bad], &c, os_rng()).is_err());
        assert!(v.verify_batch([&high_s], &c, os_rng()).is_err());
    }
    // The identity point is a small-order key anyone can sign for: with
    // R = identity and s = 0, the cofactored equation holds for any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut tx = transfer(&k, "alpha");
    tx.signer = PublicKey(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let weak = SignedTransaction {
        tx,
        signature: Signature(sig),
    };
    assert_eq!(
        v.verify(&weak, &c),
        Err(VerifyError::Signature(SignatureError::BadPublicKey))
    );
    assert!(v.verify_batch([&weak], &c, os_rng()).is_err());
}

fn rng() -> impl rand_core::CryptoRngCore {
    rand_core::OsRng
}

#[test]
fn key_files_open_with_the_right_password_only() {
    let k = key(4);
    let file = KeyFile::seal(&k, b"correct horse", KdfParams::MIN, &mut rng()).unwrap();
    let json = file.to_json();
    assert!(
        !json.contains(&hex::encode(*k.seed())),
        "the seed must not appear in clear"
    );
    let read = KeyFile::from_json(&json).unwrap();
    assert_eq!(
        read.open(b"correct horse").unwrap().public_key(),
        k.public_key()
    );
    assert_eq!(
        read.open(b"wrong").unwrap_err(),
        KeyFileError::WrongPassword
    );
}

#[test]
fn tampered_key_files_are_detected() {
    let k = key(5);
    let file = KeyFile::seal(&k, b"pw", KdfParams::MIN, &mut rng()).unwrap();

    let mut flipped = file.clone();
    let mut ct = hex::decode(&flipped.cipher.ciphertext).unwrap();
    ct[0] ^= 1;
    flipped.cipher.ciphertext = hex::encode(ct);
    assert!(matches!(
        flipped.open(b"pw"),
        Err(KeyFileError::Tampered(_))
    ));

    // Swapping in another public key (and its matching address) is caught by the AEAD.
    let mut swapped = file.clone();
    swapped.public_key = key(6).public_key();
    swapped.address = key(6).address();
    let swapped = KeyFile::from_json(&swapped.to_json()).unwrap();
    assert!(matches!(
        swapped.open(b"pw"),
        Err(KeyFileError::Tampered(_))
    ));

    // An address that does not belong to the key is caught on reading.
    let mut wrong_addr = file.clone();
    wrong_addr.address = key(6).address();
    assert!(matches!(
        KeyFile::from_json(&wrong_addr.to_json()),
        Err(KeyFileError::Tampered(_))
    ));

    // Absurd KDF costs are refused before any work is done.
    let mut greedy = file;
    greedy.kdf.params.memory_kib = u32::MAX;
    assert!(matches!(
        KeyFile::from_json(&greedy.to_json()),
        Err(KeyFileError::KdfOutOfBounds {
            field: "kdf.memory_kib",
            ..
        })
    ));
}

#[test]
fn malformed_key_files_say_what_is_wrong() {
    let err = KeyFile::from_json("{}").unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
    let err = KeyFile::from_json("not json").unwrap_err();
    assert!(matches!(err, KeyFileError::Malformed(_)));
    let k = key(7);
    let mut file = KeyFile::seal(&k, b"pw", KdfParams::MIN, &mut rng()).unwrap();
    file.version = 2;
    assert_eq!(
        KeyFile::from_json(&file.to_json()).unwrap_err(),
        KeyFileError::UnsupportedVersion(2)
    );
}
