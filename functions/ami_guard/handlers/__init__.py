"""One Lambda entry point per guard function."""
