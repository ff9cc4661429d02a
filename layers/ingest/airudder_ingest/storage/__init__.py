"""Storage: the DynamoDB key design (store) and the archive's envelope, lines and layout."""
