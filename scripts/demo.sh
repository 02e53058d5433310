#!/usr/bin/env bash
# A self-contained walk through what Tranche does today, using only the
# `tranche` command: make keys, build a transfer, sign it offline, verify it,
# and watch the checks refuse a wrong password and a transaction moved to
# another chain. Everything happens in a fresh temporary folder.
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

step "done: every check behaved"
