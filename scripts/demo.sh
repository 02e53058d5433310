#!/usr/bin/env bash
# A self-contained walk through what Tranche does today, using only the
# `tranche` command: make keys, build a transfer, sign it offline, verify it,
# watch the checks refuse a wrong password and a transaction moved to another
# chain; then DIDs, a KYC credential, a presentation that logs a person in
# without sharing personal data, and its revocation. Everything happens in a
# fresh temporary folder.
# Usage: ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --locked --bin tranche
tranche() { ./target/debug/tranche "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRANCHE_HOME="$work/home"
printf 'correct horse battery staple\n' > "$work/password"
printf 'not the password\n' > "$work/wrong-password"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "An investor (alice) and a holder (bob) each make a key, sealed with a password"
tranche key new alice --password-file "$work/password"
tranche key new bob --password-file "$work/password"
tranche key list
bob=$(tranche key show bob --json | sed -n 's/.*"address": "\(tr1[a-z0-9]*\)".*/\1/p')

step "alice builds an unsigned transfer of 10 tokens to bob on chain tranche-devnet"
tranche tx build transfer --chain-id tranche-devnet --key alice --nonce 1 \
  --token SEOUL-TOWER-1 --to "$bob" --amount 10 --reference trade-1 --out "$work/transfer.json"
cat "$work/transfer.json"

step "alice signs it offline (no network is touched: cold storage, REC-5)"
tranche tx sign "$work/transfer.json" --key alice --password-file "$work/password" \
  --out "$work/transfer.signed.json"

step "anyone can decode and verify the signed transaction"
tranche tx inspect "$work/transfer.signed.json" --chain-id tranche-devnet

step "checked against another chain, the same transaction is refused"
if tranche tx inspect "$work/transfer.signed.json" --chain-id tranche-mainnet; then
  echo "unexpected: verified on the wrong chain" >&2; exit 1
fi

step "a wrong password does not open alice's key"
if tranche tx sign "$work/transfer.json" --key alice --password-file "$work/wrong-password"; then
  echo "unexpected: signed with a wrong password" >&2; exit 1
fi

step "a KYC provider and alice get DIDs (did:key): no registry, the DID is the key"
tranche did new kyc-co --password-file "$work/password" --json > "$work/kyc-co.json"
kyc=$(sed -n 's/.*"did": "\(did:key:[A-Za-z0-9]*\)".*/\1/p' "$work/kyc-co.json" | head -n 1)
alice=$(tranche did show alice --json | sed -n 's/.*"did": "\(did:key:[A-Za-z0-9]*\)".*/\1/p' | head -n 1)
echo "kyc-co: $kyc"
echo "alice:  $alice"

step "kyc-co publishes a revocation list and issues alice a KYC credential (SR-5)"
tranche vc status-list --key kyc-co --password-file "$work/password" \
  --url https://kyc.example/status/1 --out "$work/status.json"
tranche vc issue --key kyc-co --password-file "$work/password" --subject "$alice" \
  --kind kyc --level high --valid-until 2099-01-01T00:00:00Z \
  --status-list https://kyc.example/status/1 --status-index 42 --out "$work/kyc.json"

step "an exchange logs alice in: she presents the credential for its challenge"
tranche vp present --key alice --password-file "$work/password" \
  --challenge demo-nonce-1 --domain exchange.example "$work/kyc.json" --out "$work/vp.json"
tranche vp verify "$work/vp.json" --challenge demo-nonce-1 --domain exchange.example \
  --trusted-issuer "$kyc" --status-list "$work/status.json"

step "a replayed presentation (another challenge) is refused"
if tranche vp verify "$work/vp.json" --challenge demo-nonce-2 --domain exchange.example \
  --trusted-issuer "$kyc" --status-list "$work/status.json"; then
  echo "unexpected: a replay verified" >&2; exit 1
fi

step "kyc-co revokes the credential; the same presentation now fails"
tranche vc status-list --key kyc-co --password-file "$work/password" \
  --url https://kyc.example/status/1 --from "$work/status.json" --revoke 42 --out "$work/status.json"
if tranche vp verify "$work/vp.json" --challenge demo-nonce-1 --domain exchange.example \
  --trusted-issuer "$kyc" --status-list "$work/status.json"; then
  echo "unexpected: a revoked credential verified" >&2; exit 1
fi

step "done: every check behaved"
