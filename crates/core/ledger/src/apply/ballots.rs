//! Ballots of a token's holders: the agent opens one on a checkpoint with
//! its choices and a window in block time; each wallet that held the token
//! at the checkpoint votes once inside the window, with the weight of that
//! balance; the tally is kept as the votes come.

use super::*;
use crate::state::{Ballot, Vote};

pub(super) fn open_ballot(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &OpenBallot,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    if state.ballots.contains_key(&p.ballot) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("ballot {} exists already", p.ballot),
        ));
    }
    if p.choices.len() < 2 {
        return Err(reject(
            RejectCode::InvalidField,
            "a ballot offers 2 to 16 choices",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = p.choices.iter().find(|c| !seen.insert(*c)) {
        return Err(reject(
            RejectCode::InvalidField,
            format!("choice {twice} is named twice"),
        ));
    }
    if p.closes <= p.opens || p.closes <= tx.ctx.time {
        return Err(reject(
            RejectCode::InvalidField,
            "a ballot closes after it opens, and after this block",
        ));
    }
    let checkpoint = match p.checkpoint {
        Some(n) => {
            if !state.checkpoints.contains_key(&(p.token.clone(), n)) {
                return Err(reject(
                    RejectCode::UnknownCheckpoint,
                    format!("{} has no checkpoint {n}", p.token),
                ));
            }
            n
        }
        None => take_checkpoint(state, &p.token, tx.ctx.height),
    };
    state.ballots.insert(
        p.ballot.clone(),
        Ballot {
            agent: agent.clone(),
            token: p.token.clone(),
            checkpoint,
            choices: p.choices.clone(),
            tally: BoundedVec(vec![Units::ZERO; p.choices.len()]),
            opens: p.opens,
            closes: p.closes,
            voters: 0,
            height: tx.ctx.height,
        },
    );
    tx.events.push(agent_event(&p.token, agent, "open_ballot"));
    Ok(())
}

pub(super) fn cast_vote(state: &mut State, tx: &mut Tx<'_>, p: &CastVote) -> Result<(), Rejection> {
    let wallet = tx.signer_wallet();
    let b = state.ballots.get(&p.ballot).ok_or_else(|| {
        reject(
            RejectCode::UnknownBallot,
            format!("no ballot {} exists", p.ballot),
        )
    })?;
    let now = tx.ctx.time;
    if now < b.opens || now >= b.closes {
        return Err(reject(
            RejectCode::BallotClosed,
            format!(
                "ballot {} takes votes from {} to {}; the block time is {now}",
                p.ballot, b.opens, b.closes
            ),
        ));
    }
    let choice = usize::from(p.choice);
    if choice >= b.choices.len() {
        return Err(reject(
            RejectCode::InvalidField,
            format!(
                "ballot {} has choices 0 to {}",
                p.ballot,
                b.choices.len() - 1
            ),
        ));
    }
    if state.ballot_votes.contains_key(&(p.ballot.clone(), wallet)) {
        return Err(reject(
            RejectCode::VoteCast,
            format!("{wallet} voted in ballot {} already", p.ballot),
        ));
    }
    let weight = state
        .checkpoint_balances
        .get(&(b.token.clone(), b.checkpoint, wallet))
        .copied()
        .unwrap_or(Units::ZERO);
    if weight.is_zero() {
        return Err(reject(
            RejectCode::NoVotingWeight,
            format!(
                "{wallet} held no {} at checkpoint {}",
                b.token, b.checkpoint
            ),
        ));
    }
    let b = state.ballots.get_mut(&p.ballot).expect("found above");
    b.tally.0[choice] = b.tally.0[choice]
        .checked_add(weight)
        .expect("a checkpoint's balances add up to its supply");
    b.voters += 1;
    state.ballot_votes.insert(
        (p.ballot.clone(), wallet),
        Vote {
            choice: p.choice,
            weight,
            height: tx.ctx.height,
        },
    );
    Ok(())
}
