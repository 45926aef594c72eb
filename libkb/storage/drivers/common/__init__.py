"""HTTP plumbing shared by the S3, Azure and GCS drivers."""
