"""`bocker build`: Dockerfiles built step by step on btrfs snapshots."""
