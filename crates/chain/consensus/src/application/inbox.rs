//! The application's inbox from the engine: bounded, and when full it keeps
//! only what still matters, so a slow application (a long block to verify,
//! a disk catching up) can never be made to hold an unbounded queue.
//!
//! The engine cannot wait on the application (its reporter and relay calls
//! return at once), so a full inbox does not push back: messages go to an
//! overflow that a policy keeps small. Finalizations come in view order and
//! the newest covers the rest (the application applies every ancestor of
//! the newest), our own proposal's broadcast is superseded by the next, a
//! proposal or verification the engine no longer waits for is dropped, and
//! offences beyond [`OFFENCES_OVERFLOW_MAX`] are dropped (the witness and
//! the engine report an offender again at its next conflicting vote).

use super::Message;
use commonware_actor::mailbox::{Overflow, Policy};
use std::collections::VecDeque;

/// The most engine messages queued for the application before the overflow
/// policy decides what to keep.
pub const ENGINE_MESSAGES_MAX: usize = 1_024;

/// The most offences kept in the overflow.
pub const OFFENCES_OVERFLOW_MAX: usize = 64;

/// What the inbox keeps once its queue is full, in arrival order.
#[derive(Debug, Default)]
pub struct Overflowed {
    messages: VecDeque<Message>,
}

impl Overflowed {
    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.messages.len()
    }
}

impl Overflow<Message> for Overflowed {
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn drain<F>(&mut self, mut push: F)
    where
        F: FnMut(Message) -> Option<Message>,
    {
        while let Some(message) = self.messages.pop_front() {
            if let Some(message) = push(message) {
                self.messages.push_front(message);
                break;
            }
        }
    }
}

impl Message {
    /// Whether nobody waits for this message's answer any more (the engine
    /// moved past its view).
    fn abandoned(&self) -> bool {
        match self {
            Message::Propose { response, .. } => response.is_closed(),
            Message::Verify { response, .. } => response.is_closed(),
            _ => false,
        }
    }
}

impl Policy for Message {
    type Overflow = Overflowed;

    fn handle(overflow: &mut Overflowed, message: Message) {
        overflow.messages.retain(|m| !m.abandoned());
        if message.abandoned() {
            return;
        }
        match &message {
            Message::Finalized { .. } => overflow
                .messages
                .retain(|m| !matches!(m, Message::Finalized { .. })),
            Message::Broadcast { .. } => overflow
                .messages
                .retain(|m| !matches!(m, Message::Broadcast { .. })),
            Message::Offence { .. } => {
                let kept = overflow
                    .messages
                    .iter()
                    .filter(|m| matches!(m, Message::Offence { .. }))
                    .count();
                if kept >= OFFENCES_OVERFLOW_MAX {
                    return;
                }
            }
            Message::Propose { .. } | Message::Verify { .. } => {}
        }
        overflow.messages.push_back(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConsensusKey, Digest, Scheme};
    use commonware_actor::mailbox;
    use commonware_consensus::simplex::types::{
        Activity, ConflictingNotarize, Context, Notarize, Proposal,
    };
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_consensus::Viewable as _;
    use commonware_cryptography::{ed25519, Signer as _};
    use commonware_runtime::{deterministic, Runner as _};
    use commonware_utils::channel::oneshot;
    use commonware_utils::ordered::Set;
    use std::num::NonZeroUsize;

    fn digest(n: u8) -> Digest {
        Digest::from([n; 32])
    }

    fn finalized(n: u8) -> Message {
        Message::Finalized {
            payload: digest(n),
            certificate: vec![n],
        }
    }

    fn context(view: u64) -> Context<Digest, ConsensusKey> {
        Context {
            round: Round::new(Epoch::new(0), View::new(view)),
            leader: ed25519::PrivateKey::from_seed(1).public_key(),
            parent: (View::new(view - 1), digest(0)),
        }
    }

    fn offence(view: u64) -> Message {
        let keys: Vec<_> = (0..4u64).map(ed25519::PrivateKey::from_seed).collect();
        let participants = Set::try_from(keys.iter().map(|k| k.public_key()).collect::<Vec<_>>())
            .expect("distinct keys");
        let signer =
            Scheme::signer(b"inbox-test", participants, keys[2].clone()).expect("a member");
        let proposal = |payload: u8| {
            Proposal::new(
                Round::new(Epoch::new(0), View::new(view)),
                View::new(view - 1),
                digest(payload),
            )
        };
        let a = Notarize::sign(&signer, proposal(1)).expect("signs");
        let b = Notarize::sign(&signer, proposal(2)).expect("signs");
        Message::Offence {
            activity: Activity::ConflictingNotarize(ConflictingNotarize::new(a, b)),
        }
    }

    fn drained(mut overflow: Overflowed) -> Vec<Message> {
        let mut kept = Vec::new();
        overflow.drain(|m| {
            kept.push(m);
            None
        });
        kept
    }

    #[test]
    fn a_full_inbox_keeps_the_newest_finalization_and_what_is_still_awaited() {
        let mut overflow = Overflowed::default();
        let (awaited, _waiting) = oneshot::channel();
        Message::handle(
            &mut overflow,
            Message::Verify {
                context: context(7),
                payload: digest(7),
                response: awaited,
            },
        );
        let (abandoned, given_up) = oneshot::channel();
        Message::handle(
            &mut overflow,
            Message::Propose {
                context: context(8),
                response: abandoned,
            },
        );
        drop(given_up);
        for n in 1..=200 {
            Message::handle(&mut overflow, finalized(n));
            Message::handle(&mut overflow, Message::Broadcast { payload: digest(n) });
        }
        // The verification still awaited, the newest finalization and the
        // newest broadcast; the abandoned proposal is gone.
        assert_eq!(overflow.len(), 3);
        let kept = drained(overflow);
        assert!(matches!(kept[0], Message::Verify { .. }));
        assert!(matches!(&kept[1], Message::Finalized { payload, .. } if *payload == digest(200)));
        assert!(matches!(&kept[2], Message::Broadcast { payload } if *payload == digest(200)));
    }

    #[test]
    fn offences_beyond_the_limit_are_dropped_from_the_overflow() {
        let mut overflow = Overflowed::default();
        for view in 1..=(OFFENCES_OVERFLOW_MAX as u64 * 3) {
            Message::handle(&mut overflow, offence(view));
        }
        assert_eq!(overflow.len(), OFFENCES_OVERFLOW_MAX);
        // The first ones are kept: each is evidence on its own.
        let Message::Offence { activity } = &drained(overflow)[0] else {
            panic!("an offence");
        };
        assert!(matches!(activity, Activity::ConflictingNotarize(c) if c.view().get() == 1));
    }

    #[test]
    fn an_engine_that_outpaces_the_application_cannot_grow_its_inbox() {
        deterministic::Runner::default().start(|runtime| async move {
            let capacity = 8;
            let (sender, mut receiver) =
                mailbox::new::<Message>(runtime, NonZeroUsize::new(capacity).expect("positive"));
            // A stalled application: the engine reports 100,000
            // finalizations, and asks for as many proposals, each given up
            // on when its view passes.
            for n in 0..100_000u32 {
                let _ = sender.enqueue(Message::Finalized {
                    payload: Digest::from([(n % 251) as u8; 32]),
                    certificate: n.to_be_bytes().to_vec(),
                });
                let (response, waiter) = oneshot::channel();
                let _ = sender.enqueue(Message::Propose {
                    context: context(u64::from(n) + 1),
                    response,
                });
                drop(waiter);
            }
            drop(sender);
            let mut delivered = Vec::new();
            while let Some(m) = receiver.recv().await {
                delivered.push(m);
            }
            // What fit in the queue, then from the overflow the newest
            // finalization and the last proposal (given up on only after
            // it was queued).
            assert!(
                delivered.len() <= capacity + 2,
                "{} delivered",
                delivered.len()
            );
            // The newest finalization arrives last of its kind: it covers
            // the rest.
            let Some(Message::Finalized { certificate, .. }) = delivered
                .iter()
                .rev()
                .find(|m| matches!(m, Message::Finalized { .. }))
            else {
                panic!("a finalization is delivered");
            };
            assert_eq!(certificate, &99_999u32.to_be_bytes().to_vec());
        });
    }
}
