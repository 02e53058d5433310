//! The transaction batch check against ed25519-zebra's own verifiers: over
//! thousands of batches mixing good signatures with adversarial ones
//! (non-canonical `s`, small-order and mixed-order `R` and keys,
//! non-canonical encodings, duplicates, one key many times), our single and
//! batch verdicts are the library's, except that a small-order key is
//! refused outright (anyone can sign for it under ZIP-215's equation).

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity as _;
use proptest::prelude::*;
use sha2::{Digest as _, Sha512};
use tranche_crypto::*;
use tranche_types::*;

fn chain() -> ChainId {
    ChainId::new("alpha").unwrap()
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn transfer(signer: PublicKey, nonce: u64) -> Transaction {
    Transaction {
        chain_id: chain(),
        signer,
        nonce,
        valid_until: Timestamp(1_800_000_000_000),
        payload: Payload::Transfer(Transfer {
            token: TokenId::new("T-1").unwrap(),
            to: key(9).address(),
            amount: Units(5),
            reference: None,
        }),
    }
}

/// The eight points of order dividing 8, found as the torsion part of a
/// point: P minus its prime-order part (8⁻¹ · 8P).
fn torsion() -> Vec<EdwardsPoint> {
    let eighth = Scalar::from(8u8).invert();
    let order_eight = (0u8..=255)
        .filter_map(|b| CompressedEdwardsY([b; 32]).decompress())
        .map(|p| p - eighth * p.mul_by_cofactor())
        .find(|t| t + t + t + t != EdwardsPoint::identity())
        .expect("some point has a torsion part of order 8");
    let mut points = vec![EdwardsPoint::identity()];
    for _ in 1..8 {
        points.push(points.last().unwrap() + order_eight);
    }
    points
}

/// Encodings of small-order points that are not the canonical ones: `y`
/// given as `y + p` (for y = 0 and y = 1), and x = 0 with the sign bit set.
/// ZIP-215 decodes them all.
fn odd_encodings() -> Vec<[u8; 32]> {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_plus_one = p;
    p_plus_one[0] = 0xee;
    let mut negative_identity = [0u8; 32];
    negative_identity[0] = 1;
    negative_identity[31] = 0x80;
    let mut out = vec![negative_identity];
    for y in [p, p_plus_one] {
        let mut signed = y;
        signed[31] |= 0x80;
        out.push(y);
        out.push(signed);
    }
    out
}

/// A batch member: how its signature is made or spoiled.
#[derive(Clone, Copy, Debug)]
enum Member {
    /// Signed by key `n`, untouched.
    Good(u8),
    /// A bit of R flipped, which may leave it off the curve.
    FlipR(u8, u8),
    /// A bit of s flipped, which may leave it non-canonical.
    FlipS(u8, u8),
    /// s + l: the same value, encoded non-canonically.
    HighS(u8),
    /// The transaction changed after signing.
    Message(u8),
    /// R replaced by the small-order point `t`.
    SmallOrderR(u8, u8),
    /// A small-order key (point `t`, or an odd encoding `e` of one) with
    /// R = a small-order point and s = 0: the cofactored equation holds for
    /// any message.
    SmallOrderKey(u8, u8),
    /// A key with a torsion part (aB + T), signed honestly for it: the
    /// cofactored equation holds, the cofactorless one may not.
    MixedOrderKey(u8, u8),
    /// R with a torsion part (rB + T) in an otherwise honest signature.
    MixedOrderR(u8, u8),
    /// The previous member again, byte for byte.
    Duplicate,
}

fn member() -> impl Strategy<Value = Member> {
    let signer = 1u8..6;
    prop_oneof![
        6 => signer.clone().prop_map(Member::Good),
        1 => (signer.clone(), any::<u8>()).prop_map(|(k, b)| Member::FlipR(k, b)),
        1 => (signer.clone(), any::<u8>()).prop_map(|(k, b)| Member::FlipS(k, b)),
        1 => signer.clone().prop_map(Member::HighS),
        1 => signer.clone().prop_map(Member::Message),
        1 => (signer.clone(), 0u8..8).prop_map(|(k, t)| Member::SmallOrderR(k, t)),
        1 => (0u8..13, 0u8..13).prop_map(|(a, r)| Member::SmallOrderKey(a, r)),
        1 => (signer.clone(), 1u8..8).prop_map(|(k, t)| Member::MixedOrderKey(k, t)),
        1 => (signer, 1u8..8).prop_map(|(k, t)| Member::MixedOrderR(k, t)),
        1 => Just(Member::Duplicate),
    ]
}

/// The 32-byte encodings of small-order points: the eight canonical ones,
/// then the odd ones.
fn small_order(points: &[EdwardsPoint], i: u8) -> [u8; 32] {
    let odd = odd_encodings();
    let i = usize::from(i);
    if i < points.len() {
        points[i].compress().0
    } else {
        odd[(i - points.len()) % odd.len()]
    }
}

fn scalar_of(seed: u8, what: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(what)
        .chain_update([seed])
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// An honest signature by secret `a` for the key encoded `key` (which may
/// carry a torsion part) with nonce point R = rB + `r_torsion`.
fn sign_raw(
    a: Scalar,
    key: [u8; 32],
    r: Scalar,
    r_torsion: EdwardsPoint,
    nonce: u64,
) -> SignedTransaction {
    let tx = transfer(PublicKey(key), nonce);
    let message = signing_message(Domain::Transaction, &chain(), &tx.to_bytes());
    let big_r = (r * ED25519_BASEPOINT_POINT + r_torsion).compress().0;
    let k: [u8; 64] = Sha512::new()
        .chain_update(big_r)
        .chain_update(key)
        .chain_update(&message)
        .finalize()
        .into();
    let s = r + Scalar::from_bytes_mod_order_wide(&k) * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&big_r);
    signature[32..].copy_from_slice(s.as_bytes());
    SignedTransaction {
        tx,
        signature: Signature(signature),
    }
}

fn build(members: &[Member], points: &[EdwardsPoint]) -> Vec<SignedTransaction> {
    let mut out: Vec<SignedTransaction> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let nonce = i as u64;
        let honest = |k: u8| {
            let k = key(k);
            sign_transaction(&k, transfer(k.public_key(), nonce)).unwrap()
        };
        let stx = match *m {
            Member::Good(k) => honest(k),
            Member::FlipR(k, bit) => {
                let mut stx = honest(k);
                stx.signature.0[usize::from(bit / 8)] ^= 1 << (bit % 8);
                stx
            }
            Member::FlipS(k, bit) => {
                let mut stx = honest(k);
                stx.signature.0[32 + usize::from(bit / 8)] ^= 1 << (bit % 8);
                stx
            }
            Member::HighS(k) => {
                let mut stx = honest(k);
                add_l(&mut stx.signature.0[32..]);
                stx
            }
            Member::Message(k) => {
                let mut stx = honest(k);
                stx.tx.nonce += 1_000;
                stx
            }
            Member::SmallOrderR(k, t) => {
                let mut stx = honest(k);
                stx.signature.0[..32].copy_from_slice(&small_order(points, t));
                stx
            }
            Member::SmallOrderKey(a, r) => {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(&small_order(points, r));
                SignedTransaction {
                    tx: transfer(PublicKey(small_order(points, a)), nonce),
                    signature: Signature(signature),
                }
            }
            Member::MixedOrderKey(k, t) => {
                let a = scalar_of(k, b"secret");
                let key = (a * ED25519_BASEPOINT_POINT + points[usize::from(t)])
                    .compress()
                    .0;
                sign_raw(
                    a,
                    key,
                    scalar_of(k, &nonce.to_le_bytes()),
                    EdwardsPoint::identity(),
                    nonce,
                )
            }
            Member::MixedOrderR(k, t) => {
                let a = scalar_of(k, b"secret");
                let key = (a * ED25519_BASEPOINT_POINT).compress().0;
                sign_raw(
                    a,
                    key,
                    scalar_of(k, &nonce.to_le_bytes()),
                    points[usize::from(t)],
                    nonce,
                )
            }
            Member::Duplicate => match out.last() {
                Some(last) => last.clone(),
                None => honest(1),
            },
        };
        out.push(stx);
    }
    out
}

/// Adds the group order l to the little-endian scalar `s` in place.
fn add_l(s: &mut [u8]) {
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s, l) in s.iter_mut().zip(l) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
}

fn zebra_single(stx: &SignedTransaction) -> bool {
    let message = signing_message(Domain::Transaction, &chain(), &stx.tx.to_bytes());
    ed25519_zebra::VerificationKey::try_from(stx.tx.signer.0).is_ok_and(|k| {
        k.verify(
            &ed25519_zebra::Signature::from_bytes(&stx.signature.0),
            &message,
        )
        .is_ok()
    })
}

fn zebra_batch(txs: &[SignedTransaction]) -> bool {
    let messages: Vec<Vec<u8>> = txs
        .iter()
        .map(|stx| signing_message(Domain::Transaction, &chain(), &stx.tx.to_bytes()))
        .collect();
    let mut zebra = ed25519_zebra::batch::Verifier::new();
    for (stx, message) in txs.iter().zip(&messages) {
        zebra.queue((
            ed25519_zebra::VerificationKeyBytes::from(stx.tx.signer.0),
            ed25519_zebra::Signature::from_bytes(&stx.signature.0),
            message,
        ));
    }
    zebra.verify(os_rng()).is_ok()
}

#[test]
fn the_adversarial_members_do_what_they_claim() {
    let points = torsion();
    assert_eq!(points.len(), 8);
    for (i, p) in points.iter().enumerate() {
        assert!(p.is_small_order(), "torsion point {i}");
        assert_eq!(points.iter().filter(|q| *q == p).count(), 1, "distinct");
    }
    for e in odd_encodings() {
        let p = CompressedEdwardsY(e)
            .decompress()
            .expect("ZIP-215 decodes it");
        assert!(p.is_small_order());
        assert_ne!(p.compress().0, e, "not the canonical encoding");
    }
    // The cases a careless port gets wrong: each passes the library.
    let mixed_key = build(&[Member::MixedOrderKey(2, 1)], &points);
    let mixed_r = build(&[Member::MixedOrderR(2, 3)], &points);
    let small_key = build(&[Member::SmallOrderKey(9, 0)], &points);
    for (what, txs) in [
        ("mixed key", &mixed_key),
        ("mixed R", &mixed_r),
        ("small key", &small_key),
    ] {
        assert!(zebra_single(&txs[0]), "{what} passes ZIP-215");
    }
    let mut v = TxVerifier::new();
    v.verify(&mixed_key[0], &chain()).unwrap();
    v.verify(&mixed_r[0], &chain()).unwrap();
    assert_eq!(
        v.verify(&small_key[0], &chain()),
        Err(VerifyError::Signature(SignatureError::BadPublicKey))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_096))]

    /// One by one and in a batch, a member passes exactly when the library
    /// passes it and its key is usable; the batch passes exactly when every
    /// member does.
    #[test]
    fn verdicts_match_ed25519_zebra(members in prop::collection::vec(member(), 1..16)) {
        let points = torsion();
        let txs = build(&members, &points);
        let mut v = TxVerifier::new();
        let mut every = true;
        for stx in &txs {
            let usable = is_valid_public_key(&stx.tx.signer);
            let ours = v.verify(stx, &chain()).is_ok();
            prop_assert_eq!(ours, zebra_single(stx) && usable, "member {:?}", stx.signature);
            every &= ours;
        }
        let usable = txs.iter().all(|stx| is_valid_public_key(&stx.tx.signer));
        let theirs = zebra_batch(&txs);
        prop_assert_eq!(theirs, txs.iter().all(zebra_single), "the library agrees with itself");
        let batch = v.verify_batch(&txs, &chain(), os_rng()).is_ok();
        prop_assert_eq!(batch, every);
        prop_assert_eq!(batch, theirs && usable);
        // A fresh verifier (no remembered keys) gives the same verdict.
        let fresh = TxVerifier::new().verify_batch(&txs, &chain(), os_rng()).is_ok();
        prop_assert_eq!(fresh, batch);
    }
}
