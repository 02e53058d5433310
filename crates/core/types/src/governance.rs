//! Governance's payloads (C-1): admitting organisations, granting and
//! revoking roles, and the network's policy, each decided by a quorum of
//! the governing organisations' votes. Part of [`crate::Payload`].

use crate::{record, tagged, OrgId, PublicKey, Role};

record! {
    /// Admit a new organisation with its signing key (C-1).
    pub struct AdmitOrganisation {
        /// Its id.
        pub org: OrgId,
        /// The key its transactions are signed with.
        pub key: PublicKey,
        /// Whether it joins the governing organisations.
        pub governor: bool,
    }
}

record! {
    /// Grant or revoke a role.
    pub struct RoleChange {
        /// The organisation.
        pub org: OrgId,
        /// The role.
        pub role: Role,
    }
}

tagged! {
    /// A decision of the governing organisations, taken when a quorum
    /// (two thirds, rounded up) has signed the same action.
    pub enum GovernanceAction {
        /// Admit an organisation.
        Admit(AdmitOrganisation) = 1,
        /// Grant a role.
        Grant(RoleChange) = 2,
        /// Revoke a role.
        Revoke(RoleChange) = 3,
        /// Replace the network's policy.
        SetPolicy(NetworkPolicy) = 4,
    }
}

record! {
    /// The rules the governing organisations set for everyone, changed only
    /// by a governance action.
    pub struct NetworkPolicy {
        /// How far, in basis points of the asking price AP, an appraisal may
        /// differ from AP for the asset to be tokenized (SR-6); at most 10,000.
        pub appraisal_tolerance_bps: u16,
    }
}

impl NetworkPolicy {
    /// The most an appraisal tolerance may be: 100 %.
    pub const TOLERANCE_BPS_MAX: u16 = 10_000;
    /// The tolerance of a genesis that names none: 5 %.
    pub const TOLERANCE_BPS_DEFAULT: u16 = 500;
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            appraisal_tolerance_bps: Self::TOLERANCE_BPS_DEFAULT,
        }
    }
}

record! {
    /// A governing organisation's vote for an action; the first vote proposes it.
    pub struct Govern {
        /// The action voted for.
        pub action: GovernanceAction,
    }
}
