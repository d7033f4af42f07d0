# score-miner tasks. `just --list` shows them; every task is also runnable alone: npx tsx tasks/<task>.ts
set dotenv-load := false
# Arguments reach the commands as "$@" (each word quoted as given), never pasted into the command text.
set positional-arguments := true
set shell := ["bash", "-c"]

# Start the miner server here (reads .env, and .env.NAME over it with env=NAME; port MINER_PORT, default 8000)
serve *words:
    #!/usr/bin/env bash
    set -euo pipefail
    for word in "$@"; do
      case "$word" in
        env=*) export DEPLOY_PROFILE="${word#env=}" ;;
        *) echo "error: unknown word \"$word\"" >&2; echo "  next: just serve [env=NAME]" >&2; exit 2 ;;
      esac
    done
    exec npm start

# The whole miner on the bundled model against a synthetic clip
demo:
    npm run demo

test:
    npm test

bench:
    npm run bench

# Build, push, rehearse, share, commit, start: just deploy tag=v1.0.0 [env=NAME] [push=false] [rehearse=false] [share=false] [commit=false] [start=false] [from=STEP]
deploy *words:
    @node tasks/deploy.ts "$@"

# Build the image: just build tag=v1.0.0 (or npx tsx tasks/build.ts --tag v1.0.0 [--build-arg MODEL_SRC=...])
build tag *args:
    node tasks/build.ts --tag "${1#tag=}" "${@:2}"

# Push it (Docker Hub: private repository created when missing) and record the digest the registry reports
push tag *args:
    node tasks/push.ts --tag "${1#tag=}" "${@:2}"

# Replay one challenge on the pushed image as Score's spot check would (twice, and on the image start runs), before commit
rehearse *args:
    node tasks/rehearse.ts "$@"

# Give Score's account read access (Docker Hub collaborator; GHCR: the manual steps)
share *args:
    node tasks/share.ts "$@"

# Publish the timelock-encrypted commitment Score reads (repo, tag, digest from the last push), wait for the reveal
commit *args:
    node tasks/commit.ts "$@"

# Run the image on its engine (here, or DEPLOY_HOST): replaces this miner's container, waits until it answers, rolls back on failure
start *args:
    node tasks/start.ts "$@"

# Start the tag that ran before the current one
rollback *args:
    node tasks/start.ts --rollback "$@"

# Publish the axon (public IPv4 + port) the validator calls
axon *args:
    node tasks/axon.ts "$@"

# What the chain says about this hotkey, and what to fix
status *args:
    node tasks/status.ts "$@"

# Send a signed challenge to a miner, like Score's validator
challenge *args:
    node tasks/challenge.ts "$@"

# Rehearse a Score spot check of the committed image: just spotcheck --file clip.mp4 [--truth t.json] [--live URL]
spotcheck *args:
    node tasks/spotcheck.ts "$@"

# Score a model on your labelled clips, or tune its thresholds: just eval --clips DIR [--tune] [--report DIR]
eval *args:
    node tasks/eval.ts "$@"
