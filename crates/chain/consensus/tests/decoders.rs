//! Every decoder a peer reaches, fed arbitrary and mutated bytes: the block
//! channel's messages (blocks with transactions and evidence, batches of
//! transactions, block and sync requests, finalization certificates), the
//! engine's votes and certificates, and evidence proofs. None panics, and
//! none allocates more than a small multiple of what it was sent: the test
//! caps the process's heap at that while each decoder runs.
//!
//! The cap is process-wide, so this binary holds one test that runs every
//! case in turn.

use commonware_consensus::simplex::types::{
    Activity, Certificate, ConflictingNotarize, Finalization, Finalize, Notarize, Proposal, Vote,
};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::{ed25519, Signer as _};
use commonware_runtime::{deterministic, Runner as _};
use commonware_utils::ordered::Set;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tranche_consensus::application::wire::{self, Inbound};
use tranche_consensus::application::{evidence_holds, evidence_of};
use tranche_consensus::{Digest, Scheme};
use tranche_types::commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use tranche_types::*;

#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// What a decoder may allocate beyond what is live when it starts: 16
/// bytes for every byte it is given, and 256 KiB.
fn budget(input: usize) -> usize {
    16 * input + 256 * 1024
}

/// Runs `decode` with the heap capped at what is live now plus the budget
/// for `input` bytes; going over aborts the test with the size it asked for.
fn bounded<T>(input: usize, decode: impl FnOnce() -> T) -> T {
    HEAP.set_limit(HEAP.allocated() + budget(input))
        .expect("the cap is above what is allocated");
    let out = decode();
    HEAP.set_limit(usize::MAX).expect("no limit");
    out
}

const NAMESPACE: &[u8] = b"tranche-decoders";
const CHAIN: &str = "tranche-decoders";

fn schemes() -> Vec<Scheme> {
    let keys: Vec<ed25519::PrivateKey> = (0..4u64).map(ed25519::PrivateKey::from_seed).collect();
    let participants =
        Set::try_from(keys.iter().map(|k| k.public_key()).collect::<Vec<_>>()).unwrap();
    keys.into_iter()
        .map(|k| Scheme::signer(NAMESPACE, participants.clone(), k).unwrap())
        .collect()
}

fn proposal(view: u64, payload: u8) -> Proposal<Digest> {
    Proposal::new(
        Round::new(Epoch::new(0), View::new(view)),
        View::new(view - 1),
        commonware_cryptography::sha256::Digest([payload; 32]),
    )
}

/// Valid messages of every kind a peer sends, to mutate.
struct Samples {
    block: Vec<u8>,
    txs: Vec<u8>,
    request: Vec<u8>,
    sync: Vec<u8>,
    certificate: Vec<u8>,
    vote: Vec<u8>,
    evidence: Evidence,
}

fn samples() -> Samples {
    let schemes = schemes();
    let key = tranche_testkit::key(1);
    let txs: Vec<SignedTransaction> = (1..=3)
        .map(|n| {
            let person = tranche_testkit::numbered_key(9, n);
            tranche_testkit::register_wallet(CHAIN, &key, n, Timestamp(1_900_000_000_000), &person)
        })
        .collect();
    let conflicting = Activity::ConflictingNotarize(ConflictingNotarize::new(
        Notarize::sign(&schemes[2], proposal(7, 1)).unwrap(),
        Notarize::sign(&schemes[2], proposal(7, 2)).unwrap(),
    ));
    let evidence = evidence_of(&conflicting, &schemes[0]).expect("an offence");
    let block = Block::new(
        CHAIN.parse().unwrap(),
        5,
        Hash([1; 32]),
        Timestamp(1_800_000_000_000),
        key.public_key(),
        Hash([2; 32]),
        txs.clone(),
    )
    .with_evidence(vec![evidence.clone()]);
    let mut block_message = vec![wire::TAG_BLOCK];
    block_message.extend_from_slice(&block.encode());
    let mut txs_message = vec![wire::TAG_TXS];
    for tx in &txs {
        let bytes = tx.to_bytes();
        txs_message.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        txs_message.extend_from_slice(&bytes);
    }
    let mut request = vec![wire::TAG_REQUEST];
    request.extend_from_slice(&[7; 32]);
    request.extend_from_slice(&9u64.to_be_bytes());
    let mut sync = vec![wire::TAG_SYNC];
    sync.extend_from_slice(&4u64.to_be_bytes());
    let finalizes: Vec<Finalize<Scheme, Digest>> = schemes[..3]
        .iter()
        .map(|s| Finalize::sign(s, proposal(3, 4)).unwrap())
        .collect();
    let finalization = Finalization::from_finalizes(
        &schemes[0],
        commonware_utils::iter::NonEmpty::try_new(finalizes.iter()).unwrap(),
        &commonware_parallel::Sequential,
    )
    .unwrap();
    let mut certificate = vec![wire::TAG_CERTIFICATE];
    certificate.extend_from_slice(&finalization.encode());
    let vote = Vote::Notarize(Notarize::sign(&schemes[1], proposal(3, 4)).unwrap())
        .encode()
        .to_vec();
    Samples {
        block: block_message,
        txs: txs_message,
        request,
        sync,
        certificate,
        vote,
        evidence,
    }
}

/// Decodes `bytes` every way a peer's message is decoded; checks what
/// decodes re-encodes to what was sent, where the encoding is canonical.
fn decode_every_way(bytes: &[u8], verifier: &Scheme, evidence: &Evidence) {
    let len = bytes.len();
    let parsed = bounded(len, || wire::parse(bytes));
    match parsed {
        Some(Inbound::Block(block)) => {
            assert_eq!(&block.encode()[..], &bytes[1..], "one encoding per block");
        }
        Some(Inbound::Txs(txs)) => {
            assert!(txs.len() <= wire::GOSSIP_BATCH_MAX);
            assert!(
                txs.len() * 100 <= len,
                "each transaction came in its own bytes"
            );
        }
        Some(Inbound::Certificate(rest)) => {
            let cfg = verifier.certificate_codec_config();
            let decoded = bounded(len, || {
                Finalization::<Scheme, Digest>::decode_cfg(
                    tranche_types::commonware_codec::Copying(rest),
                    &cfg,
                )
            });
            if let Ok(f) = decoded {
                assert_eq!(&f.encode()[..], rest);
            }
        }
        Some(Inbound::Request { .. } | Inbound::Sync(_)) | None => {}
    }
    // The engine's own channels: votes and certificates.
    let _ = bounded(len, || {
        Vote::<Scheme, Digest>::decode(tranche_types::commonware_codec::Copying(bytes))
    });
    let cfg = verifier.certificate_codec_config();
    let _ = bounded(len, || {
        Certificate::<Scheme, Digest>::decode_cfg(
            tranche_types::commonware_codec::Copying(bytes),
            &cfg,
        )
    });
    // A block's evidence whose proof is these bytes: it holds only if the
    // bytes are exactly the real proof.
    if len <= EVIDENCE_PROOF_MAX {
        let mut forged = evidence.clone();
        forged.proof = EvidenceProof(bytes.to_vec());
        let holds = bounded(len, || {
            deterministic::Runner::default()
                .start(|mut ctx| async move { evidence_holds(&forged, verifier, &mut ctx) })
        });
        assert_eq!(holds, bytes == evidence.proof.0.as_slice());
    }
}

/// A message mutated: some bytes changed, then maybe cut short or extended.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop_oneof![Just(None), (0..=len).prop_map(Some)],
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(changes, cut, tail)| {
            let mut bytes = base.clone();
            for (at, byte) in changes {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes.extend_from_slice(&tail);
            bytes
        })
}

#[test]
fn peer_messages_never_panic_nor_allocate_beyond_their_size() {
    let samples = samples();
    let schemes = schemes();
    let verifier = &schemes[0];
    // The samples themselves decode to what they are.
    assert!(
        matches!(wire::parse(&samples.block), Some(Inbound::Block(b)) if b.evidence.len() == 1)
    );
    assert!(matches!(wire::parse(&samples.txs), Some(Inbound::Txs(t)) if t.len() == 3));
    assert!(matches!(
        wire::parse(&samples.request),
        Some(Inbound::Request { floor: 9, .. })
    ));
    assert_eq!(wire::parse(&samples.sync), Some(Inbound::Sync(4)));
    assert!(matches!(
        wire::parse(&samples.certificate),
        Some(Inbound::Certificate(_))
    ));
    for bytes in [
        &samples.block,
        &samples.txs,
        &samples.request,
        &samples.sync,
        &samples.certificate,
        &samples.vote,
    ] {
        decode_every_way(bytes, verifier, &samples.evidence);
    }

    let mut runner = TestRunner::new(Config {
        cases: 3_000,
        failure_persistence: None,
        ..Config::default()
    });
    let check = |bytes: Vec<u8>| {
        decode_every_way(&bytes, verifier, &samples.evidence);
        Ok(())
    };
    // Arbitrary bytes, with each tag in front as often as not.
    let arbitrary = (
        prop::option::of(0u8..6),
        prop::collection::vec(any::<u8>(), 0..2048),
    )
        .prop_map(|(tag, rest)| tag.into_iter().chain(rest).collect::<Vec<u8>>());
    runner.run(&arbitrary, check).unwrap();
    for base in [
        samples.block.clone(),
        samples.txs.clone(),
        samples.request.clone(),
        samples.sync.clone(),
        samples.certificate.clone(),
        samples.vote.clone(),
        samples.evidence.proof.0.clone(),
    ] {
        runner.run(&mutated(base), check).unwrap();
    }
    // Counts claimed far beyond the bytes sent: a block claiming the most
    // transactions, a batch claiming a frame of the largest size.
    let empty = Block::new(
        CHAIN.parse().unwrap(),
        5,
        Hash([1; 32]),
        Timestamp(1_800_000_000_000),
        tranche_testkit::key(1).public_key(),
        Hash([2; 32]),
        Vec::new(),
    )
    .encode();
    // The empty block ends with two zero counts: claim the most
    // transactions instead, then send a little of one.
    let mut block = vec![wire::TAG_BLOCK];
    block.extend_from_slice(&empty[..empty.len() - 2]);
    block.extend_from_slice(&BLOCK_TXS_MAX.encode());
    block.extend_from_slice(&[0; 4096]);
    decode_every_way(&block, verifier, &samples.evidence);
    let mut txs = vec![wire::TAG_TXS];
    txs.extend_from_slice(&(TX_BYTES_MAX as u32).to_be_bytes());
    decode_every_way(&txs, verifier, &samples.evidence);
}
