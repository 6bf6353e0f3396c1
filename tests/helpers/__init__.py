"""What several test modules share: waiting (`waiting`), a store wrapper that a test can
slow down or make race (`stores`), and one geth started for a test (`geth`). Test
modules import these, never each other."""
