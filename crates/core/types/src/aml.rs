//! The AML regulator's policy (F6-1): published on chain in numbered
//! versions, each taking effect at a block height, read and enforced by
//! exchanges and custodians and used by the regulator's own monitoring.
//! Part of [`crate::Payload`].

use crate::codec::BoundedVec;
use crate::{record, CountryCode, Did, TokenId, Units};

/// Most per-asset limits in one policy.
pub const AML_LIMITS_MAX: usize = 32;
/// Most blocked jurisdictions in one policy.
pub const AML_BLOCKED_MAX: usize = 64;
/// Most sanctioned identities in one policy (a policy stays well inside a
/// transaction's bytes).
pub const AML_SANCTIONED_MAX: usize = 256;

record! {
    /// The limits on one asset that trades are paid in, each in that
    /// asset's minor units (cents for USD, a token's units on chain). A
    /// zero limit means none.
    pub struct AmlLimit {
        /// A currency code kept at an exchange (`USD`, `KRW`, `BTC`) or a
        /// token on chain (a CBDC, a deposit token, a security token).
        pub asset: TokenId,
        /// A trade or transfer of at least this value is large: reported
        /// and watched for structuring just under it.
        pub large_value: Units,
        /// The most one identity may commit to in orders in one UTC day.
        pub daily_value_max: Units,
        /// A transfer between organisations of at least this value carries
        /// originator and beneficiary data (the travel rule).
        pub travel_rule_value: Units,
    }
}

record! {
    /// What the AML regulator requires (F6-1).
    pub struct AmlPolicy {
        /// How often exchanges report their trades, in seconds.
        pub report_period_secs: u32,
        /// Limits per asset.
        pub limits: BoundedVec<AmlLimit, AML_LIMITS_MAX>,
        /// Residents of these countries may not trade.
        pub blocked_countries: BoundedVec<CountryCode, AML_BLOCKED_MAX>,
        /// These identities may not trade or receive.
        pub sanctioned: BoundedVec<Did, AML_SANCTIONED_MAX>,
    }
}

impl AmlPolicy {
    /// The limits on `asset`, if the policy sets any.
    pub fn limit(&self, asset: &str) -> Option<&AmlLimit> {
        self.limits.iter().find(|l| l.asset.as_str() == asset)
    }

    /// Whether `did` is on the sanctions list.
    pub fn is_sanctioned(&self, did: &str) -> bool {
        self.sanctioned.iter().any(|d| d.as_str() == did)
    }

    /// Whether residents of `country` are barred.
    pub fn is_blocked(&self, country: &CountryCode) -> bool {
        self.blocked_countries.contains(country)
    }
}

record! {
    /// An AML regulator publishes the next version of the policy; it takes
    /// effect at `effective_height`, after the block that carries it.
    pub struct PublishAmlPolicy {
        /// The version: one more than the last published.
        pub version: u32,
        /// The first block the policy governs.
        pub effective_height: u64,
        /// The policy.
        pub policy: AmlPolicy,
    }
}
