# score-miner tasks. `just --list` shows them; every recipe is also runnable alone with npx tsx.
set dotenv-load := false

# Start the miner server (reads .env; port MINER_PORT, default 8000)
start:
    npm start

# The whole miner on the bundled model against a synthetic clip
demo:
    npm run demo

test:
    npm test

bench:
    npm run bench

# Publish the timelock-encrypted commitment Score reads, and wait for its reveal
commit image tag digest *args:
    npx tsx tasks/commit.ts --image {{image}} --tag {{tag}} --digest {{digest}} {{args}}

# Publish the axon (public IPv4 + port) the validator calls
axon *args:
    npx tsx tasks/axon.ts {{args}}

# What the chain says about this hotkey, and what to fix
status *args:
    npx tsx tasks/status.ts {{args}}

# Send a signed challenge to a miner, like Score's validator
challenge *args:
    npx tsx tasks/challenge.ts {{args}}
