#!/usr/bin/env bash
# The paper's investment scenario (F5), through the devnet's services and
# the CLI, as the people in it would do it: an owner proves ownership with
# the asset registry's credential and registers an asset of AP 100,000 USD
# at the TSP's service; an appraiser values it; the TSP's operator offers
# 1,000 tokens at SP 100 USD; three investors with KYC credentials have
# their wallets bound, deposit at the escrow bank's service and subscribe
# 600, 399 and 1 with transactions signed offline by their own keys; the
# bank closes the offering; two of the issuer's operators approve its
# issuance in the issuer's service (four eyes); the TSP verifies it (SR-1)
# and the bank pays the owner 100,000 USD out of escrow (F5-8); Alice
# entrusts tokens to the custodian's service, which tells her at once, and
# moves some out on her offline authorization (SR-3); a profit of 5,000
# USD is distributed and claimed, the custodian claiming for her custodial
# wallet (F5-9); Alice transfers; Alice and Bob settle; they become
# traders at the exchange's service, which lists the token, and Bob buys 20
# of Alice's tokens for deposit tokens, settled on chain (F6-2..F6-7); the asset is sold
# and every token redeemed at 100 USD and revoked (F5-10), which delists it
# at the exchange; the exchange checks the supply on its own node (SR-2); the regulator's
# first AML policy is in force on chain (F6-1) and each of the exchange's signed reports
# reconciles clean against the chain (F6-6, F6-8, F6-9); and the issuer's, the TSP's and the
# custodian's audit logs verify against their anchors on chain (REC-9). The owner's name and address go only to the services'
# vaults. Every check is asserted, and the threats on the way are
# refused: a price 30 % above the appraisal, an asset registered by
# someone who is not its attested owner (ST-6), one operator's approval
# alone, the same operator twice. On the way, the issuer's operators
# administer the token (a document, rules requiring pre-approved transfers,
# an approval, the rules restored, a ballot of the holders Carol votes in),
# each change approved by two of them, and the ledger's pre-check gives
# every reason a transfer would be refused; Carol holds a dollar for a
# notary who pays it to Bob, and the owner and Carol settle a two-party
# instruction, affirmed in order.
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
# People keep their own keys, in their own keystore.
export TRANCHE_HOME="$WORK/home" TRANCHE_PASSWORD=investor-password
RUN=$(date +%s)
TOKEN="T-$RUN" ASSET="A-$RUN" OFFERING="O-$RUN"

send() { # ORG PAYLOAD_JSON: an organisation without a service signs by hand
  echo "$2" > "$WORK/payload.json"
  "$TRANCHE" send "$WORK/payload.json" --key-file "$DEVNET/keys/$1.key" --password-file "$PW" > /dev/null
}
address() { "$TRANCHE" key show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])'; }
did() { "$TRANCHE" did show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
check() { # WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "check failed: $1: expected $2, got $3" >&2; exit 1; fi
  echo "  ok: $1 = $3"
}
until_eq() { # WHAT EXPECTED COMMAND...: waits for COMMAND to print EXPECTED
  local what=$1 expected=$2 got=""; shift 2
  for _ in $(seq 600); do
    got=$("$@" 2>/dev/null || true)
    [ "$got" = "$expected" ] && { echo "  ok: $what"; return; }
    sleep 0.1
  done
  echo "check failed: $what: expected $expected, still ${got:-nothing}" >&2; exit 1
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
service() { devnet "[s for s in d['services'] if s['role'] == '$1'][0]$2"; }
ISSUER=$(service issuer '["api"]') BANK=$(service bank '["api"]') TSP=$(service tsp '["api"]')
CUSTODIAN=$(service custodian '["api"]') EXCHANGE=$(service exchange '["api"]')
CASH=USD-DEP
staff_login() { # ROLE INDEX SESSION: a member of the devnet's staff logs in with their DID
  "$TRANCHE" service login "$(service "$1" '["api"]')" --password-file "$PW" \
    --key-file "$(service "$1" "['staff'][$2]['key_file']")" \
    --credential "$(service "$1" "['staff'][$2]['credential']")" --out "$WORK/$3.session" > /dev/null
}
login() { # API KEY SESSION CREDENTIAL...: a person logs in with their DID key
  local api=$1 key=$2 session=$3; shift 3
  local creds=()
  for c in "$@"; do creds+=(--credential "$WORK/$c.json"); done
  "$TRANCHE" service login "$api" --key "$key" "${creds[@]}" --out "$WORK/$session.session" > /dev/null
}
call() { # API SESSION PATH [BODY]
  if [ $# -ge 4 ]; then
    "$TRANCHE" service call "$1" "$3" --session "$WORK/$2.session" --body "$4"
  else
    "$TRANCHE" service call "$1" "$3" --session "$WORK/$2.session"
  fi
}
state_of() { # API SESSION PATH [FIELD]: a field (default state) of what the service shows
  call "$1" "$2" "$3" | field "d['${4:-state}']"
}
registered() { "$TRANCHE" query asset "$1" > /dev/null && echo yes; }
bound_did() { "$TRANCHE" query wallet "$1" | field 'd["data"]["did"]'; }
profile() { # API SESSION NAME: a person's name and address, for the service's vault only
  "$TRANCHE" service call "$1" /me/profile --session "$WORK/$2.session" --put \
    --body "{\"name\":\"$3\",\"address\":\"77 Sejong-daero, Jung-gu, Seoul\"}" > /dev/null
  [ "$(call "$1" "$2" /me | field 'd["has_profile"]')" = True ] || { echo "check failed: the profile is not in the vault" >&2; exit 1; }
}
refused() { # WHAT CODE API SESSION PATH BODY: the service must refuse with CODE
  local what=$1 code=$2; shift 2
  if call "$@" > /dev/null 2> "$WORK/refused.err"; then
    echo "check failed: $what was accepted" >&2; exit 1
  fi
  check "$what is refused" "$code" "$(grep -o "$code" "$WORK/refused.err" | head -1)"
}
units() { # WALLET [TOKEN]
  "$TRANCHE" query wallet "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(([b["units"] for b in d["data"]["balances"] if b["token"]==sys.argv[1]] or ["0"])[0])' "${2:-$TOKEN}"
}
sign_offline() { # KEY NONCE PAYLOAD_JSON: a person's transaction, built and signed offline (REC-5), in p.signed.json
  echo "$3" > "$WORK/p.json"
  "$TRANCHE" tx build payload "$WORK/p.json" --chain-id "$CHAIN" --key "$1" --nonce "$2" --out "$WORK/p.tx.json" > /dev/null
  "$TRANCHE" tx sign "$WORK/p.tx.json" --key "$1" --out "$WORK/p.signed.json" > /dev/null
}
submit() { # KEY NONCE PAYLOAD_JSON: signed offline, submitted to a node
  sign_offline "$@"
  "$TRANCHE" submit "$WORK/p.signed.json" > /dev/null
}
subscribe() { # WHO UNITS: signed offline with the person's wallet key and handed to the TSP, which relays it
  sign_offline "$1" 1 "{\"type\":\"subscribe\",\"offering\":\"$OFFERING\",\"units\":\"$2\"}"
  local tx
  tx=$(call "$TSP" "$1" /subscriptions "$WORK/p.signed.json" | field 'd["tx"]')
  until_eq "$1's subscription of $2 is applied" applied state_of "$TSP" "$1" "/subscriptions/$tx"
}
usd() { echo "{\"minor\":\"$1\",\"currency\":{\"code\":\"USD\",\"kind\":\"fiat\",\"decimals\":2}}"; }
KYC_KEY=(--key-file "$DEVNET/keys/devnet-kyc.key" --password-file "$PW")

echo "== SR-5 each person's DID and wallet are keys of their own; the KYC provider issues credentials and records only their digests"
PEOPLE="owner alice bob carol"
declare -A NAMES=([owner]="Seo Yeon-woo" [alice]="Alice Park" [bob]="Bob Choi" [carol]="Carol Lim")
for who in $PEOPLE; do
  "$TRANCHE" did new "$who-id" > /dev/null
  "$TRANCHE" key new "$who" > /dev/null
  subject=$(did "$who-id")
  "$TRANCHE" vc issue "${KYC_KEY[@]}" --subject "$subject" --kind kyc --level high \
    --valid-until 2030-12-31T00:00:00Z --out "$WORK/kyc-$who.json" > /dev/null
  "$TRANCHE" vc issue "${KYC_KEY[@]}" --subject "$subject" --kind jurisdiction --country KR \
    --valid-until 2030-12-31T00:00:00Z --out "$WORK/country-$who.json" > /dev/null
  DIGEST=$("$TRANCHE" vc digest "$WORK/kyc-$who.json")
  send devnet-kyc "{\"type\":\"add_claim\",\"did\":\"$subject\",\"topic\":1,\"country\":null,\"digest\":\"$DIGEST\",\"expiry_date\":\"2030-12-31\"}"
done
OWNER=$(address owner) ALICE=$(address alice) BOB=$(address bob) CAROL=$(address carol)
OWNER_DID=$(did owner-id)

echo "== ST-6 the asset registry attests the owner with a credential whose digest it records on chain"
"$TRANCHE" vc issue --key-file "$DEVNET/keys/devnet-registry.key" --password-file "$PW" --subject "$OWNER_DID" \
  --kind asset-ownership --asset "$ASSET" --out "$WORK/owns.json" > /dev/null
send devnet-registry "{\"type\":\"record_ownership\",\"asset\":\"$ASSET\",\"owner\":\"$OWNER_DID\",\"credential\":\"$("$TRANCHE" vc digest "$WORK/owns.json")\"}"

echo "== F5-1 the owner logs in to the TSP's service and registers the asset (AP 100,000 USD)"
login "$TSP" owner-id owner kyc-owner country-owner owns
login "$TSP" alice-id alice kyc-alice country-alice
profile "$TSP" owner "${NAMES[owner]}"
# The description stays in the TSP's vault; only its SHA-256 goes on chain.
python3 -c 'import json,sys; print(json.dumps({"asset": sys.argv[1], "kind": "tangible", "price": json.loads(sys.argv[2]),
  "description": "title deed 2026-0412, 9 Teheran-ro, Gangnam-gu, Seoul", "credential": json.load(open(sys.argv[3]))}))' \
  "$ASSET" "$(usd 10000000)" "$WORK/owns.json" > "$WORK/asset.json"
refused "ST-6 registering someone else's asset" forbidden "$TSP" alice /assets "$WORK/asset.json"
call "$TSP" owner /assets "$WORK/asset.json" > /dev/null
until_eq "the asset is registered on chain" yes registered "$ASSET"

echo "== SR-6 an appraiser values it; the TSP offers only at a price within the network's tolerance of the appraisal"
staff_login tsp 0 tsp-op
TOLERANCE=$("$TRANCHE" query policy | field 'd["data"]["appraisal_tolerance_bps"]')
echo "  the network's appraisal tolerance: $TOLERANCE bps"
send devnet-appraiser "{\"type\":\"record_appraisal\",\"asset\":\"$ASSET\",\"value\":$(usd 7692308)}"
until_eq "the TSP sees the appraisal" False state_of "$TSP" tsp-op "/assets/$ASSET" within_policy
OFFER="{\"offering\":\"$OFFERING\",\"asset\":\"$ASSET\",\"token\":\"$TOKEN\",\"unit_price\":$(usd 10000),\"amount\":\"1000\",\"min_units\":\"1\",\"max_units\":\"1000\",\"soft_cap\":\"500\",\"window_secs\":20,\"issuer\":\"devnet-issuer\",\"bank\":\"devnet-bank\",\"cash_token\":\"$CASH\",\"issue_date\":\"2026-01-01\",\"expiry_date\":\"2036-12-31\",\"rules\":{\"required_topics\":[1],\"allowed_countries\":[],\"denied_countries\":[],\"max_holders\":0,\"max_balance_per_identity\":\"0\"}}"
refused "SR-6 a price 30 % above the appraisal" conflict "$TSP" tsp-op /offerings "$OFFER"
send devnet-appraiser "{\"type\":\"record_appraisal\",\"asset\":\"$ASSET\",\"value\":$(usd 10000000)}"
until_eq "the new appraisal is within policy" True state_of "$TSP" tsp-op "/assets/$ASSET" within_policy

echo "== SR-5 the TSP binds each person's wallet to their DID after checking their presentation; they open accounts at the bank"
staff_login bank 0 bank-op
for who in $PEOPLE; do
  [ "$who" = owner ] || [ "$who" = alice ] || login "$TSP" "$who-id" "$who" "kyc-$who" "country-$who"
  "$TRANCHE" did bind-wallet --chain-id "$CHAIN" --key "$who" --did-key "$who-id" --out "$WORK/bind-$who.json" > /dev/null
  call "$TSP" "$who" /wallets "$WORK/bind-$who.json" > /dev/null
  wallet=$(address "$who")
  until_eq "$who's wallet is bound to their DID" "$(did "$who-id")" bound_did "$wallet"
  login "$BANK" "$who-id" "$who-bank" "kyc-$who"
  profile "$BANK" "$who-bank" "${NAMES[$who]}"
  call "$BANK" "$who-bank" /accounts "{\"wallet\":\"$wallet\"}" > /dev/null
done

echo "== F5-3 the investors pay in at the bank; its operator credits them and deposit tokens are minted 1:1"
deposit() { # WHO MINOR
  call "$BANK" bank-op /deposits "{\"did\":\"$(did "$1-id")\",\"amount\":\"$2\",\"reference\":\"PAY-$1-$RUN\"}" > /dev/null
}
deposit alice 6000000
deposit bob 3990000
deposit carol 10000
deposit carol 10000   # the same payment reference again: credited once
until_eq "alice's deposit is minted" 6000000 units "$ALICE" "$CASH"
until_eq "bob's deposit is minted" 3990000 units "$BOB" "$CASH"
until_eq "carol's deposit is minted" 10000 units "$CAROL" "$CASH"
check "carol's one payment, credited once" 10000 "$(units "$CAROL" "$CASH")"

echo "== F5-2 the TSP's operator opens the offering: 1,000 tokens at SP 100 USD, escrowed at the bank"
call "$TSP" tsp-op /offerings "$OFFER" > /dev/null
until_eq "the offering is open" open state_of "$TSP" alice "/offerings/$OFFERING"

echo "== F5-3 the investors subscribe 600, 399 and 1 from their bound wallets through the TSP (REC-8: into an escrow no key moves)"
subscribe alice 600
subscribe bob 399
subscribe carol 1
"$TRANCHE" query offering "$OFFERING" > "$WORK/offering.json"
check "subscribed" 1000 "$(field 'd["data"]["subscribed"]' < "$WORK/offering.json")"
ESCROW=$(field 'd["data"]["escrow"]' < "$WORK/offering.json")
check "the escrow holds what was paid" 10000000 "$(units "$ESCROW" "$CASH")"
check "alice paid 600 x 100 USD" 0 "$(units "$ALICE" "$CASH")"

echo "== F5-6/F5-4 the bank closes the offering when its window ends; the issuer's service queues the allocations"
staff_login issuer 0 op0
staff_login issuer 1 op1
until_eq "the allocations await the issuer's operators" pending state_of "$ISSUER" op0 "/requests/offering/$OFFERING"
check "the offering is allocated" allocated "$("$TRANCHE" query offering "$OFFERING" | field 'd["data"]["phase"]')"
check "F5-8 nothing is released before issuance: the owner holds" 0 "$(units "$OWNER" "$CASH")"

echo "== F5-5 two of the issuer's operators approve (four eyes); the service issues exactly the allocations"
call "$ISSUER" op0 "/requests/offering/$OFFERING/decisions" '{"decision":"approve","reason":"allocations as closed"}' > /dev/null
check "one approval is not enough" pending "$(state_of "$ISSUER" op0 "/requests/offering/$OFFERING")"
refused "the same operator approving twice" conflict "$ISSUER" op0 "/requests/offering/$OFFERING/decisions" '{"decision":"approve","reason":"again"}'
call "$ISSUER" op1 "/requests/offering/$OFFERING/decisions" '{"decision":"approve","reason":"appraisal within tolerance"}' > /dev/null

echo "== F5-7/SR-1 the TSP verifies issued against allocated; F5-8 the bank releases the proceeds to the owner"
until_eq "the offering is released" released state_of "$TSP" alice "/offerings/$OFFERING"
check "the TSP's verification" "issued 1000 of 1000 allocated to 3 subscriptions" "$(state_of "$TSP" alice "/offerings/$OFFERING" verified)"
check "issued on chain" 1000 "$("$TRANCHE" query token "$TOKEN" | field 'd["data"]["supply"]["issued"]')"
check "alice holds" 600 "$(units "$ALICE")"
check "bob holds" 399 "$(units "$BOB")"
check "carol holds" 1 "$(units "$CAROL")"
check "the owner is paid 100,000 USD" 10000000 "$(units "$OWNER" "$CASH")"
check "the escrow is empty" 0 "$(units "$ESCROW" "$CASH")"

echo "== token administration: the issuer's operators attach the prospectus, require pre-approved transfers, approve one, and lift the requirement (four eyes each)"
administer() { # ID PAYLOAD_JSON: an issuer operator proposes an agent action; two approve it
  call "$ISSUER" op0 /administration "{\"id\":\"$1\",\"payload\":$2,\"reason\":\"token administration\"}" > /dev/null
  call "$ISSUER" op0 "/requests/administration/$1/decisions" '{"decision":"approve","reason":"checked"}' > /dev/null
  check "one approval is not enough for $1" pending "$(state_of "$ISSUER" op0 "/requests/administration/$1")"
  call "$ISSUER" op1 "/requests/administration/$1/decisions" '{"decision":"approve","reason":"checked"}' > /dev/null
  until_eq "$1 is applied on chain" checked state_of "$ISSUER" op0 "/requests/administration/$1"
}
pre_check() { # FROM TO AMOUNT [TOKEN]: the ledger's reasons for refusing the transfer, or none
  { "$TRANCHE" query check-transfer --token "${4:-$TOKEN}" --from "$1" --to "$2" --amount "$3" || true; } | field '",".join(r["code"] for r in d["data"].get("reasons", [])) or "none"'
}
PROSPECTUS=$(printf 'prospectus of %s' "$TOKEN" | sha256sum | cut -d' ' -f1)
administer "$RUN-doc" "{\"type\":\"set_document\",\"token\":\"$TOKEN\",\"name\":\"prospectus\",\"uri\":\"https://devnet-tsp.example/$TOKEN/prospectus.pdf\",\"digest\":\"$PROSPECTUS\"}"
check "the prospectus's digest on chain" "$PROSPECTUS" "$("$TRANCHE" query documents "$TOKEN" | field 'd["data"]["documents"][0]["digest"]')"
RULES='{"required_topics":[1],"allowed_countries":[],"denied_countries":[],"max_holders":0,"max_balance_per_identity":"0"'
administer "$RUN-approvals" "{\"type\":\"set_token_rules\",\"token\":\"$TOKEN\",\"rules\":$RULES,\"transfer_approval\":true}}"
check "the rules' version" 1 "$("$TRANCHE" query rules "$TOKEN" | field 'd["data"]["version"]')"
check "the pre-check of alice's 10 to bob" TRANSFER_NOT_APPROVED "$(pre_check "$ALICE" "$BOB" 10)"
check "the pre-check of 700, more than she holds" INSUFFICIENT_BALANCE,TRANSFER_NOT_APPROVED "$(pre_check "$ALICE" "$BOB" 700)"
administer "$RUN-approve" "{\"type\":\"approve_transfer\",\"token\":\"$TOKEN\",\"from\":\"$ALICE\",\"to\":\"$BOB\",\"amount\":\"10\"}"
check "the pre-check once approved" none "$(pre_check "$ALICE" "$BOB" 10)"
administer "$RUN-no-approvals" "{\"type\":\"set_token_rules\",\"token\":\"$TOKEN\",\"rules\":$RULES}}"
check "the pre-check of another transfer" none "$(pre_check "$ALICE" "$CAROL" 5)"
ALICE_DID=$(did alice-id)
administer "$RUN-limits" "{\"type\":\"set_token_rules\",\"token\":\"$TOKEN\",\"rules\":$RULES,\"transfer_limit\":{\"max\":\"5\",\"period\":\"rolling\",\"days\":1},\"max_ownership_bps\":6000}}"
check "the pre-check over alice's daily transfer limit" TRANSFER_LIMIT_EXCEEDED "$(pre_check "$ALICE" "$BOB" 6)"
check "the pre-check over alice's 60 % share of the supply" OWNERSHIP_LIMIT_EXCEEDED "$(pre_check "$CAROL" "$ALICE" 1)"
administer "$RUN-exempt" "{\"type\":\"set_limit_exemption\",\"token\":\"$TOKEN\",\"did\":\"$ALICE_DID\",\"exempt\":true}"
check "the pre-check once alice is exempt" none "$(pre_check "$ALICE" "$BOB" 6)"
administer "$RUN-trusted" "{\"type\":\"set_trusted_issuers\",\"token\":\"$TOKEN\",\"topic\":1,\"issuers\":[\"devnet-kyc\"]}"
administer "$RUN-suspend" "{\"type\":\"set_rule_checks\",\"token\":\"$TOKEN\",\"suspended\":true}"
check "the rule checks suspended" "True devnet-kyc $ALICE_DID" "$("$TRANCHE" query rules "$TOKEN" | field '" ".join([str(d["data"]["suspended"]), d["data"]["trusted_issuers"][0]["issuers"][0], d["data"]["exempt"][0]])')"
check "the pre-check while suspended" none "$(pre_check "$BOB" "$CAROL" 6)"
administer "$RUN-resume" "{\"type\":\"set_rule_checks\",\"token\":\"$TOKEN\",\"suspended\":false}"
administer "$RUN-seize" "{\"type\":\"forced_moves\",\"moves\":[{\"token\":\"$TOKEN\",\"from\":\"$CAROL\",\"to\":\"$BOB\",\"amount\":\"1\"},{\"token\":\"$TOKEN\",\"from\":\"$BOB\",\"to\":\"$CAROL\",\"amount\":\"1\"}],\"reason\":\"seized and returned in one step (a court order, then its reversal)\"}"
check "carol holds her token again" 1 "$(units "$CAROL")"
send devnet-kyc "{\"type\":\"add_claim\",\"did\":\"$(did bob-id)\",\"topic\":1001,\"country\":null,\"digest\":\"$(printf 'retail %s' "$RUN" | sha256sum | cut -d' ' -f1)\",\"expiry_date\":\"2030-12-31\"}"
administer "$RUN-retail" "{\"type\":\"set_token_rules\",\"token\":\"$TOKEN\",\"rules\":$RULES,\"category_limits\":[{\"topic\":1001,\"max_per_identity\":\"400\"}]}}"
check "the pre-check over bob's retail cap" CATEGORY_LIMIT_EXCEEDED "$(pre_check "$ALICE" "$BOB" 2)"
administer "$RUN-no-limits" "{\"type\":\"set_token_rules\",\"token\":\"$TOKEN\",\"rules\":$RULES}}"
check "the rules' earlier versions kept" 5 "$("$TRANCHE" query rules "$TOKEN" | field 'len(d["data"]["earlier"])')"

echo "== SR-3 Alice hands the custodian her consent; its service opens her custodial wallet; she deposits 100 tokens into it"
login "$CUSTODIAN" alice-id alice-cus kyc-alice
"$TRANCHE" did consent-custody --chain-id "$CHAIN" --custodian devnet-custodian --key alice-id --out "$WORK/custody.json" > /dev/null
VAULT=$(call "$CUSTODIAN" alice-cus /holders "$WORK/custody.json" | field 'd["wallet"]')
until_eq "alice's custodial wallet is open" open state_of "$CUSTODIAN" alice-cus /holders/me
check "alice's custodial wallet in her query" "$VAULT" "$("$TRANCHE" query wallet "$ALICE" | field 'd["data"]["custodial_wallets"][0]["wallet"]')"
"$TRANCHE" tx build transfer --chain-id "$CHAIN" --key alice --nonce 2 --token "$TOKEN" --to "$VAULT" --amount 100 --out "$WORK/entrust.json" > /dev/null
"$TRANCHE" tx sign "$WORK/entrust.json" --key alice --out "$WORK/entrust.signed.json" > /dev/null
"$TRANCHE" submit "$WORK/entrust.signed.json"
last_event() { call "$CUSTODIAN" alice-cus /events | field "(d[-1]['direction'] + ' ' + d[-1]['amount']) if d else ''"; }
until_eq "the custodian's notice of the deposit" "in 100" last_event

echo "== SR-3 Alice moves 40 out of custody to Bob: she authorizes it offline, the custodian checks its policy and sends it"
"$TRANCHE" did authorize-transfer --chain-id "$CHAIN" --custodian devnet-custodian --token "$TOKEN" --to "$BOB" --amount 40 --number 0 --key alice-id --out "$WORK/move.json" > /dev/null
MOVE=$(call "$CUSTODIAN" alice-cus /instructions "$WORK/move.json" | field 'd["id"]')
until_eq "the instruction is final" applied state_of "$CUSTODIAN" alice-cus "/instructions/$MOVE"
until_eq "the custodian's notice of the move" "out 40" last_event
"$TRANCHE" did authorize-transfer --chain-id "$CHAIN" --custodian devnet-custodian --token "$TOKEN" --to "$BOB" --amount 2000000 --number 1 --key alice-id --out "$WORK/big.json" > /dev/null
refused "a move over the custodian's limit" over_transfer_limit "$CUSTODIAN" alice-cus /instructions "$WORK/big.json"
call "$CUSTODIAN" alice-cus "/instructions/$MOVE/proof" > "$WORK/move.proof.json"
"$TRANCHE" verify "$WORK/move.proof.json" --node "$(devnet 'd["nodes"][2]["api"]')"

echo "== F5-9 the TSP deposits a profit of 5,000 USD (and the sale's proceeds, for later) at the bank and distributes it"
# The TSP's own wallet: its DID's credentials, bound through its own service,
# an account at the bank.
TSP_KEY=(--key-file "$DEVNET/keys/devnet-tsp.key" --password-file "$PW")
"$TRANCHE" did bind-wallet --chain-id "$CHAIN" "${TSP_KEY[@]}" --out "$WORK/bind-tsp.json" > /dev/null
TSP_DID=$(field 'd["did"]' < "$WORK/bind-tsp.json") TSP_WALLET=$(field 'd["wallet"]' < "$WORK/bind-tsp.json")
for kind in kyc jurisdiction; do
  extra=(--level high); [ $kind = jurisdiction ] && extra=(--country KR)
  "$TRANCHE" vc issue "${KYC_KEY[@]}" --subject "$TSP_DID" --kind $kind "${extra[@]}" \
    --valid-until 2030-12-31T00:00:00Z --out "$WORK/$kind-tsp.json" > /dev/null
done
"$TRANCHE" service login "$TSP" "${TSP_KEY[@]}" --credential "$WORK/kyc-tsp.json" --credential "$WORK/jurisdiction-tsp.json" --out "$WORK/tsp-self.session" > /dev/null
call "$TSP" tsp-self /wallets "$WORK/bind-tsp.json" > /dev/null
until_eq "the TSP's wallet is bound" "$TSP_DID" bound_did "$TSP_WALLET"
"$TRANCHE" service login "$BANK" "${TSP_KEY[@]}" --credential "$WORK/kyc-tsp.json" --out "$WORK/tsp-bank.session" > /dev/null
call "$BANK" tsp-bank /accounts "{\"wallet\":\"$TSP_WALLET\"}" > /dev/null
TSP_CASH=$(units "$TSP_WALLET" "$CASH")
call "$BANK" bank-op /deposits "{\"did\":\"$TSP_DID\",\"amount\":\"10500000\",\"reference\":\"PAY-TSP-$RUN\"}" > /dev/null
until_eq "the TSP's deposit is minted" $((TSP_CASH + 10500000)) units "$TSP_WALLET" "$CASH"
call "$TSP" tsp-op /distributions "{\"distribution\":\"D-$RUN\",\"token\":\"$TOKEN\",\"total\":$(usd 500000),\"cash_token\":\"$CASH\",\"claim_secs\":3600}" > /dev/null
until_eq "the distribution is funded" funded state_of "$TSP" alice "/actions/distribution/D-$RUN"
claim='{"type":"claim_distribution","distribution":"D-'"$RUN"'"}'
submit alice 3 "$claim"; submit bob 2 "$claim"; submit carol 2 "$claim"
check "alice's share of 500/1,000" 250000 "$(units "$ALICE" "$CASH")"
check "bob's share of 439/1,000" 219500 "$(units "$BOB" "$CASH")"
check "carol's share of 1/1,000" 500 "$(units "$CAROL" "$CASH")"
until_eq "the custodian claimed the share of alice's custodial wallet, 60/1,000" 30000 units "$VAULT" "$CASH"

echo "== token administration: the issuer's operators open a ballot of the holders on a checkpoint; Carol votes with the weight of her one token"
NOW=$("$TRANCHE" query status | field 'd["block_time"]')
administer "$RUN-ballot" "{\"type\":\"open_ballot\",\"ballot\":\"B-$RUN\",\"token\":\"$TOKEN\",\"checkpoint\":null,\"choices\":[\"sell\",\"keep\"],\"opens\":$NOW,\"closes\":$((NOW + 3600000))}"
submit carol 3 "{\"type\":\"cast_vote\",\"ballot\":\"B-$RUN\",\"choice\":1}"
ballot_field() { "$TRANCHE" query ballot "B-$RUN" --wallet "$CAROL" | field "$1"; }
until_eq "carol's vote is counted, with the weight of her one token" 1 ballot_field 'd["data"]["choices"][1]["weight"]'
check "carol's vote in the query" 1 "$(ballot_field 'd["data"]["vote"]["choice"]')"
check "the ballot's voters" 1 "$(ballot_field 'd["data"]["voters"]')"

echo "== F6-7 Alice transfers 100 tokens to Bob in two transfers, signed offline with her own key and submitted as one batch"
for n in 4 5; do
  "$TRANCHE" tx build transfer --chain-id "$CHAIN" --key alice --nonce "$n" --token "$TOKEN" --to "$BOB" --amount 50 --out "$WORK/transfer-$n.json" > /dev/null
  "$TRANCHE" tx sign "$WORK/transfer-$n.json" --key alice --out "$WORK/transfer-$n.signed.json" > /dev/null
done
"$TRANCHE" submit "$WORK/transfer-4.signed.json" "$WORK/transfer-5.signed.json"

echo "== Settlement: Alice gives Bob 30, Bob gives Alice 10, in one transaction with Bob's approval"
echo "{\"type\":\"settle\",\"legs\":[{\"token\":\"$TOKEN\",\"from\":\"$ALICE\",\"to\":\"$BOB\",\"amount\":\"30\"},{\"token\":\"$TOKEN\",\"from\":\"$BOB\",\"to\":\"$ALICE\",\"amount\":\"10\"}]}" > "$WORK/settle.json"
"$TRANCHE" tx build payload "$WORK/settle.json" --chain-id "$CHAIN" --key alice --nonce 6 --out "$WORK/settle.tx.json" > /dev/null
"$TRANCHE" tx approve "$WORK/settle.tx.json" --key bob --out "$WORK/settle.tx.json" > /dev/null
"$TRANCHE" tx sign "$WORK/settle.tx.json" --key alice --out "$WORK/settle.signed.json" > /dev/null
"$TRANCHE" submit "$WORK/settle.signed.json"

echo "== F6-3/F6-11 Alice and Bob become traders at the exchange: it gives each a wallet, which they bind to their DIDs"
for who in alice bob; do
  login "$EXCHANGE" "$who-id" "$who-x" "kyc-$who" "country-$who"
  xw=$(call "$EXCHANGE" "$who-x" /traders '{}' | field 'd["wallet"]')
  "$TRANCHE" did consent-wallet --chain-id "$CHAIN" --wallet "$xw" --key "$who-id" --out "$WORK/xconsent-$who.json" > /dev/null
  "$TRANCHE" service call "$EXCHANGE" /traders/me/wallet --put --session "$WORK/$who-x.session" --body "$WORK/xconsent-$who.json" > /dev/null
  until_eq "$who's exchange wallet is bound to her or his DID" "$(did "$who-id")" bound_did "$xw"
  declare "XW_$who=$xw"
done
listing() { # SESSION: the token's listing at the exchange, and why
  call "$EXCHANGE" "$1" /markets | field "([l['status'] + ': ' + l['reason'].split(' (')[0] for l in d if l['token'] == '$TOKEN'] or ['none'])[0]"
}
until_eq "F6-2/SR-2 the exchange lists $TOKEN once its issuance checks out" "listed: issued 1000 of 1000 allocated" listing alice-x

echo "== F6-4/F6-7 Alice sells 20 tokens for the bank's deposit token; Bob buys them; the trade settles on chain as DvP"
submit alice 7 "{\"type\":\"transfer\",\"token\":\"$TOKEN\",\"to\":\"$XW_alice\",\"amount\":\"20\"}"
submit bob 3 "{\"type\":\"transfer\",\"token\":\"$CASH\",\"to\":\"$XW_bob\",\"amount\":\"200000\"}"
free_at_exchange() { # SESSION KIND ID
  call "$EXCHANGE" "$1" /traders/me | field "([b['free'] for b in d['balances'] if b['asset'] == {'kind': '$2', 'id': '$3'}] or ['0'])[0]"
}
until_eq "the exchange sees alice's 20 tokens" 20 free_at_exchange alice-x token "$TOKEN"
until_eq "the exchange sees bob's 2,000 USD in deposit tokens" 200000 free_at_exchange bob-x token "$CASH"
call "$EXCHANGE" alice-x /orders "{\"instrument\":\"$TOKEN/$CASH\",\"side\":\"sell\",\"price\":10000,\"quantity\":20}" > /dev/null
check "bob's buy is filled" filled "$(call "$EXCHANGE" bob-x /orders "{\"instrument\":\"$TOKEN/$CASH\",\"side\":\"buy\",\"price\":10000,\"quantity\":20}" | field 'd["state"]')"
last_trade() { call "$EXCHANGE" "$1" /trades | field "d[0]['state'] if d else 'none'"; }
until_eq "F6-5 the trade in bob's trade ledger is settled" settled last_trade bob-x
check "bob's exchange wallet holds the 20 tokens on chain" 20 "$(units "$XW_bob")"
check "alice's exchange wallet holds 20 x 100 USD" 200000 "$(units "$XW_alice" "$CASH")"

echo "== balances before the sale"
# Alice: 600 - 100 (to Bob) - 100 (into custody) - 30 + 10 - 20 (to the exchange) = 360;
# custody 100 - 40 = 60; Bob: 399 + 100 + 40 + 30 - 10 = 559, and 20 at the exchange; Carol: 1.
check "alice" 360 "$(units "$ALICE")"
check "alice's custodial wallet" 60 "$(units "$VAULT")"
check "bob" 559 "$(units "$BOB")"
check "carol" 1 "$(units "$CAROL")"

echo "== F5-10 the asset is sold: the TSP requests every token's revocation with 100 USD each in proceeds"
call "$TSP" tsp-op /redemptions "{\"request\":\"V-$RUN\",\"token\":\"$TOKEN\",\"amount\":\"1000\",\"unit_price\":$(usd 10000),\"cash_token\":\"$CASH\"}" > /dev/null
until_eq "the revocation awaits the issuer's operators" pending state_of "$ISSUER" op0 "/requests/revocation/V-$RUN"
MOVES="[{\"wallet\":\"$ALICE\",\"amount\":\"360\"},{\"wallet\":\"$VAULT\",\"amount\":\"60\"},{\"wallet\":\"$BOB\",\"amount\":\"559\"},{\"wallet\":\"$XW_bob\",\"amount\":\"20\"},{\"wallet\":\"$CAROL\",\"amount\":\"1\"}]"
call "$ISSUER" op0 "/requests/revocation/V-$RUN/decisions" "{\"decision\":\"approve\",\"reason\":\"the asset was sold\",\"moves\":$MOVES}" > /dev/null
call "$ISSUER" op1 "/requests/revocation/V-$RUN/decisions" '{"decision":"approve","reason":"moves checked against the register"}' > /dev/null
until_eq "SR-1 the TSP verifies the revocation" verified state_of "$TSP" alice "/actions/redemption/V-$RUN"
check "the TSP's verification" "revoked 1000 of 1000 requested" "$(state_of "$TSP" alice "/actions/redemption/V-$RUN" verified)"
"$TRANCHE" query revocation "V-$RUN" > "$WORK/revocation.json"
check "revocation requested" 1000 "$(field 'd["data"]["check"]["requested"]' < "$WORK/revocation.json")"
check "revoked" 1000 "$(field 'd["data"]["check"]["revoked"]' < "$WORK/revocation.json")"
check "alice is paid 360 x 100 USD with her distribution" 3850000 "$(units "$ALICE" "$CASH")"
check "her custodial wallet 60 x 100 USD with its distribution" 630000 "$(units "$VAULT" "$CASH")"
check "bob 559 x 100 USD with his distribution" 5609500 "$(units "$BOB" "$CASH")"
check "bob's exchange wallet 20 x 100 USD, his payment to alice gone" 200000 "$(units "$XW_bob" "$CASH")"
until_eq "F6-2 the exchange delists the revoked token" "delisted: revoked" listing bob-x
check "carol 1 x 100 USD with hers" 10500 "$(units "$CAROL" "$CASH")"

echo "== holds and settlement instructions: Carol holds 1 USD of deposit tokens for a notary, who pays it to Bob; the owner and Carol settle a two-party instruction, affirmed in order"
"$TRANCHE" key new notary > /dev/null
NOTARY=$(address notary)
NOW=$("$TRANCHE" query status | field 'd["block_time"]')
CAROL_CASH=$(units "$CAROL" "$CASH") BOB_CASH=$(units "$BOB" "$CASH") OWNER_CASH=$(units "$OWNER" "$CASH")
submit carol 4 "{\"type\":\"create_hold\",\"hold\":\"H-$RUN\",\"token\":\"$CASH\",\"amount\":\"100\",\"notary\":\"$NOTARY\",\"receiver\":\"$BOB\",\"expiry\":$((NOW + 3600000))}"
hold_field() { "$TRANCHE" query hold "H-$RUN" | field "$1"; }
until_eq "carol's hold is open" open hold_field 'd["data"]["state"]'
check "what carol's holds hold" 100 "$(hold_field 'd["data"]["wallet_held"]')"
check "the pre-check of carol spending all her cash" FUNDS_HELD "$(pre_check "$CAROL" "$BOB" "$CAROL_CASH" "$CASH")"
submit notary 1 "{\"type\":\"execute_hold\",\"hold\":\"H-$RUN\",\"to\":null}"
until_eq "the notary executed it" executed hold_field 'd["data"]["state"]'
check "bob received the held dollar" $((BOB_CASH + 100)) "$(units "$BOB" "$CASH")"
submit owner 1 "{\"type\":\"create_instruction\",\"instruction\":\"I-$RUN\",\"legs\":[{\"token\":\"$CASH\",\"from\":\"$OWNER\",\"to\":\"$CAROL\",\"amount\":\"500\"},{\"token\":\"$CASH\",\"from\":\"$CAROL\",\"to\":\"$OWNER\",\"amount\":\"200\"}],\"ordered\":true,\"deadline\":$((NOW + 3600000))}"
instruction_field() { "$TRANCHE" query instruction "I-$RUN" | field "$1"; }
until_eq "the instruction awaits the owner, then carol" "$OWNER,$CAROL" instruction_field '",".join(d["data"]["awaiting"])'
submit owner 2 "{\"type\":\"affirm_instruction\",\"instruction\":\"I-$RUN\"}"
check "one affirmation moves nothing" "pending $OWNER_CASH" "$(instruction_field 'd["data"]["state"]') $(units "$OWNER" "$CASH")"
submit carol 5 "{\"type\":\"affirm_instruction\",\"instruction\":\"I-$RUN\"}"
until_eq "carol's affirmation carries it out" executed instruction_field 'd["data"]["state"]'
check "carol's cash after both" $((CAROL_CASH - 100 + 500 - 200)) "$(units "$CAROL" "$CASH")"
check "the owner's cash after both" $((OWNER_CASH - 500 + 200)) "$(units "$OWNER" "$CASH")"

echo "== SR-2 the exchange checks the token's supply on its own node"
caught_up "$EXCHANGE_NODE"
"$TRANCHE" query token "$TOKEN" --node "$EXCHANGE_NODE" > "$WORK/token.json"
check "issued" 1000 "$(field 'd["data"]["supply"]["issued"]' < "$WORK/token.json")"
check "revoked" 1000 "$(field 'd["data"]["supply"]["revoked"]' < "$WORK/token.json")"
REVOCATION_WALLET=$(field 'd["data"]["revocation_wallet"]' < "$WORK/token.json")
check "the revocation wallet holds what was revoked" 1000 "$(units "$REVOCATION_WALLET")"

echo "== C-3/F6-9 the regulator reads the transfers from its own node"
caught_up "$REGULATOR_NODE"
"$TRANCHE" query transfers --token "$TOKEN" --node "$REGULATOR_NODE" > "$WORK/transfers.json"
# Three issuances, the agent's seizing and returning, the entrusting, the
# custodial move, two transfers, two settlement legs, the deposit at the
# exchange and the trade's settlement, and five revocations.
check "transfers of $TOKEN seen by the regulator's node" 18 "$(field 'len(d["data"]["transfers"])' < "$WORK/transfers.json")"
check "their kinds" "issuance,issuance,issuance,forced,forced,holder,custodial,holder,holder,settlement,settlement,holder,settlement,revocation,revocation,revocation,revocation,revocation" \
  "$(field '",".join(t["kind"] for t in d["data"]["transfers"])' < "$WORK/transfers.json")"

echo "== REC-9 the issuer's, the TSP's and the custodian's audit logs, exported, verify against their anchors on chain"
audit() { # API SESSION NAME DECISIONS
  for _ in $(seq 300); do
    call "$1" "$2" /audit/export > "$WORK/audit-$3.json"
    "$TRANCHE" audit verify "$WORK/audit-$3.json" --node "$REGULATOR_NODE" --json > "$WORK/audit-$3-check.json"
    [ "$(field 'd["anchored_entries"] == d["entries"]' < "$WORK/audit-$3-check.json")" = True ] && break
    sleep 0.2
  done
  check "every entry of the $3's log anchored" "$(field 'd["entries"]' < "$WORK/audit-$3-check.json")" "$(field 'd["anchored_entries"]' < "$WORK/audit-$3-check.json")"
}
audit "$ISSUER" op0 issuer
check "approvals of this run's offering and revocation in the issuer's log" 4 \
  "$(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1]))["records"] if r["entry"]["action"] == "approve" and r["entry"]["subject"].endswith(sys.argv[2])))' "$WORK/audit-issuer.json" "$RUN")"
audit "$TSP" tsp-op tsp
grep -q "matches: issued 1000" "$WORK/audit-tsp.json" && grep -q "matches: revoked 1000" "$WORK/audit-tsp.json" \
  || { echo "check failed: the TSP's verifications are not in its audit log" >&2; exit 1; }
staff_login custodian 0 cus-op
audit "$CUSTODIAN" cus-op custodian
grep -q "co-signed: 40 $TOKEN" "$WORK/audit-custodian.json" && grep -q "refused (over_transfer_limit)" "$WORK/audit-custodian.json" \
  || { echo "check failed: the custodian's decisions are not in its audit log" >&2; exit 1; }
echo "  ok: the TSP's verifications of the issuance and the revocation are in its log"
staff_login exchange 0 x-op
audit "$EXCHANGE" x-op exchange
grep -q "issued 1000 of 1000" "$WORK/audit-exchange.json" \
  || { echo "check failed: the exchange's listing is not in its audit log" >&2; exit 1; }

echo "== F6-1 the regulator's AML policy is on chain; F6-6/F6-8/F6-9 the exchange reports, the regulator reconciles"
REGULATOR=$(service regulator '["api"]')
aml_version() { "$TRANCHE" query aml-policy | field 'd["data"]["in_force"]["version"]'; }
until_eq "F6-1 the regulator's first AML policy is in force" 1 aml_version
# Close the exchange's period now (it also does so every reporting period),
# and wait for the regulator to have reconciled it.
SEQ=$(call "$EXCHANGE" x-op /reports '{}' | field 'd["report"]["seq"]')
staff_login regulator 0 reg-op
reconciled() { call "$REGULATOR" reg-op "/reports?exchange=devnet-exchange" \
  | field "[r['state'] for r in d if r['seq'] == $SEQ][0]"; }
until_eq "the regulator received and reconciled the exchange's report $SEQ" reconciled reconciled
REC=$(call "$REGULATOR" reg-op "/reconciliations?exchange=devnet-exchange")
check "every report of the exchange reconciles clean against the chain" True \
  "$(echo "$REC" | field 'all(r["verdict"] == "clean" for r in d) and sum(r["matched"] for r in d) >= 3')"
check "no finding about the exchange" 0 \
  "$(call "$REGULATOR" reg-op "/findings?exchange=devnet-exchange" | field 'len(d)')"
echo "  ok: $(echo "$REC" | field 'sum(r["matched"] for r in d)') transfers on chain touching the exchange's wallets, each in its reports"
echo "== F5-6 lock-ups per allocation: a second offering whose terms lock what it issues; carol's unit waits for its day"
ASSET2="AL-$RUN" TOKEN2="L-$RUN" OFFERING2="OL-$RUN"
"$TRANCHE" vc issue --key-file "$DEVNET/keys/devnet-registry.key" --password-file "$PW" --subject "$OWNER_DID" \
  --kind asset-ownership --asset "$ASSET2" --out "$WORK/owns2.json" > /dev/null
send devnet-registry "{\"type\":\"record_ownership\",\"asset\":\"$ASSET2\",\"owner\":\"$OWNER_DID\",\"credential\":\"$("$TRANCHE" vc digest "$WORK/owns2.json")\"}"
python3 -c 'import json,sys; print(json.dumps({"asset": sys.argv[1], "kind": "tangible", "price": json.loads(sys.argv[2]),
  "description": "harvest 2027, orchard 14, Naju", "credential": json.load(open(sys.argv[3]))}))' \
  "$ASSET2" "$(usd 100000)" "$WORK/owns2.json" > "$WORK/asset2.json"
call "$TSP" owner /assets "$WORK/asset2.json" > /dev/null
until_eq "the second asset is registered on chain" yes registered "$ASSET2"
send devnet-appraiser "{\"type\":\"record_appraisal\",\"asset\":\"$ASSET2\",\"value\":$(usd 100000)}"
until_eq "its appraisal is within policy" True state_of "$TSP" tsp-op "/assets/$ASSET2" within_policy
call "$TSP" tsp-op /offerings "{\"offering\":\"$OFFERING2\",\"asset\":\"$ASSET2\",\"token\":\"$TOKEN2\",\"unit_price\":$(usd 10000),\"amount\":\"10\",\"min_units\":\"1\",\"max_units\":\"10\",\"soft_cap\":\"1\",\"window_secs\":6,\"issuer\":\"devnet-issuer\",\"bank\":\"devnet-bank\",\"cash_token\":\"$CASH\",\"issue_date\":\"2026-01-01\",\"expiry_date\":\"2036-12-31\",\"rules\":{\"required_topics\":[1],\"allowed_countries\":[],\"denied_countries\":[],\"max_holders\":0,\"max_balance_per_identity\":\"0\"},\"lockup_until\":\"2030-06-30\"}" > /dev/null
until_eq "the second offering is open" open state_of "$TSP" carol "/offerings/$OFFERING2"
sign_offline carol 6 "{\"type\":\"subscribe\",\"offering\":\"$OFFERING2\",\"units\":\"1\"}"
SUB2=$(call "$TSP" carol /subscriptions "$WORK/p.signed.json" | field 'd["tx"]')
until_eq "carol's subscription of 1 is applied" applied state_of "$TSP" carol "/subscriptions/$SUB2"
until_eq "its allocations await the issuer's operators" pending state_of "$ISSUER" op0 "/requests/offering/$OFFERING2"
call "$ISSUER" op0 "/requests/offering/$OFFERING2/decisions" '{"decision":"approve","reason":"allocations as closed"}' > /dev/null
call "$ISSUER" op1 "/requests/offering/$OFFERING2/decisions" '{"decision":"approve","reason":"lock-up as offered"}' > /dev/null
until_eq "the second offering is released" released state_of "$TSP" carol "/offerings/$OFFERING2"
check "carol's unit, locked until the offering's day" "1 2030-06-30" \
  "$("$TRANCHE" query wallet "$CAROL" | field "[b['locked']['units'] + ' ' + b['locked']['until'] for b in d['data']['balances'] if b['token'] == '$TOKEN2'][0]")"
check "the pre-check: carol's locked unit cannot move" LOCKED_UP "$(pre_check "$CAROL" "$ALICE" 1 "$TOKEN2")"
echo "investment scenario complete"
