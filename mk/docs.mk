# The documents: README.md and docs/*.md.
#
#   make test-docs     every relative link, anchor and repository path they
#                      name resolves, and none points outside the repository
#   make doc-samples   regenerate their sample output from real runs (the
#                      <!-- sample: ... --> blocks; boots the demo kernel)

.PHONY: test-docs doc-samples
test-docs:
	@python3 scripts/check-docs.py

doc-samples:
	@scripts/update-doc-samples.sh

TEST_STEPS += test-docs
