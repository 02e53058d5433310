//! Equivocation evidence: the engine's reports of conflicting votes made
//! into evidence blocks carry, and checked against a committee before a
//! validator votes for a block that carries it.

use super::*;

/// The evidence for the engine's report of an offence, checked.
pub fn evidence_of(activity: &Activity<Scheme, Digest>, scheme: &Scheme) -> Option<Evidence> {
    use commonware_consensus::simplex::types::Attributable as _;
    use commonware_consensus::{Epochable as _, Viewable as _};
    use commonware_cryptography::certificate::Scheme as _;
    let (kind, signer, epoch, view) = match activity {
        Activity::ConflictingNotarize(c) => (
            OffenceKind::ConflictingNotarize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        Activity::ConflictingFinalize(c) => (
            OffenceKind::ConflictingFinalize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        Activity::NullifyFinalize(c) => (
            OffenceKind::NullifyFinalize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        _ => return None,
    };
    let key = scheme.participants().get(usize::from(signer))?;
    let offender = PublicKey(key.as_ref().try_into().ok()?);
    Some(Evidence {
        offender,
        epoch: epoch.get(),
        view: view.get(),
        kind,
        proof: EvidenceProof(tranche_types::commonware_codec::Encode::encode(activity).to_vec()),
    })
}

/// Whether `evidence`'s proof holds: it decodes to the engine's evidence of
/// the offence it claims, signed by the offender's key in `scheme`'s committee.
pub fn evidence_holds(evidence: &Evidence, scheme: &Scheme, rng: &mut impl CryptoRng) -> bool {
    use commonware_cryptography::certificate::Verifier as _;
    use tranche_types::commonware_codec::Decode as _;
    let Ok(activity) = Activity::<Scheme, Digest>::decode_cfg(
        tranche_types::commonware_codec::Copying(evidence.proof.0.as_slice()),
        &scheme.certificate_codec_config(),
    ) else {
        return false;
    };
    evidence_of(&activity, scheme).as_ref() == Some(evidence)
        && activity.verify(rng, scheme, &commonware_parallel::Sequential)
}

impl<E, S, R, A> Application<E, S, R, A>
where
    E: Clock + Spawner + Metrics + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    A: Archive,
{
    /// Keeps the engine's evidence of an offence for the next proposals.
    pub(super) fn on_offence(&mut self, activity: &Activity<Scheme, Digest>) {
        use commonware_consensus::Epochable as _;
        let epoch = match activity {
            Activity::ConflictingNotarize(c) => c.epoch(),
            Activity::ConflictingFinalize(c) => c.epoch(),
            Activity::NullifyFinalize(c) => c.epoch(),
            _ => return,
        };
        let Some(committee) = self.base_ledger.committee_of(epoch.get()).cloned() else {
            tracing::debug!(
                epoch = epoch.get(),
                "offence of an epoch too old for any block to carry"
            );
            return;
        };
        let scheme = self.verifier(&committee);
        let Some(evidence) = evidence_of(activity, &scheme) else {
            return;
        };
        let known = self
            .offences
            .iter()
            .any(|e| e.offence() == evidence.offence());
        if known || self.offences.len() >= OFFENCES_MAX {
            return;
        }
        // The engine reports a conflict before checking the votes'
        // signatures: evidence that does not hold would make every block
        // carrying it invalid.
        if !activity.verify(
            self.context.as_mut(),
            &scheme,
            &commonware_parallel::Sequential,
        ) {
            tracing::debug!("offence with a bad signature not kept");
            return;
        }
        if let Err(why) = self.base_ledger.check_offence(&evidence) {
            tracing::debug!(reason = %why.message, "offence not kept");
            return;
        }
        {
            tracing::warn!(
                offender = %evidence.offender,
                epoch = evidence.epoch,
                view = evidence.view,
                kind = ?evidence.kind,
                "equivocation seen: its evidence goes in this validator's next proposals"
            );
            self.offences.push(evidence);
        }
    }
}
