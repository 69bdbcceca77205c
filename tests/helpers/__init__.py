"""What several test folders share (emulations, fixtures' building blocks, paths), so that no test
module imports another."""
