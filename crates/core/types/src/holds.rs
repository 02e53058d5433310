//! Holds: part of a holder's balance set aside for a named notary until an
//! expiry; the notary executes it (to the named receiver, the token's rules
//! checked) or releases it, and expiry releases it. Part of
//! [`crate::Payload`].

use crate::{record, RequestId, Timestamp, TokenId, Units, WalletAddress};

/// Most open holds on one wallet for one token.
pub const WALLET_HOLDS_MAX: usize = 32;

record! {
    /// The holder (the signer's wallet) holds `amount` of its balance for a
    /// notary until `expiry`: held units cannot be spent otherwise.
    pub struct CreateHold {
        /// The hold's id, unique on the chain.
        pub hold: RequestId,
        /// The token.
        pub token: TokenId,
        /// The units held.
        pub amount: Units,
        /// The wallet whose key executes or releases it (an escrow agent,
        /// an exchange, a lawyer).
        pub notary: WalletAddress,
        /// Where the units go if it is executed; `None`: the notary names
        /// the receiver when it executes.
        pub receiver: Option<WalletAddress>,
        /// Executable before this block time; released from it on.
        pub expiry: Timestamp,
    }
}

record! {
    /// The notary executes a hold: its units move from the holder to the
    /// receiver, the token's rules checked as for the holder's own transfer.
    pub struct ExecuteHold {
        /// The hold.
        pub hold: RequestId,
        /// The receiver, if the hold did not name one (else it must be that one).
        pub to: Option<WalletAddress>,
    }
}

record! {
    /// A hold is released, its units free again: by its notary at any
    /// time, by anyone once it has expired.
    pub struct ReleaseHold {
        /// The hold.
        pub hold: RequestId,
    }
}
