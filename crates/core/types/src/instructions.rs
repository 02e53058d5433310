//! Settlement instructions: several legs among several parties, created by
//! anyone, affirmed by each party whose wallet gives (in a fixed order if
//! the instruction says so), carried out atomically when the last affirms,
//! cancelled by any party before, void after a deadline. Part of
//! [`crate::Payload`]. The one-shot `settle` stays for exchanges.

use crate::{record, BoundedVec, Leg, RequestId, Timestamp};

/// Most legs in one instruction.
pub const INSTRUCTION_LEGS_MAX: usize = 16;

record! {
    /// A settlement instruction: its legs wait for the affirmation of each
    /// wallet that gives in them.
    pub struct CreateInstruction {
        /// The instruction's id, unique on the chain.
        pub instruction: RequestId,
        /// The legs, carried out in order, all or none.
        pub legs: BoundedVec<Leg, INSTRUCTION_LEGS_MAX>,
        /// The giving wallets affirm in the order they first give in the
        /// legs (the approvers' fixed order); else in any order.
        pub ordered: bool,
        /// Affirmations count before this block time; after it the
        /// instruction is void.
        pub deadline: Timestamp,
    }
}

record! {
    /// A party whose wallet gives in the instruction affirms it (the
    /// signer's wallet); the last affirmation carries it out.
    pub struct AffirmInstruction {
        /// The instruction.
        pub instruction: RequestId,
    }
}

record! {
    /// A party (a wallet that gives or receives in it) or its creator
    /// cancels the instruction before it is carried out.
    pub struct CancelInstruction {
        /// The instruction.
        pub instruction: RequestId,
    }
}
