"""AMI Guard: evaluates CloudTrail records of EC2 image changes and reports findings."""
