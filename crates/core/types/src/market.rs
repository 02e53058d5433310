//! The primary market's payloads (F5-3..F5-10, REC-8): offerings paid into
//! escrow, their close, issuance and release, and distributions paid from a
//! pool. Part of [`crate::Payload`].

use crate::{
    record, AssetId, Date, Money, OrgId, RequestId, Timestamp, TokenId, TokenRules, Units,
    WalletAddress,
};

record! {
    /// A TSP offers an appraised asset's tokens for subscription (F5-3,
    /// F5-4), paid in an escrow bank's deposit token into an escrow no key
    /// controls (REC-8). The terms are checked as an issuance request's are.
    pub struct OpenOffering {
        /// The offering's id; its issuance is known by it too.
        pub offering: RequestId,
        /// The asset tokenized.
        pub asset: AssetId,
        /// The token to issue.
        pub token: TokenId,
        /// The price of one token, SP.
        pub unit_price: Money,
        /// AP / SP tokens offered.
        pub amount: Units,
        /// Least units one investor (identity) subscribes in total.
        pub min_units: Units,
        /// Most units one investor subscribes in total; 0 means no limit.
        pub max_units: Units,
        /// Below this many units subscribed, everyone is refunded.
        pub soft_cap: Units,
        /// Subscriptions from this block time on.
        pub opens: Timestamp,
        /// ... until this block time (excluded); the close may start then.
        pub closes: Timestamp,
        /// The issuer that will issue.
        pub issuer: OrgId,
        /// The escrow bank whose deposit token pays.
        pub bank: OrgId,
        /// That deposit token.
        pub cash_token: TokenId,
        /// First day of the token's life (L-3).
        pub issue_date: Date,
        /// Last day of the token's life (L-3).
        pub expiry_date: Date,
        /// The token's compliance rules; subscribers must pass them.
        pub rules: TokenRules,
        /// Every allocation's lock-up: the units issued from this offering
        /// cannot move before this day (the wallet's other units can).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lockup_until: Option<Date>,
    }
}

record! {
    /// An investor subscribes from the signing wallet: units × SP of the
    /// deposit token move into the offering's escrow (F5-3).
    pub struct Subscribe {
        /// The offering.
        pub offering: RequestId,
        /// Units subscribed.
        pub units: Units,
    }
}

record! {
    /// Closes an offering after its window, walking at most `max`
    /// subscriptions: refunds below the soft cap, else fixes allocations
    /// (F5-6). Anyone may send it; send it again until it is complete.
    pub struct CloseOffering {
        /// The offering.
        pub offering: RequestId,
        /// Most subscriptions walked (1 to 1,000).
        pub max: u32,
    }
}

record! {
    /// The named issuer issues a closed offering's allocations, exactly as
    /// fixed, at most `max` subscriptions a transaction (F5-5, ST-1).
    pub struct IssueOffering {
        /// The offering.
        pub offering: RequestId,
        /// Most subscriptions walked (1 to 1,000).
        pub max: u32,
    }
}

record! {
    /// The escrow bank releases a fully issued offering's proceeds to a
    /// wallet of the asset's owner (F5-8).
    pub struct ReleaseProceeds {
        /// The offering.
        pub offering: RequestId,
        /// The owner's wallet.
        pub to: WalletAddress,
    }
}

record! {
    /// The TSP puts a declared distribution's money on chain (F5-9): the
    /// entitlements' sum, in a cash token of its currency, from the signing
    /// wallet into the distribution's pool, claimable until `deadline`.
    pub struct FundDistribution {
        /// The distribution.
        pub distribution: RequestId,
        /// The cash (deposit) token paid in.
        pub cash_token: TokenId,
        /// Claims until this block time (excluded); then the TSP reclaims.
        pub deadline: Timestamp,
    }
}

record! {
    /// A holder claims its entitlement to the signing wallet (F5-9); a
    /// custodian, for a custodial wallet it keeps.
    pub struct ClaimDistribution {
        /// The distribution.
        pub distribution: RequestId,
        /// The custodial wallet claimed for, by its custodian; none for the
        /// signer's own wallet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub custodial_wallet: Option<WalletAddress>,
    }
}

record! {
    /// After the deadline the TSP takes back what was not claimed.
    pub struct ReclaimDistribution {
        /// The distribution.
        pub distribution: RequestId,
    }
}
