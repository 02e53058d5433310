//! Trades and their settlement: a trade moves its part of both orders'
//! holds to itself and becomes one delivery-versus-payment transaction
//! (the token seller to buyer, and the payment back when the quote is on
//! chain, approved by both wallet keys); when the chain decides it, the
//! holds are released and a leg kept at the exchange moves.

use crate::market::{fee, Asset, Effects, Market, OrderRow, Settling, TradeRow, FEES};
use std::sync::Arc;
use tranche_matching::{InstrumentId, Price, Qty, Side};
use tranche_types::{Leg, OrderId, Units};

impl Market {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn trade(
        &mut self,
        instrument: &InstrumentId,
        maker: OrderId,
        taker: OrderId,
        taker_side: Side,
        price: Price,
        quantity: Qty,
        fx: &mut Effects,
    ) {
        let pair = self
            .pairs
            .get(instrument)
            .expect("a trade is on a listed instrument")
            .clone();
        let (buy, sell) = match taker_side {
            Side::Buy => (taker.0, maker.0),
            Side::Sell => (maker.0, taker.0),
        };
        let q = quantity.0;
        let value = u128::from(price.0) * u128::from(q);
        let (fee_buyer, fee_seller) = match pair.quote {
            Asset::Currency(_) => (fee(value, self.fee_bps), fee(value, self.fee_bps)),
            Asset::Token(_) => (0, 0),
        };
        let buyer = {
            let o = self
                .orders
                .get_mut(&buy)
                .expect("a trade's buy order is open");
            o.open -= q;
            o.filled += q;
            o.reserved = o
                .reserved
                .checked_sub(value + fee_buyer)
                .expect("a buy order holds what it trades at its limit");
            fx.orders.insert(
                buy,
                OrderRow {
                    order: o.clone(),
                    state: "open",
                    reason: None,
                    message: None,
                },
            );
            o.did.clone()
        };
        let seller = {
            let o = self
                .orders
                .get_mut(&sell)
                .expect("a trade's sell order is open");
            o.open -= q;
            o.filled += q;
            o.reserved = o
                .reserved
                .checked_sub(u128::from(q))
                .expect("a sell order holds what it sells");
            fx.orders.insert(
                sell,
                OrderRow {
                    order: o.clone(),
                    state: "open",
                    reason: None,
                    message: None,
                },
            );
            o.did.clone()
        };
        // The order's hold becomes the trade's, until the chain decides.
        let s = Settling {
            buyer: buyer.clone(),
            seller: seller.clone(),
            base: pair.base.clone(),
            quote: pair.quote.clone(),
            quantity: q,
            value,
            fee_buyer,
            fee_seller,
        };
        let (b, sl) = (&self.traders[&buyer], &self.traders[&seller]);
        let mut legs = vec![Leg {
            token: pair.base.clone(),
            from: sl.wallet,
            to: b.wallet,
            amount: Units(u128::from(q)),
        }];
        let mut keys = vec![Arc::clone(&sl.key)];
        if let Asset::Token(t) = &pair.quote {
            legs.push(Leg {
                token: t.clone(),
                from: b.wallet,
                to: sl.wallet,
                amount: Units(value),
            });
            keys.push(Arc::clone(&b.key));
        }
        let id = self.next_trade;
        self.next_trade += 1;
        self.settling.insert(id, s.clone());
        fx.trades.push(TradeRow {
            id,
            instrument: instrument.clone(),
            price: price.0,
            settling: s,
            buy_order: buy,
            sell_order: sell,
            legs,
            keys,
        });
    }

    /// The chain decided trade `id`'s settlement: its holds are released;
    /// if it was applied, the legs in the exchange's ledger move now.
    pub fn settled(&mut self, id: u64, applied: bool, fx: &mut Effects) {
        let Some(s) = self.settling.remove(&id) else {
            return;
        };
        self.release(
            &s.seller,
            &Asset::Token(s.base.clone()),
            u128::from(s.quantity),
        );
        self.release(&s.buyer, &s.quote, s.value + s.fee_buyer);
        if !applied {
            return;
        }
        if let Asset::Currency(c) = &s.quote {
            let mut add = |did: &str, delta: i128| {
                let key = (did.to_string(), c.clone());
                let now = self.cash.get(&key).copied().unwrap_or(0);
                let after = if delta >= 0 {
                    now + delta.unsigned_abs()
                } else {
                    now.checked_sub(delta.unsigned_abs())
                        .expect("a buyer's account held what the trade costs")
                };
                self.cash.insert(key.clone(), after);
                fx.cash.insert(key, after);
            };
            let paid = (s.value + s.fee_buyer) as i128;
            add(&s.buyer, -paid);
            add(&s.seller, (s.value - s.fee_seller) as i128);
            add(FEES, (s.fee_buyer + s.fee_seller) as i128);
        }
    }
}
