"""The recordings copier: call recordings from AIRUDDER's links into S3."""
