"""Where sources and outputs live: a local directory or an S3 bucket, behind one interface."""
