//! Evidence of equivocation: what the engine reports becomes evidence that
//! holds against the committee's keys, and nothing altered holds (C-2).

use commonware_consensus::simplex::types::{
    Activity, ConflictingNotarize, Finalize, Notarize, Nullify, NullifyFinalize, Proposal,
};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_runtime::{deterministic, Runner as _};
use commonware_utils::ordered::Set;
use tranche_consensus::application::{evidence_holds, evidence_of};
use tranche_consensus::{Digest, Scheme};
use tranche_types::{Evidence, EvidenceProof, OffenceKind, PublicKey};

const NAMESPACE: &[u8] = b"tranche-test";

fn keys() -> Vec<ed25519::PrivateKey> {
    (0..4u64).map(ed25519::PrivateKey::from_seed).collect()
}

fn scheme(i: usize) -> Scheme {
    let keys = keys();
    let participants = Set::try_from(keys.iter().map(|k| k.public_key()).collect::<Vec<_>>())
        .expect("distinct keys");
    Scheme::signer(NAMESPACE, participants, keys[i].clone()).expect("a member")
}

fn proposal(view: u64, payload: u8) -> Proposal<Digest> {
    Proposal::new(
        Round::new(Epoch::new(0), View::new(view)),
        View::new(view - 1),
        commonware_cryptography::sha256::Digest([payload; 32]),
    )
}

fn conflicting_notarize(signer: &Scheme, view: u64) -> Activity<Scheme, Digest> {
    let a = Notarize::sign(signer, proposal(view, 1)).unwrap();
    let b = Notarize::sign(signer, proposal(view, 2)).unwrap();
    Activity::ConflictingNotarize(ConflictingNotarize::new(a, b))
}

#[test]
fn engine_evidence_holds_against_the_committee() {
    deterministic::Runner::default().start(|mut context| async move {
        let offender = scheme(2);
        let verifier = scheme(0);
        let evidence = evidence_of(&conflicting_notarize(&offender, 9), &verifier).unwrap();
        let key = keys()[2].public_key();
        assert_eq!(
            evidence.offender,
            PublicKey(key.as_ref().try_into().unwrap())
        );
        assert_eq!((evidence.epoch, evidence.view), (0, 9));
        assert_eq!(evidence.kind, OffenceKind::ConflictingNotarize);
        assert!(evidence_holds(&evidence, &verifier, &mut context));

        let nullify =
            Nullify::sign::<Digest>(&offender, Round::new(Epoch::new(0), View::new(4))).unwrap();
        let finalize = Finalize::sign(&offender, proposal(4, 3)).unwrap();
        let both = Activity::NullifyFinalize(NullifyFinalize::new(nullify, finalize));
        let evidence = evidence_of(&both, &verifier).unwrap();
        assert_eq!(evidence.kind, OffenceKind::NullifyFinalize);
        assert!(evidence_holds(&evidence, &verifier, &mut context));

        // Votes are not offences.
        let vote = Activity::Notarize(Notarize::sign(&offender, proposal(3, 1)).unwrap());
        assert!(evidence_of(&vote, &verifier).is_none());
    });
}

#[test]
fn altered_evidence_does_not_hold() {
    deterministic::Runner::default().start(|mut context| async move {
        let verifier = scheme(0);
        let good: Evidence = evidence_of(&conflicting_notarize(&scheme(1), 5), &verifier).unwrap();
        let holds =
            |e: &Evidence, ctx: &mut deterministic::Context| evidence_holds(e, &verifier, ctx);
        assert!(holds(&good, &mut context));

        // Blamed on someone else.
        let mut blamed = good.clone();
        blamed.offender = PublicKey(keys()[3].public_key().as_ref().try_into().unwrap());
        assert!(!holds(&blamed, &mut context));
        // Another view or kind than the proof shows.
        let mut view = good.clone();
        view.view = 6;
        assert!(!holds(&view, &mut context));
        let mut kind = good.clone();
        kind.kind = OffenceKind::ConflictingFinalize;
        assert!(!holds(&kind, &mut context));
        // A signature byte flipped, or the proof cut short.
        let mut flipped = good.clone();
        let last = flipped.proof.0.len() - 1;
        flipped.proof.0[last] ^= 1;
        assert!(!holds(&flipped, &mut context));
        let mut cut = good.clone();
        cut.proof = EvidenceProof(good.proof.0[..good.proof.0.len() / 2].to_vec());
        assert!(!holds(&cut, &mut context));
        // Signed outside the committee: the namespace differs.
        let participants =
            Set::try_from(keys().iter().map(|k| k.public_key()).collect::<Vec<_>>()).unwrap();
        let elsewhere = Scheme::signer(b"another-chain", participants, keys()[1].clone()).unwrap();
        let foreign = evidence_of(&conflicting_notarize(&elsewhere, 5), &verifier).unwrap();
        assert!(!holds(&foreign, &mut context));
    });
}
