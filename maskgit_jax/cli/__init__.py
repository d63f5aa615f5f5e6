"""The command lines (train.py, sample.py and the maskgit-* console scripts): flags, then one library call."""
