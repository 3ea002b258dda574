#!/bin/sh
# GNU parallel: one archive cut into 4 shards, run side by side on this machine (add
# --sshlogin to spread them over several machines that share the directory).
#
# The token is read from a file only you can read (--token-file), never a command line:
#   install -m 600 /dev/stdin ~/.config/reanalyzer/token
# Pace: --rate-limit is per shard; 4 shards at 5 requests/s ask the appliance for 20.
# A shard that failed is rerun alone with the same line and `::: 2`: it resumes its directory.
cd /srv/reanalyzer || exit 3

parallel --jobs 4 --line-buffer --tagstring 'shard {}' reanalyzer run --url https://a1000.example.com --token-file "$HOME/.config/reanalyzer/token" --rate-limit 5 --shard {}/4 inputs/hashes-2024.txt.gz ::: 0 1 2 3

reanalyzer status jobs/hashes-2024-*-shard-*of4
