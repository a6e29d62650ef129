"""The snapshot differ: one sync run reads every profile, stores the snapshot,
diffs it against the baseline and publishes what changed."""
