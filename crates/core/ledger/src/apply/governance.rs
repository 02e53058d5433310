//! Governance (C-1): admission and roles by a two-thirds quorum of the
//! governing organisations, and separation of duties (SR-1, SR-2, REC-1).

use super::*;

/// Whether a set of roles breaks separation of duties (SR-1, SR-2, REC-1).
pub fn violates_separation(roles: Roles) -> bool {
    roles.has(Role::Issuer) && (roles.has(Role::Tsp) || roles.has(Role::Exchange))
}

/// The number of governors' votes an action needs: two thirds, rounded up.
pub fn quorum(governors: usize) -> usize {
    (2 * governors).div_ceil(3).max(1)
}

pub(super) fn govern(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    action: &GovernanceAction,
) -> Result<(), Rejection> {
    let org = any_org(state, signer)?;
    if !state.orgs[&org].governor {
        return Err(reject(
            RejectCode::NotGovernor,
            format!("{org} does not govern"),
        ));
    }
    // The action must be possible now, or the vote is refused.
    validate_action(state, action)?;
    let digest = Hash::digest(b"tranche/governance/v1", &action.encode());
    let voters = state.votes.entry(digest).or_default();
    if voters.contains(&org) {
        return Err(reject(
            RejectCode::AlreadyVoted,
            format!("{org} voted for this already"),
        ));
    }
    voters.push(org.clone());
    voters.sort();
    let votes = voters.len();
    let governors = state.orgs.values().filter(|o| o.governor).count();
    let needed = quorum(governors);
    tx.events.push(LedgerEvent::GovernanceVote {
        action: digest,
        org,
        votes: votes as u32,
        quorum: needed as u32,
    });
    if votes >= needed {
        state.votes.remove(&digest);
        match action {
            GovernanceAction::Admit(a) => {
                state.org_by_key.insert(a.key, a.org.clone());
                state.orgs.insert(
                    a.org.clone(),
                    Organisation {
                        key: a.key,
                        roles: Roles::default(),
                        governor: a.governor,
                    },
                );
            }
            GovernanceAction::Grant(c) => {
                let o = state.orgs.get_mut(&c.org).expect("validated");
                o.roles = o.roles.with(c.role);
            }
            GovernanceAction::Revoke(c) => {
                let o = state.orgs.get_mut(&c.org).expect("validated");
                o.roles = o.roles.without(c.role);
            }
            GovernanceAction::SetPolicy(policy) => {
                state.params.policy = policy.clone();
            }
        }
        tx.events
            .push(LedgerEvent::GovernanceExecuted { action: digest });
    }
    Ok(())
}

pub(super) fn validate_action(state: &State, action: &GovernanceAction) -> Result<(), Rejection> {
    match action {
        GovernanceAction::Admit(a) => {
            if state.orgs.contains_key(&a.org) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("{} is admitted already", a.org),
                ));
            }
            if let Some(o) = state.org_by_key.get(&a.key) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("the key belongs to {o} already"),
                ));
            }
            Ok(())
        }
        GovernanceAction::Grant(c) => {
            let o = state.orgs.get(&c.org).ok_or_else(|| unknown_org(&c.org))?;
            if violates_separation(o.roles.with(c.role)) {
                return Err(reject(
                    RejectCode::SeparationOfDuties,
                    format!(
                        "{} would hold {:?} with {:?}: an issuer may not be a TSP or an exchange",
                        c.org,
                        c.role,
                        o.roles.list()
                    ),
                ));
            }
            Ok(())
        }
        GovernanceAction::Revoke(c) => {
            state.orgs.get(&c.org).ok_or_else(|| unknown_org(&c.org))?;
            Ok(())
        }
        GovernanceAction::SetPolicy(policy) => {
            if policy.appraisal_tolerance_bps > NetworkPolicy::TOLERANCE_BPS_MAX {
                return Err(reject(
                    RejectCode::InvalidField,
                    format!(
                        "appraisal_tolerance_bps is at most {} (100 %), not {}",
                        NetworkPolicy::TOLERANCE_BPS_MAX,
                        policy.appraisal_tolerance_bps
                    ),
                ));
            }
            if *policy == state.params.policy {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    "the network's policy is that already",
                ));
            }
            Ok(())
        }
    }
}
