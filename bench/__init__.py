"""`make bench`: what a guard function costs at cold start and per event, against its floor and Cloud Custodian."""
