//! Consent (SR-3, SR-5): a wallet is bound to a DID only with the wallet
//! key's signature over the binding and the DID key's proof of control of
//! the DID, and a custodial wallet is opened only with the holder's signed
//! consent. So no organisation can make itself, or anyone else, a holder.
//!
//! Every DID the ledger records is a did:key that decodes to a usable
//! ed25519 key: the chain can check control only of a DID whose key it can
//! read from the DID itself.

use crate::reject;
use tranche_crypto::{is_valid_public_key, verify, Domain};
use tranche_identity::DidKey;
use tranche_types::commonware_codec::Encode;
use tranche_types::{
    ChainId, Did, OrgId, PublicKey, RegisterWallet, RejectCode, Rejection, Signature, WalletAddress,
};

/// The key a DID is controlled by, or why the ledger does not accept it.
pub fn did_key(did: &Did) -> Result<PublicKey, Rejection> {
    let key = DidKey::parse(did.as_str())
        .map_err(|e| {
            reject(
                RejectCode::InvalidDid,
                format!("{did} is not usable: {e}; make one with `tranche did new`"),
            )
        })?
        .public_key();
    if !is_valid_public_key(&key) {
        return Err(reject(
            RejectCode::InvalidDid,
            format!("{did} does not name a usable ed25519 key"),
        ));
    }
    Ok(key)
}

/// The DID controlled by `key`.
pub fn did_of_key(key: &PublicKey) -> Did {
    Did::parse(&DidKey::from_public_key(key).did()).expect("a did:key is a valid DID")
}

/// What the wallet key and the DID key sign to bind `wallet` to `did`
/// (each under its own domain, on the chain's id).
pub fn binding_message(wallet: &WalletAddress, did: &Did) -> Vec<u8> {
    let mut m = wallet.encode().to_vec();
    m.extend_from_slice(&did.encode());
    m
}

/// What a holder signs to let `custodian` keep a wallet for them.
pub fn custody_message(custodian: &OrgId, holder: &Did) -> Vec<u8> {
    let mut m = custodian.encode().to_vec();
    m.extend_from_slice(&holder.encode());
    m
}

fn signed_by(
    key: &PublicKey,
    domain: Domain,
    chain_id: &ChainId,
    message: &[u8],
    signature: &Signature,
) -> bool {
    verify(key, domain, chain_id, message, signature).is_ok()
}

/// Checks a binding's consent: the wallet is its key's, the wallet key
/// signed the binding, and the DID's own key proved control of the DID.
pub(crate) fn check_binding(chain_id: &ChainId, p: &RegisterWallet) -> Result<(), Rejection> {
    let did_key = did_key(&p.did)?;
    if !is_valid_public_key(&p.wallet_key) || p.wallet_key.address() != p.wallet {
        return Err(reject(
            RejectCode::InvalidField,
            format!(
                "wallet_key {} is not the usable key of wallet {}",
                p.wallet_key, p.wallet
            ),
        ));
    }
    let message = binding_message(&p.wallet, &p.did);
    if !signed_by(
        &p.wallet_key,
        Domain::WalletBinding,
        chain_id,
        &message,
        &p.wallet_signature,
    ) {
        return Err(reject(
            RejectCode::ConsentMissing,
            format!(
                "wallet_signature is not wallet {}'s consent to being bound to {}",
                p.wallet, p.did
            ),
        ));
    }
    if !signed_by(
        &did_key,
        Domain::DidControl,
        chain_id,
        &message,
        &p.did_signature,
    ) {
        return Err(reject(
            RejectCode::ConsentMissing,
            format!(
                "did_signature is not {}'s proof of control over binding wallet {}",
                p.did, p.wallet
            ),
        ));
    }
    Ok(())
}

/// Checks that `holder`'s own key consented to `custodian` keeping a wallet for it.
pub(crate) fn check_custody_consent(
    chain_id: &ChainId,
    custodian: &OrgId,
    holder: &Did,
    consent: &Signature,
) -> Result<(), Rejection> {
    let key = did_key(holder)?;
    if !signed_by(
        &key,
        Domain::CustodyConsent,
        chain_id,
        &custody_message(custodian, holder),
        consent,
    ) {
        return Err(reject(
            RejectCode::ConsentMissing,
            format!(
                "consent is not {holder}'s signed consent to {custodian} keeping a wallet for it"
            ),
        ));
    }
    Ok(())
}

/// The binding of `wallet`'s key to the DID of `did_key` on `chain_id`,
/// with both consents signed: a payload an onboarding organisation sends.
pub fn sign_binding(
    chain_id: &ChainId,
    wallet: &tranche_crypto::Keypair,
    did_key: &tranche_crypto::Keypair,
) -> RegisterWallet {
    let did = did_of_key(&did_key.public_key());
    let message = binding_message(&wallet.address(), &did);
    RegisterWallet {
        wallet: wallet.address(),
        wallet_key: wallet.public_key(),
        wallet_signature: wallet.sign(Domain::WalletBinding, chain_id, &message),
        did_signature: did_key.sign(Domain::DidControl, chain_id, &message),
        did,
    }
}

/// The holder's (`holder_key`'s DID's) signed consent to `custodian`
/// keeping a wallet for them: a payload the custodian sends.
pub fn sign_custody_consent(
    chain_id: &ChainId,
    custodian: &OrgId,
    holder_key: &tranche_crypto::Keypair,
) -> tranche_types::OpenCustodialWallet {
    let holder = did_of_key(&holder_key.public_key());
    tranche_types::OpenCustodialWallet {
        consent: holder_key.sign(
            Domain::CustodyConsent,
            chain_id,
            &custody_message(custodian, &holder),
        ),
        holder,
    }
}
