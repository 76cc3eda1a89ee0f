#!/bin/sh
# Entry point of the unifireward images: turns the one secret the services read only from a variable
# into that variable, then runs the command (python -m reward_server, python -m embedder, ray ...).
#
#   REWARD_EMBEDDER_API_KEY_FILE  a mounted secret (e.g. the embedder's keys file); its first line that is
#                                 neither blank nor a # comment becomes REWARD_EMBEDDER_API_KEY, the key
#                                 the reward service sends the embedder.
#
# The services' own keys need nothing here: REWARD_API_KEYS_FILE and EMBEDDER_API_KEYS_FILE are read by
# the services themselves.
set -eu

if [ -n "${REWARD_EMBEDDER_API_KEY_FILE:-}" ]; then
    if [ ! -r "$REWARD_EMBEDDER_API_KEY_FILE" ]; then
        echo "entrypoint: cannot read REWARD_EMBEDDER_API_KEY_FILE ($REWARD_EMBEDDER_API_KEY_FILE)" >&2
        exit 64
    fi
    key=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$REWARD_EMBEDDER_API_KEY_FILE" \
          | grep -v -e '^$' -e '^#' | head -n 1 || true)
    if [ -z "$key" ]; then
        echo "entrypoint: $REWARD_EMBEDDER_API_KEY_FILE holds no key (only blank or # lines)" >&2
        exit 64
    fi
    REWARD_EMBEDDER_API_KEY=$key
    export REWARD_EMBEDDER_API_KEY
    unset REWARD_EMBEDDER_API_KEY_FILE key
fi

exec "$@"
