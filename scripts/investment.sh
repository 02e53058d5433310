#!/usr/bin/env bash
# The paper's investment scenario, through the CLI against a running devnet:
# onboard two investors, register and appraise an asset, request and execute
# the issuance of 1,000 tokens at SP 100 USD, distribute a profit, transfer,
# and revoke; then check what the TSP (SR-1) and the exchange (SR-2) check.
#
#   scripts/investment.sh [DEVNET_DIR]      (default: ./devnet)
#
# Exits non-zero at the first step that is not applied as expected.
set -euo pipefail

DEVNET=${1:-devnet}
TRANCHE=${TRANCHE:-tranche}
[ -f "$DEVNET/devnet.json" ] || { echo "no devnet in $DEVNET: start one with 'tranche devnet --data-dir $DEVNET'" >&2; exit 2; }
NODE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["api"])' "$DEVNET/devnet.json")
REGULATOR_NODE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][3]["api"])' "$DEVNET/devnet.json")
export TRANCHE_NODE=$NODE
PW="$DEVNET/password"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Investors keep their own keys, in their own keystore.
export TRANCHE_HOME="$WORK/home" TRANCHE_PASSWORD=investor-password
RUN=$(date +%s)
TOKEN="T-$RUN" ASSET="A-$RUN"

send() { # ORG PAYLOAD_JSON
  echo "$2" > "$WORK/payload.json"
  "$TRANCHE" send "$WORK/payload.json" --key-file "$DEVNET/keys/$1.key" --password-file "$PW"
}
address() { "$TRANCHE" key show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

USD='{"code":"USD","kind":"fiat","decimals":2}'
for who in alice bob; do "$TRANCHE" key new "$who" > /dev/null; done
ALICE=$(address alice) BOB=$(address bob)
ALICE_DID="did:key:z6MkAlice$RUN" BOB_DID="did:key:z6MkBob$RUN"

echo "== F5-x onboarding: the TSP binds wallets to DIDs; the KYC provider records claims"
send devnet-tsp "{\"type\":\"register_wallet\",\"wallet\":\"$ALICE\",\"did\":\"$ALICE_DID\"}"
send devnet-tsp "{\"type\":\"register_wallet\",\"wallet\":\"$BOB\",\"did\":\"$BOB_DID\"}"
DIGEST=$(printf '%064d' 7)
for did in "$ALICE_DID" "$BOB_DID"; do
  send devnet-kyc "{\"type\":\"add_claim\",\"did\":\"$did\",\"topic\":1,\"country\":null,\"digest\":\"$DIGEST\",\"expiry_date\":\"2030-12-31\"}"
done

echo "== F5-1 the TSP registers the asset (AP 100,000 USD); SR-6 an appraiser values it"
send devnet-tsp "{\"type\":\"register_asset\",\"asset\":\"$ASSET\",\"owner\":\"did:key:z6MkOwner$RUN\",\"kind\":\"tangible\",\"description\":\"$(printf '%064d' 1)\",\"price\":{\"minor\":\"10000000\",\"currency\":$USD},\"tolerance_bps\":500}"
send devnet-appraiser "{\"type\":\"record_appraisal\",\"asset\":\"$ASSET\",\"value\":{\"minor\":\"10000000\",\"currency\":$USD}}"

echo "== F5-2/F5-4 the TSP requests 1,000 tokens at SP 100 USD; F5-5 the issuer issues them"
ALLOC="[{\"wallet\":\"$ALICE\",\"amount\":\"600\"},{\"wallet\":\"$BOB\",\"amount\":\"400\"}]"
send devnet-tsp "{\"type\":\"request_issuance\",\"request\":\"R-$RUN\",\"asset\":\"$ASSET\",\"token\":\"$TOKEN\",\"unit_price\":{\"minor\":\"10000\",\"currency\":$USD},\"issue_date\":\"2026-01-01\",\"expiry_date\":\"2030-12-31\",\"amount\":\"1000\",\"issuer\":\"devnet-issuer\",\"allocations\":$ALLOC,\"rules\":{\"required_topics\":[1],\"allowed_countries\":[],\"denied_countries\":[],\"max_holders\":0,\"max_balance_per_identity\":\"0\"}}"
send devnet-issuer "{\"type\":\"execute_issuance\",\"request\":\"R-$RUN\",\"amount\":\"1000\",\"allocations\":$ALLOC}"

echo "== F5-7/SR-1 the TSP checks issued against requested"
"$TRANCHE" query issuance "R-$RUN" | tee "$WORK/issuance.json" > /dev/null
field 'd["data"]["check"]' < "$WORK/issuance.json"

echo "== F5-9 the TSP declares a distribution of 5,000 USD over a checkpoint and records payments"
send devnet-tsp "{\"type\":\"create_checkpoint\",\"token\":\"$TOKEN\"}"
send devnet-tsp "{\"type\":\"declare_distribution\",\"distribution\":\"D-$RUN\",\"token\":\"$TOKEN\",\"checkpoint\":1,\"total\":{\"minor\":\"500000\",\"currency\":$USD}}"
send devnet-tsp "{\"type\":\"record_payment\",\"distribution\":\"D-$RUN\",\"wallet\":\"$ALICE\"}"

echo "== F6-7 Alice transfers 100 tokens to Bob in two transfers, signed offline with her own key and submitted as one batch"
CHAIN=$("$TRANCHE" query status | field 'd["chain_id"]')
for n in 1 2; do
  "$TRANCHE" tx build transfer --chain-id "$CHAIN" --key alice --nonce "$n" --token "$TOKEN" --to "$BOB" --amount 50 --out "$WORK/transfer-$n.json"
  "$TRANCHE" tx sign "$WORK/transfer-$n.json" --key alice --out "$WORK/transfer-$n.signed.json"
done
"$TRANCHE" submit "$WORK/transfer-1.signed.json" "$WORK/transfer-2.signed.json"

echo "== F5-10 the TSP requests revocation of 200 of Bob's tokens; the issuer revokes them"
send devnet-tsp "{\"type\":\"request_revocation\",\"request\":\"V-$RUN\",\"token\":\"$TOKEN\",\"amount\":\"200\"}"
send devnet-issuer "{\"type\":\"execute_revocation\",\"request\":\"V-$RUN\",\"moves\":[{\"wallet\":\"$BOB\",\"amount\":\"200\"}]}"
"$TRANCHE" query revocation "V-$RUN" | field 'd["data"]["check"]'

echo "== SR-2 the exchange checks the token's supply; C-3/F6-9 the regulator reads the transfers"
"$TRANCHE" query token "$TOKEN" | tee "$WORK/token.json" | field 'd["data"]["supply"]'
# Another node may be a block or two behind: read it once it has caught up.
HEIGHT=$("$TRANCHE" query status | field 'd["finalized_height"]')
for _ in $(seq 300); do
  [ "$("$TRANCHE" query status --node "$REGULATOR_NODE" | field 'd["finalized_height"]')" -ge "$HEIGHT" ] && break
  sleep 0.1
done
"$TRANCHE" query transfers --token "$TOKEN" --node "$REGULATOR_NODE" | field 'len(d["data"]["transfers"])' > "$WORK/count"
echo "transfers of $TOKEN seen by the regulator's node: $(cat "$WORK/count")"
units() { # WALLET
  "$TRANCHE" query wallet "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(([b["units"] for b in d["data"]["balances"] if b["token"]==sys.argv[1]] or ["0"])[0])' "$TOKEN"
}
ALICE_UNITS=$(units "$ALICE") BOB_UNITS=$(units "$BOB")
echo "balances: alice $ALICE_UNITS, bob $BOB_UNITS"
[ "$ALICE_UNITS" = "500" ] || { echo "alice should hold 600 - 100 = 500" >&2; exit 1; }
[ "$BOB_UNITS" = "300" ] || { echo "bob should hold 400 + 100 - 200 = 300" >&2; exit 1; }
[ "$(cat "$WORK/count")" -ge 5 ] || { echo "expected issuance, two transfers and revocation" >&2; exit 1; }
echo "investment scenario complete"
