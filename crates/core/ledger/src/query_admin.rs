//! What a token's administration shows: its rules' versions, the claim
//! issuers it trusts, its documents and their history, the transfers its
//! agent approved, its ballots, and every reason a transfer would be
//! refused.

use crate::state::{
    Ballot, Document, DocumentChange, Hold, Instruction, Lockup, RuleVersion, Vote,
};
use crate::{compliance, BlockContext, Ledger};
use tranche_types::{
    BoundedVec, ClaimTopic, Did, DocumentName, OrgId, Rejection, RequestId, TokenId, Units,
    WalletAddress, TRUSTED_ISSUERS_MAX,
};

impl Ledger {
    /// Every reason a holder transfer would be refused now, each with its
    /// stable code; empty if it would be applied. The same checks, in the
    /// same code, as the transfer itself: a transfer stops at the first of
    /// these, the pre-check goes on to the last.
    pub fn transfer_reasons(
        &self,
        ctx: &BlockContext,
        token: &TokenId,
        from: &WalletAddress,
        to: &WalletAddress,
        amount: Units,
    ) -> Vec<Rejection> {
        let mut reasons = compliance::Reasons::every();
        let end = compliance::check_into(
            self.state(),
            ctx,
            token,
            from,
            to,
            amount,
            compliance::Mode::Holder,
            &mut reasons,
        );
        reasons.finish(end)
    }

    /// A token's earlier rules, oldest first (the rules in force are the
    /// token's own).
    pub fn rule_versions<'a>(
        &'a self,
        token: &TokenId,
    ) -> impl Iterator<Item = (u32, &'a RuleVersion)> + 'a {
        let id = token.clone();
        self.state()
            .rule_versions
            .range((id.clone(), 0)..)
            .take_while(move |((t, _), _)| *t == id)
            .map(|((_, v), r)| (*v, r))
    }

    /// The claim issuers a token trusts, by topic; a topic not listed
    /// trusts every claim issuer.
    pub fn trusted_issuers<'a>(
        &'a self,
        token: &TokenId,
    ) -> impl Iterator<Item = (ClaimTopic, &'a BoundedVec<OrgId, TRUSTED_ISSUERS_MAX>)> + 'a {
        let id = token.clone();
        self.state()
            .trusted_issuers
            .range((id.clone(), ClaimTopic(0))..)
            .take_while(move |((t, _), _)| *t == id)
            .map(|((_, topic), list)| (*topic, list))
    }

    /// A token's documents by name.
    pub fn documents<'a>(
        &'a self,
        token: &TokenId,
    ) -> impl Iterator<Item = (&'a DocumentName, &'a Document)> + 'a {
        let id = token.clone();
        let first = DocumentName::new("-").expect("'-' is a valid document name");
        self.state()
            .documents
            .range((id.clone(), first)..)
            .take_while(move |((t, _), _)| *t == id)
            .map(|((_, name), d)| (name, d))
    }

    /// Every change to a token's documents, oldest first.
    pub fn document_history<'a>(
        &'a self,
        token: &TokenId,
    ) -> impl Iterator<Item = &'a DocumentChange> + 'a {
        let id = token.clone();
        self.state()
            .document_history
            .range((id.clone(), 0)..)
            .take_while(move |((t, _), _)| *t == id)
            .map(|(_, c)| c)
    }

    /// The agent's outstanding approvals of a token's transfers: (from, to,
    /// amount) and how many times each may still be used.
    pub fn transfer_approvals<'a>(
        &'a self,
        token: &TokenId,
    ) -> impl Iterator<Item = (WalletAddress, WalletAddress, Units, u32)> + 'a {
        let id = token.clone();
        let zero = WalletAddress([0; 20]);
        self.state()
            .transfer_approvals
            .range((id.clone(), zero, zero, Units::ZERO)..)
            .take_while(move |((t, ..), _)| *t == id)
            .map(|((_, from, to, amount), n)| (*from, *to, *amount, *n))
    }

    /// A ballot and its tally, if there is one.
    pub fn ballot(&self, ballot: &RequestId) -> Option<&Ballot> {
        self.state().ballots.get(ballot)
    }

    /// The identities a token's agent exempted from its limits.
    pub fn limit_exemptions<'a>(&'a self, token: &TokenId) -> impl Iterator<Item = &'a Did> + 'a {
        let id = token.clone();
        let first = Did::new("%").expect("'%' is the lowest DID character");
        self.state()
            .limit_exemptions
            .range((id.clone(), first)..)
            .take_while(move |((t, _), _)| *t == id)
            .map(|((_, d), _)| d)
    }

    /// A settlement instruction, if there is one.
    pub fn instruction(&self, instruction: &RequestId) -> Option<&Instruction> {
        self.state().instructions.get(instruction)
    }

    /// The units of a wallet's balance its issuance allocation locked up,
    /// if any are still recorded (a lock-up whose day has come is gone at
    /// the wallet's next debit).
    pub fn lockup(&self, token: &TokenId, wallet: &WalletAddress) -> Option<&Lockup> {
        self.state().lockups.get(&(token.clone(), *wallet))
    }

    /// A hold, if there is one.
    pub fn hold(&self, hold: &RequestId) -> Option<&Hold> {
        self.state().holds.get(hold)
    }

    /// Units of a wallet's balance its open holds hold at `ctx`'s time.
    pub fn held(&self, ctx: &BlockContext, token: &TokenId, wallet: &WalletAddress) -> Units {
        compliance::live_holds(self.state(), ctx, token, wallet)
    }

    /// A wallet's vote in a ballot, if it voted.
    pub fn ballot_vote(&self, ballot: &RequestId, wallet: &WalletAddress) -> Option<&Vote> {
        self.state().ballot_votes.get(&(ballot.clone(), *wallet))
    }
}
