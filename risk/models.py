# The risk controller's models come with the trading issue. API tokens moved to the accounts app
# (risk/migrations/0002 hands their table over).
