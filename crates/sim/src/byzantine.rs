//! The simulator's Byzantine validators: what they send, and the channels
//! that let two processes share one key.

use commonware_actor::{Feedback, Unreliable};
use commonware_consensus::simplex::types::{Finalize, Notarize, Proposal, Vote};
use commonware_cryptography::ed25519;
use commonware_p2p::{CheckedSender, LimitedSender, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, IoBuf, IoBufs};
use commonware_utils::channel::mpsc;
use std::num::NonZeroUsize;
use std::time::{Duration, SystemTime};
use tranche_consensus::{Digest, Pairs, Scheme};
use tranche_types::commonware_codec::{DecodeExt as _, Encode as _, Write as _};
use tranche_types::Hash;

use crate::{
    consensus_key, start_node, validator_key, Channels, Fault, BYZANTINE_EPOCHS, NAMESPACE,
};
use commonware_p2p::utils::mux::Muxer;
use commonware_runtime::{deterministic, Handle, Spawner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use tranche_consensus::{EngineChannels, MemoryArchive};
use tranche_ledger::Ledger;

/// A Byzantine validator that never proposes: for each proposal it sees a
/// vote on, it signs a vote for that proposal and then one for a made-up
/// block in the same view, and sends both to everyone. (In that order: a
/// vote for an unknown block arriving first would only get it blocked, not
/// caught.)
pub(crate) async fn double_vote<S, R>(scheme: Scheme, (mut sender, mut receiver): (S, R))
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let mut done = std::collections::HashSet::new();
    let forged = |p: &Proposal<Digest>| {
        let payload =
            commonware_cryptography::sha256::Digest(Hash::digest(b"forged", &p.payload.0).0);
        Proposal::new(p.round, p.parent, payload)
    };
    while let Ok((_, bytes)) = receiver.recv().await {
        let Ok(vote) = Vote::<Scheme, Digest>::decode(bytes) else {
            continue;
        };
        let votes = match vote {
            Vote::Notarize(n) if done.insert((0u8, n.proposal.round)) => [
                Notarize::sign(&scheme, n.proposal.clone()).map(Vote::Notarize),
                Notarize::sign(&scheme, forged(&n.proposal)).map(Vote::Notarize),
            ],
            Vote::Finalize(f) if done.insert((1u8, f.proposal.round)) => [
                Finalize::sign(&scheme, f.proposal.clone()).map(Vote::Finalize),
                Finalize::sign(&scheme, forged(&f.proposal)).map(Vote::Finalize),
            ],
            _ => continue,
        };
        for v in votes.into_iter().flatten() {
            sender.send(Recipients::All, v.encode(), true);
        }
    }
}

/// The most messages a flooder keeps per channel while silent.
const FLOOD_KEPT_MAX: usize = 10_000;

/// A Byzantine validator that says nothing for `silent`, keeping every
/// message it receives on a channel, then sends them all back to everyone
/// at once, and from then on echoes each message it receives: old votes,
/// certificates, blocks and requests, all under its own name.
pub(crate) async fn silent_then_flood<E, S, R>(
    context: E,
    silent: Duration,
    (mut sender, mut receiver): (S, R),
) where
    E: Clock,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let until = context.current() + silent;
    let mut kept: Vec<IoBuf> = Vec::new();
    let mut flooded = false;
    while let Ok((_, bytes)) = receiver.recv().await {
        if context.current() < until {
            if kept.len() < FLOOD_KEPT_MAX {
                kept.push(bytes);
            }
            continue;
        }
        if !flooded {
            flooded = true;
            for old in kept.drain(..) {
                sender.send(Recipients::All, old, false);
            }
        }
        sender.send(Recipients::All, bytes, false);
    }
}

/// What a two-faced leader's vote sender needs: the pairs of blocks its
/// application proposed, its signing scheme, and the others' keys.
#[derive(Clone)]
pub(crate) struct Faces {
    pub(crate) pairs: Pairs,
    pub(crate) scheme: Scheme,
    pub(crate) others: Vec<ed25519::PublicKey>,
}

/// A validator's sender. For a two-faced leader's votes channel, a
/// notarize of a block it proposed goes to the first half of the others;
/// the second half gets a notarize, under the same key, of the other block
/// it made for the view.
#[derive(Clone)]
pub(crate) struct TwoFaced<S> {
    pub(crate) inner: S,
    pub(crate) faces: Option<Faces>,
}

impl<S> std::fmt::Debug for TwoFaced<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TwoFaced({})", self.faces.is_some())
    }
}

impl<S> TwoFaced<S> {
    /// The two messages to send for `bytes` (a muxed vote), and to whom,
    /// if it is a notarize of one of a pair.
    fn split(&self, bytes: &IoBuf) -> Option<[(Vec<ed25519::PublicKey>, Vec<u8>); 2]> {
        let faces = self.faces.as_ref()?;
        let (channel, vote) = commonware_p2p::utils::mux::parse(bytes.clone()).ok()?;
        let Vote::Notarize(n) = Vote::<Scheme, Digest>::decode(vote).ok()? else {
            return None;
        };
        let other = *faces
            .pairs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&n.proposal.payload)?;
        let proposal = Proposal::new(n.proposal.round, n.proposal.parent, other);
        let forged = Vote::Notarize(Notarize::sign(&faces.scheme, proposal)?).encode();
        let mut second = Vec::new();
        tranche_types::commonware_codec::varint::UInt(channel).write(&mut second);
        second.extend_from_slice(&forged);
        let half = faces.others.len() / 2;
        Some([
            (faces.others[..half].to_vec(), bytes.as_ref().to_vec()),
            (faces.others[half..].to_vec(), second),
        ])
    }
}

impl<S> LimitedSender for TwoFaced<S>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    type PublicKey = ed25519::PublicKey;
    type Checked<'a>
        = Checked<'a, S>
    where
        S: 'a;

    fn check(
        &mut self,
        recipients: Recipients<Self::PublicKey>,
    ) -> Result<Self::Checked<'_>, SystemTime> {
        let listed = self.inner.check(recipients.clone())?.recipients();
        Ok(Checked {
            sender: self,
            recipients,
            listed,
        })
    }
}

/// A [`TwoFaced`] sender's checked recipients.
pub(crate) struct Checked<'a, S> {
    sender: &'a mut TwoFaced<S>,
    recipients: Recipients<ed25519::PublicKey>,
    listed: Vec<ed25519::PublicKey>,
}

impl<S> CheckedSender for Checked<'_, S>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    type PublicKey = ed25519::PublicKey;

    fn recipients(&self) -> Vec<Self::PublicKey> {
        self.listed.clone()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let bytes = message.into().coalesce();
        let sent = match self.sender.split(&bytes) {
            Some(faces) => faces
                .into_iter()
                .map(|(to, msg)| self.sender.inner.send(Recipients::Some(to), msg, priority))
                .fold(Vec::new(), |mut all, mut some| {
                    all.append(&mut some);
                    all
                }),
            None => self.sender.inner.send(self.recipients, bytes, priority),
        };
        if sent.is_empty() {
            Unreliable::rejected()
        } else {
            Unreliable::new(Feedback::Ok)
        }
    }
}

/// One twin's receiving end of a channel the twins share: every message
/// to their key reaches both.
#[derive(Debug)]
pub(crate) struct Twin {
    messages: mpsc::UnboundedReceiver<(ed25519::PublicKey, IoBuf)>,
    capacity: NonZeroUsize,
}

/// The shared channel is closed.
#[derive(Debug)]
pub(crate) struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the twins' channel is closed")
    }
}

impl std::error::Error for Closed {}

impl Receiver for Twin {
    type Error = Closed;
    type PublicKey = ed25519::PublicKey;

    async fn recv(&mut self) -> Result<commonware_p2p::Message<Self::PublicKey>, Self::Error> {
        self.messages.recv().await.ok_or(Closed)
    }

    fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }
}

/// Splits `receiver` between two twins: a task (returned, to spawn) copies
/// every message to both.
pub(crate) fn twins<R>(
    mut receiver: R,
) -> (Twin, Twin, impl std::future::Future<Output = ()> + Send)
where
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let capacity = receiver.capacity();
    let (a_in, a_out) = mpsc::unbounded_channel();
    let (b_in, b_out) = mpsc::unbounded_channel();
    let copy = async move {
        while let Ok((peer, bytes)) = receiver.recv().await {
            let _ = a_in.send((peer.clone(), bytes.clone()));
            let _ = b_in.send((peer, bytes));
        }
    };
    let twin = |messages| Twin { messages, capacity };
    (twin(a_out), twin(b_out), copy)
}

/// Starts the Byzantine validator `i` of `fault` on its channels; returns
/// its tasks. (An honest validator with a misbehaving clock or blocks is
/// started as any other, with its misbehaviour.)
pub(crate) async fn start(
    context: &deterministic::Context,
    fault: Fault,
    i: usize,
    channels: Channels,
    genesis: &Ledger,
    pubs: &[ed25519::PublicKey],
    pairs: &Pairs,
) -> Vec<Handle<()>> {
    let participants: Set<ed25519::PublicKey> = Set::try_from(pubs.to_vec()).expect("distinct");
    let scheme = || {
        Scheme::signer(
            NAMESPACE,
            participants.clone(),
            consensus_key(&validator_key(i)),
        )
        .expect("a member")
    };
    let (control, votes, certificates, resolver, blocks) = channels;
    match fault {
        Fault::Equivocate => {
            // It equivocates in every epoch it sits on the committee (until
            // it is slashed, which takes it off), each on that epoch's
            // sub-channel: the committee stays the same until then.
            let (mux, mut handle) = Muxer::new(context.child("votes"), votes.0, votes.1);
            mux.start();
            let mut tasks = Vec::new();
            for epoch in 0..BYZANTINE_EPOCHS {
                let channel = handle.register(epoch).await.expect("the muxer runs");
                let scheme = scheme();
                tasks.push(
                    context
                        .child("equivocator")
                        .with_attribute("epoch", epoch)
                        .spawn(move |_| double_vote(scheme, channel)),
                );
            }
            tasks
        }
        Fault::SilentThenFlood { silent_ms } => [votes, certificates, resolver, blocks]
            .into_iter()
            .enumerate()
            .map(|(c, channel)| {
                context
                    .child("flooder")
                    .with_attribute("channel", c)
                    .spawn(move |ctx| {
                        silent_then_flood(ctx, Duration::from_millis(silent_ms), channel)
                    })
            })
            .collect(),
        Fault::BadBlocks(_) | Fault::TwoFaced => {
            let faces = matches!(fault, Fault::TwoFaced).then(|| Faces {
                pairs: pairs.clone(),
                scheme: scheme(),
                others: pubs.iter().filter(|k| **k != pubs[i]).cloned().collect(),
            });
            let plain = |s| TwoFaced {
                inner: s,
                faces: None,
            };
            let running = start_node(
                context,
                i,
                0,
                genesis,
                control,
                (plain(blocks.0), blocks.1),
                EngineChannels {
                    votes: (
                        TwoFaced {
                            inner: votes.0,
                            faces,
                        },
                        votes.1,
                    ),
                    certificates: (plain(certificates.0), certificates.1),
                    resolver: (plain(resolver.0), resolver.1),
                },
                &MemoryArchive::default(),
                fault.misbehaviour(pairs),
                format!("validator-{i}"),
            );
            running.tasks
        }
        Fault::Twins => {
            let mut tasks = Vec::new();
            let mut split = |receiver, name: &str| {
                let (a, b, copy) = twins(receiver);
                tasks.push(
                    context
                        .child("twins")
                        .with_attribute("channel", name.to_string())
                        .spawn(move |_| copy),
                );
                (a, b)
            };
            let (votes_a, votes_b) = split(votes.1, "votes");
            let (certificates_a, certificates_b) = split(certificates.1, "certificates");
            let (resolver_a, resolver_b) = split(resolver.1, "resolver");
            let (blocks_a, blocks_b) = split(blocks.1, "blocks");
            for (twin, (v, c, r, b)) in [
                ("a", (votes_a, certificates_a, resolver_a, blocks_a)),
                ("b", (votes_b, certificates_b, resolver_b, blocks_b)),
            ] {
                let running = start_node(
                    &context.child("twin").with_attribute("twin", twin),
                    i,
                    0,
                    genesis,
                    control.clone(),
                    (blocks.0.clone(), b),
                    EngineChannels {
                        votes: (votes.0.clone(), v),
                        certificates: (certificates.0.clone(), c),
                        resolver: (resolver.0.clone(), r),
                    },
                    &MemoryArchive::default(),
                    // One twin's clock a millisecond ahead: its blocks
                    // differ from the other's, so the key signs both.
                    tranche_consensus::Misbehaviour::ClockSkew(i64::from(twin == "b")),
                    format!("validator-{i}-twin-{twin}"),
                );
                tasks.extend(running.tasks);
            }
            tasks
        }
        _ => unreachable!("{fault:?} is not a Byzantine validator of its own"),
    }
}
