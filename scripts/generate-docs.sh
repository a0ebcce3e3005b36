#!/usr/bin/env bash
# Regenerates completions/, man/msb.1 and README.md's generated sections (the command
# list and the option tables) from the command table (a test fails when the committed
# files drift from what msb prints).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=/opt/swift/usr/bin:$PATH
swift build --product msb >/dev/null
MSB=$(swift build --show-bin-path)/msb
"$MSB" completion bash > completions/msb.bash
"$MSB" completion zsh > completions/_msb
"$MSB" completion fish > completions/msb.fish
"$MSB" _manpage > man/msb.1
"$MSB" _readme < README.md > README.md.new
mv README.md.new README.md
