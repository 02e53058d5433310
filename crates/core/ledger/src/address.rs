//! Addresses the chain derives: wallets no key controls.

use sha2::{Digest, Sha256};
use tranche_types::{Did, OrgId, RequestId, TokenId, WalletAddress};

/// The wallet a token's revoked units go to (L-2). No key controls it.
pub fn revocation_wallet(token: &TokenId) -> WalletAddress {
    derived(
        b"tranche/revocation-wallet/v1",
        &[token.as_str().as_bytes()],
    )
}

/// The escrow wallet of an offering's subscriptions (REC-8). No key controls it.
pub fn escrow_wallet(offering: &RequestId) -> WalletAddress {
    derived(b"tranche/escrow-wallet/v1", &[offering.as_str().as_bytes()])
}

/// The pool wallet of a funded distribution (F5-9). No key controls it.
pub fn distribution_pool(distribution: &RequestId) -> WalletAddress {
    derived(
        b"tranche/distribution-pool/v1",
        &[distribution.as_str().as_bytes()],
    )
}

/// The pool wallet of a redemption's proceeds (F5-10). No key controls it.
pub fn redemption_pool(request: &RequestId) -> WalletAddress {
    derived(
        b"tranche/redemption-pool/v1",
        &[request.as_str().as_bytes()],
    )
}

/// The custodial wallet `custodian` keeps for `holder` (SR-3). No key controls it.
pub fn custodial_wallet(custodian: &OrgId, holder: &Did) -> WalletAddress {
    derived(
        b"tranche/custodial-wallet/v1",
        &[custodian.as_str().as_bytes(), holder.as_str().as_bytes()],
    )
}

fn derived(label: &[u8], parts: &[&[u8]]) -> WalletAddress {
    let mut h = Sha256::new();
    h.update(label);
    for p in parts {
        h.update((p.len() as u32).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 20];
    out.copy_from_slice(&d[..20]);
    WalletAddress(out)
}
