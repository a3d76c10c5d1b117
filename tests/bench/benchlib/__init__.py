"""The pieces of tests/bench/run: peers (each tool's config and command), seeding (the
corpus on disk and on the server), mailstate (reading and comparing server and Maildir
state), changes (the scenario changes on either side), machine (what ran where) and report
(docs/BENCHMARKS.md and the chart)."""
