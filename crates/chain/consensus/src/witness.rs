//! A witness on the votes channel: it sees every vote before the engine
//! does and keeps each signer's recent votes whole, so that a validator
//! signing two conflicting votes is caught with proof (C-2) however late the
//! second arrives.
//!
//! The engine finds such conflicts itself only while it still holds the
//! first vote whole: once a round's certificate forms it keeps just who
//! voted, and a conflicting vote arriving later gets its sender blocked
//! with no evidence. Blocked, the equivocator would never be slashed.

use crate::{Digest, Reporter, Scheme};
use commonware_consensus::simplex::types::{
    Activity, Attributable as _, ConflictingFinalize, ConflictingNotarize, Finalize, Notarize,
    Nullify, NullifyFinalize, Vote,
};
use commonware_consensus::Reporter as _;
use commonware_cryptography::certificate::Scheme as _;
use commonware_p2p::Receiver;
use rand_core_010::CryptoRng;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use tranche_types::commonware_codec::DecodeExt as _;

/// Votes kept, across signers and views; past this the oldest views go.
/// Votes from far ahead that crowd out recent ones cost only evidence,
/// never safety: the engine checks every vote on its own.
pub const WITNESSED_VOTES_MAX: usize = 8_192;

/// Which of a signer's votes in a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Notarize,
    Nullify,
    Finalize,
}

/// A signer's vote, whole.
#[derive(Clone)]
enum Kept {
    Notarize(Notarize<Scheme, Digest>),
    Nullify(Nullify<Scheme>),
    Finalize(Finalize<Scheme, Digest>),
}

/// The engine's vote receiver for one epoch, with a witness in front.
pub struct Witness<R, E> {
    inner: R,
    epoch: u64,
    scheme: Scheme,
    reporter: Reporter,
    rng: E,
    /// Each signer's votes by (view, signer index, kind).
    kept: BTreeMap<(u64, u32, Kind), Kept>,
}

impl<R, E> std::fmt::Debug for Witness<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({} votes kept)", self.kept.len())
    }
}

impl<R, E: CryptoRng> Witness<R, E> {
    /// Witnesses what `inner` receives in `epoch` for the committee of
    /// `scheme`, reporting proven offences to `reporter`; `rng` draws the
    /// coefficients of the signature checks.
    pub fn new(inner: R, epoch: u64, scheme: Scheme, reporter: Reporter, rng: E) -> Self {
        Self {
            inner,
            epoch,
            scheme,
            reporter,
            rng,
            kept: BTreeMap::new(),
        }
    }

    /// Looks at one message from a peer: a vote it keeps, or a vote that
    /// conflicts with one kept, proven by both signatures and reported.
    /// Returns the offence reported, if any.
    fn witness(&mut self, bytes: &[u8]) -> Option<Activity<Scheme, Digest>> {
        let vote =
            Vote::<Scheme, Digest>::decode(tranche_types::commonware_codec::Copying(bytes)).ok()?;
        let round = match &vote {
            Vote::Notarize(n) => n.round(),
            Vote::Nullify(n) => n.round,
            Vote::Finalize(f) => f.round(),
        };
        let signer = match &vote {
            Vote::Notarize(n) => n.signer(),
            Vote::Nullify(n) => n.signer(),
            Vote::Finalize(f) => f.signer(),
        };
        // Another epoch's vote, or a signer off the committee: the engine
        // refuses it, and no offence can be proven with it.
        if round.epoch().get() != self.epoch
            || usize::try_from(signer.get()).map_or(true, |i| i >= self.scheme.participants().len())
        {
            return None;
        }
        let (view, signer, kind, kept) = match vote {
            Vote::Notarize(n) => (
                n.round().view().get(),
                n.signer().get(),
                Kind::Notarize,
                Kept::Notarize(n),
            ),
            Vote::Nullify(n) => (
                n.round.view().get(),
                n.signer().get(),
                Kind::Nullify,
                Kept::Nullify(n),
            ),
            Vote::Finalize(f) => (
                f.round().view().get(),
                f.signer().get(),
                Kind::Finalize,
                Kept::Finalize(f),
            ),
        };
        let offence = self.conflict(view, signer, &kept);
        if let Some(activity) = offence {
            if activity.verify(
                &mut self.rng,
                &self.scheme,
                &commonware_parallel::Sequential,
            ) {
                self.reporter.report(activity.clone());
                return Some(activity);
            }
            // A forged vote: the engine blocks its sender.
            return None;
        }
        if !self.kept.contains_key(&(view, signer, kind)) {
            if self.kept.len() >= WITNESSED_VOTES_MAX {
                self.kept.pop_first();
            }
            self.kept.insert((view, signer, kind), kept);
        }
        None
    }

    /// The offence `vote` makes with a vote kept: two notarizes or two
    /// finalizes of different proposals, or a nullify and a finalize.
    fn conflict(&self, view: u64, signer: u32, vote: &Kept) -> Option<Activity<Scheme, Digest>> {
        let kept = |kind| self.kept.get(&(view, signer, kind));
        match vote {
            Kept::Notarize(n) => match kept(Kind::Notarize)? {
                Kept::Notarize(k) if k.proposal != n.proposal => Some(
                    Activity::ConflictingNotarize(ConflictingNotarize::new(k.clone(), n.clone())),
                ),
                _ => None,
            },
            Kept::Finalize(f) => match (kept(Kind::Finalize), kept(Kind::Nullify)) {
                (Some(Kept::Finalize(k)), _) if k.proposal != f.proposal => Some(
                    Activity::ConflictingFinalize(ConflictingFinalize::new(k.clone(), f.clone())),
                ),
                (_, Some(Kept::Nullify(k))) => Some(Activity::NullifyFinalize(
                    NullifyFinalize::new(k.clone(), f.clone()),
                )),
                _ => None,
            },
            Kept::Nullify(n) => match kept(Kind::Finalize)? {
                Kept::Finalize(k) => Some(Activity::NullifyFinalize(NullifyFinalize::new(
                    n.clone(),
                    k.clone(),
                ))),
                _ => None,
            },
        }
    }
}

impl<R, E> Receiver for Witness<R, E>
where
    R: Receiver,
    E: CryptoRng + Send + 'static,
{
    type Error = R::Error;
    type PublicKey = R::PublicKey;

    async fn recv(&mut self) -> Result<commonware_p2p::Message<Self::PublicKey>, Self::Error> {
        let (peer, bytes) = self.inner.recv().await?;
        self.witness(bytes.as_ref());
        Ok((peer, bytes))
    }

    fn capacity(&self) -> NonZeroUsize {
        self.inner.capacity()
    }
}
