#!/usr/bin/env bash
# The whole suite (`npm test`), every runner in turn, each printing its own report, after the
# build (tsc type-checks) and the linter (Biome, biome.jsonc; the folder layering is a test:
# test/architecture/imports.test.ts):
#   1. tap on Node: unit, docs and e2e tests (the e2e ones start the product under Node);
#   2. tap on Node, the e2e tests again, the harness starting the product under Deno
#      (REPLGUARD_TEST_RUNTIME is read by test/helpers/runtime.ts, never by the product);
#   3. deno test: node:test conformance of runtime-sensitive code under Deno (test/deno/).
# Every runner runs even when an earlier one failed; the exit status is non-zero if any did.
# Extra arguments (e.g. --reporter=tap) go to both tap runs.
set -u
cd "$(dirname "$0")/.."
npm run build --silent || exit 1
status=0
echo "# lint: biome"
npm run lint --silent || status=1
echo "# runner 1/3: tap, product under Node"
tap "$@" || status=1
echo "# runner 2/3: tap, e2e against the product under Deno"
REPLGUARD_TEST_RUNTIME=deno tap --disable-coverage "$@" test/e2e/ || status=1
echo "# runner 3/3: deno test (test/deno, node:test under Deno)"
node_modules/.bin/deno test -A test/deno/ || status=1
exit $status
