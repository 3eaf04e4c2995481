"""Trading forward: a trained policy run bar by bar against a feed and a broker.

The two interfaces and the plain data between them live in engine/live/venue.py (Bar, Feed, Broker,
Update) and engine/live/orders.py (OrderRequest, Order and its status machine, Fill, Account):

    policy = Policy.load(config, checkpoint="runs/42/best.pt", market=market)      # engine/live/policy.py
    feed = ReplayFeed(policy.market, bars)           # engine/live/replay.py; or an exchange's closed bars
    broker = PaperBroker(policy.symbols, cash=1e6)   # engine/live/paper.py; or a venue through ccxt
    while (bar := feed.poll()) is not None:
        trade_bar(bar, feed=feed, policy=policy, broker=broker, check=..., record=..., id_prefix="d7")

trade_bar (engine/live/trader.py) is the one path from a policy to a broker: every order passes the
check first. Nothing here imports Django: the trading app runs it, records what happened, and holds
the leases.
"""
