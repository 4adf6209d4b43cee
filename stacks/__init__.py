"""The AMI Guard CDK stack and its components."""
