#!/usr/bin/env bash
# The paper's investment scenario, through the CLI against a running devnet:
# two investors with DIDs of their own consent to their wallets' bindings;
# a KYC provider issues them credentials and records their digests; an asset
# is registered and appraised; 1,000 tokens at SP 100 USD are requested,
# approved by two of the issuer's operators in the issuer's service (four
# eyes), executed by the service and checked (SR-1); a profit is distributed; Alice transfers
# offline-signed, entrusts tokens to a custodian, and moves them out with
# the custodian's co-signature (SR-3); Alice and Bob settle with Bob's
# approval; a revocation is requested, approved, executed and checked
# (F5-10); the exchange checks the supply on its own node (SR-2) and the
# regulator reads the transfers from its own (F6-9); the issuer's audit log
# is exported and verified against its anchor on chain (REC-9). Every check
# is asserted.
#
#   scripts/investment.sh [DEVNET_DIR]      (default: ./devnet)
#
# Exits non-zero at the first step that is not applied or checked as expected.
set -euo pipefail

DEVNET=${1:-devnet}
TRANCHE=${TRANCHE:-tranche}
[ -f "$DEVNET/devnet.json" ] || { echo "no devnet in $DEVNET: start one with 'tranche devnet --data-dir $DEVNET'" >&2; exit 2; }
devnet() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$DEVNET/devnet.json" "$1"; }
[ "$(devnet 'd.get("ready", False)')" = "True" ] || { echo "the devnet in $DEVNET is still starting: wait for its 'finalizing blocks' line" >&2; exit 2; }
NODE=$(devnet 'd["nodes"][0]["api"]')          # the TSP's node
EXCHANGE_NODE=$(devnet 'd["nodes"][2]["api"]')
REGULATOR_NODE=$(devnet 'd["nodes"][3]["api"]')
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
send_file() { # ORG FILE
  "$TRANCHE" send "$2" --key-file "$DEVNET/keys/$1.key" --password-file "$PW"
}
address() { "$TRANCHE" key show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])'; }
did() { "$TRANCHE" did show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
check() { # WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "check failed: $1: expected $2, got $3" >&2; exit 1; fi
  echo "  ok: $1 = $3"
}
# Another node may be a block or two behind the TSP's: read it once it has caught up.
caught_up() { # NODE
  local height
  height=$("$TRANCHE" query status | field 'd["finalized_height"]')
  for _ in $(seq 300); do
    [ "$("$TRANCHE" query status --node "$1" | field 'd["finalized_height"]')" -ge "$height" ] && return
    sleep 0.1
  done
  echo "node $1 did not catch up with the TSP's node" >&2; exit 1
}
CHAIN=$("$TRANCHE" query status | field 'd["chain_id"]')
# The issuer's service: its operators log in with their DIDs and staff credentials.
ISSUER=$(devnet 'd["services"][0]["api"]')
login() { # OPERATOR(0|1)
  "$TRANCHE" service login "$ISSUER" --password-file "$PW" \
    --key-file "$(devnet "d['services'][0]['staff'][$1]['key_file']")" \
    --credential "$(devnet "d['services'][0]['staff'][$1]['credential']")" --out "$WORK/op$1.session" > /dev/null
}
queued() { # KIND ID: the request as the issuer's service shows it
  "$TRANCHE" service call "$ISSUER" "/requests/$1/$2" --session "$WORK/op0.session"
}
decide() { # OPERATOR KIND ID BODY
  "$TRANCHE" service call "$ISSUER" "/requests/$2/$3/decisions" --session "$WORK/op$1.session" --body "$4"
}
until_state() { # KIND ID STATE
  local state=""
  for _ in $(seq 600); do
    state=$(queued "$1" "$2" 2>/dev/null | field 'd["state"]' || true)
    [ "$state" = "$3" ] && { echo "  ok: $1 $2 is $3 in the issuer's service"; return; }
    sleep 0.1
  done
  echo "check failed: $1 $2 did not become $3 in the issuer's service (it is ${state:-absent})" >&2; exit 1
}
USD='{"code":"USD","kind":"fiat","decimals":2}'

echo "== SR-5 onboarding: each person's DID and wallet are keys of their own; they consent to the binding"
for who in alice bob owner; do "$TRANCHE" did new "$who-id" > /dev/null; done
for who in alice bob; do
  "$TRANCHE" key new "$who" > /dev/null
  "$TRANCHE" did bind-wallet --chain-id "$CHAIN" --key "$who" --did-key "$who-id" --out "$WORK/bind-$who.json" > /dev/null
  send_file devnet-tsp "$WORK/bind-$who.json"
done
ALICE=$(address alice) BOB=$(address bob)
ALICE_DID=$(did alice-id) BOB_DID=$(did bob-id) OWNER_DID=$(did owner-id)
check "alice's wallet is bound to her DID" "$ALICE_DID" "$("$TRANCHE" query wallet "$ALICE" | field 'd["data"]["did"]')"

echo "== SR-5 the KYC provider issues credentials and records only their digests"
for who in alice bob; do
  subject=$(did "$who-id")
  "$TRANCHE" vc issue --key-file "$DEVNET/keys/devnet-kyc.key" --password-file "$PW" \
    --subject "$subject" --kind kyc --level high --valid-until 2030-12-31T00:00:00Z --out "$WORK/kyc-$who.json" > /dev/null
  DIGEST=$(sha256sum "$WORK/kyc-$who.json" | cut -d' ' -f1)
  send devnet-kyc "{\"type\":\"add_claim\",\"did\":\"$subject\",\"topic\":1,\"country\":null,\"digest\":\"$DIGEST\",\"expiry_date\":\"2030-12-31\"}"
done

echo "== ST-6 the asset registry attests the owner; F5-1 the TSP registers the asset (AP 100,000 USD); SR-6 an appraiser values it"
TITLE=$(printf 'title deed of %s for %s' "$ASSET" "$OWNER_DID" | sha256sum | cut -d' ' -f1)
send devnet-registry "{\"type\":\"record_ownership\",\"asset\":\"$ASSET\",\"owner\":\"$OWNER_DID\",\"credential\":\"$TITLE\"}"
send devnet-tsp "{\"type\":\"register_asset\",\"asset\":\"$ASSET\",\"owner\":\"$OWNER_DID\",\"kind\":\"tangible\",\"description\":\"$(printf '%064d' 1)\",\"price\":{\"minor\":\"10000000\",\"currency\":$USD}}"
send devnet-appraiser "{\"type\":\"record_appraisal\",\"asset\":\"$ASSET\",\"value\":{\"minor\":\"10000000\",\"currency\":$USD}}"

echo "== F5-2/F5-4 the TSP requests 1,000 tokens at SP 100 USD (a first request, withdrawn, frees the token id)"
ALLOC="[{\"wallet\":\"$ALICE\",\"amount\":\"600\"},{\"wallet\":\"$BOB\",\"amount\":\"400\"}]"
request() { # ID
  send devnet-tsp "{\"type\":\"request_issuance\",\"request\":\"$1\",\"asset\":\"$ASSET\",\"token\":\"$TOKEN\",\"unit_price\":{\"minor\":\"10000\",\"currency\":$USD},\"issue_date\":\"2026-01-01\",\"expiry_date\":\"2030-12-31\",\"amount\":\"1000\",\"issuer\":\"devnet-issuer\",\"allocations\":$ALLOC,\"rules\":{\"required_topics\":[1],\"allowed_countries\":[],\"denied_countries\":[],\"max_holders\":0,\"max_balance_per_identity\":\"0\"}}"
}
request "R0-$RUN"
send devnet-tsp "{\"type\":\"withdraw_issuance\",\"request\":\"R0-$RUN\"}"
request "R-$RUN"
echo "== F5-5 two of the issuer's operators approve it in its service (four eyes); the service issues and checks"
login 0
login 1
until_state issuance "R-$RUN" pending
until_state issuance "R0-$RUN" withdrawn
decide 0 issuance "R-$RUN" '{"decision":"approve","reason":"allocations match the subscriptions"}' > /dev/null
check "one approval is not enough" pending "$(queued issuance "R-$RUN" | field 'd["state"]')"
if decide 0 issuance "R-$RUN" '{"decision":"approve","reason":"again"}' 2> "$WORK/twice.err"; then
  echo "check failed: the same operator approved twice" >&2; exit 1
fi
check "the same operator twice is refused" conflict "$(grep -o conflict "$WORK/twice.err" | head -1)"
decide 1 issuance "R-$RUN" '{"decision":"approve","reason":"appraisal within tolerance"}' > /dev/null
until_state issuance "R-$RUN" checked
check "the TSP reads its request's standing with a signed request" checked "$("$TRANCHE" service call "$ISSUER" "/requests/issuance/R-$RUN" \
  --sign-as devnet-tsp --key-file "$DEVNET/keys/devnet-tsp.key" --password-file "$PW" --chain-id "$CHAIN" | field 'd["state"]')"

echo "== F5-7/SR-1 the TSP checks issued against requested"
"$TRANCHE" query issuance "R-$RUN" > "$WORK/issuance.json"
check "requested" 1000 "$(field 'd["data"]["check"]["requested"]' < "$WORK/issuance.json")"
check "issued" 1000 "$(field 'd["data"]["check"]["issued"]' < "$WORK/issuance.json")"
check "by the issuer named" devnet-issuer "$(field 'd["data"]["check"]["issuer"]' < "$WORK/issuance.json")"
check "the withdrawn request" True "$("$TRANCHE" query issuance "R0-$RUN" | field 'd["data"]["check"]["withdrawn"]')"

echo "== F5-9 the TSP declares a distribution of 5,000 USD over a checkpoint and records payments"
send devnet-tsp "{\"type\":\"create_checkpoint\",\"token\":\"$TOKEN\"}"
send devnet-tsp "{\"type\":\"declare_distribution\",\"distribution\":\"D-$RUN\",\"token\":\"$TOKEN\",\"checkpoint\":1,\"total\":{\"minor\":\"500000\",\"currency\":$USD}}"
send devnet-tsp "{\"type\":\"record_payment\",\"distribution\":\"D-$RUN\",\"wallet\":\"$ALICE\"}"

echo "== F6-7 Alice transfers 100 tokens to Bob in two transfers, signed offline with her own key and submitted as one batch"
for n in 1 2; do
  "$TRANCHE" tx build transfer --chain-id "$CHAIN" --key alice --nonce "$n" --token "$TOKEN" --to "$BOB" --amount 50 --out "$WORK/transfer-$n.json" > /dev/null
  "$TRANCHE" tx sign "$WORK/transfer-$n.json" --key alice --out "$WORK/transfer-$n.signed.json" > /dev/null
done
"$TRANCHE" submit "$WORK/transfer-1.signed.json" "$WORK/transfer-2.signed.json"

echo "== SR-3 Alice consents to custody; the custodian opens her wallet; she entrusts 100 tokens to it"
"$TRANCHE" did consent-custody --chain-id "$CHAIN" --custodian devnet-custodian --key alice-id --out "$WORK/custody.json" > /dev/null
"$TRANCHE" send "$WORK/custody.json" --key-file "$DEVNET/keys/devnet-custodian.key" --password-file "$PW" --json > "$WORK/opened.json"
VAULT=$(field 'd["custodial_wallet"]' < "$WORK/opened.json")
check "alice's custodial wallet in her query" "$VAULT" "$("$TRANCHE" query wallet "$ALICE" | field 'd["data"]["custodial_wallets"][0]["wallet"]')"
"$TRANCHE" tx build transfer --chain-id "$CHAIN" --key alice --nonce 3 --token "$TOKEN" --to "$VAULT" --amount 100 --out "$WORK/entrust.json" > /dev/null
"$TRANCHE" tx sign "$WORK/entrust.json" --key alice --out "$WORK/entrust.signed.json" > /dev/null
"$TRANCHE" submit "$WORK/entrust.signed.json"

echo "== SR-3 Alice moves 40 out of custody to Bob: the custodian co-signs her instruction, then she signs it"
echo "{\"type\":\"custodial_transfer\",\"custodian\":\"devnet-custodian\",\"token\":\"$TOKEN\",\"to\":\"$BOB\",\"amount\":\"40\"}" > "$WORK/move.json"
"$TRANCHE" tx build payload "$WORK/move.json" --chain-id "$CHAIN" --key alice --nonce 4 --out "$WORK/move.tx.json" > /dev/null
"$TRANCHE" tx cosign "$WORK/move.tx.json" --key-file "$DEVNET/keys/devnet-custodian.key" --password-file "$PW" --out "$WORK/move.tx.json" > /dev/null
"$TRANCHE" tx sign "$WORK/move.tx.json" --key alice --out "$WORK/move.signed.json" > /dev/null
"$TRANCHE" submit "$WORK/move.signed.json"

echo "== Settlement: Alice gives Bob 30, Bob gives Alice 10, in one transaction with Bob's approval"
echo "{\"type\":\"settle\",\"legs\":[{\"token\":\"$TOKEN\",\"from\":\"$ALICE\",\"to\":\"$BOB\",\"amount\":\"30\"},{\"token\":\"$TOKEN\",\"from\":\"$BOB\",\"to\":\"$ALICE\",\"amount\":\"10\"}]}" > "$WORK/settle.json"
"$TRANCHE" tx build payload "$WORK/settle.json" --chain-id "$CHAIN" --key alice --nonce 5 --out "$WORK/settle.tx.json" > /dev/null
"$TRANCHE" tx approve "$WORK/settle.tx.json" --key bob --out "$WORK/settle.tx.json" > /dev/null
"$TRANCHE" tx sign "$WORK/settle.tx.json" --key alice --out "$WORK/settle.signed.json" > /dev/null
"$TRANCHE" submit "$WORK/settle.signed.json"

echo "== F5-10 the TSP requests revocation of 200 of Bob's tokens; the issuer revokes them; SR-1 the TSP checks"
send devnet-tsp "{\"type\":\"request_revocation\",\"request\":\"V-$RUN\",\"token\":\"$TOKEN\",\"amount\":\"200\"}"
until_state revocation "V-$RUN" pending
decide 0 revocation "V-$RUN" "{\"decision\":\"approve\",\"reason\":\"court order 12\",\"moves\":[{\"wallet\":\"$BOB\",\"amount\":\"200\"}]}" > /dev/null
decide 1 revocation "V-$RUN" '{"decision":"approve","reason":"moves checked against the order"}' > /dev/null
until_state revocation "V-$RUN" checked
"$TRANCHE" query revocation "V-$RUN" > "$WORK/revocation.json"
check "revocation requested" 200 "$(field 'd["data"]["check"]["requested"]' < "$WORK/revocation.json")"
check "revoked" 200 "$(field 'd["data"]["check"]["revoked"]' < "$WORK/revocation.json")"

echo "== SR-2 the exchange checks the token's supply on its own node"
caught_up "$EXCHANGE_NODE"
"$TRANCHE" query token "$TOKEN" --node "$EXCHANGE_NODE" > "$WORK/token.json"
check "issued" 1000 "$(field 'd["data"]["supply"]["issued"]' < "$WORK/token.json")"
check "revoked" 200 "$(field 'd["data"]["supply"]["revoked"]' < "$WORK/token.json")"
REVOCATION_WALLET=$(field 'd["data"]["revocation_wallet"]' < "$WORK/token.json")
units() { # WALLET
  "$TRANCHE" query wallet "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(([b["units"] for b in d["data"]["balances"] if b["token"]==sys.argv[1]] or ["0"])[0])' "$TOKEN"
}
check "the revocation wallet holds what was revoked" 200 "$(units "$REVOCATION_WALLET")"

echo "== C-3/F6-9 the regulator reads the transfers from its own node"
caught_up "$REGULATOR_NODE"
"$TRANCHE" query transfers --token "$TOKEN" --node "$REGULATOR_NODE" > "$WORK/transfers.json"
# Two issuances, two transfers, the entrusting, the custodial move, two
# settlement legs and the revocation.
check "transfers of $TOKEN seen by the regulator's node" 9 "$(field 'len(d["data"]["transfers"])' < "$WORK/transfers.json")"
check "their kinds" "issuance,issuance,holder,holder,holder,custodial,settlement,settlement,revocation" \
  "$(field '",".join(t["kind"] for t in d["data"]["transfers"])' < "$WORK/transfers.json")"

echo "== REC-9 the issuer's audit log, exported, verifies against its anchor on chain"
for _ in $(seq 300); do
  "$TRANCHE" service call "$ISSUER" /audit/export --session "$WORK/op0.session" > "$WORK/audit.json"
  "$TRANCHE" audit verify "$WORK/audit.json" --node "$REGULATOR_NODE" --json > "$WORK/audit-check.json"
  [ "$(field 'd["anchored_entries"] == d["entries"]' < "$WORK/audit-check.json")" = True ] && break
  sleep 0.2
done
check "every entry anchored" "$(field 'd["entries"]' < "$WORK/audit-check.json")" "$(field 'd["anchored_entries"]' < "$WORK/audit-check.json")"
check "decisions in the log" 4 "$(field 'sum(1 for r in d["records"] if r["entry"]["action"] == "approve")' < "$WORK/audit.json")"

echo "== balances"
# Alice: 600 - 100 (to Bob) - 100 (into custody) - 30 + 10 = 380; custody 100 - 40 = 60;
# Bob: 400 + 100 + 40 + 30 - 10 - 200 = 360.
check "alice" 380 "$(units "$ALICE")"
check "alice's custodial wallet" 60 "$(units "$VAULT")"
check "bob" 360 "$(units "$BOB")"
echo "investment scenario complete"
