"""A local emulated AWS account for AMI Guard: `python -m demo` (what `make demo` runs).

moto's server plays the account, the real CDK CLI deploys the real app into it, and the event runner plays
EventBridge and the Lambda service from what was deployed. The same harness backs tests/e2e.
"""
