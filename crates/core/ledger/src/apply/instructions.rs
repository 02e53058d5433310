//! Settlement instructions: created by anyone, affirmed by each wallet that
//! gives in them (in the order of the legs when the instruction is
//! ordered), carried out atomically by the last affirmation, cancelled by
//! any party before, void after their deadline. A last affirmation whose
//! legs the rules refuse (an overdraft, a frozen wallet, a receiver the
//! token does not allow) is applied: it fails the instruction and records
//! why, for anyone to inspect.

use super::*;
use crate::state::{Instruction, InstructionState};

/// The wallets that give in `legs`, in the order they first give.
fn givers(legs: &[Leg]) -> Vec<WalletAddress> {
    let mut out: Vec<WalletAddress> = Vec::new();
    for l in legs {
        if !out.contains(&l.from) {
            out.push(l.from);
        }
    }
    out
}

fn instruction_of(state: &State, id: &RequestId) -> Result<Instruction, Rejection> {
    state.instructions.get(id).cloned().ok_or_else(|| {
        reject(
            RejectCode::UnknownInstruction,
            format!("no settlement instruction {id} exists"),
        )
    })
}

fn pending(i: &Instruction, id: &RequestId) -> Result<(), Rejection> {
    if i.state != InstructionState::Pending {
        return Err(reject(
            RejectCode::InstructionClosed,
            format!("instruction {id} is {:?} already", i.state),
        ));
    }
    Ok(())
}

pub(super) fn create_instruction(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CreateInstruction,
) -> Result<(), Rejection> {
    if state.instructions.contains_key(&p.instruction) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("instruction {} exists already", p.instruction),
        ));
    }
    if p.legs.is_empty() {
        return Err(reject(
            RejectCode::InvalidField,
            "an instruction needs at least one leg",
        ));
    }
    if p.deadline <= tx.ctx.time {
        return Err(reject(
            RejectCode::InvalidField,
            format!(
                "the deadline must be after this block's time {}",
                tx.ctx.time
            ),
        ));
    }
    for l in p.legs.iter() {
        token(state, &l.token)?;
        refuse_revocation_wallet(&l.token, &l.from)?;
        if l.amount.is_zero() {
            return Err(reject(
                RejectCode::ZeroAmount,
                "every leg moves at least one unit",
            ));
        }
        if l.from == l.to {
            return Err(reject(
                RejectCode::InvalidField,
                "a leg goes from one wallet to another",
            ));
        }
    }
    state.instructions.insert(
        p.instruction.clone(),
        Instruction {
            creator: tx.signer_wallet(),
            legs: p.legs.clone(),
            ordered: p.ordered,
            deadline: p.deadline,
            affirmed: BoundedVec::default(),
            state: InstructionState::Pending,
            failure: None,
            height: tx.ctx.height,
        },
    );
    Ok(())
}

pub(super) fn affirm_instruction(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &AffirmInstruction,
) -> Result<(), Rejection> {
    let id = &p.instruction;
    let i = instruction_of(state, id)?;
    pending(&i, id)?;
    if tx.ctx.time >= i.deadline {
        return Err(reject(
            RejectCode::InstructionExpired,
            format!("instruction {id} took affirmations until {}", i.deadline),
        ));
    }
    let wallet = tx.signer_wallet();
    let givers = givers(&i.legs);
    if !givers.contains(&wallet) {
        return Err(reject(
            RejectCode::NotAParty,
            format!("{wallet} gives nothing in instruction {id}: only its givers affirm"),
        ));
    }
    if i.affirmed.contains(&wallet) {
        return Err(reject(
            RejectCode::AlreadyAffirmed,
            format!("{wallet} affirmed instruction {id} already"),
        ));
    }
    if i.ordered {
        let next = givers[i.affirmed.len()];
        if next != wallet {
            return Err(reject(
                RejectCode::NotYourTurn,
                format!("instruction {id} is affirmed in order; {next} affirms next"),
            ));
        }
    }
    let mut affirmed = i.affirmed.0.clone();
    affirmed.push(wallet);
    let last = affirmed.len() == givers.len();
    {
        let rec = state.instructions.get_mut(id).expect("found above");
        rec.affirmed = BoundedVec(affirmed);
    }
    if !last {
        return Ok(());
    }
    // The last affirmation: the legs as a settlement; refused, they are put
    // back and the instruction fails with the reason, while this
    // affirmation stands.
    if let Err(r) = holder_legs(state, tx.ctx, &i.legs) {
        let rec = state.instructions.get_mut(id).expect("found above");
        rec.state = InstructionState::Failed;
        rec.failure = Some(r);
        return Ok(());
    }
    state.instructions.get_mut(id).expect("found above").state = InstructionState::Executed;
    let reference = Reference::new(id.as_str()).expect("request ids are references");
    for leg in i.legs.iter() {
        tx.record(
            &leg.token,
            Some(leg.from),
            leg.to,
            leg.amount,
            TransferKind::Settlement,
        )
        .reference = Some(reference.clone());
    }
    Ok(())
}

pub(super) fn cancel_instruction(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CancelInstruction,
) -> Result<(), Rejection> {
    let id = &p.instruction;
    let i = instruction_of(state, id)?;
    pending(&i, id)?;
    let wallet = tx.signer_wallet();
    let party = wallet == i.creator || i.legs.iter().any(|l| l.from == wallet || l.to == wallet);
    if !party {
        return Err(reject(
            RejectCode::NotAParty,
            format!("{wallet} is no party to instruction {id}"),
        ));
    }
    state.instructions.get_mut(id).expect("found above").state = InstructionState::Cancelled;
    Ok(())
}
