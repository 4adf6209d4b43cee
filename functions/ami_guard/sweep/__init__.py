"""The posture sweep: what is exposed now, read from AWS per account and region.

`facts` holds what the sweep reads, as pure values (no boto3); `collect` is the AWS edge that reads them. The
evaluation of the facts into findings builds on these two and lives apart from them.
"""
