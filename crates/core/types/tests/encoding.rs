//! The canonical encoding: golden bytes and hashes pin the layout, round trips
//! show every value decodes to itself, and arbitrary bytes never panic.

use proptest::prelude::*;
use tranche_types::commonware_codec::Encode;
use tranche_types::*;

fn fixture() -> Transaction {
    Transaction {
        chain_id: ChainId::new("tranche-devnet").unwrap(),
        signer: PublicKey([0x11; 32]),
        nonce: 7,
        valid_until: Timestamp(1_795_300_000_000),
        payload: Payload::Transfer(Transfer {
            token: TokenId::new("SEOUL-TOWER-1").unwrap(),
            to: WalletAddress([0x22; 20]),
            amount: Units(1_000),
            reference: Some(Reference::new("trade-42").unwrap()),
        }),
    }
}

/// The fixture's exact bytes. If this changes, every stored transaction and
/// signature changes meaning: bump the format instead.
const GOLDEN_TX_HEX: &str = concat!(
    "0e",
    "7472616e6368652d6465766e6574", // chain id: len 14, "tranche-devnet"
    "1111111111111111111111111111111111111111111111111111111111111111", // signer
    "0000000000000007",             // nonce
    "000001a200380100",             // valid_until ms
    "01",                           // payload tag: transfer
    "0d",
    "53454f554c2d544f5745522d31", // token: len 13, "SEOUL-TOWER-1"
    "2222222222222222222222222222222222222222", // to
    "000000000000000000000000000003e8", // amount 1000
    "01",
    "08",
    "74726164652d3432", // reference: some, len 8, "trade-42"
);

const GOLDEN_TX_HASH: &str = "050b466816929b550e450288f0727e5f4df65ee63d09af0e2f60392aeb169155";

#[test]
fn golden_transaction_bytes() {
    assert_eq!(hex::encode(fixture().to_bytes()), GOLDEN_TX_HEX);
}

#[test]
fn golden_transaction_hash() {
    assert_eq!(fixture().hash().to_hex(), GOLDEN_TX_HASH);
}

#[test]
fn golden_signed_transaction_appends_the_signature() {
    let stx = SignedTransaction {
        tx: fixture(),
        signature: Signature([0x33; 64]),
    };
    let bytes = stx.to_bytes();
    assert_eq!(hex::encode(&bytes[..bytes.len() - 64]), GOLDEN_TX_HEX);
    assert_eq!(&bytes[bytes.len() - 64..], &[0x33; 64]);
    // The id does not depend on the signature.
    assert_eq!(stx.hash(), fixture().hash());
}

#[test]
fn golden_block_hash() {
    let stx = SignedTransaction {
        tx: fixture(),
        signature: Signature([0x33; 64]),
    };
    let block = Block::new(
        ChainId::new("tranche-devnet").unwrap(),
        1,
        Hash::ZERO,
        Timestamp(1_795_299_000_000),
        PublicKey([0x44; 32]),
        Hash([0x55; 32]),
        vec![stx],
    );
    assert!(block.tx_root_matches());
    assert_eq!(
        block.hash().to_hex(),
        "104a3d55e6bbf3dddb57628d7a2e0cf1c5ea87f871f96c3b12227c069e2dc163"
    );
    assert_eq!(Block::from_bytes(&block.encode()).unwrap(), block);
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = SignedTransaction {
        tx: fixture(),
        signature: Signature([0x33; 64]),
    }
    .to_bytes();
    bytes.push(0);
    let err = SignedTransaction::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("signed transaction"), "{err}");
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let bytes = vec![0u8; TX_BYTES_MAX + 1];
    let err = SignedTransaction::from_bytes(&bytes).unwrap_err();
    assert!(err.reason.contains("at most"), "{err}");
}

#[test]
fn overlong_lengths_are_refused() {
    // A token id claiming 65 bytes exceeds TokenId::MAX_LEN.
    let mut bytes = hex::decode(GOLDEN_TX_HEX).unwrap();
    let token_len_at = 1 + 14 + 32 + 8 + 8 + 1;
    assert_eq!(bytes[token_len_at], 13);
    bytes[token_len_at] = 65;
    bytes.extend_from_slice(&[b'A'; 64]);
    assert!(tranche_types::codec::decode::<Transaction>("transaction", &bytes).is_err());
}

#[test]
fn bad_characters_in_ids_are_refused_when_decoding() {
    let mut bytes = hex::decode(GOLDEN_TX_HEX).unwrap();
    // Chain ids are lowercase: make the first letter 'T'.
    bytes[1] = b'T';
    assert!(tranche_types::codec::decode::<Transaction>("transaction", &bytes).is_err());
}

#[test]
fn unknown_payload_tags_are_refused() {
    let mut bytes = hex::decode(GOLDEN_TX_HEX).unwrap();
    let tag_at = 1 + 14 + 32 + 8 + 8;
    assert_eq!(bytes[tag_at], 1);
    bytes[tag_at] = 0xee;
    assert!(tranche_types::codec::decode::<Transaction>("transaction", &bytes).is_err());
}

#[test]
fn json_form_is_readable_and_round_trips() {
    let json = serde_json::to_value(fixture()).unwrap();
    assert_eq!(json["payload"]["type"], "transfer");
    assert_eq!(json["payload"]["amount"], "1000");
    assert!(json["payload"]["to"].as_str().unwrap().starts_with("tr1"));
    let back: Transaction = serde_json::from_value(json).unwrap();
    assert_eq!(back, fixture());
}

#[test]
fn json_with_unknown_fields_is_refused() {
    let mut json = serde_json::to_value(fixture()).unwrap();
    json["fee"] = serde_json::json!(1);
    let err = serde_json::from_value::<Transaction>(json).unwrap_err();
    assert!(err.to_string().contains("fee"), "{err}");
}

#[test]
fn receipts_round_trip() {
    for outcome in [
        Outcome::Applied,
        Outcome::Rejected(Rejection::new(
            RejectCode::Expired,
            "valid until 2026-11-23",
        )),
    ] {
        let r = Receipt {
            tx_hash: Hash([9; 32]),
            height: 12,
            index: 3,
            outcome,
        };
        let back: Receipt = tranche_types::codec::decode("receipt", &r.encode()).unwrap();
        assert_eq!(back, r);
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9._:-]{{1,{max}}}")).unwrap()
}

fn arb_tx() -> impl Strategy<Value = Transaction> {
    (
        proptest::string::string_regex("[a-z0-9-]{1,32}").unwrap(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        text(64),
        any::<[u8; 20]>(),
        any::<u128>(),
        proptest::option::of(text(64)),
    )
        .prop_map(
            |(chain, signer, nonce, until, token, to, amount, reference)| Transaction {
                chain_id: ChainId::new(chain).unwrap(),
                signer: PublicKey(signer),
                nonce,
                valid_until: Timestamp(until),
                payload: Payload::Transfer(Transfer {
                    token: TokenId::new(token).unwrap(),
                    to: WalletAddress(to),
                    amount: Units(amount),
                    reference: reference.map(|r| Reference::new(r).unwrap()),
                }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn signed_transactions_round_trip(tx in arb_tx(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let stx = SignedTransaction { tx, signature: Signature(sig.try_into().unwrap()) };
        let bytes = stx.to_bytes();
        prop_assert_eq!(bytes.len(), stx.encode().len());
        let back = SignedTransaction::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &stx);
        prop_assert_eq!(back.to_bytes(), bytes);
        let json = serde_json::to_string(&stx).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTransaction>(&json).unwrap(), stx);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Whatever decodes must re-encode to exactly the input: one encoding per value.
        if let Ok(stx) = SignedTransaction::from_bytes(&bytes) {
            prop_assert_eq!(stx.to_bytes(), bytes.clone());
        }
        if let Ok(block) = Block::from_bytes(&bytes) {
            prop_assert_eq!(block.encode().to_vec(), bytes.clone());
        }
        let _ = tranche_types::codec::decode::<Receipt>("receipt", &bytes);
    }

    #[test]
    fn mutated_transactions_never_panic(tx in arb_tx(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = SignedTransaction { tx, signature: Signature([1; 64]) }.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(stx) = SignedTransaction::from_bytes(&bytes) {
            prop_assert_eq!(stx.to_bytes(), bytes);
        }
    }

    /// The node API's bodies (a transaction, a batch of them) as JSON from
    /// a client: mutated, cut short or arbitrary, they parse or are refused,
    /// never panic; what parses is a value that prints and parses back.
    #[test]
    fn mutated_json_bodies_never_panic(
        tx in arb_tx(),
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        noise in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let stx = SignedTransaction { tx, signature: Signature([1; 64]) };
        let mut json = serde_json::to_vec(&vec![stx.clone(), stx.clone()]).unwrap();
        for (at, byte) in changes {
            let i = at.index(json.len());
            json[i] = byte;
        }
        let single = serde_json::to_vec(&stx).unwrap();
        let cut_single = &single[..cut.index(single.len())];
        for body in [&json[..], cut_single, &noise[..]] {
            if let Ok(batch) = serde_json::from_slice::<Vec<SignedTransaction>>(body) {
                let again = serde_json::to_vec(&batch).unwrap();
                prop_assert_eq!(serde_json::from_slice::<Vec<SignedTransaction>>(&again).unwrap(), batch);
            }
            if let Ok(one) = serde_json::from_slice::<SignedTransaction>(body) {
                let again = serde_json::to_vec(&one).unwrap();
                prop_assert_eq!(serde_json::from_slice::<SignedTransaction>(&again).unwrap(), one);
            }
        }
        prop_assert!(serde_json::from_slice::<SignedTransaction>(cut_single).is_err());
    }

    #[test]
    fn truncated_transactions_are_refused(tx in arb_tx(), at in any::<prop::sample::Index>()) {
        let bytes = SignedTransaction { tx, signature: Signature([1; 64]) }.to_bytes();
        let cut = at.index(bytes.len());
        prop_assert!(SignedTransaction::from_bytes(&bytes[..cut]).is_err());
    }
}
