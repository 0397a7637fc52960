#!/bin/sh
# GIT_ASKPASS helper: answers git's prompts from the environment of this one git process.
case "$1" in
  Username*) printf '%s\n' "$INSPECT_GIT_USERNAME" ;;
  *) printf '%s\n' "$INSPECT_GIT_PASSWORD" ;;
esac
