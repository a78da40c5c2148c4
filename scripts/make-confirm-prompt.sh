#!/usr/bin/env bash
# Record the "press 1 to connect" prompt for C2C_CONFIRM=key with a synthetic voice, as a WAV that
# FreeSWITCH plays without transcoding surprises (8 kHz, mono, 16-bit; mod_sndfile reads it).
#
#   scripts/make-confirm-prompt.sh [OUT.wav] [TEXT] [VOICE]
#
# Needs espeak-ng and sox (apt-get install espeak-ng sox). Then, on the switch:
#   install -D -m 0644 OUT.wav /usr/share/freeswitch/sounds/c2c/press-1.wav
# and in c2c's environment: C2C_CONFIRM_PROMPT=/usr/share/freeswitch/sounds/c2c/press-1.wav
# (a path c2c accepts: no spaces, quotes, commas, braces, parentheses, '$' or '|').
# A recording by a real person is kinder; any 8 kHz mono WAV at that path will do.
set -euo pipefail
out=${1:-press-1.wav}
text=${2:-"You asked us to call you. To be connected now, press 1."}
voice=${3:-en-us}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (apt-get install espeak-ng sox)" >&2; exit 2; }
done
raw=$(mktemp --suffix=.wav)
trap 'rm -f "$raw"' EXIT
espeak-ng -v "$voice" -s 150 -w "$raw" "$text"
# A short lead-in and tail: FreeSWITCH plays the file while it waits for the key (C2C_CONFIRM_TIMEOUT).
sox "$raw" -r 8000 -c 1 -b 16 "$out" pad 0.3 1.0
echo "$out: $(soxi -D "$out") s"
